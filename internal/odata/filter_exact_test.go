package odata

import (
	"fmt"
	"testing"
	"time"

	"github.com/fieldsync/fieldsync/internal/domain"
)

// TestExactBounds: a filter whose bounds say all it does keeps exactly the
// records its bounds keep (so its $count can be the store's), tried on
// records received around every bound, to the millisecond; the others are
// recognised as needing the records read.
func TestExactBounds(t *testing.T) {
	t0 := time.Date(2026, 3, 31, 12, 0, 0, 0, time.UTC)
	var recs []domain.Record
	for i := -3; i <= 3; i++ {
		for j, st := range []string{"received", "approved", "rejected", ""} {
			recs = append(recs, domain.Record{ID: fmt.Sprintf("r%d-%d", i, j), FormID: "f",
				CreatedAt: t0.Add(time.Duration(i) * time.Millisecond), ReviewState: st})
		}
	}
	at := func(d time.Duration) string { return t0.Add(d).Format(time.RFC3339Nano) }
	for _, tc := range []struct {
		filter string
		exact  bool
	}{
		{"__system/submissionDate ge " + at(0), true},
		{"__system/submissionDate gt " + at(0), true},
		{"__system/submissionDate gt " + at(500*time.Microsecond), true},
		{"__system/submissionDate lt " + at(time.Millisecond), true},
		{"__system/submissionDate le " + at(-time.Millisecond), true},
		{"__system/submissionDate le " + at(-1500*time.Microsecond), true},
		{"__system/submissionDate eq " + at(2*time.Millisecond), true},
		{"__system/submissionDate eq " + at(time.Microsecond), true},
		{"__system/submissionDate ge " + at(-2*time.Millisecond) + " and __system/submissionDate lt " + at(2*time.Millisecond) +
			" and __system/reviewState eq 'approved'", true},
		{"__system/reviewState eq 'rejected'", true},
		{"__system/submissionDate ne " + at(0), false},
		{"__system/reviewState eq 'approved' and __system/reviewState eq 'rejected'", false},
		{"__system/reviewState ne 'approved'", false},
		{"__system/submissionDate ge " + at(0) + " or __system/reviewState eq 'approved'", false},
		{"not (__system/submissionDate ge " + at(0) + ")", false},
		{"__system/submitterId eq 'eve'", false},
		{"__system/submissionDate eq null", false},
	} {
		e, err := parseFilter(tc.filter)
		if err != nil {
			t.Fatalf("%s: %v", tc.filter, err)
		}
		if got := exactBounds(e); got != tc.exact {
			t.Errorf("%s: exactBounds %v, want %v", tc.filter, got, tc.exact)
			continue
		}
		if !tc.exact {
			continue
		}
		f := Filter{FormID: "f"}
		bounds(e, &f)
		for i := range recs {
			r := &recs[i]
			// What a store keeps: the bounds, at its millisecond grain, on
			// the stored review state.
			inStore := !r.CreatedAt.Before(domain.CeilMilli(f.Since)) &&
				(f.Until.IsZero() || r.CreatedAt.Before(domain.CeilMilli(f.Until))) &&
				(f.ReviewStates == nil || f.ReviewStates[0] == reviewState(r))
			if f.Since.IsZero() {
				inStore = (f.Until.IsZero() || r.CreatedAt.Before(domain.CeilMilli(f.Until))) &&
					(f.ReviewStates == nil || f.ReviewStates[0] == reviewState(r))
			}
			if keep := e.eval(r); keep != inStore || keep != f.keep(r) {
				t.Errorf("%s: record at %s (%q): the filter keeps it %v, its bounds %v (store) %v (Go)", tc.filter,
					r.CreatedAt.Format(time.RFC3339Nano), r.ReviewState, keep, inStore, f.keep(r))
			}
		}
	}
}
