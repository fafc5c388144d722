package storetest

import (
	"context"
	"fmt"
	"testing"

	"github.com/fieldsync/fieldsync/internal/domain"
)

// listReviews pages through a record's review thread with the given page size.
func listReviews(tb testing.TB, ctx context.Context, st domain.Store, project, record string, limit int) []domain.ReviewEntry {
	tb.Helper()
	var out []domain.ReviewEntry
	cursor := ""
	for range maxPages {
		entries, next, err := st.ListReviews(ctx, project, record, cursor, limit)
		noErr(tb, err, "ListReviews")
		if len(entries) > limit {
			tb.Fatalf("ListReviews(limit %d): %d entries", limit, len(entries))
		}
		// A cursor is handed out only when a next page exists.
		if cursor != "" && len(entries) == 0 {
			tb.Fatalf("ListReviews: cursor %q led to an empty page", cursor)
		}
		out = append(out, entries...)
		if next == "" {
			return out
		}
		cursor = next
	}
	tb.Fatalf("ListReviews: more after %d pages", maxPages)
	return nil
}

func (s suite) reviews(t *testing.T) {
	entry := func(project string, rec, m int, text, state, prev string) domain.ReviewEntry {
		return domain.ReviewEntry{ProjectID: project, RecordID: recordID(rec), Author: fmt.Sprintf("analyst-%d", m),
			CreatedAt: at(m), Text: text, ReviewState: state, PreviousState: prev}
	}
	// appendAll appends entries in order and returns them with their IDs.
	appendAll := func(tb testing.TB, ctx context.Context, st domain.Store, es ...domain.ReviewEntry) []domain.ReviewEntry {
		tb.Helper()
		var out []domain.ReviewEntry
		for _, e := range es {
			got, err := st.AppendReview(ctx, e)
			noErr(tb, err, "AppendReview")
			if got.ID == "" {
				tb.Fatal("AppendReview assigned no ID")
			}
			if len(out) > 0 && got.ID <= out[len(out)-1].ID {
				tb.Fatalf("AppendReview: ID %q not above the previous %q", got.ID, out[len(out)-1].ID)
			}
			want := e
			want.ID = got.ID
			same(tb, "appended entry", got, want)
			out = append(out, got)
		}
		return out
	}

	s.run(t, "AppendList", func(t *testing.T, ctx context.Context, st domain.Store) {
		got, next, err := st.ListReviews(ctx, "juba", recordID(1), "", 10)
		noErr(t, err, "ListReviews of a record without a thread")
		if len(got) != 0 || next != "" {
			t.Fatalf("ListReviews of an empty thread: %d entries, next %q", len(got), next)
		}
		want := appendAll(t, ctx, st,
			entry("juba", 1, 0, "Village name misspelt", domain.ReviewHasIssues, domain.ReviewReceived),
			// Another record and another project with the same record id
			// stay out of the thread.
			entry("juba", 2, 1, "fine", "", ""),
			entry("wau", 1, 2, "other project", "", ""),
			entry("juba", 1, 3, "", domain.ReviewApproved, domain.ReviewHasIssues),
			entry("juba", 1, 4, "Checked with the team", domain.ReviewApproved, ""),
		)
		got, next, err = st.ListReviews(ctx, "juba", recordID(1), "", 10)
		noErr(t, err, "ListReviews")
		same(t, "thread of record 1, oldest first", got, []domain.ReviewEntry{want[0], want[3], want[4]})
		if next != "" {
			t.Errorf("ListReviews of a short thread: next %q", next)
		}
		same(t, "thread of record 2", listReviews(t, ctx, st, "juba", recordID(2), 10), want[1:2])
		same(t, "thread of record 1 in project wau", listReviews(t, ctx, st, "wau", recordID(1), 10), want[2:3])
	})

	s.run(t, "Paging", func(t *testing.T, ctx context.Context, st domain.Store) {
		var es []domain.ReviewEntry
		for m := range 7 {
			es = append(es, entry("juba", 1, m, fmt.Sprintf("comment %d", m), domain.ReviewReceived, ""))
		}
		want := appendAll(t, ctx, st, es...)
		for _, limit := range []int{1, 2, 3, 7, 100} {
			same(t, fmt.Sprintf("thread in pages of %d", limit), listReviews(t, ctx, st, "juba", recordID(1), limit), want)
		}
		// A page that ends exactly at the last entry hands out no cursor.
		page, next, err := st.ListReviews(ctx, "juba", recordID(1), want[4].ID, 2)
		noErr(t, err, "ListReviews after entry 4")
		same(t, "the last page", page, want[5:])
		if next != "" {
			t.Errorf("the last page: next %q", next)
		}
	})

	s.run(t, "BadCursor", func(t *testing.T, ctx context.Context, st domain.Store) {
		appendAll(t, ctx, st, entry("juba", 1, 0, "x", domain.ReviewReceived, ""))
		for _, c := range []string{"not-a-cursor", "-1", "zz"} {
			_, _, err := st.ListReviews(ctx, "juba", recordID(1), c, 10)
			isBadRequest(t, err, fmt.Sprintf("ListReviews(cursor %q)", c))
		}
	})
}
