package identity

import (
	"context"
	"errors"
	"slices"
	"strconv"
	"sync"
	"time"

	"github.com/golang-jwt/jwt/v5"

	"github.com/fieldsync/fieldsync/internal/domain"
)

// Audit event types of administration (protocol.md §1, Administration).
const (
	// AuditPasswordChanged is a user's change of its own password; detail
	// sessions_revoked, how many other sessions were signed out.
	AuditPasswordChanged = "password_changed"
	// AuditPasswordReset is an admin's reset of a user's password; every
	// session of the user ends.
	AuditPasswordReset = "password_reset"
	// AuditAdminGranted is a user made an admin.
	AuditAdminGranted = "admin_granted"
	// AuditAdminRevoked is a user's admin flag removed.
	AuditAdminRevoked = "admin_revoked"
	// AuditUserUpdated is a changed display name.
	AuditUserUpdated = "user_updated"
	// AuditMemberRemoved is a membership removed; detail role, the role it had.
	AuditMemberRemoved = "member_removed"
)

// Paging bounds of the administration lists.
const (
	// DefaultListLimit is the page size when the caller gives none.
	DefaultListLimit = 100
	// MaxListLimit caps a page.
	MaxListLimit = 1000
)

// SyncSeenInterval is how often at most a device's last sync time is written:
// a tablet pushing and pulling in a loop must not turn every request into a
// store write, and a manager looking for silent tablets needs minutes, not
// milliseconds.
const SyncSeenInterval = time.Minute

// maxSyncSeen bounds the throttle's memory; past it the table starts over
// (costing one extra write per device, not a missed one).
const maxSyncSeen = 100_000

// Device states of a device list.
const (
	DeviceStatePending = "pending" // created, its enrollment code not used yet
	DeviceStateActive  = "active"  // enrolled and not revoked
	DeviceStateRevoked = "revoked"
)

// DeviceView is a device as a manager's list shows it.
type DeviceView struct {
	domain.Device
	// State is DeviceStatePending, DeviceStateActive or DeviceStateRevoked.
	State string
	// LastSeenAt is the last push or pull of the device (to SyncSeenInterval),
	// nil if it never synced.
	LastSeenAt *time.Time
}

// MemberView is a project member with its display name.
type MemberView struct {
	domain.Membership
	DisplayName string
}

// syncSeen remembers when this instance last wrote each device's last sync
// time. The zero value is ready to use.
type syncSeen struct {
	mu   sync.Mutex
	last map[string]time.Time
}

// due reports whether the device's sync time should be written at now, and
// then records now as written.
func (t *syncSeen) due(id string, now time.Time) bool {
	t.mu.Lock()
	defer t.mu.Unlock()
	if t.last == nil || len(t.last) >= maxSyncSeen {
		t.last = map[string]time.Time{}
	}
	if last, ok := t.last[id]; ok && now.Sub(last) < SyncSeenInterval {
		return false
	}
	t.last[id] = now
	return true
}

// forget undoes due after a failed write, so the next sync tries again.
func (t *syncSeen) forget(id string) {
	t.mu.Lock()
	defer t.mu.Unlock()
	delete(t.last, id)
}

// DeviceSynced records that p pushed or pulled, when p is a device: its last
// sync time is written at most once per SyncSeenInterval per instance. It never
// fails the sync it records; a failed write is logged and retried at the next
// sync.
func (s *Service) DeviceSynced(ctx context.Context, p domain.Principal) {
	if !p.IsDevice() {
		return
	}
	now := s.now()
	if !s.syncSeen.due(p.DeviceID, now) {
		return
	}
	if err := s.store.TouchDevice(context.WithoutCancel(ctx), p.DeviceID, now); err != nil {
		s.syncSeen.forget(p.DeviceID)
		s.log.Warn("identity: could not record a device's sync time", "device", p.DeviceID, "err", err)
	}
}

// sessionOf returns the token family (the login) of an access token that
// Authenticate has accepted for p, or "" when accessToken is not p's token.
// The signature was checked by Authenticate; tying the claims to p's jti and
// subject makes sure this is that very token.
func sessionOf(accessToken string, p domain.Principal) string {
	var c accessClaims
	if _, _, err := jwt.NewParser().ParseUnverified(accessToken, &c); err != nil {
		return ""
	}
	if c.ID == "" || c.ID != p.TokenID || c.Subject != p.Subject {
		return ""
	}
	return c.Session
}

// ChangePassword changes the caller's own password. current must be the
// password in force; wrong guesses are throttled like logins (a stolen access
// token must not become a way to guess the password). With revokeOthers, every
// other session of the user ends (its refresh-token families are revoked; their
// access tokens stop within RevocationCheckInterval); the session of
// accessToken, the token of this request, is kept.
//
// Errors: 403 forbidden (a device); 422 wrong_password (current is not the
// password), weak_password (the detail states the rule), same_password; 429
// too_many_attempts.
func (s *Service) ChangePassword(ctx context.Context, actor domain.Principal, accessToken, current, newPassword string, revokeOthers bool, remoteAddr string) error {
	if actor.IsDevice() || actor.Username == "" {
		return errForbidden()
	}
	ticket, ok, retry, scope, first := s.loginGuard.reserve(actor.Username, addressKey(remoteAddr), s.now())
	if !ok {
		if first {
			s.audit(ctx, domain.AuditEvent{Type: AuditLoginFailed, Actor: actor.Subject, Subject: actor.Username,
				RemoteAddr: remoteAddr, Detail: map[string]string{"reason": "throttled", "scope": scope, "via": "password_change"}})
		}
		return errTooManyAttempts(retry)
	}
	settle := func(outcome int) { s.loginGuard.settle(ticket, s.now(), outcome) }
	u, err := s.getUser(ctx, actor.Username)
	if err != nil {
		settle(attemptAborted)
		return err
	}
	match := false
	if len(current) <= 4*MaxPasswordLength {
		if match, err = s.verifyPassword(ctx, current, u.PasswordHash); err != nil && ctx.Err() != nil {
			settle(attemptAborted)
			return ctx.Err()
		}
	}
	if !match {
		settle(attemptFailed)
		s.audit(ctx, domain.AuditEvent{Type: AuditLoginFailed, Actor: actor.Subject, Subject: actor.Username,
			RemoteAddr: remoteAddr, Detail: map[string]string{"reason": "bad_password", "via": "password_change"}})
		return invalid("wrong_password", "The current password is not right", "/current_password",
			"must be the password you log in with")
	}
	settle(attemptSucceeded)
	if err := checkPasswordAt(newPassword, u.Username, "/new_password"); err != nil {
		return err
	}
	if newPassword == current {
		return invalid("same_password", "The new password is the current one", "/new_password",
			"must differ from the current password")
	}
	hash, err := s.hashPassword(ctx, newPassword)
	if err != nil {
		return err
	}
	ctx = context.WithoutCancel(ctx) // finish what the password change started
	u.PasswordHash, u.UpdatedAt = hash, s.now()
	if err := s.store.UpdateUser(ctx, u); err != nil {
		return storeErr("update user", err)
	}
	n := 0
	if revokeOthers {
		keep := sessionOf(accessToken, actor)
		if n, err = s.store.RevokeSubjectFamiliesExcept(ctx, actor.Username, keep, s.now()); err != nil {
			return storeErr("revoke other sessions", err)
		}
		if n > 0 {
			s.audit(ctx, domain.AuditEvent{Type: AuditFamilyRevoked, Actor: actor.Subject, Subject: actor.Username,
				Detail: map[string]string{"reason": "password_changed", "families": strconv.Itoa(n)}})
		}
	}
	s.audit(ctx, domain.AuditEvent{Type: AuditPasswordChanged, Actor: actor.Subject, Subject: actor.Username,
		RemoteAddr: remoteAddr, Detail: map[string]string{"sessions_revoked": strconv.Itoa(n)}})
	return nil
}

// ResetPassword sets a user's password. Admins only. Every session of the user
// ends: its access tokens stop (TokensValidAfter) and its refresh-token families
// are revoked, so whoever knew the old password is out.
//
// Errors: 403 forbidden; 404 user_not_found; 422 weak_password.
func (s *Service) ResetPassword(ctx context.Context, actor domain.Principal, username, newPassword string) error {
	if !isAdmin(actor) {
		return errForbidden()
	}
	u, err := s.getUser(ctx, username)
	if err != nil {
		return err
	}
	if err := checkPasswordAt(newPassword, u.Username, "/new_password"); err != nil {
		return err
	}
	hash, err := s.hashPassword(ctx, newPassword)
	if err != nil {
		return err
	}
	ctx = context.WithoutCancel(ctx)
	now := s.now()
	u.PasswordHash, u.TokensValidAfter, u.UpdatedAt = hash, now, now
	if err := s.store.UpdateUser(ctx, u); err != nil {
		return storeErr("update user", err)
	}
	s.allow.drop(userKey(username))
	s.audit(ctx, domain.AuditEvent{Type: AuditPasswordReset, Actor: actor.Subject, Subject: username})
	return s.revokeSubject(ctx, actor.Subject, username, "", "password_reset")
}

// UpdateUser changes a user's display name and admin flag (nil: unchanged).
// Admins only. An admin cannot change its own flag (it could lock itself out),
// and the last enabled admin keeps its flag: a store without an admin can no
// longer create users or projects. Returns the user without its hash.
//
// Errors: 403 forbidden; 404 user_not_found; 422 invalid_display_name,
// cannot_change_own_admin; 409 last_admin.
func (s *Service) UpdateUser(ctx context.Context, actor domain.Principal, username string, displayName *string, admin *bool) (domain.User, error) {
	if !isAdmin(actor) {
		return domain.User{}, errForbidden()
	}
	if displayName != nil && !validText(*displayName, 0) {
		return domain.User{}, invalid("invalid_display_name", "The display name is not acceptable", "/display_name",
			"must be at most 200 characters of text without control characters")
	}
	u, err := s.getUser(ctx, username)
	if err != nil {
		return domain.User{}, err
	}
	if admin != nil && *admin != u.Admin && username == actor.Username {
		return domain.User{}, invalid("cannot_change_own_admin", "You cannot change your own admin flag", "/admin",
			"ask another admin")
	}
	ctx = context.WithoutCancel(ctx)
	if displayName != nil && *displayName != u.DisplayName {
		u.DisplayName, u.UpdatedAt = *displayName, s.now()
		if err := s.store.UpdateUser(ctx, u); err != nil {
			return domain.User{}, storeErr("update user", err)
		}
		s.audit(ctx, domain.AuditEvent{Type: AuditUserUpdated, Actor: actor.Subject, Subject: username,
			Detail: map[string]string{"field": "display_name"}})
	}
	if admin != nil && *admin != u.Admin {
		if u, err = s.updateAdminFlag(ctx, actor, username, *admin); err != nil {
			return domain.User{}, err
		}
	}
	u.PasswordHash = ""
	return u, nil
}

// updateAdminFlag sets a user's admin flag. Removing it re-counts the enabled
// admins after the write and puts the flag back if none is left: two admins
// removing each other at once through two instances both see two admins before
// writing, but the later write's re-count sees both writes, so at least one
// admin always remains (at worst both flags are put back).
func (s *Service) updateAdminFlag(ctx context.Context, actor domain.Principal, username string, admin bool) (domain.User, error) {
	u, err := s.getUser(ctx, username)
	if err != nil {
		return domain.User{}, err
	}
	if u.Admin == admin {
		return u, nil
	}
	if !admin {
		if n, err := s.countAdmins(ctx, username); err != nil {
			return domain.User{}, err
		} else if n == 0 {
			return domain.User{}, errLastAdmin()
		}
	}
	u.Admin, u.UpdatedAt = admin, s.now()
	if err := s.store.UpdateUser(ctx, u); err != nil {
		return domain.User{}, storeErr("update user", err)
	}
	if !admin {
		if n, err := s.countAdmins(ctx, ""); err != nil {
			return domain.User{}, err
		} else if n == 0 {
			u.Admin, u.UpdatedAt = true, s.now()
			if err := s.store.UpdateUser(ctx, u); err != nil {
				return domain.User{}, storeErr("update user", err)
			}
			return domain.User{}, errLastAdmin()
		}
	}
	// The flag is read from the user record at every authentication: the change
	// applies at once here and within RevocationCheckInterval elsewhere.
	s.allow.drop(userKey(username))
	typ := AuditAdminGranted
	if !admin {
		typ = AuditAdminRevoked
	}
	s.audit(ctx, domain.AuditEvent{Type: typ, Actor: actor.Subject, Subject: username})
	return u, nil
}

// countAdmins counts the enabled admins other than except.
func (s *Service) countAdmins(ctx context.Context, except string) (int, error) {
	users, err := s.store.ListUsers(ctx)
	if err != nil {
		return 0, storeErr("list users", err)
	}
	n := 0
	for _, u := range users {
		if u.Admin && !u.Disabled && u.Username != except {
			n++
		}
	}
	return n, nil
}

func errLastAdmin() error {
	return domain.Errorf(domain.KindConflict, "last_admin", "This is the last admin; make another admin first")
}

func errInvalidCursor() error {
	return domain.Errorf(domain.KindBadRequest, "invalid_cursor", "The cursor is not one this list gave")
}

// pageAfter returns the page of items after the one whose key is cursor ("" =
// from the start) and the cursor of the next page ("" when none).
func pageAfter[T any](items []T, key func(T) string, cursor string, limit int) ([]T, string, error) {
	if limit <= 0 {
		limit = DefaultListLimit
	}
	limit = min(limit, MaxListLimit)
	start := 0
	if cursor != "" {
		i := slices.IndexFunc(items, func(x T) bool { return key(x) == cursor })
		if i < 0 {
			return nil, "", errInvalidCursor()
		}
		start = i + 1
	}
	end := min(start+limit, len(items))
	page := items[start:end]
	next := ""
	if end < len(items) && len(page) > 0 {
		next = key(page[len(page)-1])
	}
	return page, next, nil
}

// ListUsers returns one page of the users, ordered by username, without their
// password hashes. Admins only. The cursor is the last username of the
// previous page.
//
// Errors: 403 forbidden; 400 invalid_cursor.
func (s *Service) ListUsers(ctx context.Context, actor domain.Principal, cursor string, limit int) ([]domain.User, string, error) {
	if !isAdmin(actor) {
		return nil, "", errForbidden()
	}
	users, err := s.store.ListUsers(ctx)
	if err != nil {
		return nil, "", storeErr("list users", err)
	}
	if cursor != "" && !usernameRE.MatchString(cursor) {
		return nil, "", errInvalidCursor()
	}
	// A cursor whose user was deleted meanwhile still pages on: users are
	// ordered by name, so the page starts after it.
	start, _ := slices.BinarySearchFunc(users, cursor, func(u domain.User, c string) int {
		switch {
		case u.Username < c:
			return -1
		case u.Username > c:
			return 1
		}
		return 0
	})
	if cursor != "" && start < len(users) && users[start].Username == cursor {
		start++
	}
	if limit <= 0 {
		limit = DefaultListLimit
	}
	limit = min(limit, MaxListLimit)
	end := min(start+limit, len(users))
	page := slices.Clone(users[start:end])
	for i := range page {
		page[i].PasswordHash = ""
	}
	next := ""
	if end < len(users) {
		next = page[len(page)-1].Username
	}
	return page, next, nil
}

// ListMembers returns one page of a project's members, ordered by username,
// with their display names. Managers of the project and admins only.
//
// Errors: 404 project_not_found; 403 forbidden; 400 invalid_cursor.
func (s *Service) ListMembers(ctx context.Context, actor domain.Principal, projectID, cursor string, limit int) ([]MemberView, string, error) {
	if err := s.requireManager(ctx, actor, projectID); err != nil {
		return nil, "", err
	}
	ms, err := s.store.ListMemberships(ctx, domain.MembershipFilter{ProjectID: projectID})
	if err != nil {
		return nil, "", storeErr("list memberships", err)
	}
	page, next, err := pageAfter(ms, func(m domain.Membership) string { return m.Username }, cursor, limit)
	if err != nil {
		return nil, "", err
	}
	out := make([]MemberView, len(page))
	for i, m := range page {
		out[i].Membership = m
		u, err := s.store.GetUser(ctx, m.Username)
		switch {
		case err == nil:
			out[i].DisplayName = u.DisplayName
		case !errors.Is(err, domain.ErrNotFound):
			return nil, "", storeErr("get user", err)
		}
	}
	return out, next, nil
}

// RemoveMember ends a user's membership of a project. Its access to the
// project ends at once on every instance: each request reads the membership
// from the store (the project rule of the HTTP layer). Managers of the project
// and admins only.
//
// Errors: 404 project_not_found; 403 forbidden; 404 member_not_found.
func (s *Service) RemoveMember(ctx context.Context, actor domain.Principal, projectID, username string) error {
	if err := s.requireManager(ctx, actor, projectID); err != nil {
		return err
	}
	m, err := s.store.GetMembership(ctx, projectID, username)
	if err == nil {
		err = s.store.DeleteMembership(context.WithoutCancel(ctx), projectID, username)
	}
	switch {
	case errors.Is(err, domain.ErrNotFound):
		return domain.Errorf(domain.KindNotFound, "member_not_found", "This user is not a member of the project")
	case err != nil:
		return storeErr("delete membership", err)
	}
	s.audit(ctx, domain.AuditEvent{Type: AuditMemberRemoved, Actor: actor.Subject, ProjectID: projectID, Subject: username,
		Detail: map[string]string{"role": string(m.Role)}})
	return nil
}

// ListDevices returns one page of a project's devices in the order they were
// created, each with its state and last sync time. Managers of the project and
// admins only. The cursor is the last device id of the previous page.
//
// Errors: 404 project_not_found; 403 forbidden; 400 invalid_cursor.
func (s *Service) ListDevices(ctx context.Context, actor domain.Principal, projectID, cursor string, limit int) ([]DeviceView, string, error) {
	if err := s.requireManager(ctx, actor, projectID); err != nil {
		return nil, "", err
	}
	ds, err := s.store.ListDevices(ctx, projectID)
	if err != nil {
		return nil, "", storeErr("list devices", err)
	}
	page, next, err := pageAfter(ds, func(d domain.Device) string { return d.ID }, cursor, limit)
	if err != nil {
		return nil, "", err
	}
	seen, err := s.store.DeviceLastSeen(ctx, projectID)
	if err != nil {
		return nil, "", storeErr("device last seen", err)
	}
	out := make([]DeviceView, len(page))
	for i, d := range page {
		d.EnrollmentHash = ""
		v := DeviceView{Device: d, State: DeviceStatePending}
		switch {
		case d.RevokedAt != nil:
			v.State = DeviceStateRevoked
		case d.EnrolledAt != nil:
			v.State = DeviceStateActive
		}
		if t, ok := seen[d.ID]; ok {
			v.LastSeenAt = &t
		}
		out[i] = v
	}
	return out, next, nil
}
