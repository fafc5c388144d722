package api

import "time"

// The project roles of protocol.md §1.
const (
	RoleManager    = "manager"
	RoleDesigner   = "designer"
	RoleAnalyst    = "analyst"
	RoleEnumerator = "enumerator"
)

// TokenRequest is the body of POST /v1/auth/token.
type TokenRequest struct {
	Username string `json:"username"`
	Password string `json:"password"`
}

// TokenResponse is a token pair, answered by /v1/auth/token, /v1/auth/refresh and
// /v1/devices/enroll.
type TokenResponse struct {
	AccessToken string `json:"access_token"`
	// TokenType is always "Bearer".
	TokenType string `json:"token_type"`
	// ExpiresIn is the access token's lifetime in seconds.
	ExpiresIn    int64  `json:"expires_in"`
	RefreshToken string `json:"refresh_token"`
	// DeviceID and Project are set by enrollment only: the tablet needs both to
	// build its sync paths and to show which project it collects for.
	DeviceID string `json:"device_id,omitempty"`
	Project  string `json:"project,omitempty"`
}

// TokenTypeBearer is the only TokenResponse.TokenType.
const TokenTypeBearer = "Bearer"

// RefreshRequest is the body of POST /v1/auth/refresh and POST /v1/auth/revoke.
type RefreshRequest struct {
	RefreshToken string `json:"refresh_token"`
}

// RevokeRequest is the body of POST /v1/auth/revoke.
type RevokeRequest = RefreshRequest

// CreateUserRequest is the body of POST /v1/users.
type CreateUserRequest struct {
	Username    string `json:"username"`
	Password    string `json:"password"`
	DisplayName string `json:"display_name,omitempty"`
}

// User is a user as the server shows it; the password hash never leaves the
// server.
type User struct {
	Username    string    `json:"username"`
	DisplayName string    `json:"display_name,omitempty"`
	Admin       bool      `json:"admin"`
	Disabled    bool      `json:"disabled,omitempty"`
	CreatedAt   time.Time `json:"created_at"`
}

// PutMemberRequest is the body of PUT /v1/projects/{project}/members/{username}.
type PutMemberRequest struct {
	Role string `json:"role"`
}

// Member is one user's role in a project.
type Member struct {
	Project   string    `json:"project"`
	Username  string    `json:"username"`
	Role      string    `json:"role"`
	UpdatedAt time.Time `json:"updated_at"`
}

// MemberList is the list of a project's members.
type MemberList struct {
	Members []Member `json:"members"`
}

// CreateDeviceRequest is the body of POST /v1/projects/{project}/devices.
type CreateDeviceRequest struct {
	Name string `json:"name"`
}

// CreateDeviceResponse answers POST /v1/projects/{project}/devices. The
// enrollment code is shown once: the server keeps only its hash.
type CreateDeviceResponse struct {
	DeviceID       string    `json:"device_id"`
	EnrollmentCode string    `json:"enrollment_code"`
	ExpiresAt      time.Time `json:"expires_at"`
}

// EnrollRequest is the body of POST /v1/devices/enroll.
type EnrollRequest struct {
	EnrollmentCode string            `json:"enrollment_code"`
	DeviceInfo     map[string]string `json:"device_info,omitempty"`
}

// Device is an enrolled (or enrollable) tablet as managers see it.
type Device struct {
	ID         string            `json:"device_id"`
	Project    string            `json:"project"`
	Name       string            `json:"name"`
	Info       map[string]string `json:"device_info,omitempty"`
	EnrolledAt *time.Time        `json:"enrolled_at,omitempty"`
	RevokedAt  *time.Time        `json:"revoked_at,omitempty"`
	CreatedAt  time.Time         `json:"created_at"`
}

// DeviceList is the list of a project's devices.
type DeviceList struct {
	Devices []Device `json:"devices"`
}

// AuditEvent is one entry of the append-only security log.
type AuditEvent struct {
	ID         string            `json:"id"`
	Time       time.Time         `json:"time"`
	Type       string            `json:"type"`
	Actor      string            `json:"actor,omitempty"`
	Project    string            `json:"project,omitempty"`
	Subject    string            `json:"subject,omitempty"`
	RemoteAddr string            `json:"remote_addr,omitempty"`
	Detail     map[string]string `json:"detail,omitempty"`
}

// AuditList is one page of audit events, newest first; Next is the cursor of the
// following page, "" on the last one.
type AuditList struct {
	Events []AuditEvent `json:"events"`
	Next   string       `json:"next,omitempty"`
}
