package api

import (
	"fmt"
	"time"
)

// ProblemContentType is the media type of every error response (RFC 9457).
const ProblemContentType = "application/problem+json"

// Problem is the RFC 9457 problem document every error response carries. Code is
// the stable machine word clients switch on; Title and Detail are for people.
type Problem struct {
	// Type is always "about:blank": Code, not a URI, identifies the problem.
	Type   string `json:"type"`
	Title  string `json:"title"`
	Status int    `json:"status"`
	Code   string `json:"code"`
	Detail string `json:"detail,omitempty"`
	// RequestID repeats the X-Request-Id header, so a person who pastes only the
	// body into a support ticket still gives the operator the log line to look for.
	RequestID string `json:"request_id,omitempty"`
	// Errors lists the findings. omitzero, not omitempty: a 422 carries the key
	// even when a server sends an empty list, as protocol.md promises.
	Errors []Finding `json:"errors,omitzero"`

	// RetryAfter is read by Client from the Retry-After header of 429 and 503
	// answers; it is not part of the body.
	RetryAfter time.Duration `json:"-"`
}

// Error implements error, so a Client call returns the *Problem itself.
func (p *Problem) Error() string {
	s := fmt.Sprintf("%d %s: %s", p.Status, p.Code, p.Title)
	if p.Detail != "" {
		s += ": " + p.Detail
	}
	return s
}

// Finding is one problem found in a request, addressed by a JSON pointer into
// the request body (for example "/submissions/3/data/age").
type Finding struct {
	Path    string `json:"path"`
	Keyword string `json:"keyword,omitempty"`
	Message string `json:"message"`
}

// Problem codes the HTTP layer itself answers with. Services add their own
// (for example "form_not_found"); these are the ones every route can produce.
const (
	CodeBadJSON      = "bad_json"
	CodeBadGzip      = "bad_gzip"
	CodeBodyTooLarge = "body_too_large"
	// CodeBodyTooSlow (408): the body arrived slower than the server's minimum
	// average pace; send the request again.
	CodeBodyTooSlow          = "body_too_slow"
	CodeUnsupportedMediaType = "unsupported_media_type"
	CodeUnsupportedEncoding  = "unsupported_encoding"
	CodeNotFound             = "not_found"
	CodeMethodNotAllowed     = "method_not_allowed"
	CodeUnauthorized         = "unauthorized"
	CodeForbidden            = "forbidden"
	CodeProjectNotFound      = "project_not_found"
	CodeAlreadyExists        = "already_exists"
	CodeConflict             = "conflict"
	CodeStoreUnavailable     = "store_unavailable"
	// CodeStoreFull (503): the server's disk is full; nothing of the request
	// was saved. Send it again after Retry-After, once the operator made room.
	CodeStoreFull     = "store_full"
	CodeInternalError = "internal_error"
)
