package identity

import (
	"context"
	"errors"
	"regexp"
	"strconv"
	"unicode"
	"unicode/utf8"

	"github.com/fieldsync/fieldsync/internal/domain"
)

// BootstrapSetting is the store setting that marks a store as bootstrapped.
const BootstrapSetting = "bootstrap"

// AdminUsername is the user Bootstrap creates.
const AdminUsername = "admin"

var usernameRE = regexp.MustCompile(`^[a-z0-9][a-z0-9._-]{1,63}$`)

// maxDisplayName bounds free-text names (display names, titles, device names).
const maxDisplayName = 200

// Bootstrap creates the user admin (an admin) on a store that was never
// bootstrapped, with adminPassword, or with a random password when adminPassword is
// "" — then generatedPassword holds it, for main to print once. On a bootstrapped
// store it does nothing and answers "", even if admin was since disabled: a store
// must never grow a second admin with a known password behind its operators' backs.
//
// Two instances starting at once on one store create admin exactly once: the
// username is unique in the store, so one CreateUser wins and the other answers ""
// (it did not create the user, so it has no password to print). The marker is
// written after the user, not before: if the process dies in between, the next
// start finds admin already there and only writes the marker; the other order could
// leave a marked store with no admin at all. If writing the marker fails after the
// user was created, the error comes back together with the generated password,
// which main must still print, because no later call can recover it.
//
// A weak adminPassword is refused (422 weak_password) before anything is written.
func (s *Service) Bootstrap(ctx context.Context, adminPassword string) (generatedPassword string, err error) {
	return s.bootstrap(ctx, adminPassword, false)
}

// BootstrapGeneratedPassword is Bootstrap with a password the caller generated
// (the server's first start writes one to a file before calling it, so that a
// start that fails later does not lose it). The password is not checked for
// strength, and the audit event and log of the creation say generated_password
// true, as they do when Bootstrap generates the password itself.
func (s *Service) BootstrapGeneratedPassword(ctx context.Context, password string) (string, error) {
	return s.bootstrap(ctx, password, true)
}

func (s *Service) bootstrap(ctx context.Context, adminPassword string, callerGenerated bool) (generatedPassword string, err error) {
	_, err = s.store.GetSetting(ctx, BootstrapSetting)
	switch {
	case err == nil:
		return "", nil
	case !errors.Is(err, domain.ErrNotFound):
		return "", storeErr("get bootstrap marker", err)
	}
	password, generated := adminPassword, callerGenerated && adminPassword != ""
	if password == "" {
		if password, err = randomPassword(); err != nil {
			return "", err
		}
		generated = true
	} else if err := checkPassword(password, AdminUsername); !generated && err != nil {
		return "", err
	}
	hash, err := s.hashPassword(ctx, password)
	if err != nil {
		return "", err
	}
	now := s.now()
	created := true
	err = s.store.CreateUser(ctx, domain.User{Username: AdminUsername, DisplayName: "Administrator", PasswordHash: hash,
		Admin: true, CreatedAt: now, UpdatedAt: now})
	switch {
	case errors.Is(err, domain.ErrExists):
		created = false
	case err != nil:
		return "", storeErr("create admin", err)
	}
	if created {
		s.audit(ctx, domain.AuditEvent{Type: AuditAdminBootstrap, Subject: AdminUsername,
			Detail: map[string]string{"generated_password": strconv.FormatBool(generated)}})
		s.log.Info("identity: bootstrap created the admin user", "username", AdminUsername, "generated_password", generated)
	}
	if _, _, err := s.store.PutSettingIfAbsent(ctx, BootstrapSetting, now.Format("2006-01-02T15:04:05.000Z07:00")); err != nil {
		err = storeErr("put bootstrap marker", err)
		if created && generated {
			return password, err
		}
		return "", err
	}
	if created && generated {
		return password, nil
	}
	return "", nil
}

// CreateUser creates a user (not an admin). Admins only.
//
// Errors: 403 forbidden; 422 invalid_username (the rule is
// ^[a-z0-9][a-z0-9._-]{1,63}$), weak_password, invalid_display_name; 409 user_exists.
// The returned user carries no password hash.
func (s *Service) CreateUser(ctx context.Context, actor domain.Principal, username, password, displayName string) (domain.User, error) {
	if !isAdmin(actor) {
		return domain.User{}, errForbidden()
	}
	if !usernameRE.MatchString(username) {
		return domain.User{}, invalid("invalid_username", "The username is not acceptable", "/username",
			"must match ^[a-z0-9][a-z0-9._-]{1,63}$")
	}
	if err := checkPassword(password, username); err != nil {
		return domain.User{}, err
	}
	if !validText(displayName, 0) {
		return domain.User{}, invalid("invalid_display_name", "The display name is not acceptable", "/display_name",
			"must be at most 200 characters of text without control characters")
	}
	hash, err := s.hashPassword(ctx, password)
	if err != nil {
		return domain.User{}, err
	}
	now := s.now()
	u := domain.User{Username: username, DisplayName: displayName, PasswordHash: hash, CreatedAt: now, UpdatedAt: now}
	switch err := s.store.CreateUser(ctx, u); {
	case errors.Is(err, domain.ErrExists):
		return domain.User{}, domain.Errorf(domain.KindConflict, "user_exists", "A user with this username exists")
	case err != nil:
		return domain.User{}, storeErr("create user", err)
	}
	// A negative "no such user" answer may be cached from a forged token.
	s.allow.drop(userKey(username))
	s.audit(ctx, domain.AuditEvent{Type: AuditUserCreated, Actor: actor.Subject, Subject: username})
	u.PasswordHash = ""
	return u, nil
}

// SetUserDisabled disables or re-enables a user. Admins only; an admin cannot
// disable itself (the last admin would lock everyone out). Disabling also revokes
// every session of the user and stops its access tokens (at once on this instance,
// within RevocationCheckInterval elsewhere); re-enabling does not bring them back.
//
// Errors: 403 forbidden; 422 cannot_disable_self; 404 user_not_found.
func (s *Service) SetUserDisabled(ctx context.Context, actor domain.Principal, username string, disabled bool) error {
	if !isAdmin(actor) {
		return errForbidden()
	}
	if disabled && username == actor.Username {
		return invalid("cannot_disable_self", "You cannot disable your own account", "/username", "is the caller")
	}
	u, err := s.getUser(ctx, username)
	if err != nil {
		return err
	}
	if u.Disabled == disabled {
		return nil
	}
	now := s.now()
	u.Disabled, u.UpdatedAt = disabled, now
	if disabled {
		u.TokensValidAfter = now
	}
	if err := s.store.UpdateUser(ctx, u); err != nil {
		return storeErr("update user", err)
	}
	s.allow.drop(userKey(username))
	if !disabled {
		s.audit(ctx, domain.AuditEvent{Type: AuditUserEnabled, Actor: actor.Subject, Subject: username})
		return nil
	}
	s.audit(ctx, domain.AuditEvent{Type: AuditUserDisabled, Actor: actor.Subject, Subject: username})
	return s.revokeSubject(ctx, actor.Subject, username, "", "user_disabled")
}

// RevokeUser signs a user out everywhere: every access token issued until now stops
// (TokensValidAfter = now) and every refresh-token family is revoked. The user may
// log in again. Admins may revoke anyone; a user may revoke itself.
//
// Errors: 403 forbidden; 404 user_not_found.
func (s *Service) RevokeUser(ctx context.Context, actor domain.Principal, username string) error {
	if !isAdmin(actor) && (actor.IsDevice() || actor.Username == "" || actor.Username != username) {
		return errForbidden()
	}
	u, err := s.getUser(ctx, username)
	if err != nil {
		return err
	}
	now := s.now()
	u.TokensValidAfter, u.UpdatedAt = now, now
	if err := s.store.UpdateUser(ctx, u); err != nil {
		return storeErr("update user", err)
	}
	s.allow.drop(userKey(username))
	s.audit(ctx, domain.AuditEvent{Type: AuditUserRevoked, Actor: actor.Subject, Subject: username})
	return s.revokeSubject(ctx, actor.Subject, username, "", "user_revoked")
}

// revokeSubject revokes every token family of a user or device and audits how many.
func (s *Service) revokeSubject(ctx context.Context, actor, subject, projectID, reason string) error {
	n, err := s.store.RevokeSubjectFamilies(context.WithoutCancel(ctx), subject, s.now())
	if err != nil {
		return storeErr("revoke families", err)
	}
	// The family cache is keyed by family id, which is not known here; the user or
	// device entry just dropped already refuses the subject's tokens.
	if n > 0 {
		s.audit(ctx, domain.AuditEvent{Type: AuditFamilyRevoked, Actor: actor, Subject: subject, ProjectID: projectID,
			Detail: map[string]string{"reason": reason, "families": strconv.Itoa(n)}})
	}
	return nil
}

func (s *Service) getUser(ctx context.Context, username string) (domain.User, error) {
	u, err := s.store.GetUser(ctx, username)
	switch {
	case errors.Is(err, domain.ErrNotFound):
		return domain.User{}, errUserNotFound()
	case err != nil:
		return domain.User{}, storeErr("get user", err)
	}
	return u, nil
}

// validText accepts valid UTF-8 of minLen to maxDisplayName characters without
// control characters (they garble logs and CSV exports).
func validText(s string, minLen int) bool {
	if !utf8.ValidString(s) {
		return false
	}
	n := utf8.RuneCountInString(s)
	if n < minLen || n > maxDisplayName {
		return false
	}
	for _, r := range s {
		if unicode.IsControl(r) {
			return false
		}
	}
	return true
}
