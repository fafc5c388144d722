package e2e

import (
	"context"
	"fmt"
	"net/http"
	"path/filepath"
	"slices"
	"sync"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"github.com/google/uuid"

	"github.com/fieldsync/fieldsync/api"
	"github.com/fieldsync/fieldsync/internal/domain"
	"github.com/fieldsync/fieldsync/internal/forms"
	"github.com/fieldsync/fieldsync/internal/store/sqlite"
)

// TestSIGKILLSmallPushesLoseNothing runs the real binary on SQLite with many
// tablets each pushing one record at a time, so that the store commits their
// pushes in shared transactions (group commit), and kills the process with
// SIGKILL while pushes are in flight. Every push the server acknowledged must
// be in the file, at the acknowledged revision, and in the changes feed: an
// acknowledgement is sent only after the group holding the item committed.
func TestSIGKILLSmallPushesLoseNothing(t *testing.T) {
	if testing.Short() {
		t.Skip("builds and runs the fieldsync binary")
	}
	bin := buildFieldsync(t)
	dataDir := filepath.Join(t.TempDir(), "data")
	proc := startBinary(t, bin, dataDir)
	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Minute)
	defer cancel()

	const tablets = 32
	tr := http.DefaultTransport.(*http.Transport).Clone()
	tr.MaxIdleConnsPerHost = tablets
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
	const project = "killed"
	if _, err := admin.CreateProject(ctx, project, "SIGKILL test"); err != nil {
		t.Fatalf("create project: %v", err)
	}
	publishForm(t, admin, project, "perception", "1", surveyForm(t), func() *forms.Service {
		st, err := sqlite.Open(ctx, filepath.Join(dataDir, "fieldsync.db"))
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { st.Close() })
		return forms.NewService(forms.ServiceConfig{Store: st})
	})
	var cls [tablets]*api.Client
	for i := range cls {
		d, err := admin.CreateDevice(ctx, project, fmt.Sprintf("tablet-%d", i))
		if err != nil {
			t.Fatalf("create device: %v", err)
		}
		dt, err := newClient("").Enroll(ctx, d.EnrollmentCode, nil)
		if err != nil {
			t.Fatalf("enroll: %v", err)
		}
		cls[i] = newClient(dt.AccessToken)
	}

	// Push one record at a time from every tablet until the server is gone;
	// once enough pushes were acknowledged and others are in flight, kill it.
	const (
		ackedBeforeKill = 300
		maxPushes       = 2000 // per tablet: ends the test should the kill not happen
	)
	var (
		inflight, ackedPushes atomic.Int64
		killOnce              sync.Once
		killInflight          int64
		mu                    sync.Mutex
		acked                 = map[string]string{} // record id → acknowledged rev
	)
	kill := func(n int64) {
		killOnce.Do(func() {
			killInflight = n
			if err := proc.cmd.Process.Signal(syscall.SIGKILL); err != nil {
				t.Errorf("SIGKILL: %v", err)
			}
		})
	}
	var wg sync.WaitGroup
	for p := range tablets {
		wg.Go(func() {
			for b := range maxPushes {
				sub := api.Submission{ID: uuid.NewString(), Form: "perception", FormVersion: "1",
					ClientModifiedAt: time.Now().UTC(), Data: surveyRecord(p*100000 + b)}
				inflight.Add(1)
				resp, err := push(ctx, cls[p], project, []api.Submission{sub})
				inflight.Add(-1)
				if err != nil {
					return // killed: nothing later is acknowledged
				}
				if r := resp.Results[0]; r.Status != api.PushCreated || r.ID != sub.ID {
					t.Errorf("tablet %d push %d: %+v, want created", p, b, r)
					return
				}
				mu.Lock()
				acked[sub.ID] = resp.Results[0].Rev
				mu.Unlock()
				if n := ackedPushes.Add(1); n >= ackedBeforeKill {
					if in := inflight.Load(); in > 0 {
						kill(in)
					}
				}
			}
		})
	}
	wg.Wait()
	kill(0)
	<-proc.exited
	t.Logf("%d pushes acknowledged; SIGKILL with %d in flight", len(acked), killInflight)
	if killInflight == 0 {
		t.Errorf("SIGKILL was sent with no push in flight")
	}

	st, err := sqlite.Open(context.Background(), filepath.Join(dataDir, "fieldsync.db"))
	if err != nil {
		t.Fatalf("open the store after the kill: %v", err)
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
		if r, ok := got[id]; !ok {
			lost = append(lost, id+": missing")
		} else if r.Rev != acked[id] {
			lost = append(lost, fmt.Sprintf("%s: rev %s, acknowledged %s", id, r.Rev, acked[id]))
		}
	}
	if len(lost) > 0 {
		t.Errorf("%d of %d acknowledged pushes lost:\n\t%s", len(lost), len(ids), short(lost, 10))
	}
	// And the feed holds each of them once.
	inFeed := map[string]int{}
	for since := int64(0); ; {
		page, err := st.Changes(context.Background(), domain.ChangesQuery{ProjectID: project, Since: since, Limit: 1000})
		if err != nil {
			t.Fatalf("Changes: %v", err)
		}
		for _, r := range page.Records {
			inFeed[r.ID]++
		}
		since = page.Next
		if !page.More {
			break
		}
	}
	for _, id := range ids {
		if inFeed[id] != 1 {
			t.Errorf("record %s %d times in the feed, want once", id, inFeed[id])
		}
	}
}
