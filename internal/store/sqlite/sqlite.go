// Package sqlite is the embedded default store: one SQLite file (modernc.org/sqlite,
// pure Go) in WAL mode, with embedded migrations and online backup. It implements
// domain.Store and passes the conformance suite in internal/store/storetest.
//
// Every exported method runs in one transaction. Writes begin with BEGIN
// IMMEDIATE, so they take SQLite's single write lock before reading anything and
// therefore serialize, also across processes that open the same file; reads run
// in a deferred (snapshot) transaction and never wait for writers.
package sqlite

import (
	"cmp"
	"context"
	"database/sql"
	"embed"
	"encoding/json"
	"errors"
	"fmt"
	"io/fs"
	"math/rand/v2"
	"net/url"
	"os"
	"path/filepath"
	"runtime"
	"sort"
	"strconv"
	"strings"
	"sync"
	"time"

	"modernc.org/sqlite"
	sqlite3 "modernc.org/sqlite/lib"

	"github.com/fieldsync/fieldsync/internal/domain"
)

var _ domain.Store = (*Store)(nil)

//go:embed migrations/*.sql
var migrationFiles embed.FS

// Store is the SQLite implementation of domain.Store. It is safe for concurrent
// use, and several Store values (in one process or in several) may open the same
// file at once.
type Store struct {
	db *sql.DB
	// writeGate lets one write transaction of this process at a time try for
	// SQLite's write lock. Writers would serialize without it, but they would wait
	// in SQLite's busy handler, which polls with sleeps; a channel hands the turn
	// over at once and still honours the caller's context.
	writeGate chan struct{}
	group     groupQueue // writes waiting for the next group commit (groupcommit.go)

	stmtMu sync.Mutex
	stmts  map[string]*sql.Stmt // see stmt

	observe func(op string, took time.Duration) // Config.Observe, or nil

	files *fileBlobs // attachment bytes, under <dir of Path>/attachments (attachment.go)
	dicts dictCache  // the forms' dictionaries of record data (data_dict.go)

	// The WAL checkpoint when writes pause (checkpoint.go).
	wrote     chan struct{} // poked after each committed write
	closing   chan struct{} // closed by Close
	closeOnce sync.Once
	idleDone  chan struct{} // closed when checkpointWhenIdle returns
}

// Config configures a Store.
type Config struct {
	// Path is the database file; required.
	Path string
	// Observe, when set, is called after every transaction with the name of the
	// Store method that ran it (such as "WriteRecords") and the time it took,
	// the wait for the write lock included. It must be quick and safe for
	// concurrent use; the server feeds its store-operation histogram from it.
	// The name comes from the call stack (see opName), so the backend's methods
	// need no code of their own for it.
	Observe func(op string, took time.Duration)
}

// Open opens (creating it and its directory if needed) the SQLite store at path
// and applies the pending migrations.
func Open(ctx context.Context, path string) (*Store, error) {
	return OpenConfig(ctx, Config{Path: path})
}

// OpenConfig is Open with every setting.
func OpenConfig(ctx context.Context, cfg Config) (*Store, error) {
	path := cfg.Path
	if path == "" {
		return nil, errors.New("sqlite: empty path")
	}
	if err := os.MkdirAll(filepath.Dir(path), 0o700); err != nil {
		return nil, fmt.Errorf("sqlite: %w", err)
	}
	// The file holds survey answers and password hashes: make it readable by
	// this user only. SQLite gives its WAL and shared-memory files the mode of
	// the database file, so they follow. An existing file keeps the mode its
	// operator gave it.
	f, err := os.OpenFile(path, os.O_RDWR|os.O_CREATE, 0o600)
	if err != nil {
		return nil, fmt.Errorf("sqlite: %w", err)
	}
	fi, err := f.Stat()
	if err != nil {
		f.Close()
		return nil, fmt.Errorf("sqlite: %w", err)
	}
	if err := f.Close(); err != nil {
		return nil, fmt.Errorf("sqlite: %w", err)
	}
	if fi.Size() == 0 {
		setPageSize(ctx, path)
	}
	db, err := sql.Open("sqlite", dsn(path))
	if err != nil {
		return nil, fmt.Errorf("sqlite: %w", err)
	}
	// Connections carry their pragmas and page cache; keep them rather than
	// reopening. Readers run in parallel (WAL); writers take turns.
	n := max(4, 2*runtime.GOMAXPROCS(0))
	db.SetMaxOpenConns(n)
	db.SetMaxIdleConns(n)
	db.SetConnMaxIdleTime(0)
	db.SetConnMaxLifetime(0)
	s := &Store{db: db, writeGate: make(chan struct{}, 1), stmts: map[string]*sql.Stmt{}, observe: cfg.Observe,
		files: newFileBlobs(filepath.Join(filepath.Dir(path), "attachments")),
		wrote: make(chan struct{}, 1), closing: make(chan struct{}), idleDone: make(chan struct{})}
	// The first connections to a new file race to turn it to WAL, and SQLite
	// answers the losers SQLITE_BUSY at once, without waiting in the busy
	// handler: when several processes start together, retry until the winner is
	// done. Once the file is in WAL mode (a property of the file), this never
	// happens again.
	deadline := time.Now().Add(openRetryFor)
	for {
		err = s.migrate(ctx)
		if err == nil || !errors.Is(err, domain.ErrUnavailable) || time.Now().After(deadline) {
			break
		}
		select {
		case <-ctx.Done():
			err = ctxErr(ctx.Err())
		case <-time.After(time.Duration(5+rand.IntN(20)) * time.Millisecond):
			continue
		}
		break
	}
	if err != nil {
		db.Close()
		return nil, err
	}
	go s.checkpointWhenIdle(path)
	return s, nil
}

// pageSize is the page size of new files: records of about 1 KB left a
// sixth of each 4 KiB page (SQLite's default) empty, as only whole rows fit;
// in 8 KiB pages a twentieth (issue 16).
const pageSize = 8192

// setPageSize gives a new, empty file its page size, which must be set before
// anything is written and cannot change once the file is in WAL mode (the DSN
// pragmas run in lexical order, journal_mode before page_size). Errors are
// ignored: a file made at the same moment by another process, or with
// SQLite's default, works the same.
func setPageSize(ctx context.Context, path string) {
	db, err := sql.Open("sqlite", dsnFor(path, url.Values{}))
	if err != nil {
		return
	}
	defer db.Close()
	_, _ = db.ExecContext(ctx, fmt.Sprintf(`PRAGMA page_size = %d; PRAGMA journal_mode = WAL`, pageSize))
}

// openRetryFor is how long Open retries while another process creates the file.
const openRetryFor = 10 * time.Second

// dsn builds modernc's DSN. Every pooled connection runs these pragmas when it is
// opened (busy_timeout first, whatever the order here):
//   - busy_timeout: a writer waits up to 10 s for another process's write lock
//     before the store answers ErrUnavailable;
//   - journal_mode(WAL): readers never block writers nor writers readers;
//   - synchronous(FULL): each commit is fsynced, so an acknowledged write
//     survives a power cut, not only a crash of the process;
//   - foreign_keys(1): enforce the references the schema declares;
//   - cache_size: a larger page cache per connection (the default is 2 MiB);
//   - temp_store(MEMORY): sorts and temporary b-trees stay off the disk;
//   - wal_autocheckpoint(5000): checkpoint every ~40 MB of WAL (5000 pages of
//     8 KiB, see pageSize) rather than
//     ~4 MB, so a page that every batch touches (an index page of record ids)
//     is copied into the file once per checkpoint, not once per batch;
//   - _txlock=immediate: BeginTx (not read-only) says BEGIN IMMEDIATE.
func dsn(path string) string {
	q := url.Values{}
	q.Add("_pragma", "busy_timeout(10000)")
	q.Add("_pragma", "journal_mode(WAL)")
	q.Add("_pragma", "synchronous(FULL)")
	q.Add("_pragma", "foreign_keys(1)")
	q.Add("_pragma", "cache_size(-16000)")
	q.Add("_pragma", "temp_store(MEMORY)")
	q.Add("_pragma", "wal_autocheckpoint(5000)")
	q.Set("_txlock", "immediate")
	return dsnFor(path, q)
}

// dsnFor is the DSN of the file at path with the query q.
func dsnFor(path string, q url.Values) string {
	// modernc hands a "file:" DSN to SQLite as a URI, which percent-decodes the
	// path: escape it, so names with spaces, '#' or '?' open the right file.
	p := filepath.ToSlash(path)
	if filepath.IsAbs(path) && !strings.HasPrefix(p, "/") {
		p = "/" + p // a Windows drive: file:///C:/dir/fieldsync.db
	}
	escaped := (&url.URL{Path: p}).EscapedPath()
	if strings.HasPrefix(p, "/") {
		return "file://" + escaped + "?" + q.Encode()
	}
	return "file:" + escaped + "?" + q.Encode()
}

// migration is one embedded migration file and its version.
type migration struct {
	version int
	name    string
}

// migrationNames returns the embedded migrations in version order.
func migrationNames() ([]migration, error) {
	names, err := fs.Glob(migrationFiles, "migrations/*.sql")
	if err != nil {
		return nil, fmt.Errorf("sqlite: migrations: %w", err)
	}
	var ms []migration
	for _, name := range names {
		base := filepath.Base(name)
		num, _, ok := strings.Cut(base, "_")
		v, err := strconv.Atoi(num)
		if !ok || err != nil {
			return nil, fmt.Errorf("sqlite: migration %q: name must start with a number and '_'", base)
		}
		ms = append(ms, migration{v, name})
	}
	sort.Slice(ms, func(i, j int) bool { return ms[i].version < ms[j].version })
	return ms, nil
}

// migrate applies the embedded migrations not yet recorded in schema_migrations,
// in one IMMEDIATE transaction: a second process opening the same file at the same
// moment waits for the lock and then finds them applied.
func (s *Store) migrate(ctx context.Context) error {
	ms, err := migrationNames()
	if err != nil {
		return err
	}
	err = s.write(ctx, func(tx *sql.Tx) error {
		if _, err := tx.ExecContext(ctx, `CREATE TABLE IF NOT EXISTS schema_migrations (
			version    INTEGER PRIMARY KEY,
			applied_at INTEGER NOT NULL
		) STRICT`); err != nil {
			return err
		}
		if err := checkSchemaVersion(ctx, tx, ms[len(ms)-1].version); err != nil {
			return err
		}
		applied := map[int]bool{}
		rows, err := tx.QueryContext(ctx, `SELECT version FROM schema_migrations`)
		if err != nil {
			return err
		}
		for rows.Next() {
			var v int
			if err := rows.Scan(&v); err != nil {
				rows.Close()
				return err
			}
			applied[v] = true
		}
		if err := cmp.Or(rows.Err(), rows.Close()); err != nil {
			return err
		}
		for _, m := range ms {
			if applied[m.version] {
				continue
			}
			body, err := migrationFiles.ReadFile(m.name)
			if err != nil {
				return err
			}
			if _, err := tx.ExecContext(ctx, string(body)); err != nil {
				return fmt.Errorf("migration %s: %w", filepath.Base(m.name), err)
			}
			if _, err := tx.ExecContext(ctx, `INSERT INTO schema_migrations (version, applied_at) VALUES (?, ?)`,
				m.version, time.Now().UnixMilli()); err != nil {
				return err
			}
		}
		return nil
	})
	if err != nil {
		return fmt.Errorf("sqlite: migrate: %w", err)
	}
	return nil
}

// Ping checks that the file answers a query.
func (s *Store) Ping(ctx context.Context) error {
	if s.observe != nil { // timed too: it runs no transaction, but is the readiness probe
		defer s.observed("Ping", time.Now())
	}
	var one int
	return dbErr(ctx, s.db.QueryRowContext(ctx, `SELECT 1`).Scan(&one))
}

// Close closes every connection. Each acknowledged write was already fsynced at
// its commit (synchronous=FULL), so nothing is left to flush.
func (s *Store) Close() error {
	s.closeOnce.Do(func() { close(s.closing) })
	<-s.idleDone
	s.stmtMu.Lock()
	for _, st := range s.stmts {
		st.Close()
	}
	s.stmts = map[string]*sql.Stmt{}
	s.stmtMu.Unlock()
	return dbErr(context.Background(), s.db.Close())
}

// stmt returns the statement q bound to tx. The statement is prepared once per
// pooled connection and kept (database/sql remembers on which connections a
// *sql.Stmt is prepared), so the hot statements of WriteRecords are not parsed
// again for every batch.
func (s *Store) stmt(ctx context.Context, tx *sql.Tx, q string) (*sql.Stmt, error) {
	s.stmtMu.Lock()
	st, ok := s.stmts[q]
	if !ok {
		var err error
		if st, err = s.db.PrepareContext(ctx, q); err != nil {
			s.stmtMu.Unlock()
			return nil, err
		}
		s.stmts[q] = st
	}
	s.stmtMu.Unlock()
	return tx.StmtContext(ctx, st), nil
}

// Backup writes a consistent copy of the whole database to dst (which must not
// exist yet) while the store keeps serving: VACUUM INTO reads one snapshot, so
// concurrent writers are neither blocked nor half-copied.
func (s *Store) Backup(ctx context.Context, dst string) error {
	if err := os.MkdirAll(filepath.Dir(dst), 0o700); err != nil {
		return fmt.Errorf("sqlite: backup: %w", err)
	}
	if _, err := s.db.ExecContext(ctx, `VACUUM INTO ?`, dst); err != nil {
		return fmt.Errorf("sqlite: backup: %w", dbErr(ctx, err))
	}
	return nil
}

// write runs fn in a BEGIN IMMEDIATE transaction and commits it. The write lock is
// taken before fn reads anything, so what fn reads cannot change before it
// commits: every read-check-write in fn is atomic, also against other processes.
func (s *Store) write(ctx context.Context, fn func(tx *sql.Tx) error) error {
	if s.observe != nil {
		defer s.observed(opName(), time.Now())
	}
	select {
	case s.writeGate <- struct{}{}:
	case <-ctx.Done():
		return ctxErr(ctx.Err())
	}
	defer func() { <-s.writeGate }()
	tx, err := s.db.BeginTx(ctx, nil)
	if err != nil {
		return dbErr(ctx, err)
	}
	if err := fn(tx); err != nil {
		tx.Rollback()
		return dbErr(ctx, err)
	}
	if err := tx.Commit(); err != nil {
		return dbErr(ctx, err)
	}
	s.poke()
	return nil
}

// read runs fn in a deferred transaction: all its queries see one snapshot.
func (s *Store) read(ctx context.Context, fn func(tx *sql.Tx) error) error {
	if s.observe != nil {
		defer s.observed(opName(), time.Now())
	}
	tx, err := s.db.BeginTx(ctx, &sql.TxOptions{ReadOnly: true})
	if err != nil {
		return dbErr(ctx, err)
	}
	defer tx.Rollback()
	return dbErr(ctx, fn(tx))
}

// dbErr is the one place where driver errors become domain sentinels. Errors that
// already are sentinels (or were translated before) pass through unchanged.
func dbErr(ctx context.Context, err error) error {
	if err == nil {
		return nil
	}
	if errors.Is(err, domain.ErrNotFound) || errors.Is(err, domain.ErrExists) ||
		errors.Is(err, domain.ErrStale) || errors.Is(err, domain.ErrUnavailable) {
		return err
	}
	if errors.Is(err, sql.ErrNoRows) {
		return domain.ErrNotFound
	}
	// A cancelled or timed-out request shows up as an interrupted statement.
	if err := ctx.Err(); err != nil {
		return ctxErr(err)
	}
	if errors.Is(err, context.Canceled) || errors.Is(err, context.DeadlineExceeded) {
		return ctxErr(err)
	}
	var se *sqlite.Error
	if errors.As(err, &se) {
		code := se.Code()
		switch {
		case code == sqlite3.SQLITE_CONSTRAINT_UNIQUE || code == sqlite3.SQLITE_CONSTRAINT_PRIMARYKEY:
			return domain.ErrExists
		case code&0xff == sqlite3.SQLITE_BUSY || code&0xff == sqlite3.SQLITE_LOCKED:
			// The driver's text, not the driver error: callers see only the sentinel.
			return fmt.Errorf("sqlite: %w: %s", domain.ErrUnavailable, se.Error())
		case code&0xff == sqlite3.SQLITE_FULL:
			return errFull(se.Error())
		case code&0xff == sqlite3.SQLITE_IOERR || code&0xff == sqlite3.SQLITE_CANTOPEN || code&0xff == sqlite3.SQLITE_PROTOCOL:
			// The disk failed or is full: the write was not acknowledged, and
			// the client may retry later.
			return fmt.Errorf("sqlite: %w: %s", domain.ErrUnavailable, se.Error())
		}
		return fmt.Errorf("sqlite: %s", se.Error())
	}
	if errors.Is(err, sql.ErrConnDone) || strings.Contains(err.Error(), "database is closed") {
		return fmt.Errorf("sqlite: %w: %s", domain.ErrUnavailable, err.Error())
	}
	return fmt.Errorf("sqlite: %w", err)
}

// errFull is the answer to a write that did not fit (the disk or the file
// system's quota is full: SQLite rolled the transaction back, and the file is
// as it was before it). It is ErrUnavailable (retry later, nothing was
// acknowledged) with a code of its own, api.CodeStoreFull, so that neither the
// tablet's user nor the operator reading the log mistakes it for a database
// that does not answer.
func errFull(detail string) error {
	return &domain.Error{Kind: domain.KindUnavailable, Code: "store_full",
		Title:      "The server's disk is full: nothing of this request was saved; try again later",
		RetryAfter: time.Minute,
		Err:        fmt.Errorf("sqlite: %w: %s", domain.ErrUnavailable, detail)}
}

// ctxErr passes a cancellation on (the caller went away) but reports a deadline
// that passed while waiting for the store as ErrUnavailable: the store did not
// answer in time, and the client may retry.
func ctxErr(err error) error {
	if errors.Is(err, context.DeadlineExceeded) {
		return fmt.Errorf("sqlite: %w: %w", domain.ErrUnavailable, err)
	}
	return err
}

// ms encodes a time as Unix milliseconds, and the zero time as NULL so it reads
// back as the zero time.
func ms(t time.Time) any {
	if t.IsZero() {
		return nil
	}
	return t.UnixMilli()
}

// msPtr encodes an optional time.
func msPtr(t *time.Time) any {
	if t == nil {
		return nil
	}
	return t.UnixMilli()
}

// fromMS decodes what ms stored.
func fromMS(v sql.NullInt64) time.Time {
	if !v.Valid {
		return time.Time{}
	}
	return time.UnixMilli(v.Int64).UTC()
}

// fromMSPtr decodes what msPtr stored.
func fromMSPtr(v sql.NullInt64) *time.Time {
	if !v.Valid {
		return nil
	}
	t := time.UnixMilli(v.Int64).UTC()
	return &t
}

// rawText stores a JSON document as TEXT, NULL when absent.
func rawText(b json.RawMessage) any {
	if len(b) == 0 {
		return nil
	}
	return string(b)
}

// fromRawText decodes what rawText stored.
func fromRawText(v sql.NullString) json.RawMessage {
	if !v.Valid {
		return nil
	}
	return json.RawMessage(v.String)
}

// jsonText encodes a Go value as JSON TEXT; empty slices and maps become NULL.
func jsonText[T any](v []T) (any, error) {
	if len(v) == 0 {
		return nil, nil
	}
	b, err := json.Marshal(v)
	if err != nil {
		return nil, err
	}
	return string(b), nil
}

// fromJSONText decodes what jsonText stored.
func fromJSONText[T any](v sql.NullString) ([]T, error) {
	if !v.Valid || v.String == "" {
		return nil, nil
	}
	var out []T
	if err := json.Unmarshal([]byte(v.String), &out); err != nil {
		return nil, fmt.Errorf("sqlite: decode stored JSON: %w", err)
	}
	return out, nil
}

// mapText encodes a string map as JSON TEXT, NULL when empty.
func mapText(m map[string]string) (any, error) {
	if len(m) == 0 {
		return nil, nil
	}
	b, err := json.Marshal(m)
	if err != nil {
		return nil, err
	}
	return string(b), nil
}

// fromMapText decodes what mapText stored.
func fromMapText(v sql.NullString) (map[string]string, error) {
	if !v.Valid || v.String == "" {
		return nil, nil
	}
	var m map[string]string
	if err := json.Unmarshal([]byte(v.String), &m); err != nil {
		return nil, fmt.Errorf("sqlite: decode stored JSON: %w", err)
	}
	return m, nil
}

// placeholders returns "?, ?, ?" for n parameters.
func placeholders(n int) string {
	if n <= 0 {
		return ""
	}
	return strings.Repeat("?, ", n-1) + "?"
}

// affected returns ErrNotFound when an UPDATE or DELETE matched no row.
func affected(res sql.Result) error {
	n, err := res.RowsAffected()
	if err != nil {
		return err
	}
	if n == 0 {
		return domain.ErrNotFound
	}
	return nil
}

// scanner is *sql.Row or *sql.Rows.
type scanner interface {
	Scan(dest ...any) error
}
