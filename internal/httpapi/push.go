package httpapi

import (
	"bytes"
	"encoding/json"
	"fmt"
	"net/http"
	"runtime"
	"sync"

	"github.com/fieldsync/fieldsync/api"
	"github.com/fieldsync/fieldsync/internal/domain"
	"github.com/fieldsync/fieldsync/internal/records"
)

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
