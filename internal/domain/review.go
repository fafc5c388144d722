package domain

import "time"

// ReviewEntry is one entry of a record's review thread: an analyst's comment,
// a change of the record's review state, or both at once (a comment that
// approves). The thread is append-only, so who said what and who changed the
// state when is never overwritten by the next review.
type ReviewEntry struct {
	ProjectID string
	RecordID  string
	// ID is assigned by the store; a record's entries sort by it in the order
	// they were added.
	ID        string
	Author    string // the subject of who wrote it (a username, or device:<id>)
	CreatedAt time.Time
	// Text is the comment; "" for a state change without one.
	Text string
	// ReviewState is the record's review state once this entry was made.
	ReviewState string
	// PreviousState is the state before, when this entry changed it; "" when
	// the entry is a comment that left the state as it was.
	PreviousState string
}
