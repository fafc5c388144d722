package main

import (
	"bytes"
	"context"
	"encoding/json"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"regexp"
	"runtime"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/fieldsync/fieldsync/api"
	"github.com/fieldsync/fieldsync/internal/domain"
	"github.com/fieldsync/fieldsync/internal/forms"
	"github.com/fieldsync/fieldsync/internal/httpapi"
	"github.com/fieldsync/fieldsync/internal/identity"
	"github.com/fieldsync/fieldsync/internal/media"
	"github.com/fieldsync/fieldsync/internal/records"
	"github.com/fieldsync/fieldsync/internal/store/sqlite"
)

const adminPassword = "admin-password-for-tests"

// newServer starts a real server (httpapi with the identity service on SQLite in
// a temp dir) with the user admin bootstrapped.
func newServer(t *testing.T) *httptest.Server {
	t.Helper()
	return newServerWith(t, nil)
}

// newServerWith is newServer with the handler wrapped by wrap (a server that
// fails some requests, say) unless wrap is nil.
func newServerWith(t *testing.T, wrap func(http.Handler) http.Handler) *httptest.Server {
	t.Helper()
	st, err := sqlite.Open(context.Background(), filepath.Join(t.TempDir(), "fieldsync.db"))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = st.Close() }) // cleanups run last first: after srv.Close
	return newServerOn(t, st, wrap)
}

// newServerOn is newServerWith on the store st (SQLite or MongoDB).
func newServerOn(t *testing.T, st domain.Store, wrap func(http.Handler) http.Handler) *httptest.Server {
	t.Helper()
	ctx := context.Background()
	log := slog.New(slog.DiscardHandler)
	ids, err := identity.New(ctx, identity.Config{Store: st, Logger: log})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := ids.Bootstrap(ctx, adminPassword); err != nil {
		t.Fatal(err)
	}
	// Wired as cmd/fieldsync wires it.
	fs := forms.NewService(forms.ServiceConfig{Store: st})
	recs := records.New(records.Config{Store: st, Forms: records.FormsOf(fs), Logger: log})
	med := media.New(media.Config{Store: st, Records: recs, Logger: log})
	h, err := httpapi.New(httpapi.Config{Store: st, Logger: log, Authenticator: ids, Identity: ids, Forms: fs, Records: recs, Media: med})
	if err != nil {
		t.Fatal(err)
	}
	var handler http.Handler = h
	if wrap != nil {
		handler = wrap(h)
	}
	srv := httptest.NewServer(handler)
	t.Cleanup(srv.Close)
	return srv
}

// cli runs fsctl in-process with its own environment variables and stdin.
type cli struct {
	t   *testing.T
	env map[string]string
	mu  sync.Mutex
	// httpClient, when set, is the HTTP client of the commands (a test TLS
	// server's, say).
	httpClient *http.Client
	// tty, when set, says which of stdin, stdout and stderr is a terminal;
	// otherwise none is (they are buffers).
	tty func(f any, e *env) bool
	// waits records the pauses between retries, which are not slept.
	waits []time.Duration
}

// run runs one command line and returns its exit code, stdout and stderr.
func (c *cli) run(stdin string, args ...string) (int, string, string) {
	c.t.Helper()
	var out, errOut bytes.Buffer
	c.mu.Lock()
	vars := make(map[string]string, len(c.env))
	for k, v := range c.env {
		vars[k] = v
	}
	c.mu.Unlock()
	e := &env{stdin: strings.NewReader(stdin), stdout: &out, stderr: &errOut, getenv: func(k string) string { return vars[k] }, httpClient: c.httpClient}
	e.sleep = func(ctx context.Context, d time.Duration) error {
		c.mu.Lock()
		c.waits = append(c.waits, d)
		c.mu.Unlock()
		return ctx.Err()
	}
	if c.tty != nil {
		e.tty = func(f any) bool { return c.tty(f, e) }
	}
	code := run(context.Background(), args, e)
	return code, out.String(), errOut.String()
}

// must runs a command line that must succeed and returns its stdout.
func (c *cli) must(stdin string, args ...string) string {
	c.t.Helper()
	code, out, errOut := c.run(stdin, args...)
	if code != 0 {
		c.t.Fatalf("fsctl %s: exit %d\nstdout: %s\nstderr: %s", strings.Join(args, " "), code, out, errOut)
	}
	return out
}

func TestFsctl(t *testing.T) {
	srv := newServer(t)
	// The default config path: os.UserConfigDir() under a temp home.
	home := t.TempDir()
	t.Setenv("HOME", home)
	t.Setenv("XDG_CONFIG_HOME", filepath.Join(home, ".config"))
	t.Setenv("AppData", filepath.Join(home, "AppData"))
	dir, err := os.UserConfigDir()
	if err != nil {
		t.Fatal(err)
	}
	cfgPath := filepath.Join(dir, "fieldsync", "fsctl.json")
	c := &cli{t: t, env: map[string]string{}}

	if out := c.must("", "version"); !strings.HasPrefix(out, "fsctl ") {
		t.Errorf("version: %q", out)
	}
	if out := c.must("", "health", "--server", srv.URL); !strings.Contains(out, "ready") {
		t.Errorf("health: %q", out)
	}

	// Not logged in yet.
	code, _, errOut := c.run("", "project", "list")
	if code != 1 || !strings.Contains(errOut, "not logged in") {
		t.Errorf("project list before login: %d %q", code, errOut)
	}
	// A wrong password: the problem's title, exit 1.
	code, _, errOut = c.run("wrong-password\n", "login", "--server", srv.URL, "--username", "admin")
	if code != 1 || !strings.Contains(errOut, "Invalid username or password") || !strings.Contains(errOut, "invalid_credentials") {
		t.Errorf("login with a wrong password: %d %q", code, errOut)
	}
	// The password on standard input (not a terminal).
	if out := c.must(adminPassword+"\n", "login", "--server", srv.URL+"/", "--username", "admin"); !strings.Contains(out, "Logged in") {
		t.Errorf("login: %q", out)
	}
	fi, err := os.Stat(cfgPath)
	if err != nil {
		t.Fatalf("config file: %v", err)
	}
	if runtime.GOOS != "windows" {
		if fi.Mode().Perm() != 0o600 {
			t.Errorf("config file mode %v, want 0600", fi.Mode().Perm())
		}
		di, _ := os.Stat(filepath.Dir(cfgPath))
		if di.Mode().Perm() != 0o700 {
			t.Errorf("config dir mode %v, want 0700", di.Mode().Perm())
		}
	}
	cfg := readConfig(t, cfgPath)
	if cfg.Server != srv.URL || cfg.Username != "admin" || cfg.RefreshToken == "" || cfg.AccessToken == "" || !cfg.AccessExpiresAt.After(time.Now()) {
		t.Errorf("config %+v", cfg)
	}

	c.must("", "project", "create", "north", "--title", "North district")
	code, _, errOut = c.run("", "project", "create", "north", "--title", "Again")
	if code != 1 || !strings.Contains(errOut, "A project with this id exists") {
		t.Errorf("project create twice: %d %q", code, errOut)
	}
	code, _, errOut = c.run("", "project", "create", "Bad Id", "--title", "x")
	if code != 1 || !strings.Contains(errOut, "/id: must match") {
		t.Errorf("project create with a bad id: the findings are not printed: %d %q", code, errOut)
	}
	if code, _, _ = c.run("", "project", "create", "south"); code != 2 {
		t.Errorf("project create without --title: exit %d, want 2", code)
	}
	if out := c.must("", "project", "list"); !regexp.MustCompile(`north\s+manager\s+North district`).MatchString(out) {
		t.Errorf("project list: %q", out)
	}

	c.env["FSCTL_NEW_PASSWORD"] = "mia-password-1234"
	c.must("", "user", "add", "mia", "--display-name", "Mia M.")
	delete(c.env, "FSCTL_NEW_PASSWORD")
	code, _, errOut = c.run("short\n", "user", "add", "bob")
	if code != 1 || !strings.Contains(errOut, "/password: must be at least 10 characters") {
		t.Errorf("user add with a weak password: %d %q", code, errOut)
	}
	if out := c.must("", "member", "set", "north", "mia", "manager"); !strings.Contains(out, "mia is now manager of north") {
		t.Errorf("member set: %q", out)
	}

	if out := c.must("", "user", "disable", "mia"); !strings.Contains(out, "mia is disabled") {
		t.Errorf("user disable: %q", out)
	}
	c.must("", "user", "enable", "mia")
	c.must("", "user", "revoke", "mia")

	out := c.must("", "device", "add", "north", "Tablet 07")
	m := regexp.MustCompile(`enrollment code:\s+([0-9A-Z]{5}(?:-[0-9A-Z]{5}){3})`).FindStringSubmatch(out)
	if m == nil {
		t.Fatalf("device add printed no enrollment code:\n%s", out)
	}
	devID := regexp.MustCompile(`device id:\s+(\S+)`).FindStringSubmatch(out)
	if devID == nil || !strings.Contains(out, "expires:") {
		t.Fatalf("device add printed no device id or expiry:\n%s", out)
	}
	if qrLines := regexp.MustCompile(`(?m)^[ █▀▄]{20,}$`).FindAllString(out, -1); len(qrLines) < 10 {
		t.Errorf("device add printed no QR block (%d lines):\n%s", len(qrLines), out)
	}
	// The code works, once.
	tablet, err := api.NewClient(srv.URL)
	if err != nil {
		t.Fatal(err)
	}
	pair, err := tablet.Enroll(context.Background(), m[1], nil)
	if err != nil || pair.Project != "north" || pair.DeviceID != devID[1] {
		t.Fatalf("enrolling with the printed code: %v %+v", err, pair)
	}
	c.must("", "device", "revoke", "north", devID[1])
	if _, err := tablet.ListProjects(context.Background()); !api.IsCode(err, api.CodeUnauthorized) {
		t.Errorf("the revoked tablet still works: %v", err)
	}

	if out := c.must("", "audit", "--type", "device_revoked", "--since", "1h"); !strings.Contains(out, "device:"+devID[1]) {
		t.Errorf("audit: %q", out)
	}

	// An expired access token is renewed with the refresh token, and the new
	// pair is saved; two processes renewing at once do not trip the replay
	// detection (which would end the session).
	cfg = readConfig(t, cfgPath)
	cfg.AccessExpiresAt = time.Now().Add(-time.Minute)
	writeConfig(t, cfgPath, cfg)
	var wg sync.WaitGroup
	codes := make([]int, 4)
	for i := range codes {
		wg.Go(func() { codes[i], _, _ = c.run("", "project", "list") })
	}
	wg.Wait()
	for i, code := range codes {
		if code != 0 {
			t.Errorf("concurrent project list %d: exit %d", i, code)
		}
	}
	renewed := readConfig(t, cfgPath)
	if renewed.RefreshToken == cfg.RefreshToken || !renewed.AccessExpiresAt.After(time.Now()) {
		t.Error("the expired access token was not renewed and saved")
	}
	if out := c.must("", "audit", "--type", "family_revoked"); strings.Contains(out, "replay") {
		t.Errorf("concurrent renewals were taken for a replay:\n%s", out)
	}

	// Logout ends the session on the server too.
	c.must("", "logout")
	after := readConfig(t, cfgPath)
	if after.RefreshToken != "" || after.AccessToken != "" || after.Server != srv.URL {
		t.Errorf("config after logout %+v", after)
	}
	if _, err := (func() (api.TokenResponse, error) {
		cl, _ := api.NewClient(srv.URL)
		return cl.Refresh(context.Background(), renewed.RefreshToken)
	})(); !api.IsCode(err, "invalid_grant") {
		t.Errorf("the refresh token still works after logout: %v", err)
	}
	code, _, errOut = c.run("", "project", "list")
	if code != 1 || !strings.Contains(errOut, "not logged in") {
		t.Errorf("project list after logout: %d %q", code, errOut)
	}
}

func TestFsctlUsage(t *testing.T) {
	c := &cli{t: t, env: map[string]string{"FSCTL_CONFIG": filepath.Join(t.TempDir(), "fsctl.json")}}
	for _, args := range [][]string{{}, {"nope"}, {"device"}, {"device", "frob"}, {"device", "add", "north"}, {"login", "--server", "ftp://x", "--username", "a"}} {
		if code, _, _ := c.run("", args...); code != 2 {
			t.Errorf("fsctl %v: exit %d, want 2", args, code)
		}
	}
	code, _, errOut := c.run("pw\n", "login", "--server", "http://sync.example.org", "--username", "a")
	if code != 2 || !strings.Contains(errOut, "use https") {
		t.Errorf("login over plain http: %d %q", code, errOut)
	}
	if code, out, _ := c.run("", "help"); code != 0 || !strings.Contains(out, "device") {
		t.Errorf("help: %d %q", code, out)
	}
}

func TestStdinLine(t *testing.T) {
	e := &env{stdin: strings.NewReader("first\r\nsecond"), stderr: io.Discard, getenv: func(string) string { return "" }}
	for _, want := range []string{"first", "second"} {
		if got, err := e.readPassword("X", "", false); err != nil || got != want {
			t.Errorf("readPassword = %q, %v; want %q", got, err, want)
		}
	}
	if _, err := e.readPassword("X", "", false); err == nil {
		t.Error("readPassword at EOF: no error")
	}
	e.getenv = func(k string) string { return map[string]string{"X": "from-env"}[k] }
	if got, _ := e.readPassword("X", "", false); got != "from-env" {
		t.Errorf("readPassword with the variable set = %q", got)
	}
}

func readConfig(t *testing.T, path string) config {
	t.Helper()
	data, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	var cfg config
	if err := json.Unmarshal(data, &cfg); err != nil {
		t.Fatal(err)
	}
	return cfg
}

func writeConfig(t *testing.T, path string, cfg config) {
	t.Helper()
	data, err := json.Marshal(cfg)
	if err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(path, data, 0o600); err != nil {
		t.Fatal(err)
	}
}
