package httpapi

import (
	"bytes"
	"encoding/json"
	"fmt"
	"net/http"
	"runtime"
	"strconv"
	"strings"
	"sync"

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
	s.handle(http.MethodGet, "/v1/projects/{project}/quarantine", ProjectRoles(domain.RoleAnalyst), s.handleQuarantine)
	s.handle(http.MethodGet, "/v1/projects/{project}/forms/{form}/records", ProjectRoles(domain.RoleAnalyst), s.handleFormRecords)
}

// caller is who calls a project route, in which role (set by the route's rule).
func caller(r *http.Request) records.Caller {
	p, _ := PrincipalFrom(r.Context())
	role, _ := RoleFrom(r.Context())
	return records.Caller{Principal: p, Role: role}
}

// pushEnvelope keeps each item raw, so that one malformed item is rejected (and
// kept in quarantine) on its own instead of failing the whole batch.
type pushEnvelope struct {
	Submissions []json.RawMessage `json:"submissions"`
}

// handlePush is POST /v1/projects/{project}/sync/push. Each item is decoded on
// its own (strictly: an unknown field is a finding), so a malformed item is
// rejected and quarantined alone and the others still apply.
func (s *Server) handlePush(w http.ResponseWriter, r *http.Request) error {
	var env pushEnvelope
	if err := decodeJSON(r, &env); err != nil {
		return err
	}
	if env.Submissions == nil {
		return domain.Invalid("invalid_request", "submissions is required", []domain.Finding{{Path: "/submissions", Keyword: "required", Message: "submissions must be an array"}})
	}
	if len(env.Submissions) > api.MaxPushItems {
		return &domain.Error{Kind: domain.KindTooLarge, Code: "too_many_items",
			Title: fmt.Sprintf("A push holds at most %d items", api.MaxPushItems), Detail: fmt.Sprintf("this one holds %d; send the rest in another push", len(env.Submissions))}
	}
	subs := make([]records.Submission, len(env.Submissions))
	findings := make([][]domain.Finding, len(env.Submissions))
	// Items are decoded in parallel chunks: on a 1000-item push this strict
	// per-item decoding is a tenth of the CPU, and it was all on one core.
	workers := runtime.GOMAXPROCS(0)
	chunk := (len(subs) + workers - 1) / workers
	var wg sync.WaitGroup
	for lo := 0; lo < len(subs); lo += chunk {
		hi := min(lo+chunk, len(subs))
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := lo; i < hi; i++ {
				subs[i], findings[i] = decodeSubmission(env.Submissions[i])
			}
		}()
	}
	wg.Wait()
	bad := map[int][]domain.Finding{}
	for i, f := range findings {
		if f != nil {
			bad[i] = f
		}
	}
	results, err := s.records.Push(r.Context(), caller(r), pathVar(r, "project"), subs, bad)
	if err != nil {
		return err
	}
	out := api.PushResponse{Results: make([]api.PushResult, len(results)), ServerTime: s.now().UTC()}
	for i, res := range results {
		pr := api.PushResult{ID: res.ID, Status: res.Status, Rev: res.Rev, Errors: apiFindings(res.Errors), MissingAttachments: res.MissingAttachments}
		if res.Current != nil {
			rec := apiRecord(*res.Current)
			pr.Current = &rec
		}
		out.Results[i] = pr
	}
	return writeJSON(w, http.StatusOK, out)
}

// decodeSubmission decodes one pushed item strictly. An item that cannot be
// decoded comes back with a finding and whatever of its id and form could be
// read, so its quarantine entry is findable.
func decodeSubmission(raw json.RawMessage) (records.Submission, []domain.Finding) {
	var it api.Submission
	dec := json.NewDecoder(bytes.NewReader(raw))
	dec.DisallowUnknownFields()
	if err := dec.Decode(&it); err != nil {
		f := []domain.Finding{{Path: "", Keyword: "json", Message: describeJSONError(err, dec, len(raw))}}
		var loose struct {
			ID          string `json:"id"`
			Form        string `json:"form"`
			FormVersion string `json:"form_version"`
		}
		_ = json.Unmarshal(raw, &loose)
		return records.Submission{ID: loose.ID, Form: loose.Form, FormVersion: loose.FormVersion, Raw: raw}, f
	}
	sub := records.Submission{
		ID: it.ID, Form: it.Form, FormVersion: it.FormVersion, BaseRev: it.BaseRev,
		ClientModifiedAt: it.ClientModifiedAt, Deleted: it.Deleted, Data: it.Data, Raw: raw,
	}
	for _, a := range it.Attachments {
		sub.Attachments = append(sub.Attachments, domain.Attachment(a))
	}
	return sub, nil
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

// handlePull is GET /v1/projects/{project}/sync/pull?since=&limit=.
func (s *Server) handlePull(w http.ResponseWriter, r *http.Request) error {
	limit, err := queryLimit(r)
	if err != nil {
		return err
	}
	page, err := s.records.Pull(r.Context(), caller(r), pathVar(r, "project"), r.URL.Query().Get("since"), limit, "")
	if err != nil {
		return err
	}
	out := api.PullResponse{Changes: make([]api.Record, len(page.Records)), Next: page.Next, More: page.More}
	for i, rec := range page.Records {
		out.Changes[i] = apiRecord(rec)
	}
	return writeJSON(w, http.StatusOK, out)
}

// handleFormRecords is GET /v1/projects/{project}/forms/{form}/records: the
// feed of one form, with next only when more records follow.
func (s *Server) handleFormRecords(w http.ResponseWriter, r *http.Request) error {
	limit, err := queryLimit(r)
	if err != nil {
		return err
	}
	page, err := s.records.Pull(r.Context(), caller(r), pathVar(r, "project"), r.URL.Query().Get("cursor"), limit, pathVar(r, "form"))
	if err != nil {
		return err
	}
	out := api.RecordPage{Records: make([]api.Record, len(page.Records))}
	for i, rec := range page.Records {
		out.Records[i] = apiRecord(rec)
	}
	if page.More {
		out.Next = page.Next
	}
	return writeJSON(w, http.StatusOK, out)
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
	out := apiRecord(rec)
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
	rec, err := s.records.Correct(r.Context(), caller(r), pathVar(r, "project"), pathVar(r, "id"), unquoteETag(r.Header.Get("If-Match")), body.Data)
	if err != nil {
		return err
	}
	w.Header().Set("ETag", quoteETag(rec.Rev))
	return writeJSON(w, http.StatusOK, apiRecord(rec))
}

// handleResolveRecord is POST /v1/projects/{project}/records/{id}/resolve.
func (s *Server) handleResolveRecord(w http.ResponseWriter, r *http.Request) error {
	var body api.ResolveRequest
	if err := decodeJSON(r, &body); err != nil {
		return err
	}
	rec, err := s.records.Resolve(r.Context(), caller(r), pathVar(r, "project"), pathVar(r, "id"), unquoteETag(body.Rev), body.Data, body.Deleted)
	if err != nil {
		return err
	}
	w.Header().Set("ETag", quoteETag(rec.Rev))
	return writeJSON(w, http.StatusOK, apiRecord(rec))
}

// handlePatchRecord is PATCH /v1/projects/{project}/records/{id}: review and assignment.
func (s *Server) handlePatchRecord(w http.ResponseWriter, r *http.Request) error {
	var body api.RecordPatch
	if err := decodeJSON(r, &body); err != nil {
		return err
	}
	rec, err := s.records.Update(r.Context(), caller(r), pathVar(r, "project"), pathVar(r, "id"),
		records.Patch{ReviewState: body.ReviewState, Comment: body.Comment, AssignedTo: body.AssignedTo})
	if err != nil {
		return err
	}
	w.Header().Set("ETag", quoteETag(rec.Rev))
	return writeJSON(w, http.StatusOK, apiRecord(rec))
}

// handleQuarantine is GET /v1/projects/{project}/quarantine?resolved=&cursor=&limit=.
func (s *Server) handleQuarantine(w http.ResponseWriter, r *http.Request) error {
	limit, err := queryLimit(r)
	if err != nil {
		return err
	}
	all := false
	switch v := r.URL.Query().Get("resolved"); v {
	case "", "false":
	case "true":
		all = true
	default:
		return &domain.Error{Kind: domain.KindBadRequest, Code: "invalid_query", Title: "resolved must be true or false"}
	}
	items, next, err := s.records.Quarantine(r.Context(), pathVar(r, "project"), all, r.URL.Query().Get("cursor"), limit)
	if err != nil {
		return err
	}
	out := api.QuarantineList{Items: make([]api.QuarantineItem, len(items)), Next: next}
	for i, q := range items {
		out.Items[i] = api.QuarantineItem{ID: q.ID, RecordID: q.RecordID, Form: q.FormID, FormVersion: q.FormVersion, Submission: q.Submission,
			Errors: apiFindings(q.Errors), FirstSeen: q.FirstSeen, LastSeen: q.LastSeen, Attempts: q.Attempts, SubmittedBy: q.SubmittedBy, ResolvedAt: q.ResolvedAt}
		if out.Items[i].Errors == nil {
			out.Items[i].Errors = []api.Finding{}
		}
	}
	return writeJSON(w, http.StatusOK, out)
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
		out.Attachments = append(out.Attachments, api.Attachment(a))
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
