package api

import (
	"encoding/json"
	"time"
)

// Review states of a record (protocol.md §3).
const (
	ReviewReceived  = "received"
	ReviewApproved  = "approved"
	ReviewHasIssues = "has_issues"
	ReviewRejected  = "rejected"
)

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
	ClientModifiedAt time.Time       `json:"client_modified_at"`
	CreatedAt        time.Time       `json:"created_at"`
	UpdatedAt        time.Time       `json:"updated_at"`
	ReviewState      string          `json:"review_state"`
	ReviewComment    string          `json:"review_comment,omitempty"`
	// Conflicts and AssignedTo are always present (possibly empty), so clients
	// need no null checks.
	Conflicts   []Conflict   `json:"conflicts"`
	AssignedTo  []string     `json:"assigned_to"`
	Attachments []Attachment `json:"attachments,omitempty"`
	// Revs is the revision history, oldest first, when asked for with ?revs=true.
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
type ResolveRequest struct {
	Rev  string          `json:"rev"`
	Data json.RawMessage `json:"data"`
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
	// ?resolved=true).
	ResolvedAt *time.Time `json:"resolved_at,omitempty"`
}

// QuarantineList answers GET /v1/projects/{project}/quarantine; Next is the
// cursor of the following page, "" on the last one.
type QuarantineList struct {
	Items []QuarantineItem `json:"items"`
	Next  string           `json:"next,omitempty"`
}
