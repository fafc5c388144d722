package httpapi

// The web console's export and attachment downloads (issue 17, analysts'
// pages). Kept in their own file so the console's other doors (console.go)
// stay the core's.

import (
	"context"
	"net/http"

	"github.com/gorilla/mux"

	"github.com/fieldsync/fieldsync/internal/domain"
)

// ServeExport answers r as GET /v1/projects/{project}/forms/{form}/export
// would for p in role (already authorized by that route's rule, as the
// console's adapter does): the same query parameters, the same streamed file,
// headers and audit event, so a download from the console is the API's
// export and not a second implementation of it. An error before the first
// byte is returned for the caller to show; one after it aborts the
// connection, as the API does.
func (s *Server) ServeExport(w http.ResponseWriter, r *http.Request, p domain.Principal, role domain.Role, project, form string) error {
	if s.records == nil || s.forms == nil {
		return &domain.Error{Kind: domain.KindNotFound, Code: "not_found", Title: "This server does not export datasets"}
	}
	ctx := context.WithValue(r.Context(), principalKey{}, p)
	ctx = context.WithValue(ctx, roleKey{}, role)
	r = mux.SetURLVars(r.WithContext(ctx), map[string]string{"project": project, "form": form})
	return s.handleExport(w, r)
}

// ServeAttachment answers r as GET
// /v1/projects/{project}/records/{id}/attachments/{name} would for p in role
// (already authorized by that route's rule): the record's file through the
// media service's own checks, with the API's headers (a download, typed as
// declared, nosniff, Range and ETag), so the console's link is the API's
// download and not a second implementation of it.
func (s *Server) ServeAttachment(w http.ResponseWriter, r *http.Request, p domain.Principal, role domain.Role, project, id, name string) error {
	if s.media == nil {
		return &domain.Error{Kind: domain.KindNotFound, Code: "not_found", Title: "This server keeps no attachments"}
	}
	ctx := context.WithValue(r.Context(), principalKey{}, p)
	ctx = context.WithValue(ctx, roleKey{}, role)
	r = mux.SetURLVars(r.WithContext(ctx), map[string]string{"project": project, "id": id, "name": name})
	return s.handleGetAttachment(w, r)
}
