package api

import (
	"context"
	"encoding/json"
	"net/http"
	"net/url"
	"strconv"
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
	// BaseRev is the revision the edit started from: the rev the server last
	// answered for this record. nil (JSON null, or "") for a new record. A
	// BaseRev for a record the server does not hold creates it, with BaseRev as
	// the parent of its first revision.
	BaseRev *string `json:"base_rev"`
	// ClientModifiedAt is when the device saved the edit, by its clock; it
	// decides which side of a clash stands. Absent, it counts as the time of the
	// push.
	ClientModifiedAt time.Time `json:"client_modified_at"`
	// Deleted makes a tombstone; Data may then be left out.
	Deleted     bool            `json:"deleted"`
	Data        json.RawMessage `json:"data"`
	Attachments []Attachment    `json:"attachments,omitempty"`
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
	// Errors are the findings of a rejected item, or of a merge the form's
	// schema refused (status conflict: the edit is kept as a conflict entry).
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

// Push calls POST /v1/projects/{project}/sync/push with at most MaxPushItems
// submissions. Each item has its own result; one bad item never fails the
// others. Pushing the same batch again (after an answer was lost) is safe: the
// items already applied answer "unchanged". A batch too large is a *Problem
// with Status 413 (Code "too_many_items" or "body_too_large").
func (c *Client) Push(ctx context.Context, project string, subs []Submission) (PushResponse, error) {
	var out PushResponse
	err := c.Do(ctx, http.MethodPost, "/v1/projects/"+url.PathEscape(project)+"/sync/push", PushRequest{Submissions: subs}, &out)
	return out, err
}

// Pull calls GET /v1/projects/{project}/sync/pull: the changes after since
// ("" for the beginning), at most limit of them (0 for the server's
// default). Pull again with Next until More is false; keep the last Next to
// resume later. A cursor the server did not make is a *Problem with Code
// "invalid_cursor".
func (c *Client) Pull(ctx context.Context, project, since string, limit int) (PullResponse, error) {
	v := url.Values{}
	if since != "" {
		v.Set("since", since)
	}
	if limit > 0 {
		v.Set("limit", strconv.Itoa(limit))
	}
	path := "/v1/projects/" + url.PathEscape(project) + "/sync/pull"
	if len(v) > 0 {
		path += "?" + v.Encode()
	}
	var out PullResponse
	err := c.Do(ctx, http.MethodGet, path, nil, &out)
	return out, err
}
