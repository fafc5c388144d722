package httpapi

// The doors the web console (internal/console, issue 17) uses into the API
// server: it is mounted on the same router, behind the same middleware (request
// ids, access log, metrics, panic recovery, compression), and each of its pages
// is authorized by the very Rule of the API route it mirrors, with the same
// code (authorize's checks), so a page can never let in someone the API would
// refuse.

import (
	"context"
	"net/http"
	"strings"
	"time"

	"github.com/gorilla/mux"

	"github.com/fieldsync/fieldsync/api"
	"github.com/fieldsync/fieldsync/internal/domain"
)

// routeLabelConsole labels every console request in logs and metrics: one
// series, whatever the page, so the console cannot grow the metric series.
const routeLabelConsole = "console"

// IsAPIPath reports whether path belongs to the API (and the operational
// endpoints) rather than to the console: /v1 and below, /healthz, /readyz,
// /metrics. Unknown paths there keep their problem-document 404.
func IsAPIPath(path string) bool {
	switch path {
	case "/v1", "/healthz", "/readyz", "/metrics":
		return true
	}
	return strings.HasPrefix(path, "/v1/")
}

// MountConsole serves h for every path that IsAPIPath does not claim, after
// the API's own routes and inside the server's middleware chain. The route has
// no path template, so it is neither in Routes nor in openapi.yaml: the console
// is not part of the API.
func (s *Server) MountConsole(h http.Handler) {
	s.router.MatcherFunc(func(r *http.Request, _ *mux.RouteMatch) bool {
		return !IsAPIPath(r.URL.Path)
	}).Handler(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if info := infoFrom(r.Context()); info != nil {
			info.route = routeLabelConsole
		}
		h.ServeHTTP(w, r)
	}))
}

// RuleOf returns the Rule of the API route method path ("GET",
// "/v1/projects/{project}/members"); ok is false when no such route is
// registered.
func (s *Server) RuleOf(method, path string) (Rule, bool) {
	for i, ri := range s.routes {
		if ri.Method == method && ri.Path == path {
			return s.rules[i], true
		}
	}
	return Rule{}, false
}

// Authorize decides whether p may do what rule guards, for project (ignored
// unless the rule is a project rule), exactly as the API does before a
// handler runs. It returns p's role in the project (RoleManager for an
// admin; "" for rules without a project), or the error the API would answer:
// 403 forbidden, 404 project_not_found for a stranger to the project.
func (s *Server) Authorize(ctx context.Context, p domain.Principal, rule Rule, project string) (domain.Role, error) {
	switch rule.kind {
	case rulePublic:
		return "", nil
	case ruleAuthenticated:
		if p.Subject == "" {
			return "", &domain.Error{Kind: domain.KindUnauthorized, Code: api.CodeUnauthorized, Title: "Authentication required"}
		}
		return "", nil
	case ruleAdmin:
		if !p.Admin {
			return "", rule.forbidden("", "")
		}
		return "", nil
	case ruleProject:
		role, err := s.projectRole(ctx, p, project)
		if err != nil {
			return "", err
		}
		if !rule.allows(role) {
			return role, rule.forbidden(project, role)
		}
		return role, nil
	}
	return "", rule.forbidden("", "")
}

// ClientIP is the client address of r as the API sees it (see clientIP): the
// console's sign-in throttles and audits by the same address.
func (s *Server) ClientIP(r *http.Request) string { return s.clientIP(r) }

// ProblemFor is the API's answer to err: its status, stable code, title and
// detail; internal is true for an unexpected error (status 500, to be logged
// and not shown). retryAfter is the delay a 429 or 503 advises.
func ProblemFor(err error) (p api.Problem, retryAfter time.Duration, internal bool) {
	return problemFor(err)
}

// BaseURL is the URL clients reach the server at: FIELDSYNC_PUBLIC_URL, or
// the request's scheme and host. The console puts it in the enrolment QR
// code, as fsctl does.
func (s *Server) BaseURL(r *http.Request) string { return s.baseURL(r) }
