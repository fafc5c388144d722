package identity

import (
	"bytes"
	"context"
	"log/slog"
	"os"
	"path/filepath"
	"sync"
	"testing"
	"time"

	"github.com/fieldsync/fieldsync/internal/domain"
	"github.com/fieldsync/fieldsync/internal/store/mongo"
	"github.com/fieldsync/fieldsync/internal/store/mongo/mongotest"
	"github.com/fieldsync/fieldsync/internal/store/sqlite"
)

// fakeClock is a clock the tests move by hand, so nothing sleeps.
type fakeClock struct {
	mu sync.Mutex
	t  time.Time
}

func newFakeClock() *fakeClock {
	return &fakeClock{t: time.Date(2030, 1, 2, 3, 4, 5, 0, time.UTC)}
}

func (c *fakeClock) Now() time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.t
}

func (c *fakeClock) Advance(d time.Duration) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.t = c.t.Add(d)
}

// cheapParams keep argon2id fast under the race detector; the real parameters
// are tested by TestPasswordHashDefaults and measured by BenchmarkHashPassword.
var cheapParams = argonParams{memoryKiB: 64, time: 1, threads: 1, saltLen: 16, keyLen: 32}

const adminPassword = "admin-password-for-tests"

// syncBuffer is a log sink safe for concurrent writers.
type syncBuffer struct {
	mu  sync.Mutex
	buf bytes.Buffer
}

func (b *syncBuffer) Write(p []byte) (int, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.Write(p)
}

func (b *syncBuffer) String() string {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.String()
}

// TestMain stops the embedded MongoDB-protocol server the MongoDB runs start.
func TestMain(m *testing.M) { os.Exit(mongotest.RunMain(m)) }

// backend makes databases of one store kind for the tests.
type backend struct {
	name string
	// database makes a new, empty database and returns the function that opens
	// a handle on it, closed when the test ends: each handle is what one server
	// instance holds.
	database func(t testing.TB) func() domain.Store
}

// backends are both stores: every test of the service that touches the store
// runs on each. The MongoDB one is embedded FerretDB (see mongotest), slow with
// much data, so the tests keep theirs small.
var backends = []backend{
	{name: "sqlite", database: func(t testing.TB) func() domain.Store {
		path := filepath.Join(t.TempDir(), "fieldsync.db")
		return func() domain.Store {
			t.Helper()
			st, err := sqlite.Open(context.Background(), path)
			if err != nil {
				t.Fatalf("sqlite.Open: %v", err)
			}
			t.Cleanup(func() { st.Close() })
			return st
		}
	}},
	{name: "mongodb", database: func(t testing.TB) func() domain.Store {
		cfg := mongotest.Config(t)
		return func() domain.Store {
			t.Helper()
			ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
			defer cancel()
			st, err := mongo.Open(ctx, cfg)
			if err != nil {
				t.Fatalf("mongo.Open: %v", err)
			}
			t.Cleanup(func() { st.Close() })
			return st
		}
	}},
}

// eachStore runs f as one subtest per backend.
func eachStore(t *testing.T, f func(t *testing.T, be backend)) {
	t.Helper()
	for _, b := range backends {
		t.Run(b.name, func(t *testing.T) { f(t, b) })
	}
}

// env is one database with a first service instance on it, bootstrapped.
type env struct {
	t     testing.TB
	clock *fakeClock
	open  func() domain.Store // another handle on the database
	store domain.Store
	svc   *Service
	logs  *syncBuffer
	admin domain.Principal
}

// newEnv makes an empty database of b's kind, an instance on it, bootstraps
// it and logs admin in.
func newEnv(t testing.TB, b backend, opts ...func(*Config)) *env {
	t.Helper()
	e := bareEnv(t, b)
	e.store, e.svc = e.instance(opts...)
	if _, err := e.svc.Bootstrap(context.Background(), adminPassword); err != nil {
		t.Fatalf("Bootstrap: %v", err)
	}
	_, e.admin = e.login(e.svc, "admin", adminPassword)
	return e
}

// bareEnv is an env without an instance: not bootstrapped, nobody logged in.
func bareEnv(t testing.TB, b backend) *env {
	return &env{t: t, clock: newFakeClock(), open: b.database(t), logs: &syncBuffer{}}
}

// instance opens another store handle on the same database and a Service on
// it: another server instance sharing the store.
func (e *env) instance(opts ...func(*Config)) (domain.Store, *Service) {
	e.t.Helper()
	ctx := context.Background()
	st := e.open()
	p := cheapParams
	cfg := Config{
		Store:      st,
		Now:        e.clock.Now,
		Logger:     slog.New(slog.NewJSONHandler(e.logs, &slog.HandlerOptions{Level: slog.LevelDebug})),
		hashParams: &p,
	}
	for _, o := range opts {
		o(&cfg)
	}
	svc, err := New(ctx, cfg)
	if err != nil {
		e.t.Fatalf("New: %v", err)
	}
	return st, svc
}

// login logs in and authenticates the access token, on svc.
func (e *env) login(svc *Service, username, password string) (TokenPair, domain.Principal) {
	e.t.Helper()
	ctx := context.Background()
	pair, err := svc.Login(ctx, username, password, "192.0.2.1:5555")
	if err != nil {
		e.t.Fatalf("Login(%s): %v", username, err)
	}
	p, err := svc.Authenticate(ctx, pair.AccessToken)
	if err != nil {
		e.t.Fatalf("Authenticate(%s): %v", username, err)
	}
	return pair, p
}

// user creates a user and, when project != "", gives it role there.
func (e *env) user(name, project string, role domain.Role) (TokenPair, domain.Principal) {
	e.t.Helper()
	ctx := context.Background()
	pw := name + "-password-123"
	if _, err := e.svc.CreateUser(ctx, e.admin, name, pw, "User "+name); err != nil {
		e.t.Fatalf("CreateUser(%s): %v", name, err)
	}
	if project != "" {
		if _, err := e.svc.SetMember(ctx, e.admin, project, name, role); err != nil {
			e.t.Fatalf("SetMember(%s): %v", name, err)
		}
	}
	return e.login(e.svc, name, pw)
}

func (e *env) project(id string) {
	e.t.Helper()
	if _, err := e.svc.CreateProject(context.Background(), e.admin, id, "Project "+id); err != nil {
		e.t.Fatalf("CreateProject(%s): %v", id, err)
	}
}

// device creates and enrolls a device of project.
func (e *env) device(project string) (TokenPair, domain.Device, domain.Principal) {
	e.t.Helper()
	ctx := context.Background()
	_, code, err := e.svc.CreateDevice(ctx, e.admin, project, "tablet")
	if err != nil {
		e.t.Fatalf("CreateDevice: %v", err)
	}
	pair, d, err := e.svc.Enroll(ctx, code, map[string]string{"model": "T1"}, "198.51.100.7")
	if err != nil {
		e.t.Fatalf("Enroll: %v", err)
	}
	p, err := e.svc.Authenticate(ctx, pair.AccessToken)
	if err != nil {
		e.t.Fatalf("Authenticate(device): %v", err)
	}
	return pair, d, p
}

// audits lists every event matching f, newest first.
func (e *env) audits(f domain.AuditFilter) []domain.AuditEvent {
	e.t.Helper()
	var all []domain.AuditEvent
	cursor := ""
	for {
		page, next, err := e.svc.ListAudit(context.Background(), e.admin, f, cursor, 100)
		if err != nil {
			e.t.Fatalf("ListAudit: %v", err)
		}
		all = append(all, page...)
		if next == "" {
			return all
		}
		cursor = next
	}
}

// wantErr checks that err is a *domain.Error of kind and code.
func wantErr(t testing.TB, err error, kind domain.Kind, code string) *domain.Error {
	t.Helper()
	de, ok := domain.AsError(err)
	if !ok {
		t.Fatalf("error = %v, want a domain error %s", err, code)
	}
	if de.Kind != kind || de.Code != code {
		t.Fatalf("error = kind %d code %q (%v), want kind %d code %q", de.Kind, de.Code, err, kind, code)
	}
	return de
}

func wantNoErr(t testing.TB, err error) {
	t.Helper()
	if err != nil {
		t.Fatalf("unexpected error: %v", err)
	}
}
