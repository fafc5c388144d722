package identity

import (
	"context"
	"errors"
	"regexp"
	"strings"

	"github.com/fieldsync/fieldsync/internal/domain"
)

var projectIDRE = regexp.MustCompile(`^[a-z0-9][a-z0-9_-]{0,63}$`)

// CreateProject creates a project. Admins only; admins manage every project, so the
// new project needs no member to be usable.
//
// Errors: 403 forbidden; 422 invalid_project_id (^[a-z0-9][a-z0-9_-]{0,63}$),
// invalid_title; 409 project_exists.
func (s *Service) CreateProject(ctx context.Context, actor domain.Principal, id, title string) (domain.Project, error) {
	if !isAdmin(actor) {
		return domain.Project{}, errForbidden()
	}
	if !projectIDRE.MatchString(id) {
		return domain.Project{}, invalid("invalid_project_id", "The project id is not acceptable", "/id",
			"must match ^[a-z0-9][a-z0-9_-]{0,63}$")
	}
	if !validText(title, 1) || strings.TrimSpace(title) == "" {
		return domain.Project{}, invalid("invalid_title", "The title is not acceptable", "/title",
			"must be 1 to 200 characters of text without control characters")
	}
	p := domain.Project{ID: id, Title: title, CreatedBy: actor.Subject, CreatedAt: s.now()}
	switch err := s.store.CreateProject(ctx, p); {
	case errors.Is(err, domain.ErrExists):
		return domain.Project{}, domain.Errorf(domain.KindConflict, "project_exists", "A project with this id exists")
	case err != nil:
		return domain.Project{}, storeErr("create project", err)
	}
	s.audit(ctx, domain.AuditEvent{Type: AuditProjectCreated, Actor: actor.Subject, ProjectID: id, Subject: id})
	return p, nil
}

// ListProjects returns the projects p can see, ordered by id: all of them for an
// admin, its memberships' for a user, its own for a device.
func (s *Service) ListProjects(ctx context.Context, p domain.Principal) ([]domain.Project, error) {
	if p.IsDevice() {
		proj, err := s.store.GetProject(ctx, p.DeviceProject)
		switch {
		case errors.Is(err, domain.ErrNotFound):
			return []domain.Project{}, nil
		case err != nil:
			return nil, storeErr("get project", err)
		}
		return []domain.Project{proj}, nil
	}
	all, err := s.store.ListProjects(ctx)
	if err != nil {
		return nil, storeErr("list projects", err)
	}
	if isAdmin(p) {
		return all, nil
	}
	if p.Username == "" {
		return []domain.Project{}, nil
	}
	ms, err := s.store.ListMemberships(ctx, domain.MembershipFilter{Username: p.Username})
	if err != nil {
		return nil, storeErr("list memberships", err)
	}
	member := make(map[string]bool, len(ms))
	for _, m := range ms {
		member[m.ProjectID] = true
	}
	out := []domain.Project{}
	for _, proj := range all {
		if member[proj.ID] {
			out = append(out, proj)
		}
	}
	return out, nil
}

// RoleIn returns p's role in a project and whether it has one. An admin acts as a
// manager of every existing project; a device is an enumerator of its own project.
// A false answer means the project is invisible to p: the HTTP layer answers 404.
func (s *Service) RoleIn(ctx context.Context, p domain.Principal, projectID string) (domain.Role, bool, error) {
	switch {
	case p.IsDevice():
		if projectID != "" && projectID == p.DeviceProject {
			return domain.RoleEnumerator, true, nil
		}
		return "", false, nil
	case isAdmin(p):
		_, err := s.store.GetProject(ctx, projectID)
		switch {
		case errors.Is(err, domain.ErrNotFound):
			return "", false, nil
		case err != nil:
			return "", false, storeErr("get project", err)
		}
		return domain.RoleManager, true, nil
	case p.Username == "":
		return "", false, nil
	}
	m, err := s.store.GetMembership(ctx, projectID, p.Username)
	switch {
	case errors.Is(err, domain.ErrNotFound):
		return "", false, nil
	case err != nil:
		return "", false, storeErr("get membership", err)
	}
	return m.Role, true, nil
}

// requireManager answers 404 project_not_found when p cannot see the project (not
// 403: the existence of a project is not told to outsiders), 403 forbidden when p
// sees it without being its manager.
func (s *Service) requireManager(ctx context.Context, p domain.Principal, projectID string) error {
	role, ok, err := s.RoleIn(ctx, p, projectID)
	switch {
	case err != nil:
		return err
	case !ok:
		return errProjectNotFound()
	case role != domain.RoleManager:
		return errForbidden()
	}
	return nil
}

// SetMember gives a user a role in a project (creating or replacing the
// membership). Managers of the project and admins only.
//
// Errors: 404 project_not_found (also for a project the actor cannot see); 403
// forbidden; 422 invalid_role; 404 user_not_found.
func (s *Service) SetMember(ctx context.Context, actor domain.Principal, projectID, username string, role domain.Role) (domain.Membership, error) {
	if err := s.requireManager(ctx, actor, projectID); err != nil {
		return domain.Membership{}, err
	}
	if !role.Valid() {
		return domain.Membership{}, invalid("invalid_role", "The role is not acceptable", "/role",
			"must be one of manager, designer, analyst, enumerator")
	}
	if _, err := s.getUser(ctx, username); err != nil {
		return domain.Membership{}, err
	}
	m := domain.Membership{ProjectID: projectID, Username: username, Role: role, UpdatedAt: s.now()}
	if err := s.store.PutMembership(ctx, m); err != nil {
		return domain.Membership{}, storeErr("put membership", err)
	}
	s.audit(ctx, domain.AuditEvent{Type: AuditRoleSet, Actor: actor.Subject, ProjectID: projectID, Subject: username,
		Detail: map[string]string{"role": string(role)}})
	return m, nil
}
