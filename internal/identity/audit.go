package identity

import (
	"context"
	"fmt"
	"slices"
	"strings"

	"github.com/fieldsync/fieldsync/internal/audit"
	"github.com/fieldsync/fieldsync/internal/domain"
)

// Audit event types written by this package. Detail keys never hold a secret.
const (
	// AuditLogin is a successful login; detail family.
	AuditLogin = "login"
	// AuditLoginFailed is a refused login; detail reason: unknown_user,
	// bad_password, disabled or throttled (once per lockout, with scope).
	AuditLoginFailed = "login_failed"
	// AuditFamilyRevoked is a revoked refresh-token family; detail reason: replay,
	// logout, user_revoked, user_disabled or device_revoked.
	AuditFamilyRevoked = "family_revoked"
	// AuditRefreshReused is a spent refresh token honoured once more within
	// Config.RefreshReuseGrace (a client retrying a refresh whose answer it
	// lost; see Refresh); detail family and spent_ms, how long after its spend
	// the token came back. An admin who sees many of one subject, or from
	// another address than its usual one, may be looking at a stolen token.
	AuditRefreshReused = "refresh_reused"
	// AuditUserCreated is a new user.
	AuditUserCreated = "user_created"
	// AuditUserDisabled is a disabled user.
	AuditUserDisabled = "user_disabled"
	// AuditUserEnabled is a re-enabled user.
	AuditUserEnabled = "user_enabled"
	// AuditUserRevoked is a user signed out everywhere.
	AuditUserRevoked = "user_revoked"
	// AuditProjectCreated is a new project.
	AuditProjectCreated = "project_created"
	// AuditRoleSet is a membership created or changed; detail role.
	AuditRoleSet = "role_set"
	// AuditDeviceCreated is a new device with its enrollment code; detail name.
	AuditDeviceCreated = "device_created"
	// AuditDeviceEnrolled is a used enrollment code; detail family.
	AuditDeviceEnrolled = "device_enrolled"
	// AuditEnrollFailed is a refused enrollment; detail reason: invalid_code or
	// throttled.
	AuditEnrollFailed = "enrollment_failed"
	// AuditDeviceRevoked is a revoked device.
	AuditDeviceRevoked = "device_revoked"
	// AuditKeysRotated is a signing-key rotation; subject is the new kid.
	AuditKeysRotated = "keys_rotated"
	// AuditAdminBootstrap is the creation of the admin user at first start.
	AuditAdminBootstrap = "admin_bootstrapped"
)

// audit appends a security event (see audit.Append: it never fails the
// operation it records).
func (s *Service) audit(ctx context.Context, e domain.AuditEvent) {
	audit.Append(ctx, s.store, s.log, s.now, e)
}

// Audit paging bounds.
const (
	// DefaultAuditLimit is the page size when the caller gives none.
	DefaultAuditLimit = 100
	// MaxAuditLimit caps a page, so one request cannot read the whole log at once.
	MaxAuditLimit = 1000
)

// ListAudit returns one page of audit events, newest first, and the cursor of the
// next page ("" when none). Admins only (403 forbidden otherwise). limit ≤ 0 means
// DefaultAuditLimit; it is capped at MaxAuditLimit.
func (s *Service) ListAudit(ctx context.Context, actor domain.Principal, f domain.AuditFilter, cursor string, limit int) ([]domain.AuditEvent, string, error) {
	if !isAdmin(actor) {
		return nil, "", errForbidden()
	}
	if f.Type != "" && !slices.Contains(AuditTypes, f.Type) {
		// A misspelt type would list nothing, which reads as "it never
		// happened".
		return nil, "", &domain.Error{Kind: domain.KindBadRequest, Code: "invalid_type", Title: "No audit event has this type",
			Detail: fmt.Sprintf("%q is not one of %s", f.Type, strings.Join(AuditTypes, ", "))}
	}
	if limit <= 0 {
		limit = DefaultAuditLimit
	}
	limit = min(limit, MaxAuditLimit)
	events, next, err := s.store.ListAudit(ctx, f, cursor, limit)
	if err != nil {
		return nil, "", storeErr("list audit", err)
	}
	return events, next, nil
}

// AuditTypes are the event types the audit log holds, sorted: identity's
// security events and the data events of package audit.
var AuditTypes = func() []string {
	t := append(slices.Clone(audit.DataTypes), AuditAdminBootstrap, AuditAdminGranted, AuditAdminRevoked, AuditDeviceCreated, AuditDeviceEnrolled, AuditDeviceRevoked, AuditEnrollFailed, AuditFamilyRevoked, AuditKeysRotated, AuditLogin, AuditLoginFailed, AuditMemberRemoved, AuditPasswordChanged, AuditPasswordReset, AuditProjectCreated, AuditRefreshReused, AuditRoleSet, AuditUserCreated, AuditUserDisabled, AuditUserEnabled, AuditUserRevoked, AuditUserUpdated, AuditOpenRosaKeyCreated)
	slices.Sort(t)
	return t
}()

// isAdmin reports whether p is an admin user (a device never is).
func isAdmin(p domain.Principal) bool { return p.Admin && !p.IsDevice() && p.Username != "" }
