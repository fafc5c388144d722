package httpapi

import (
	"encoding/json"
	"fmt"
	"net/http"
	"strconv"
	"strings"

	"github.com/fieldsync/fieldsync/api"
	"github.com/fieldsync/fieldsync/internal/domain"
	"github.com/fieldsync/fieldsync/internal/records"
)

// registerRecordRoutes adds the sync routes and the analysts' record routes of
// protocol.md §3.
func (s *Server) registerRecordRoutes() {
	if s.records == nil {
		return
	}
	s.handle(http.MethodPost, "/v1/projects/{project}/sync/push", ProjectRoles(domain.RoleEnumerator), s.handlePush)
	s.handle(http.MethodGet, "/v1/projects/{project}/sync/pull", ProjectRoles(domain.RoleEnumerator, domain.RoleAnalyst), s.handlePull)
	s.handle(http.MethodGet, "/v1/projects/{project}/records/{id}", ProjectRoles(domain.RoleAnalyst, domain.RoleEnumerator), s.handleGetRecord)
	s.handle(http.MethodPut, "/v1/projects/{project}/records/{id}", ProjectRoles(domain.RoleAnalyst), s.handlePutRecord)
	s.handle(http.MethodPatch, "/v1/projects/{project}/records/{id}", ProjectRoles(domain.RoleAnalyst), s.handlePatchRecord)
	s.handle(http.MethodPost, "/v1/projects/{project}/records/{id}/resolve", ProjectRoles(domain.RoleAnalyst), s.handleResolveRecord)
	s.handle(http.MethodGet, "/v1/projects/{project}/forms/{form}/records", ProjectRoles(domain.RoleAnalyst), s.handleFormRecords)
	// Review threads: comments and review-state changes (review.go).
	s.handle(http.MethodGet, "/v1/projects/{project}/records/{id}/comments", ProjectRoles(domain.RoleAnalyst), s.handleListComments)
	s.handle(http.MethodPost, "/v1/projects/{project}/records/{id}/comments", ProjectRoles(domain.RoleAnalyst), s.handleAddComment)
}

// caller is who calls a project route, in which role (set by the route's rule).
func caller(r *http.Request) records.Caller {
	p, _ := PrincipalFrom(r.Context())
	role, _ := RoleFrom(r.Context())
	return records.Caller{Principal: p, Role: role}
}

func queryLimit(r *http.Request) (int, error) {
	v := r.URL.Query().Get("limit")
	if v == "" {
		return 0, nil
	}
	n, err := strconv.Atoi(v)
	if err != nil || n < 1 || n > api.MaxPullLimit {
		return 0, &domain.Error{Kind: domain.KindBadRequest, Code: "invalid_limit", Title: fmt.Sprintf("limit must be a whole number from 1 to %d", api.MaxPullLimit)}
	}
	return n, nil
}

// handleGetRecord is GET /v1/projects/{project}/records/{id}[?revs=true]; the ETag is the rev.
func (s *Server) handleGetRecord(w http.ResponseWriter, r *http.Request) error {
	withRevs := false
	switch v := r.URL.Query().Get("revs"); v {
	case "", "false":
	case "true":
		withRevs = true
	default:
		return &domain.Error{Kind: domain.KindBadRequest, Code: "invalid_query", Title: "revs must be true or false"}
	}
	rec, revs, err := s.records.Get(r.Context(), caller(r), pathVar(r, "project"), pathVar(r, "id"), withRevs)
	if err != nil {
		return err
	}
	out, err := s.namedRecord(r, rec)
	if err != nil {
		return err
	}
	pres, err := s.records.Presence(r.Context(), rec.ProjectID, []domain.Record{rec})
	if err != nil {
		return err
	}
	attachmentPresence(&out, pres[rec.ID])
	for _, rv := range revs {
		out.Revs = append(out.Revs, api.Revision{Rev: rv.Rev, Parent: rv.Parent, Deleted: rv.Deleted, Data: rv.Data, FormVersion: rv.FormVersion,
			ClientModifiedAt: rv.ClientModifiedAt, CreatedBy: rv.CreatedBy, DeviceID: rv.DeviceID, CreatedAt: rv.CreatedAt})
	}
	w.Header().Set("ETag", quoteETag(rec.Rev))
	return writeJSON(w, http.StatusOK, out)
}

// handlePutRecord is PUT /v1/projects/{project}/records/{id}, a correction under If-Match.
func (s *Server) handlePutRecord(w http.ResponseWriter, r *http.Request) error {
	var body api.RecordPut
	if err := decodeJSON(r, &body); err != nil {
		return err
	}
	rec, err := s.records.Correct(r.Context(), s.auditCaller(r), pathVar(r, "project"), pathVar(r, "id"), unquoteETag(r.Header.Get("If-Match")), body.Data)
	if err != nil {
		return err
	}
	return s.writeRecord(w, r, rec)
}

// handleResolveRecord is POST /v1/projects/{project}/records/{id}/resolve.
func (s *Server) handleResolveRecord(w http.ResponseWriter, r *http.Request) error {
	var body api.ResolveRequest
	if err := decodeJSON(r, &body); err != nil {
		return err
	}
	rec, err := s.records.Resolve(r.Context(), s.auditCaller(r), pathVar(r, "project"), pathVar(r, "id"), unquoteETag(body.Rev), body.Data, body.Deleted)
	if err != nil {
		return err
	}
	return s.writeRecord(w, r, rec)
}

// handlePatchRecord is PATCH /v1/projects/{project}/records/{id}: review and assignment.
func (s *Server) handlePatchRecord(w http.ResponseWriter, r *http.Request) error {
	var body api.RecordPatch
	if err := decodeJSON(r, &body); err != nil {
		return err
	}
	rec, err := s.records.Update(r.Context(), s.auditCaller(r), pathVar(r, "project"), pathVar(r, "id"),
		records.Patch{ReviewState: body.ReviewState, Comment: body.Comment, AssignedTo: body.AssignedTo})
	if err != nil {
		return err
	}
	return s.writeRecord(w, r, rec)
}

func apiFindings(f []domain.Finding) []api.Finding {
	if len(f) == 0 {
		return nil
	}
	out := make([]api.Finding, len(f))
	for i, x := range f {
		out[i] = api.Finding{Path: x.Path, Keyword: x.Keyword, Message: x.Message}
	}
	return out
}

func apiRecord(r domain.Record) api.Record {
	out := api.Record{
		ID: r.ID, Form: r.FormID, FormVersion: r.FormVersion, Rev: r.Rev, Deleted: r.Deleted, Data: r.Data,
		CreatedBy: r.CreatedBy, DeviceID: r.DeviceID, ClientModifiedAt: r.ClientModifiedAt, CreatedAt: r.CreatedAt,
		UpdatedAt: r.UpdatedAt, ReviewState: r.ReviewState, ReviewComment: r.ReviewComment,
		Conflicts: make([]api.Conflict, len(r.Conflicts)), AssignedTo: r.AssignedTo,
	}
	if out.AssignedTo == nil {
		out.AssignedTo = []string{}
	}
	for i, c := range r.Conflicts {
		ac := api.Conflict{Path: c.Path, Base: c.Base, Values: make([]api.ConflictValue, len(c.Values))}
		if ac.Base == nil {
			ac.Base = json.RawMessage("null")
		}
		for j, v := range c.Values {
			ac.Values[j] = api.ConflictValue(v)
			if ac.Values[j].Value == nil {
				ac.Values[j].Value = json.RawMessage("null")
			}
		}
		out.Conflicts[i] = ac
	}
	for _, a := range r.Attachments {
		out.Attachments = append(out.Attachments, api.AttachedFile{Attachment: api.Attachment(a)})
	}
	return out
}

// quoteETag makes an ETag header value of a revision or hash.
func quoteETag(v string) string { return `"` + v + `"` }

// unquoteETag accepts an If-Match / If-None-Match value with or without quotes
// (protocol.md), and a weak prefix.
func unquoteETag(v string) string {
	v = strings.TrimSpace(v)
	v = strings.TrimPrefix(v, "W/")
	return strings.Trim(v, `"`)
}
