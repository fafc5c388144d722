package identity

import (
	"context"
	"crypto/rand"
	"crypto/sha256"
	"encoding/base64"
	"encoding/hex"
	"errors"
	"strconv"
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
// exist); 429 too_many_attempts with RetryAfter while the throttle (loginGuard)
// holds this attempt back: the password is then not even checked. The throttle
// slows, it never locks: the delays grow per (username, address), and the
// ceilings per username and per address do not apply to an address that signed
// in to that username recently, so no one can keep an owner out of an account
// by failing its password from elsewhere.
//
// Timing: an unknown user costs one argon2id verification against a dummy hash,
// exactly like a wrong password; a disabled user is checked after the password.
func (s *Service) Login(ctx context.Context, username, password, remoteAddr string) (TokenPair, error) {
	// Tablet keyboards capitalise the first letter and add spaces; usernames are
	// lower case by rule, so this cannot merge two accounts.
	name := strings.ToLower(strings.TrimSpace(username))
	u, err := s.checkLogin(ctx, name, password, remoteAddr, nil)
	if err != nil {
		return TokenPair{}, err
	}
	pair, fid, err := s.startSession(ctx, tokenSubject{subject: u.Username, admin: u.Admin, validAfter: u.TokensValidAfter},
		s.now().Add(s.cfg.RefreshTTL))
	if err != nil {
		return TokenPair{}, err
	}
	s.audit(ctx, domain.AuditEvent{Type: AuditLogin, Actor: u.Username, Subject: u.Username, RemoteAddr: remoteAddr,
		Detail: map[string]string{"family": fid}})
	return pair, nil
}

// checkLogin runs the checks of a login on name (already lower-cased) and
// password, for Login and VerifyPassword alike: the throttle (per username
// and per address), the user's lookup, the password check (against a dummy
// hash for an unknown user, so that both cost the same), and a disabled
// account. Every refusal is the one 401 invalid_credentials, audited as
// login_failed with its reason and with detail added (Basic's via); a
// throttled one is 429 with RetryAfter. It returns the user on success,
// counted as a success by the throttle.
func (s *Service) checkLogin(ctx context.Context, name, password, remoteAddr string, detail map[string]string) (domain.User, error) {
	failed := func(d map[string]string) map[string]string {
		for k, v := range detail {
			d[k] = v
		}
		return d
	}
	ukey := name
	if len(ukey) > 128 {
		ukey = ukey[:128] // no valid username is that long; bound the table's memory
	}
	ticket, ok, retry, scope, first := s.loginGuard.reserve(ukey, addressKey(remoteAddr), s.now())
	if !ok {
		if first {
			s.audit(ctx, domain.AuditEvent{Type: AuditLoginFailed, RemoteAddr: remoteAddr,
				Detail: failed(map[string]string{"reason": "throttled", "scope": scope})})
		}
		return domain.User{}, errTooManyAttempts(retry)
	}
	settle := func(outcome int) { s.loginGuard.settle(ticket, s.now(), outcome) }

	u, known, err := s.lookupForLogin(ctx, name)
	if err != nil {
		settle(attemptAborted) // the store failed, not the client
		return domain.User{}, err
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
				settle(attemptAborted)
				return domain.User{}, ctx.Err()
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
		settle(attemptFailed)
		e := domain.AuditEvent{Type: AuditLoginFailed, RemoteAddr: remoteAddr, Detail: failed(map[string]string{"reason": reason})}
		// The typed name of an unknown user is not recorded: people type their
		// password into the username field, and the audit log must never hold one.
		if known {
			e.Subject = name
		}
		s.audit(ctx, e)
		return domain.User{}, errInvalidCredentials()
	}
	settle(attemptSucceeded)
	return u, nil
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
	pair, err := s.issuePair(ctx, sub, refreshExpires, "")
	return pair, f.ID, err
}

// issuePair stores a new refresh token of sub's family and signs an access token.
// parent is the hash of the refresh token whose refresh this is ("" for none; see
// Refresh).
func (s *Service) issuePair(ctx context.Context, sub tokenSubject, refreshExpires time.Time, parent string) (TokenPair, error) {
	raw := make([]byte, refreshTokenBytes)
	if _, err := rand.Read(raw); err != nil {
		return TokenPair{}, err
	}
	refresh := base64.RawURLEncoding.EncodeToString(raw)
	t := domain.RefreshToken{Hash: hashSecret(refresh), FamilyID: sub.familyID, Subject: sub.subject,
		Parent: parent, ExpiresAt: refreshExpires, CreatedAt: s.now()}
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

// refreshFinishTimeout bounds the work of a refresh once the presented token is
// spent, which goes on when the client hangs up (see Refresh).
const refreshFinishTimeout = 10 * time.Second

// Refresh spends a refresh token and answers a new pair of the same family. A user
// session keeps the expiry of its login; a device's slides to now+DeviceRefreshTTL.
//
// Errors: 401 invalid_grant for an unknown, expired or spent token, a revoked family,
// a disabled or unknown user, a revoked device; 503 refresh_in_progress (with
// RetryAfter) when a simultaneous refresh of the same token has not finished in
// time (see below). A spent token is a replay — the token
// was stolen, or its thief already used it — so the whole family is revoked first
// (audit family_revoked, reason replay) and its newest token dies with it, unless
// the reuse grace below forgives it.
//
// # Reuse grace
//
// On a 2G link the answer of a refresh is often lost: the server spent the token P
// and issued its successor C, and the client, which never saw C, sends P again.
// Within Config.RefreshReuseGrace such a retry is answered instead of punished. A
// spent token P presented again, in a call that began at time T, gets a new pair
// if and only if
//
//  1. the grace is on and T is less than RefreshReuseGrace after P was spent
//     (P's one spend: nothing ever moves it);
//  2. the store holds C, the token issued by P's own refresh (C.Parent is P); and
//  3. this call spends C. The store's single-winner spend is the claim: C can
//     never be used afterwards, and of simultaneous retries exactly one wins.
//
// The pair is issued as if C had been refreshed (C's family and expiry; a device's
// slides), but its refresh token R has no Parent, and the reuse is audited
// (refresh_reused). When C exists but was spent at T or later — another retry of
// P won the claim, or C's holder refreshed, while this call ran — the answer is
// invalid_grant and the family is left alone: two copies of P arrived together,
// and one of them was answered. Everything else is a replay and revokes the
// family, as without the grace: P spent RefreshReuseGrace ago or more; C spent
// before T (used by its holder, so someone else is replaying P, or claimed by an
// earlier retry); P without a successor (a logout, a refresh that failed after
// spending P, a token from before the grace) once P's own refresh has had time
// to finish (next section).
//
// # Simultaneous first uses
//
// Two copies of a live token P arriving together (a tablet whose two sync
// threads both saw the access token expire) are a race, not a theft. The loser
// finds P spent and, as its winner has not stored C yet, no successor. When P
// was spent less than refreshFinishTimeout ago (the time the winner's refresh
// may take) and the family is not revoked, the loser waits for C (up to
// successorWait, polling the store, since the winner may be another instance)
// and then applies the rule above, with T its own start: it finds C unspent and
// claims it, so both calls answer a pair, exactly as for a retry whose answer
// was lost, and only the loser's token R is live; a third copy finds C claimed
// since T and is refused without revoking anything. If C does not appear in
// time, the answer is 503 refresh_in_progress with Retry-After, and nothing is
// revoked. Without the grace, a second presentation is a replay, race or not.
//
// An expired token is refused before it is spent, so presenting it again is
// not a replay either.
//
// Why the leeway is bounded:
//   - P is forgiven at most once: the reuse spends C, so a later retry finds C
//     spent before it began. The price: a client that loses the answer of its
//     retry too is refused (and its family revoked), as without the grace.
//   - Reuses do not chain. C, killed by the claim, never gets a successor, and R
//     has no parent; so presenting C, or anything else killed by a claim, is a
//     replay. A new window opens only when a live token is refreshed normally,
//     which takes the live token.
//   - A family never holds two live refresh tokens: a reuse kills C before it
//     issues R.
//
// So a copy of P is worth something only within the window and only while the
// legitimate client has not used C yet. If a thief takes the session over that
// way, the legitimate client's next refresh (with C, or with P when it lost C) is
// a replay that revokes the family, the thief's R included: the detection that
// rotation gives without the grace. A legitimate client that loses the race of
// two simultaneous presentations of P holds only P, so its next attempt is that
// replay.
//
// Once the presented token (or C) is spent, the rest of the refresh goes on even
// if the client hangs up, so that its successor exists when the client retries.
//
// Routine refreshes are not audited: every online tablet refreshes every AccessTTL,
// which would drown the security events an admin looks for. Failures that matter
// (replays) and grace reuses are.
func (s *Service) Refresh(ctx context.Context, refreshToken, remoteAddr string) (TokenPair, error) {
	if !wellFormedRefresh(refreshToken) {
		return TokenPair{}, errInvalidGrant()
	}
	now := s.now()
	hash := hashSecret(refreshToken)
	// Look before spending: an expired token is refused unspent, so that a client
	// presenting it again is not taken for a thief replaying it.
	cur, err := s.store.GetRefreshToken(ctx, hash)
	switch {
	case errors.Is(err, domain.ErrNotFound):
		return TokenPair{}, errInvalidGrant()
	case err != nil:
		return TokenPair{}, storeErr("get refresh token", err)
	case cur.SpentAt == nil && !now.Before(cur.ExpiresAt):
		return TokenPair{}, errInvalidGrant()
	}
	t, err := s.store.SpendRefreshToken(ctx, hash, now)
	var reused *domain.RefreshToken // the spent token a grace reuse forgives
	switch {
	case errors.Is(err, domain.ErrNotFound):
		return TokenPair{}, errInvalidGrant()
	case errors.Is(err, domain.ErrStale):
		child, verdict, cerr := s.claimSuccessor(ctx, t, now)
		switch {
		case cerr != nil:
			return TokenPair{}, cerr
		case verdict == reuseInFlight:
			s.log.Warn("identity: a simultaneous refresh spent the token and its successor did not appear in time",
				"subject", t.Subject, "family", t.FamilyID)
			return TokenPair{}, errRefreshInProgress()
		case verdict == reuseLostRace:
			s.log.Info("identity: spent refresh token presented twice at once; one retry answered",
				"subject", t.Subject, "family", t.FamilyID)
			return TokenPair{}, errInvalidGrant()
		case verdict == reuseReplay:
			// Revoke even if the client hangs up: the thief must not be able to
			// stop the revocation by closing the connection.
			if rerr := s.revokeFamilyOnce(context.WithoutCancel(ctx), t.FamilyID, "", t.Subject, "replay", remoteAddr); rerr != nil {
				return TokenPair{}, rerr
			}
			return TokenPair{}, errInvalidGrant()
		}
		spent := t
		reused, t = &spent, child
	case err != nil:
		return TokenPair{}, storeErr("spend refresh token", err)
	}
	if reused == nil && s.afterSpend != nil {
		s.afterSpend()
	}
	// t is spent, by this call: from here on a client that hangs up must not stop
	// its successor from being stored, or its retry would be a replay.
	ctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), refreshFinishTimeout)
	defer cancel()
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
	// A reuse's token has no parent, so that reuses cannot chain (see above).
	parent := t.Hash
	if reused != nil {
		parent = ""
	}
	pair, err := s.issuePair(ctx, sub, expires, parent)
	if err != nil {
		// The old token is spent and the client has no new one: it must log in
		// (or re-enroll) again. Worth a line in the log.
		s.log.Error("identity: refresh failed after spending the old token", "subject", f.Subject, "family", f.ID, "err", err)
		return TokenPair{}, err
	}
	if reused != nil {
		ago := now.Sub(*reused.SpentAt).Milliseconds()
		s.log.Info("identity: spent refresh token honoured again within the reuse grace", "subject", f.Subject,
			"family", f.ID, "spent_ms", ago)
		s.audit(ctx, domain.AuditEvent{Type: AuditRefreshReused, Subject: f.Subject, ProjectID: sub.projectID,
			RemoteAddr: remoteAddr, Detail: map[string]string{"family": f.ID, "spent_ms": strconv.FormatInt(ago, 10)}})
	}
	return pair, nil
}

// reuseVerdict is what the reuse grace makes of a spent token presented again.
type reuseVerdict int

const (
	reuseReplay   reuseVerdict = iota // not forgiven: revoke the family
	reuseGranted                      // forgiven: the successor is claimed
	reuseLostRace                     // a simultaneous presentation was answered: refuse, revoke nothing
	reuseInFlight                     // the refresh that spent the token is still running: retry later
)

// Waiting for the successor of a token that a simultaneous refresh has just
// spent (see Refresh, "Simultaneous first uses").
const (
	// successorWait bounds the wait in real time. The winner's work between its
	// spend and storing the successor is three store round trips; if they take
	// longer than this, the store is in trouble and the loser answers 503.
	successorWait = 3 * time.Second
	// successorPollMax is the longest pause between two looks: the successor
	// is usually stored within milliseconds, and may be on another instance.
	successorPollMax = 50 * time.Millisecond
)

// claimSuccessor applies the reuse grace (see Refresh) to p, a spent token that a
// call which began at now presents again. On reuseGranted it returns p's
// successor, which it has just spent. err is a store failure: nothing was
// decided, and the caller answers it without revoking anything.
func (s *Service) claimSuccessor(ctx context.Context, p domain.RefreshToken, now time.Time) (domain.RefreshToken, reuseVerdict, error) {
	grace := s.cfg.RefreshReuseGrace
	if grace <= 0 || p.SpentAt == nil || !now.Before(p.SpentAt.Add(grace)) {
		return domain.RefreshToken{}, reuseReplay, nil
	}
	c, err := s.store.GetRefreshTokenByParent(ctx, p.Hash)
	if errors.Is(err, domain.ErrNotFound) && now.Before(p.SpentAt.Add(refreshFinishTimeout)) {
		// P was spent so recently that the refresh which spent it may still be
		// running: its successor may be on its way.
		var verdict reuseVerdict
		c, verdict, err = s.awaitSuccessor(ctx, p)
		if err != nil || verdict != reuseGranted {
			return c, verdict, err
		}
	}
	switch {
	case errors.Is(err, domain.ErrNotFound):
		return c, reuseReplay, nil
	case err != nil:
		return c, reuseReplay, storeErr("get refresh token by parent", err)
	case c.FamilyID != p.FamilyID:
		return c, reuseReplay, nil // cannot happen; refuse rather than cross families
	case c.SpentAt != nil:
		return c, spentBefore(c, now), nil
	}
	// The claim is stamped when it happens, not when this call began, so that a
	// simultaneous retry can tell it ran while it did (spentBefore).
	c, err = s.store.SpendRefreshToken(ctx, c.Hash, s.now())
	switch {
	case errors.Is(err, domain.ErrStale):
		return c, spentBefore(c, now), nil
	case errors.Is(err, domain.ErrNotFound):
		return c, reuseReplay, nil
	case err != nil:
		return c, reuseReplay, storeErr("spend refresh token", err)
	}
	return c, reuseGranted, nil
}

// awaitSuccessor waits for the successor of p, a token spent within
// refreshFinishTimeout by another call, polling the store (that call may run on
// another instance). It returns the successor with reuseGranted (meaning only
// "found": the caller goes on to claim it); reuseReplay when p's family is
// revoked (a logout, or a replay found elsewhere: nothing is left to save, and
// revoking again is a no-op); reuseInFlight when the successor did not appear
// within successorWait; or a store failure.
func (s *Service) awaitSuccessor(ctx context.Context, p domain.RefreshToken) (domain.RefreshToken, reuseVerdict, error) {
	f, err := s.store.GetTokenFamily(ctx, p.FamilyID)
	switch {
	case errors.Is(err, domain.ErrNotFound):
		return domain.RefreshToken{}, reuseReplay, nil
	case err != nil:
		return domain.RefreshToken{}, reuseReplay, storeErr("get token family", err)
	case f.RevokedAt != nil:
		return domain.RefreshToken{}, reuseReplay, nil
	}
	if s.onAwaitSuccessor != nil {
		s.onAwaitSuccessor()
	}
	deadline := time.NewTimer(successorWait)
	defer deadline.Stop()
	pause := time.Millisecond
	for {
		c, err := s.store.GetRefreshTokenByParent(ctx, p.Hash)
		if !errors.Is(err, domain.ErrNotFound) {
			if err != nil {
				return c, reuseReplay, storeErr("get refresh token by parent", err)
			}
			return c, reuseGranted, nil
		}
		poll := time.NewTimer(pause)
		select {
		case <-ctx.Done():
			poll.Stop()
			return c, reuseReplay, ctx.Err()
		case <-deadline.C:
			poll.Stop()
			return c, reuseInFlight, nil
		case <-poll.C:
		}
		pause = min(2*pause, successorPollMax)
	}
}

// spentBefore judges a successor found spent by a call that began at now: spent
// before, it was used or claimed earlier (a replay); spent since, a simultaneous
// presentation won it.
func spentBefore(c domain.RefreshToken, now time.Time) reuseVerdict {
	if c.SpentAt != nil && c.SpentAt.Before(now) {
		return reuseReplay
	}
	return reuseLostRace
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
