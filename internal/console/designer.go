package console

import (
	"context"
	"net/http"
	"strings"

	"github.com/fieldsync/fieldsync/internal/domain"
	"github.com/fieldsync/fieldsync/internal/forms"
)

// The API routes the designers' pages mirror (internal/httpapi/forms.go). A
// page that only reads mirrors the read route every member has; each action
// mirrors the route that does it, so the console lets in exactly whom the
// API lets in.
const (
	mirrorListForms   = "GET /v1/projects/{project}/forms"
	mirrorGetVersion  = "GET /v1/projects/{project}/forms/{form}/versions/{version}"
	mirrorPutVersion  = "PUT /v1/projects/{project}/forms/{form}/versions/{version}"
	mirrorPublish     = "POST /v1/projects/{project}/forms/{form}/versions/{version}/publish"
	mirrorCloseForm   = "POST /v1/projects/{project}/forms/{form}/close"
	mirrorReopenForm  = "POST /v1/projects/{project}/forms/{form}/reopen"
	designerFormsPath = "/projects/{project}/forms"
)

// registerDesignerRoutes registers the designers' pages (designer_*.go):
// the forms list, upload with validation findings, preview, publish, close,
// reopen and the comparison of two versions. Without a forms service the API
// has no form routes to mirror, and the console no form pages.
func (c *Console) registerDesignerRoutes() {
	if c.cfg.Forms == nil {
		return
	}
	c.handle(http.MethodGet, designerFormsPath, mirrorListForms, c.designerForms)
	// The upload page names its form and version in its fields, not in its
	// path; it mirrors the PUT that stores a draft.
	c.handle(http.MethodGet, "/projects/{project}/forms/upload", mirrorPutVersion, c.designerUploadPage)
	c.handle(http.MethodPost, "/projects/{project}/forms/upload", mirrorPutVersion, c.designerUpload)
	c.handle(http.MethodGet, "/projects/{project}/forms/{form}/versions/{version}", mirrorGetVersion, c.designerVersion)
	c.handle(http.MethodPost, "/projects/{project}/forms/{form}/versions/{version}/publish", mirrorPublish, c.designerPublish)
	c.handle(http.MethodPost, "/projects/{project}/forms/{form}/close", mirrorCloseForm, c.designerClose)
	c.handle(http.MethodPost, "/projects/{project}/forms/{form}/reopen", mirrorReopenForm, c.designerReopen)
	// Comparing reads two versions, as GET .../versions/{version} twice.
	c.handle(http.MethodGet, "/projects/{project}/forms/{form}/compare", mirrorGetVersion, c.designerCompare)
	c.addNav(NavItem{Label: "nav.forms", Path: designerFormsPath, Mirror: mirrorListForms})
}

// designerMay reports whether the signed-in user of r may do what the API route
// mirror guards, in the page's project: the check that decides which
// actions a page offers (the action's own page checks again).
func (c *Console) designerMay(r *http.Request, mirror string) bool {
	m, p, _ := strings.Cut(mirror, " ")
	rule, ok := c.cfg.API.RuleOf(m, p)
	if !ok {
		return false
	}
	_, err := c.cfg.API.Authorize(r.Context(), principal(r), rule, pageFrom(r.Context()).project)
	return err == nil
}

// designerPublishedOnly reports whether the caller sees published versions only, as
// the API decides for its form routes: enumerators (devices cannot sign in
// to the console).
func designerPublishedOnly(r *http.Request) bool {
	return pageFrom(r.Context()).role == domain.RoleEnumerator
}

// designerActor is r's context carrying the signed-in user, for the forms
// service's audit events, exactly as the API's formsActor sets it.
func (c *Console) designerActor(r *http.Request) context.Context {
	return forms.WithActor(r.Context(), principal(r).Subject, c.cfg.API.ClientIP(r))
}

// designerPath replaces {project} in path with the page's project.
func designerPath(r *http.Request, path string) string {
	return strings.ReplaceAll(path, "{project}", pageFrom(r.Context()).project)
}

// designerRedirect answers a successful POST with a 303 to target showing the
// flash message key ("flash.form_published"); anchor ("" for none) is the
// id of the element to scroll to.
func designerRedirect(w http.ResponseWriter, r *http.Request, target, key, anchor string) {
	u := target + "?msg=" + strings.TrimPrefix(key, "flash.")
	if anchor != "" {
		u += "#" + anchor
	}
	http.Redirect(w, r, u, http.StatusSeeOther)
}
