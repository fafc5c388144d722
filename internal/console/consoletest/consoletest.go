// Package consoletest is the test harness of the web console: a real server
// (the real API router with the console mounted, the real services, SQLite
// on a temporary file) on a loopback port, an HTTP client that signs in like
// a browser, and a real browser (Debian's Chromium, driven by chromedp).
//
// Browser tests skip when Chromium is absent, unless FIELDSYNC_REQUIRE_CHROMIUM
// is set (CI sets it), in which case they fail.
package consoletest

import (
	"context"
	"html"
	"io"
	"log/slog"
	"net/http"
	"net/http/cookiejar"
	"net/http/httptest"
	"net/url"
	"path/filepath"
	"regexp"
	"strings"
	"testing"

	"github.com/fieldsync/fieldsync/internal/console"
	"github.com/fieldsync/fieldsync/internal/domain"
	"github.com/fieldsync/fieldsync/internal/forms"
	"github.com/fieldsync/fieldsync/internal/httpapi"
	"github.com/fieldsync/fieldsync/internal/identity"
	"github.com/fieldsync/fieldsync/internal/media"
	"github.com/fieldsync/fieldsync/internal/records"
	"github.com/fieldsync/fieldsync/internal/store/sqlite"
)

// AdminPassword is the password of the bootstrap user "admin".
const AdminPassword = "admin-password-for-tests"

// Env is a running server with the console.
type Env struct {
	// URL is the server's base URL ("http://127.0.0.1:port").
	URL      string
	Store    domain.Store
	Identity *identity.Service
	Forms    *forms.Service
	Records  *records.Service
	Media    *media.Service
	API      *httpapi.Server
	Console  *console.Console
	// Admin is the bootstrap admin, to act through the services in set-ups.
	Admin domain.Principal
}

// Start runs a server for the test and stops it when the test ends. opts
// change the API server's configuration before it is built (a PublicURL,
// a clock).
func Start(t testing.TB, opts ...func(*httpapi.Config)) *Env {
	t.Helper()
	return StartConsole(t, nil, opts...)
}

// StartConsole is Start with the console's configuration changed by cons
// (a map tile layer, say) before the console is built; nil changes nothing.
func StartConsole(t testing.TB, cons func(*console.Config), opts ...func(*httpapi.Config)) *Env {
	t.Helper()
	ctx := context.Background()
	st, err := sqlite.OpenConfig(ctx, sqlite.Config{Path: filepath.Join(t.TempDir(), "fieldsync.db")})
	if err != nil {
		t.Fatalf("sqlite: %v", err)
	}
	log := slog.New(slog.NewTextHandler(testWriter{t}, &slog.HandlerOptions{Level: slog.LevelWarn}))
	ids, err := identity.New(ctx, identity.Config{Store: st, Logger: log})
	if err != nil {
		t.Fatalf("identity: %v", err)
	}
	if _, err := ids.Bootstrap(ctx, AdminPassword); err != nil {
		t.Fatalf("bootstrap: %v", err)
	}
	fs := forms.NewService(forms.ServiceConfig{Store: st, Audit: st, Logger: log})
	recs := records.New(records.Config{Store: st, Forms: records.FormsOf(fs), Logger: log})
	med := media.New(media.Config{Store: st, Records: recs, Logger: log})
	cfg := httpapi.Config{Store: st, Logger: log, Authenticator: ids, Identity: ids, Forms: fs, Records: recs, Media: med}
	for _, o := range opts {
		o(&cfg)
	}
	api, err := httpapi.New(cfg)
	if err != nil {
		t.Fatalf("httpapi: %v", err)
	}
	ccfg := console.Config{API: api, Identity: ids, Store: st, Forms: fs, Records: recs, Media: med, Logger: log}
	if cons != nil {
		cons(&ccfg)
	}
	con, err := console.Mount(ccfg)
	if err != nil {
		t.Fatalf("console: %v", err)
	}
	hs := httptest.NewServer(api)
	t.Cleanup(func() {
		hs.Close()
		_ = st.Close()
	})
	return &Env{URL: hs.URL, Store: st, Identity: ids, Forms: fs, Records: recs, Media: med, API: api, Console: con,
		Admin: domain.Principal{Subject: "admin", Username: "admin", Admin: true}}
}

// testWriter sends the server's warnings and errors to the test log.
type testWriter struct{ t testing.TB }

func (w testWriter) Write(p []byte) (int, error) {
	w.t.Log(strings.TrimSpace(string(p)))
	return len(p), nil
}

// CreateProject creates a project as the admin.
func (e *Env) CreateProject(t testing.TB, id, title string) {
	t.Helper()
	if _, err := e.Identity.CreateProject(context.Background(), e.Admin, id, title); err != nil {
		t.Fatalf("create project %s: %v", id, err)
	}
}

// AddUser creates a user with password and, when project is not "", makes it
// a member with role.
func (e *Env) AddUser(t testing.TB, username, password, project string, role domain.Role) {
	t.Helper()
	ctx := context.Background()
	if _, err := e.Identity.CreateUser(ctx, e.Admin, username, password, username); err != nil {
		t.Fatalf("create user %s: %v", username, err)
	}
	if project != "" {
		if _, err := e.Identity.SetMember(ctx, e.Admin, project, username, role); err != nil {
			t.Fatalf("set member %s: %v", username, err)
		}
	}
}

// Client is an HTTP client with a cookie jar, as a browser without scripts:
// it follows no redirects, so a test sees them.
type Client struct {
	t    testing.TB
	base string
	HTTP *http.Client
}

// NewClient returns a client without a session.
func (e *Env) NewClient(t testing.TB) *Client {
	jar, _ := cookiejar.New(nil)
	return &Client{t: t, base: e.URL, HTTP: &http.Client{Jar: jar, CheckRedirect: func(*http.Request, []*http.Request) error {
		return http.ErrUseLastResponse
	}}}
}

// SignIn returns a client signed in as username, through the sign-in form.
func (e *Env) SignIn(t testing.TB, username, password string) *Client {
	t.Helper()
	c := e.NewClient(t)
	resp, _ := c.PostForm("/signin", url.Values{"username": {username}, "password": {password}})
	if resp.StatusCode != http.StatusSeeOther {
		t.Fatalf("sign in as %s: %d", username, resp.StatusCode)
	}
	return c
}

// Get fetches path and returns the answer and its body.
func (c *Client) Get(path string) (*http.Response, string) {
	c.t.Helper()
	return c.Do(http.MethodGet, path, nil)
}

// PostForm posts form to path with the CSRF token (read from a page first,
// as a browser would have it) and the page's Origin.
func (c *Client) PostForm(path string, form url.Values) (*http.Response, string) {
	c.t.Helper()
	f := url.Values{}
	for k, v := range form {
		f[k] = v
	}
	if f.Get("csrf_token") == "" {
		f.Set("csrf_token", c.CSRF())
	}
	return c.Do(http.MethodPost, path, f)
}

// Do sends one request; a non-nil form is its urlencoded body.
func (c *Client) Do(method, path string, form url.Values) (*http.Response, string) {
	c.t.Helper()
	var body io.Reader
	if form != nil {
		body = strings.NewReader(form.Encode())
	}
	req, err := http.NewRequest(method, c.base+path, body)
	if err != nil {
		c.t.Fatal(err)
	}
	if form != nil {
		req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
		req.Header.Set("Origin", c.base)
		req.Header.Set("Sec-Fetch-Site", "same-origin")
	}
	resp, err := c.HTTP.Do(req)
	if err != nil {
		c.t.Fatalf("%s %s: %v", method, path, err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return resp, string(b)
}

var csrfRE = regexp.MustCompile(`name="csrf_token" value="([^"]*)"`)

// CSRF returns the client's CSRF token, as the sign-in page shows it.
func (c *Client) CSRF() string {
	c.t.Helper()
	_, body := c.Do(http.MethodGet, "/signin", nil)
	m := csrfRE.FindStringSubmatch(body)
	if m == nil {
		// Signed in: /signin redirects; any page has the token.
		_, body = c.Do(http.MethodGet, "/", nil)
		m = csrfRE.FindStringSubmatch(body)
	}
	if m == nil {
		c.t.Fatal("no csrf_token on the page")
	}
	return html.UnescapeString(m[1])
}
