package identity

import (
	"context"
	"crypto/hmac"
	"crypto/rand"
	"crypto/sha256"
	"errors"
	"strings"
	"sync"
	"time"

	"github.com/fieldsync/fieldsync/internal/domain"
)

// BasicCacheTTL is how long a verified username and password pair is
// remembered by VerifyPassword. A Power BI refresh sends the same pair with
// every page, seconds apart; one argon2id check (~40 ms and 64 MiB) per page
// would make a refresh slow and let a few analysts tie up the hash slots that
// logins need. Short, because the entry proves the password was right then:
// each hit still re-reads the user, so a password change, a disable or a
// revocation ends it at once, on every instance; the TTL only bounds how
// long a verified pair lives in memory.
const BasicCacheTTL = 2 * time.Minute

// maxBasicEntries bounds the cache; past it the cache is emptied, which costs
// a few argon2id checks and never a wrong answer.
const maxBasicEntries = 10_000

// basicCache remembers verified credentials. Its key is an HMAC-SHA256, under
// a random key made at start and never stored, of the username and password:
// neither the password nor a plain hash of it (which a memory dump would let
// someone test guesses against offline, fast) is kept.
type basicCache struct {
	key []byte
	mu  sync.Mutex
	m   map[[sha256.Size]byte]basicEntry
}

type basicEntry struct {
	username string
	// hashFP is the sha256 of the user's stored password hash when the pair was
	// verified: a new password (changed or reset) changes it.
	hashFP     [sha256.Size]byte
	verifiedAt time.Time
	expires    time.Time
}

func newBasicCache() *basicCache {
	k := make([]byte, 32)
	if _, err := rand.Read(k); err != nil {
		panic("identity: no randomness for the credential cache: " + err.Error())
	}
	return &basicCache{key: k, m: map[[sha256.Size]byte]basicEntry{}}
}

// sum is the cache key of a pair. The NUL separator keeps ("ab","c") and
// ("a","bc") apart: a username holds no NUL.
func (c *basicCache) sum(username, password string) [sha256.Size]byte {
	mac := hmac.New(sha256.New, c.key)
	mac.Write([]byte(username))
	mac.Write([]byte{0})
	mac.Write([]byte(password))
	var out [sha256.Size]byte
	copy(out[:], mac.Sum(nil))
	return out
}

func (c *basicCache) get(k [sha256.Size]byte, now time.Time) (basicEntry, bool) {
	c.mu.Lock()
	defer c.mu.Unlock()
	e, ok := c.m[k]
	if !ok {
		return basicEntry{}, false
	}
	if !now.Before(e.expires) {
		delete(c.m, k)
		return basicEntry{}, false
	}
	return e, true
}

func (c *basicCache) put(k [sha256.Size]byte, e basicEntry, now time.Time) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if len(c.m) >= maxBasicEntries {
		for key, old := range c.m {
			if !now.Before(old.expires) {
				delete(c.m, key)
			}
		}
		if len(c.m) >= maxBasicEntries {
			clear(c.m)
		}
	}
	c.m[k] = e
}

func (c *basicCache) drop(k [sha256.Size]byte) {
	c.mu.Lock()
	defer c.mu.Unlock()
	delete(c.m, k)
}

// len is the number of entries, for tests.
func (c *basicCache) len() int {
	c.mu.Lock()
	defer c.mu.Unlock()
	return len(c.m)
}

func hashFingerprint(encoded string) [sha256.Size]byte { return sha256.Sum256([]byte(encoded)) }

// VerifyPassword checks a user's username and password, as sent with HTTP
// Basic by clients that cannot do the token dance (Power BI's and Excel's
// OData connector, ODK Collect), and returns the user's Principal without
// starting a session: no token is issued, no refresh-token family created.
// remoteAddr is the client address, as for Login.
//
// The checks are Login's: the same throttle (a failed Basic attempt counts
// against the same budgets as a failed login, so Basic is no side door for
// guessing), the same single 401 invalid_credentials for an unknown user, a
// wrong password or a disabled user, the same 429 too_many_attempts with
// RetryAfter, and failures are audited as login_failed with detail via=basic.
//
// A verified pair is cached for BasicCacheTTL (see basicCache), so a client
// that sends it with every request costs one argon2id check per TTL. A cache
// hit still reads the user from the store and is refused (and forgotten) when
// the user was disabled, its password changed or reset, or its tokens revoked
// (RevokeUser) since the pair was verified: those take effect at once, on
// every instance. A hit does not pass through the throttle: it proves the
// password as a check would. Successful checks (not hits) are audited as
// login with detail via=basic.
//
// Errors besides those: store failures (503) as such.
func (s *Service) VerifyPassword(ctx context.Context, username, password, remoteAddr string) (domain.Principal, error) {
	name := strings.ToLower(strings.TrimSpace(username))
	now := s.now()
	key := s.basic.sum(name, password)
	if e, ok := s.basic.get(key, now); ok {
		u, err := s.store.GetUser(ctx, e.username)
		switch {
		case err == nil && !u.Disabled && hashFingerprint(u.PasswordHash) == e.hashFP &&
			(u.TokensValidAfter.IsZero() || u.TokensValidAfter.Before(e.verifiedAt)):
			return domain.Principal{Subject: u.Username, Username: u.Username, Admin: u.Admin}, nil
		case err != nil && !errors.Is(err, domain.ErrNotFound):
			return domain.Principal{}, storeErr("get user", err)
		}
		// Changed since: forget it and check the pair afresh, which gives the
		// refusal its audit event and its throttle charge.
		s.basic.drop(key)
	}

	u, err := s.checkLogin(ctx, name, password, remoteAddr, map[string]string{"via": "basic"})
	if err != nil {
		return domain.Principal{}, err
	}
	verified := s.now()
	s.basic.put(key, basicEntry{username: u.Username, hashFP: hashFingerprint(u.PasswordHash),
		verifiedAt: verified, expires: verified.Add(BasicCacheTTL)}, verified)
	s.audit(ctx, domain.AuditEvent{Type: AuditLogin, Actor: u.Username, Subject: u.Username, RemoteAddr: remoteAddr,
		Detail: map[string]string{"via": "basic"}})
	return domain.Principal{Subject: u.Username, Username: u.Username, Admin: u.Admin}, nil
}
