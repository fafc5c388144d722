package mongo_test

import (
	"context"
	"fmt"
	"sync"
	"testing"
	"time"

	"github.com/fieldsync/fieldsync/internal/domain"
	"github.com/fieldsync/fieldsync/internal/store/mongo"
	"github.com/fieldsync/fieldsync/internal/store/mongo/mongotest"
	"github.com/fieldsync/fieldsync/internal/store/storetest"
)

// TestCompaction writes records and rewrites them, then sweeps: every change
// superseded by a later one at or below the watermark is gone, the feed from
// the start still holds each record once in its latest state, and a reader
// whose cursor is in the compacted range loses nothing.
func TestCompaction(t *testing.T) {
	st := quietStore(t)
	ctx := ctxT(t)
	const (
		p       = "compact"
		records = 12
		gens    = 4
	)
	revs := map[string]string{}
	var early int64 // a reader's cursor after the first generation
	for gen := 1; gen <= gens; gen++ {
		for i := range records {
			id := fmt.Sprintf("r%02d", i)
			revs[id] = write(t, st, rec(p, id, "x", gen, revs[id]))[0].Record.Rev
		}
		if gen == 1 {
			_, early = pullAll(t, st, domain.ChangesQuery{ProjectID: p})
		}
	}
	if n, _ := st.ChangeCount(ctx, p); n != records*gens {
		t.Fatalf("%d changes before compaction, want %d", n, records*gens)
	}
	if err := st.Sweep(ctx); err != nil {
		t.Fatal(err)
	}
	if n, _ := st.ChangeCount(ctx, p); n != records {
		t.Errorf("%d changes after compaction, want %d (one per record)", n, records)
	}
	for _, since := range []int64{0, early, early + 3} {
		got, _ := pullAll(t, st, domain.ChangesQuery{ProjectID: p, Since: since, Limit: 5})
		seen := map[string]bool{}
		for _, r := range got {
			if seen[r.ID] || r.Rev != revs[r.ID] {
				t.Errorf("since %d: %s twice or not at its latest rev (%s)", since, r.ID, r.Rev)
			}
			seen[r.ID] = true
		}
		if len(seen) != records {
			t.Errorf("since %d: %d records, want %d", since, len(seen), records)
		}
	}
	_, _, compacted := st.FeedCounts()
	t.Logf("compaction removed %d changes", compacted)
}

// TestFeedUnderCompaction runs the suite's concurrent feed check on two
// instances while a third sweeps (raising the watermark and compacting)
// without pause, then checks that compaction left about one change per record.
func TestFeedUnderCompaction(t *testing.T) {
	cfg := mongotest.Config(t)
	var stores []*mongo.Store
	for range 3 {
		st, err := mongo.Open(t.Context(), cfg)
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { st.Close() })
		stores = append(stores, st)
	}
	ctx, stop := context.WithCancel(t.Context())
	var wg sync.WaitGroup
	wg.Add(1)
	sweeps := 0
	go func() {
		defer wg.Done()
		for ctx.Err() == nil {
			if err := stores[2].Sweep(ctx); err != nil && ctx.Err() == nil {
				t.Errorf("sweep: %v", err)
				return
			}
			sweeps++
		}
	}()
	storetest.RunConcurrentFeed(t, stores[0], stores[1])
	stop()
	wg.Wait()
	_, _, compacted := stores[2].FeedCounts()
	if err := stores[2].Sweep(t.Context()); err != nil {
		t.Fatal(err)
	}
	all, _ := pullAll(t, stores[0], domain.ChangesQuery{ProjectID: "juba"})
	n, err := stores[0].ChangeCount(t.Context(), "juba")
	if err != nil {
		t.Fatal(err)
	}
	// A write completed by a reader as well as by its writer has two changes,
	// of which compaction removes only the one the next write names: a few may
	// stay.
	if n > int64(len(all))+int64(len(all))/4 {
		t.Errorf("%d changes left for %d records", n, len(all))
	}
	t.Logf("%d sweeps removed %d changes during the run; %d changes left for %d records", sweeps, compacted, n, len(all))
}

// TestTabletPageCost shows what a tablet's pull costs: in a project where the
// tablet sees one record in ten, a page of L records examines about L changes
// (not the project's), and the gap check reads only the feed's tail above the
// watermark.
func TestTabletPageCost(t *testing.T) {
	st := quietStore(t)
	ctx := ctxT(t)
	const (
		p       = "cost"
		tablets = 10
		total   = 100
		limit   = 3
	)
	var batch []domain.RecordWrite
	for i := range total {
		batch = append(batch, rec(p, fmt.Sprintf("r%03d", i), fmt.Sprintf("device:d%d", i%tablets), 1, ""))
		if len(batch) == 25 {
			write(t, st, batch...)
			batch = nil
		}
	}
	if err := st.Sweep(ctx); err != nil { // as the background sweep would have
		t.Fatal(err)
	}
	_, swept, _ := st.FeedCounts()
	q := domain.ChangesQuery{ProjectID: p, Subjects: []string{"device:d3"}, Limit: limit}
	pages, got := 0, 0
	for {
		e0, v0, _ := st.FeedCounts()
		page, err := st.Changes(ctx, q)
		if err != nil {
			t.Fatal(err)
		}
		e1, v1, _ := st.FeedCounts()
		pages++
		got += len(page.Records)
		if e1-e0 > limit+1 || v1-v0 > 1 {
			t.Errorf("page %d (%d records): %d changes examined, %d positions checked; want at most %d and 1",
				pages, len(page.Records), e1-e0, v1-v0, limit+1)
		}
		q.Since = page.Next
		if !page.More {
			break
		}
	}
	if got != total/tablets {
		t.Fatalf("the tablet pulled %d records, want %d", got, total/tablets)
	}
	examined, verified, _ := st.FeedCounts()
	t.Logf("%d pages of up to %d: %d changes examined, %d positions checked (the sweep before: %d), for %d records of %d",
		pages, limit, examined, verified-swept, swept, got, total)
}

// quietStore opens a store whose background sweep does not run during the
// test (only at Open, on the empty database), so the test decides when the
// feed is compacted and the counts are the test's own.
func quietStore(t *testing.T) *mongo.Store {
	cfg := mongotest.Config(t)
	cfg.SweepInterval = time.Hour
	st, err := mongo.Open(t.Context(), cfg)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { st.Close() })
	return st
}
