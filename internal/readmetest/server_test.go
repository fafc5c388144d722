package readmetest

import (
	"bytes"
	"compress/gzip"
	"encoding/json"
	"go/build"
	"io"
	"net/http"
	"net/http/httputil"
	"net/url"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"
)

// buildBinaries builds fieldsync and fsctl from this module into dir.
func buildBinaries(t *testing.T, dir string) {
	t.Helper()
	gocmd := filepath.Join(build.Default.GOROOT, "bin", "go")
	for _, name := range []string{"fieldsync", "fsctl"} {
		out, err := exec.Command(gocmd, "build", "-o", filepath.Join(dir, name), "github.com/fieldsync/fieldsync/cmd/"+name).CombinedOutput()
		if err != nil {
			t.Fatalf("go build %s: %v\n%s", name, err, out)
		}
	}
}

// server is the fieldsync process, run as the README's quick start runs it:
// from a directory of its own with the default data directory ./data and no
// admin password given, so the first start writes data/admin-password.
type server struct {
	t    *testing.T
	bin  string
	dir  string // the working directory; data is dir/data
	cmd  *exec.Cmd
	out  *logWriter
	done chan struct{}
	url  string
}

// start starts the process and waits for its "fieldsync listening" line.
func (s *server) start() {
	t := s.t
	t.Helper()
	cmd := exec.Command(s.bin)
	cmd.Dir = s.dir
	for _, kv := range os.Environ() {
		if !strings.HasPrefix(kv, "FIELDSYNC_") {
			cmd.Env = append(cmd.Env, kv)
		}
	}
	cmd.Env = append(cmd.Env, "FIELDSYNC_ADDR=127.0.0.1:0")
	s.out = &logWriter{listening: make(chan string, 1)}
	cmd.Stdout, cmd.Stderr = s.out, s.out
	if err := cmd.Start(); err != nil {
		t.Fatalf("start fieldsync: %v", err)
	}
	s.cmd, s.done = cmd, make(chan struct{})
	done := s.done
	go func() {
		_ = cmd.Wait()
		close(done)
	}()
	select {
	case addr := <-s.out.listening:
		s.url = "http://" + addr
	case <-done:
		t.Fatalf("fieldsync exited before listening:\n%s", s.out)
	case <-time.After(time.Minute):
		t.Fatalf("fieldsync did not say it listens within a minute:\n%s", s.out)
	}
}

// stop sends SIGTERM and waits for the process to exit.
func (s *server) stop() {
	s.t.Helper()
	if s.cmd == nil {
		return
	}
	_ = s.cmd.Process.Signal(syscall.SIGTERM)
	select {
	case <-s.done:
	case <-time.After(time.Minute):
		_ = s.cmd.Process.Kill()
		<-s.done
		s.t.Fatalf("fieldsync did not stop within a minute of SIGTERM:\n%s", s.out)
	}
	if code := s.cmd.ProcessState.ExitCode(); code != 0 {
		s.t.Fatalf("fieldsync exited with status %d:\n%s", code, s.out)
	}
	s.cmd = nil
}

// logWriter keeps the server's log and reports the address it listens on.
type logWriter struct {
	mu        sync.Mutex
	all       bytes.Buffer
	partial   []byte
	listening chan string
	found     bool
}

func (w *logWriter) Write(p []byte) (int, error) {
	w.mu.Lock()
	defer w.mu.Unlock()
	w.all.Write(p)
	w.partial = append(w.partial, p...)
	for {
		i := bytes.IndexByte(w.partial, '\n')
		if i < 0 {
			break
		}
		var entry struct {
			Msg  string `json:"msg"`
			Addr string `json:"addr"`
		}
		if !w.found && json.Unmarshal(w.partial[:i], &entry) == nil && entry.Msg == "fieldsync listening" && entry.Addr != "" {
			w.found = true
			w.listening <- entry.Addr
		}
		w.partial = w.partial[i+1:]
	}
	return len(p), nil
}

func (w *logWriter) String() string {
	w.mu.Lock()
	defer w.mu.Unlock()
	return w.all.String()
}

// An exchange is one request through the recorder and its answer.
type exchange struct {
	method, path, query string
	status              int
	header              http.Header
	body                []byte // decompressed
}

// json decodes the answer's body as a JSON object, or nil.
func (x exchange) json() map[string]any {
	var m map[string]any
	if json.Unmarshal(x.body, &m) != nil {
		return nil
	}
	return m
}

// recorder is the address the README's https://sync.example.org becomes: a
// reverse proxy to the server that keeps every exchange, so the walk knows the
// status of every curl request (curl without --fail exits 0 on a 4xx) and can
// take values an earlier step was given (an enrollment code, a device id, a
// revision). It also keeps one address while the server restarts.
type recorder struct {
	mu     sync.Mutex
	target *url.URL
	log    []exchange
}

func (rc *recorder) setTarget(raw string) {
	u, err := url.Parse(raw)
	if err != nil {
		panic(err)
	}
	rc.mu.Lock()
	rc.target = u
	rc.mu.Unlock()
}

func (rc *recorder) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	rc.mu.Lock()
	target := rc.target
	rc.mu.Unlock()
	p := httputil.NewSingleHostReverseProxy(target)
	p.ModifyResponse = func(resp *http.Response) error {
		raw, err := io.ReadAll(resp.Body)
		resp.Body.Close()
		if err != nil {
			return err
		}
		resp.Body = io.NopCloser(bytes.NewReader(raw))
		body := raw
		if resp.Header.Get("Content-Encoding") == "gzip" {
			if zr, err := gzip.NewReader(bytes.NewReader(raw)); err == nil {
				if b, err := io.ReadAll(zr); err == nil {
					body = b
				}
			}
		}
		rc.mu.Lock()
		rc.log = append(rc.log, exchange{method: r.Method, path: r.URL.Path, query: r.URL.RawQuery,
			status: resp.StatusCode, header: resp.Header.Clone(), body: body})
		rc.mu.Unlock()
		return nil
	}
	p.ServeHTTP(w, r)
}

// mark returns the number of exchanges so far; since returns those after it.
func (rc *recorder) mark() int {
	rc.mu.Lock()
	defer rc.mu.Unlock()
	return len(rc.log)
}

func (rc *recorder) since(n int) []exchange {
	rc.mu.Lock()
	defer rc.mu.Unlock()
	return append([]exchange(nil), rc.log[n:]...)
}

// last returns the latest successful exchange for which match is true.
func (rc *recorder) last(match func(exchange) bool) (exchange, bool) {
	rc.mu.Lock()
	defer rc.mu.Unlock()
	for i := len(rc.log) - 1; i >= 0; i-- {
		if x := rc.log[i]; x.status < 400 && match(x) {
			return x, true
		}
	}
	return exchange{}, false
}

// copyDir copies the regular files of a directory tree (the server's data
// directory, the example schemas).
func copyDir(t *testing.T, from, to string) {
	t.Helper()
	err := filepath.Walk(from, func(p string, fi os.FileInfo, err error) error {
		if err != nil {
			return err
		}
		rel, _ := filepath.Rel(from, p)
		dst := filepath.Join(to, rel)
		if fi.IsDir() {
			return os.MkdirAll(dst, 0o700)
		}
		b, err := os.ReadFile(p)
		if err != nil {
			return err
		}
		return os.WriteFile(dst, b, fi.Mode().Perm())
	})
	if err != nil {
		t.Fatalf("copy %s: %v", from, err)
	}
}
