package httpapi

import (
	"bytes"
	"fmt"
	"io"
	"net/http"
	"slices"
	"strings"

	"github.com/fieldsync/fieldsync/api"
	"github.com/fieldsync/fieldsync/internal/domain"
	"github.com/fieldsync/fieldsync/internal/records"
)

// registerQuarantineRoutes adds the quarantine routes of protocol.md §3.
// Analysts and managers list, re-apply and dismiss entries. Designers list
// them too, since a schema that is too strict shows there first, but neither
// re-apply nor dismiss: the data is not theirs to apply.
func (s *Server) registerQuarantineRoutes() {
	if s.records == nil {
		return
	}
	s.handle(http.MethodGet, "/v1/projects/{project}/quarantine", ProjectRoles(domain.RoleAnalyst, domain.RoleDesigner), s.handleQuarantine)
	s.handle(http.MethodPost, "/v1/projects/{project}/quarantine/{id}/reapply", ProjectRoles(domain.RoleAnalyst), s.handleReapplyQuarantine)
	s.handle(http.MethodPost, "/v1/projects/{project}/quarantine/{id}/dismiss", ProjectRoles(domain.RoleAnalyst), s.handleDismissQuarantine)
}

// quarantineParams are the query parameters of the quarantine listing.
var quarantineParams = []string{"state", "form", "resolved", "cursor", "limit"}

// handleQuarantine is GET /v1/projects/{project}/quarantine?state=&form=&resolved=&cursor=&limit=.
// state may be repeated or comma-separated; without it the open entries are
// listed. resolved=true (the older spelling) lists every state.
func (s *Server) handleQuarantine(w http.ResponseWriter, r *http.Request) error {
	q := r.URL.Query()
	for k := range q {
		if !slices.Contains(quarantineParams, k) {
			// A misspelt filter would list everything, which reads as an answer.
			return &domain.Error{Kind: domain.KindBadRequest, Code: "invalid_query", Title: "Unknown query parameter",
				Detail: fmt.Sprintf("%q is not one of %s", k, strings.Join(quarantineParams, ", "))}
		}
	}
	limit, err := queryLimit(r)
	if err != nil {
		return err
	}
	f := domain.QuarantineFilter{FormID: q.Get("form")}
	for _, v := range q["state"] {
		for st := range strings.SplitSeq(v, ",") {
			if st = strings.TrimSpace(st); st != "" {
				f.States = append(f.States, st)
			}
		}
	}
	switch v := q.Get("resolved"); v {
	case "", "false":
		if len(f.States) == 0 {
			f.States = []string{domain.QuarantineOpen}
		}
	case "true":
		if len(f.States) > 0 {
			return &domain.Error{Kind: domain.KindBadRequest, Code: "invalid_query", Title: "Use state or resolved, not both",
				Detail: "resolved=true lists every state; state=open,resolved,dismissed says the same"}
		}
	default:
		return &domain.Error{Kind: domain.KindBadRequest, Code: "invalid_query", Title: "resolved must be true or false"}
	}
	items, next, err := s.records.Quarantine(r.Context(), pathVar(r, "project"), f, q.Get("cursor"), limit)
	if err != nil {
		return err
	}
	out := api.QuarantineList{Items: make([]api.QuarantineItem, len(items)), Next: next}
	for i, it := range items {
		out.Items[i] = apiQuarantineItem(it)
	}
	return writeJSON(w, http.StatusOK, out)
}

// apiQuarantineItem is an entry as the protocol shows it.
func apiQuarantineItem(q domain.QuarantineItem) api.QuarantineItem {
	out := api.QuarantineItem{ID: q.ID, RecordID: q.RecordID, Form: q.FormID, FormVersion: q.FormVersion, Submission: q.Submission,
		Errors: apiFindings(q.Errors), FirstSeen: q.FirstSeen, LastSeen: q.LastSeen, Attempts: q.Attempts, SubmittedBy: q.SubmittedBy,
		DeviceID: q.DeviceID, ResolvedAt: q.ResolvedAt, Reason: q.Reason, State: q.State(), ResolvedBy: q.ResolvedBy,
		DismissedAt: q.DismissedAt, DismissedBy: q.DismissedBy, DismissReason: q.DismissReason}
	if out.Errors == nil {
		out.Errors = []api.Finding{}
	}
	if r := q.LastReapply; r != nil {
		out.LastReapply = &api.QuarantineReapply{By: r.By, At: r.At, Applied: r.Applied, Status: r.Status, Rev: r.Rev,
			FormVersion: r.FormVersion, Data: r.Data, Errors: apiFindings(r.Errors)}
	}
	return out
}

// handleReapplyQuarantine is POST /v1/projects/{project}/quarantine/{id}/reapply:
// the body {"data", "form_version"} is optional (none applies the item as
// submitted). The answer is the push result, and the entry afterwards.
func (s *Server) handleReapplyQuarantine(w http.ResponseWriter, r *http.Request) error {
	var body api.ReapplyRequest
	data, err := io.ReadAll(r.Body)
	if err != nil {
		return fmt.Errorf("reading request body: %w", err)
	}
	if len(bytes.TrimSpace(data)) > 0 {
		r.Body = io.NopCloser(bytes.NewReader(data))
		if err := decodeJSON(r, &body); err != nil {
			return err
		}
	}
	if body.Data != nil && bytes.Equal(bytes.TrimSpace(body.Data), []byte("null")) {
		body.Data = nil // "data": null means no correction, as an absent member
	}
	res, entry, err := s.records.ReapplyQuarantine(r.Context(), caller(r), pathVar(r, "project"), pathVar(r, "id"),
		records.Reapply{Data: body.Data, FormVersion: body.FormVersion})
	if err != nil {
		return err
	}
	out := api.ReapplyResult{PushResult: api.PushResult{ID: res.ID, Status: res.Status, Rev: res.Rev, Errors: apiFindings(res.Errors),
		MissingAttachments: res.MissingAttachments}, Entry: apiQuarantineItem(entry)}
	if res.Current != nil {
		rec := apiRecord(*res.Current)
		out.Current = &rec
	}
	return writeJSON(w, http.StatusOK, out)
}

// handleDismissQuarantine is POST /v1/projects/{project}/quarantine/{id}/dismiss
// with {"reason"}: 204, the entry kept and marked dismissed.
func (s *Server) handleDismissQuarantine(w http.ResponseWriter, r *http.Request) error {
	var body api.DismissRequest
	if err := decodeJSON(r, &body); err != nil {
		return err
	}
	if _, err := s.records.DismissQuarantine(r.Context(), caller(r), pathVar(r, "project"), pathVar(r, "id"), body.Reason); err != nil {
		return err
	}
	w.WriteHeader(http.StatusNoContent)
	return nil
}
