package storetest

import (
	"context"
	"fmt"
	"slices"
	"testing"

	"github.com/fieldsync/fieldsync/internal/domain"
)

// maxPages bounds every paging loop of the suite, so a store whose cursor does
// not move fails instead of hanging.
const maxPages = 10_000

// checkPage fails on a page that breaks the feed's invariants for a query that
// started at since: at most limit records, each after since, in increasing Seq,
// each at most once, none after Next, and Next not below since.
func checkPage(tb testing.TB, q domain.ChangesQuery, page domain.ChangesPage) {
	tb.Helper()
	if err := pageErr(q, page); err != nil {
		tb.Fatal(err)
	}
}

// pull pages through the feed from q.Since until More is false, checking each
// page, and returns the records in feed order and the last Next.
func pull(tb testing.TB, ctx context.Context, st domain.Store, q domain.ChangesQuery) ([]domain.Record, int64) {
	tb.Helper()
	var out []domain.Record
	for range maxPages {
		page, err := st.Changes(ctx, q)
		noErr(tb, err, "Changes")
		checkPage(tb, q, page)
		out = append(out, page.Records...)
		if !page.More {
			return out, page.Next
		}
		if page.Next == q.Since && len(page.Records) == 0 {
			tb.Fatalf("Changes(since %d): More with an empty page and a cursor that did not move", q.Since)
		}
		q.Since = page.Next
	}
	tb.Fatalf("Changes: More after %d pages", maxPages)
	return nil, 0
}

// ids lists the records' ids in order.
func ids(rs []domain.Record) []string {
	out := make([]string, len(rs))
	for i, r := range rs {
		out[i] = r.ID
	}
	return out
}

// maxSeq is the largest Seq among the records of a project.
func maxSeq(tb testing.TB, ctx context.Context, st domain.Store, project string) int64 {
	tb.Helper()
	all, _ := pull(tb, ctx, st, domain.ChangesQuery{ProjectID: project, Limit: 1000})
	var m int64
	for _, r := range all {
		m = max(m, r.Seq)
	}
	return m
}

func (s suite) changes(t *testing.T) {
	s.run(t, "Empty", func(t *testing.T, ctx context.Context, st domain.Store) {
		page, err := st.Changes(ctx, domain.ChangesQuery{ProjectID: "juba", Limit: 10})
		noErr(t, err, "Changes")
		if len(page.Records) != 0 || page.More || page.Next != 0 {
			t.Errorf("empty feed: %d records, More %v, Next %d; want none, false, 0", len(page.Records), page.More, page.Next)
		}
	})
	s.run(t, "Paging", func(t *testing.T, ctx context.Context, st domain.Store) {
		var written []domain.Record
		for i := range 7 {
			written = append(written, mustWrite(t, ctx, st, create(testRecord("juba", recordID(i), "device:d1", 1)))...)
		}
		q := domain.ChangesQuery{ProjectID: "juba", Limit: 3}
		var got []domain.Record
		for i, want := range []struct {
			n    int
			more bool
		}{{3, true}, {3, true}, {1, false}} {
			page, err := st.Changes(ctx, q)
			noErr(t, err, "Changes")
			checkPage(t, q, page)
			if len(page.Records) != want.n || page.More != want.more {
				t.Fatalf("page %d: %d records, More %v; want %d, %v", i, len(page.Records), page.More, want.n, want.more)
			}
			if page.Next != page.Records[len(page.Records)-1].Seq {
				t.Errorf("page %d: Next %d, want the Seq of its last record %d", i, page.Next,
					page.Records[len(page.Records)-1].Seq)
			}
			got = append(got, page.Records...)
			q.Since = page.Next
		}
		same(t, "feed", got, written)
		// At the end of the feed: nothing, and the cursor stays.
		page, err := st.Changes(ctx, q)
		noErr(t, err, "Changes at the end")
		if len(page.Records) != 0 || page.More || page.Next != q.Since {
			t.Errorf("at the end: %d records, More %v, Next %d; want none, false, %d", len(page.Records), page.More,
				page.Next, q.Since)
		}
	})
	s.run(t, "ExactPage", func(t *testing.T, ctx context.Context, st domain.Store) {
		for i := range 4 {
			mustWrite(t, ctx, st, create(testRecord("juba", recordID(i), "device:d1", 1)))
		}
		q := domain.ChangesQuery{ProjectID: "juba", Limit: 2}
		page, err := st.Changes(ctx, q)
		noErr(t, err, "Changes")
		if !page.More {
			t.Fatal("first of two full pages: More = false")
		}
		q.Since = page.Next
		page, err = st.Changes(ctx, q)
		noErr(t, err, "Changes")
		checkPage(t, q, page)
		if len(page.Records) != 2 || page.More {
			t.Errorf("last full page: %d records, More %v; want 2, false", len(page.Records), page.More)
		}
	})
	s.run(t, "LatestStateOnce", func(t *testing.T, ctx context.Context, st domain.Store) {
		a := mustWrite(t, ctx, st, create(testRecord("juba", recordID(1), "device:d1", 1)))[0]
		b := mustWrite(t, ctx, st, create(testRecord("juba", recordID(2), "device:d1", 1)))[0]
		c := mustWrite(t, ctx, st, create(testRecord("juba", recordID(3), "device:d1", 1)))[0]
		a2 := mustWrite(t, ctx, st, update(next(a), a.Rev))[0]
		a3 := mustWrite(t, ctx, st, update(next(a2), a2.Rev))[0]
		got, _ := pull(t, ctx, st, domain.ChangesQuery{ProjectID: "juba", Limit: 10})
		// A re-written record moves to the end of the feed, in its latest state.
		same(t, "feed", got, []domain.Record{b, c, a3})
	})
	s.run(t, "RewrittenMovesPastCursor", func(t *testing.T, ctx context.Context, st domain.Store) {
		a := mustWrite(t, ctx, st, create(testRecord("juba", recordID(1), "device:d1", 1)))[0]
		mustWrite(t, ctx, st, create(testRecord("juba", recordID(2), "device:d1", 1)))
		c := mustWrite(t, ctx, st, create(testRecord("juba", recordID(3), "device:d1", 1)))[0]
		q := domain.ChangesQuery{ProjectID: "juba", Limit: 2}
		page, err := st.Changes(ctx, q)
		noErr(t, err, "Changes")
		same(t, "first page", ids(page.Records), []string{recordID(1), recordID(2)})
		a2 := mustWrite(t, ctx, st, update(next(a), a.Rev))[0]
		q.Since = page.Next
		rest, _ := pull(t, ctx, st, q)
		same(t, "rest of the feed", rest, []domain.Record{c, a2})
	})
	s.run(t, "Tombstones", func(t *testing.T, ctx context.Context, st domain.Store) {
		a := mustWrite(t, ctx, st, create(testRecord("juba", recordID(1), "device:d1", 1)))[0]
		del := next(a)
		del.Deleted, del.Data = true, nil
		del = mustWrite(t, ctx, st, update(del, a.Rev))[0]
		got, _ := pull(t, ctx, st, domain.ChangesQuery{ProjectID: "juba", Limit: 10})
		same(t, "feed with a tombstone", got, []domain.Record{del})
	})
	s.run(t, "ProjectsIsolated", func(t *testing.T, ctx context.Context, st domain.Store) {
		a := mustWrite(t, ctx, st, create(testRecord("juba", recordID(1), "device:d1", 1)))[0]
		_, next0 := pull(t, ctx, st, domain.ChangesQuery{ProjectID: "juba", Limit: 10})
		for i := range 3 {
			mustWrite(t, ctx, st, create(testRecord("wau", recordID(10+i), "device:d1", 1)))
		}
		page, err := st.Changes(ctx, domain.ChangesQuery{ProjectID: "juba", Since: next0, Limit: 10})
		noErr(t, err, "Changes after another project's writes")
		if len(page.Records) != 0 || page.More {
			t.Errorf("another project's writes show in juba's feed: %d records, More %v", len(page.Records), page.More)
		}
		got, _ := pull(t, ctx, st, domain.ChangesQuery{ProjectID: "juba", Limit: 10})
		same(t, "juba's feed", got, []domain.Record{a})
		got, _ = pull(t, ctx, st, domain.ChangesQuery{ProjectID: "bor", Limit: 10})
		if len(got) != 0 {
			t.Errorf("feed of a project without records: %d records", len(got))
		}
	})
	s.run(t, "FormFilter", func(t *testing.T, ctx context.Context, st domain.Store) {
		var wash []domain.Record
		for i := range 6 {
			r := testRecord("juba", recordID(i), "device:d1", 1)
			if i%3 == 0 {
				r.FormID = "wash"
			}
			r = mustWrite(t, ctx, st, create(r))[0]
			if r.FormID == "wash" {
				wash = append(wash, r)
			}
		}
		got, last := pull(t, ctx, st, domain.ChangesQuery{ProjectID: "juba", FormID: "wash", Limit: 1})
		same(t, "wash records", got, wash)
		if top := maxSeq(t, ctx, st, "juba"); last < top {
			t.Errorf("Next %d after the whole filtered feed, want at least %d: the cursor must move past "+
				"records of other forms", last, top)
		}
	})
	s.run(t, "Visibility", func(t *testing.T, ctx context.Context, st domain.Store) {
		mk := func(i int, by string, assigned []string, shared bool) domain.RecordWrite {
			r := testRecord("juba", recordID(i), by, 1)
			r.AssignedTo, r.Shared = assigned, shared
			return create(r)
		}
		rs := mustWrite(t, ctx, st,
			mk(0, "device:d1", nil, false),                      // created by d1
			mk(1, "device:d2", nil, false),                      // someone else's
			mk(2, "device:d2", []string{"device:d1"}, false),    // assigned to d1
			mk(3, "device:d2", nil, true),                       // shared form
			mk(4, "device:d2", []string{"device:d3"}, false),    // assigned to another
			mk(5, "amina", nil, false),                          // created by the user amina
			mk(6, "bob", []string{"amina", "device:d9"}, false), // assigned to amina among others
			mk(7, "device:d1", []string{"device:d1"}, true),     // visible three ways, once
		)
		for _, tc := range []struct {
			name     string
			subjects []string
			want     []int
		}{
			{"device", []string{"device:d1"}, []int{0, 2, 3, 7}},
			{"user and device", []string{"amina", "device:d1"}, []int{0, 2, 3, 5, 6, 7}},
			{"nobody's", []string{"device:d8"}, []int{3, 7}},
			{"analyst (no subjects)", nil, []int{0, 1, 2, 3, 4, 5, 6, 7}},
		} {
			for _, limit := range []int{1, 3, 100} {
				got, _ := pull(t, ctx, st, domain.ChangesQuery{ProjectID: "juba", Subjects: tc.subjects, Limit: limit})
				var want []domain.Record
				for _, i := range tc.want {
					want = append(want, rs[i])
				}
				same(t, fmt.Sprintf("visible to %s, limit %d", tc.name, limit), got, want)
			}
		}
	})
	s.run(t, "AssignmentChanges", func(t *testing.T, ctx context.Context, st domain.Store) {
		r := mustWrite(t, ctx, st, create(testRecord("juba", recordID(1), "device:d2", 1)))[0]
		q := domain.ChangesQuery{ProjectID: "juba", Subjects: []string{"device:d1"}, Limit: 10}
		got, cursor := pull(t, ctx, st, q)
		if len(got) != 0 {
			t.Fatalf("d1 sees %v before the assignment", ids(got))
		}
		assigned := r
		assigned.AssignedTo = []string{"device:d1"}
		assigned = mustWrite(t, ctx, st, domain.RecordWrite{Record: assigned, ExpectRev: r.Rev})[0]
		q.Since = cursor
		got, cursor = pull(t, ctx, st, q)
		same(t, "d1's next pull after the assignment", got, []domain.Record{assigned})
		unassigned := assigned
		unassigned.AssignedTo = nil
		mustWrite(t, ctx, st, domain.RecordWrite{Record: unassigned, ExpectRev: r.Rev})
		q.Since = cursor
		got, _ = pull(t, ctx, st, q)
		if len(got) != 0 {
			t.Errorf("d1 still pulls %v after the assignment was taken back", ids(got))
		}
		q.Since = 0
		got, _ = pull(t, ctx, st, q)
		if len(got) != 0 {
			t.Errorf("d1 pulls %v from the start after the assignment was taken back", ids(got))
		}
	})
	s.run(t, "NextMovesPastInvisible", func(t *testing.T, ctx context.Context, st domain.Store) {
		mine := func(i int) domain.RecordWrite { return create(testRecord("juba", recordID(i), "device:d1", 1)) }
		theirs := func(i int) domain.RecordWrite { return create(testRecord("juba", recordID(i), "device:d2", 1)) }
		var visible []domain.Record
		for i, w := range []domain.RecordWrite{theirs(0), mine(1), theirs(2), theirs(3), mine(4), theirs(5), theirs(6)} {
			r := mustWrite(t, ctx, st, w)[0]
			if i == 1 || i == 4 {
				visible = append(visible, r)
			}
		}
		q := domain.ChangesQuery{ProjectID: "juba", Subjects: []string{"device:d1"}, Limit: 1}
		got, cursor := pull(t, ctx, st, q)
		same(t, "d1's records", got, visible)
		// More is false only when nothing is committed beyond Next, visible or not.
		if top := maxSeq(t, ctx, st, "juba"); cursor < top {
			t.Errorf("Next %d at the end of d1's feed, want at least %d (the last record, invisible to d1)", cursor, top)
		}
		// Invisible writes after the cursor: the next pull finds nothing and
		// moves past them.
		mustWrite(t, ctx, st, theirs(7), theirs(8))
		q.Since = cursor
		page, err := st.Changes(ctx, q)
		noErr(t, err, "Changes")
		checkPage(t, q, page)
		if len(page.Records) != 0 {
			t.Errorf("d1 pulls invisible records %v", ids(page.Records))
		}
		rest, last := pull(t, ctx, st, q)
		if len(rest) != 0 {
			t.Errorf("d1 pulls invisible records %v", ids(rest))
		}
		if top := maxSeq(t, ctx, st, "juba"); last < top {
			t.Errorf("Next %d after invisible writes, want at least %d", last, top)
		}
	})
	s.run(t, "EnumeratorLatestStateOnce", func(t *testing.T, ctx context.Context, st domain.Store) {
		mine := func(i int) domain.RecordWrite { return create(testRecord("juba", recordID(i), "device:d1", 1)) }
		theirs := func(i int) domain.RecordWrite { return create(testRecord("juba", recordID(i), "device:d2", 1)) }
		a := mustWrite(t, ctx, st, mine(1))[0]
		mustWrite(t, ctx, st, theirs(2))
		b := mustWrite(t, ctx, st, mine(3))[0]
		a2 := mustWrite(t, ctx, st, update(next(a), a.Rev))[0]
		mustWrite(t, ctx, st, theirs(4))
		a3 := mustWrite(t, ctx, st, update(next(a2), a2.Rev))[0]
		for _, limit := range []int{1, 2, 10} {
			got, _ := pull(t, ctx, st, domain.ChangesQuery{ProjectID: "juba", Subjects: []string{"device:d1"}, Limit: limit})
			same(t, fmt.Sprintf("d1's feed, limit %d", limit), got, []domain.Record{b, a3})
		}
	})
	s.run(t, "ReassignedAway", func(t *testing.T, ctx context.Context, st domain.Store) {
		// Assigned to d1, then to d3: d1's changes name it, the record's
		// latest does not. A pull from the start ends, without it.
		r := testRecord("juba", recordID(1), "device:d2", 1)
		r.AssignedTo = []string{"device:d1"}
		r = mustWrite(t, ctx, st, create(r))[0]
		for i := range 3 {
			mustWrite(t, ctx, st, create(testRecord("juba", recordID(10+i), "device:d2", 1)))
		}
		away := next(r)
		away.AssignedTo = []string{"device:d3"}
		mustWrite(t, ctx, st, update(away, r.Rev))
		mustWrite(t, ctx, st, create(testRecord("juba", recordID(20), "device:d2", 1)))
		for _, limit := range []int{1, 10} {
			got, last := pull(t, ctx, st, domain.ChangesQuery{ProjectID: "juba", Subjects: []string{"device:d1"}, Limit: limit})
			if len(got) != 0 {
				t.Errorf("limit %d: d1 pulls %v after the record was reassigned", limit, ids(got))
			}
			if top := maxSeq(t, ctx, st, "juba"); last < top {
				t.Errorf("limit %d: Next %d at the end, want at least %d", limit, last, top)
			}
		}
	})
	s.run(t, "SinceBeyondEnd", func(t *testing.T, ctx context.Context, st domain.Store) {
		mustWrite(t, ctx, st, create(testRecord("juba", recordID(1), "device:d1", 1)))
		q := domain.ChangesQuery{ProjectID: "juba", Since: 1_000_000, Limit: 10}
		page, err := st.Changes(ctx, q)
		noErr(t, err, "Changes")
		checkPage(t, q, page)
		if len(page.Records) != 0 || page.More {
			t.Errorf("past the end: %d records, More %v", len(page.Records), page.More)
		}
	})
	s.run(t, "SeqInFeedMatchesRecord", func(t *testing.T, ctx context.Context, st domain.Store) {
		for i := range 5 {
			mustWrite(t, ctx, st, create(testRecord("juba", recordID(i), "device:d1", 1)))
		}
		got, _ := pull(t, ctx, st, domain.ChangesQuery{ProjectID: "juba", Limit: 2})
		for _, r := range got {
			if stored := getRecord(t, ctx, st, "juba", r.ID); stored.Seq != r.Seq {
				t.Errorf("record %s: Seq %d in the feed, %d from GetRecord", r.ID, r.Seq, stored.Seq)
			}
		}
		if !slices.IsSortedFunc(got, func(a, b domain.Record) int { return int(a.Seq - b.Seq) }) {
			t.Errorf("feed not in Seq order: %v", got)
		}
	})
}
