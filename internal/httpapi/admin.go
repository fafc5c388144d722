package httpapi

import (
	"fmt"
	"net/http"
	"strconv"
	"strings"

	"github.com/fieldsync/fieldsync/api"
	"github.com/fieldsync/fieldsync/internal/domain"
	"github.com/fieldsync/fieldsync/internal/identity"
)

// The administration routes of protocol.md §1 (users, passwords, members,
// devices) are registered by registerIdentityRoutes; their handlers are here.

// deviceSynced records a device's push or pull for the managers' device list
// (throttled by the identity service to one store write a minute per device).
func (s *Server) deviceSynced(r *http.Request) {
	if s.identity != nil {
		s.identity.DeviceSynced(r.Context(), principal(r))
	}
}

// listPage reads the cursor and limit of an administration list.
func listPage(r *http.Request) (cursor string, limit int, err error) {
	q := r.URL.Query()
	if v := q.Get("limit"); v != "" {
		limit, err = strconv.Atoi(v)
		if err != nil || limit < 1 || limit > identity.MaxListLimit {
			return "", 0, &domain.Error{Kind: domain.KindBadRequest, Code: "invalid_limit",
				Title: fmt.Sprintf("limit must be a whole number from 1 to %d", identity.MaxListLimit)}
		}
	}
	return q.Get("cursor"), limit, nil
}

// bearerToken is the access token of the request (authorize has checked it).
func bearerToken(r *http.Request) string {
	_, token, _ := strings.Cut(r.Header.Get("Authorization"), " ")
	return strings.TrimSpace(token)
}

func userEntry(u domain.User) api.UserEntry {
	return api.UserEntry{Username: u.Username, DisplayName: u.DisplayName, Admin: u.Admin, Disabled: u.Disabled, CreatedAt: u.CreatedAt}
}

// handleListUsers is GET /v1/users?cursor=&limit=.
func (s *Server) handleListUsers(w http.ResponseWriter, r *http.Request) error {
	cursor, limit, err := listPage(r)
	if err != nil {
		return err
	}
	users, next, err := s.identity.ListUsers(r.Context(), principal(r), cursor, limit)
	if err != nil {
		return err
	}
	out := api.UserList{Items: make([]api.UserEntry, len(users)), Next: next}
	for i, u := range users {
		out.Items[i] = userEntry(u)
	}
	noStore(w)
	return writeJSON(w, http.StatusOK, out)
}

// handleChangePassword is POST /v1/auth/password: the caller's own password.
func (s *Server) handleChangePassword(w http.ResponseWriter, r *http.Request) error {
	if principal(r).IsDevice() {
		return &domain.Error{Kind: domain.KindForbidden, Code: api.CodeForbidden, Title: "You may not do this",
			Detail: "this route needs a user; a device has no password"}
	}
	var in api.ChangePasswordRequest
	if err := decodeJSON(r, &in); err != nil {
		return err
	}
	if err := s.identity.ChangePassword(r.Context(), principal(r), bearerToken(r), in.CurrentPassword, in.NewPassword,
		in.RevokeOtherSessions, s.clientIP(r)); err != nil {
		return err
	}
	w.WriteHeader(http.StatusNoContent)
	return nil
}

// handleResetPassword is POST /v1/users/{username}/password: an admin sets a
// user's password, and the user's sessions end.
func (s *Server) handleResetPassword(w http.ResponseWriter, r *http.Request) error {
	var in api.ResetPasswordRequest
	if err := decodeJSON(r, &in); err != nil {
		return err
	}
	if err := s.identity.ResetPassword(r.Context(), principal(r), pathVar(r, "username"), in.NewPassword); err != nil {
		return err
	}
	w.WriteHeader(http.StatusNoContent)
	return nil
}

// handleUpdateUser is PATCH /v1/users/{username}: display name and admin flag.
func (s *Server) handleUpdateUser(w http.ResponseWriter, r *http.Request) error {
	var in api.UpdateUserRequest
	if err := decodeJSON(r, &in); err != nil {
		return err
	}
	u, err := s.identity.UpdateUser(r.Context(), principal(r), pathVar(r, "username"), in.DisplayName, in.Admin)
	if err != nil {
		return err
	}
	noStore(w)
	return writeJSON(w, http.StatusOK, userEntry(u))
}

// handleListMembers is GET /v1/projects/{project}/members?cursor=&limit=.
func (s *Server) handleListMembers(w http.ResponseWriter, r *http.Request) error {
	cursor, limit, err := listPage(r)
	if err != nil {
		return err
	}
	ms, next, err := s.identity.ListMembers(r.Context(), principal(r), pathVar(r, "project"), cursor, limit)
	if err != nil {
		return err
	}
	out := api.ProjectMemberList{Items: make([]api.ProjectMember, len(ms)), Next: next}
	for i, m := range ms {
		out.Items[i] = api.ProjectMember{Username: m.Username, DisplayName: m.DisplayName, Role: string(m.Role)}
	}
	noStore(w)
	return writeJSON(w, http.StatusOK, out)
}

// handleRemoveMember is DELETE /v1/projects/{project}/members/{username}.
func (s *Server) handleRemoveMember(w http.ResponseWriter, r *http.Request) error {
	if err := s.identity.RemoveMember(r.Context(), principal(r), pathVar(r, "project"), pathVar(r, "username")); err != nil {
		return err
	}
	w.WriteHeader(http.StatusNoContent)
	return nil
}

// handleListDevices is GET /v1/projects/{project}/devices?cursor=&limit=.
func (s *Server) handleListDevices(w http.ResponseWriter, r *http.Request) error {
	cursor, limit, err := listPage(r)
	if err != nil {
		return err
	}
	ds, next, err := s.identity.ListDevices(r.Context(), principal(r), pathVar(r, "project"), cursor, limit)
	if err != nil {
		return err
	}
	out := api.ProjectDeviceList{Items: make([]api.ProjectDevice, len(ds)), Next: next}
	for i, d := range ds {
		out.Items[i] = api.ProjectDevice{DeviceID: d.ID, Name: d.Name, State: d.State, EnrolledAt: d.EnrolledAt,
			LastSeenAt: d.LastSeenAt, RevokedAt: d.RevokedAt, DeviceInfo: d.Info, CreatedAt: d.CreatedAt}
	}
	noStore(w)
	return writeJSON(w, http.StatusOK, out)
}
