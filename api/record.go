package api

import (
	"context"
	"encoding/json"
	"net/http"
	"net/url"
	"strconv"
	"time"
)

// Review states of a record (protocol.md §3).
const (
	ReviewReceived  = "received"
	ReviewApproved  = "approved"
	ReviewHasIssues = "has_issues"
	ReviewRejected  = "rejected"
)

// AttachedFile is a record's declaration of one file, and whether the
// server holds its bytes (a file not uploaded yet is declared, not present).
type AttachedFile struct {
	Attachment
	Present bool `json:"present"`
}

// Attachment declares one file a record's answers refer to.
type Attachment struct {
	Name        string `json:"name"`
	SHA256      string `json:"sha256"`
	Size        int64  `json:"size"`
	ContentType string `json:"content_type,omitempty"`
}

// Record is one submission in its current state, as pull, the record routes and
// push results answer it.
type Record struct {
	ID               string          `json:"id"`
	Form             string          `json:"form"`
	FormVersion      string          `json:"form_version"`
	Rev              string          `json:"rev"`
	Deleted          bool            `json:"deleted"`
	Data             json.RawMessage `json:"data"`
	CreatedBy        string          `json:"created_by"`
	DeviceID         string          `json:"device_id,omitempty"`
	DeviceName       string          `json:"device_name,omitempty"` // the tablet's name, in answers to people (not in a tablet's pull)
	ClientModifiedAt time.Time       `json:"client_modified_at"`
	CreatedAt        time.Time       `json:"created_at"`
	UpdatedAt        time.Time       `json:"updated_at"`
	ReviewState      string          `json:"review_state"`
	ReviewComment    string          `json:"review_comment,omitempty"`
	// Conflicts and AssignedTo are always present (possibly empty), so clients
	// need no null checks.
	Conflicts   []Conflict     `json:"conflicts"`
	AssignedTo  []string       `json:"assigned_to"`
	Attachments []AttachedFile `json:"attachments,omitempty"`
	// Revs is the revision history when asked for with ?revs=true: every
	// revision the server holds, parents before their children, otherwise
	// oldest first. It includes side revisions (the pushed edit of a merge, an
	// edit kept as a conflict); the record's own line is found by following
	// Parent from Rev.
	Revs []Revision `json:"revs,omitempty"`
}

// Conflict is one clash kept on a record for an analyst to settle. Path is the
// JSON pointer of the field, or "" for a whole-record clash (policies reject and
// last-write-wins), whose values are then whole data objects.
type Conflict struct {
	Path   string          `json:"path"`
	Base   json.RawMessage `json:"base"`
	Values []ConflictValue `json:"values"`
}

// ConflictValue is one side of a clash.
type ConflictValue struct {
	Rev              string          `json:"rev"`
	Value            json.RawMessage `json:"value"`
	Deleted          bool            `json:"deleted,omitempty"`
	ClientModifiedAt time.Time       `json:"client_modified_at"`
	DeviceID         string          `json:"device_id,omitempty"`
	By               string          `json:"by,omitempty"`
}

// Revision is one entry of a record's history.
type Revision struct {
	Rev              string          `json:"rev"`
	Parent           string          `json:"parent,omitempty"`
	Deleted          bool            `json:"deleted"`
	Data             json.RawMessage `json:"data"`
	FormVersion      string          `json:"form_version"`
	ClientModifiedAt time.Time       `json:"client_modified_at"`
	CreatedBy        string          `json:"created_by"`
	DeviceID         string          `json:"device_id,omitempty"`
	CreatedAt        time.Time       `json:"created_at"`
}

// RecordPut is the body of PUT /v1/projects/{project}/records/{id}, an
// analyst's correction; the revision it corrects travels in If-Match.
type RecordPut struct {
	Data json.RawMessage `json:"data"`
}

// ResolveRequest is the body of POST /v1/projects/{project}/records/{id}/resolve:
// Rev is the revision whose conflicts are settled, Data the chosen values.
// Deleted settles them with a tombstone instead (Data may then be left out),
// for a clash of a deletion with an edit that the deletion should win.
type ResolveRequest struct {
	Rev     string          `json:"rev"`
	Data    json.RawMessage `json:"data,omitempty"`
	Deleted bool            `json:"deleted,omitempty"`
}

// RecordPatch is the body of PATCH /v1/projects/{project}/records/{id}. Each field
// is optional: nil leaves it as it is, and a non-nil empty AssignedTo clears the
// assignment.
type RecordPatch struct {
	ReviewState *string   `json:"review_state,omitempty"`
	Comment     *string   `json:"comment,omitempty"`
	AssignedTo  *[]string `json:"assigned_to,omitempty"`
}

// RecordPage is one page of GET /v1/projects/{project}/forms/{form}/records.
type RecordPage struct {
	Records []Record `json:"records"`
	Next    string   `json:"next,omitempty"`
}

// QuarantineItem is a pushed item the server kept aside because it could not
// become a record, with the reasons, to be fixed and re-pushed.
type QuarantineItem struct {
	ID string `json:"id"`
	// RecordID is the id of the record the item would have made or changed.
	RecordID    string          `json:"record_id,omitempty"`
	Form        string          `json:"form"`
	FormVersion string          `json:"form_version"`
	Submission  json.RawMessage `json:"submission"`
	Errors      []Finding       `json:"errors"`
	FirstSeen   time.Time       `json:"first_seen"`
	LastSeen    time.Time       `json:"last_seen"`
	Attempts    int             `json:"attempts"`
	// SubmittedBy is the user or device that pushed the item.
	SubmittedBy string `json:"submitted_by,omitempty"`
	// ResolvedAt is set once a record with RecordID was stored (listed only with
	// ?resolved=true); a forbidden item is never resolved that way.
	ResolvedAt *time.Time `json:"resolved_at,omitempty"`
	// Reason is QuarantineRejected or QuarantineForbidden.
	Reason string `json:"reason"`
	// DeviceID is the tablet that pushed the item ("" for a user).
	DeviceID string `json:"device_id,omitempty"`
	// State is QuarantineOpen, QuarantineResolved or QuarantineDismissed.
	State string `json:"state"`
	// ResolvedBy is who re-applied the item; absent when a later push of its
	// record resolved it.
	ResolvedBy string `json:"resolved_by,omitempty"`
	// DismissedAt, DismissedBy and DismissReason say who dismissed the item,
	// when and why.
	DismissedAt   *time.Time `json:"dismissed_at,omitempty"`
	DismissedBy   string     `json:"dismissed_by,omitempty"`
	DismissReason string     `json:"dismiss_reason,omitempty"`
	// LastReapply is the latest re-apply of the item, applied or refused,
	// with the corrected data that was tried.
	LastReapply *QuarantineReapply `json:"last_reapply,omitempty"`
}

// Reasons of a quarantine entry.
const (
	// QuarantineRejected: the item failed its checks; Errors say why.
	QuarantineRejected = "rejected"
	// QuarantineForbidden: its device may not write that record.
	QuarantineForbidden = "forbidden"
)

// QuarantineList answers GET /v1/projects/{project}/quarantine; Next is the
// cursor of the following page, "" on the last one.
type QuarantineList struct {
	Items []QuarantineItem `json:"items"`
	Next  string           `json:"next,omitempty"`
}

func recordPath(project, id string) string {
	return "/v1/projects/" + url.PathEscape(project) + "/records/" + url.PathEscape(id)
}

// GetRecord calls GET /v1/projects/{project}/records/{id}, with the revision
// history when revs is set. Its Rev is also the record's ETag.
func (c *Client) GetRecord(ctx context.Context, project, id string, revs bool) (Record, error) {
	path := recordPath(project, id)
	if revs {
		path += "?revs=true"
	}
	var out Record
	err := c.Do(ctx, http.MethodGet, path, nil, &out)
	return out, err
}

// CorrectRecord calls PUT /v1/projects/{project}/records/{id} with If-Match:
// ifMatch, the rev the correction was made from. A stale rev is a *Problem with
// Status 412 (Code "rev_mismatch"); data that fails the schema one with Status
// 422 and the findings.
func (c *Client) CorrectRecord(ctx context.Context, project, id, ifMatch string, data json.RawMessage) (Record, error) {
	var out Record
	_, _, err := c.Exchange(ctx, http.MethodPut, recordPath(project, id), http.Header{"If-Match": {`"` + ifMatch + `"`}},
		RecordPut{Data: data}, &out)
	return out, err
}

// ResolveRecord calls POST /v1/projects/{project}/records/{id}/resolve: the
// record's conflicts are settled with the chosen data.
func (c *Client) ResolveRecord(ctx context.Context, project, id string, req ResolveRequest) (Record, error) {
	var out Record
	err := c.Do(ctx, http.MethodPost, recordPath(project, id)+"/resolve", req, &out)
	return out, err
}

// PatchRecord calls PATCH /v1/projects/{project}/records/{id}: review state,
// comment and assignment.
func (c *Client) PatchRecord(ctx context.Context, project, id string, p RecordPatch) (Record, error) {
	var out Record
	err := c.Do(ctx, http.MethodPatch, recordPath(project, id), p, &out)
	return out, err
}

// QuarantineQuery selects a page of GET /v1/projects/{project}/quarantine.
type QuarantineQuery struct {
	// Resolved lists the entries of every state (an older spelling of
	// listing them all); it cannot be combined with State.
	Resolved bool
	// State lists the entries of these states (QuarantineOpen, …); none
	// means the open ones.
	State []string
	// Form lists the entries of one form.
	Form   string
	Cursor string
	Limit  int
}

// ListQuarantine calls GET /v1/projects/{project}/quarantine: one page of the
// rejected items, in the order they were first seen.
func (c *Client) ListQuarantine(ctx context.Context, project string, q QuarantineQuery) (QuarantineList, error) {
	v := url.Values{}
	if q.Resolved {
		v.Set("resolved", "true")
	}
	for _, st := range q.State {
		v.Add("state", st)
	}
	if q.Form != "" {
		v.Set("form", q.Form)
	}
	if q.Cursor != "" {
		v.Set("cursor", q.Cursor)
	}
	if q.Limit > 0 {
		v.Set("limit", strconv.Itoa(q.Limit))
	}
	path := "/v1/projects/" + url.PathEscape(project) + "/quarantine"
	if len(v) > 0 {
		path += "?" + v.Encode()
	}
	var out QuarantineList
	err := c.Do(ctx, http.MethodGet, path, nil, &out)
	return out, err
}

// ListFormRecords calls GET /v1/projects/{project}/forms/{form}/records: one
// page of the form's records in commit order; Next is "" on the last page.
func (c *Client) ListFormRecords(ctx context.Context, project, form, cursor string, limit int) (RecordPage, error) {
	v := url.Values{}
	if cursor != "" {
		v.Set("cursor", cursor)
	}
	if limit > 0 {
		v.Set("limit", strconv.Itoa(limit))
	}
	path := "/v1/projects/" + url.PathEscape(project) + "/forms/" + url.PathEscape(form) + "/records"
	if len(v) > 0 {
		path += "?" + v.Encode()
	}
	var out RecordPage
	err := c.Do(ctx, http.MethodGet, path, nil, &out)
	return out, err
}
