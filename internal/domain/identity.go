package domain

import "time"

// Role is a user's or device's role inside one project.
type Role string

// The project roles of protocol.md §1.
const (
	RoleManager    Role = "manager"
	RoleDesigner   Role = "designer"
	RoleAnalyst    Role = "analyst"
	RoleEnumerator Role = "enumerator"
)

// Valid reports whether r is one of the four project roles.
func (r Role) Valid() bool {
	switch r {
	case RoleManager, RoleDesigner, RoleAnalyst, RoleEnumerator:
		return true
	}
	return false
}

// User is a person who logs in with a username and password.
type User struct {
	Username     string
	DisplayName  string
	PasswordHash string // encoded argon2id hash with its parameters and salt
	Admin        bool
	Disabled     bool
	// TokensValidAfter invalidates every access token issued before it (revoking a
	// user stops its access tokens, not only its refresh tokens).
	TokensValidAfter time.Time
	CreatedAt        time.Time
	UpdatedAt        time.Time
}

// Project groups forms, records and members.
type Project struct {
	ID        string
	Title     string
	CreatedBy string
	CreatedAt time.Time
}

// Membership gives a user a role in a project.
type Membership struct {
	ProjectID string
	Username  string
	Role      Role
	UpdatedAt time.Time
}

// Device is an enrolled (or enrollable) tablet. It acts as an enumerator of its
// project under the subject "device:<id>".
type Device struct {
	ID        string
	ProjectID string
	Name      string
	// EnrollmentHash is the sha256 (hex) of the one-use enrollment code; the code
	// itself is never stored.
	EnrollmentHash      string
	EnrollmentExpiresAt time.Time
	EnrolledAt          *time.Time // set once, when the code is used
	Info                map[string]string
	RevokedAt           *time.Time
	CreatedBy           string
	CreatedAt           time.Time
}

// TokenFamily is the chain of refresh tokens that descend from one login or one
// enrollment. Replaying a spent token revokes the whole family.
type TokenFamily struct {
	ID        string
	Subject   string // a username, or "device:<id>"
	DeviceID  string // set for device families
	RevokedAt *time.Time
	CreatedAt time.Time
}

// RefreshToken is one opaque refresh token, stored by the sha256 (hex) of its value.
type RefreshToken struct {
	Hash     string
	FamilyID string
	Subject  string
	// Parent is the Hash of the token whose refresh issued this one, so that a
	// client retrying a refresh whose answer it lost can be told from a replay
	// (identity's reuse grace). "" for the first token of a family and for a
	// token issued by a grace reuse. A token is the parent of at most one other.
	Parent    string
	ExpiresAt time.Time
	SpentAt   *time.Time
	CreatedAt time.Time
}

// SigningKey is a JWT signing key shared by every server instance through the store.
type SigningKey struct {
	ID        string // the JWT "kid"
	Algorithm string // "EdDSA"
	// PrivateKey is the Ed25519 seed sealed with a secret the store does not
	// hold (identity's seal format), or the bare 32-byte seed in a store written
	// before sealing or without a secret.
	PrivateKey []byte
	CreatedAt  time.Time
	// RetiredAt is set when a newer key took over signing; the key still verifies
	// tokens until they expire.
	RetiredAt *time.Time
}

// AuditEvent is one append-only security event.
type AuditEvent struct {
	ID         string // assigned by the store: sortable, increasing in commit order per instance
	Time       time.Time
	Type       string // e.g. "login", "login_failed", "family_revoked", "role_set"
	Actor      string // who did it ("" for anonymous)
	ProjectID  string
	Subject    string // what it was done to
	RemoteAddr string
	Detail     map[string]string
}

// AuditFilter selects audit events. Zero fields match everything.
type AuditFilter struct {
	Type      string
	Actor     string
	ProjectID string
	Since     time.Time // inclusive
	Until     time.Time // exclusive
}

// Principal is the authenticated caller of a request: a user, or a device acting
// as an enumerator of its one project.
type Principal struct {
	Subject       string // the username, or "device:<id>"
	Username      string // "" for a device
	DeviceID      string // "" for a user
	DeviceProject string // the project a device belongs to
	Admin         bool
	TokenID       string // the access token's jti
}

// IsDevice reports whether the principal is an enrolled device.
func (p Principal) IsDevice() bool { return p.DeviceID != "" }

// DeviceSubject is the token subject of a device.
func DeviceSubject(deviceID string) string { return "device:" + deviceID }
