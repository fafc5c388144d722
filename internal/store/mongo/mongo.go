package mongo

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"log/slog"
	"reflect"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"go.mongodb.org/mongo-driver/v2/bson"
	"go.mongodb.org/mongo-driver/v2/event"
	mongodrv "go.mongodb.org/mongo-driver/v2/mongo"
	"go.mongodb.org/mongo-driver/v2/mongo/options"
	"go.mongodb.org/mongo-driver/v2/mongo/readconcern"
	"go.mongodb.org/mongo-driver/v2/mongo/readpref"
	"go.mongodb.org/mongo-driver/v2/mongo/writeconcern"
	"go.mongodb.org/mongo-driver/v2/x/mongo/driver/connstring"
	"go.mongodb.org/mongo-driver/v2/x/mongo/driver/topology"

	"github.com/fieldsync/fieldsync/internal/domain"
)

var _ domain.Store = (*Store)(nil)

// Defaults of the Config durations.
const (
	// DefaultVoidGrace is Config.VoidGrace when unset: far longer than a write
	// takes, short enough that a crashed writer stalls readers only briefly.
	DefaultVoidGrace = 2 * time.Second
	// DefaultPendingGrace is Config.PendingGrace when unset.
	DefaultPendingGrace = 30 * time.Second
	// DefaultSweepInterval is Config.SweepInterval when unset.
	DefaultSweepInterval = 30 * time.Second
)

// DefaultDatabase is the database used when neither Config.Database nor the URI
// names one.
const DefaultDatabase = "fieldsync"

// Config configures a Store.
type Config struct {
	// URI is a mongodb:// or mongodb+srv:// connection string.
	URI string
	// Database defaults to the URI's database, then to DefaultDatabase.
	Database string
	// Logger receives warnings (voided positions, repaired writes); nil means
	// slog.Default().
	Logger *slog.Logger
	// VoidGrace is how long a reader waits, on its own clock, for a feed position
	// that was allocated but not written before it voids the position (see the
	// package comment). It bounds how long a crashed writer can stall readers.
	// Zero means DefaultVoidGrace.
	VoidGrace time.Duration
	// PendingGrace is how long a record may stay marked pending (written, its feed
	// entry not yet appended) before the sweep appends the entry for it. It must
	// be longer than a normal write takes, or the feed gets redundant entries.
	// Zero means DefaultPendingGrace.
	PendingGrace time.Duration
	// SweepInterval is how often the background sweep looks for pending records.
	// Zero means DefaultSweepInterval.
	SweepInterval time.Duration
	// Observe, when set, is called after every command the driver sends, with
	// the command and its collection (such as "findAndModify records") and the
	// time until the answer came. It must be quick and safe for concurrent use;
	// the server feeds its store-operation histogram from it. The driver's
	// command monitor reports it (see commandMonitor), so the store's methods
	// need no code of their own for it.
	Observe func(op string, took time.Duration)
}

// Store is the MongoDB implementation of domain.Store. It is safe for concurrent
// use, and any number of Store values, in any number of processes, may share one
// database.
type Store struct {
	client *mongodrv.Client
	db     *mongodrv.Database
	log    *slog.Logger
	cfg    Config

	users, projects, memberships        *mongodrv.Collection
	devices, enrollments                *mongodrv.Collection
	families, tokens, spends            *mongodrv.Collection
	keys, settings, forms, versions     *mongodrv.Collection
	records, revisions, changes, counts *mongodrv.Collection
	quarantine, audit                   *mongodrv.Collection
	reviews                             *mongodrv.Collection // record review threads (review.go)
	att                                 attachmentColls      // attachment.go
	instances                           *mongodrv.Collection // the OpenRosa bridge's submissions

	// lastTick makes tick strictly increasing within this Store.
	lastTick atomic.Int64

	// afterPositions, when set (by tests only), runs in Changes between reading
	// positions and reading their records: the window another writer may use.
	afterPositions func()
	// afterApply, when set (by tests only), runs in WriteRecords between
	// applying the records (step b) and appending their changes (step c); an
	// error stops the write there, as a writer that dies in between.
	afterApply func() error
	// feedCounts count documents the feed reads and removes (for tests).
	feedCounts

	kick      chan struct{} // asks the sweeper for an early pass
	stop      context.CancelFunc
	done      chan struct{}
	closeOnce sync.Once
	closeErr  error
}

// Open connects to MongoDB, checks that it answers, creates the indexes (an
// existing index is left alone), repairs interrupted writes (see the package
// comment) and starts the background sweep, which Close stops.
func Open(ctx context.Context, cfg Config) (*Store, error) {
	return open(ctx, cfg, nil)
}

// open is Open with an optional command monitor (for tests).
func open(ctx context.Context, cfg Config, monitor *event.CommandMonitor) (*Store, error) {
	if cfg.URI == "" {
		return nil, errors.New("mongo: empty URI")
	}
	cs, err := connstring.ParseAndValidate(cfg.URI)
	if err != nil {
		// The parser's message may quote the URI, credentials included.
		return nil, errors.New("mongo: invalid connection URI")
	}
	if cfg.Database == "" {
		cfg.Database = cs.Database
	}
	if cfg.Database == "" {
		cfg.Database = DefaultDatabase
	}
	if cfg.Logger == nil {
		cfg.Logger = slog.Default()
	}
	if cfg.VoidGrace <= 0 {
		cfg.VoidGrace = DefaultVoidGrace
	}
	if cfg.PendingGrace <= 0 {
		cfg.PendingGrace = DefaultPendingGrace
	}
	if cfg.SweepInterval <= 0 {
		cfg.SweepInterval = DefaultSweepInterval
	}

	// Majority with journaling: an acknowledged write is on disk on a majority of
	// the replica set, so no failover can roll it back. Majority reads: nothing
	// read (in particular no feed entry a reader moves its cursor past) can be
	// rolled back either.
	wc := writeconcern.Majority()
	journal := true
	wc.Journal = &journal
	opts := options.Client().ApplyURI(cfg.URI).
		SetWriteConcern(wc).
		SetReadConcern(readconcern.Majority()).
		SetReadPreference(readpref.Primary()).
		SetAppName("fieldsync")
	if cfg.Observe != nil {
		monitor = joinMonitors(commandMonitor(cfg.Observe), monitor)
	}
	if monitor != nil {
		opts.SetMonitor(monitor)
	}
	client, err := mongodrv.Connect(opts)
	if err != nil {
		return nil, fmt.Errorf("mongo: connect: %w", translate(err))
	}
	s := &Store{
		client: client,
		db:     client.Database(cfg.Database),
		log:    cfg.Logger,
		cfg:    cfg,
		kick:   make(chan struct{}, 1),
		done:   make(chan struct{}),
	}
	for _, c := range []struct {
		coll **mongodrv.Collection
		name string
	}{
		{&s.users, "users"}, {&s.projects, "projects"}, {&s.memberships, "memberships"},
		{&s.devices, "devices"}, {&s.enrollments, "device_enrollments"},
		{&s.families, "token_families"}, {&s.tokens, "refresh_tokens"}, {&s.spends, "refresh_token_spends"},
		{&s.keys, "signing_keys"}, {&s.settings, "settings"},
		{&s.forms, "forms"}, {&s.versions, "form_versions"},
		{&s.records, "records"}, {&s.revisions, "revisions"}, {&s.changes, "changes"}, {&s.counts, "counters"},
		{&s.quarantine, "quarantine"}, {&s.audit, "audit"},
		{&s.reviews, "record_reviews"},
		{&s.instances, "openrosa_instances"},
	} {
		*c.coll = s.db.Collection(c.name)
	}
	s.att = newAttachmentColls(s.db)
	fail := func(err error) (*Store, error) {
		dctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		_ = client.Disconnect(dctx)
		return nil, err
	}
	if err := client.Ping(ctx, readpref.Primary()); err != nil {
		return fail(fmt.Errorf("mongo: ping: %w", translate(err)))
	}
	if err := s.checkSchemaVersion(ctx); err != nil {
		return fail(err)
	}
	if err := s.ensureIndexes(ctx); err != nil {
		return fail(err)
	}
	if err := s.upgradeWriteProtocol(ctx); err != nil {
		return fail(fmt.Errorf("mongo: upgrade the write protocol: %w", err))
	}
	if err := s.recordSchemaVersion(ctx); err != nil {
		return fail(fmt.Errorf("mongo: record the schema version: %w", err))
	}
	if err := s.sweep(ctx); err != nil {
		return fail(fmt.Errorf("mongo: sweep: %w", err))
	}
	sweepCtx, stop := context.WithCancel(context.Background())
	s.stop = stop
	go s.sweeper(sweepCtx)
	return s, nil
}

// Ping checks that the primary answers.
func (s *Store) Ping(ctx context.Context) error {
	return translate(s.client.Ping(ctx, readpref.Primary()))
}

// Close stops the sweep and disconnects. Every acknowledged write was already
// acknowledged by a majority with journaling, so nothing is left to flush. Close
// may be called more than once.
func (s *Store) Close() error {
	s.closeOnce.Do(func() {
		s.stop()
		<-s.done
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		defer cancel()
		s.closeErr = translate(s.client.Disconnect(ctx))
	})
	return s.closeErr
}

// index is one index of one collection.
type index struct {
	coll   *mongodrv.Collection
	name   string
	keys   bson.D
	unique bool
	sparse bool
}

// ensureIndexes creates every index the store relies on. createIndexes is a no-op
// for an index that exists with the same name and spec, so every instance runs it
// at start-up; a conflicting existing index (same name, other spec) fails Open
// rather than being dropped behind an operator's back.
func (s *Store) ensureIndexes(ctx context.Context) error {
	all := []index{
		{coll: s.memberships, name: "by_user", keys: bson.D{{Key: "username", Value: 1}, {Key: "project_id", Value: 1}}},
		{coll: s.devices, name: "enrollment_hash", keys: bson.D{{Key: "enrollment_hash", Value: 1}}, unique: true, sparse: true},
		{coll: s.devices, name: "openrosa_key_hash", keys: bson.D{{Key: "openrosa_key_hash", Value: 1}}, unique: true, sparse: true},
		{coll: s.devices, name: "by_project", keys: bson.D{{Key: "project_id", Value: 1}, {Key: "created_at", Value: 1}}},
		{coll: s.families, name: "by_subject", keys: bson.D{{Key: "subject", Value: 1}}},
		{coll: s.tokens, name: "by_family", keys: bson.D{{Key: "family_id", Value: 1}}},
		{coll: s.tokens, name: "by_parent", keys: bson.D{{Key: "parent", Value: 1}}, unique: true, sparse: true},
		{coll: s.keys, name: "by_created", keys: bson.D{{Key: "created_at", Value: -1}}},
		{coll: s.forms, name: "by_project", keys: bson.D{{Key: "project_id", Value: 1}, {Key: "form_id", Value: 1}}},
		{coll: s.versions, name: "by_form", keys: bson.D{{Key: "project_id", Value: 1}, {Key: "form_id", Value: 1}, {Key: "created_at", Value: 1}}},
		// One form's records in receive order: the datasets' QueryRecords (dataset.go).
		// It also serves every query by (project_id, form_id), its prefix: the
		// records index by_form of earlier releases only doubled that part
		// (issue 16), and is no longer made (a store keeps one it has).
		{coll: s.records, name: "by_form_created", keys: bson.D{{Key: "project_id", Value: 1}, {Key: "form_id", Value: 1}, {Key: "created_at", Value: 1}, {Key: "record_id", Value: 1}}},
		{coll: s.records, name: "pending", keys: bson.D{{Key: "pending_at", Value: 1}}, sparse: true},
		{coll: s.revisions, name: "by_record", keys: bson.D{{Key: "project_id", Value: 1}, {Key: "record_id", Value: 1}, {Key: "created_at", Value: 1}}},
		{coll: s.changes, name: "position", keys: bson.D{{Key: "project_id", Value: 1}, {Key: "seq", Value: 1}}, unique: true},
		// A tablet's page and a form's page: index ranges (see Changes).
		{coll: s.changes, name: "by_subject", keys: bson.D{{Key: "project_id", Value: 1}, {Key: "subjects", Value: 1}, {Key: "seq", Value: 1}}},
		{coll: s.changes, name: "by_form", keys: bson.D{{Key: "project_id", Value: 1}, {Key: "form_id", Value: 1}, {Key: "seq", Value: 1}}},
		{coll: s.quarantine, name: "by_first_seen", keys: bson.D{{Key: "project_id", Value: 1}, {Key: "first_seen", Value: 1}, {Key: "item_id", Value: 1}}},
		{coll: s.quarantine, name: "by_record", keys: bson.D{{Key: "project_id", Value: 1}, {Key: "record_id", Value: 1}}},
		// The listing filtered by form (?form=), in its order, as SQLite's quarantine_form.
		{coll: s.quarantine, name: "by_form", keys: bson.D{{Key: "project_id", Value: 1}, {Key: "form_id", Value: 1}, {Key: "first_seen", Value: 1}, {Key: "item_id", Value: 1}}},
		{coll: s.audit, name: "by_type", keys: bson.D{{Key: "type", Value: 1}, {Key: "_id", Value: -1}}},
		{coll: s.audit, name: "by_actor", keys: bson.D{{Key: "actor", Value: 1}, {Key: "_id", Value: -1}}},
		{coll: s.audit, name: "by_project", keys: bson.D{{Key: "project_id", Value: 1}, {Key: "_id", Value: -1}}},
		{coll: s.audit, name: "by_time", keys: bson.D{{Key: "time", Value: 1}}},
		// A record's review thread, in order (ListReviews).
		{coll: s.reviews, name: "by_record", keys: bson.D{{Key: "project_id", Value: 1}, {Key: "record_id", Value: 1}, {Key: "_id", Value: 1}}},
	}
	all = append(all, s.attachmentIndexes()...)
	// One index per createIndexes command: FerretDB v1 panics on a command that
	// lists more than one index that already exists (it deletes from the list it
	// ranges over), which is every start-up after the first.
	for _, ix := range all {
		o := options.Index().SetName(ix.name)
		if ix.unique {
			o.SetUnique(true)
		}
		if ix.sparse {
			o.SetSparse(true)
		}
		if _, err := ix.coll.Indexes().CreateOne(ctx, mongodrv.IndexModel{Keys: ix.keys, Options: o}); err != nil {
			return fmt.Errorf("mongo: create index %s.%s: %w", ix.coll.Name(), ix.name, translate(err))
		}
	}
	return nil
}

// Server error codes that mean "this node cannot serve the operation now"
// (stepdown, shutdown, network trouble seen by a mongos): the operation was not
// acknowledged and may be retried.
var unavailableCodes = map[int]bool{
	6: true, 7: true, 50: true, 89: true, 91: true, 189: true, 262: true, 9001: true,
	10107: true, 11600: true, 11602: true, 13435: true, 13436: true,
	64: true, // WriteConcernFailed: not acknowledged by a majority (wtimeout)
}

// translate is the one place where driver errors become domain sentinels. Errors
// that already are sentinels pass through. Nothing of the driver's error types
// leaves: unexpected failures keep only their text, for the log.
func translate(err error) error {
	if err == nil {
		return nil
	}
	for _, sentinel := range []error{domain.ErrNotFound, domain.ErrExists, domain.ErrStale, domain.ErrUnavailable} {
		if errors.Is(err, sentinel) {
			return err
		}
	}
	if errors.Is(err, mongodrv.ErrNoDocuments) {
		return domain.ErrNotFound
	}
	if mongodrv.IsDuplicateKeyError(err) {
		return domain.ErrExists
	}
	if errors.Is(err, context.Canceled) || errors.Is(err, context.DeadlineExceeded) {
		// Keep the context error matchable: the caller gave up, or ran out of time.
		ctxErr := context.Canceled
		if errors.Is(err, context.DeadlineExceeded) {
			ctxErr = context.DeadlineExceeded
		}
		return fmt.Errorf("mongo: %w: %w", domain.ErrUnavailable, ctxErr)
	}
	if unavailable(err) {
		return fmt.Errorf("mongo: %w: %s", domain.ErrUnavailable, err.Error())
	}
	return fmt.Errorf("mongo: %s", err.Error())
}

// unavailable reports whether err says the server could not be reached or could
// not serve the operation now.
func unavailable(err error) bool {
	if mongodrv.IsNetworkError(err) || mongodrv.IsTimeout(err) || errors.Is(err, mongodrv.ErrClientDisconnected) {
		return true
	}
	var sse topology.ServerSelectionError
	if errors.As(err, &sse) {
		return true
	}
	var le mongodrv.LabeledError
	if errors.As(err, &le) && (le.HasErrorLabel("RetryableWriteError") || le.HasErrorLabel("TransientTransactionError")) {
		return true
	}
	var se mongodrv.ServerError
	if errors.As(err, &se) {
		for code := range unavailableCodes {
			if se.HasErrorCode(code) {
				return true
			}
		}
	}
	return false
}

// isDup reports whether err is a duplicate-key error, before translation.
func isDup(err error) bool { return err != nil && mongodrv.IsDuplicateKeyError(err) }

// dupIndexes returns the indexes (into the inserted slice) of the documents an
// unordered InsertMany refused as duplicates, and whether err holds nothing else.
func dupIndexes(err error) (idx []int, onlyDups bool) {
	var bwe mongodrv.BulkWriteException
	if !errors.As(err, &bwe) || bwe.WriteConcernError != nil {
		return nil, false
	}
	for _, we := range bwe.WriteErrors {
		if we.Code != 11000 && we.Code != 11001 {
			return nil, false
		}
		idx = append(idx, we.Index)
	}
	return idx, len(idx) > 0
}

// tick returns a nanosecond timestamp that is strictly larger than any this Store
// returned before, even if the wall clock stepped back. It orders things stored
// by one instance (audit IDs, ties in creation order).
func (s *Store) tick() int64 {
	for {
		last := s.lastTick.Load()
		n := time.Now().UnixNano()
		if n <= last {
			n = last + 1
		}
		if s.lastTick.CompareAndSwap(last, n) {
			return n
		}
	}
}

// randomHex returns n random bytes in hex.
func randomHex(n int) string {
	b := make([]byte, n)
	_, _ = rand.Read(b) // crypto/rand.Read never fails (Go 1.24+)
	return hex.EncodeToString(b)
}

// key joins the parts of a composite _id. Project, form and version ids cannot
// contain '/', so the joined key is unambiguous, and a key's prefix is its
// project: documents of one project sort together.
func key(parts ...string) string { return strings.Join(parts, "/") }

// setUnset builds an update that makes the stored document equal doc (a struct
// with bson tags) in every field doc's type declares, except _id and skip: fields
// present in doc's encoding are $set, fields omitted (omitempty) are $unset. A
// plain $set of the struct would leave stale values where the new value is empty.
func setUnset(doc any, skip ...string) (bson.D, error) {
	raw, err := bson.Marshal(doc)
	if err != nil {
		return nil, fmt.Errorf("mongo: encode update: %w", err)
	}
	elems, err := bson.Raw(raw).Elements()
	if err != nil {
		return nil, fmt.Errorf("mongo: encode update: %w", err)
	}
	skipped := func(k string) bool {
		if k == "_id" {
			return true
		}
		for _, s := range skip {
			if s == k {
				return true
			}
		}
		return false
	}
	set := bson.D{}
	present := map[string]bool{}
	for _, e := range elems {
		present[e.Key()] = true
		if !skipped(e.Key()) {
			set = append(set, bson.E{Key: e.Key(), Value: e.Value()})
		}
	}
	unset := bson.D{}
	for _, name := range fieldNames(reflect.TypeOf(doc)) {
		if !present[name] && !skipped(name) {
			unset = append(unset, bson.E{Key: name, Value: ""})
		}
	}
	update := bson.D{}
	if len(set) > 0 {
		update = append(update, bson.E{Key: "$set", Value: set})
	}
	if len(unset) > 0 {
		update = append(update, bson.E{Key: "$unset", Value: unset})
	}
	return update, nil
}

var fieldNameCache sync.Map // reflect.Type → []string

// fieldNames returns the bson field names a struct type declares.
func fieldNames(t reflect.Type) []string {
	for t.Kind() == reflect.Pointer {
		t = t.Elem()
	}
	if v, ok := fieldNameCache.Load(t); ok {
		return v.([]string)
	}
	var names []string
	for i := 0; i < t.NumField(); i++ {
		f := t.Field(i)
		if !f.IsExported() {
			continue
		}
		name, _, _ := strings.Cut(f.Tag.Get("bson"), ",")
		if name == "-" {
			continue
		}
		if name == "" {
			name = strings.ToLower(f.Name)
		}
		names = append(names, name)
	}
	fieldNameCache.Store(t, names)
	return names
}

// timePtr stores an optional time: nil for the zero time, so the field is
// omitted and reads back as the zero time.
func timePtr(t time.Time) *time.Time {
	if t.IsZero() {
		return nil
	}
	u := t.UTC()
	return &u
}

// timeVal reads what timePtr stored.
func timeVal(t *time.Time) time.Time {
	if t == nil {
		return time.Time{}
	}
	return t.UTC()
}

// utcPtr normalises an optional time to UTC.
func utcPtr(t *time.Time) *time.Time {
	if t == nil {
		return nil
	}
	u := t.UTC()
	return &u
}

// ms truncates t to what a BSON date keeps, so values returned by a write equal
// the values read back later.
func ms(t time.Time) time.Time { return time.UnixMilli(t.UnixMilli()).UTC() }

// kv is one entry of a string map whose keys cannot be BSON field names.
type kv struct {
	K string `bson:"k"`
	V string `bson:"v"`
}

// encodeMap stores a string map as a subdocument when every key is a safe field
// name (the common case, and what an analyst wants to query), else as a list of
// pairs. An empty map is stored as nothing and reads back as nil.
func encodeMap(m map[string]string) (doc map[string]string, pairs []kv) {
	if len(m) == 0 {
		return nil, nil
	}
	for k := range m {
		if !safeKey(k) {
			for k, v := range m {
				pairs = append(pairs, kv{K: k, V: v})
			}
			return nil, pairs
		}
	}
	return m, nil
}

// decodeMap reads what encodeMap stored.
func decodeMap(doc map[string]string, pairs []kv) map[string]string {
	if len(doc) == 0 && len(pairs) == 0 {
		return nil
	}
	out := make(map[string]string, len(doc)+len(pairs))
	for k, v := range doc {
		out[k] = v
	}
	for _, p := range pairs {
		out[p.K] = p.V
	}
	return out
}

// findAll runs a query and decodes every document into T.
func findAll[T any](ctx context.Context, c *mongodrv.Collection, filter any, opts ...options.Lister[options.FindOptions]) ([]T, error) {
	cur, err := c.Find(ctx, filter, opts...)
	if err != nil {
		return nil, translate(err)
	}
	var out []T
	if err := cur.All(ctx, &out); err != nil {
		return nil, translate(err)
	}
	return out, nil
}

// findOne decodes the document filter matches into T; ErrNotFound when none.
func findOne[T any](ctx context.Context, c *mongodrv.Collection, filter any, opts ...options.Lister[options.FindOneOptions]) (T, error) {
	var out T
	if err := c.FindOne(ctx, filter, opts...).Decode(&out); err != nil {
		return out, translate(err)
	}
	return out, nil
}

// exists reports whether a document matches filter.
func exists(ctx context.Context, c *mongodrv.Collection, filter bson.D) (bool, error) {
	err := c.FindOne(ctx, filter, options.FindOne().SetProjection(bson.D{{Key: "_id", Value: 1}})).Err()
	if errors.Is(err, mongodrv.ErrNoDocuments) {
		return false, nil
	}
	if err != nil {
		return false, translate(err)
	}
	return true, nil
}

// upsertRetries bounds the retries of upserts that lost an insert race: two
// upserts of a missing document may both try to insert it, and the loser gets a
// duplicate-key error although its update would now apply to the winner's
// document.
const upsertRetries = 5

// retryUpsert runs op again while it fails with a duplicate key.
func retryUpsert(op func() error) error {
	var err error
	for range upsertRetries {
		if err = op(); !isDup(err) {
			return err
		}
	}
	return err
}
