package identity

import (
	"context"
	"slices"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/fieldsync/fieldsync/internal/domain"
)

func TestRefreshRotationAndReplay(t *testing.T) {
	eachStore(t, func(t *testing.T, be backend) {
		ctx := context.Background()
		e := newEnv(t, be)
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
		// (pair3's) is refused too, and so are the family's access tokens. (pair1's
		// successor was used a second ago, not while this call ran: no lost race.)
		e.clock.Advance(time.Second)
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
		// Routine refreshes are not audited (see Refresh): no event type even
		// exists for them.
		if slices.Contains(AuditTypes, "token_refreshed") {
			t.Fatal("routine refreshes have an audit event type")
		}
		// Other sessions of the user live on; a new login works.
		e.login(e.svc, "alice", "alice-password-123")
	})
}

func TestRefreshFailures(t *testing.T) {
	eachStore(t, func(t *testing.T, be backend) {
		ctx := context.Background()
		e := newEnv(t, be)
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
	})
}

// TestUserSessionDoesNotSlide: a user's session ends RefreshTTL after the login,
// however often it is refreshed.
func TestUserSessionDoesNotSlide(t *testing.T) {
	eachStore(t, func(t *testing.T, be backend) {
		ctx := context.Background()
		e := newEnv(t, be)
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
	})
}

func TestLogout(t *testing.T) {
	eachStore(t, func(t *testing.T, be backend) {
		ctx := context.Background()
		e := newEnv(t, be)
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
	})
}

// TestConcurrentRefresh: two instances spend one token at the same moment,
// without the reuse grace. The store lets one spend it; the other is a replay, so
// the family dies either way (the winner may even see its family revoked before
// it answers). TestConcurrentRefreshWithGrace is the same race with the grace.
func TestConcurrentRefresh(t *testing.T) {
	eachStore(t, func(t *testing.T, be backend) {
		ctx := context.Background()
		e := newEnv(t, be, noGrace)
		_, b := e.instance(noGrace)
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
	})
}

// noGrace turns the reuse grace off.
func noGrace(c *Config) { c.RefreshReuseGrace = NoRefreshReuseGrace }

// familyOf returns the token family of a pair, from its access token.
func familyOf(t testing.TB, pair TokenPair) string {
	t.Helper()
	c, _ := claimsOf(t, pair.AccessToken)
	return c.Session
}

// familyRevoked reports whether the family is revoked in the store.
func (e *env) familyRevoked(id string) bool {
	e.t.Helper()
	f, err := e.store.GetTokenFamily(context.Background(), id)
	if err != nil {
		e.t.Fatalf("GetTokenFamily: %v", err)
	}
	return f.RevokedAt != nil
}

// TestRefreshReuseGraceLostAnswer: the answer of a refresh is lost and the client
// retries with the spent token within the grace. It gets a working pair of the
// same family; the pair it never saw is dead, and its refresh token coming back
// later is a replay (whoever presents it is not the client that retried).
func TestRefreshReuseGraceLostAnswer(t *testing.T) {
	eachStore(t, func(t *testing.T, be backend) {
		ctx := context.Background()
		e := newEnv(t, be)
		e.project("p1")
		devPair, d, _ := e.device("p1")
		userPair, _ := e.user("alice", "", "")
		for _, tt := range []struct {
			name, subject, project string
			pair                   TokenPair
		}{
			{name: "device", subject: domain.DeviceSubject(d.ID), project: "p1", pair: devPair},
			{name: "user", subject: "alice", pair: userPair},
		} {
			t.Run(tt.name, func(t *testing.T) {
				fid := familyOf(t, tt.pair)
				e.clock.Advance(time.Hour)
				lost, err := e.svc.Refresh(ctx, tt.pair.RefreshToken, "198.51.100.7") // the answer never arrives
				wantNoErr(t, err)
				e.clock.Advance(40 * time.Second)
				retry, err := e.svc.Refresh(ctx, tt.pair.RefreshToken, "198.51.100.8")
				wantNoErr(t, err)
				if retry.RefreshToken == lost.RefreshToken || retry.AccessToken == lost.AccessToken {
					t.Fatal("the retry answered the lost pair again")
				}
				if familyOf(t, retry) != fid {
					t.Fatal("the retry's pair is not of the same family")
				}
				if e.familyRevoked(fid) {
					t.Fatal("the retry revoked the family")
				}
				if _, err := e.svc.Authenticate(ctx, retry.AccessToken); err != nil {
					t.Fatalf("the retry's access token: %v", err)
				}
				ev := e.audits(domain.AuditFilter{Type: AuditRefreshReused})
				if len(ev) == 0 || ev[0].Subject != tt.subject || ev[0].ProjectID != tt.project || ev[0].Actor != "" ||
					ev[0].RemoteAddr != "198.51.100.8" || ev[0].Detail["family"] != fid || ev[0].Detail["spent_ms"] != "40000" {
					t.Fatalf("refresh_reused events = %+v", ev)
				}

				// The retry's refresh token rotates like any other.
				e.clock.Advance(10 * time.Minute)
				next, err := e.svc.Refresh(ctx, retry.RefreshToken, "198.51.100.8")
				wantNoErr(t, err)
				if _, err := e.svc.Authenticate(ctx, next.AccessToken); err != nil {
					t.Fatalf("the next access token: %v", err)
				}
				if e.familyRevoked(fid) {
					t.Fatal("refreshing the retry's token revoked the family")
				}

				// The lost refresh token was spent by the retry: it never works,
				// and showing it is a replay.
				_, err = e.svc.Refresh(ctx, lost.RefreshToken, "203.0.113.66")
				wantErr(t, err, domain.KindUnauthorized, "invalid_grant")
				if !e.familyRevoked(fid) {
					t.Fatal("the lost token came back and the family lives on")
				}
				_, err = e.svc.Refresh(ctx, next.RefreshToken, "198.51.100.8")
				wantErr(t, err, domain.KindUnauthorized, "invalid_grant")
			})
		}
		if ev := e.audits(domain.AuditFilter{Type: AuditRefreshReused}); len(ev) != 2 {
			t.Fatalf("%d refresh_reused events, want 2", len(ev))
		}
	})
}

// TestRefreshReuseGraceRefused: every case the grace does not forgive is a replay
// that revokes the family, as without the grace.
func TestRefreshReuseGraceRefused(t *testing.T) {
	eachStore(t, func(t *testing.T, be backend) {
		ctx := context.Background()
		const grace = 30 * time.Second
		tests := []struct {
			name string
			opts []func(*Config)
			// after the first refresh of pair (whose answer, lost, is passed in),
			// before the retry of pair.
			between func(t *testing.T, e *env, pair, lost TokenPair)
		}{
			{name: "the successor was used", between: func(t *testing.T, e *env, _, lost TokenPair) {
				e.clock.Advance(time.Second)
				_, err := e.svc.Refresh(ctx, lost.RefreshToken, "")
				wantNoErr(t, err)
				e.clock.Advance(time.Millisecond) // and not while the retry ran
			}},
			{name: "at the end of the window", between: func(t *testing.T, e *env, _, _ TokenPair) {
				e.clock.Advance(grace)
			}},
			{name: "long after", between: func(t *testing.T, e *env, _, _ TokenPair) {
				e.clock.Advance(time.Hour)
			}},
			{name: "second retry", between: func(t *testing.T, e *env, pair, _ TokenPair) {
				// The first retry is forgiven, and its answer is lost too.
				e.clock.Advance(time.Second)
				_, err := e.svc.Refresh(ctx, pair.RefreshToken, "")
				wantNoErr(t, err)
				e.clock.Advance(time.Second)
			}},
			{name: "grace off", opts: []func(*Config){noGrace}},
			{name: "negative grace is off", opts: []func(*Config){func(c *Config) { c.RefreshReuseGrace = -time.Second }}},
		}
		for _, tt := range tests {
			t.Run(tt.name, func(t *testing.T) {
				opts := append([]func(*Config){func(c *Config) { c.RefreshReuseGrace = grace }}, tt.opts...)
				e := newEnv(t, be, opts...)
				pair, _ := e.user("alice", "", "")
				fid := familyOf(t, pair)
				lost, err := e.svc.Refresh(ctx, pair.RefreshToken, "")
				wantNoErr(t, err)
				if tt.between != nil {
					tt.between(t, e, pair, lost)
				}
				_, err = e.svc.Refresh(ctx, pair.RefreshToken, "203.0.113.66")
				wantErr(t, err, domain.KindUnauthorized, "invalid_grant")
				if !e.familyRevoked(fid) {
					t.Fatal("the family lives on")
				}
				ev := e.audits(domain.AuditFilter{Type: AuditFamilyRevoked})
				if len(ev) != 1 || ev[0].Detail["reason"] != "replay" || ev[0].Detail["family"] != fid {
					t.Fatalf("family_revoked events = %+v", ev)
				}
			})
		}
	})
}

// TestRefreshReuseGraceWindow: one millisecond before the end of the window the
// retry is forgiven.
func TestRefreshReuseGraceWindow(t *testing.T) {
	eachStore(t, func(t *testing.T, be backend) {
		ctx := context.Background()
		e := newEnv(t, be, func(c *Config) { c.RefreshReuseGrace = 30 * time.Second })
		pair, _ := e.user("alice", "", "")
		_, err := e.svc.Refresh(ctx, pair.RefreshToken, "")
		wantNoErr(t, err)
		e.clock.Advance(30*time.Second - time.Millisecond)
		_, err = e.svc.Refresh(ctx, pair.RefreshToken, "")
		wantNoErr(t, err)
	})
}

// TestRefreshReuseGraceConcurrentRetries: retries of one spent token at the same
// moment, on two instances. Spending the successor is the claim, so exactly one
// gets a pair, which works; the others are refused and revoke nothing (the clock
// stands still, so every claim happens while every call runs).
func TestRefreshReuseGraceConcurrentRetries(t *testing.T) {
	eachStore(t, func(t *testing.T, be backend) {
		ctx := context.Background()
		for _, n := range []int{2, 2, 2, 8} {
			t.Run(strconv.Itoa(n), func(t *testing.T) {
				e := newEnv(t, be)
				_, b := e.instance()
				pair, _ := e.user("alice", "", "")
				fid := familyOf(t, pair)
				_, err := e.svc.Refresh(ctx, pair.RefreshToken, "") // answer lost
				wantNoErr(t, err)
				e.clock.Advance(5 * time.Second)
				var wg sync.WaitGroup
				errs := make([]error, n)
				pairs := make([]TokenPair, n)
				for i := range n {
					svc := e.svc
					if i%2 == 1 {
						svc = b
					}
					wg.Go(func() { pairs[i], errs[i] = svc.Refresh(ctx, pair.RefreshToken, "") })
				}
				wg.Wait()
				winner := -1
				for i, err := range errs {
					if err != nil {
						wantErr(t, err, domain.KindUnauthorized, "invalid_grant")
						continue
					}
					if winner >= 0 {
						t.Fatalf("retries %d and %d both got a pair", winner, i)
					}
					winner = i
				}
				if winner < 0 {
					t.Fatalf("no retry got a pair: %v", errs)
				}
				if e.familyRevoked(fid) {
					t.Fatal("a simultaneous retry revoked the family")
				}
				if ev := e.audits(domain.AuditFilter{Type: AuditRefreshReused}); len(ev) != 1 {
					t.Fatalf("%d refresh_reused events, want 1", len(ev))
				}
				e.clock.Advance(time.Minute)
				_, err = e.svc.Refresh(ctx, pairs[winner].RefreshToken, "")
				wantNoErr(t, err)
			})
		}
	})
}

// TestRefreshReuseGraceOnlyOnce: a retry that comes after another retry was
// answered is a replay, even within the window; one that overlaps it (same
// instant here) is refused without revoking.
func TestRefreshReuseGraceOnlyOnce(t *testing.T) {
	eachStore(t, func(t *testing.T, be backend) {
		ctx := context.Background()
		e := newEnv(t, be)
		pair, _ := e.user("alice", "", "")
		fid := familyOf(t, pair)
		_, err := e.svc.Refresh(ctx, pair.RefreshToken, "") // answer lost
		wantNoErr(t, err)
		e.clock.Advance(10 * time.Second)
		retry, err := e.svc.Refresh(ctx, pair.RefreshToken, "")
		wantNoErr(t, err)
		// Same instant: it ran while the first retry claimed the successor.
		_, err = e.svc.Refresh(ctx, pair.RefreshToken, "")
		wantErr(t, err, domain.KindUnauthorized, "invalid_grant")
		if e.familyRevoked(fid) {
			t.Fatal("an overlapping retry revoked the family")
		}
		// Later, still within the window: the first retry was answered, so this
		// one is not the client that lost an answer (or the answer of its retry
		// was lost too, and there is no telling).
		e.clock.Advance(time.Millisecond)
		_, err = e.svc.Refresh(ctx, pair.RefreshToken, "")
		wantErr(t, err, domain.KindUnauthorized, "invalid_grant")
		if !e.familyRevoked(fid) {
			t.Fatal("a second retry within the window left the family alive")
		}
		_, err = e.svc.Refresh(ctx, retry.RefreshToken, "")
		wantErr(t, err, domain.KindUnauthorized, "invalid_grant")
	})
}

// TestConcurrentRefreshWithGrace: two instances spend one live token at the same
// moment, with the grace on. The loser either comes too early (no successor yet:
// a replay, as without the grace) or finds the winner's successor unused and
// claims it; so both may answer a pair, but the family never holds two live
// refresh tokens.
func TestConcurrentRefreshWithGrace(t *testing.T) {
	eachStore(t, func(t *testing.T, be backend) {
		ctx := context.Background()
		e := newEnv(t, be)
		_, b := e.instance()
		pair, _ := e.user("alice", "", "")
		fid := familyOf(t, pair)
		var wg sync.WaitGroup
		errs := make([]error, 2)
		pairs := make([]TokenPair, 2)
		for i, svc := range []*Service{e.svc, b} {
			wg.Go(func() { pairs[i], errs[i] = svc.Refresh(ctx, pair.RefreshToken, "") })
		}
		wg.Wait()
		live := 0
		for i, err := range errs {
			if err != nil {
				wantErr(t, err, domain.KindUnauthorized, "invalid_grant")
				continue
			}
			// Spending it directly tells whether it was still live.
			if _, err := e.store.SpendRefreshToken(ctx, hashSecret(pairs[i].RefreshToken), e.clock.Now()); err == nil {
				live++
			}
		}
		switch {
		case live > 1:
			t.Fatalf("%d live refresh tokens in one family", live)
		case live == 0 && !e.familyRevoked(fid):
			t.Fatal("no live refresh token, and the family is not revoked")
		}
	})
}

// TestRefreshReuseGraceConfig: 0 takes the default, above the maximum is refused.
func TestRefreshReuseGraceConfig(t *testing.T) {
	eachStore(t, func(t *testing.T, be backend) {
		e := newEnv(t, be)
		if e.svc.cfg.RefreshReuseGrace != DefaultRefreshReuseGrace {
			t.Errorf("default grace %s", e.svc.cfg.RefreshReuseGrace)
		}
		_, err := New(context.Background(), Config{Store: e.store, RefreshReuseGrace: MaxRefreshReuseGrace + time.Second})
		if err == nil || !strings.Contains(err.Error(), "RefreshReuseGrace") {
			t.Fatalf("New with too long a grace: %v", err)
		}
	})
}
