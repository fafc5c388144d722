package identity

import (
	"sync"
	"time"
)

// loginGuard throttles failed logins without ever locking an account: a hard
// lock would let anyone keep its owner out with one wrong password every few
// minutes. It keeps, in memory and per instance (see the package comment):
//
//   - per (account, source) pair, a backoff: after ThrottleConfig.PairFailures
//     failures, each further attempt of that pair waits PairDelay, doubled at
//     every failure up to PairMaxDelay. A success clears it. This is the budget
//     every source has of its own, the owner's included.
//   - per account, a ceiling on failures from sources that have not signed in
//     to it recently: a token bucket of AccountFailures refilled one per
//     AccountInterval. It slows a guesser spread over many addresses; it never
//     refuses a known source (below), so it cannot lock the owner out.
//   - per source, a ceiling on failures across accounts (password spraying): a
//     bucket of AddrFailures refilled one per AddrInterval, again not applied to
//     known sources, so a guesser behind an office's address does not keep the
//     office's users out.
//   - per account, the sources that signed in to it successfully in the last
//     KnownSourceTTL (at most maxKnownSources, the most recent): the owner's
//     usual places, which only the password can add.
//
// What the ceilings allow, with the defaults (10 and 1 per 15 min per account,
// 3 free then 1 s doubling to 15 min per pair): a guesser who does not share an
// address with the owner gets at most 10 + 96 guesses a day on one account per
// instance, however many addresses it has: about 35,000 a year. Sharing one of
// the owner's known addresses adds that pair's backoff, 96 a day at most. With
// three instances that is about 10^5 guesses a year: hopeless against a
// generated password (144 bits) or a random 10-character one (62^10 ≈ 8·10^17),
// and against a human-chosen one enough only if it is among the ~10^5 most
// common, which a password policy should refuse anyway. (The old lock allowed
// 5 per 15 min per instance: 480 a day.)
//
// An attempt reserves its place before the password is checked and settles it
// after, so a burst of parallel requests cannot all pass before the first
// failure is counted; a success or a store failure gives the reservation back.
type loginGuard struct {
	mu       sync.Mutex
	cfg      ThrottleConfig
	pairs    map[pairKey]*backoff
	accounts map[string]*tokenBucket
	sources  map[string]*tokenBucket
	known    map[string][]knownSource
}

// maxKnownSources bounds the sources remembered per account: a user signs in
// from a few places (office, home, a phone network).
const maxKnownSources = 8

// pairForget is how long a pair's failures are kept after its last one.
const pairForget = 24 * time.Hour

type pairKey struct{ account, source string }

type backoff struct {
	n        int       // failures, plus attempts reserved and not settled
	last     time.Time // of the last admitted attempt
	notified bool      // a refusal since the last admitted attempt was reported
}

type tokenBucket struct {
	tokens   float64
	at       time.Time // when tokens was computed
	notified bool
}

type knownSource struct {
	source string
	at     time.Time
}

// loginTicket is an admitted attempt, to be settled.
type loginTicket struct {
	account, source string
	known           bool // the ceilings were not charged
}

// Outcomes of an attempt, for settle.
const (
	attemptFailed    = iota // a wrong password: keeps what it was charged
	attemptSucceeded        // gives the ceilings back, clears the pair, remembers the source
	attemptAborted          // the server failed, not the client: gives everything back
)

// Refusal scopes, as audited (detail "scope").
const (
	scopePair    = "username_address"
	scopeAccount = "username"
	scopeSource  = "address"
)

func newLoginGuard(cfg ThrottleConfig) *loginGuard {
	return &loginGuard{cfg: cfg, pairs: map[pairKey]*backoff{}, accounts: map[string]*tokenBucket{},
		sources: map[string]*tokenBucket{}, known: map[string][]knownSource{}}
}

// delay is how long a pair with n failures waits before its next attempt.
func (g *loginGuard) delay(n int) time.Duration {
	k := n - g.cfg.PairFailures
	if k < 0 {
		return 0
	}
	d := g.cfg.PairDelay
	for ; k > 0 && d < g.cfg.PairMaxDelay; k-- {
		d *= 2
	}
	return min(d, g.cfg.PairMaxDelay)
}

// reserve admits one attempt of account from source, or refuses it with how
// long to wait and which limit refused. first reports the first refusal since
// that limit last admitted an attempt, so the caller audits a refusal once per
// episode instead of once per refused request (which would let an attacker
// flood the log).
func (g *loginGuard) reserve(account, source string, now time.Time) (t loginTicket, ok bool, retry time.Duration, scope string, first bool) {
	g.mu.Lock()
	defer g.mu.Unlock()
	g.makeRoom(now)
	t = loginTicket{account: account, source: source, known: g.isKnown(account, source, now)}
	pk := pairKey{account, source}
	p := g.pairs[pk]
	if p != nil && now.Sub(p.last) >= pairForget && p.n > 0 {
		p.n = 0 // long quiet; in-flight reservations cannot be that old
	}
	var refusals []*bool
	note := func(wait time.Duration, sc string, notified *bool) {
		if wait > retry {
			retry, scope = wait, sc
		}
		refusals = append(refusals, notified)
	}
	if p != nil {
		if wait := p.last.Add(g.delay(p.n)).Sub(now); wait > 0 {
			note(wait, scopePair, &p.notified)
		}
	}
	var acct, src *tokenBucket
	if !t.known {
		acct = g.bucket(g.accounts, account, float64(g.cfg.AccountFailures), g.cfg.AccountInterval, now)
		if wait := acct.wait(g.cfg.AccountInterval); wait > 0 {
			note(wait, scopeAccount, &acct.notified)
		}
		if source != "" {
			src = g.bucket(g.sources, source, float64(g.cfg.AddrFailures), g.cfg.AddrInterval, now)
			if wait := src.wait(g.cfg.AddrInterval); wait > 0 {
				note(wait, scopeSource, &src.notified)
			}
		}
	}
	if len(refusals) > 0 {
		for _, n := range refusals {
			if !*n {
				first = true
			}
			*n = true
		}
		// Whole seconds, rounded up: it becomes a Retry-After header.
		retry = max((retry + time.Second - 1).Truncate(time.Second), time.Second)
		return t, false, retry, scope, first
	}
	if p == nil {
		p = &backoff{}
		g.pairs[pk] = p
	}
	p.n++
	p.last, p.notified = now, false
	for _, b := range []*tokenBucket{acct, src} {
		if b != nil {
			b.tokens--
			b.notified = false
		}
	}
	return t, true, 0, "", false
}

// settle ends an attempt that reserve admitted.
func (g *loginGuard) settle(t loginTicket, now time.Time, outcome int) {
	g.mu.Lock()
	defer g.mu.Unlock()
	pk := pairKey{t.account, t.source}
	p := g.pairs[pk]
	switch outcome {
	case attemptFailed:
		if p != nil {
			p.last = now // the delay runs from the answer
		}
		return
	case attemptSucceeded:
		delete(g.pairs, pk)
		g.remember(t.account, t.source, now)
	case attemptAborted:
		if p != nil && p.n > 0 {
			p.n--
		}
	}
	if !t.known {
		g.refund(g.accounts, t.account, float64(g.cfg.AccountFailures))
		if t.source != "" {
			g.refund(g.sources, t.source, float64(g.cfg.AddrFailures))
		}
	}
}

// isKnown reports whether source signed in to account within KnownSourceTTL.
func (g *loginGuard) isKnown(account, source string, now time.Time) bool {
	for _, k := range g.known[account] {
		if k.source == source && now.Sub(k.at) < g.cfg.KnownSourceTTL {
			return true
		}
	}
	return false
}

// remember notes a successful sign-in of account from source.
func (g *loginGuard) remember(account, source string, now time.Time) {
	list := g.known[account]
	oldest := -1
	for i, k := range list {
		if k.source == source {
			list[i].at = now
			return
		}
		if oldest < 0 || k.at.Before(list[oldest].at) {
			oldest = i
		}
	}
	if len(list) < maxKnownSources {
		if list == nil && len(g.known) >= g.cfg.MaxKeys {
			for a := range g.known { // arbitrary: bounded memory first
				delete(g.known, a)
				break
			}
		}
		g.known[account] = append(list, knownSource{source: source, at: now})
		return
	}
	list[oldest] = knownSource{source: source, at: now}
}

// bucket returns the bucket of key in m, refilled to now, creating it full.
func (g *loginGuard) bucket(m map[string]*tokenBucket, key string, burst float64, interval time.Duration, now time.Time) *tokenBucket {
	b := m[key]
	if b == nil {
		b = &tokenBucket{tokens: burst, at: now}
		m[key] = b
		return b
	}
	b.refill(burst, interval, now)
	return b
}

// refund gives a bucket back the token an attempt took.
func (g *loginGuard) refund(m map[string]*tokenBucket, key string, burst float64) {
	if b := m[key]; b != nil {
		b.tokens = min(b.tokens+1, burst)
	}
}

func (b *tokenBucket) refill(burst float64, interval time.Duration, now time.Time) {
	if d := now.Sub(b.at); d > 0 {
		b.tokens = min(burst, b.tokens+float64(d)/float64(interval))
		b.at = now
	}
}

// wait is how long until the bucket holds a whole token (0: it does).
func (b *tokenBucket) wait(interval time.Duration) time.Duration {
	if b.tokens >= 1 {
		return 0
	}
	return time.Duration((1 - b.tokens) * float64(interval))
}

// makeRoom keeps each table under MaxKeys: first it drops entries at rest (a
// full bucket, a pair without failures or past pairForget); if an attacker keeps
// more live entries than that, it drops arbitrary ones (map order), trading a
// little precision for bounded memory. It frees a tenth of a table at once so
// the sweep is amortised.
func (g *loginGuard) makeRoom(now time.Time) {
	target := g.cfg.MaxKeys - g.cfg.MaxKeys/10 - 1
	if len(g.pairs) >= g.cfg.MaxKeys {
		for k, p := range g.pairs {
			if p.n == 0 || now.Sub(p.last) >= pairForget {
				delete(g.pairs, k)
			}
		}
		for k := range g.pairs {
			if len(g.pairs) <= target {
				break
			}
			delete(g.pairs, k)
		}
	}
	for _, tb := range []struct {
		m        map[string]*tokenBucket
		burst    float64
		interval time.Duration
	}{
		{g.accounts, float64(g.cfg.AccountFailures), g.cfg.AccountInterval},
		{g.sources, float64(g.cfg.AddrFailures), g.cfg.AddrInterval},
	} {
		if len(tb.m) < g.cfg.MaxKeys {
			continue
		}
		for k, b := range tb.m {
			b.refill(tb.burst, tb.interval, now)
			if b.tokens >= tb.burst {
				delete(tb.m, k)
			}
		}
		for k := range tb.m {
			if len(tb.m) <= target {
				break
			}
			delete(tb.m, k)
		}
	}
}
