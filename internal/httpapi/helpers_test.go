package httpapi

import (
	"bytes"
	"compress/gzip"
	"context"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/fieldsync/fieldsync/api"
	"github.com/fieldsync/fieldsync/internal/domain"
	"github.com/fieldsync/fieldsync/internal/forms"
	"github.com/fieldsync/fieldsync/internal/identity"
	"github.com/fieldsync/fieldsync/internal/media"
	"github.com/fieldsync/fieldsync/internal/records"
	"github.com/fieldsync/fieldsync/internal/store/sqlite"
)

// How to test a route: start a server with newTestServer (a real Server, real
// middleware, a real SQLite store in t.TempDir(), the real identity service on
// that store as Config.Identity and as the Authenticator, with the user admin
// bootstrapped with testAdminPassword), send requests with ts.do or
// ts.get (or an api.Client from ts.apiClient), and assert on the answer. Every
// exchange is validated against openapi.yaml by checkResponse, error answers
// included, so a test fails when the route and the spec disagree. Routes that
// exist only for a test are registered with withRoutes under /_test/.

// testServer is a real Server on a real SQLite store in a temp dir, served on a
// random port.
type testServer struct {
	*httptest.Server
	srv   *Server
	store domain.Store
	reg   *prometheus.Registry
	logs  *syncBuffer
	// ids is the identity service wired as Config.Identity (and as the
	// Authenticator unless a test set its own).
	ids *identity.Service
}

// testAdminPassword is the password of the user admin of every test server.
const testAdminPassword = "admin-password-for-tests"

// testOption adjusts a test server before it starts serving.
type testOption func(*testSetup)

type testSetup struct {
	cfg    Config
	routes []func(s *Server)
	idCfg  identity.Config
}

// withConfig changes the Config given to New.
func withConfig(f func(*Config)) testOption {
	return func(ts *testSetup) { f(&ts.cfg) }
}

// withIdentity changes the identity.Config of the test server's identity
// service (its Store and, unless set, its Logger are the server's).
func withIdentity(f func(*identity.Config)) testOption {
	return func(ts *testSetup) { f(&ts.idCfg) }
}

// withRoutes registers test-only routes after New and before serving. They live
// under /_test/ only; the spec check of checkResponse knows that prefix, and no
// test-only route exists in production routing.
func withRoutes(f func(s *Server)) testOption {
	return func(ts *testSetup) { ts.routes = append(ts.routes, f) }
}

// newTestServer starts a Server on a fresh SQLite store and closes both when the
// test ends. The log goes to a buffer tests can search (ts.logs).
func newTestServer(t testing.TB, opts ...testOption) *testServer {
	t.Helper()
	reg := prometheus.NewRegistry()
	observe, err := StoreMetrics(reg)
	if err != nil {
		t.Fatal(err)
	}
	st, err := sqlite.OpenConfig(context.Background(), sqlite.Config{Path: filepath.Join(t.TempDir(), "fieldsync.db"), Observe: observe})
	if err != nil {
		t.Fatalf("sqlite.Open: %v", err)
	}
	logs := &syncBuffer{}
	setup := &testSetup{cfg: Config{
		Store:    st,
		Logger:   slog.New(slog.NewJSONHandler(logs, &slog.HandlerOptions{Level: slog.LevelDebug})),
		Registry: reg,
	}}
	for _, o := range opts {
		o(setup)
	}
	// The real identity service on the same store, so tokens, roles and
	// revocations are the ones production has. A test that sets its own
	// Authenticator (a stand-in for rule tests) keeps it.
	setup.idCfg.Store = setup.cfg.Store
	if setup.idCfg.Logger == nil {
		setup.idCfg.Logger = setup.cfg.Logger
	}
	ids, err := identity.New(context.Background(), setup.idCfg)
	if err != nil {
		t.Fatalf("identity.New: %v", err)
	}
	if _, err := ids.Bootstrap(context.Background(), testAdminPassword); err != nil {
		t.Fatalf("identity Bootstrap: %v", err)
	}
	if setup.cfg.Identity == nil {
		setup.cfg.Identity = ids
	}
	if setup.cfg.Authenticator == nil {
		setup.cfg.Authenticator = ids
	}
	// The forms and sync services, on the same store.
	if setup.cfg.Forms == nil {
		setup.cfg.Forms = forms.NewService(forms.ServiceConfig{Store: setup.cfg.Store, Now: setup.cfg.Now, Audit: setup.cfg.Store, Logger: setup.cfg.Logger})
	}
	if setup.cfg.Records == nil {
		setup.cfg.Records = records.New(records.Config{Store: setup.cfg.Store, Forms: records.FormsOf(setup.cfg.Forms), Logger: setup.cfg.Logger, Now: setup.cfg.Now})
	}
	if setup.cfg.Media == nil {
		setup.cfg.Media = media.New(media.Config{Store: setup.cfg.Store, Records: setup.cfg.Records, Now: setup.cfg.Now, Logger: setup.cfg.Logger})
	}
	srv, err := New(setup.cfg)
	if err != nil {
		t.Fatalf("New: %v", err)
	}
	for _, f := range setup.routes {
		f(srv)
	}
	hs := httptest.NewServer(srv)
	t.Cleanup(func() {
		hs.Close()
		// Closing twice (tests that close the store themselves) is harmless.
		_ = st.Close()
	})
	return &testServer{Server: hs, srv: srv, store: st, reg: reg, logs: logs, ids: ids}
}

// newRequest builds a request to the test server. body may be nil, a string, a
// []byte or an io.Reader (streamed: no GetBody, so its body is not validated).
func (ts *testServer) newRequest(t testing.TB, method, path string, body any) *http.Request {
	t.Helper()
	var r io.Reader
	switch b := body.(type) {
	case nil:
	case string:
		r = strings.NewReader(b)
	case []byte:
		r = bytes.NewReader(b)
	case io.Reader:
		r = b
	default:
		t.Fatalf("newRequest: body of type %T", body)
	}
	req, err := http.NewRequest(method, ts.URL+path, r)
	if err != nil {
		t.Fatal(err)
	}
	return req
}

// do sends req without transparent decompression (so tests see what went over
// the wire), validates request and answer against openapi.yaml, and returns the
// answer with its body read: raw as sent, and decoded (gunzipped) for assertions.
func (ts *testServer) do(t testing.TB, req *http.Request) (resp *http.Response, body []byte) {
	t.Helper()
	resp, err := rawClient.Do(req)
	if err != nil {
		t.Fatalf("%s %s: %v", req.Method, req.URL.Path, err)
	}
	defer resp.Body.Close()
	checkResponse(t, req, resp)
	raw, err := io.ReadAll(resp.Body)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body = io.NopCloser(bytes.NewReader(raw))
	return resp, decodeBody(t, resp.Header, raw)
}

// get is do for a GET without body.
func (ts *testServer) get(t testing.TB, path string, header ...string) (*http.Response, []byte) {
	t.Helper()
	req := ts.newRequest(t, http.MethodGet, path, nil)
	for i := 0; i+1 < len(header); i += 2 {
		req.Header.Set(header[i], header[i+1])
	}
	return ts.do(t, req)
}

// rawClient does not add Accept-Encoding nor decompress, unlike the default
// transport, so tests control and observe compression.
var rawClient = &http.Client{Transport: &http.Transport{DisableCompression: true}}

// decodeBody returns the body as the server meant it: gunzipped when it was
// sent with Content-Encoding gzip.
func decodeBody(t testing.TB, h http.Header, raw []byte) []byte {
	t.Helper()
	if h.Get("Content-Encoding") != "gzip" {
		return raw
	}
	zr, err := gzip.NewReader(bytes.NewReader(raw))
	if err != nil {
		t.Fatalf("answer is not valid gzip: %v", err)
	}
	plain, err := io.ReadAll(zr)
	if err != nil {
		t.Fatalf("answer is not valid gzip: %v", err)
	}
	return plain
}

// syncBuffer is a log sink that many request goroutines may write at once.
type syncBuffer struct {
	mu      sync.Mutex
	buf     bytes.Buffer
	written chan struct{} // closed and replaced at every write (see waitFor)
}

func (b *syncBuffer) Write(p []byte) (int, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	if b.written != nil {
		close(b.written)
		b.written = nil
	}
	return b.buf.Write(p)
}

// waitFor waits until the log holds s, or fails t after a minute (a bound on
// a test gone wrong, not a measurement).
func (b *syncBuffer) waitFor(t testing.TB, s string) {
	t.Helper()
	timeout := time.After(time.Minute)
	for {
		b.mu.Lock()
		if strings.Contains(b.buf.String(), s) {
			b.mu.Unlock()
			return
		}
		if b.written == nil {
			b.written = make(chan struct{})
		}
		written := b.written
		b.mu.Unlock()
		select {
		case <-written:
		case <-timeout:
			t.Fatalf("the log never said %q:\n%s", s, b.String())
		}
	}
}

func (b *syncBuffer) String() string {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.String()
}

// staticAuth is a test Authenticator: a fixed table of tokens. It stands in for
// the identity service only where the identity is not under test (the rule
// mechanics of auth_test.go, against the real store's memberships); the role
// table (roles_test.go) and the identity routes use real tokens.
type staticAuth map[string]domain.Principal

func (a staticAuth) Authenticate(_ context.Context, token string) (domain.Principal, error) {
	if token == "store-down" {
		return domain.Principal{}, domain.ErrUnavailable
	}
	p, ok := a[token]
	if !ok {
		return domain.Principal{}, &domain.Error{Kind: domain.KindUnauthorized, Code: "invalid_token", Title: "bad token"}
	}
	return p, nil
}

// apiClient returns an api.Client for the test server whose every exchange is
// validated against openapi.yaml by checkResponse.
func (ts *testServer) apiClient(t testing.TB, opts ...api.Option) *api.Client {
	t.Helper()
	hc := &http.Client{Transport: checkingTransport{t: t, base: http.DefaultTransport}}
	c, err := api.NewClient(ts.URL, append([]api.Option{api.WithHTTPClient(hc)}, opts...)...)
	if err != nil {
		t.Fatal(err)
	}
	return c
}

// checkingTransport validates each exchange against openapi.yaml.
type checkingTransport struct {
	t    testing.TB
	base http.RoundTripper
}

func (c checkingTransport) RoundTrip(req *http.Request) (*http.Response, error) {
	resp, err := c.base.RoundTrip(req)
	if err == nil {
		checkResponse(c.t, req, resp)
	}
	return resp, err
}
