package httpapi

import (
	"fmt"
	"net/http"
	"net/url"
	"strconv"
	"time"

	"github.com/fieldsync/fieldsync/api"
	"github.com/fieldsync/fieldsync/internal/domain"
	"github.com/fieldsync/fieldsync/internal/identity"
)

// registerIdentityRoutes adds the routes of protocol.md §1 and the project routes
// of §2. The handlers only decode, call the identity service and encode: who may
// do what inside a project is decided twice on purpose, by the route's rule here
// and by the service, so a rule written too wide here still cannot let a caller
// through.
//
// The bodies of these routes hold passwords, tokens and enrollment codes. None of
// them is ever logged: the access log writes no bodies, no query strings and no
// headers, and the service's errors carry no input.
func (s *Server) registerIdentityRoutes() {
	if s.identity == nil {
		return
	}
	// Public: the caller proves who it is with the body itself.
	s.handle(http.MethodPost, "/v1/auth/token", Public, s.handleLogin)
	s.handle(http.MethodPost, "/v1/auth/refresh", Public, s.handleRefresh)
	s.handle(http.MethodPost, "/v1/auth/revoke", Public, s.handleRevoke)
	s.handle(http.MethodPost, "/v1/devices/enroll", Public, s.handleEnroll)
	s.handle(http.MethodPost, "/v1/auth/password", Authenticated, s.handleChangePassword)

	s.handle(http.MethodPost, "/v1/users", Admin, s.handleCreateUser)
	s.handle(http.MethodGet, "/v1/users", Admin, s.handleListUsers)
	s.handle(http.MethodPatch, "/v1/users/{username}", Admin, s.handleUpdateUser)
	s.handle(http.MethodPost, "/v1/users/{username}/password", Admin, s.handleResetPassword)
	s.handle(http.MethodPost, "/v1/users/{username}/revoke", Admin, s.handleRevokeUser)
	s.handle(http.MethodPost, "/v1/users/{username}/disable", Admin, s.handleDisableUser(true))
	s.handle(http.MethodPost, "/v1/users/{username}/enable", Admin, s.handleDisableUser(false))
	s.handle(http.MethodGet, "/v1/audit", Admin, s.handleListAudit)

	s.handle(http.MethodPost, "/v1/projects", Admin, s.handleCreateProject)
	s.handle(http.MethodGet, "/v1/projects", Authenticated, s.handleListProjects)
	s.handle(http.MethodGet, "/v1/projects/{project}/members", ProjectRoles(domain.RoleManager), s.handleListMembers)
	s.handle(http.MethodPut, "/v1/projects/{project}/members/{username}", ProjectRoles(domain.RoleManager), s.handleSetMember)
	s.handle(http.MethodDelete, "/v1/projects/{project}/members/{username}", ProjectRoles(domain.RoleManager), s.handleRemoveMember)
	s.handle(http.MethodGet, "/v1/projects/{project}/devices", ProjectRoles(domain.RoleManager), s.handleListDevices)
	s.handle(http.MethodPost, "/v1/projects/{project}/devices", ProjectRoles(domain.RoleManager), s.handleCreateDevice)
	s.handle(http.MethodDelete, "/v1/projects/{project}/devices/{device_id}", ProjectRoles(domain.RoleManager), s.handleRevokeDevice)
}

// noStore marks an answer as not to be cached anywhere: tokens, enrollment codes
// and lists of who did what are for this caller only (RFC 6749 §5.1 asks the same
// of token answers).
func noStore(w http.ResponseWriter) {
	w.Header().Set("Cache-Control", "no-store")
}

// principal is the caller of a route that is not Public; the rule has put it in
// the context before the handler runs.
func principal(r *http.Request) domain.Principal {
	p, _ := PrincipalFrom(r.Context())
	return p
}

func tokenResponse(p identity.TokenPair) api.TokenResponse {
	return api.TokenResponse{AccessToken: p.AccessToken, TokenType: p.TokenType, ExpiresIn: p.ExpiresIn, RefreshToken: p.RefreshToken}
}

// handleLogin is POST /v1/auth/token.
func (s *Server) handleLogin(w http.ResponseWriter, r *http.Request) error {
	var in api.TokenRequest
	if err := decodeJSON(r, &in); err != nil {
		return err
	}
	pair, err := s.identity.Login(r.Context(), in.Username, in.Password, s.clientIP(r))
	if err != nil {
		return err
	}
	noStore(w)
	return writeJSON(w, http.StatusOK, tokenResponse(pair))
}

// handleRefresh is POST /v1/auth/refresh.
func (s *Server) handleRefresh(w http.ResponseWriter, r *http.Request) error {
	var in api.RefreshRequest
	if err := decodeJSON(r, &in); err != nil {
		return err
	}
	pair, err := s.identity.Refresh(r.Context(), in.RefreshToken, s.clientIP(r))
	if err != nil {
		return err
	}
	noStore(w)
	return writeJSON(w, http.StatusOK, tokenResponse(pair))
}

// handleRevoke is POST /v1/auth/revoke: logout. It answers 204 for any refresh
// token, known or not, so it tells nothing about which tokens exist.
func (s *Server) handleRevoke(w http.ResponseWriter, r *http.Request) error {
	var in api.RevokeRequest
	if err := decodeJSON(r, &in); err != nil {
		return err
	}
	if err := s.identity.Revoke(r.Context(), in.RefreshToken); err != nil {
		return err
	}
	w.WriteHeader(http.StatusNoContent)
	return nil
}

// handleEnroll is POST /v1/devices/enroll.
func (s *Server) handleEnroll(w http.ResponseWriter, r *http.Request) error {
	var in api.EnrollRequest
	if err := decodeJSON(r, &in); err != nil {
		return err
	}
	pair, d, err := s.identity.Enroll(r.Context(), in.EnrollmentCode, in.DeviceInfo, s.clientIP(r))
	if err != nil {
		return err
	}
	out := tokenResponse(pair)
	out.DeviceID, out.Project = d.ID, d.ProjectID
	noStore(w)
	return writeJSON(w, http.StatusOK, out)
}

// handleCreateUser is POST /v1/users.
func (s *Server) handleCreateUser(w http.ResponseWriter, r *http.Request) error {
	var in api.CreateUserRequest
	if err := decodeJSON(r, &in); err != nil {
		return err
	}
	u, err := s.identity.CreateUser(r.Context(), principal(r), in.Username, in.Password, in.DisplayName)
	if err != nil {
		return err
	}
	noStore(w)
	return writeJSON(w, http.StatusCreated, api.User{Username: u.Username, DisplayName: u.DisplayName,
		Admin: u.Admin, Disabled: u.Disabled, CreatedAt: u.CreatedAt})
}

// handleRevokeUser is POST /v1/users/{username}/revoke: the user is signed out
// everywhere (a lost phone, a staff member leaving) and may log in again.
func (s *Server) handleRevokeUser(w http.ResponseWriter, r *http.Request) error {
	if err := s.identity.RevokeUser(r.Context(), principal(r), pathVar(r, "username")); err != nil {
		return err
	}
	w.WriteHeader(http.StatusNoContent)
	return nil
}

// handleDisableUser is POST /v1/users/{username}/disable (and /enable): a
// disabled user cannot log in, and every session of it ends as by revoke.
// Enabling does not bring the sessions back.
func (s *Server) handleDisableUser(disabled bool) handlerFunc {
	return func(w http.ResponseWriter, r *http.Request) error {
		if err := s.identity.SetUserDisabled(r.Context(), principal(r), pathVar(r, "username"), disabled); err != nil {
			return err
		}
		w.WriteHeader(http.StatusNoContent)
		return nil
	}
}

// handleCreateProject is POST /v1/projects.
func (s *Server) handleCreateProject(w http.ResponseWriter, r *http.Request) error {
	var in api.CreateProjectRequest
	if err := decodeJSON(r, &in); err != nil {
		return err
	}
	p, err := s.identity.CreateProject(r.Context(), principal(r), in.ID, in.Title)
	if err != nil {
		return err
	}
	return writeJSON(w, http.StatusCreated, api.Project{ID: p.ID, Title: p.Title, Role: api.RoleManager, CreatedAt: p.CreatedAt})
}

// handleListProjects is GET /v1/projects: the projects the caller can see, each
// with the caller's role in it.
func (s *Server) handleListProjects(w http.ResponseWriter, r *http.Request) error {
	ctx := r.Context()
	p := principal(r)
	list, err := s.identity.ListProjects(ctx, p)
	if err != nil {
		return err
	}
	out := api.ProjectList{Projects: make([]api.Project, 0, len(list))}
	for _, proj := range list {
		// An admin manages every project (RoleIn says so too); asking the store
		// once per project would only confirm that the listed projects exist.
		role := domain.RoleManager
		if !p.Admin {
			var ok bool
			if role, ok, err = s.identity.RoleIn(ctx, p, proj.ID); err != nil {
				return err
			} else if !ok {
				continue // the membership went away since the list was read
			}
		}
		out.Projects = append(out.Projects, api.Project{ID: proj.ID, Title: proj.Title, Role: string(role), CreatedAt: proj.CreatedAt})
	}
	noStore(w)
	return writeJSON(w, http.StatusOK, out)
}

// handleSetMember is PUT /v1/projects/{project}/members/{username}.
func (s *Server) handleSetMember(w http.ResponseWriter, r *http.Request) error {
	var in api.PutMemberRequest
	if err := decodeJSON(r, &in); err != nil {
		return err
	}
	m, err := s.identity.SetMember(r.Context(), principal(r), pathVar(r, "project"), pathVar(r, "username"), domain.Role(in.Role))
	if err != nil {
		return err
	}
	return writeJSON(w, http.StatusOK, api.Member{Project: m.ProjectID, Username: m.Username, Role: string(m.Role), UpdatedAt: m.UpdatedAt})
}

// handleCreateDevice is POST /v1/projects/{project}/devices. The answer holds
// the enrollment code, shown this once.
func (s *Server) handleCreateDevice(w http.ResponseWriter, r *http.Request) error {
	var in api.CreateDeviceRequest
	if err := decodeJSON(r, &in); err != nil {
		return err
	}
	d, code, err := s.identity.CreateDevice(r.Context(), principal(r), pathVar(r, "project"), in.Name)
	if err != nil {
		return err
	}
	noStore(w)
	return writeJSON(w, http.StatusCreated, api.CreateDeviceResponse{DeviceID: d.ID, EnrollmentCode: code, ExpiresAt: d.EnrollmentExpiresAt})
}

// handleRevokeDevice is DELETE /v1/projects/{project}/devices/{device_id}.
func (s *Server) handleRevokeDevice(w http.ResponseWriter, r *http.Request) error {
	if err := s.identity.RevokeDevice(r.Context(), principal(r), pathVar(r, "project"), pathVar(r, "device_id")); err != nil {
		return err
	}
	w.WriteHeader(http.StatusNoContent)
	return nil
}

// handleListAudit is GET /v1/audit: one page of the security log, newest first,
// filtered by type, actor, project and a time range (since inclusive, until
// exclusive, RFC 3339).
func (s *Server) handleListAudit(w http.ResponseWriter, r *http.Request) error {
	q := r.URL.Query()
	f := domain.AuditFilter{Type: q.Get("type"), Actor: q.Get("actor"), ProjectID: q.Get("project")}
	var err error
	if f.Since, err = queryTime(q, "since"); err != nil {
		return err
	}
	if f.Until, err = queryTime(q, "until"); err != nil {
		return err
	}
	limit := 0
	if v := q.Get("limit"); v != "" {
		limit, err = strconv.Atoi(v)
		if err != nil || limit < 1 || limit > identity.MaxAuditLimit {
			return &domain.Error{Kind: domain.KindBadRequest, Code: "invalid_limit",
				Title: fmt.Sprintf("limit must be a whole number from 1 to %d", identity.MaxAuditLimit)}
		}
	}
	events, next, err := s.identity.ListAudit(r.Context(), principal(r), f, q.Get("cursor"), limit)
	if err != nil {
		return err
	}
	out := api.AuditList{Events: make([]api.AuditEvent, len(events)), Next: next}
	for i, e := range events {
		out.Events[i] = api.AuditEvent{ID: e.ID, Time: e.Time, Type: e.Type, Actor: e.Actor, Project: e.ProjectID,
			Subject: e.Subject, RemoteAddr: e.RemoteAddr, Detail: e.Detail}
	}
	noStore(w)
	return writeJSON(w, http.StatusOK, out)
}

// queryTime reads an optional RFC 3339 time from the query.
func queryTime(q url.Values, name string) (time.Time, error) {
	v := q.Get(name)
	if v == "" {
		return time.Time{}, nil
	}
	t, err := time.Parse(time.RFC3339Nano, v)
	if err != nil {
		return time.Time{}, &domain.Error{Kind: domain.KindBadRequest, Code: "invalid_query",
			Title: name + " must be an RFC 3339 time", Detail: "for example 2026-03-01T00:00:00Z"}
	}
	return t.UTC(), nil
}
