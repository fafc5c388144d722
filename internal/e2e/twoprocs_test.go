package e2e

import (
	"context"
	"encoding/base64"
	"encoding/json"
	"fmt"
	"go/build"
	"log/slog"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/google/uuid"

	"github.com/fieldsync/fieldsync/api"
	"github.com/fieldsync/fieldsync/internal/store/mongo"
	"github.com/fieldsync/fieldsync/internal/store/mongo/mongotest"
)

// buildFieldsync builds the server binary into a temporary directory.
func buildFieldsync(t *testing.T) string {
	t.Helper()
	bin := filepath.Join(t.TempDir(), "fieldsync")
	gocmd := filepath.Join(build.Default.GOROOT, "bin", "go")
	if out, err := exec.Command(gocmd, "build", "-o", bin, "github.com/fieldsync/fieldsync/cmd/fieldsync").CombinedOutput(); err != nil {
		t.Fatalf("go build: %v\n%s", err, out)
	}
	return bin
}

// processEnv is the environment of a fieldsync process: this one's without
// any FIELDSYNC_ setting, plus settings.
func processEnv(settings ...string) []string {
	var env []string
	for _, kv := range os.Environ() {
		if !strings.HasPrefix(kv, "FIELDSYNC_") {
			env = append(env, kv)
		}
	}
	return append(env, settings...)
}

// startProcess starts bin with the environment env, waits for its "fieldsync
// listening" line, and kills it when the test ends if it still runs.
func startProcess(t *testing.T, bin string, env []string) *binary {
	t.Helper()
	cmd := exec.Command(bin)
	cmd.Env = env
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
	case <-time.After(2 * time.Minute):
		t.Fatalf("fieldsync did not log that it listens within two minutes:\n%s", lw.String())
	}
	return b
}

// kidOf returns the kid in the header of a JWT.
func kidOf(t *testing.T, token string) string {
	t.Helper()
	head, _, _ := strings.Cut(token, ".")
	b, err := base64.RawURLEncoding.DecodeString(head)
	if err != nil {
		t.Fatalf("token header: %v", err)
	}
	var h struct {
		Kid string `json:"kid"`
	}
	if err := json.Unmarshal(b, &h); err != nil {
		t.Fatal(err)
	}
	return h.Kid
}

// TestTwoProcessesOneMongo runs two fieldsync processes on one database of
// the MongoDB-protocol server, as two instances behind a load balancer:
// tablets push through both, one process is killed with SIGKILL in the middle
// of pushes, and the tablets go on through the other. Every acknowledged item
// is stored at its acknowledged revision and in the feed; the batches the
// killed process never answered are taken when pushed again. A signing key
// made by `fieldsync keys rotate` on the store is then used by both
// processes, and a token signed with it by one is accepted by the other.
func TestTwoProcessesOneMongo(t *testing.T) {
	if testing.Short() {
		t.Skip("builds and runs two fieldsync processes")
	}
	bin := buildFieldsync(t)
	cfg := mongotest.Config(t)
	storeURI := strings.TrimRight(cfg.URI, "/") + "/" + cfg.Database
	secret := base64.StdEncoding.EncodeToString([]byte("0123456789abcdef0123456789abcdef"))
	env := processEnv("FIELDSYNC_STORE="+storeURI, "FIELDSYNC_SECRET_KEY="+secret, "FIELDSYNC_ADDR=127.0.0.1:0",
		"FIELDSYNC_ADMIN_PASSWORD="+adminPassword, "FIELDSYNC_DATA_DIR="+t.TempDir(), "FIELDSYNC_LOG_LEVEL=info")
	procs := [2]*binary{startProcess(t, bin, env), startProcess(t, bin, env)}

	// The race detector slows the embedded FerretDB several times: less work,
	// more patience.
	batches, batch := 8, 10
	if raceEnabled {
		batches, batch = 4, 5
	}
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Minute)
	defer cancel()
	tr := http.DefaultTransport.(*http.Transport).Clone()
	hc := &http.Client{Transport: tr, Timeout: time.Minute}
	defer tr.CloseIdleConnections()
	client := func(i int, token string) *api.Client {
		c, err := api.NewClient(procs[i].url, api.WithHTTPClient(hc), api.WithToken(token))
		if err != nil {
			t.Fatal(err)
		}
		return c
	}
	tok, err := client(0, "").Login(ctx, "admin", adminPassword)
	if err != nil {
		t.Fatalf("login on process 0: %v", err)
	}
	const project = "twoprocs"
	if _, err := client(1, tok.AccessToken).CreateProject(ctx, project, "Two processes"); err != nil {
		t.Fatalf("create project through process 1: %v", err)
	}
	publishForm(t, client(0, tok.AccessToken), project, "site", "1", siteForm(false), nil)
	const tablets = 4
	var tokens [tablets]string
	for i := range tokens {
		d, err := client(i%2, tok.AccessToken).CreateDevice(ctx, project, fmt.Sprintf("tablet-%d", i))
		if err != nil {
			t.Fatal(err)
		}
		dt, err := client((i+1)%2, "").Enroll(ctx, d.EnrollmentCode, nil)
		if err != nil {
			t.Fatal(err)
		}
		tokens[i] = dt.AccessToken
	}

	// Tablets push through both processes; once enough is acknowledged and
	// pushes are in flight, process 1 is killed.
	var (
		mu       sync.Mutex
		acked    = map[string]string{}
		failed   []failedBatch
		pushes   atomic.Int64
		inflight [2]atomic.Int64
		killOnce sync.Once
		killed   = make(chan struct{})
		kill     = func() {
			killOnce.Do(func() {
				if err := procs[1].cmd.Process.Kill(); err != nil {
					t.Errorf("SIGKILL: %v", err)
				}
				close(killed)
			})
		}
		wg sync.WaitGroup
	)
	for p := range tablets {
		wg.Go(func() {
			for b := 0; b < batches && ctx.Err() == nil; b++ {
				via := (p + b) % 2
				select {
				case <-killed:
					via = 0
				default:
				}
				subs := make([]api.Submission, batch)
				for i := range subs {
					subs[i] = api.Submission{ID: uuid.NewString(), Form: "site", FormVersion: "1", ClientModifiedAt: time.Now().UTC(),
						Data: fmt.Appendf(nil, `{"site":"t%d-b%d-%d","visit":%d}`, p, b, i, i)}
				}
				inflight[via].Add(1)
				resp, err := push(ctx, client(via, tokens[p]), project, subs)
				inflight[via].Add(-1)
				mu.Lock()
				if err != nil {
					failed = append(failed, failedBatch{p, subs})
				} else {
					for i, r := range resp.Results {
						if r.Status != api.PushCreated {
							t.Errorf("item %s: %+v", subs[i].ID, r)
						}
						acked[r.ID] = r.Rev
					}
				}
				mu.Unlock()
				if n := pushes.Add(1); n >= int64(batches) && inflight[1].Load() > 0 {
					kill()
				}
			}
		})
	}
	wg.Wait()
	kill()
	<-procs[1].exited
	t.Logf("%d pushes, %d records acknowledged, %d batches not acknowledged", pushes.Load(), len(acked), len(failed))
	for _, f := range failed {
		resp, err := push(ctx, client(0, tokens[f.tablet]), project, f.subs)
		if err != nil {
			t.Fatalf("push a batch the killed process did not answer again: %v", err)
		}
		for i, r := range resp.Results {
			if r.Status != api.PushCreated && r.Status != api.PushUnchanged {
				t.Errorf("item %s pushed again: %+v", f.subs[i].ID, r)
			}
			acked[r.ID] = r.Rev
		}
	}

	// Every acknowledged item is in the database at its revision, and once in
	// the feed.
	st, err := mongo.Open(ctx, mongo.Config{URI: cfg.URI, Database: cfg.Database, Logger: slog.New(slog.DiscardHandler)})
	if err != nil {
		t.Fatal(err)
	}
	defer st.Close()
	ids := make([]string, 0, len(acked))
	for id := range acked {
		ids = append(ids, id)
	}
	got, err := st.GetRecords(ctx, project, ids)
	if err != nil {
		t.Fatal(err)
	}
	var lost []string
	for id, rev := range acked {
		if r, ok := got[id]; !ok || r.Rev != rev {
			lost = append(lost, id)
		}
	}
	if len(lost) > 0 {
		t.Fatalf("%d of %d acknowledged records are not as acknowledged: %s", len(lost), len(acked), short(lost, 5))
	}
	admin := client(0, tok.AccessToken)
	seen := map[string]int{}
	for since := ""; ; {
		page, err := pull(ctx, admin, project, since, 1000)
		if err != nil {
			t.Fatalf("pull: %v", err)
		}
		for _, ch := range page.Changes {
			seen[ch.ID]++
		}
		if !page.More {
			break
		}
		since = page.Next
	}
	for id := range acked {
		if seen[id] != 1 {
			lost = append(lost, fmt.Sprintf("%s: %d times", id, seen[id]))
		}
	}
	if len(lost) > 0 {
		t.Errorf("acknowledged records not once in the feed: %s", short(lost, 5))
	}

	// A key rotated on the store is used by the other process: restart the
	// second, rotate with the first one's settings, and wait until each signs
	// with the new key; each accepts the other's tokens.
	procs[1] = startProcess(t, bin, env)
	rot := exec.CommandContext(ctx, bin, "keys", "rotate")
	rot.Env = env
	out, err := rot.Output()
	if err != nil {
		t.Fatalf("fieldsync keys rotate: %v\n%s", err, out)
	}
	m := regexp.MustCompile(`New signing key (\S+) made`).FindSubmatch(out)
	if m == nil {
		t.Fatalf("keys rotate said %q", out)
	}
	newKid := string(m[1])
	var newTokens [2]string
	for i := range procs {
		deadline := time.Now().Add(2 * time.Minute) // the key ring reloads every 30 s
		for {
			tk, err := client(i, "").Login(ctx, "admin", adminPassword)
			if err != nil {
				t.Fatalf("login on process %d: %v", i, err)
			}
			if kidOf(t, tk.AccessToken) == newKid {
				newTokens[i] = tk.AccessToken
				break
			}
			if time.Now().After(deadline) {
				t.Fatalf("process %d still signs with %s, not the rotated key %s", i, kidOf(t, tk.AccessToken), newKid)
			}
			select {
			case <-time.After(time.Second): // polling the observable: the kid of a fresh token
			case <-ctx.Done():
				t.Fatal(ctx.Err())
			}
		}
	}
	for i := range procs {
		if _, err := client(1-i, newTokens[i]).ListProjects(ctx); err != nil {
			t.Errorf("a token of process %d signed with the rotated key, used on process %d: %v", i, 1-i, err)
		}
	}
}
