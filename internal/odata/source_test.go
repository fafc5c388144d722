package odata

import (
	"context"
	"encoding/json"
	"fmt"
	"path/filepath"
	"slices"
	"sort"
	"strconv"
	"testing"
	"time"

	"github.com/fieldsync/fieldsync/internal/domain"
	"github.com/fieldsync/fieldsync/internal/store/sqlite"
)

// sourceFixture is a SQLite store with 40 records of form "f" (some with the
// same receive time, one deleted, some reviewed) and a few of form "g".
func sourceFixture(t *testing.T) (domain.Store, []domain.Record) {
	t.Helper()
	ctx := context.Background()
	st, err := sqlite.Open(ctx, filepath.Join(t.TempDir(), "s.db"))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { st.Close() })
	t0 := time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)
	var ws []domain.RecordWrite
	var want []domain.Record
	for i := range 46 {
		at := t0.Add(time.Duration(i/3) * time.Minute) // three records a minute: ties broken by id
		form := "f"
		if i >= 40 {
			form = "g"
		}
		r := domain.Record{ProjectID: "p", ID: fmt.Sprintf("%02d-%d", (i*7)%46, i), FormID: form, FormVersion: "1", Rev: "1-" + strconv.Itoa(i),
			Data: json.RawMessage(`{}`), CreatedAt: at, UpdatedAt: at, ClientModifiedAt: at,
			ReviewState: []string{"received", "approved", "rejected"}[i%3], Deleted: i == 17}
		ws = append(ws, domain.RecordWrite{Record: r, Revisions: []domain.Revision{{ProjectID: "p", RecordID: r.ID, Rev: r.Rev, Data: r.Data, CreatedAt: at}}})
		if form == "f" && !r.Deleted {
			want = append(want, r)
		}
	}
	// Written in reverse, so the feed's order is not the receive order.
	slices.Reverse(ws)
	if _, err := st.WriteRecords(ctx, ws); err != nil {
		t.Fatal(err)
	}
	sort.Slice(want, func(i, j int) bool { return keyOf(&want[i]).less(keyOf(&want[j])) })
	return st, want
}

// orderedQuery is a QueryFunc over the store's records sorted in memory: the
// shape of a database query in (created_at, id) order.
func orderedQuery(t *testing.T, st domain.Store) QueryFunc {
	return func(ctx context.Context, f Filter, afterAt time.Time, afterID string, limit int) ([]domain.Record, bool, error) {
		var all []domain.Record
		err := scanSource{Store: st}.scan(ctx, f, func(r domain.Record) {
			g := f
			g.Match = nil
			if g.keep(&r) {
				all = append(all, r)
			}
		})
		sort.Slice(all, func(i, j int) bool { return keyOf(&all[i]).less(keyOf(&all[j])) })
		after := sortKey{afterAt, afterID}
		var out []domain.Record
		for i := range all {
			if (afterAt.IsZero() && afterID == "") || after.less(keyOf(&all[i])) {
				out = append(out, all[i])
			}
		}
		more := len(out) > limit
		return out[:min(limit, len(out))], more, err
	}
}

// TestSources: both Sources page through the same records in receive order,
// filtered, whatever the page size, and count them.
func TestSources(t *testing.T) {
	st, all := sourceFixture(t)
	ctx := context.Background()
	// The server's source counts in the store where it can (CountFunc).
	storeCount := func(ctx context.Context, f Filter) (int, error) {
		return st.CountRecords(ctx, domain.RecordQuery{ProjectID: f.ProjectID, FormID: f.FormID, Since: f.Since, Until: f.Until, ReviewStates: f.ReviewStates})
	}
	sources := map[string]Source{"scanSource": scanSource{Store: st}, "QuerySource": QuerySource{Query: orderedQuery(t, st)},
		"QuerySource counting in the store": QuerySource{Query: orderedQuery(t, st), CountFunc: storeCount}}
	filters := map[string]struct {
		f    Filter
		keep func(r domain.Record) bool
	}{
		"all":      {Filter{}, func(domain.Record) bool { return true }},
		"approved": {Filter{ReviewStates: []string{"approved"}}, func(r domain.Record) bool { return r.ReviewState == "approved" }},
		"window": {Filter{Since: all[5].CreatedAt, Until: all[20].CreatedAt},
			func(r domain.Record) bool {
				return !r.CreatedAt.Before(all[5].CreatedAt) && r.CreatedAt.Before(all[20].CreatedAt)
			}},
		"match": {Filter{Match: func(r *domain.Record) bool { return r.ID[1] == '1' || r.ID[1] == '3' }},
			func(r domain.Record) bool { return r.ID[1] == '1' || r.ID[1] == '3' }},
	}
	for name, src := range sources {
		for fname, fc := range filters {
			var want []string
			for _, r := range all {
				if fc.keep(r) {
					want = append(want, r.ID)
				}
			}
			f := fc.f
			f.ProjectID, f.FormID = "p", "f"
			n, err := src.Count(ctx, f)
			if err != nil || n != len(want) {
				t.Errorf("%s %s: Count %d, %v; want %d", name, fname, n, err, len(want))
			}
			for _, limit := range []int{1, 4, 7, 100} {
				var got []string
				cursor := ""
				for pages := 0; ; pages++ {
					if pages > 100 {
						t.Fatalf("%s %s: no end", name, fname)
					}
					p, err := src.Page(ctx, Query{Filter: f, After: cursor, Limit: limit})
					if err != nil {
						t.Fatal(err)
					}
					if len(p.Records) > limit || (p.Next != "" && len(p.Records) != limit) {
						t.Fatalf("%s %s: a page of %d with limit %d, next %q", name, fname, len(p.Records), limit, p.Next)
					}
					for _, r := range p.Records {
						got = append(got, r.ID)
					}
					if p.Next == "" {
						break
					}
					cursor = p.Next
				}
				if !slices.Equal(got, want) {
					t.Errorf("%s %s limit %d:\n got %v\nwant %v", name, fname, limit, got, want)
				}
			}
		}
		_, err := src.Page(ctx, Query{Filter: Filter{ProjectID: "p", FormID: "f"}, After: "nope", Limit: 3})
		if e, ok := domain.AsError(err); !ok || e.Code != "invalid_skiptoken" {
			t.Errorf("%s: a bad cursor: %v", name, err)
		}
	}
}
