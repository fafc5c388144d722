package httpapi

import (
	"bytes"
	"encoding/json"
	"io"
	"net/http"

	jsonv2 "github.com/go-json-experiment/json"
	"github.com/go-json-experiment/json/jsontext"

	"github.com/fieldsync/fieldsync/api"
	"github.com/fieldsync/fieldsync/internal/domain"
	"github.com/fieldsync/fieldsync/internal/records"
)

// pushEnvelope keeps each item raw, so that one malformed item is rejected (and
// kept in quarantine) on its own instead of failing the whole batch.
type pushEnvelope struct {
	Submissions []json.RawMessage `json:"submissions"`
}

// pushItemsInFlight is how many pushed items the server decodes, validates
// and writes at once; further pushes wait (first come, first served) with
// their bodies read. Each item in work holds its decoded answers, canonical
// form, validation state and record, several times its JSON: unbounded, 100
// tablets sending 500 items at once took the server to 600 MB. 1,000 items
// keep the 1,000-tablet fleet near 100 MB and still let a group commit gather a thousand
// one-item pushes. It is records.MaxPushItems, so the largest push fits; a
// larger one is refused (413 too_many_items) without waiting.
const pushItemsInFlight = records.MaxPushItems

// handlePush is POST /v1/projects/{project}/sync/push. Each item is decoded on
// its own (strictly: an unknown field is a finding), so a malformed item is
// rejected and quarantined alone and the others still apply.
func (s *Server) handlePush(w http.ResponseWriter, r *http.Request) error {
	body, err := readJSONBody(r)
	if err != nil {
		return err
	}
	raws, ok := splitPush(body)
	if !ok {
		// Anything the fast split does not take (bad JSON, an unknown or
		// repeated member, "Submissions" in another case) goes through the
		// strict decoder, which accepts what it always accepted and words
		// the errors with their byte offsets.
		var env pushEnvelope
		if err := decodeJSONBytes(body, &env, "/submissions"); err != nil {
			return err
		}
		raws = env.Submissions
	}
	if raws == nil {
		return domain.Invalid("invalid_request", "submissions is required", []domain.Finding{{Path: "/submissions", Keyword: "required", Message: "submissions must be an array"}})
	}
	// A push waits its turn here, its body read (a slow link holds no slot),
	// while pushItemsInFlight items are being worked on.
	slots := int64(len(raws))
	if slots > pushItemsInFlight {
		slots = 0 // PushRaw refuses it at once (413 too_many_items): no need to wait
	}
	s.metrics.pushWaiting.Add(float64(slots))
	err = s.pushSlots.Acquire(r.Context(), slots)
	s.metrics.pushWaiting.Sub(float64(slots))
	if err != nil {
		return err
	}
	defer s.pushSlots.Release(slots)
	// Items are decoded inside the push's pipeline (records.PushRaw), on
	// every core and while the store writes the items before them.
	results, err := s.records.PushRaw(r.Context(), s.auditCaller(r), pathVar(r, "project"), raws, decodeItem)
	if err != nil {
		return err
	}
	s.deviceSynced(r)
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

// splitPush finds the items of a push body {"submissions": [...]} without
// copying them: each item aliases body. It reports false for anything but
// that plain shape (bad JSON, another member, a repeated member, invalid
// UTF-8), which the caller then hands to the strict decoder for its verdict
// and its error messages. encoding/json/v2's tokenizer does this about ten
// times faster than encoding/json.
func splitPush(body []byte) ([]json.RawMessage, bool) {
	dec := jsontext.NewDecoder(bytes.NewBuffer(body))
	if tok, err := dec.ReadToken(); err != nil || tok.Kind() != '{' {
		return nil, false
	}
	var items []json.RawMessage
	seen := false
	for dec.PeekKind() != '}' {
		name, err := dec.ReadToken()
		if err != nil || name.String() != "submissions" || seen {
			return nil, false
		}
		seen = true
		switch dec.PeekKind() {
		case 'n':
			if _, err := dec.ReadToken(); err != nil {
				return nil, false
			}
			continue
		case '[':
		default:
			return nil, false
		}
		if _, err := dec.ReadToken(); err != nil {
			return nil, false
		}
		items = make([]json.RawMessage, 0, 64)
		for dec.PeekKind() != ']' {
			v, err := dec.ReadValue()
			if err != nil {
				return nil, false
			}
			items = append(items, json.RawMessage(v))
		}
		if _, err := dec.ReadToken(); err != nil {
			return nil, false
		}
	}
	if _, err := dec.ReadToken(); err != nil {
		return nil, false
	}
	if _, err := dec.ReadToken(); err != io.EOF {
		return nil, false // trailing data
	}
	return items, true
}

// decodeSubmissionFast decodes one pushed item with encoding/json/v2, which is
// stricter than encoding/json (it refuses repeated members, invalid UTF-8 and
// names in another case): whatever it accepts, decodeSubmission accepts with
// the same values (FuzzDecodeSubmissionFast checks it). It reports false for
// anything else, and the caller asks decodeSubmission for the verdict.
func decodeSubmissionFast(raw json.RawMessage) (records.Submission, bool) {
	var it api.Submission
	if err := jsonv2.Unmarshal(raw, &it, jsonv2.RejectUnknownMembers(true)); err != nil {
		return records.Submission{}, false
	}
	return submissionOf(it, raw), true
}

// decodeItem decodes one pushed item: with encoding/json/v2 when it can, with
// encoding/json for the verdict and the findings otherwise.
func decodeItem(raw json.RawMessage) (records.Submission, []domain.Finding) {
	if sub, ok := decodeSubmissionFast(raw); ok {
		return sub, nil
	}
	return decodeSubmission(raw)
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
	if dup := duplicateMember(raw, "/data"); dup != "" {
		// Which of the repeated values was meant is unknown: keep the item as
		// sent, findable by the values encoding/json took.
		sub := submissionOf(it, raw)
		return sub, []domain.Finding{{Path: "", Keyword: "json", Message: dup}}
	}
	return submissionOf(it, raw), nil
}

// submissionOf is a decoded pushed item as the sync service takes it.
func submissionOf(it api.Submission, raw json.RawMessage) records.Submission {
	sub := records.Submission{
		ID: it.ID, Form: it.Form, FormVersion: it.FormVersion, BaseRev: it.BaseRev,
		ClientModifiedAt: it.ClientModifiedAt, Deleted: it.Deleted, Data: it.Data, Raw: raw,
	}
	for _, a := range it.Attachments {
		sub.Attachments = append(sub.Attachments, domain.Attachment(a))
	}
	return sub
}
