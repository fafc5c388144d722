package identity

import (
	"context"
	"sync/atomic"
	"testing"

	"github.com/fieldsync/fieldsync/internal/domain"
)

// basicEnv is an env with user "ana" (password anaPassword) and a counter of
// argon2id checks on the first instance.
func basicEnv(t *testing.T, be backend) (*env, *atomic.Int64) {
	t.Helper()
	e := newEnv(t, be)
	e.user("ana", "", "")
	var checks atomic.Int64
	e.svc.onVerify = func() { checks.Add(1) }
	return e, &checks
}

const anaPassword = "ana-password-123"

func TestVerifyPasswordCachesVerifiedPairs(t *testing.T) {
	eachStore(t, func(t *testing.T, be backend) {
		e, checks := basicEnv(t, be)
		ctx := context.Background()
		for i := range 3 {
			p, err := e.svc.VerifyPassword(ctx, "Ana ", anaPassword, "192.0.2.9:1")
			wantNoErr(t, err)
			if p.Username != "ana" || p.Subject != "ana" || p.IsDevice() {
				t.Fatalf("call %d: principal %+v", i, p)
			}
		}
		if n := checks.Load(); n != 1 {
			t.Errorf("three calls with the same pair ran %d argon2id checks, want 1", n)
		}
		// The cache holds no password: its key is an HMAC under a per-process key.
		if e.svc.basic.len() != 1 {
			t.Errorf("cache holds %d entries, want 1", e.svc.basic.len())
		}
		// Successful checks are audited (once, not per hit), via basic.
		logins := e.audits(domain.AuditFilter{Type: AuditLogin, Actor: "ana"})
		basic := 0
		for _, ev := range logins {
			if ev.Detail["via"] == "basic" {
				basic++
			}
		}
		if basic != 1 {
			t.Errorf("%d login events via basic, want 1", basic)
		}

		// After the TTL the pair is checked again.
		e.clock.Advance(BasicCacheTTL)
		_, err := e.svc.VerifyPassword(ctx, "ana", anaPassword, "192.0.2.9:1")
		wantNoErr(t, err)
		if n := checks.Load(); n != 2 {
			t.Errorf("after the TTL: %d checks, want 2", n)
		}
	})
}

func TestVerifyPasswordRefusals(t *testing.T) {
	eachStore(t, func(t *testing.T, be backend) {
		e, checks := basicEnv(t, be)
		ctx := context.Background()
		for _, c := range []struct{ user, pw string }{{"ana", "wrong-password-1"}, {"nobody", anaPassword}} {
			_, err := e.svc.VerifyPassword(ctx, c.user, c.pw, "192.0.2.9:1")
			wantErr(t, err, domain.KindUnauthorized, "invalid_credentials")
		}
		// A refused pair is never cached: the same wrong password costs a check again.
		_, err := e.svc.VerifyPassword(ctx, "ana", "wrong-password-1", "192.0.2.9:1")
		wantErr(t, err, domain.KindUnauthorized, "invalid_credentials")
		if n := checks.Load(); n != 3 {
			t.Errorf("%d checks, want 3 (none cached)", n)
		}
		failed := e.audits(domain.AuditFilter{Type: AuditLoginFailed})
		reasons := map[string]int{}
		for _, ev := range failed {
			if ev.Detail["via"] == "basic" {
				reasons[ev.Detail["reason"]]++
			}
		}
		if reasons["bad_password"] != 2 || reasons["unknown_user"] != 1 {
			t.Errorf("audited failures via basic: %v", reasons)
		}
		// The login throttle applies: once the pair (ana, this address) has used
		// its free failures, the next attempt waits, right password or not.
		_, err = e.svc.VerifyPassword(ctx, "ana", "wrong-password-2", "192.0.2.9:1")
		wantErr(t, err, domain.KindUnauthorized, "invalid_credentials")
		_, err = e.svc.VerifyPassword(ctx, "ana", anaPassword, "192.0.2.9:1")
		de := wantErr(t, err, domain.KindTooManyRequests, "too_many_attempts")
		if de.RetryAfter <= 0 {
			t.Errorf("429 without RetryAfter")
		}
		// ... and so does a Login of the same pair: one budget for both doors.
		_, err = e.svc.Login(ctx, "ana", anaPassword, "192.0.2.9:1")
		wantErr(t, err, domain.KindTooManyRequests, "too_many_attempts")
	})
}

// TestVerifyPasswordCacheEnds: a password change, a reset, a disable and a
// revocation end a cached pair at once, on the instance that did it and on
// another one sharing the store.
func TestVerifyPasswordCacheEnds(t *testing.T) {
	cases := []struct {
		name string
		// change acts on svc (the other instance); newPassword is the password
		// afterwards, "" when the user cannot sign in at all.
		change      func(t *testing.T, e *env, svc *Service, ana domain.Principal)
		newPassword string
		stillOld    bool // the old password still works (revocation), after a fresh check
	}{
		{"password changed", func(t *testing.T, e *env, svc *Service, ana domain.Principal) {
			wantNoErr(t, svc.ChangePassword(context.Background(), ana, "", anaPassword, "ana-new-password-456", false, "192.0.2.9:1"))
		}, "ana-new-password-456", false},
		{"password reset", func(t *testing.T, e *env, svc *Service, _ domain.Principal) {
			wantNoErr(t, svc.ResetPassword(context.Background(), e.admin, "ana", "ana-reset-password-789"))
		}, "ana-reset-password-789", false},
		{"disabled", func(t *testing.T, e *env, svc *Service, _ domain.Principal) {
			wantNoErr(t, svc.SetUserDisabled(context.Background(), e.admin, "ana", true))
		}, "", false},
		{"revoked", func(t *testing.T, e *env, svc *Service, _ domain.Principal) {
			e.clock.Advance(1) // a revocation is dated; the pair was verified before it
			wantNoErr(t, svc.RevokeUser(context.Background(), e.admin, "ana"))
		}, anaPassword, true},
	}
	eachStore(t, func(t *testing.T, be backend) {
		for _, c := range cases {
			t.Run(c.name, func(t *testing.T) {
				e, checks := basicEnv(t, be)
				_, other := e.instance()
				ctx := context.Background()
				ana, err := e.svc.VerifyPassword(ctx, "ana", anaPassword, "192.0.2.9:1")
				wantNoErr(t, err)
				c.change(t, e, other, ana)
				e.clock.Advance(1)
				before := checks.Load()
				_, err = e.svc.VerifyPassword(ctx, "ana", anaPassword, "192.0.2.9:1")
				if checks.Load() != before+1 {
					t.Errorf("the cached pair was honoured after the change: no fresh check")
				}
				if c.stillOld {
					wantNoErr(t, err)
				} else {
					wantErr(t, err, domain.KindUnauthorized, "invalid_credentials")
				}
				if c.newPassword != "" && c.newPassword != anaPassword {
					_, err := e.svc.VerifyPassword(ctx, "ana", c.newPassword, "192.0.2.10:1")
					wantNoErr(t, err)
				}
			})
		}
	})
}
