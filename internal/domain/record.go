package domain

import (
	"encoding/json"
	"time"
)

// Review states of a record.
const (
	ReviewReceived  = "received"
	ReviewApproved  = "approved"
	ReviewHasIssues = "has_issues"
	ReviewRejected  = "rejected"
)

// Record is the current state of one submission.
type Record struct {
	ProjectID        string
	ID               string // client-made UUID
	FormID           string
	FormVersion      string
	Rev              string // "<generation>-<hash>"
	Deleted          bool
	Data             json.RawMessage
	CreatedBy        string
	DeviceID         string
	ClientModifiedAt time.Time
	CreatedAt        time.Time
	UpdatedAt        time.Time
	ReviewState      string
	ReviewComment    string
	Conflicts        []Conflict
	AssignedTo       []string
	Shared           bool // copied from the form version: visible to every enumerator
	Attachments      []Attachment
	// Seq is the record's position in its project's changes feed, assigned by the
	// store on every write. Callers never set it.
	Seq int64
	// Version counts the writes of the record: the store sets it to 1 on create
	// and adds 1 on every write. Writes that keep the revision (review, assignment,
	// a conflict entry) are made conditional on it, since the rev alone would not
	// tell two of them apart.
	Version int64
}

// Conflict is one clash kept on a record for an analyst to settle. For a field
// clash Path is the JSON pointer of the field; for a whole-record clash (policies
// reject and last-write-wins) Path is "" and the values are whole data objects.
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
	ProjectID        string
	RecordID         string
	Rev              string
	Parent           string // "" for the first revision
	Deleted          bool
	Data             json.RawMessage
	FormVersion      string
	ClientModifiedAt time.Time
	CreatedBy        string
	DeviceID         string
	CreatedAt        time.Time
}

// RecordWrite is one conditional write of a record: the new state, the revision to
// append to its history and the revision the record must have now.
type RecordWrite struct {
	Record Record
	// ExpectRev is the current revision the write is based on; "" means the record
	// must not exist yet (a create).
	ExpectRev string
	// ExpectVersion, when not 0, must equal the record's Version as well (an
	// update only): a write based on a state that another write changed since
	// is refused with ErrStale even when the rev is the same.
	ExpectVersion int64
	// Revisions are appended to the history, idempotently (a revision already
	// held is left as it is): the record's new revision and, for a merge, the
	// incoming edit's own revision too, so a replay of that edit is recognised.
	// Empty when the write changes only metadata (review state, assignment).
	Revisions []Revision
}

// ChangesQuery selects one page of a project's changes feed.
type ChangesQuery struct {
	ProjectID string
	Since     int64 // the cursor: a position in the feed, 0 for the start
	Limit     int
	// Visibility for enumerators: when Subjects is non-empty only records created
	// by one of them, assigned to one of them, or marked Shared are returned.
	Subjects []string
	// FormID restricts the page to one form when set.
	FormID string
}

// ChangesPage is one page of the changes feed.
type ChangesPage struct {
	Records []Record
	// Next is the cursor to pass as Since for the following page. It moves past
	// every position the store examined, including records not visible to the
	// caller.
	Next int64
	// More is true when positions beyond Next were already committed.
	More bool
}

// QuarantineItem is a pushed item the server could not accept as a record, kept
// with the reasons until a person repairs and re-pushes it.
type QuarantineItem struct {
	ProjectID   string
	ID          string // sha256 hex of the canonical submission: one entry per distinct item
	RecordID    string
	FormID      string
	FormVersion string
	Submission  json.RawMessage
	Errors      []Finding
	SubmittedBy string
	DeviceID    string
	FirstSeen   time.Time
	LastSeen    time.Time
	Attempts    int
	ResolvedAt  *time.Time // set when a record with RecordID was later stored (rejected items only), or the item was re-applied
	// Reason is why the item is here: QuarantineRejected (it failed its
	// checks; "" reads as this) or QuarantineForbidden (the caller may not
	// write that record).
	Reason string
	// ResolvedBy is who re-applied the item; "" when a later push of its
	// record resolved it (or it is not resolved).
	ResolvedBy string
	// DismissedAt, DismissedBy and DismissReason are set when a person
	// dismissed the item: it is kept, and no longer open.
	DismissedAt   *time.Time
	DismissedBy   string
	DismissReason string
	// LastReapply is the latest re-apply of the item, applied or refused:
	// the data a person tried is kept here even when it was refused.
	LastReapply *QuarantineReapply
	// Claim is the token of a re-apply in progress ("" when none) and
	// ClaimedAt when it began; see ClaimQuarantine.
	Claim     string
	ClaimedAt *time.Time
}

// Reasons of a quarantine entry.
const (
	QuarantineRejected  = "rejected"
	QuarantineForbidden = "forbidden"
)

// Attachment is the metadata of one file a record refers to.
type Attachment struct {
	Name        string `json:"name"`
	SHA256      string `json:"sha256"`
	Size        int64  `json:"size"`
	ContentType string `json:"content_type,omitempty"`
}
