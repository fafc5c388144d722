package identity

import (
	"bytes"
	"context"
	"log/slog"
	"path/filepath"
	"sync"
	"testing"
	"time"

	"github.com/fieldsync/fieldsync/internal/domain"
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

// env is one store file with a first service instance on it, bootstrapped.
type env struct {
	t     testing.TB
	clock *fakeClock
	path  string
	store *sqlite.Store
	svc   *Service
	logs  *syncBuffer
	admin domain.Principal
}

func newEnv(t testing.TB, opts ...func(*Config)) *env {
	t.Helper()
	e := &env{t: t, clock: newFakeClock(), path: filepath.Join(t.TempDir(), "fieldsync.db"), logs: &syncBuffer{}}
	e.store, e.svc = e.instance(opts...)
	if _, err := e.svc.Bootstrap(context.Background(), adminPassword); err != nil {
		t.Fatalf("Bootstrap: %v", err)
	}
	_, e.admin = e.login(e.svc, "admin", adminPassword)
	return e
}

// instance opens another store handle on the same file and a Service on it: a
// second server instance sharing the store.
func (e *env) instance(opts ...func(*Config)) (*sqlite.Store, *Service) {
	e.t.Helper()
	ctx := context.Background()
	st, err := sqlite.Open(ctx, e.path)
	if err != nil {
		e.t.Fatalf("sqlite.Open: %v", err)
	}
	e.t.Cleanup(func() { st.Close() })
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
	d, code, err := e.svc.CreateDevice(ctx, e.admin, project, "tablet")
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
