// Package storetest is the conformance suite of the store contract
// (domain.Store). Every backend runs it from its own tests:
//
//	func TestStore(t *testing.T) {
//		storetest.Run(t, func(t *testing.T) domain.Store { … a fresh, empty store … })
//	}
//
// A backend is done when it passes. Each leaf test asks for a fresh store, so tests
// never depend on each other. The data is small on purpose (tens of records): the
// MongoDB backend runs the suite against FerretDB, which scans whole collections.
//
// The suite pins a few readings of the contract that its comments leave open;
// they are stated next to the tests that check them:
//   - WriteRecords sets Seq and Version in the caller's writes slice
//     (writes[i].Record) for every applied write;
//   - ListQuarantine answers a cursor it did not make with a *domain.Error of
//     KindBadRequest (the records service relies on it);
//   - AuditFilter.Since is inclusive and Until exclusive;
//   - ListRevisions orders by CreatedAt (the suite never relies on ties);
//   - a store returns times in UTC; Data and other JSON values are compared as
//     JSON, so a backend may re-encode them.
package storetest

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"reflect"
	"testing"
	"time"

	"github.com/fieldsync/fieldsync/internal/domain"
)

// Run runs the whole conformance suite. newStore must return a new, empty store
// and arrange for it to be closed when t ends (t.Cleanup).
func Run(t *testing.T, newStore func(t *testing.T) domain.Store) {
	s := suite{newStore: newStore}
	t.Run("Users", s.users)
	t.Run("Projects", s.projects)
	t.Run("Memberships", s.memberships)
	t.Run("Devices", s.devices)
	t.Run("DeviceSync", s.deviceSync)
	t.Run("Tokens", s.tokens)
	t.Run("RefreshTokenLookup", s.refreshTokenLookup)
	t.Run("SigningKeys", s.signingKeys)
	t.Run("SigningKeySeal", s.signingKeySeal)
	t.Run("Settings", s.settings)
	t.Run("Forms", s.forms)
	t.Run("Records", s.records)
	t.Run("Revisions", s.revisions)
	t.Run("Changes", s.changes)
	t.Run("ConcurrentFeed", func(t *testing.T) { RunConcurrentFeed(t, newStore(t)) })
	t.Run("Quarantine", s.quarantine)
	t.Run("QuarantineDecisions", s.quarantineDecisions)
	t.Run("Datasets", s.datasets)
	t.Run("Audit", s.audit)
	t.Run("Reviews", s.reviews)
	t.Run("Attachments", s.attachments)
	t.Run("OpenRosa", s.openRosa)
	t.Run("Ping", func(t *testing.T) {
		if err := newStore(t).Ping(t.Context()); err != nil {
			t.Fatalf("Ping: %v", err)
		}
	})
}

// suite carries the store constructor to the test groups.
type suite struct {
	newStore func(t *testing.T) domain.Store
}

// run runs one leaf test on a fresh store.
func (s suite) run(t *testing.T, name string, fn func(t *testing.T, ctx context.Context, st domain.Store)) {
	t.Helper()
	t.Run(name, func(t *testing.T) {
		fn(t, t.Context(), s.newStore(t))
	})
}

// t0 is the base time of the suite's data: UTC, whole milliseconds (see
// internal/domain/doc.go), as the services store times.
var t0 = time.Date(2026, 3, 1, 8, 0, 0, 0, time.UTC)

// at returns t0 plus m minutes and a few milliseconds, so that stores which
// drop milliseconds fail.
func at(m int) time.Time {
	return t0.Add(time.Duration(m)*time.Minute + 123*time.Millisecond)
}

// ptr returns a pointer to a copy of v.
func ptr[T any](v T) *T { return &v }

// noErr fails the test now when err is not nil.
func noErr(tb testing.TB, err error, what string) {
	tb.Helper()
	if err != nil {
		tb.Fatalf("%s: unexpected error: %v", what, err)
	}
}

// isErr fails the test now unless errors.Is(err, want).
func isErr(tb testing.TB, err, want error, what string) {
	tb.Helper()
	if !errors.Is(err, want) {
		tb.Fatalf("%s: got error %v, want %v", what, err, want)
	}
}

// isBadRequest fails the test unless err is a *domain.Error of KindBadRequest, as
// a store answers a cursor it did not make (the HTTP layer answers 400).
func isBadRequest(tb testing.TB, err error, what string) {
	tb.Helper()
	if e, ok := domain.AsError(err); !ok || e.Kind != domain.KindBadRequest {
		tb.Fatalf("%s: got error %v, want a *domain.Error of KindBadRequest", what, err)
	}
}

// same fails the test unless got and want are equal as JSON: times compare by
// their RFC 3339 text (so both must be UTC), json.RawMessage values compare as
// parsed JSON (so a backend may re-encode them), and empty slices and maps equal
// nil ones.
func same(tb testing.TB, what string, got, want any) {
	tb.Helper()
	g, w := normalize(tb, got), normalize(tb, want)
	if !reflect.DeepEqual(g, w) {
		gj, _ := json.MarshalIndent(g, "", "  ")
		wj, _ := json.MarshalIndent(w, "", "  ")
		tb.Errorf("%s differs:\n got: %s\nwant: %s", what, gj, wj)
	}
}

// normalize turns v into plain JSON values with empty arrays and objects as nil.
func normalize(tb testing.TB, v any) any {
	tb.Helper()
	b, err := json.Marshal(v)
	if err != nil {
		tb.Fatalf("marshal %T: %v", v, err)
	}
	var out any
	if err := json.Unmarshal(b, &out); err != nil {
		tb.Fatalf("unmarshal %T: %v", v, err)
	}
	return squash(out)
}

func squash(v any) any {
	switch x := v.(type) {
	case []any:
		if len(x) == 0 {
			return nil
		}
		for i := range x {
			x[i] = squash(x[i])
		}
	case map[string]any:
		if len(x) == 0 {
			return nil
		}
		for k := range x {
			x[k] = squash(x[k])
		}
	}
	return v
}

// sameJSON reports whether two JSON documents are equal as values.
func sameJSON(a, b json.RawMessage) bool {
	var x, y any
	if len(a) == 0 {
		a = json.RawMessage("null")
	}
	if len(b) == 0 {
		b = json.RawMessage("null")
	}
	if json.Unmarshal(a, &x) != nil || json.Unmarshal(b, &y) != nil {
		return false
	}
	return reflect.DeepEqual(x, y)
}

// concurrently runs fn(i) for i in [0, n) in n goroutines released at the same
// moment and returns their errors in order.
func concurrently(n int, fn func(i int) error) []error {
	errs := make([]error, n)
	start := make(chan struct{})
	done := make(chan struct{})
	for i := range n {
		go func() {
			defer func() { done <- struct{}{} }()
			<-start
			errs[i] = fn(i)
		}()
	}
	close(start)
	for range n {
		<-done
	}
	return errs
}

// exactlyOneWinner fails unless exactly one of errs is nil and every other is
// the loser error.
func exactlyOneWinner(tb testing.TB, what string, errs []error, loser error) {
	tb.Helper()
	wins := 0
	for i, err := range errs {
		switch {
		case err == nil:
			wins++
		case !errors.Is(err, loser):
			tb.Errorf("%s: caller %d got %v, want nil or %v", what, i, err, loser)
		}
	}
	if wins != 1 {
		tb.Errorf("%s: %d callers won, want exactly 1", what, wins)
	}
}

// name makes distinct ids for the suite's items.
func name(prefix string, i int) string { return fmt.Sprintf("%s-%02d", prefix, i) }
