package httpapi

import (
	"bytes"
	"context"
	"fmt"
	"net/http"
	"regexp"
	"strconv"
	"testing"
	"time"

	"github.com/fieldsync/fieldsync/api"
)

// pushWaiting reads fieldsync_push_items_waiting from GET /metrics.
func (ts *testServer) pushWaiting(t *testing.T) int {
	t.Helper()
	_, body := ts.get(t, "/metrics")
	m := regexp.MustCompile(`(?m)^fieldsync_push_items_waiting (\S+)$`).FindSubmatch(body)
	if m == nil {
		t.Fatal("/metrics lacks fieldsync_push_items_waiting")
	}
	v, err := strconv.ParseFloat(string(m[1]), 64)
	if err != nil {
		t.Fatal(err)
	}
	return int(v)
}

// waitPushWaiting polls the metric until it reads n.
func (ts *testServer) waitPushWaiting(t *testing.T, n int) {
	t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for {
		got := ts.pushWaiting(t)
		if got == n {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("fieldsync_push_items_waiting = %d, want %d", got, n)
		}
		time.Sleep(5 * time.Millisecond) // polling an observable condition, with a deadline
	}
}

// sendPush posts a push body without failing the test from its goroutine; the
// channel yields the status and the body (or the client's error).
func (e *syncEnv) sendPush(ctx context.Context, token string, body []byte) <-chan error {
	out := make(chan error, 1)
	go func() {
		req, err := http.NewRequestWithContext(ctx, http.MethodPost, e.ts.URL+pushPath(), bytes.NewReader(body))
		if err != nil {
			out <- err
			return
		}
		req.Header.Set("Authorization", "Bearer "+token)
		req.Header.Set("Content-Type", "application/json")
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			out <- err
			return
		}
		resp.Body.Close()
		if resp.StatusCode != http.StatusOK {
			out <- fmt.Errorf("status %d", resp.StatusCode)
			return
		}
		out <- nil
	}()
	return out
}

// TestPushAdmission: while pushItemsInFlight items are being worked on, a
// further push waits its turn with its body read (the metric counts its
// items) and writes nothing; it is served when a turn frees up. A client that
// gives up while waiting leaves the queue without a trace, the largest push
// still goes through on its own, and a push larger than that is refused at
// once instead of waiting for a turn it would not use.
func TestPushAdmission(t *testing.T) {
	e := newSyncEnv(t)
	ctx := context.Background()
	if got := e.ts.pushWaiting(t); got != 0 {
		t.Fatalf("fieldsync_push_items_waiting = %d on an idle server", got)
	}

	// Every turn taken, as by pushes of 1,000 items in work.
	if err := e.ts.srv.pushSlots.Acquire(ctx, pushItemsInFlight); err != nil {
		t.Fatal(err)
	}
	a, b := e.newSub("survey", `{"name": "waits"}`), e.newSub("survey", `{"name": "waits too"}`)
	done := e.sendPush(ctx, e.devA.token, pushBody(t, a, b))
	e.ts.waitPushWaiting(t, 2)
	e.ts.want(t, http.StatusNotFound, http.MethodGet, "/v1/projects/"+syncProject+"/records/"+a.ID, e.analyst, nil, nil)

	// A tablet whose link drops while it waits.
	cctx, cancel := context.WithCancel(ctx)
	c := e.newSub("survey", `{"name": "given up"}`)
	gaveUp := e.sendPush(cctx, e.devB.token, pushBody(t, c))
	e.ts.waitPushWaiting(t, 3)
	cancel()
	if err := <-gaveUp; err == nil {
		t.Fatal("the cancelled push was answered 200")
	}
	e.ts.waitPushWaiting(t, 2)

	e.ts.srv.pushSlots.Release(pushItemsInFlight)
	if err := <-done; err != nil {
		t.Fatalf("the waiting push: %v", err)
	}
	e.ts.waitPushWaiting(t, 0)
	for _, s := range []api.Submission{a, b} {
		if got := e.record(t, e.analyst, s.ID); got.Rev == "" {
			t.Errorf("record %s not stored after its turn came", s.ID)
		}
	}
	e.ts.want(t, http.StatusNotFound, http.MethodGet, "/v1/projects/"+syncProject+"/records/"+c.ID, e.analyst, nil, nil)

	// The largest push (as many items as the bound) takes every turn, and
	// goes through.
	big := make([]any, pushItemsInFlight)
	for i := range big {
		big[i] = e.newSub("survey", fmt.Sprintf(`{"name": "item %d"}`, i))
	}
	res := e.push(t, e.devA.token, big...)
	for i, r := range res {
		if r.Status != api.PushCreated {
			t.Fatalf("item %d of the big push: %s", i, r.Status)
		}
	}
	// One item too many is refused at once, even while every turn is taken.
	if err := e.ts.srv.pushSlots.Acquire(ctx, pushItemsInFlight); err != nil {
		t.Fatal(err)
	}
	tooMany := append(big, e.newSub("survey", `{"name": "one too many"}`))
	e.ts.want(t, http.StatusRequestEntityTooLarge, http.MethodPost, pushPath(), e.devA.token, pushBody(t, tooMany...), nil)
	e.ts.srv.pushSlots.Release(pushItemsInFlight)
	// Every turn is free again.
	if !e.ts.srv.pushSlots.TryAcquire(pushItemsInFlight) {
		t.Fatal("turns were not given back")
	}
	e.ts.srv.pushSlots.Release(pushItemsInFlight)
}
