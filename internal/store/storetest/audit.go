package storetest

import (
	"context"
	"fmt"
	"slices"
	"testing"
	"time"

	"github.com/fieldsync/fieldsync/internal/domain"
)

// listAudit pages through the matching events with the given page size.
func listAudit(tb testing.TB, ctx context.Context, st domain.Store, f domain.AuditFilter, limit int) []domain.AuditEvent {
	tb.Helper()
	var out []domain.AuditEvent
	cursor := ""
	for range maxPages {
		events, next, err := st.ListAudit(ctx, f, cursor, limit)
		noErr(tb, err, "ListAudit")
		if len(events) > limit {
			tb.Fatalf("ListAudit(limit %d): %d events", limit, len(events))
		}
		// A cursor is handed out only when a next page exists.
		if cursor != "" && len(events) == 0 {
			tb.Fatalf("ListAudit: cursor %q led to an empty page", cursor)
		}
		out = append(out, events...)
		if next == "" {
			return out
		}

		cursor = next
	}
	tb.Fatalf("ListAudit: more after %d pages", maxPages)
	return nil
}

func (s suite) audit(t *testing.T) {
	event := func(m int, typ, actor, project string) domain.AuditEvent {
		return domain.AuditEvent{
			Time: at(m), Type: typ, Actor: actor, ProjectID: project, Subject: "subject-" + typ,
			RemoteAddr: "192.0.2.7", Detail: map[string]string{"n": fmt.Sprint(m)},
		}
	}
	// appendAll appends events in order and returns them with their IDs, newest
	// first (as ListAudit returns them).
	appendAll := func(tb testing.TB, ctx context.Context, st domain.Store, es ...domain.AuditEvent) []domain.AuditEvent {
		tb.Helper()
		var out []domain.AuditEvent
		for _, e := range es {
			got, err := st.AppendAudit(ctx, e)
			noErr(tb, err, "AppendAudit")
			if got.ID == "" {
				tb.Fatal("AppendAudit assigned no ID")
			}
			if len(out) > 0 && got.ID <= out[len(out)-1].ID {
				tb.Fatalf("AppendAudit: ID %q not above the previous %q", got.ID, out[len(out)-1].ID)
			}
			want := e
			want.ID = got.ID
			same(tb, "appended event", got, want)
			out = append(out, got)
		}
		slices.Reverse(out)
		return out
	}

	s.run(t, "AppendList", func(t *testing.T, ctx context.Context, st domain.Store) {
		events, _, err := st.ListAudit(ctx, domain.AuditFilter{}, "", 10)
		noErr(t, err, "ListAudit of an empty log")
		if len(events) != 0 {
			t.Fatalf("ListAudit of an empty log: %d events", len(events))
		}
		want := appendAll(t, ctx, st,
			event(0, "login", "amina", ""), event(1, "role_set", "amina", "juba"), event(2, "login_failed", "", ""))
		got, next, err := st.ListAudit(ctx, domain.AuditFilter{}, "", 10)
		noErr(t, err, "ListAudit")
		same(t, "events, newest first", got, want)
		if next != "" {
			t.Errorf("next cursor %q after the only page", next)
		}
	})
	s.run(t, "Paging", func(t *testing.T, ctx context.Context, st domain.Store) {
		var es []domain.AuditEvent
		for m := range 5 {
			es = append(es, event(m, "login", "amina", ""))
		}
		want := appendAll(t, ctx, st, es...)
		for _, limit := range []int{1, 2, 5, 10} {
			same(t, fmt.Sprintf("events in pages of %d", limit), listAudit(t, ctx, st, domain.AuditFilter{}, limit), want)
		}
		page, next, err := st.ListAudit(ctx, domain.AuditFilter{}, "", 2)
		noErr(t, err, "ListAudit")
		same(t, "first page", page, want[:2])
		// An event appended meanwhile is newer than the cursor: it is not on the
		// following pages.
		appendAll(t, ctx, st, event(9, "login", "bob", ""))
		page, _, err = st.ListAudit(ctx, domain.AuditFilter{}, next, 2)
		noErr(t, err, "ListAudit second page")
		same(t, "second page", page, want[2:4])
		// A cursor the store did not hand out is the client's mistake.
		for _, bad := range []string{"garbage", "zzzz", next + "x", " "} {
			_, _, err := st.ListAudit(ctx, domain.AuditFilter{}, bad, 2)
			isBadRequest(t, err, fmt.Sprintf("ListAudit with cursor %q", bad))
		}
	})
	s.run(t, "Filters", func(t *testing.T, ctx context.Context, st domain.Store) {
		all := appendAll(t, ctx, st,
			event(0, "login", "amina", ""),
			event(1, "role_set", "amina", "juba"),
			event(2, "login", "bob", ""),
			event(3, "device_revoked", "amina", "wau"),
			event(4, "role_set", "bob", "juba"),
			event(5, "login_failed", "", ""),
		)
		// all is newest first: all[i] is event(5-i).
		pick := func(ms ...int) []domain.AuditEvent {
			var out []domain.AuditEvent
			for _, m := range ms {
				out = append(out, all[5-m])
			}
			return out
		}
		for _, tc := range []struct {
			name string
			f    domain.AuditFilter
			want []domain.AuditEvent
		}{
			{"type", domain.AuditFilter{Type: "login"}, pick(2, 0)},
			{"actor", domain.AuditFilter{Actor: "amina"}, pick(3, 1, 0)},
			{"project", domain.AuditFilter{ProjectID: "juba"}, pick(4, 1)},
			{"since (inclusive)", domain.AuditFilter{Since: at(3)}, pick(5, 4, 3)},
			{"until (exclusive)", domain.AuditFilter{Until: at(2)}, pick(1, 0)},
			{"since and until", domain.AuditFilter{Since: at(1), Until: at(4)}, pick(3, 2, 1)},
			{"since between events", domain.AuditFilter{Since: at(3).Add(-time.Second)}, pick(5, 4, 3)},
			{"type and actor", domain.AuditFilter{Type: "role_set", Actor: "bob"}, pick(4)},
			{"no match", domain.AuditFilter{Type: "nothing"}, nil},
		} {
			for _, limit := range []int{1, 2, 10} {
				same(t, fmt.Sprintf("filter %s, pages of %d", tc.name, limit), listAudit(t, ctx, st, tc.f, limit), tc.want)
			}
		}
	})
}
