package storetest

import (
	"context"
	"encoding/json"
	"fmt"
	"testing"

	"github.com/fieldsync/fieldsync/internal/domain"
)

// quarantineDecisions checks what people decide about quarantine entries:
// claims for a re-apply, its outcome, dismissals, and the listing by state and
// form.
func (s suite) quarantineDecisions(t *testing.T) {
	s.run(t, "GetUnknown", func(t *testing.T, ctx context.Context, st domain.Store) {
		_, err := st.PutQuarantine(ctx, testItem("juba", 1, 1))
		noErr(t, err, "PutQuarantine")
		got, err := st.GetQuarantine(ctx, "juba", testItem("juba", 1, 1).ID)
		noErr(t, err, "GetQuarantine")
		same(t, "item", got, stored(testItem("juba", 1, 1)))
		_, err = st.GetQuarantine(ctx, "juba", "nope")
		isErr(t, err, domain.ErrNotFound, "GetQuarantine of an unknown item")
		_, err = st.GetQuarantine(ctx, "wau", testItem("juba", 1, 1).ID)
		isErr(t, err, domain.ErrNotFound, "GetQuarantine in another project")
		_, err = st.ClaimQuarantine(ctx, "juba", "nope", "c1", at(2), at(1))
		isErr(t, err, domain.ErrNotFound, "ClaimQuarantine of an unknown item")
		_, err = st.SettleQuarantine(ctx, "juba", "nope", "c1", domain.QuarantineReapply{By: "ann", At: at(2)})
		isErr(t, err, domain.ErrNotFound, "SettleQuarantine of an unknown item")
		_, err = st.DismissQuarantine(ctx, "juba", "nope", domain.QuarantineDismissal{By: "ann", Reason: "x", At: at(2)}, at(1))
		isErr(t, err, domain.ErrNotFound, "DismissQuarantine of an unknown item")
	})
	s.run(t, "ClaimOnce", func(t *testing.T, ctx context.Context, st domain.Store) {
		item := testItem("juba", 1, 1)
		_, err := st.PutQuarantine(ctx, item)
		noErr(t, err, "PutQuarantine")
		errs := concurrently(8, func(i int) error {
			_, err := st.ClaimQuarantine(ctx, "juba", item.ID, fmt.Sprintf("claim-%d", i), at(2), at(1))
			return err
		})
		exactlyOneWinner(t, "concurrent claims", errs, domain.ErrStale)
		got, err := st.GetQuarantine(ctx, "juba", item.ID)
		noErr(t, err, "GetQuarantine")
		if got.Claim == "" || got.ClaimedAt == nil || !got.ClaimedAt.Equal(at(2)) || got.State() != domain.QuarantineOpen {
			t.Errorf("claimed item: %+v", got)
		}
		// A live claim refuses a dismissal; a lapsed one is taken over.
		_, err = st.DismissQuarantine(ctx, "juba", item.ID, domain.QuarantineDismissal{By: "ann", Reason: "junk", At: at(3)}, at(2))
		isErr(t, err, domain.ErrStale, "DismissQuarantine of an item under a live claim")
		_, err = st.ClaimQuarantine(ctx, "juba", item.ID, "late", at(3), at(2))
		isErr(t, err, domain.ErrStale, "ClaimQuarantine of an item under a live claim")
		taken, err := st.ClaimQuarantine(ctx, "juba", item.ID, "late", at(9), at(5))
		noErr(t, err, "ClaimQuarantine of an item whose claim lapsed")
		if taken.Claim != "late" {
			t.Errorf("taken-over claim = %q, want late", taken.Claim)
		}
		// The lapsed holder can no longer settle.
		_, err = st.SettleQuarantine(ctx, "juba", item.ID, got.Claim, domain.QuarantineReapply{By: "ann", At: at(9), Applied: true, Status: "created"})
		isErr(t, err, domain.ErrStale, "SettleQuarantine under a lost claim")
	})
	s.run(t, "SettleApplied", func(t *testing.T, ctx context.Context, st domain.Store) {
		item := testItem("juba", 1, 1)
		_, err := st.PutQuarantine(ctx, item)
		noErr(t, err, "PutQuarantine")
		_, err = st.ClaimQuarantine(ctx, "juba", item.ID, "c1", at(2), at(1))
		noErr(t, err, "ClaimQuarantine")
		r := domain.QuarantineReapply{By: "ann", At: at(3), Applied: true, Status: "created", Rev: "1-abc", FormVersion: "1",
			Data: json.RawMessage(`{"respondent":{"age":41}}`)}
		got, err := st.SettleQuarantine(ctx, "juba", item.ID, "c1", r)
		noErr(t, err, "SettleQuarantine")
		want := stored(item)
		want.ResolvedAt, want.ResolvedBy, want.LastReapply = ptr(at(3)), "ann", &r
		same(t, "settled item", got, want)
		if got.State() != domain.QuarantineResolved {
			t.Errorf("state %q, want resolved", got.State())
		}
		_, err = st.SettleQuarantine(ctx, "juba", item.ID, "c1", r)
		isErr(t, err, domain.ErrStale, "SettleQuarantine twice")
		_, err = st.ClaimQuarantine(ctx, "juba", item.ID, "c2", at(4), at(4))
		isErr(t, err, domain.ErrStale, "ClaimQuarantine of a resolved item")
		_, err = st.DismissQuarantine(ctx, "juba", item.ID, domain.QuarantineDismissal{By: "ann", Reason: "x", At: at(4)}, at(4))
		isErr(t, err, domain.ErrStale, "DismissQuarantine of a resolved item")
		same(t, "resolved items", listAll(t, ctx, st, "juba", domain.QuarantineFilter{States: []string{domain.QuarantineResolved}}, 10), []domain.QuarantineItem{want})
		same(t, "open items", listAll(t, ctx, st, "juba", openOnly, 10), []domain.QuarantineItem(nil))

		// Pushed again, the item is open again and keeps its last re-apply.
		again, err := st.PutQuarantine(ctx, testItem("juba", 1, 6))
		noErr(t, err, "PutQuarantine again")
		want.ResolvedAt, want.ResolvedBy, want.LastSeen, want.Attempts = nil, "", at(6), 2
		same(t, "item pushed again", again, want)
	})
	s.run(t, "SettleRefused", func(t *testing.T, ctx context.Context, st domain.Store) {
		item := testItem("juba", 1, 1)
		_, err := st.PutQuarantine(ctx, item)
		noErr(t, err, "PutQuarantine")
		_, err = st.ClaimQuarantine(ctx, "juba", item.ID, "c1", at(2), at(1))
		noErr(t, err, "ClaimQuarantine")
		findings := []domain.Finding{{Path: "/data/respondent/age", Keyword: "maximum", Message: "must be <= 120"}}
		r := domain.QuarantineReapply{By: "ann", At: at(3), Status: "rejected", FormVersion: "1",
			Data: json.RawMessage(`{"respondent":{"age":410}}`), Errors: findings}
		got, err := st.SettleQuarantine(ctx, "juba", item.ID, "c1", r)
		noErr(t, err, "SettleQuarantine")
		want := stored(item)
		want.Errors, want.LastReapply = findings, &r
		same(t, "item after a refused re-apply", got, want)
		// Open and unclaimed: it may be claimed again, and dismissed.
		same(t, "open items", listAll(t, ctx, st, "juba", openOnly, 10), []domain.QuarantineItem{want})
		_, err = st.ClaimQuarantine(ctx, "juba", item.ID, "c2", at(4), at(1))
		noErr(t, err, "ClaimQuarantine after a refused re-apply")
	})
	s.run(t, "Dismiss", func(t *testing.T, ctx context.Context, st domain.Store) {
		item := testItem("juba", 1, 1)
		_, err := st.PutQuarantine(ctx, item)
		noErr(t, err, "PutQuarantine")
		d := domain.QuarantineDismissal{By: "mia", Reason: "a test interview", At: at(2)}
		got, err := st.DismissQuarantine(ctx, "juba", item.ID, d, at(1))
		noErr(t, err, "DismissQuarantine")
		want := stored(item)
		want.DismissedAt, want.DismissedBy, want.DismissReason = ptr(at(2)), "mia", "a test interview"
		same(t, "dismissed item", got, want)
		if got.State() != domain.QuarantineDismissed {
			t.Errorf("state %q, want dismissed", got.State())
		}
		_, err = st.DismissQuarantine(ctx, "juba", item.ID, d, at(1))
		isErr(t, err, domain.ErrStale, "DismissQuarantine twice")
		_, err = st.ClaimQuarantine(ctx, "juba", item.ID, "c1", at(3), at(3))
		isErr(t, err, domain.ErrStale, "ClaimQuarantine of a dismissed item")

		// A later write of the record does not resolve it, and a re-push
		// counts the attempt but keeps the dismissal.
		noErr(t, st.ResolveQuarantine(ctx, "juba", []string{recordID(1)}, at(4)), "ResolveQuarantine")
		again, err := st.PutQuarantine(ctx, testItem("juba", 1, 5))
		noErr(t, err, "PutQuarantine again")
		want.LastSeen, want.Attempts = at(5), 2
		same(t, "dismissed item pushed again", again, want)
		same(t, "open items", listAll(t, ctx, st, "juba", openOnly, 10), []domain.QuarantineItem(nil))
		same(t, "dismissed items", listAll(t, ctx, st, "juba", domain.QuarantineFilter{States: []string{domain.QuarantineDismissed}}, 10), []domain.QuarantineItem{want})
	})
	s.run(t, "FilterByStateAndForm", func(t *testing.T, ctx context.Context, st domain.Store) {
		// Items 0-5 of forms perception (even) and wash (odd); 1 and 2
		// resolved, 3 and 4 dismissed.
		var all []domain.QuarantineItem
		for i := range 6 {
			item := testItem("juba", i, i)
			if i%2 == 1 {
				item.FormID = "wash"
			}
			_, err := st.PutQuarantine(ctx, item)
			noErr(t, err, "PutQuarantine")
			all = append(all, stored(item))
		}
		_, err := st.PutQuarantine(ctx, testItem("wau", 1, 1))
		noErr(t, err, "PutQuarantine in another project")
		noErr(t, st.ResolveQuarantine(ctx, "juba", []string{recordID(1), recordID(2)}, at(7)), "ResolveQuarantine")
		all[1].ResolvedAt, all[2].ResolvedAt = ptr(at(7)), ptr(at(7))
		for _, i := range []int{3, 4} {
			_, err := st.DismissQuarantine(ctx, "juba", all[i].ID, domain.QuarantineDismissal{By: "mia", Reason: "dup", At: at(8)}, at(1))
			noErr(t, err, "DismissQuarantine")
			all[i].DismissedAt, all[i].DismissedBy, all[i].DismissReason = ptr(at(8)), "mia", "dup"
		}
		pick := func(idx ...int) []domain.QuarantineItem {
			var out []domain.QuarantineItem
			for _, i := range idx {
				out = append(out, all[i])
			}
			return out
		}
		for _, c := range []struct {
			name string
			f    domain.QuarantineFilter
			want []domain.QuarantineItem
		}{
			{"all", domain.QuarantineFilter{}, all},
			{"all states named", domain.QuarantineFilter{States: domain.QuarantineStates}, all},
			{"open", openOnly, pick(0, 5)},
			{"resolved", domain.QuarantineFilter{States: []string{domain.QuarantineResolved}}, pick(1, 2)},
			{"dismissed", domain.QuarantineFilter{States: []string{domain.QuarantineDismissed}}, pick(3, 4)},
			{"open or dismissed", domain.QuarantineFilter{States: []string{domain.QuarantineDismissed, domain.QuarantineOpen}}, pick(0, 3, 4, 5)},
			{"form wash", domain.QuarantineFilter{FormID: "wash"}, pick(1, 3, 5)},
			{"form wash, open", domain.QuarantineFilter{FormID: "wash", States: []string{domain.QuarantineOpen}}, pick(5)},
			{"unknown form", domain.QuarantineFilter{FormID: "nope"}, nil},
		} {
			for _, limit := range []int{1, 2, 10} {
				same(t, fmt.Sprintf("%s, pages of %d", c.name, limit), listAll(t, ctx, st, "juba", c.f, limit), c.want)
			}
		}
	})
}
