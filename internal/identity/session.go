package identity

import (
	"context"
	"crypto/rand"
	"crypto/sha256"
	"encoding/base64"
	"encoding/hex"
	"errors"
	"strings"
	"time"

	"github.com/google/uuid"

	"github.com/fieldsync/fieldsync/internal/domain"
)

// refreshTokenBytes is the entropy of a refresh token: 256 bits, so guessing one is
// hopeless and refreshes need no throttle.
const refreshTokenBytes = 32

// Login checks a username and password and starts a session: a new token family
// with a refresh token that lives RefreshTTL (not sliding) and an access token.
// remoteAddr is the client address ("ip" or "ip:port", as the HTTP layer trusts it)
// for throttling and the audit log.
//
// Errors: 401 invalid_credentials for an unknown user, a wrong password or a
// disabled user (one answer, so the answer tells nothing about which usernames
// exist); 429 too_many_attempts with RetryAfter once the username or the address has
// had too many failures in the window (the password is then not even checked).
//
// Timing: an unknown user costs one argon2id verification against a dummy hash,
// exactly like a wrong password; a disabled user is checked after the password.
func (s *Service) Login(ctx context.Context, username, password, remoteAddr string) (TokenPair, error) {
	// Tablet keyboards capitalise the first letter and add spaces; usernames are
	// lower case by rule, so this cannot merge two accounts.
	name := strings.ToLower(strings.TrimSpace(username))
	ukey := name
	if len(ukey) > 128 {
		ukey = ukey[:128] // no valid username is that long; bound the table's memory
	}
	akey := addressKey(remoteAddr)
	now := s.now()

	ok, retry, first := s.userThrottle.reserve(ukey, now)
	if !ok {
		if first {
			s.audit(ctx, domain.AuditEvent{Type: AuditLoginFailed, RemoteAddr: remoteAddr,
				Detail: map[string]string{"reason": "throttled", "scope": "username"}})
		}
		return TokenPair{}, errTooManyAttempts(retry)
	}
	if akey != "" {
		ok, retry, first = s.addrThrottle.reserve(akey, now)
		if !ok {
			s.userThrottle.settle(ukey, now, false)
			if first {
				s.audit(ctx, domain.AuditEvent{Type: AuditLoginFailed, RemoteAddr: remoteAddr,
					Detail: map[string]string{"reason": "throttled", "scope": "address"}})
			}
			return TokenPair{}, errTooManyAttempts(retry)
		}
	}
	settle := func(failed bool) {
		at := s.now()
		s.userThrottle.settle(ukey, at, failed)
		if akey != "" {
			s.addrThrottle.settle(akey, at, failed)
		}
	}

	u, known, err := s.lookupForLogin(ctx, name)
	if err != nil {
		settle(false) // the store failed, not the client
		return TokenPair{}, err
	}
	hash := s.dummyHash
	if known {
		hash = u.PasswordHash
	}
	match := false
	if len(password) <= 4*MaxPasswordLength { // bytes; longer cannot pass the policy
		var verr error
		match, verr = s.verifyPassword(ctx, password, hash)
		if verr != nil {
			if ctx.Err() != nil {
				settle(false)
				return TokenPair{}, ctx.Err()
			}
			s.log.Error("identity: stored password hash does not decode", "username", name)
		}
	}

	reason := ""
	switch {
	case !known:
		reason = "unknown_user"
	case !match:
		reason = "bad_password"
	case u.Disabled:
		reason = "disabled"
	}
	if reason != "" {
		settle(true)
		e := domain.AuditEvent{Type: AuditLoginFailed, RemoteAddr: remoteAddr, Detail: map[string]string{"reason": reason}}
		// The typed name of an unknown user is not recorded: people type their
		// password into the username field, and the audit log must never hold one.
		if known {
			e.Subject = name
		}
		s.audit(ctx, e)
		return TokenPair{}, errInvalidCredentials()
	}

	settle(false)
	s.userThrottle.reset(ukey)
	pair, fid, err := s.startSession(ctx, tokenSubject{subject: u.Username, admin: u.Admin, validAfter: u.TokensValidAfter},
		s.now().Add(s.cfg.RefreshTTL))
	if err != nil {
		return TokenPair{}, err
	}
	s.audit(ctx, domain.AuditEvent{Type: AuditLogin, Actor: u.Username, Subject: u.Username, RemoteAddr: remoteAddr,
		Detail: map[string]string{"family": fid}})
	return pair, nil
}

// lookupForLogin finds the user a login names; known is false for no such user.
func (s *Service) lookupForLogin(ctx context.Context, name string) (u domain.User, known bool, err error) {
	if !usernameRE.MatchString(name) {
		return u, false, nil // cannot exist; no store query needed
	}
	u, err = s.store.GetUser(ctx, name)
	switch {
	case errors.Is(err, domain.ErrNotFound):
		return u, false, nil
	case err != nil:
		return u, false, storeErr("get user", err)
	}
	return u, true, nil
}

// startSession creates a token family for sub and its first token pair.
func (s *Service) startSession(ctx context.Context, sub tokenSubject, refreshExpires time.Time) (TokenPair, string, error) {
	f := domain.TokenFamily{ID: uuid.NewString(), Subject: sub.subject, DeviceID: sub.deviceID, CreatedAt: s.now()}
	if err := s.store.CreateTokenFamily(ctx, f); err != nil {
		return TokenPair{}, "", storeErr("create token family", err)
	}
	sub.familyID = f.ID
	pair, err := s.issuePair(ctx, sub, refreshExpires)
	return pair, f.ID, err
}

// issuePair stores a new refresh token of sub's family and signs an access token.
func (s *Service) issuePair(ctx context.Context, sub tokenSubject, refreshExpires time.Time) (TokenPair, error) {
	raw := make([]byte, refreshTokenBytes)
	if _, err := rand.Read(raw); err != nil {
		return TokenPair{}, err
	}
	refresh := base64.RawURLEncoding.EncodeToString(raw)
	t := domain.RefreshToken{Hash: hashSecret(refresh), FamilyID: sub.familyID, Subject: sub.subject,
		ExpiresAt: refreshExpires, CreatedAt: s.now()}
	if err := s.store.CreateRefreshToken(ctx, t); err != nil {
		return TokenPair{}, storeErr("create refresh token", err)
	}
	access, err := s.issueAccess(ctx, sub)
	if err != nil {
		return TokenPair{}, err
	}
	return TokenPair{AccessToken: access, TokenType: "Bearer", ExpiresIn: int64(s.cfg.AccessTTL / time.Second), RefreshToken: refresh}, nil
}

// hashSecret is how refresh tokens and enrollment codes are stored: they carry 100+
// random bits, so a plain sha256 is enough to make a leaked table useless, and it
// lets the store find them by an index.
func hashSecret(secret string) string {
	sum := sha256.Sum256([]byte(secret))
	return hex.EncodeToString(sum[:])
}

// wellFormedRefresh rejects what cannot be one of our refresh tokens before it
// costs a store query.
func wellFormedRefresh(tok string) bool {
	if len(tok) != base64.RawURLEncoding.EncodedLen(refreshTokenBytes) {
		return false
	}
	_, err := base64.RawURLEncoding.DecodeString(tok)
	return err == nil
}

// Refresh spends a refresh token and answers a new pair of the same family. A user
// session keeps the expiry of its login; a device's slides to now+DeviceRefreshTTL.
//
// Errors: 401 invalid_grant for an unknown, expired or spent token, a revoked family,
// a disabled or unknown user, a revoked device. A spent token is a replay — the token
// was stolen, or its thief already used it — so the whole family is revoked first
// (audit family_revoked, reason replay) and its newest token dies with it.
//
// Routine refreshes are not audited: every online tablet refreshes every AccessTTL,
// which would drown the security events an admin looks for. Failures that matter
// (replays) are.
func (s *Service) Refresh(ctx context.Context, refreshToken, remoteAddr string) (TokenPair, error) {
	if !wellFormedRefresh(refreshToken) {
		return TokenPair{}, errInvalidGrant()
	}
	now := s.now()
	t, err := s.store.SpendRefreshToken(ctx, hashSecret(refreshToken), now)
	switch {
	case errors.Is(err, domain.ErrNotFound):
		return TokenPair{}, errInvalidGrant()
	case errors.Is(err, domain.ErrStale):
		// Revoke even if the client hangs up: the thief must not be able to stop
		// the revocation by closing the connection.
		if rerr := s.revokeFamilyOnce(context.WithoutCancel(ctx), t.FamilyID, "", t.Subject, "replay", remoteAddr); rerr != nil {
			return TokenPair{}, rerr
		}
		return TokenPair{}, errInvalidGrant()
	case err != nil:
		return TokenPair{}, storeErr("spend refresh token", err)
	}
	if !now.Before(t.ExpiresAt) {
		return TokenPair{}, errInvalidGrant()
	}
	f, err := s.store.GetTokenFamily(ctx, t.FamilyID)
	switch {
	case errors.Is(err, domain.ErrNotFound):
		return TokenPair{}, errInvalidGrant()
	case err != nil:
		return TokenPair{}, storeErr("get token family", err)
	case f.RevokedAt != nil:
		return TokenPair{}, errInvalidGrant()
	}

	sub := tokenSubject{subject: f.Subject, familyID: f.ID}
	var expires time.Time
	if f.DeviceID != "" {
		d, err := s.store.GetDevice(ctx, f.DeviceID)
		switch {
		case errors.Is(err, domain.ErrNotFound):
			return TokenPair{}, errInvalidGrant()
		case err != nil:
			return TokenPair{}, storeErr("get device", err)
		case d.RevokedAt != nil:
			return TokenPair{}, errInvalidGrant()
		}
		sub.deviceID, sub.projectID = d.ID, d.ProjectID
		expires = now.Add(s.cfg.DeviceRefreshTTL)
	} else {
		u, err := s.store.GetUser(ctx, f.Subject)
		switch {
		case errors.Is(err, domain.ErrNotFound):
			return TokenPair{}, errInvalidGrant()
		case err != nil:
			return TokenPair{}, storeErr("get user", err)
		case u.Disabled:
			return TokenPair{}, errInvalidGrant()
		// A session that began before the user's tokens were revoked ends, even
		// if its family escaped the revocation (belt and braces: RevokeUser
		// revokes the families too). Before, not "not after": a login in the
		// same millisecond as the revocation came after it.
		case !u.TokensValidAfter.IsZero() && f.CreatedAt.Before(u.TokensValidAfter):
			return TokenPair{}, errInvalidGrant()
		}
		sub.admin, sub.validAfter = u.Admin, u.TokensValidAfter
		expires = t.ExpiresAt
	}
	pair, err := s.issuePair(ctx, sub, expires)
	if err != nil {
		// The old token is spent and the client has no new one: it must log in
		// (or re-enroll) again. Worth a line in the log.
		s.log.Error("identity: refresh failed after spending the old token", "subject", f.Subject, "family", f.ID, "err", err)
		return TokenPair{}, err
	}
	return pair, nil
}

// Revoke ends the session a refresh token belongs to (logout): its whole family is
// revoked, and its access tokens stop within RevocationCheckInterval. It answers nil
// for unknown tokens too, so it tells nothing about which tokens exist.
func (s *Service) Revoke(ctx context.Context, refreshToken string) error {
	if !wellFormedRefresh(refreshToken) {
		return nil
	}
	// The store finds a token's family only by spending it; a token being revoked
	// may as well be spent.
	t, err := s.store.SpendRefreshToken(ctx, hashSecret(refreshToken), s.now())
	switch {
	case errors.Is(err, domain.ErrNotFound):
		return nil
	case err != nil && !errors.Is(err, domain.ErrStale):
		return storeErr("spend refresh token", err)
	}
	return s.revokeFamilyOnce(context.WithoutCancel(ctx), t.FamilyID, t.Subject, t.Subject, "logout", "")
}

// revokeFamilyOnce revokes a family and audits it, unless it was revoked already
// (a client retrying after logout must not fill the audit log). actor is "" for a
// replay: whoever replayed is unknown.
func (s *Service) revokeFamilyOnce(ctx context.Context, familyID, actor, subject, reason, remoteAddr string) error {
	f, err := s.store.GetTokenFamily(ctx, familyID)
	switch {
	case errors.Is(err, domain.ErrNotFound):
		return nil
	case err != nil:
		return storeErr("get token family", err)
	case f.RevokedAt != nil:
		return nil
	}
	if err := s.store.RevokeTokenFamily(ctx, familyID, s.now()); err != nil && !errors.Is(err, domain.ErrNotFound) {
		return storeErr("revoke token family", err)
	}
	s.allow.drop(familyKey(familyID))
	if reason == "replay" {
		s.log.Warn("identity: refresh token replayed; token family revoked", "subject", subject, "family", familyID)
	}
	s.audit(ctx, domain.AuditEvent{Type: AuditFamilyRevoked, Actor: actor, Subject: subject, RemoteAddr: remoteAddr,
		Detail: map[string]string{"reason": reason, "family": familyID}})
	return nil
}
