package identity

import (
	"context"
	"errors"
	"sync"
	"time"

	"github.com/fieldsync/fieldsync/internal/domain"
)

// maxAllowEntries bounds the revocation cache; past it the cache is emptied, which
// costs a few store reads and never a wrong answer.
const maxAllowEntries = 200_000

// allowCache remembers, per user, device and token family, whether it may still use
// its access tokens. Entries live at most RevocationCheckInterval: that is how long
// a revocation done on another instance may take to bite here. The instance that
// revokes drops its own entry at once.
type allowCache struct {
	mu sync.Mutex
	m  map[string]allowEntry
}

type allowEntry struct {
	expires    time.Time
	ok         bool      // exists, and is not disabled or revoked
	validAfter time.Time // users: TokensValidAfter
	admin      bool      // users
	project    string    // devices: their project
	subject    string    // families: their subject
}

func newAllowCache() *allowCache { return &allowCache{m: map[string]allowEntry{}} }

func (c *allowCache) get(key string, now time.Time) (allowEntry, bool) {
	c.mu.Lock()
	defer c.mu.Unlock()
	e, ok := c.m[key]
	if !ok || !now.Before(e.expires) {
		return allowEntry{}, false
	}
	return e, true
}

func (c *allowCache) put(key string, e allowEntry, now time.Time) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if len(c.m) >= maxAllowEntries {
		for k, old := range c.m {
			if !now.Before(old.expires) {
				delete(c.m, k)
			}
		}
		if len(c.m) >= maxAllowEntries {
			clear(c.m)
		}
	}
	c.m[key] = e
}

func (c *allowCache) drop(keys ...string) {
	c.mu.Lock()
	defer c.mu.Unlock()
	for _, k := range keys {
		delete(c.m, k)
	}
}

func userKey(username string) string { return "u:" + username }
func deviceKey(id string) string     { return "d:" + id }
func familyKey(id string) string     { return "f:" + id }

// allowUser checks a user token's subject and returns whether the user is an admin
// (from the user record, not the token, so a change applies within the interval).
//
// iat has whole seconds while TokensValidAfter has milliseconds, so a token is
// accepted only when its iat is after the second of TokensValidAfter: a token
// issued in the same second as the revocation cannot be told apart from one issued
// just before it, and is refused (issueAccess dates new tokens past that second).
func (s *Service) allowUser(ctx context.Context, username string, iat time.Time) (bool, error) {
	now := s.now()
	e, ok := s.allow.get(userKey(username), now)
	if !ok {
		u, err := s.store.GetUser(ctx, username)
		switch {
		case errors.Is(err, domain.ErrNotFound):
			e = allowEntry{}
		case err != nil:
			return false, storeErr("get user", err)
		default:
			e = allowEntry{ok: !u.Disabled, validAfter: u.TokensValidAfter, admin: u.Admin}
		}
		e.expires = now.Add(s.cfg.RevocationCheckInterval)
		s.allow.put(userKey(username), e, now)
	}
	if !e.ok {
		return false, errInvalidToken(errors.New("user unknown or disabled"))
	}
	if !e.validAfter.IsZero() && iat.Unix() <= e.validAfter.Unix() {
		return false, errInvalidToken(errors.New("token issued before the user's tokens were revoked"))
	}
	return e.admin, nil
}

// allowDevice checks a device token's subject: enrolled, not revoked, and still of
// the project the token names.
func (s *Service) allowDevice(ctx context.Context, deviceID, projectID string) error {
	now := s.now()
	e, ok := s.allow.get(deviceKey(deviceID), now)
	if !ok {
		d, err := s.store.GetDevice(ctx, deviceID)
		switch {
		case errors.Is(err, domain.ErrNotFound):
			e = allowEntry{}
		case err != nil:
			return storeErr("get device", err)
		default:
			e = allowEntry{ok: d.RevokedAt == nil && d.EnrolledAt != nil, project: d.ProjectID}
		}
		e.expires = now.Add(s.cfg.RevocationCheckInterval)
		s.allow.put(deviceKey(deviceID), e, now)
	}
	if !e.ok || e.project != projectID {
		return errInvalidToken(errors.New("device unknown, revoked or moved"))
	}
	return nil
}

// allowFamily checks that the token family (the login or enrollment the token
// descends from) is not revoked, so logout and replay detection stop access tokens
// too.
func (s *Service) allowFamily(ctx context.Context, familyID, subject string) error {
	now := s.now()
	e, ok := s.allow.get(familyKey(familyID), now)
	if !ok {
		f, err := s.store.GetTokenFamily(ctx, familyID)
		switch {
		case errors.Is(err, domain.ErrNotFound):
			e = allowEntry{}
		case err != nil:
			return storeErr("get token family", err)
		default:
			e = allowEntry{ok: f.RevokedAt == nil, subject: f.Subject}
		}
		e.expires = now.Add(s.cfg.RevocationCheckInterval)
		s.allow.put(familyKey(familyID), e, now)
	}
	if !e.ok || e.subject != subject {
		return errInvalidToken(errors.New("token family unknown or revoked"))
	}
	return nil
}
