package api

import (
	"encoding/json"
	"time"
)

// Limits of a push (protocol.md §3).
const (
	// MaxPushItems is the most submissions one push may carry.
	MaxPushItems = 1000
	// MaxBodyBytes is the largest request body after decompression.
	MaxBodyBytes = 16 << 20
	// MaxPullLimit is the largest limit a pull accepts.
	MaxPullLimit = 1000
)

// Submission is one item of a push: a new record, an edit of one (BaseRev set),
// or a tombstone (Deleted).
type Submission struct {
	ID          string `json:"id"`
	Form        string `json:"form"`
	FormVersion string `json:"form_version"`
	// BaseRev is the revision the edit started from; nil (JSON null) for a new
	// record.
	BaseRev          *string         `json:"base_rev"`
	ClientModifiedAt time.Time       `json:"client_modified_at"`
	Deleted          bool            `json:"deleted"`
	Data             json.RawMessage `json:"data"`
	Attachments      []Attachment    `json:"attachments,omitempty"`
}

// PushRequest is the body of POST /v1/projects/{project}/sync/push.
type PushRequest struct {
	Submissions []Submission `json:"submissions"`
}

// The status words of a PushResult (protocol.md §3).
const (
	PushCreated   = "created"
	PushUpdated   = "updated"
	PushUnchanged = "unchanged"
	PushMerged    = "merged"
	PushConflict  = "conflict"
	PushRejected  = "rejected"
	PushForbidden = "forbidden"
)

// PushResult is the outcome of one submission, in the order they were sent.
type PushResult struct {
	ID     string `json:"id"`
	Status string `json:"status"`
	// Rev is the record's revision after the push (absent for rejected and
	// forbidden items).
	Rev string `json:"rev,omitempty"`
	// Current is what the server holds now, for merged and conflict.
	Current *Record `json:"current,omitempty"`
	// Errors are the findings of a rejected item.
	Errors []Finding `json:"errors,omitempty"`
	// MissingAttachments names the declared files the server does not hold yet.
	MissingAttachments []string `json:"missing_attachments,omitempty"`
}

// PushResponse answers a push: one result per submission, in order.
type PushResponse struct {
	Results    []PushResult `json:"results"`
	ServerTime time.Time    `json:"server_time"`
}

// PullResponse answers GET /v1/projects/{project}/sync/pull. A client pulls with
// Next as the following since until More is false.
type PullResponse struct {
	Changes []Record `json:"changes"`
	Next    string   `json:"next"`
	More    bool     `json:"more"`
}
