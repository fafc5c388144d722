package identity

import (
	"context"
	"fmt"
	"testing"
	"time"

	"github.com/fieldsync/fieldsync/internal/domain"
)

// loginErr logs in and returns the error only.
func (e *env) loginErr(username, password, addr string) error {
	_, err := e.svc.Login(context.Background(), username, password, addr)
	return err
}

// TestLoginLockoutIsNoWeapon: an attacker failing admin's password from one
// address, as fast as the throttle lets it, cannot stop admin signing in from
// the address admin signed in from before, while its own delays grow.
func TestLoginLockoutIsNoWeapon(t *testing.T) {
	eachStore(t, func(t *testing.T, be backend) {
		e := newEnv(t, be) // admin signed in from 192.0.2.1 (env.login)
		const attacker, owner = "203.0.113.66", "192.0.2.1"
		var waits []time.Duration
		for i := 0; i < 40; i++ {
			err := e.loginErr("admin", "guess-number-"+fmt.Sprint(i), attacker)
			if de, ok := domain.AsError(err); ok && de.Kind == domain.KindTooManyRequests {
				if de.Code != "too_many_attempts" || de.RetryAfter < time.Second {
					t.Fatalf("throttled answer %+v", de)
				}
				waits = append(waits, de.RetryAfter)
				// While the attacker is held back, the owner signs in from the
				// usual place.
				if err := e.loginErr("admin", adminPassword, owner); err != nil {
					t.Fatalf("after %d guesses, admin cannot sign in from its usual address: %v", i, err)
				}
				e.clock.Advance(de.RetryAfter) // the attacker waits exactly as told
				continue
			}
			wantErr(t, err, domain.KindUnauthorized, "invalid_credentials")
		}
		if len(waits) < 5 {
			t.Fatalf("the attacker was slowed %d times in 40 tries: %v", len(waits), waits)
		}
		// The attacker's waits grow, up to the cap, and are never a lock of the
		// account: the owner got in every time above.
		grew := false
		for i := 1; i < len(waits); i++ {
			if waits[i] > waits[i-1] {
				grew = true
			}
			if waits[i] > e.svc.cfg.Throttle.PairMaxDelay {
				t.Fatalf("wait %v beyond the cap", waits[i])
			}
		}
		if !grew {
			t.Fatalf("the attacker's waits did not grow: %v", waits)
		}
		// Without waiting, the attacker is refused outright and the password
		// is not even checked.
		_ = e.loginErr("admin", "no-wait-guess", attacker) // its delay is over: checked
		var calls int
		e.svc.onVerify = func() { calls++ }
		for range 3 {
			err := e.loginErr("admin", "no-wait-guess", attacker)
			wantErr(t, err, domain.KindTooManyRequests, "too_many_attempts")
		}
		if calls > 0 {
			t.Fatalf("%d passwords checked while throttled", calls)
		}
		// Refusals are audited once per episode, not once per request.
		throttled := 0
		for _, ev := range e.audits(domain.AuditFilter{Type: AuditLoginFailed}) {
			if ev.Detail["reason"] == "throttled" {
				throttled++
				if ev.RemoteAddr != attacker || ev.Detail["scope"] == "" {
					t.Errorf("throttled event %+v", ev)
				}
			}
		}
		if throttled == 0 || throttled > len(waits)+1 {
			t.Fatalf("%d throttled audit events for %d throttled episodes", throttled, len(waits))
		}
	})
}

// TestLoginAccountCeiling: a guesser spread over many addresses (three tries
// each, under every pair's own budget) is slowed by the account's ceiling, not
// let through, while the owner's known address is not slowed at all and a new
// address of the owner is only slowed, never locked.
func TestLoginAccountCeiling(t *testing.T) {
	eachStore(t, func(t *testing.T, be backend) {
		e := newEnv(t, be)
		e.user("alice", "", "") // signed in from 192.0.2.1
		cfg := e.svc.cfg.Throttle
		guesses, refused := 0, 0
		for src := 0; src < 20; src++ {
			for try := 0; try < cfg.PairFailures; try++ {
				err := e.loginErr("alice", "spread-guess", fmt.Sprintf("198.18.%d.%d", src, try))
				if de, ok := domain.AsError(err); ok && de.Kind == domain.KindTooManyRequests {
					refused++
					if de.RetryAfter > cfg.AccountInterval {
						t.Fatalf("RetryAfter %v beyond the account's refill interval", de.RetryAfter)
					}
					continue
				}
				wantErr(t, err, domain.KindUnauthorized, "invalid_credentials")
				guesses++
			}
		}
		if guesses != cfg.AccountFailures {
			t.Fatalf("%d guesses checked from 60 addresses at once, want the ceiling %d", guesses, cfg.AccountFailures)
		}
		// The owner from the known address is not slowed.
		if err := e.loginErr("alice", "alice-password-123", "192.0.2.1"); err != nil {
			t.Fatalf("alice from her known address: %v", err)
		}
		// From a new address she waits like everyone unknown: one interval.
		err := e.loginErr("alice", "alice-password-123", "198.51.100.200")
		de := wantErr(t, err, domain.KindTooManyRequests, "too_many_attempts")
		e.clock.Advance(de.RetryAfter)
		if err := e.loginErr("alice", "alice-password-123", "198.51.100.200"); err != nil {
			t.Fatalf("alice from a new address after the wait: %v", err)
		}
		// Other accounts are not affected.
		e.user("bob", "", "")
	})
}

// TestLoginSourceCeiling: a password spray from one address across usernames
// is slowed by the address's ceiling; a user who signed in from that address
// before is not, and the address is never locked for good.
func TestLoginSourceCeiling(t *testing.T) {
	eachStore(t, func(t *testing.T, be backend) {
		e := newEnv(t, be)
		const office = "198.51.100.9"
		wantNoErr(t, e.loginErr("admin", adminPassword, office)) // admin works there
		e.user("carol", "", "")
		cfg := e.svc.cfg.Throttle
		guesses := 0
		for i := 0; i < 3*cfg.AddrFailures; i++ {
			err := e.loginErr(fmt.Sprintf("user%d", i), "Password-2026!", office+":4000")
			if de, ok := domain.AsError(err); ok && de.Kind == domain.KindTooManyRequests {
				if de.RetryAfter > cfg.AddrInterval {
					t.Fatalf("RetryAfter %v beyond the address's refill interval", de.RetryAfter)
				}
				continue
			}
			wantErr(t, err, domain.KindUnauthorized, "invalid_credentials")
			guesses++
		}
		if guesses != cfg.AddrFailures {
			t.Fatalf("%d spray guesses checked, want the ceiling %d", guesses, cfg.AddrFailures)
		}
		// admin signed in from the office before: not slowed by the spray.
		wantNoErr(t, e.loginErr("admin", adminPassword, office))
		// carol never did: she waits one refill, then gets in.
		err := e.loginErr("carol", "carol-password-123", office)
		de := wantErr(t, err, domain.KindTooManyRequests, "too_many_attempts")
		e.clock.Advance(de.RetryAfter)
		wantNoErr(t, e.loginErr("carol", "carol-password-123", office))
		// Another address is not affected at all.
		wantNoErr(t, e.loginErr("carol", "carol-password-123", "198.51.100.10"))
	})
}

// TestLoginThrottleBasics: successes never count, a success clears its pair,
// and IPv6 addresses count per /64.
func TestLoginThrottleBasics(t *testing.T) {
	eachStore(t, func(t *testing.T, be backend) {
		t.Run("successes do not count", func(t *testing.T) {
			// A whole office behind one NAT address logs in all morning.
			e := newEnv(t, be)
			e.user("alice", "", "")
			for i := 0; i < 30; i++ {
				wantNoErr(t, e.loginErr("alice", "alice-password-123", "192.0.2.200"))
			}
		})
		t.Run("a success clears the pair", func(t *testing.T) {
			e := newEnv(t, be)
			e.user("alice", "", "")
			for round := 0; round < 3; round++ {
				// Under the pair's free budget: a fourth attempt would wait.
				for i := 0; i < e.svc.cfg.Throttle.PairFailures-1; i++ {
					err := e.loginErr("alice", "typo-password", "10.0.0.1")
					wantErr(t, err, domain.KindUnauthorized, "invalid_credentials")
				}
				wantNoErr(t, e.loginErr("alice", "alice-password-123", "10.0.0.1"))
			}
		})
		t.Run("IPv6 counts per /64", func(t *testing.T) {
			e := newEnv(t, be, func(c *Config) { c.Throttle.AddrFailures = 3 })
			for i := 0; i < 3; i++ {
				err := e.loginErr(fmt.Sprintf("ghost%d", i), "password-guess-1", fmt.Sprintf("[2001:db8:1:2::%x]:443", i+1))
				wantErr(t, err, domain.KindUnauthorized, "invalid_credentials")
			}
			err := e.loginErr("ghost9", "password-guess-1", "[2001:db8:1:2:ffff::1]:443")
			wantErr(t, err, domain.KindTooManyRequests, "too_many_attempts")
			err = e.loginErr("ghost9", "password-guess-1", "[2001:db8:1:3::1]:443")
			wantErr(t, err, domain.KindUnauthorized, "invalid_credentials")
		})
	})
}

// TestLoginGuardParallel: a burst of parallel attempts of one pair cannot all
// pass before the first failure is counted.
func TestLoginGuardParallel(t *testing.T) {
	g := newLoginGuard(ThrottleConfig{PairFailures: 3, PairDelay: time.Second, PairMaxDelay: time.Minute,
		AccountFailures: 100, AccountInterval: time.Minute, AddrFailures: 100, AddrInterval: time.Minute,
		KnownSourceTTL: time.Hour, MaxKeys: 100})
	now := time.Unix(1000, 0)
	admitted := 0
	for i := 0; i < 50; i++ {
		if _, ok, _, _, _ := g.reserve("admin", "192.0.2.1", now); ok {
			admitted++
		}
	}
	if admitted != 3 {
		t.Fatalf("%d attempts admitted while 3 were in flight, want 3", admitted)
	}
}

// TestLoginGuardBounded: the tables stay under MaxKeys whatever an attacker
// sends.
func TestLoginGuardBounded(t *testing.T) {
	g := newLoginGuard(ThrottleConfig{PairFailures: 3, PairDelay: time.Second, PairMaxDelay: time.Minute,
		AccountFailures: 10, AccountInterval: time.Minute, AddrFailures: 10, AddrInterval: time.Minute,
		KnownSourceTTL: time.Hour, MaxKeys: 100})
	now := time.Unix(1000, 0)
	for i := 0; i < 5000; i++ {
		tk, ok, _, _, _ := g.reserve(fmt.Sprint("user", i), fmt.Sprint("src", i%700), now)
		if ok {
			g.settle(tk, now, []int{attemptFailed, attemptSucceeded}[i%2])
		}
	}
	if len(g.pairs) > 100 || len(g.accounts) > 100 || len(g.sources) > 100 || len(g.known) > 100 {
		t.Fatalf("tables: %d pairs, %d accounts, %d sources, %d known", len(g.pairs), len(g.accounts), len(g.sources), len(g.known))
	}
}
