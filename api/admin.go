package api

import (
	"context"
	"net/http"
	"net/url"
	"strconv"
	"time"
)

// The device states of a device list.
const (
	DeviceStatePending = "pending" // its enrollment code was not used yet
	DeviceStateActive  = "active"  // enrolled, not revoked
	DeviceStateRevoked = "revoked"
)

// UserEntry is one user of GET /v1/users and the answer of PATCH
// /v1/users/{username}; every field is always present.
type UserEntry struct {
	Username    string    `json:"username"`
	DisplayName string    `json:"display_name"`
	Admin       bool      `json:"admin"`
	Disabled    bool      `json:"disabled"`
	CreatedAt   time.Time `json:"created_at"`
}

// UserList is one page of GET /v1/users; Next is the cursor of the following
// page, "" on the last one.
type UserList struct {
	Items []UserEntry `json:"items"`
	Next  string      `json:"next,omitempty"`
}

// ChangePasswordRequest is the body of POST /v1/auth/password.
type ChangePasswordRequest struct {
	CurrentPassword string `json:"current_password"`
	NewPassword     string `json:"new_password"`
	// RevokeOtherSessions signs out every other session of the user; the one
	// of this request stays.
	RevokeOtherSessions bool `json:"revoke_other_sessions,omitempty"`
}

// ResetPasswordRequest is the body of POST /v1/users/{username}/password.
type ResetPasswordRequest struct {
	NewPassword string `json:"new_password"`
}

// UpdateUserRequest is the body of PATCH /v1/users/{username}; nil fields are
// left as they are.
type UpdateUserRequest struct {
	DisplayName *string `json:"display_name,omitempty"`
	Admin       *bool   `json:"admin,omitempty"`
}

// ProjectMember is one member of GET /v1/projects/{project}/members.
type ProjectMember struct {
	Username    string `json:"username"`
	DisplayName string `json:"display_name"`
	Role        string `json:"role"`
}

// ProjectMemberList is one page of a project's members, ordered by username.
type ProjectMemberList struct {
	Items []ProjectMember `json:"items"`
	Next  string          `json:"next,omitempty"`
}

// ProjectDevice is one device of GET /v1/projects/{project}/devices.
type ProjectDevice struct {
	DeviceID string `json:"device_id"`
	Name     string `json:"name"`
	// State is DeviceStatePending, DeviceStateActive or DeviceStateRevoked.
	State      string     `json:"state"`
	EnrolledAt *time.Time `json:"enrolled_at,omitempty"`
	// LastSeenAt is the device's last push or pull, to the minute; absent if
	// it never synced.
	LastSeenAt *time.Time        `json:"last_seen_at,omitempty"`
	RevokedAt  *time.Time        `json:"revoked_at,omitempty"`
	DeviceInfo map[string]string `json:"device_info,omitempty"`
	CreatedAt  time.Time         `json:"created_at"`
}

// ProjectDeviceList is one page of a project's devices, in creation order.
type ProjectDeviceList struct {
	Items []ProjectDevice `json:"items"`
	Next  string          `json:"next,omitempty"`
}

// Page selects one page of an administration list.
type Page struct {
	// Cursor is the Next of the previous page.
	Cursor string
	// Limit is the page size (the server's default when 0; at most 1000).
	Limit int
}

// withPage appends the page's query to path.
func (p Page) withPage(path string) string {
	v := url.Values{}
	if p.Cursor != "" {
		v.Set("cursor", p.Cursor)
	}
	if p.Limit > 0 {
		v.Set("limit", strconv.Itoa(p.Limit))
	}
	if len(v) == 0 {
		return path
	}
	return path + "?" + v.Encode()
}

// ListUsers calls GET /v1/users (admins): one page of the users by username.
func (c *Client) ListUsers(ctx context.Context, p Page) (UserList, error) {
	var out UserList
	err := c.Do(ctx, http.MethodGet, p.withPage("/v1/users"), nil, &out)
	return out, err
}

// ChangePassword calls POST /v1/auth/password: the caller's own password. A
// wrong current password is a *Problem with Code "wrong_password"; a new one
// that breaks the rule one with Code "weak_password", whose Detail states the
// rule.
func (c *Client) ChangePassword(ctx context.Context, req ChangePasswordRequest) error {
	return c.Do(ctx, http.MethodPost, "/v1/auth/password", req, nil)
}

// ResetPassword calls POST /v1/users/{username}/password (admins): the user's
// password is replaced and every session of the user ends.
func (c *Client) ResetPassword(ctx context.Context, username, newPassword string) error {
	return c.Do(ctx, http.MethodPost, "/v1/users/"+url.PathEscape(username)+"/password",
		ResetPasswordRequest{NewPassword: newPassword}, nil)
}

// UpdateUser calls PATCH /v1/users/{username} (admins): display name and
// admin flag.
func (c *Client) UpdateUser(ctx context.Context, username string, req UpdateUserRequest) (UserEntry, error) {
	var out UserEntry
	err := c.Do(ctx, http.MethodPatch, "/v1/users/"+url.PathEscape(username), req, &out)
	return out, err
}

// ListMembers calls GET /v1/projects/{project}/members (managers).
func (c *Client) ListMembers(ctx context.Context, project string, p Page) (ProjectMemberList, error) {
	var out ProjectMemberList
	err := c.Do(ctx, http.MethodGet, p.withPage("/v1/projects/"+url.PathEscape(project)+"/members"), nil, &out)
	return out, err
}

// RemoveMember calls DELETE /v1/projects/{project}/members/{username}
// (managers): the user's access to the project ends at once.
func (c *Client) RemoveMember(ctx context.Context, project, username string) error {
	return c.Do(ctx, http.MethodDelete, "/v1/projects/"+url.PathEscape(project)+"/members/"+url.PathEscape(username), nil, nil)
}

// ListDevices calls GET /v1/projects/{project}/devices (managers).
func (c *Client) ListDevices(ctx context.Context, project string, p Page) (ProjectDeviceList, error) {
	var out ProjectDeviceList
	err := c.Do(ctx, http.MethodGet, p.withPage("/v1/projects/"+url.PathEscape(project)+"/devices"), nil, &out)
	return out, err
}
