package api

import (
	"context"
	"net/http"
	"net/url"
	"strconv"
	"time"
)

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

// AuditQuery selects audit events for ListAudit. Zero fields match everything.
type AuditQuery struct {
	Type    string
	Actor   string
	Project string
	// Since is inclusive, Until exclusive.
	Since, Until time.Time
	// Cursor is the Next of the previous page.
	Cursor string
	// Limit is the page size (the server's default when 0; at most 1000).
	Limit int
}

// values encodes q as the query of GET /v1/audit.
func (q AuditQuery) values() url.Values {
	v := url.Values{}
	set := func(k, s string) {
		if s != "" {
			v.Set(k, s)
		}
	}
	set("type", q.Type)
	set("actor", q.Actor)
	set("project", q.Project)
	if !q.Since.IsZero() {
		v.Set("since", q.Since.UTC().Format(time.RFC3339Nano))
	}
	if !q.Until.IsZero() {
		v.Set("until", q.Until.UTC().Format(time.RFC3339Nano))
	}
	set("cursor", q.Cursor)
	if q.Limit > 0 {
		v.Set("limit", strconv.Itoa(q.Limit))
	}
	return v
}

// Login calls POST /v1/auth/token. On success the client sends the new access
// token with its next requests; keeping the refresh token is the caller's job.
// A wrong username or password is a *Problem with Code "invalid_credentials";
// too many failures one with Status 429 and RetryAfter.
func (c *Client) Login(ctx context.Context, username, password string) (TokenResponse, error) {
	var out TokenResponse
	if err := c.Do(ctx, http.MethodPost, "/v1/auth/token", TokenRequest{Username: username, Password: password}, &out); err != nil {
		return TokenResponse{}, err
	}
	c.SetToken(out.AccessToken)
	return out, nil
}

// Refresh calls POST /v1/auth/refresh: the refresh token is spent and a new pair
// answered, whose access token the client then sends. An unknown, spent or
// revoked refresh token is a *Problem with Code "invalid_grant": log in again.
func (c *Client) Refresh(ctx context.Context, refreshToken string) (TokenResponse, error) {
	var out TokenResponse
	if err := c.Do(ctx, http.MethodPost, "/v1/auth/refresh", RefreshRequest{RefreshToken: refreshToken}, &out); err != nil {
		return TokenResponse{}, err
	}
	c.SetToken(out.AccessToken)
	return out, nil
}

// Revoke calls POST /v1/auth/revoke: logout. The session of the refresh token
// ends, its access tokens included.
func (c *Client) Revoke(ctx context.Context, refreshToken string) error {
	return c.Do(ctx, http.MethodPost, "/v1/auth/revoke", RevokeRequest{RefreshToken: refreshToken}, nil)
}

// CreateUser calls POST /v1/users (admins).
func (c *Client) CreateUser(ctx context.Context, req CreateUserRequest) (User, error) {
	var out User
	err := c.Do(ctx, http.MethodPost, "/v1/users", req, &out)
	return out, err
}

// RevokeUser calls POST /v1/users/{username}/revoke (admins): the user is signed
// out everywhere.
func (c *Client) RevokeUser(ctx context.Context, username string) error {
	return c.Do(ctx, http.MethodPost, "/v1/users/"+url.PathEscape(username)+"/revoke", nil, nil)
}

// DisableUser calls POST /v1/users/{username}/disable (admins): the user can no
// longer log in and is signed out everywhere.
func (c *Client) DisableUser(ctx context.Context, username string) error {
	return c.Do(ctx, http.MethodPost, "/v1/users/"+url.PathEscape(username)+"/disable", nil, nil)
}

// EnableUser calls POST /v1/users/{username}/enable (admins).
func (c *Client) EnableUser(ctx context.Context, username string) error {
	return c.Do(ctx, http.MethodPost, "/v1/users/"+url.PathEscape(username)+"/enable", nil, nil)
}

// CreateProject calls POST /v1/projects (admins).
func (c *Client) CreateProject(ctx context.Context, id, title string) (Project, error) {
	var out Project
	err := c.Do(ctx, http.MethodPost, "/v1/projects", CreateProjectRequest{ID: id, Title: title}, &out)
	return out, err
}

// ListProjects calls GET /v1/projects: the caller's projects with its role in
// each.
func (c *Client) ListProjects(ctx context.Context) ([]Project, error) {
	var out ProjectList
	if err := c.Do(ctx, http.MethodGet, "/v1/projects", nil, &out); err != nil {
		return nil, err
	}
	return out.Projects, nil
}

// SetMember calls PUT /v1/projects/{project}/members/{username} (managers).
func (c *Client) SetMember(ctx context.Context, project, username, role string) (Member, error) {
	var out Member
	err := c.Do(ctx, http.MethodPut, "/v1/projects/"+url.PathEscape(project)+"/members/"+url.PathEscape(username),
		PutMemberRequest{Role: role}, &out)
	return out, err
}

// CreateDevice calls POST /v1/projects/{project}/devices (managers). The
// enrollment code in the answer is shown this once.
func (c *Client) CreateDevice(ctx context.Context, project, name string) (CreateDeviceResponse, error) {
	var out CreateDeviceResponse
	err := c.Do(ctx, http.MethodPost, "/v1/projects/"+url.PathEscape(project)+"/devices", CreateDeviceRequest{Name: name}, &out)
	return out, err
}

// Enroll calls POST /v1/devices/enroll with a device's one-use code. On success
// the client sends the device's access token with its next requests; the answer
// also names the device and its project.
func (c *Client) Enroll(ctx context.Context, code string, info map[string]string) (TokenResponse, error) {
	var out TokenResponse
	if err := c.Do(ctx, http.MethodPost, "/v1/devices/enroll", EnrollRequest{EnrollmentCode: code, DeviceInfo: info}, &out); err != nil {
		return TokenResponse{}, err
	}
	c.SetToken(out.AccessToken)
	return out, nil
}

// RevokeDevice calls DELETE /v1/projects/{project}/devices/{device_id}
// (managers).
func (c *Client) RevokeDevice(ctx context.Context, project, deviceID string) error {
	return c.Do(ctx, http.MethodDelete, "/v1/projects/"+url.PathEscape(project)+"/devices/"+url.PathEscape(deviceID), nil, nil)
}

// ListAudit calls GET /v1/audit (admins): one page of events, newest first.
func (c *Client) ListAudit(ctx context.Context, q AuditQuery) (AuditList, error) {
	path := "/v1/audit"
	if v := q.values(); len(v) > 0 {
		path += "?" + v.Encode()
	}
	var out AuditList
	err := c.Do(ctx, http.MethodGet, path, nil, &out)
	return out, err
}

// String redacts the tokens, so that a TokenResponse printed by mistake (a debug
// line, an error wrapped with %v) leaks nothing.
func (t TokenResponse) String() string { return "TokenResponse{[redacted]}" }

// GoString redacts the tokens for %#v.
func (t TokenResponse) GoString() string { return t.String() }
