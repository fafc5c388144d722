package storetest

import (
	"context"
	"encoding/json"
	"fmt"
	"testing"

	"github.com/fieldsync/fieldsync/internal/domain"
)

// testItem is a rejected push item of record i, seen at minute m.
func testItem(project string, i, m int) domain.QuarantineItem {
	return domain.QuarantineItem{
		ProjectID: project, ID: fmt.Sprintf("%064x", 1000+i), RecordID: recordID(i), FormID: "perception",
		FormVersion: "1",
		Submission: json.RawMessage(fmt.Sprintf(`{"id": %q, "form": "perception", "form_version": "1",`+
			` "data": {"respondent": {"age": -%d}}}`, recordID(i), i)),
		Errors:      []domain.Finding{{Path: "/data/respondent/age", Keyword: "minimum", Message: "must be >= 0"}},
		SubmittedBy: "device:d1", DeviceID: "d1", LastSeen: at(m),
	}
}

// stored is item as the store keeps it after its first put.
func stored(item domain.QuarantineItem) domain.QuarantineItem {
	item.FirstSeen, item.Attempts, item.ResolvedAt = item.LastSeen, 1, nil
	if item.Reason == "" {
		item.Reason = domain.QuarantineRejected
	}
	return item
}

// openOnly lists the open items.
var openOnly = domain.QuarantineFilter{States: []string{domain.QuarantineOpen}}

// listAll pages through a project's quarantine with the given page size.
func listAll(tb testing.TB, ctx context.Context, st domain.Store, project string, f domain.QuarantineFilter, limit int) []domain.QuarantineItem {
	tb.Helper()
	var out []domain.QuarantineItem
	cursor := ""
	for range maxPages {
		items, next, err := st.ListQuarantine(ctx, project, f, cursor, limit)
		noErr(tb, err, "ListQuarantine")
		if len(items) > limit {
			tb.Fatalf("ListQuarantine(limit %d): %d items", limit, len(items))
		}
		// A cursor is handed out only when a next page exists.
		if cursor != "" && len(items) == 0 {
			tb.Fatalf("ListQuarantine: cursor %q led to an empty page", cursor)
		}
		out = append(out, items...)
		if next == "" {
			return out
		}

		cursor = next
	}
	tb.Fatalf("ListQuarantine: more after %d pages", maxPages)
	return nil
}

func (s suite) quarantine(t *testing.T) {
	s.run(t, "PutNew", func(t *testing.T, ctx context.Context, st domain.Store) {
		item := testItem("juba", 1, 5)
		item.FirstSeen, item.Attempts = at(1), 7 // set by the store, whatever the caller says
		got, err := st.PutQuarantine(ctx, item)
		noErr(t, err, "PutQuarantine")
		want := stored(testItem("juba", 1, 5))
		same(t, "new item", got, want)
		items, next, err := st.ListQuarantine(ctx, "juba", openOnly, "", 10)
		noErr(t, err, "ListQuarantine")
		same(t, "listed items", items, []domain.QuarantineItem{want})
		if next != "" {
			t.Errorf("next cursor %q after the only page", next)
		}
	})
	s.run(t, "PutAgain", func(t *testing.T, ctx context.Context, st domain.Store) {
		_, err := st.PutQuarantine(ctx, testItem("juba", 1, 5))
		noErr(t, err, "PutQuarantine")
		again := testItem("juba", 1, 9)
		again.Errors = []domain.Finding{{Path: "/form_version", Message: "version 1 is closed"}}
		got, err := st.PutQuarantine(ctx, again)
		noErr(t, err, "PutQuarantine again")
		want := stored(testItem("juba", 1, 5))
		want.LastSeen, want.Errors, want.Attempts = at(9), again.Errors, 2
		same(t, "item put twice", got, want)
		items := listAll(t, ctx, st, "juba", domain.QuarantineFilter{}, 10)
		same(t, "listed items", items, []domain.QuarantineItem{want})
	})
	s.run(t, "ListOrderAndPaging", func(t *testing.T, ctx context.Context, st domain.Store) {
		// Put out of order; listed in first-seen order.
		var want []domain.QuarantineItem
		for _, m := range []int{3, 1, 4, 0, 2} {
			_, err := st.PutQuarantine(ctx, testItem("juba", m, m))
			noErr(t, err, "PutQuarantine")
		}
		for m := range 5 {
			want = append(want, stored(testItem("juba", m, m)))
		}
		// A later attempt does not move an item: the order is by first sight.
		_, err := st.PutQuarantine(ctx, testItem("juba", 0, 20))
		noErr(t, err, "PutQuarantine again")
		want[0].LastSeen, want[0].Attempts = at(20), 2
		_, err = st.PutQuarantine(ctx, testItem("wau", 9, 0))
		noErr(t, err, "PutQuarantine in another project")
		for _, limit := range []int{1, 2, 5, 100} {
			same(t, fmt.Sprintf("quarantine, pages of %d", limit), listAll(t, ctx, st, "juba", openOnly, limit), want)
		}
		items, next, err := st.ListQuarantine(ctx, "juba", openOnly, "", 2)
		noErr(t, err, "ListQuarantine")
		if len(items) != 2 || next == "" {
			t.Fatalf("first page of 2: %d items, next %q", len(items), next)
		}
		items, _, err = st.ListQuarantine(ctx, "juba", openOnly, next, 2)
		noErr(t, err, "ListQuarantine second page")
		same(t, "second page", items, want[2:4])
		empty := listAll(t, ctx, st, "bor", domain.QuarantineFilter{}, 10)
		if len(empty) != 0 {
			t.Errorf("quarantine of a project without items: %d items", len(empty))
		}
	})
	s.run(t, "Resolve", func(t *testing.T, ctx context.Context, st domain.Store) {
		var want []domain.QuarantineItem
		for i := range 4 {
			_, err := st.PutQuarantine(ctx, testItem("juba", i, i))
			noErr(t, err, "PutQuarantine")
			want = append(want, stored(testItem("juba", i, i)))
		}
		// A second, different item of record 1 (a later, also broken edit).
		other := testItem("juba", 1, 5)
		other.ID = fmt.Sprintf("%064x", 5000)
		_, err := st.PutQuarantine(ctx, other)
		noErr(t, err, "PutQuarantine")
		_, err = st.PutQuarantine(ctx, testItem("wau", 1, 0))
		noErr(t, err, "PutQuarantine in another project")

		noErr(t, st.ResolveQuarantine(ctx, "juba", []string{recordID(1), recordID(3), recordID(7)}, at(10)),
			"ResolveQuarantine")
		same(t, "unresolved items", listAll(t, ctx, st, "juba", openOnly, 2), []domain.QuarantineItem{want[0], want[2]})
		all := []domain.QuarantineItem{want[0], want[1], want[2], want[3], stored(other)}
		for _, i := range []int{1, 3, 4} {
			all[i].ResolvedAt = ptr(at(10))
		}
		same(t, "all items", listAll(t, ctx, st, "juba", domain.QuarantineFilter{}, 2), all)
		same(t, "another project's items", listAll(t, ctx, st, "wau", openOnly, 10),
			[]domain.QuarantineItem{stored(testItem("wau", 1, 0))})

		// Resolving again keeps the first time; no ids is a no-op.
		noErr(t, st.ResolveQuarantine(ctx, "juba", []string{recordID(1)}, at(11)), "ResolveQuarantine again")
		noErr(t, st.ResolveQuarantine(ctx, "juba", nil, at(12)), "ResolveQuarantine of no records")
		same(t, "all items after resolving again", listAll(t, ctx, st, "juba", domain.QuarantineFilter{}, 10), all)
	})
	s.run(t, "BadCursor", func(t *testing.T, ctx context.Context, st domain.Store) {
		_, err := st.PutQuarantine(ctx, testItem("juba", 1, 1))
		noErr(t, err, "PutQuarantine")
		_, _, err = st.ListQuarantine(ctx, "juba", domain.QuarantineFilter{}, "not a cursor!", 10)
		isBadRequest(t, err, "ListQuarantine with a cursor the store did not make")
	})
	s.run(t, "ForbiddenStays", func(t *testing.T, ctx context.Context, st domain.Store) {
		// An edit refused because its device may not write the record is not
		// settled by someone else's write of that record.
		forbidden := testItem("juba", 1, 1)
		forbidden.Reason, forbidden.Errors = domain.QuarantineForbidden, []domain.Finding{{Path: "/id", Keyword: "forbidden", Message: "this record belongs to someone else"}}
		got, err := st.PutQuarantine(ctx, forbidden)
		noErr(t, err, "PutQuarantine")
		same(t, "forbidden item", got, stored(forbidden))
		rejected := testItem("juba", 1, 2)
		rejected.ID = fmt.Sprintf("%064x", 6000)
		_, err = st.PutQuarantine(ctx, rejected)
		noErr(t, err, "PutQuarantine")
		noErr(t, st.ResolveQuarantine(ctx, "juba", []string{recordID(1)}, at(3)), "ResolveQuarantine")
		same(t, "unresolved items", listAll(t, ctx, st, "juba", openOnly, 10), []domain.QuarantineItem{stored(forbidden)})
	})
	s.run(t, "PutAfterResolve", func(t *testing.T, ctx context.Context, st domain.Store) {
		_, err := st.PutQuarantine(ctx, testItem("juba", 1, 1))
		noErr(t, err, "PutQuarantine")
		noErr(t, st.ResolveQuarantine(ctx, "juba", []string{recordID(1)}, at(2)), "ResolveQuarantine")
		got, err := st.PutQuarantine(ctx, testItem("juba", 1, 3))
		noErr(t, err, "PutQuarantine after resolve")
		want := stored(testItem("juba", 1, 1))
		want.LastSeen, want.Attempts = at(3), 2
		same(t, "item put again after resolve", got, want)
		same(t, "unresolved items", listAll(t, ctx, st, "juba", openOnly, 10), []domain.QuarantineItem{want})
	})
}
