package identity

import (
	"crypto/sha256"
	"sync"
	"time"
)

// maxVerifiedTokens bounds the cache of verified access tokens; past it the
// cache is emptied, which costs a few signature checks and never a wrong
// answer. An entry is ~300 bytes.
const maxVerifiedTokens = 20_000

// tokenCache remembers the access tokens whose signature and registered claims
// Authenticate has verified, keyed by the SHA-256 of the whole token, so that a
// tablet's next request with the same token skips the Ed25519 verification and
// the JSON decoding (~7% of a 1-item push's CPU). Only that is skipped: every
// hit still checks the token's expiry and its kid (retired too long ago, or
// gone), and Authenticate still runs every check of the subject (disabled,
// revoked, moved) and of the token family after it, exactly as for a token
// parsed afresh. A token that differs in any byte (another signature) has
// another key, so nothing unverified is ever accepted from the cache.
type tokenCache struct {
	mu sync.Mutex
	m  map[[sha256.Size]byte]verifiedToken
}

// verifiedToken is what the parser established of a token.
type verifiedToken struct {
	claims accessClaims
	kid    string
	// until is the token's expiry plus the parser's leeway: the parser accepts
	// the token only before it.
	until time.Time
}

func newTokenCache() *tokenCache {
	return &tokenCache{m: map[[sha256.Size]byte]verifiedToken{}}
}

func (c *tokenCache) get(k [sha256.Size]byte, now time.Time) (verifiedToken, bool) {
	c.mu.Lock()
	defer c.mu.Unlock()
	v, ok := c.m[k]
	if !ok {
		return verifiedToken{}, false
	}
	if !now.Before(v.until) {
		delete(c.m, k)
		return verifiedToken{}, false
	}
	return v, true
}

func (c *tokenCache) put(k [sha256.Size]byte, v verifiedToken, now time.Time) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if len(c.m) >= maxVerifiedTokens {
		for k, old := range c.m {
			if !now.Before(old.until) {
				delete(c.m, k)
			}
		}
		if len(c.m) >= maxVerifiedTokens {
			clear(c.m)
		}
	}
	c.m[k] = v
}
