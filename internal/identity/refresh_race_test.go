package identity

import (
	"context"
	"strconv"
	"sync"
	"testing"
	"time"

	"github.com/fieldsync/fieldsync/internal/domain"
)

// TestConcurrentFirstRefresh: n copies of one fresh refresh token arrive at two
// instances at once (a tablet whose two sync threads both saw the access token
// expire). The hook holds the winner between spending the token and storing
// its successor until every other call has either answered or started waiting,
// so the losers find the token spent and its successor not stored yet.
//
// A race is not theft: the family must never be revoked, two calls get a pair
// (the winner, and the one that claims its successor as the reuse grace
// does), the others are refused without revoking anything, and exactly one of
// the refresh tokens answered is live and rotates.
func TestConcurrentFirstRefresh(t *testing.T) {
	eachStore(t, func(t *testing.T, be backend) {
		ctx := context.Background()
		for _, n := range []int{2, 5} {
			t.Run(strconv.Itoa(n), func(t *testing.T) {
				e := newEnv(t, be)
				_, b := e.instance()
				pair, _ := e.user("alice", "", "")
				fid := familyOf(t, pair)

				// settled gets one signal per call that answered or began to
				// wait; the winner goes on when the n-1 others have.
				settled := make(chan struct{}, 2*n)
				var once sync.Once
				hold := func() {
					once.Do(func() {
						deadline := time.After(20 * time.Second)
						for range n - 1 {
							select {
							case <-settled:
							case <-deadline:
								t.Error("the other refreshes neither answered nor waited")
								return
							}
						}
					})
				}
				for _, svc := range []*Service{e.svc, b} {
					svc.afterSpend = hold
					svc.onAwaitSuccessor = func() { settled <- struct{}{} }
				}
				var wg sync.WaitGroup
				errs := make([]error, n)
				pairs := make([]TokenPair, n)
				for i := range n {
					svc := []*Service{e.svc, b}[i%2]
					wg.Go(func() {
						pairs[i], errs[i] = svc.Refresh(ctx, pair.RefreshToken, "198.51.100.7")
						settled <- struct{}{}
					})
				}
				wg.Wait()

				if e.familyRevoked(fid) {
					t.Fatalf("a race revoked the family; answers: %v", errs)
				}
				if ev := e.audits(domain.AuditFilter{Type: AuditFamilyRevoked}); len(ev) != 0 {
					t.Fatalf("family_revoked events = %+v", ev)
				}
				ok := 0
				for _, err := range errs {
					if err == nil {
						ok++
						continue
					}
					wantErr(t, err, domain.KindUnauthorized, "invalid_grant")
				}
				if ok != 2 {
					t.Fatalf("%d refreshes got a pair, want 2 (the winner and the claim of its successor): %v", ok, errs)
				}
				live := -1
				for i, err := range errs {
					if err != nil {
						continue
					}
					tok, err := e.store.GetRefreshToken(ctx, hashSecret(pairs[i].RefreshToken))
					wantNoErr(t, err)
					if tok.SpentAt == nil {
						if live >= 0 {
							t.Fatal("two live refresh tokens in one family")
						}
						live = i
					}
				}
				if live < 0 {
					t.Fatal("no live refresh token answered")
				}
				e.clock.Advance(time.Minute)
				if _, err := e.svc.Refresh(ctx, pairs[live].RefreshToken, "198.51.100.7"); err != nil {
					t.Fatalf("refreshing the live token: %v", err)
				}
			})
		}
	})
}

// TestExpiredRefreshTokenTwice: an expired refresh token is refused without
// being spent, so the tablet that presents it again is not taken for a thief.
func TestExpiredRefreshTokenTwice(t *testing.T) {
	eachStore(t, func(t *testing.T, be backend) {
		ctx := context.Background()
		e := newEnv(t, be, func(c *Config) { c.RefreshTTL = time.Hour })
		pair, _ := e.user("alice", "", "")
		fid := familyOf(t, pair)
		e.clock.Advance(time.Hour)
		for range 3 {
			_, err := e.svc.Refresh(ctx, pair.RefreshToken, "198.51.100.7")
			wantErr(t, err, domain.KindUnauthorized, "invalid_grant")
		}
		if e.familyRevoked(fid) {
			t.Fatal("presenting an expired token twice revoked the family")
		}
		if ev := e.audits(domain.AuditFilter{Type: AuditFamilyRevoked}); len(ev) != 0 {
			t.Fatalf("family_revoked events = %+v", ev)
		}
		tok, err := e.store.GetRefreshToken(ctx, hashSecret(pair.RefreshToken))
		wantNoErr(t, err)
		if tok.SpentAt != nil {
			t.Fatal("the expired token was spent")
		}
	})
}
