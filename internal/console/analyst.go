package console

import (
	"net/http"
	"strings"

	"github.com/fieldsync/fieldsync/internal/records"
)

// The analysts' pages (issue 17): under /projects/{project}/data, each
// mirroring the API route whose data it shows or whose action it takes.
// Their Go is in analyst_*.go, their templates in templates/analyst/, their
// strings in i18n/en/analyst.json.

// The API routes the analysts' pages mirror.
const (
	mirrorFormRecords = "GET /v1/projects/{project}/forms/{form}/records"
	mirrorComments    = "GET /v1/projects/{project}/records/{id}/comments"
	mirrorPatch       = "PATCH /v1/projects/{project}/records/{id}"
	mirrorResolve     = "POST /v1/projects/{project}/records/{id}/resolve"
	mirrorQuarantine  = "GET /v1/projects/{project}/quarantine"
	mirrorReapply     = "POST /v1/projects/{project}/quarantine/{id}/reapply"
	mirrorDismiss     = "POST /v1/projects/{project}/quarantine/{id}/dismiss"
	mirrorExport      = "GET /v1/projects/{project}/forms/{form}/export"
	mirrorAttachment  = "GET /v1/projects/{project}/records/{id}/attachments/{name}"
	mirrorOData       = "GET /v1/projects/{project}/forms/{form}/odata"
)

// registerAnalystRoutes registers the analysts' pages (analyst_*.go):
// submissions, records, conflicts, review, quarantine, exports, map.
func (c *Console) registerAnalystRoutes() {
	if c.cfg.Records == nil || c.cfg.Forms == nil {
		return
	}
	// The data index lists the forms with links to their tables; it shows
	// what the records listing is for, so it has its rule.
	c.handle(http.MethodGet, "/projects/{project}/data", mirrorFormRecords, c.analystIndex)
	c.handle(http.MethodGet, "/projects/{project}/data/forms/{form}", mirrorFormRecords, c.analystSubmissions)
	c.handle(http.MethodGet, "/projects/{project}/data/forms/{form}/export", mirrorExport, c.analystExport)
	// The map is drawn from the records listing's data (no file is made, so
	// no export is audited).
	c.handle(http.MethodGet, "/projects/{project}/data/forms/{form}/map", mirrorFormRecords, c.analystMap)
	// The record page shows the review thread too, whose route is the
	// stricter of the two it reads (GET records/{id} also lets enumerators in).
	c.handle(http.MethodGet, "/projects/{project}/data/records/{id}", mirrorComments, c.analystRecord)
	c.handle(http.MethodPost, "/projects/{project}/data/records/{id}/review", mirrorPatch, c.analystReview)
	c.handle(http.MethodPost, "/projects/{project}/data/records/{id}/assign", mirrorPatch, c.analystAssign)
	// A record's files (photos, recordings), downloaded as the API serves them.
	c.handle(http.MethodGet, "/projects/{project}/data/records/{id}/attachments/{name}", mirrorAttachment, c.analystAttachment)
	// The conflicts page exists to resolve them: it has resolve's rule.
	c.handle(http.MethodGet, "/projects/{project}/data/records/{id}/conflicts", mirrorResolve, c.analystConflicts)
	c.handle(http.MethodPost, "/projects/{project}/data/records/{id}/resolve", mirrorResolve, c.analystResolve)
	c.handle(http.MethodGet, "/projects/{project}/data/quarantine", mirrorQuarantine, c.analystQuarantine)
	c.handle(http.MethodPost, "/projects/{project}/data/quarantine/{id}/reapply", mirrorReapply, c.analystReapply)
	c.handle(http.MethodPost, "/projects/{project}/data/quarantine/{id}/dismiss", mirrorDismiss, c.analystDismiss)
	c.addNav(NavItem{Label: "nav.data", Path: "/projects/{project}/data", Mirror: mirrorFormRecords})
	c.addNav(NavItem{Label: "nav.quarantine", Path: "/projects/{project}/data/quarantine", Mirror: mirrorQuarantine})
}

// recordsCaller is the caller the records service gets, as the API's
// auditCaller makes it: the signed-in user, the role the adapter found and
// the client's address for the audit log.
func (c *Console) recordsCaller(r *http.Request) records.Caller {
	return records.Caller{Principal: principal(r), Role: pageFrom(r.Context()).role, RemoteAddr: c.cfg.API.ClientIP(r)}
}

// may reports whether the signed-in user of r passes the rule of the API
// route mirror in the current project: a page shows an action's form only to
// those whom the action's route lets in.
func (c *Console) may(r *http.Request, mirror string) bool {
	m, p, _ := strings.Cut(mirror, " ")
	rule, ok := c.cfg.API.RuleOf(m, p)
	if !ok {
		return false
	}
	_, err := c.cfg.API.Authorize(r.Context(), principal(r), rule, pageFrom(r.Context()).project)
	return err == nil
}
