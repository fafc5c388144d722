package identity

import (
	"net"
	"net/netip"
	"sync"
	"time"
)

// throttle counts failures per key in a sliding window, in memory, and refuses a
// key that has too many: what the enrollment-code guesser gets per address
// (logins have loginGuard, which slows instead of refusing, since a refused
// username would be a weapon against its owner; an address refused enrollment
// keeps nobody out of an account). It is per instance on purpose (see the package
// comment): with N instances behind a load balancer a guesser gets at most N
// times the budget.
//
// An attempt reserves its place before the password is checked and settles it
// after, so a burst of parallel requests cannot all pass the check before the first
// failure is counted.
type throttle struct {
	mu      sync.Mutex
	limit   int
	window  time.Duration
	maxKeys int
	m       map[string]*bucket
}

type bucket struct {
	failures []time.Time // inside the window, oldest first, at most limit
	inflight int         // reserved attempts not settled yet
	notified bool        // a refusal of the current lockout was already reported
}

func newThrottle(limit int, window time.Duration, maxKeys int) *throttle {
	return &throttle{limit: limit, window: window, maxKeys: maxKeys, m: map[string]*bucket{}}
}

// reserve admits one attempt for key, or refuses it with how long to wait. first
// reports the first refusal of a lockout, so the caller audits a lockout once
// instead of once per refused request (which would let an attacker flood the log).
func (t *throttle) reserve(key string, now time.Time) (ok bool, retryAfter time.Duration, first bool) {
	t.mu.Lock()
	defer t.mu.Unlock()
	b := t.m[key]
	if b == nil {
		t.makeRoom(now)
		b = &bucket{}
		t.m[key] = b
	}
	b.prune(now, t.window)
	if len(b.failures)+b.inflight >= t.limit {
		retry := time.Second // only in-flight attempts: they settle within a second
		if len(b.failures) > 0 {
			retry = b.failures[0].Add(t.window).Sub(now)
		}
		// Whole seconds, rounded up: it becomes a Retry-After header.
		retry = (retry + time.Second - 1).Truncate(time.Second)
		if retry < time.Second {
			retry = time.Second
		}
		first = !b.notified
		b.notified = true
		return false, retry, first
	}
	b.inflight++
	b.notified = false
	return true, 0, false
}

// settle ends an attempt that reserve admitted; failed counts it.
func (t *throttle) settle(key string, now time.Time, failed bool) {
	t.mu.Lock()
	defer t.mu.Unlock()
	b := t.m[key]
	if b == nil {
		return
	}
	if b.inflight > 0 {
		b.inflight--
	}
	if failed {
		b.prune(now, t.window)
		b.failures = append(b.failures, now)
		if len(b.failures) > t.limit {
			b.failures = b.failures[len(b.failures)-t.limit:]
		}
	}
	if len(b.failures) == 0 && b.inflight == 0 {
		delete(t.m, key)
	}
}

func (b *bucket) prune(now time.Time, window time.Duration) {
	cut := 0
	for cut < len(b.failures) && !b.failures[cut].After(now.Add(-window)) {
		cut++
	}
	b.failures = b.failures[cut:]
}

// makeRoom keeps the table under maxKeys: first it drops keys whose failures have
// all left the window; if an attacker keeps more live keys than that, it drops
// arbitrary settled ones (map order), trading a little precision for bounded memory.
// It frees a tenth of the table at once so the sweep is amortised.
func (t *throttle) makeRoom(now time.Time) {
	if len(t.m) < t.maxKeys {
		return
	}
	target := t.maxKeys - t.maxKeys/10 - 1
	for k, b := range t.m {
		b.prune(now, t.window)
		if len(b.failures) == 0 && b.inflight == 0 {
			delete(t.m, k)
		}
	}
	for k, b := range t.m {
		if len(t.m) <= target {
			break
		}
		if b.inflight == 0 {
			delete(t.m, k)
		}
	}
}

// addressKey turns a remote address ("ip:port" or "ip") into a throttle key. IPv6
// addresses are cut to their /64: a single client usually holds a whole /64 and
// could otherwise rotate through addresses for free.
func addressKey(remote string) string {
	host := remote
	if h, _, err := net.SplitHostPort(remote); err == nil {
		host = h
	}
	ip, err := netip.ParseAddr(host)
	if err != nil {
		if len(host) > 64 {
			host = host[:64]
		}
		return host
	}
	ip = ip.Unmap().WithZone("")
	if ip.Is6() {
		return netip.PrefixFrom(ip, 64).Masked().String()
	}
	return ip.String()
}
