package domain

import (
	"errors"
	"fmt"
	"time"
)

// Store sentinels. Every backend translates its driver's errors into these in one
// place; no driver error ever leaves a backend unwrapped.
var (
	// ErrNotFound is returned when the addressed item does not exist.
	ErrNotFound = errors.New("not found")
	// ErrExists is returned when an item with the same key already exists.
	ErrExists = errors.New("already exists")
	// ErrStale is returned by conditional writes whose precondition no longer holds
	// (a revision moved on, a token was already spent, a version is published).
	ErrStale = errors.New("precondition failed")
	// ErrUnavailable is returned when the store does not answer (connection lost,
	// database locked past the busy timeout). The HTTP layer answers 503 with
	// Retry-After; the write was not acknowledged.
	ErrUnavailable = errors.New("store unavailable")
)

// Kind classifies an Error; the HTTP layer maps each Kind to one status.
type Kind int

// The kinds of domain errors. Their HTTP statuses are given in the comments.
const (
	KindInternal             Kind = iota // 500
	KindBadRequest                       // 400
	KindUnauthorized                     // 401
	KindForbidden                        // 403
	KindNotFound                         // 404
	KindConflict                         // 409
	KindPrecondition                     // 412
	KindTooLarge                         // 413
	KindUnsupportedType                  // 415
	KindInvalid                          // 422
	KindPreconditionRequired             // 428
	KindTooManyRequests                  // 429
	KindUnavailable                      // 503
)

// Finding is one problem found in a client's input, addressed by a JSON pointer.
type Finding struct {
	Path    string `json:"path"`
	Keyword string `json:"keyword,omitempty"`
	Message string `json:"message"`
}

// Error is a failure meant for the client: a stable machine Code (for example
// "bad_json", "form_not_found"), a human Title and optional Detail and Findings.
// Anything that is not an *Error (or a store sentinel) is answered as a plain 500
// without its text.
type Error struct {
	Kind       Kind
	Code       string
	Title      string
	Detail     string
	Findings   []Finding
	RetryAfter time.Duration // for KindTooManyRequests and KindUnavailable
	Err        error         // the cause, logged, never sent
}

// Error implements error.
func (e *Error) Error() string {
	s := e.Code + ": " + e.Title
	if e.Detail != "" {
		s += ": " + e.Detail
	}
	if e.Err != nil {
		s += ": " + e.Err.Error()
	}
	return s
}

// Unwrap returns the cause.
func (e *Error) Unwrap() error { return e.Err }

// Errorf builds an *Error of the given kind and code; the title is formatted.
func Errorf(kind Kind, code, format string, args ...any) *Error {
	return &Error{Kind: kind, Code: code, Title: fmt.Sprintf(format, args...)}
}

// Invalid builds a 422 error with findings.
func Invalid(code, title string, findings []Finding) *Error {
	return &Error{Kind: KindInvalid, Code: code, Title: title, Findings: findings}
}

// AsError returns the *Error in err's chain, if any.
func AsError(err error) (*Error, bool) {
	var e *Error
	if errors.As(err, &e) {
		return e, true
	}
	return nil, false
}
