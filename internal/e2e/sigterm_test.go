package e2e

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"go/build"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"github.com/google/uuid"

	"github.com/fieldsync/fieldsync/api"
	"github.com/fieldsync/fieldsync/internal/forms"
	"github.com/fieldsync/fieldsync/internal/store/sqlite"
)

// TestSIGTERMLosesNoAcknowledgedWrite builds the real binary, runs it on a SQLite
// data directory, has tablets push batches of new records without pause, and
// sends SIGTERM once some pushes were acknowledged and others are on their way.
// The process must exit with status 0 after draining what it had accepted, and
// every record a push answered "created" for must be in the SQLite file with the
// revision that push answered.
func TestSIGTERMLosesNoAcknowledgedWrite(t *testing.T) {
	if testing.Short() {
		t.Skip("builds and runs the fieldsync binary")
	}
	dir := t.TempDir()
	bin := filepath.Join(dir, "fieldsync")
	gocmd := filepath.Join(build.Default.GOROOT, "bin", "go")
	if out, err := exec.Command(gocmd, "build", "-o", bin, "github.com/fieldsync/fieldsync/cmd/fieldsync").CombinedOutput(); err != nil {
		t.Fatalf("go build: %v\n%s", err, out)
	}

	dataDir := filepath.Join(dir, "data")
	proc := startBinary(t, bin, dataDir)
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()

	// Set up through the API: a project, the survey form, four tablets.
	tr := http.DefaultTransport.(*http.Transport).Clone()
	tr.MaxIdleConnsPerHost = 16
	hc := &http.Client{Transport: tr, Timeout: time.Minute}
	defer tr.CloseIdleConnections()
	newClient := func(token string) *api.Client {
		c, err := api.NewClient(proc.url, api.WithHTTPClient(hc), api.WithToken(token))
		if err != nil {
			t.Fatal(err)
		}
		return c
	}
	tok, err := newClient("").Login(ctx, "admin", adminPassword)
	if err != nil {
		t.Fatalf("login: %v", err)
	}
	admin := newClient(tok.AccessToken)
	const project = "shutdown"
	if _, err := admin.CreateProject(ctx, project, "SIGTERM test"); err != nil {
		t.Fatalf("create project: %v", err)
	}
	publishForm(t, admin, project, "perception", "1", surveyForm(t), func() *forms.Service {
		// No form routes yet: publish through a second store on the same file,
		// as a second server process would.
		st, err := sqlite.Open(ctx, filepath.Join(dataDir, "fieldsync.db"))
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { st.Close() })
		return forms.NewService(forms.ServiceConfig{Store: st})
	})
	const pushers = 4
	var tablets [pushers]*api.Client
	for i := range tablets {
		d, err := admin.CreateDevice(ctx, project, fmt.Sprintf("tablet-%d", i))
		if err != nil {
			t.Fatalf("create device: %v", err)
		}
		dt, err := newClient("").Enroll(ctx, d.EnrollmentCode, nil)
		if err != nil {
			t.Fatalf("enroll: %v", err)
		}
		tablets[i] = newClient(dt.AccessToken)
	}

	// Push until the server goes away. Once enough pushes were acknowledged
	// and another one is in flight, the first pusher to notice sends SIGTERM.
	const (
		batch        = 100
		ackedBeforeT = 12
		maxBatches   = 500 // per pusher: a server that ignores SIGTERM still ends the test
	)
	var (
		inflight, ackedPushes atomic.Int64
		termOnce              sync.Once
		termInflight          int64
		mu                    sync.Mutex
		acked                 = map[string]string{} // record id → acknowledged rev
		failures              []string
	)
	sendTerm := func(n int64) {
		termOnce.Do(func() {
			termInflight = n
			if err := proc.cmd.Process.Signal(syscall.SIGTERM); err != nil {
				t.Errorf("SIGTERM: %v", err)
			}
		})
	}
	var wg sync.WaitGroup
	for p := range pushers {
		wg.Go(func() {
			for b := range maxBatches {
				subs := make([]api.Submission, batch)
				now := time.Now().UTC()
				for i := range subs {
					subs[i] = api.Submission{ID: uuid.NewString(), Form: "perception", FormVersion: "1",
						ClientModifiedAt: now, Data: surveyRecord(p*100000 + b*batch + i)}
				}
				inflight.Add(1)
				resp, err := push(ctx, tablets[p], project, subs)
				inflight.Add(-1)
				if err != nil {
					mu.Lock()
					failures = append(failures, err.Error())
					mu.Unlock()
					return // the server is going or gone: nothing later is acknowledged
				}
				mu.Lock()
				for i, res := range resp.Results {
					if res.Status != api.PushCreated || res.ID != subs[i].ID {
						t.Errorf("pusher %d batch %d item %d: %+v, want created", p, b, i, res)
						continue
					}
					acked[res.ID] = res.Rev
				}
				mu.Unlock()
				if n := ackedPushes.Add(1); n >= ackedBeforeT {
					if in := inflight.Load(); in > 0 {
						sendTerm(in)
					}
				}
			}
		})
	}
	wg.Wait()
	sendTerm(0) // in case every pusher stopped before the condition held

	code, logs := proc.wait(t, time.Minute)
	if code != 0 {
		t.Fatalf("fieldsync exited with status %d after SIGTERM; its log:\n%s", code, logs)
	}
	if !strings.Contains(logs, "shutting down") {
		t.Errorf("no shutdown line in the log:\n%s", logs)
	}
	t.Logf("%d pushes acknowledged (%d records); SIGTERM with %d in flight; %d pushes failed after it, like %q",
		ackedPushes.Load(), len(acked), termInflight, len(failures), first(failures))
	if termInflight == 0 {
		t.Errorf("SIGTERM was sent with no push in flight")
	}
	if len(acked) < ackedBeforeT*batch {
		t.Fatalf("only %d records acknowledged", len(acked))
	}

	// Every acknowledged record is in the file, at its acknowledged revision.
	st, err := sqlite.Open(context.Background(), filepath.Join(dataDir, "fieldsync.db"))
	if err != nil {
		t.Fatalf("open the store after exit: %v", err)
	}
	defer st.Close()
	ids := make([]string, 0, len(acked))
	for id := range acked {
		ids = append(ids, id)
	}
	slices.Sort(ids)
	got, err := st.GetRecords(context.Background(), project, ids)
	if err != nil {
		t.Fatalf("GetRecords: %v", err)
	}
	var lost []string
	for _, id := range ids {
		r, ok := got[id]
		switch {
		case !ok:
			lost = append(lost, fmt.Sprintf("%s: missing (acknowledged rev %s)", id, acked[id]))
		case r.Rev != acked[id]:
			lost = append(lost, fmt.Sprintf("%s: rev %s, acknowledged %s", id, r.Rev, acked[id]))
		case !json.Valid(r.Data):
			lost = append(lost, fmt.Sprintf("%s: data is not JSON", id))
		}
	}
	if len(lost) > 0 {
		t.Errorf("%d of %d acknowledged records are not as acknowledged:\n\t%s", len(lost), len(ids), short(lost, 10))
	}
}

func first(s []string) string {
	if len(s) == 0 {
		return ""
	}
	return s[0]
}

// binary is a running fieldsync process.
type binary struct {
	cmd    *exec.Cmd
	url    string
	stderr *lineWriter
	exited chan struct{} // closed when Wait returned
	err    error         // Wait's error, set before exited is closed
}

// startBinary starts the server on a fresh SQLite data directory, listening on a
// free local port, and waits for its "fieldsync listening" log line. The process
// is killed when the test ends if it is still running.
func startBinary(t *testing.T, bin, dataDir string) *binary {
	t.Helper()
	cmd := exec.Command(bin)
	for _, kv := range os.Environ() {
		if !strings.HasPrefix(kv, "FIELDSYNC_") {
			cmd.Env = append(cmd.Env, kv)
		}
	}
	cmd.Env = append(cmd.Env, "FIELDSYNC_DATA_DIR="+dataDir, "FIELDSYNC_ADDR=127.0.0.1:0",
		"FIELDSYNC_ADMIN_PASSWORD="+adminPassword, "FIELDSYNC_STORE=sqlite", "FIELDSYNC_LOG_LEVEL=info")
	lw := &lineWriter{listening: make(chan string, 1)}
	cmd.Stdout, cmd.Stderr = lw, lw
	if err := cmd.Start(); err != nil {
		t.Fatalf("start fieldsync: %v", err)
	}
	b := &binary{cmd: cmd, stderr: lw, exited: make(chan struct{})}
	go func() {
		b.err = cmd.Wait()
		close(b.exited)
	}()
	t.Cleanup(func() {
		select {
		case <-b.exited:
		default:
			_ = cmd.Process.Kill()
			<-b.exited
		}
	})
	select {
	case addr := <-lw.listening:
		b.url = "http://" + addr
	case <-b.exited:
		t.Fatalf("fieldsync exited before listening: %v\n%s", b.err, lw.String())
	case <-time.After(time.Minute):
		t.Fatalf("fieldsync did not log that it listens within a minute:\n%s", lw.String())
	}
	return b
}

// wait waits for the process to exit and returns its exit status and output.
func (b *binary) wait(t *testing.T, timeout time.Duration) (int, string) {
	t.Helper()
	select {
	case <-b.exited:
	case <-time.After(timeout):
		_ = b.cmd.Process.Kill()
		<-b.exited
		t.Fatalf("fieldsync did not exit within %v of SIGTERM:\n%s", timeout, b.stderr.String())
	}
	return b.cmd.ProcessState.ExitCode(), b.stderr.String()
}

// lineWriter keeps the process's output and reports the address of its
// "fieldsync listening" JSON log line.
type lineWriter struct {
	mu        sync.Mutex
	all       bytes.Buffer
	partial   []byte
	listening chan string
	found     bool
}

func (w *lineWriter) Write(p []byte) (int, error) {
	w.mu.Lock()
	defer w.mu.Unlock()
	w.all.Write(p)
	w.partial = append(w.partial, p...)
	for {
		i := bytes.IndexByte(w.partial, '\n')
		if i < 0 {
			break
		}
		line := w.partial[:i]
		var entry struct {
			Msg  string `json:"msg"`
			Addr string `json:"addr"`
		}
		if !w.found && json.Unmarshal(line, &entry) == nil && entry.Msg == "fieldsync listening" && entry.Addr != "" {
			w.found = true
			w.listening <- entry.Addr
		}
		w.partial = w.partial[i+1:]
	}
	return len(p), nil
}

func (w *lineWriter) String() string {
	w.mu.Lock()
	defer w.mu.Unlock()
	return w.all.String()
}
