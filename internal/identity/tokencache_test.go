package identity

import (
	"context"
	"crypto/sha256"
	"sync/atomic"
	"testing"
	"time"

	"github.com/fieldsync/fieldsync/internal/domain"
)

// TestVerifiedTokenCache: a tablet's repeated requests with one access token
// verify its signature once, and the cached verification changes no answer:
// a revocation, a disable, a logout and the expiry still refuse the token at
// once on the instance that made them, as before the cache.
func TestVerifiedTokenCache(t *testing.T) {
	eachStore(t, func(t *testing.T, be backend) {
		ctx := context.Background()
		cases := []struct {
			name   string
			setup  func(e *env) TokenPair
			revoke func(e *env, pair TokenPair) error
		}{
			{"user revoked", func(e *env) TokenPair { p, _ := e.user("alice", "", ""); return p },
				func(e *env, _ TokenPair) error { return e.svc.RevokeUser(ctx, e.admin, "alice") }},
			{"user disabled", func(e *env) TokenPair { p, _ := e.user("alice", "", ""); return p },
				func(e *env, _ TokenPair) error { return e.svc.SetUserDisabled(ctx, e.admin, "alice", true) }},
			{"logout", func(e *env) TokenPair { p, _ := e.user("alice", "", ""); return p },
				func(e *env, pair TokenPair) error { return e.svc.Revoke(ctx, pair.RefreshToken) }},
			{"device revoked", func(e *env) TokenPair { e.project("p1"); p, _, _ := e.device("p1"); return p },
				func(e *env, _ TokenPair) error {
					ds, err := e.store.ListDevices(ctx, "p1")
					if err != nil {
						return err
					}
					return e.svc.RevokeDevice(ctx, e.admin, "p1", ds[0].ID)
				}},
			{"expired", func(e *env) TokenPair { p, _ := e.user("alice", "", ""); return p },
				func(e *env, _ TokenPair) error {
					e.clock.Advance(DefaultAccessTTL + clockLeeway)
					return nil
				}},
		}
		for _, tt := range cases {
			t.Run(tt.name, func(t *testing.T) {
				e := newEnv(t, be)
				pair := tt.setup(e) // authenticates the token once
				var verifies atomic.Int64
				e.svc.onTokenVerify = func() { verifies.Add(1) }
				for range 5 {
					if _, err := e.svc.Authenticate(ctx, pair.AccessToken); err != nil {
						t.Fatalf("before revocation: %v", err)
					}
				}
				if n := verifies.Load(); n != 0 {
					t.Fatalf("a verified token was verified again %d times", n)
				}
				e.clock.Advance(time.Second)
				wantNoErr(t, tt.revoke(e, pair))
				_, err := e.svc.Authenticate(ctx, pair.AccessToken)
				wantErr(t, err, domain.KindUnauthorized, "invalid_token")
			})
		}
	})
}

// TestVerifiedTokenCacheBound: the cache never holds more than
// maxVerifiedTokens entries, and an entry is not answered from its expiry on.
func TestVerifiedTokenCacheBound(t *testing.T) {
	c := newTokenCache()
	now := time.Date(2030, 1, 2, 3, 4, 5, 0, time.UTC)
	for i := range maxVerifiedTokens + 10 {
		k := sha256.Sum256([]byte{byte(i), byte(i >> 8), byte(i >> 16)})
		c.put(k, verifiedToken{until: now.Add(time.Minute)}, now)
		if len(c.m) > maxVerifiedTokens {
			t.Fatalf("%d entries after %d puts", len(c.m), i+1)
		}
	}
	k := sha256.Sum256([]byte("t"))
	c.put(k, verifiedToken{until: now.Add(time.Minute)}, now)
	if _, ok := c.get(k, now.Add(time.Minute-time.Millisecond)); !ok {
		t.Fatal("entry not found before its expiry")
	}
	if _, ok := c.get(k, now.Add(time.Minute)); ok {
		t.Fatal("entry answered at its expiry")
	}
}
