package e2e

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net/http"
	"slices"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/google/uuid"

	"github.com/fieldsync/fieldsync/api"
	"github.com/fieldsync/fieldsync/internal/domain"
	"github.com/fieldsync/fieldsync/internal/store/mongo"
	"github.com/fieldsync/fieldsync/internal/store/mongo/mongotest"
)

// TestMongoOutageMidRun stops the MongoDB-protocol server while tablets push
// through two instances, and starts it again. While it is down, pushes answer
// 503 with Retry-After and the code store_unavailable, and /readyz answers 503;
// once it is back, the same servers (no restart) answer again. Every item a
// push acknowledged is stored at the acknowledged revision and in the feed,
// and every batch that failed, pushed again, is taken without a conflict: a
// failed push acknowledged nothing it did not store.
func TestMongoOutageMidRun(t *testing.T) {
	if testing.Short() {
		t.Skip("stops and restarts a FerretDB")
	}
	srv := mongotest.NewServer(t)
	// How long a command waits for a server before it fails: the driver's
	// default is 30 s; an operator sets it in the URI (README: Operations).
	uri := srv.URI() + "?serverSelectionTimeoutMS=1000"
	var stores [2]domain.Store
	for i := range stores {
		ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
		observe, remember := storeMetrics(t)
		st, err := mongo.Open(ctx, mongo.Config{URI: uri, Database: "outage", Logger: slog.New(slog.DiscardHandler),
			VoidGrace: time.Second, PendingGrace: time.Minute, Observe: observe})
		remember(st)
		cancel()
		if err != nil {
			t.Fatalf("mongo.Open: %v", err)
		}
		t.Cleanup(func() { st.Close() })
		stores[i] = st
	}
	c := newCluster(t, stores)
	c.publish("site", "1", siteForm(false))
	const pushers = 2
	var tablets [pushers]device
	for i := range tablets {
		tablets[i] = c.addDevice(fmt.Sprintf("tablet-%d", i))
	}
	// The race detector slows the embedded FerretDB several times: less work,
	// more patience.
	batch, acks := 10, int64(4)
	if raceEnabled {
		batch, acks = 5, 2
	}
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Minute)
	defer cancel()

	type phase int32
	const (
		before phase = iota // the store runs: wait for acknowledgements
		down                // stopped: wait for 503s
		back                // started again: wait for acknowledgements
		done
	)
	var (
		cur         atomic.Int32
		ackedIn     [done]atomic.Int64
		mu          sync.Mutex
		acked       = map[string]string{} // id → acknowledged rev
		failed      []failedBatch         // to push again
		unavailable []*api.Problem
		other       []string
		advance     = make(chan struct{}, 1)
		kick        = func() {
			select {
			case advance <- struct{}{}:
			default:
			}
		}
	)
	var wg sync.WaitGroup
	for p := range pushers {
		cl := c.client(p%2, tablets[p].token)
		wg.Go(func() {
			for b := 0; phase(cur.Load()) != done && ctx.Err() == nil; b++ {
				subs := make([]api.Submission, batch)
				for i := range subs {
					subs[i] = api.Submission{ID: uuid.NewString(), Form: "site", FormVersion: "1", ClientModifiedAt: time.Now().UTC(),
						Data: fmt.Appendf(nil, `{"site":"s-%d-%d-%d","visit":%d}`, p, b, i, i)}
				}
				ph := phase(cur.Load())
				resp, err := push(ctx, cl, c.project, subs)
				mu.Lock()
				var pr *api.Problem
				switch {
				case err == nil:
					for i, r := range resp.Results {
						if r.Status != api.PushCreated {
							other = append(other, fmt.Sprintf("item %s: %+v", subs[i].ID, r))
							continue
						}
						acked[r.ID] = r.Rev
					}
					ackedIn[ph].Add(1)
				case errors.As(err, &pr) && pr.Status == http.StatusServiceUnavailable:
					unavailable = append(unavailable, pr)
					failed = append(failed, failedBatch{p, subs})
				case errors.As(err, &pr) && pr.Status == http.StatusUnauthorized:
					// A token check that could not reach the store is 503, never 401.
					other = append(other, "401 during the outage: "+err.Error())
				default:
					other = append(other, err.Error())
					failed = append(failed, failedBatch{p, subs})
				}
				mu.Unlock()
				kick()
			}
		})
	}
	readyz := func(i int) int {
		req, _ := http.NewRequestWithContext(ctx, http.MethodGet, c.inst[i].srv.URL+"/readyz", nil)
		resp, err := c.hc.Do(req)
		if err != nil {
			t.Fatalf("readyz: %v", err)
		}
		resp.Body.Close()
		return resp.StatusCode
	}
	start := time.Now()
	waitFor := func(what string, cond func() bool) {
		t.Helper()
		defer func() { t.Logf("%v: %s", time.Since(start).Round(time.Millisecond), what) }()
		for !cond() {
			select {
			case <-advance:
			case <-time.After(100 * time.Millisecond): // readyz is polled, not pushed
			case <-ctx.Done():
				t.Fatalf("waiting for %s: %v (unavailable %d, other %q)", what, ctx.Err(), len(unavailable), other)
			}
		}
	}
	waitFor("acknowledged pushes before the outage", func() bool { return ackedIn[before].Load() >= acks })

	srv.Stop()
	cur.Store(int32(down))
	waitFor("503 answers during the outage", func() bool {
		mu.Lock()
		defer mu.Unlock()
		return len(unavailable) >= pushers
	})
	for i := range c.inst {
		waitFor(fmt.Sprintf("instance %d /readyz 503", i), func() bool { return readyz(i) == http.StatusServiceUnavailable })
	}

	srv.Start()
	cur.Store(int32(back))
	for i := range c.inst {
		waitFor(fmt.Sprintf("instance %d /readyz 200 after the store came back", i), func() bool { return readyz(i) == http.StatusOK })
	}
	waitFor("acknowledged pushes after the outage", func() bool { return ackedIn[back].Load() >= acks })
	cur.Store(int32(done))
	wg.Wait()

	t.Logf("acknowledged pushes: %d before, %d during, %d after the outage; %d answered 503, %d records acknowledged",
		ackedIn[before].Load(), ackedIn[down].Load(), ackedIn[back].Load(), len(unavailable), len(acked))
	if len(other) > 0 {
		t.Errorf("answers that were neither an acknowledgement nor a 503:\n\t%s", short(other, 10))
	}
	for _, p := range unavailable {
		if p.Code != api.CodeStoreUnavailable && p.Code != "busy" {
			t.Errorf("503 with code %q, want %s: %v", p.Code, api.CodeStoreUnavailable, p)
		}
		if p.RetryAfter <= 0 {
			t.Errorf("503 without Retry-After: %v", p)
		}
	}

	// Pushed again, a failed batch is taken: created if it never got in,
	// unchanged if some of it did (the acknowledgement was what got lost).
	for _, f := range failed {
		subs := f.subs
		resp, err := push(ctx, c.client(0, tablets[f.tablet].token), c.project, subs)
		if err != nil {
			t.Fatalf("push a failed batch again: %v", err)
		}
		for i, r := range resp.Results {
			if r.Status != api.PushCreated && r.Status != api.PushUnchanged {
				t.Errorf("item %s pushed again: %+v, want created or unchanged", subs[i].ID, r)
				continue
			}
			mu.Lock()
			acked[r.ID] = r.Rev
			mu.Unlock()
		}
	}

	// Every acknowledged item is stored at its revision, and in the feed.
	ids := make([]string, 0, len(acked))
	for id := range acked {
		ids = append(ids, id)
	}
	got, err := stores[1].GetRecords(ctx, c.project, ids)
	if err != nil {
		t.Fatalf("GetRecords: %v", err)
	}
	var lost []string
	for id, rev := range acked {
		switch r, ok := got[id]; {
		case !ok:
			lost = append(lost, id+": missing")
		case r.Rev != rev:
			lost = append(lost, fmt.Sprintf("%s: rev %s, acknowledged %s", id, r.Rev, rev))
		}
	}
	slices.Sort(lost)
	if len(lost) > 0 {
		t.Fatalf("%d of %d acknowledged records are not as acknowledged:\n\t%s", len(lost), len(acked), short(lost, 10))
	}
	inFeed := map[string]bool{}
	for since := ""; ; {
		page, err := pull(ctx, c.admin[0], c.project, since, 1000)
		if err != nil {
			t.Fatalf("pull: %v", err)
		}
		for _, ch := range page.Changes {
			inFeed[ch.ID] = true
		}
		if !page.More {
			break
		}
		since = page.Next
	}
	for id := range acked {
		if !inFeed[id] {
			lost = append(lost, id)
		}
	}
	if len(lost) > 0 {
		t.Errorf("%d acknowledged records are not in the feed: %s", len(lost), short(lost, 10))
	}
}

// failedBatch is a push that was not acknowledged, and the tablet that sent it.
type failedBatch struct {
	tablet int
	subs   []api.Submission
}
