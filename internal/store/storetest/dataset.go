package storetest

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"testing"
	"time"

	"github.com/fieldsync/fieldsync/internal/domain"
)

// datasetRecords writes 12 records of form "perception" in project p1 (and
// one of another form and one of another project), varied in receive time,
// version, device and review state; record i was received at at(i/2), so
// pairs share a receive time and the id breaks the tie. Records 10 and 11
// are a tombstone and one edited after its creation. It returns them by id.
func datasetRecords(t *testing.T, ctx context.Context, st domain.Store) map[string]domain.Record {
	t.Helper()
	var writes []domain.RecordWrite
	// Written in an order that is not the receive order, so a store that
	// answers in write order fails.
	for _, i := range []int{5, 0, 7, 3, 1, 9, 11, 2, 8, 4, 6, 10} {
		r := testRecord("p1", recordID(i), fmt.Sprintf("device:tab%d", i%3), 1)
		r.CreatedAt = at(i / 2)
		r.FormVersion = []string{"1", "2"}[i%2]
		r.ReviewState = []string{domain.ReviewReceived, domain.ReviewApproved, domain.ReviewHasIssues}[i%3]
		if i == 10 {
			r.Deleted = true
		}
		writes = append(writes, create(r))
	}
	other := testRecord("p1", recordID(50), "device:tab0", 1)
	other.FormID = "incident"
	writes = append(writes, create(other), create(testRecord("p2", recordID(51), "device:tab0", 1)))
	recs := mustWrite(t, ctx, st, writes...)
	out := map[string]domain.Record{}
	for _, r := range recs {
		if r.ProjectID == "p1" && r.FormID == "perception" {
			out[r.ID] = r
		}
	}
	// An edit keeps the record's place: CreatedAt stays, the data changes.
	ed := next(out[recordID(11)])
	ed.CreatedAt, ed.FormVersion, ed.ReviewState = out[recordID(11)].CreatedAt, "2", out[recordID(11)].ReviewState
	out[ed.ID] = mustWrite(t, ctx, st, update(ed, out[ed.ID].Rev))[0]
	return out
}

// queryAll pages through q with the given page size and returns the ids.
func queryAll(t *testing.T, ctx context.Context, st domain.Store, q domain.RecordQuery, size int) []domain.Record {
	t.Helper()
	q.Limit = size
	var out []domain.Record
	for pages := 0; ; pages++ {
		page, err := st.QueryRecords(ctx, q)
		noErr(t, err, "QueryRecords")
		if len(page.Records) > size {
			t.Fatalf("page of %d records for limit %d", len(page.Records), size)
		}
		out = append(out, page.Records...)
		if !page.More {
			return out
		}
		if page.Next == q.After {
			t.Fatal("QueryRecords: Next did not move")
		}
		q.After = page.Next
		if pages > 100 {
			t.Fatal("no end")
		}
	}
}

// wantIDs are the record ids of recordID(i) for each i, in that order.
func wantIDs(is ...int) []string {
	out := make([]string, len(is))
	for i, n := range is {
		out[i] = recordID(n)
	}
	return out
}

func (s suite) datasets(t *testing.T) {
	s.run(t, "order and paging", func(t *testing.T, ctx context.Context, st domain.Store) {
		recs := datasetRecords(t, ctx, st)
		q := domain.RecordQuery{ProjectID: "p1", FormID: "perception"}
		want := wantIDs(0, 1, 2, 3, 4, 5, 6, 7, 8, 9, 11) // receive order, no tombstone
		for _, size := range []int{1, 2, 3, 1000} {
			got := queryAll(t, ctx, st, q, size)
			if !slices.Equal(ids(got), want) {
				t.Errorf("page size %d: %v, want %v", size, ids(got), want)
			}
			for _, r := range got {
				sameRecord(t, "queried "+r.ID, r, recs[r.ID])
			}
		}
		q.IncludeDeleted = true
		if got := ids(queryAll(t, ctx, st, q, 4)); !slices.Equal(got, wantIDs(0, 1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11)) {
			t.Errorf("with tombstones: %v", got)
		}
		// A full last page says More; the next one is empty and does not.
		page, err := st.QueryRecords(ctx, domain.RecordQuery{ProjectID: "p1", FormID: "perception", Limit: 11})
		noErr(t, err, "QueryRecords")
		if len(page.Records) != 11 || !page.More {
			t.Fatalf("full page: %d records, More %v", len(page.Records), page.More)
		}
		page, err = st.QueryRecords(ctx, domain.RecordQuery{ProjectID: "p1", FormID: "perception", After: page.Next, Limit: 11})
		noErr(t, err, "QueryRecords")
		if len(page.Records) != 0 || page.More || page.Next != (domain.RecordCursor{CreatedAt: at(5), ID: recordID(11)}) {
			t.Errorf("past the end: %d records, More %v, Next %+v", len(page.Records), page.More, page.Next)
		}
		// Unknown form or project: nothing.
		for _, q := range []domain.RecordQuery{{ProjectID: "p1", FormID: "nope"}, {ProjectID: "p3", FormID: "perception"}} {
			page, err := st.QueryRecords(ctx, q)
			noErr(t, err, "QueryRecords")
			if len(page.Records) != 0 || page.More {
				t.Errorf("%+v: %d records", q, len(page.Records))
			}
		}
	})

	s.run(t, "filters", func(t *testing.T, ctx context.Context, st domain.Store) {
		datasetRecords(t, ctx, st)
		base := domain.RecordQuery{ProjectID: "p1", FormID: "perception"}
		for _, tc := range []struct {
			name string
			set  func(q *domain.RecordQuery)
			want []string
		}{
			{"since inclusive", func(q *domain.RecordQuery) { q.Since = at(4) }, wantIDs(8, 9, 11)},
			{"until exclusive", func(q *domain.RecordQuery) { q.Until = at(1) }, wantIDs(0, 1)},
			{"since and until", func(q *domain.RecordQuery) { q.Since, q.Until = at(1), at(2) }, wantIDs(2, 3)},
			{"since between", func(q *domain.RecordQuery) { q.Since = at(1).Add(time.Millisecond) }, wantIDs(4, 5, 6, 7, 8, 9, 11)},
			// Bounds finer than the stored milliseconds keep their meaning:
			// an until a nanosecond past a record includes it (an OData
			// "le"), a since a nanosecond past it leaves it out.
			{"until a nanosecond after", func(q *domain.RecordQuery) { q.Until = at(1).Add(time.Nanosecond) }, wantIDs(0, 1, 2, 3)},
			{"since a nanosecond after", func(q *domain.RecordQuery) { q.Since = at(4).Add(time.Nanosecond) }, wantIDs(11)},
			{"review state", func(q *domain.RecordQuery) { q.ReviewStates = []string{domain.ReviewApproved} }, wantIDs(1, 4, 7)},
			{"review states", func(q *domain.RecordQuery) {
				q.ReviewStates = []string{domain.ReviewApproved, domain.ReviewHasIssues}
			}, wantIDs(1, 2, 4, 5, 7, 8, 11)},
			{"version", func(q *domain.RecordQuery) { q.Versions = []string{"1"} }, wantIDs(0, 2, 4, 6, 8)},
			{"device", func(q *domain.RecordQuery) { q.Devices = []string{"tab1"} }, wantIDs(1, 4, 7)},
			{"all at once", func(q *domain.RecordQuery) {
				q.Since, q.Versions, q.Devices, q.ReviewStates = at(1), []string{"2"}, []string{"tab0", "tab2"}, []string{domain.ReviewReceived, domain.ReviewHasIssues}
			}, wantIDs(3, 5, 9, 11)},
			{"nothing matches", func(q *domain.RecordQuery) { q.Devices = []string{"nobody"} }, nil},
		} {
			q := base
			tc.set(&q)
			for _, size := range []int{2, 1000} {
				if got := ids(queryAll(t, ctx, st, q, size)); !slices.Equal(got, tc.want) && !(len(got) == 0 && len(tc.want) == 0) {
					t.Errorf("%s (page size %d): %v, want %v", tc.name, size, got, tc.want)
				}
			}
			// The count is the number of records the pages hold, whatever
			// the cursor, the page size and the order; tombstones count when
			// listed.
			for _, cq := range []domain.RecordQuery{q, {ProjectID: q.ProjectID, FormID: q.FormID, Since: q.Since, Until: q.Until,
				ReviewStates: q.ReviewStates, Versions: q.Versions, Devices: q.Devices, After: domain.RecordCursor{CreatedAt: at(2), ID: recordID(4)},
				Limit: 1, Descending: true}} {
				n, err := st.CountRecords(ctx, cq)
				noErr(t, err, "CountRecords")
				if n != len(tc.want) {
					t.Errorf("%s: CountRecords %d, want %d", tc.name, n, len(tc.want))
				}
			}
			withDeleted := q
			withDeleted.IncludeDeleted = true
			n, err := st.CountRecords(ctx, withDeleted)
			noErr(t, err, "CountRecords")
			if listed := len(queryAll(t, ctx, st, withDeleted, 1000)); n != listed {
				t.Errorf("%s with tombstones: CountRecords %d, the listing %d", tc.name, n, listed)
			}
			// Newest first: the same records, in the exact reverse order.
			q.Descending = true
			want := slices.Clone(tc.want)
			slices.Reverse(want)
			for _, size := range []int{1, 2, 1000} {
				if got := ids(queryAll(t, ctx, st, q, size)); !slices.Equal(got, want) && !(len(got) == 0 && len(want) == 0) {
					t.Errorf("%s newest first (page size %d): %v, want %v", tc.name, size, got, want)
				}
			}
		}
	})

	s.run(t, "stable while writes go on", func(t *testing.T, ctx context.Context, st domain.Store) {
		recs := datasetRecords(t, ctx, st)
		q := domain.RecordQuery{ProjectID: "p1", FormID: "perception", Limit: 4}
		page, err := st.QueryRecords(ctx, q)
		noErr(t, err, "QueryRecords")
		got := ids(page.Records)
		// Edit a record already read and one not read yet, and create one
		// received before the cursor: none moves, none is listed twice.
		for _, i := range []int{1, 9} {
			r := recs[recordID(i)]
			n := next(r)
			n.CreatedAt, n.FormVersion, n.ReviewState, n.DeviceID = r.CreatedAt, r.FormVersion, r.ReviewState, r.DeviceID
			mustWrite(t, ctx, st, update(n, r.Rev))
		}
		for q.After = page.Next; page.More; q.After = page.Next {
			page, err = st.QueryRecords(ctx, q)
			noErr(t, err, "QueryRecords")
			got = append(got, ids(page.Records)...)
		}
		if want := wantIDs(0, 1, 2, 3, 4, 5, 6, 7, 8, 9, 11); !slices.Equal(got, want) {
			t.Errorf("while editing: %v, want %v", got, want)
		}
	})

	s.run(t, "newest first", func(t *testing.T, ctx context.Context, st domain.Store) {
		recs := datasetRecords(t, ctx, st)
		q := domain.RecordQuery{ProjectID: "p1", FormID: "perception", Descending: true}
		// The exact reverse of the receive order: records received in the
		// same millisecond come in descending id order (11 before 10, 9
		// before 8), so no tie lands on either side of a page boundary.
		want := wantIDs(11, 9, 8, 7, 6, 5, 4, 3, 2, 1, 0)
		for _, size := range []int{1, 2, 3, 1000} {
			got := queryAll(t, ctx, st, q, size)
			if !slices.Equal(ids(got), want) {
				t.Errorf("page size %d: %v, want %v", size, ids(got), want)
			}
			for _, r := range got {
				sameRecord(t, "queried "+r.ID, r, recs[r.ID])
			}
		}
		q.IncludeDeleted = true
		asc := ids(queryAll(t, ctx, st, domain.RecordQuery{ProjectID: "p1", FormID: "perception", IncludeDeleted: true}, 5))
		slices.Reverse(asc)
		for _, size := range []int{1, 4, 1000} {
			if got := ids(queryAll(t, ctx, st, q, size)); !slices.Equal(got, asc) || !slices.Equal(got, wantIDs(11, 10, 9, 8, 7, 6, 5, 4, 3, 2, 1, 0)) {
				t.Errorf("with tombstones (page size %d): %v, want the ascending order reversed, %v", size, got, asc)
			}
		}
		// A page's Next is its last (oldest) record; the page before a
		// cursor starts right before it, whether or not the cursor's own
		// record still matches.
		page, err := st.QueryRecords(ctx, domain.RecordQuery{ProjectID: "p1", FormID: "perception", Descending: true, Limit: 3})
		noErr(t, err, "QueryRecords")
		if !slices.Equal(ids(page.Records), wantIDs(11, 9, 8)) || !page.More || page.Next != (domain.RecordCursor{CreatedAt: at(4), ID: recordID(8)}) {
			t.Errorf("first page: %v, More %v, Next %+v", ids(page.Records), page.More, page.Next)
		}
		page, err = st.QueryRecords(ctx, domain.RecordQuery{ProjectID: "p1", FormID: "perception", Descending: true, Limit: 3,
			After: domain.RecordCursor{CreatedAt: at(5), ID: recordID(10)}})
		noErr(t, err, "QueryRecords")
		if !slices.Equal(ids(page.Records), wantIDs(9, 8, 7)) {
			t.Errorf("before the tombstone's position: %v", ids(page.Records))
		}
		// A full last page says More; the next one is empty and does not.
		page, err = st.QueryRecords(ctx, domain.RecordQuery{ProjectID: "p1", FormID: "perception", Descending: true, Limit: 11})
		noErr(t, err, "QueryRecords")
		if len(page.Records) != 11 || !page.More {
			t.Fatalf("full page: %d records, More %v", len(page.Records), page.More)
		}
		page, err = st.QueryRecords(ctx, domain.RecordQuery{ProjectID: "p1", FormID: "perception", Descending: true, After: page.Next, Limit: 11})
		noErr(t, err, "QueryRecords")
		if len(page.Records) != 0 || page.More || page.Next != (domain.RecordCursor{CreatedAt: at(0), ID: recordID(0)}) {
			t.Errorf("past the end: %d records, More %v, Next %+v", len(page.Records), page.More, page.Next)
		}
		// Unknown form or project: nothing.
		for _, q := range []domain.RecordQuery{{ProjectID: "p1", FormID: "nope", Descending: true}, {ProjectID: "p3", FormID: "perception", Descending: true}} {
			page, err := st.QueryRecords(ctx, q)
			noErr(t, err, "QueryRecords")
			if len(page.Records) != 0 || page.More {
				t.Errorf("%+v: %d records", q, len(page.Records))
			}
		}
	})

	s.run(t, "newest first stable while writes go on", func(t *testing.T, ctx context.Context, st domain.Store) {
		recs := datasetRecords(t, ctx, st)
		q := domain.RecordQuery{ProjectID: "p1", FormID: "perception", Descending: true, Limit: 4}
		page, err := st.QueryRecords(ctx, q)
		noErr(t, err, "QueryRecords")
		got := ids(page.Records)
		// Edit a record already read (9) and ones not read yet (1, and 6,
		// the last of the next page), and receive a new one, newer than the
		// first page: none moves, none is listed twice, and the new one,
		// which sorts before where the reader started, is not listed.
		for _, i := range []int{9, 1, 6} {
			r := recs[recordID(i)]
			n := next(r)
			n.CreatedAt, n.FormVersion, n.ReviewState, n.DeviceID = r.CreatedAt, r.FormVersion, r.ReviewState, r.DeviceID
			mustWrite(t, ctx, st, update(n, r.Rev))
		}
		fresh := testRecord("p1", recordID(12), "device:tab0", 1)
		fresh.CreatedAt = at(6)
		mustWrite(t, ctx, st, create(fresh))
		for q.After = page.Next; page.More; q.After = page.Next {
			page, err = st.QueryRecords(ctx, q)
			noErr(t, err, "QueryRecords")
			got = append(got, ids(page.Records)...)
		}
		if want := wantIDs(11, 9, 8, 7, 6, 5, 4, 3, 2, 1, 0); !slices.Equal(got, want) {
			t.Errorf("while editing: %v, want %v", got, want)
		}
	})

	s.run(t, "cancelled", func(t *testing.T, ctx context.Context, st domain.Store) {
		datasetRecords(t, ctx, st)
		cctx, cancel := context.WithCancel(ctx)
		cancel()
		_, err := st.QueryRecords(cctx, domain.RecordQuery{ProjectID: "p1", FormID: "perception"})
		if err == nil || !(errors.Is(err, context.Canceled) || errors.Is(err, domain.ErrUnavailable)) {
			t.Errorf("QueryRecords on a cancelled context: %v", err)
		}
	})
}
