package httpapi

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net/http"
	"regexp"
	"strings"

	"github.com/fieldsync/fieldsync/api"
	"github.com/fieldsync/fieldsync/internal/domain"
)

// Authenticator checks an access token and says who holds it.
//
// Authenticate returns the token's Principal, or an error: for a token that is
// not valid (malformed, bad signature, expired, revoked, disabled user, revoked
// device) any error, which is answered 401 invalid_token; for a failure to check
// it, an error wrapping domain.ErrUnavailable (or a *domain.Error of
// KindUnavailable or KindTooManyRequests), which is answered 503 or 429 so a
// tablet retries instead of dropping its login.
type Authenticator interface {
	Authenticate(ctx context.Context, token string) (domain.Principal, error)
}

type ruleKind int

const (
	ruleInvalid ruleKind = iota // the zero Rule: refused by handle
	rulePublic
	ruleAuthenticated
	ruleAdmin
	ruleProject
)

// Rule says who may call a route. Every route is registered with one, and
// Routes reports its name.
type Rule struct {
	kind  ruleKind
	roles []domain.Role
	name  string
	basic bool // also HTTP Basic (basicauth.go)
}

// String returns the rule's name: "public", "authenticated", "admin", or
// "project:" and the allowed roles ("project:manager,analyst").
func (r Rule) String() string { return r.name }

// The rules that take no argument.
var (
	// Public routes need no token (health, login, enrollment).
	Public = Rule{kind: rulePublic, name: "public"}
	// Authenticated routes need a valid token of any user or device.
	Authenticated = Rule{kind: ruleAuthenticated, name: "authenticated"}
	// Admin routes need a user with the global admin flag.
	Admin = Rule{kind: ruleAdmin, name: "admin"}
)

// ProjectRoles allows the members of the route's {project} whose role is one of
// roles. A manager passes every project rule (protocol.md: "manager: everything
// in the project") and an admin passes everything; a device counts as an
// enumerator of its own project only. A caller who is not a member (or a project
// that does not exist) gets 404 project_not_found, so the route never tells an
// outsider which projects exist; a member with another role gets 403.
func ProjectRoles(roles ...domain.Role) Rule {
	names := []string{string(domain.RoleManager)}
	rs := []domain.Role{domain.RoleManager}
	for _, r := range roles {
		if !r.Valid() {
			panic("httpapi: ProjectRoles: unknown role " + string(r))
		}
		if r == domain.RoleManager {
			continue
		}
		rs = append(rs, r)
		names = append(names, string(r))
	}
	return Rule{kind: ruleProject, roles: rs, name: "project:" + strings.Join(names, ",")}
}

func (r Rule) allows(role domain.Role) bool {
	for _, x := range r.roles {
		if x == role {
			return true
		}
	}
	return false
}

type principalKey struct{}
type roleKey struct{}

// PrincipalFrom returns the authenticated caller; ok is false on Public routes
// called without a token.
func PrincipalFrom(ctx context.Context) (domain.Principal, bool) {
	p, ok := ctx.Value(principalKey{}).(domain.Principal)
	return p, ok
}

// RoleFrom returns the caller's role in the route's project, set on routes with
// a ProjectRoles rule. An admin acts as a manager of every project.
func RoleFrom(ctx context.Context) (domain.Role, bool) {
	r, ok := ctx.Value(roleKey{}).(domain.Role)
	return r, ok
}

// projectIDPattern is protocol.md's project id; anything else cannot exist, so it
// is answered 404 without asking the store.
var projectIDPattern = regexp.MustCompile(`^[a-z0-9][a-z0-9_-]{0,63}$`)

// authorize wraps h with the rule's checks. It is the one place where access is
// decided before a handler runs.
func (s *Server) authorize(rule Rule, h handlerFunc) handlerFunc {
	if rule.kind == rulePublic {
		return h
	}
	return func(w http.ResponseWriter, r *http.Request) error {
		authn := s.authenticate
		if rule.basic {
			authn = s.authenticateBasic
		}
		p, err := authn(w, r)
		if err != nil {
			return err
		}
		ctx := context.WithValue(r.Context(), principalKey{}, p)
		if info := infoFrom(ctx); info != nil {
			// For the access log: who asked, never their token.
			info.subject = p.Subject
			if rule.kind == ruleProject {
				info.project = pathVar(r, "project")
			}
		}
		switch rule.kind {
		case ruleAdmin:
			if !p.Admin {
				return rule.forbidden("", "")
			}
		case ruleProject:
			project := pathVar(r, "project")
			role, err := s.projectRole(ctx, p, project)
			if err != nil {
				return err
			}
			if !rule.allows(role) {
				return rule.forbidden(project, role)
			}
			ctx = context.WithValue(ctx, roleKey{}, role)
		}
		return h(w, r.WithContext(ctx))
	}
}

// forbidden is the 403 of a caller the rule refuses. Its detail names what the
// route needs and what the caller is, so a user can ask for the right role
// instead of guessing ("this route needs the manager role in project juba; you
// are analyst"). The caller may see the project, or it would have had a 404.
func (r Rule) forbidden(project string, role domain.Role) error {
	var detail string
	switch r.kind {
	case ruleAdmin:
		detail = "this route needs an admin; you are not one"
	case ruleProject:
		names := make([]string, len(r.roles))
		for i, x := range r.roles {
			names[i] = string(x)
		}
		needs := names[0] + " role"
		if len(names) > 1 {
			needs = strings.Join(names[:len(names)-1], ", ") + " or " + names[len(names)-1] + " role"
		}
		detail = fmt.Sprintf("this route needs the %s in project %s; you are %s", needs, project, role)
	}
	return &domain.Error{Kind: domain.KindForbidden, Code: api.CodeForbidden, Title: "You may not do this", Detail: detail}
}

func errProjectNotFound() error {
	return &domain.Error{Kind: domain.KindNotFound, Code: api.CodeProjectNotFound, Title: "Project not found"}
}

// authenticate reads the bearer token and asks the Authenticator. Only the
// Authorization header carries tokens: a token in a query string ends up in
// proxy logs and browser histories.
func (s *Server) authenticate(w http.ResponseWriter, r *http.Request) (domain.Principal, error) {
	scheme, token, _ := strings.Cut(r.Header.Get("Authorization"), " ")
	token = strings.TrimSpace(token)
	if !strings.EqualFold(scheme, "Bearer") || token == "" {
		w.Header().Set("WWW-Authenticate", `Bearer realm="fieldsync"`)
		return domain.Principal{}, &domain.Error{Kind: domain.KindUnauthorized, Code: api.CodeUnauthorized,
			Title: "Authentication required", Detail: "send an access token as Authorization: Bearer <token>"}
	}
	if s.auth == nil {
		return domain.Principal{}, invalidToken(w)
	}
	p, err := s.auth.Authenticate(r.Context(), token)
	if err == nil {
		return p, nil
	}
	if Retryable(err) {
		return domain.Principal{}, err
	}
	// Why the token failed is for the log, never for the client: it would help
	// someone who guesses or replays tokens.
	s.logger.LogAttrs(r.Context(), slog.LevelInfo, "token rejected",
		slog.String("request_id", RequestIDFrom(r.Context())), slog.String("reason", err.Error()))
	return domain.Principal{}, invalidToken(w)
}

func invalidToken(w http.ResponseWriter) error {
	w.Header().Set("WWW-Authenticate", `Bearer realm="fieldsync", error="invalid_token"`)
	return &domain.Error{Kind: domain.KindUnauthorized, Code: api.CodeUnauthorized,
		Title: "Authentication required", Detail: "the access token is not valid"}
}

// Retryable reports whether an authentication failure is the server's (store
// down, overload, throttle), not the credential's: the caller may try again
// later, and must not treat the credential as bad (the console keeps its
// session on such an error instead of signing the user out).
func Retryable(err error) bool {
	if errors.Is(err, domain.ErrUnavailable) || errors.Is(err, context.DeadlineExceeded) || errors.Is(err, context.Canceled) {
		return true
	}
	if e, ok := domain.AsError(err); ok {
		return e.Kind == domain.KindUnavailable || e.Kind == domain.KindTooManyRequests
	}
	return false
}

// projectRole returns p's role in project, or the error to answer.
func (s *Server) projectRole(ctx context.Context, p domain.Principal, project string) (domain.Role, error) {
	if !projectIDPattern.MatchString(project) {
		return "", errProjectNotFound()
	}
	if p.IsDevice() {
		// A device belongs to one project; it is a stranger everywhere else.
		if p.DeviceProject != project {
			return "", errProjectNotFound()
		}
		return domain.RoleEnumerator, nil
	}
	m, err := s.store.GetMembership(ctx, project, p.Username)
	switch {
	case err == nil:
		if p.Admin {
			// An admin passes every rule whatever the membership says.
			return domain.RoleManager, nil
		}
		return m.Role, nil
	case !errors.Is(err, domain.ErrNotFound):
		return "", err
	case !p.Admin:
		return "", errProjectNotFound()
	}
	// An admin who is not a member: the project must still exist.
	if _, err := s.store.GetProject(ctx, project); err != nil {
		if errors.Is(err, domain.ErrNotFound) {
			return "", errProjectNotFound()
		}
		return "", err
	}
	return domain.RoleManager, nil
}
