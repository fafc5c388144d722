package api

import (
	"context"
	"encoding/json"
	"net/http"
	"net/url"
	"time"
)

// States of a quarantine entry.
const (
	// QuarantineOpen: waiting for a person, or for a later push of its record.
	QuarantineOpen = "open"
	// QuarantineResolved: its record was stored since (a later push, or a
	// re-apply).
	QuarantineResolved = "resolved"
	// QuarantineDismissed: a person decided not to apply it; kept with who,
	// when and why.
	QuarantineDismissed = "dismissed"
)

// QuarantineReapply is the outcome of one re-apply of a quarantine entry.
type QuarantineReapply struct {
	By string    `json:"by"`
	At time.Time `json:"at"`
	// Applied reports that the item became a record, a revision or a
	// conflict entry; false means it was refused again (Errors say why).
	Applied bool   `json:"applied"`
	Status  string `json:"status"`
	Rev     string `json:"rev,omitempty"`
	// FormVersion is the form version the item was applied against.
	FormVersion string `json:"form_version,omitempty"`
	// Data is the corrected data that was tried; absent when the submitted
	// data was applied as it was.
	Data   json.RawMessage `json:"data,omitempty"`
	Errors []Finding       `json:"errors,omitempty"`
}

// ReapplyRequest is the body of POST /v1/projects/{project}/quarantine/{id}/reapply.
// Every field is optional: the zero request applies the item as submitted.
type ReapplyRequest struct {
	// Data is the corrected data.
	Data json.RawMessage `json:"data,omitempty"`
	// FormVersion applies the item against another version of its form.
	FormVersion string `json:"form_version,omitempty"`
}

// ReapplyResult answers a re-apply: the push result of applying the item now
// and the quarantine entry afterwards (resolved, or open with new findings).
type ReapplyResult struct {
	PushResult
	Entry QuarantineItem `json:"entry"`
}

// DismissRequest is the body of POST /v1/projects/{project}/quarantine/{id}/dismiss.
type DismissRequest struct {
	// Reason is required: why the entry is not to be applied.
	Reason string `json:"reason"`
}

func quarantinePath(project, id string) string {
	return "/v1/projects/" + url.PathEscape(project) + "/quarantine/" + url.PathEscape(id)
}

// ReapplyQuarantine calls POST /v1/projects/{project}/quarantine/{id}/reapply
// (analysts, managers): the entry's item goes through validation and the
// form's conflict policy again, as a push. An entry that is not open is a
// *Problem with Status 409 (Code "quarantine_not_open", or "quarantine_busy"
// while someone else re-applies it).
func (c *Client) ReapplyQuarantine(ctx context.Context, project, id string, req ReapplyRequest) (ReapplyResult, error) {
	var out ReapplyResult
	err := c.Do(ctx, http.MethodPost, quarantinePath(project, id)+"/reapply", req, &out)
	return out, err
}

// DismissQuarantine calls POST /v1/projects/{project}/quarantine/{id}/dismiss
// (analysts, managers): the entry is kept, marked dismissed with the reason.
func (c *Client) DismissQuarantine(ctx context.Context, project, id, reason string) error {
	return c.Do(ctx, http.MethodPost, quarantinePath(project, id)+"/dismiss", DismissRequest{Reason: reason}, nil)
}
