package identity

import (
	"context"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/fieldsync/fieldsync/internal/domain"
)

func TestRefreshRotationAndReplay(t *testing.T) {
	ctx := context.Background()
	e := newEnv(t)
	pair1, _ := e.user("alice", "", "")

	e.clock.Advance(time.Minute)
	pair2, err := e.svc.Refresh(ctx, pair1.RefreshToken, "192.0.2.50")
	wantNoErr(t, err)
	if pair2.RefreshToken == pair1.RefreshToken || pair2.AccessToken == pair1.AccessToken {
		t.Fatal("refresh did not rotate the tokens")
	}
	c1, _ := claimsOf(t, pair1.AccessToken)
	c2, _ := claimsOf(t, pair2.AccessToken)
	if c1.Session != c2.Session {
		t.Fatal("the new pair is not in the same family")
	}
	if _, err := e.svc.Authenticate(ctx, pair2.AccessToken); err != nil {
		t.Fatal(err)
	}
	pair3, err := e.svc.Refresh(ctx, pair2.RefreshToken, "192.0.2.50")
	wantNoErr(t, err)

	// Replaying pair1's spent token revokes the whole family: the newest token
	// (pair3's) is refused too, and so are the family's access tokens.
	_, err = e.svc.Refresh(ctx, pair1.RefreshToken, "203.0.113.66")
	wantErr(t, err, domain.KindUnauthorized, "invalid_grant")
	_, err = e.svc.Refresh(ctx, pair3.RefreshToken, "192.0.2.50")
	wantErr(t, err, domain.KindUnauthorized, "invalid_grant")
	_, err = e.svc.Authenticate(ctx, pair3.AccessToken)
	wantErr(t, err, domain.KindUnauthorized, "invalid_token")

	ev := e.audits(domain.AuditFilter{Type: AuditFamilyRevoked})
	if len(ev) != 1 || ev[0].Detail["reason"] != "replay" || ev[0].Subject != "alice" ||
		ev[0].Detail["family"] != c1.Session || ev[0].RemoteAddr != "203.0.113.66" {
		t.Fatalf("family_revoked events = %+v", ev)
	}
	// A second replay does not audit again.
	_, err = e.svc.Refresh(ctx, pair2.RefreshToken, "")
	wantErr(t, err, domain.KindUnauthorized, "invalid_grant")
	if ev := e.audits(domain.AuditFilter{Type: AuditFamilyRevoked}); len(ev) != 1 {
		t.Fatalf("%d family_revoked events after a second replay, want 1", len(ev))
	}
	// Routine refreshes are not audited (see Refresh).
	if ev := e.audits(domain.AuditFilter{Type: "token_refreshed"}); len(ev) != 0 {
		t.Fatalf("token_refreshed events: %d", len(ev))
	}
	// Other sessions of the user live on; a new login works.
	e.login(e.svc, "alice", "alice-password-123")
}

func TestRefreshFailures(t *testing.T) {
	ctx := context.Background()
	e := newEnv(t)
	pair, _ := e.user("alice", "", "")
	tests := []struct {
		name  string
		token string
	}{
		{name: "empty", token: ""},
		{name: "malformed", token: "definitely not a token"},
		{name: "unknown, well formed", token: strings.Repeat("A", 43)},
		{name: "the access token", token: pair.AccessToken},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, err := e.svc.Refresh(ctx, tt.token, "")
			wantErr(t, err, domain.KindUnauthorized, "invalid_grant")
		})
	}
	// Unknown tokens revoke nothing.
	if _, err := e.svc.Refresh(ctx, pair.RefreshToken, ""); err != nil {
		t.Fatalf("the real token after failures: %v", err)
	}
}

// TestUserSessionDoesNotSlide: a user's session ends RefreshTTL after the login,
// however often it is refreshed.
func TestUserSessionDoesNotSlide(t *testing.T) {
	ctx := context.Background()
	e := newEnv(t)
	pair, _ := e.user("alice", "", "")
	var err error
	for i := 0; i < 3; i++ {
		e.clock.Advance(9 * 24 * time.Hour)
		pair, err = e.svc.Refresh(ctx, pair.RefreshToken, "")
		wantNoErr(t, err)
	}
	e.clock.Advance(3*24*time.Hour + time.Second) // 30 days and a second after login
	_, err = e.svc.Refresh(ctx, pair.RefreshToken, "")
	wantErr(t, err, domain.KindUnauthorized, "invalid_grant")
}

func TestLogout(t *testing.T) {
	ctx := context.Background()
	e := newEnv(t)
	pair, _ := e.user("alice", "", "")
	other, _ := e.login(e.svc, "alice", "alice-password-123")

	wantNoErr(t, e.svc.Revoke(ctx, pair.RefreshToken))
	_, err := e.svc.Refresh(ctx, pair.RefreshToken, "")
	wantErr(t, err, domain.KindUnauthorized, "invalid_grant")
	_, err = e.svc.Authenticate(ctx, pair.AccessToken)
	wantErr(t, err, domain.KindUnauthorized, "invalid_token")
	// Another session of the same user is untouched.
	if _, err := e.svc.Refresh(ctx, other.RefreshToken, ""); err != nil {
		t.Fatalf("the other session died: %v", err)
	}
	// Unknown, malformed and repeated revocations answer nil.
	for _, tok := range []string{"", "garbage", strings.Repeat("B", 43), pair.RefreshToken} {
		wantNoErr(t, e.svc.Revoke(ctx, tok))
	}
	ev := e.audits(domain.AuditFilter{Type: AuditFamilyRevoked})
	if len(ev) != 1 || ev[0].Detail["reason"] != "logout" || ev[0].Actor != "alice" {
		t.Fatalf("family_revoked events = %+v", ev)
	}
}

// TestConcurrentRefresh: two instances spend one token at the same moment. The
// store lets one spend it; the other is a replay, so the family dies either way
// (the winner may even see its family revoked before it answers).
func TestConcurrentRefresh(t *testing.T) {
	ctx := context.Background()
	e := newEnv(t)
	_, b := e.instance()
	pair, _ := e.user("alice", "", "")
	var wg sync.WaitGroup
	results := make([]error, 2)
	pairs := make([]TokenPair, 2)
	for i, svc := range []*Service{e.svc, b} {
		wg.Go(func() { pairs[i], results[i] = svc.Refresh(ctx, pair.RefreshToken, "") })
	}
	wg.Wait()
	wins := 0
	for i, err := range results {
		if err == nil {
			wins++
			// The winner's new token belongs to a revoked family.
			_, err := e.svc.Refresh(ctx, pairs[i].RefreshToken, "")
			wantErr(t, err, domain.KindUnauthorized, "invalid_grant")
		} else {
			wantErr(t, err, domain.KindUnauthorized, "invalid_grant")
		}
	}
	if wins > 1 {
		t.Fatalf("%d refreshes won, want at most 1", wins)
	}
	if ev := e.audits(domain.AuditFilter{Type: AuditFamilyRevoked}); len(ev) != 1 || ev[0].Detail["reason"] != "replay" {
		t.Fatalf("family_revoked events = %+v", ev)
	}
}
