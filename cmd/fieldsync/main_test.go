package main

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"
)

// TestConnectionCap: past FIELDSYNC_MAX_CONNECTIONS, a client waits to be
// served until a connection frees up, instead of each slow or idle client
// taking a goroutine and a file descriptor of its own.
func TestConnectionCap(t *testing.T) {
	const limit = 16
	c, err := ParseConfig([]string{"-addr", "127.0.0.1:0", "-data-dir", t.TempDir(), "-max-connections", fmt.Sprint(limit),
		"-admin-password", "a long enough password"}, env(nil), io.Discard)
	if err != nil {
		t.Fatal(err)
	}
	m := NewMain(c, io.Discard)
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- m.Run(ctx) }()
	t.Cleanup(func() {
		cancel()
		if err := <-done; err != nil {
			t.Error(err)
		}
		_ = m.Close()
	})
	select {
	case <-m.Ready:
	case err := <-done:
		t.Fatal(err)
	}
	addr := m.Listener.Addr().String()
	dial := func() net.Conn {
		conn, err := net.Dial("tcp", addr)
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { conn.Close() })
		return conn
	}
	// Each held connection is in the middle of its request line.
	var held []net.Conn
	for range limit {
		conn := dial()
		fmt.Fprint(conn, "GET /healthz HTTP/1.1\r\n")
		held = append(held, conn)
	}
	extra := dial()
	fmt.Fprint(extra, "GET /healthz HTTP/1.1\r\nHost: test\r\n\r\n")
	r := bufio.NewReader(extra)
	_ = extra.SetReadDeadline(time.Now().Add(300 * time.Millisecond))
	if _, err := r.ReadByte(); !errors.Is(err, os.ErrDeadlineExceeded) {
		t.Fatalf("a connection past the cap was served (read: %v)", err)
	}
	held[0].Close()
	_ = extra.SetReadDeadline(time.Now().Add(time.Minute))
	resp, err := http.ReadResponse(r, nil)
	if err != nil {
		t.Fatalf("the waiting client was not served once a connection freed up: %v", err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		t.Errorf("status %d", resp.StatusCode)
	}
}

// started is a Main serving on a free port of loopback, and what it logged.
type started struct {
	m    *Main
	logs *strings.Builder
	stop func() error
}

// startMain runs Main with args (plus a loopback address unless args name
// one) and waits until it serves, or returns Run's error.
func startMain(t *testing.T, args ...string) (*started, error) {
	t.Helper()
	if !slices.Contains(args, "-addr") {
		args = append(args, "-addr", "127.0.0.1:0")
	}
	c, err := ParseConfig(args, env(nil), io.Discard)
	if err != nil {
		t.Fatal(err)
	}
	logs := &strings.Builder{}
	m := NewMain(c, &lockedWriter{w: logs})
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- m.Run(ctx) }()
	select {
	case <-m.Ready:
	case err := <-done:
		cancel()
		_ = m.Close()
		return &started{m: m, logs: logs}, err
	}
	s := &started{m: m, logs: logs}
	var once sync.Once
	var stopErr error
	s.stop = func() error {
		once.Do(func() {
			cancel()
			stopErr = <-done
			if err := m.Close(); stopErr == nil {
				stopErr = err
			}
		})
		return stopErr
	}
	t.Cleanup(func() { _ = s.stop() })
	return s, nil
}

type lockedWriter struct {
	mu sync.Mutex
	w  io.Writer
}

func (l *lockedWriter) Write(p []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.w.Write(p)
}

// signIn reports the status of POST /v1/auth/token as admin with password.
func signIn(t *testing.T, s *started, password string) int {
	t.Helper()
	body := fmt.Sprintf(`{"username": "admin", "password": %q}`, password)
	resp, err := http.Post("http://"+s.m.Listener.Addr().String()+"/v1/auth/token", "application/json", strings.NewReader(body))
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	return resp.StatusCode
}

// TestGeneratedAdminPassword: the first start of an empty store writes admin's
// generated password to a file only its user can read, and logs where it is,
// never the password; a first start that fails (its port in use) keeps the
// password for the next start.
func TestGeneratedAdminPassword(t *testing.T) {
	dir := t.TempDir()
	busy, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer busy.Close()
	first, err := startMain(t, "-data-dir", dir, "-addr", busy.Addr().String())
	if err == nil {
		t.Fatal("the first start served on a port in use")
	}
	path := filepath.Join(dir, adminPasswordFile)
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatalf("the failed first start left no password file: %v", err)
	}
	password := strings.TrimSpace(string(b))
	if fi, _ := os.Stat(path); fi.Mode().Perm() != 0o600 {
		t.Errorf("password file mode %o, want 600", fi.Mode().Perm())
	}

	second, err := startMain(t, "-data-dir", dir)
	if err != nil {
		t.Fatal(err)
	}
	if got := signIn(t, second, password); got != http.StatusOK {
		t.Fatalf("admin cannot sign in with the password of the file: %d", got)
	}
	if err := second.stop(); err != nil {
		t.Fatal(err)
	}
	logs := first.logs.String() + second.logs.String()
	if strings.Contains(logs, password) {
		t.Errorf("the password reached the log:\n%s", logs)
	}
	if !strings.Contains(second.logs.String(), path) {
		t.Errorf("the log does not say where the password is:\n%s", second.logs.String())
	}
	// The start that created admin says its password was generated (the audit
	// event carries the same flag), although main generated it, not identity.
	if !strings.Contains(logs, `"generated_password":true`) {
		t.Errorf("the log does not say admin's password was generated:\n%s", logs)
	}

	// Later starts say the file is still there, and change nothing.
	third, err := startMain(t, "-data-dir", dir, "-admin-password", "another password of admin")
	if err != nil {
		t.Fatal(err)
	}
	if got := signIn(t, third, password); got != http.StatusOK {
		t.Errorf("a later start changed admin's password: %d", got)
	}
	if err := third.stop(); err != nil {
		t.Fatal(err)
	}
	for _, want := range []string{"FIELDSYNC_ADMIN_PASSWORD is ignored", "still there"} {
		if !strings.Contains(third.logs.String(), want) {
			t.Errorf("a later start did not warn %q:\n%s", want, third.logs.String())
		}
	}
}

// TestPprof: FIELDSYNC_PPROF=on serves Go's profiles on the metrics address only;
// without a metrics address it is refused, so profiles (which show code paths and
// memory) are never public by mistake.
func TestPprof(t *testing.T) {
	if _, err := ParseConfig([]string{"-pprof", "on"}, env(nil), io.Discard); err == nil || !strings.Contains(err.Error(), "needs metrics-addr") {
		t.Fatalf("pprof without metrics-addr: %v, want refused", err)
	}
	s, err := startMain(t, "-data-dir", t.TempDir(), "-pprof", "on", "-metrics-addr", "127.0.0.1:0", "-admin-password", "a long enough password")
	if err != nil {
		t.Fatal(err)
	}
	get := func(addr, path string) int {
		resp, err := http.Get("http://" + addr + path)
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		io.Copy(io.Discard, resp.Body)
		return resp.StatusCode
	}
	metrics, api := s.m.MetricsListener.Addr().String(), s.m.Listener.Addr().String()
	for path, want := range map[string]int{"/debug/pprof/": 200, "/debug/pprof/heap": 200, "/debug/pprof/mutex": 200, "/metrics": 200} {
		if got := get(metrics, path); got != want {
			t.Errorf("GET %s on the metrics address: %d, want %d", path, got, want)
		}
	}
	if got := get(api, "/debug/pprof/heap"); got == http.StatusOK {
		t.Errorf("GET /debug/pprof/heap on the API's address: %d, want it not served", got)
	}
}

// TestKeysCommand: "fieldsync keys" alone prints its usage; "keys rotate" says
// in one line what it did; an unknown subcommand is refused.
func TestKeysCommand(t *testing.T) {
	var stderr strings.Builder
	if code := run(context.Background(), []string{"keys"}, env(nil), &stderr); code != 0 || !strings.Contains(stderr.String(), "Usage: fieldsync keys rotate") {
		t.Errorf("keys: exit %d, %q", code, stderr.String())
	}
	stderr.Reset()
	if code := run(context.Background(), []string{"keys", "list"}, env(nil), &stderr); code != 2 || !strings.Contains(stderr.String(), `unknown command "list"`) {
		t.Errorf("keys list: exit %d, %q", code, stderr.String())
	}
	c, err := ParseConfig([]string{"-data-dir", t.TempDir()}, env(nil), io.Discard)
	if err != nil {
		t.Fatal(err)
	}
	var out strings.Builder
	m := NewMain(c, io.Discard)
	m.Out = &out
	if err := m.RotateKeys(context.Background()); err != nil {
		t.Fatal(err)
	}
	_ = m.Close()
	if !strings.HasPrefix(out.String(), "New signing key ") || strings.Count(out.String(), "\n") != 1 {
		t.Errorf("keys rotate said %q, want one line", out.String())
	}
}

// TestMetricsAddr: with FIELDSYNC_METRICS_ADDR the metrics are served there
// only, not where the API is public.
func TestMetricsAddr(t *testing.T) {
	s, err := startMain(t, "-data-dir", t.TempDir(), "-metrics-addr", "127.0.0.1:0", "-admin-password", "a long enough password")
	if err != nil {
		t.Fatal(err)
	}
	get := func(addr string) (int, string) {
		resp, err := http.Get("http://" + addr + "/metrics")
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		b, _ := io.ReadAll(resp.Body)
		return resp.StatusCode, string(b)
	}
	if code, _ := get(s.m.Listener.Addr().String()); code != http.StatusNotFound {
		t.Errorf("GET /metrics on the API's address: %d, want 404", code)
	}
	if code, body := get(s.m.MetricsListener.Addr().String()); code != http.StatusOK || !strings.Contains(body, "fieldsync_http_requests_total") {
		t.Errorf("GET /metrics on the metrics address: %d %.200s", code, body)
	}
}
