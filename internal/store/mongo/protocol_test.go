package mongo_test

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"sync"
	"testing"

	"go.mongodb.org/mongo-driver/v2/bson"
	"go.mongodb.org/mongo-driver/v2/event"

	"github.com/fieldsync/fieldsync/internal/domain"
	"github.com/fieldsync/fieldsync/internal/store/mongo"
	"github.com/fieldsync/fieldsync/internal/store/mongo/mongotest"
)

// errCrash stands for a writer that dies between two steps of a write.
var errCrash = errors.New("writer crashed")

// TestPendingWriteNeverSettled stages a writer that dies between applying a
// write (step b) and appending its change (step c), then plays the sync
// service's resend through a second instance: it reads the record (GetRecords),
// finds its own rev and would answer "unchanged". By then the change must be in
// the feed, with no wait for the sweep: a pull from the start lists the record.
func TestPendingWriteNeverSettled(t *testing.T) {
	cfg := mongotest.Config(t)
	ctx := ctxT(t)
	var stores []*mongo.Store
	for range 2 {
		st, err := mongo.Open(ctx, cfg) // PendingGrace is a minute: no sweep helps
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { st.Close() })
		stores = append(stores, st)
	}
	const p = "pending"
	crashing, other := stores[0], stores[1]
	crashing.SetAfterApply(func() error { return errCrash })

	for _, tc := range []struct {
		name  string
		write func() domain.RecordWrite
		read  func(id string) (domain.Record, error)
	}{
		{"create, GetRecords", func() domain.RecordWrite { return rec(p, "a", "x", 1, "") },
			func(id string) (domain.Record, error) {
				m, err := other.GetRecords(ctx, p, []string{id})
				return m[id], err
			}},
		{"create, GetRecord", func() domain.RecordWrite { return rec(p, "b", "x", 1, "") },
			func(id string) (domain.Record, error) { return other.GetRecord(ctx, p, id) }},
	} {
		t.Run(tc.name, func(t *testing.T) {
			w := tc.write()
			_, since := pullAll(t, other, domain.ChangesQuery{ProjectID: p})
			if _, err := crashing.WriteRecords(ctx, []domain.RecordWrite{w}); !errors.Is(err, errCrash) {
				t.Fatalf("crashed write: %v", err)
			}
			got, err := tc.read(w.Record.ID)
			if err != nil || got.Rev != w.Record.Rev {
				t.Fatalf("read after the crash: %+v, %v; want rev %s", got, err, w.Record.Rev)
			}
			// The service answers "unchanged" now; the tablet must then get the
			// record from the feed.
			feed, _ := pullAll(t, other, domain.ChangesQuery{ProjectID: p, Since: since})
			if len(feed) != 1 || feed[0].ID != w.Record.ID || feed[0].Rev != w.Record.Rev {
				t.Fatalf("feed after the read = %+v; want %s at rev %s", feed, w.Record.ID, w.Record.Rev)
			}
			if got.Seq != feed[0].Seq {
				t.Errorf("read gave Seq %d, the feed %d", got.Seq, feed[0].Seq)
			}
			if _, err := other.GetRevision(ctx, p, w.Record.ID, w.Record.Rev); err != nil {
				t.Errorf("the settled write's revision: %v", err)
			}
		})
	}

	t.Run("update, then a write on top", func(t *testing.T) {
		crashing.SetAfterApply(nil)
		w1 := write(t, crashing, rec(p, "c", "x", 1, ""))[0]
		_, since := pullAll(t, other, domain.ChangesQuery{ProjectID: p})
		crashing.SetAfterApply(func() error { return errCrash })
		w2 := rec(p, "c", "x", 2, w1.Record.Rev)
		if _, err := crashing.WriteRecords(ctx, []domain.RecordWrite{w2}); !errors.Is(err, errCrash) {
			t.Fatalf("crashed write: %v", err)
		}
		// A write based on the crashed one's rev settles it first: both
		// revisions are history, and the feed holds the latest state.
		w3 := write(t, other, rec(p, "c", "x", 3, w2.Record.Rev))[0]
		revs, err := other.ListRevisions(ctx, p, "c")
		if err != nil || len(revs) != 3 {
			t.Fatalf("history = %+v, %v; want 3 revisions", revs, err)
		}
		feed, _ := pullAll(t, other, domain.ChangesQuery{ProjectID: p, Since: since})
		if len(feed) != 1 || feed[0].Rev != w3.Record.Rev {
			t.Fatalf("feed = %+v; want c at %s", feed, w3.Record.Rev)
		}
	})
}

// shardKeyMonitor returns a command monitor that collects every query, update
// or delete of a sharded collection whose filter does not name project_id: on a
// sharded cluster such an operation goes to every shard, and before MongoDB 7.1
// a findAndModify without the shard key fails. TestStore runs the conformance
// suite through it; report lists what it collected.
func shardKeyMonitor() (monitor *event.CommandMonitor, report func() []string) {
	sharded := map[string]bool{"records": true, "revisions": true, "changes": true, "forms": true,
		"form_versions": true, "quarantine": true, "record_reviews": true}
	var (
		mu  sync.Mutex
		bad []string
	)
	check := func(cmd, coll string, filter bson.Raw) {
		if _, err := filter.LookupErr("project_id"); err != nil {
			var keys []string
			elems, _ := filter.Elements()
			for _, e := range elems {
				keys = append(keys, e.Key())
			}
			mu.Lock()
			defer mu.Unlock()
			bad = append(bad, fmt.Sprintf("%s on %s, filter keys %v", cmd, coll, keys))
		}
	}
	monitor = &event.CommandMonitor{Started: func(_ context.Context, e *event.CommandStartedEvent) {
		coll, ok := e.Command.Lookup(e.CommandName).StringValueOK()
		if !ok || !sharded[coll] {
			return
		}
		doc := func(v bson.RawValue) bson.Raw { d, _ := v.DocumentOK(); return d }
		each := func(list, field string) {
			arr, ok := e.Command.Lookup(list).ArrayOK()
			if !ok {
				return
			}
			vals, _ := arr.Values()
			for _, v := range vals {
				check(e.CommandName, coll, doc(doc(v).Lookup(field)))
			}
		}
		switch e.CommandName {
		case "find", "count":
			check(e.CommandName, coll, doc(e.Command.Lookup("filter")))
		case "findAndModify":
			check(e.CommandName, coll, doc(e.Command.Lookup("query")))
		case "update":
			each("updates", "q")
		case "delete":
			each("deletes", "q")
		case "aggregate":
			arr, _ := e.Command.Lookup("pipeline").ArrayOK()
			first, _ := arr.IndexErr(0)
			check(e.CommandName, coll, doc(doc(first).Lookup("$match")))
		}
	}}
	report = func() []string {
		mu.Lock()
		defer mu.Unlock()
		out := slices.Clone(bad)
		slices.Sort(out)
		return slices.Compact(out)
	}
	return monitor, report
}
