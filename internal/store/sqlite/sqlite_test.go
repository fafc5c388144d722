package sqlite

import (
	"context"
	"database/sql"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"sync"
	"testing"
	"time"

	"github.com/google/uuid"

	"github.com/fieldsync/fieldsync/internal/domain"
	"github.com/fieldsync/fieldsync/internal/store/storetest"
)

// openTest opens a store on a real file in a temporary directory.
func openTest(tb testing.TB, path string) *Store {
	tb.Helper()
	s, err := Open(context.Background(), path)
	if err != nil {
		tb.Fatalf("Open: %v", err)
	}
	tb.Cleanup(func() {
		if err := s.Close(); err != nil {
			tb.Errorf("Close: %v", err)
		}
	})
	return s
}

// TestStore runs the conformance suite on a real file per test.
func TestStore(t *testing.T) {
	storetest.Run(t, func(t *testing.T) domain.Store {
		return openTest(t, filepath.Join(t.TempDir(), "fieldsync.db"))
	})
}

// TestTwoStoresOneFile runs the feed check with two Store values on one file, as
// two server processes would: each has its own connections, and only SQLite's
// file locks order their writes.
func TestTwoStoresOneFile(t *testing.T) {
	path := filepath.Join(t.TempDir(), "fieldsync.db")
	a, b := openTest(t, path), openTest(t, path)
	storetest.RunConcurrentFeed(t, a, b)
}

// TestTwoStoresInterleave alternates batches between two Stores on one file and
// checks that Seq is gap-free and increasing across both: each batch continues
// from the other's last position.
func TestTwoStoresInterleave(t *testing.T) {
	path := filepath.Join(t.TempDir(), "fieldsync.db")
	stores := []*Store{openTest(t, path), openTest(t, path)}
	ctx := t.Context()
	at := time.Date(2026, 3, 1, 8, 0, 0, 0, time.UTC)
	var want int64
	for i := range 10 {
		writes := []domain.RecordWrite{benchWrite("juba", 2*i, at), benchWrite("juba", 2*i+1, at)}
		results, err := stores[i%2].WriteRecords(ctx, writes)
		if err != nil {
			t.Fatal(err)
		}
		for j, w := range writes {
			if results[j] != nil {
				t.Fatal(results[j])
			}
			want++
			if w.Record.Seq != want {
				t.Fatalf("batch %d item %d: Seq %d, want %d", i, j, w.Record.Seq, want)
			}
		}
	}
	for i, st := range stores {
		var since int64
		n := 0
		for {
			page, err := st.Changes(ctx, domain.ChangesQuery{ProjectID: "juba", Since: since, Limit: 3})
			if err != nil {
				t.Fatal(err)
			}
			for _, r := range page.Records {
				n++
				if r.Seq != int64(n) {
					t.Fatalf("store %d: record %d of the feed at Seq %d", i, n, r.Seq)
				}
			}
			since = page.Next
			if !page.More {
				break
			}
		}
		if n != 20 {
			t.Errorf("store %d: feed holds %d records, want 20", i, n)
		}
	}
}

// TestOpenConcurrently opens new files from several goroutines at once, as
// server processes started together would: every Open succeeds (the losers of
// the race to create the file retry) and the migrations run once.
func TestOpenConcurrently(t *testing.T) {
	names, _ := migrationFiles.ReadDir("migrations")
	for round := range 20 {
		path := filepath.Join(t.TempDir(), "sub", "dir", "fieldsync.db")
		var wg sync.WaitGroup
		stores := make([]*Store, 4)
		errs := make([]error, 4)
		for i := range stores {
			wg.Add(1)
			go func() {
				defer wg.Done()
				stores[i], errs[i] = Open(t.Context(), path)
			}()
		}
		wg.Wait()
		for i, err := range errs {
			if err != nil {
				t.Fatalf("round %d: Open %d: %v", round, i, err)
			}
			defer stores[i].Close()
		}
		var n, versions int
		if err := stores[0].db.QueryRow(`SELECT count(*), count(DISTINCT version) FROM schema_migrations`).Scan(&n, &versions); err != nil {
			t.Fatal(err)
		}
		if n != len(names) || versions != len(names) {
			t.Fatalf("round %d: schema_migrations holds %d rows of %d versions, want %d", round, n, versions, len(names))
		}
	}
}

// TestOpenPaths checks that the file lands exactly where asked, for names that a
// URI would misread and for a relative path.
func TestOpenPaths(t *testing.T) {
	dir := t.TempDir()
	for _, name := range []string{"a b#1?x=y%20.db", filepath.Join("new dir", "fieldsync.db")} {
		path := filepath.Join(dir, name)
		s, err := Open(t.Context(), path)
		if err != nil {
			t.Fatalf("Open %q: %v", name, err)
		}
		s.Close()
		if _, err := os.Stat(path); err != nil {
			t.Errorf("Open %q: %v", name, err)
		}
	}
	t.Chdir(dir)
	s, err := Open(t.Context(), filepath.Join("data", "fieldsync.db"))
	if err != nil {
		t.Fatalf("Open of a relative path: %v", err)
	}
	s.Close()
	if _, err := os.Stat(filepath.Join(dir, "data", "fieldsync.db")); err != nil {
		t.Errorf("Open of a relative path: %v", err)
	}
}

// TestReopen checks that data survives Close and that Open on an existing file
// applies nothing twice.
func TestReopen(t *testing.T) {
	path := filepath.Join(t.TempDir(), "fieldsync.db")
	ctx := t.Context()
	s, err := Open(ctx, path)
	if err != nil {
		t.Fatal(err)
	}
	w := benchWrite("juba", 1, time.Now().UTC().Truncate(time.Millisecond))
	if _, err := s.WriteRecords(ctx, []domain.RecordWrite{w}); err != nil {
		t.Fatal(err)
	}
	if err := s.Close(); err != nil {
		t.Fatal(err)
	}
	s = openTest(t, path)
	r, err := s.GetRecord(ctx, "juba", w.Record.ID)
	if err != nil {
		t.Fatalf("GetRecord after reopening: %v", err)
	}
	if r.Rev != w.Record.Rev {
		t.Errorf("rev after reopening %q, want %q", r.Rev, w.Record.Rev)
	}
}

// TestPragmas checks the settings every pooled connection must carry.
func TestPragmas(t *testing.T) {
	s := openTest(t, filepath.Join(t.TempDir(), "fieldsync.db"))
	ctx := t.Context()
	// Hold several connections at once, so the check covers more than one.
	var conns []*sql.Conn
	for range 3 {
		c, err := s.db.Conn(ctx)
		if err != nil {
			t.Fatal(err)
		}
		conns = append(conns, c)
	}
	for i, c := range conns {
		for pragma, want := range map[string]string{
			"journal_mode": "wal", "synchronous": "2", "foreign_keys": "1", "busy_timeout": "10000",
		} {
			var got string
			if err := c.QueryRowContext(ctx, "PRAGMA "+pragma).Scan(&got); err != nil {
				t.Fatal(err)
			}
			if got != want {
				t.Errorf("connection %d: PRAGMA %s = %s, want %s", i, pragma, got, want)
			}
		}
		c.Close()
	}
}

// TestBackup copies a live store and opens the copy.
func TestBackup(t *testing.T) {
	dir := t.TempDir()
	s := openTest(t, filepath.Join(dir, "fieldsync.db"))
	ctx := t.Context()
	at := time.Now().UTC().Truncate(time.Millisecond)
	var writes []domain.RecordWrite
	for i := range 20 {
		writes = append(writes, benchWrite("juba", i, at))
	}
	if _, err := s.WriteRecords(ctx, writes); err != nil {
		t.Fatal(err)
	}
	dst := filepath.Join(dir, "backups", "copy.db")
	if err := s.Backup(ctx, dst); err != nil {
		t.Fatalf("Backup: %v", err)
	}
	if err := s.Backup(ctx, dst); err == nil {
		t.Error("Backup over an existing file succeeded")
	}
	c := openTest(t, dst)
	got, err := c.GetRecords(ctx, "juba", []string{writes[0].Record.ID, writes[19].Record.ID})
	if err != nil {
		t.Fatal(err)
	}
	if len(got) != 2 {
		t.Errorf("backup holds %d of 2 records", len(got))
	}
	revs, err := c.ListRevisions(ctx, "juba", writes[3].Record.ID)
	if err != nil || len(revs) != 1 {
		t.Errorf("backup: ListRevisions = %d revisions, %v", len(revs), err)
	}
	// New writes to the copy continue its feed.
	more := []domain.RecordWrite{benchWrite("juba", 99, at)}
	if _, err := c.WriteRecords(ctx, more); err != nil || more[0].Record.Seq != 21 {
		t.Errorf("write to the backup: Seq %d, %v; want 21", more[0].Record.Seq, err)
	}
}

// TestLockedIsUnavailable holds the write lock from another connection: a write
// whose deadline passes while it waits answers ErrUnavailable, and a driver busy
// error translates to it too.
func TestLockedIsUnavailable(t *testing.T) {
	path := filepath.Join(t.TempDir(), "fieldsync.db")
	s := openTest(t, path)
	other, err := sql.Open("sqlite", "file:"+path+"?_pragma=busy_timeout(0)")
	if err != nil {
		t.Fatal(err)
	}
	defer other.Close()
	ctx := t.Context()
	holder, err := other.Conn(ctx)
	if err != nil {
		t.Fatal(err)
	}
	defer holder.Close()
	if _, err := holder.ExecContext(ctx, "BEGIN IMMEDIATE"); err != nil {
		t.Fatal(err)
	}
	defer holder.ExecContext(context.Background(), "ROLLBACK")

	short, cancel := context.WithTimeout(ctx, 300*time.Millisecond)
	defer cancel()
	_, err = s.WriteRecords(short, []domain.RecordWrite{benchWrite("juba", 1, time.Now())})
	if !errors.Is(err, domain.ErrUnavailable) {
		t.Errorf("write while another process holds the lock: %v, want ErrUnavailable", err)
	}
	// Reads go on: WAL readers do not wait for the writer.
	if _, err := s.Changes(ctx, domain.ChangesQuery{ProjectID: "juba"}); err != nil {
		t.Errorf("read while another process holds the write lock: %v", err)
	}

	// The driver's SQLITE_BUSY, from a connection that does not wait.
	_, busy := other.ExecContext(ctx, "BEGIN IMMEDIATE")
	if busy == nil {
		t.Fatal("second BEGIN IMMEDIATE succeeded")
	}
	if err := dbErr(ctx, busy); !errors.Is(err, domain.ErrUnavailable) {
		t.Errorf("dbErr(%v) = %v, want ErrUnavailable", busy, err)
	}
}

// TestDriverErrorsTranslated checks dbErr on the other driver errors it maps.
func TestDriverErrorsTranslated(t *testing.T) {
	s := openTest(t, filepath.Join(t.TempDir(), "fieldsync.db"))
	ctx := t.Context()
	_, err := s.db.ExecContext(ctx, `INSERT INTO settings (key, value) VALUES ('k', 'v'), ('k', 'w')`)
	if err := dbErr(ctx, err); !errors.Is(err, domain.ErrExists) {
		t.Errorf("unique violation: %v, want ErrExists", err)
	}
	if err := dbErr(ctx, sql.ErrNoRows); !errors.Is(err, domain.ErrNotFound) {
		t.Errorf("sql.ErrNoRows: %v, want ErrNotFound", err)
	}
	_, err = s.db.ExecContext(ctx, `INSERT INTO no_such_table VALUES (1)`)
	if err := dbErr(ctx, err); err == nil || errors.Is(err, domain.ErrExists) || errors.Is(err, domain.ErrUnavailable) {
		t.Errorf("syntax error: %v, want an internal error", err)
	}
	closed := openTest(t, filepath.Join(t.TempDir(), "closed.db"))
	closed.db.Close()
	if err := closed.Ping(ctx); !errors.Is(err, domain.ErrUnavailable) {
		t.Errorf("Ping of a closed store: %v, want ErrUnavailable", err)
	}
}

// surveyData returns the answers of a realistic community-safety interview,
// about 600 bytes of JSON.
func surveyData(i int) json.RawMessage {
	d := map[string]any{
		"respondent": map[string]any{"age": 18 + i%60, "gender": []string{"female", "male", "other"}[i%3],
			"household_size": 1 + i%9, "displaced": i%4 == 0, "village": fmt.Sprintf("village-%03d", i%200)},
		"location":             map[string]any{"latitude": 4.85 + float64(i%1000)/1e4, "longitude": 31.58 + float64(i%777)/1e4, "accuracy": 8.5},
		"feels_safe_day":       []string{"very_safe", "safe", "unsafe", "very_unsafe"}[i%4],
		"feels_safe_night":     []string{"very_safe", "safe", "unsafe", "very_unsafe"}[(i+1)%4],
		"threats":              []string{"theft", "armed_groups", "gbv", "land_disputes"}[:1+i%4],
		"trusted_actors":       []string{"community_leaders", "police", "ngo", "religious_leaders"}[:1+i%3],
		"incident_last_month":  i%5 == 0,
		"incident_reported_to": "community_leaders",
		"comments":             "Respondent mentioned that the road to the market is unsafe after dark and that patrols are rare.",
		"interview_duration_s": 900 + i%600,
		"consent":              true,
	}
	b, err := json.Marshal(d)
	if err != nil {
		panic(err)
	}
	return b
}

// benchWrite makes the create of one realistic record with its first revision.
func benchWrite(project string, i int, at time.Time) domain.RecordWrite {
	id := uuid.NewString()
	rev := fmt.Sprintf("1-%064x", i)
	data := surveyData(i)
	device := fmt.Sprintf("dev-%02d", i%20)
	r := domain.Record{
		ProjectID: project, ID: id, FormID: "perception", FormVersion: "3", Rev: rev, Data: data,
		CreatedBy: domain.DeviceSubject(device), DeviceID: device, ClientModifiedAt: at, CreatedAt: at,
		UpdatedAt: at, ReviewState: domain.ReviewReceived,
	}
	return domain.RecordWrite{Record: r, Revisions: []domain.Revision{{
		ProjectID: project, RecordID: id, Rev: rev, Data: data, FormVersion: "3", ClientModifiedAt: at,
		CreatedBy: r.CreatedBy, DeviceID: device, CreatedAt: at,
	}}}
}

func openBench(b *testing.B) *Store {
	b.Helper()
	s, err := Open(context.Background(), filepath.Join(b.TempDir(), "fieldsync.db"))
	if err != nil {
		b.Fatal(err)
	}
	b.Cleanup(func() { s.Close() })
	return s
}

// BenchmarkWriteRecords pushes batches of 1000 creates of ~600-byte records, as a
// full push of a tablet's outbox would. It reports records/s (wall time) and
// records/cpu-s (the process's CPU time, which a busy neighbour disturbs less).
func BenchmarkWriteRecords(b *testing.B) {
	const batch = 1000
	s := openBench(b)
	ctx := context.Background()
	at := time.Now().UTC().Truncate(time.Millisecond)
	n := 0
	var cpu time.Duration
	for b.Loop() {
		b.StopTimer()
		writes := make([]domain.RecordWrite, batch)
		for i := range writes {
			writes[i] = benchWrite("bench", n, at)
			n++
		}
		c0 := processCPU()
		b.StartTimer()
		results, err := s.WriteRecords(ctx, writes)
		b.StopTimer()
		cpu += processCPU() - c0
		b.StartTimer()
		if err != nil {
			b.Fatal(err)
		}
		for _, r := range results {
			if r != nil {
				b.Fatal(r)
			}
		}
	}
	b.ReportMetric(float64(n)/b.Elapsed().Seconds(), "records/s")
	if cpu > 0 {
		b.ReportMetric(float64(n)/cpu.Seconds(), "records/cpu-s")
	}
}

// BenchmarkChanges pages through a 100k-record feed 1000 at a time, as an
// analyst's first pull would; it reports records/s and records/cpu-s.
func BenchmarkChanges(b *testing.B) {
	const total, batch = 100_000, 1000
	s := openBench(b)
	ctx := context.Background()
	at := time.Now().UTC().Truncate(time.Millisecond)
	for i := 0; i < total; i += batch {
		writes := make([]domain.RecordWrite, batch)
		for j := range writes {
			writes[j] = benchWrite("bench", i+j, at)
		}
		if _, err := s.WriteRecords(ctx, writes); err != nil {
			b.Fatal(err)
		}
	}
	read := 0
	c0 := processCPU()
	for b.Loop() {
		var since int64
		for {
			page, err := s.Changes(ctx, domain.ChangesQuery{ProjectID: "bench", Since: since, Limit: batch})
			if err != nil {
				b.Fatal(err)
			}
			read += len(page.Records)
			since = page.Next
			if !page.More {
				break
			}
		}
	}
	cpu := processCPU() - c0
	b.ReportMetric(float64(read)/b.Elapsed().Seconds(), "records/s")
	if cpu > 0 {
		b.ReportMetric(float64(read)/cpu.Seconds(), "records/cpu-s")
	}
}
