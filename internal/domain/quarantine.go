package domain

import (
	"encoding/json"
	"time"
)

// States of a quarantine entry (protocol.md §3, the quarantine listing).
const (
	// QuarantineOpen is an entry waiting for a person (or a later push).
	QuarantineOpen = "open"
	// QuarantineResolved is an entry whose record was stored since: by a
	// later push of it, or by a re-apply.
	QuarantineResolved = "resolved"
	// QuarantineDismissed is an entry a person decided not to apply; it is
	// kept with who, when and why.
	QuarantineDismissed = "dismissed"
)

// QuarantineStates lists the states of a quarantine entry.
var QuarantineStates = []string{QuarantineOpen, QuarantineResolved, QuarantineDismissed}

// State is the entry's state: dismissed, resolved or open. A dismissal wins
// over a resolution (stores never set both; the order makes a damaged entry
// read as the stronger decision).
func (q QuarantineItem) State() string {
	switch {
	case q.DismissedAt != nil:
		return QuarantineDismissed
	case q.ResolvedAt != nil:
		return QuarantineResolved
	}
	return QuarantineOpen
}

// QuarantineFilter selects quarantine entries; zero fields match everything.
type QuarantineFilter struct {
	// States are the states to list (QuarantineOpen, …); empty means all.
	States []string
	// FormID restricts the list to the entries of one form.
	FormID string
}

// QuarantineReapply is the outcome of one re-apply of a quarantine entry, kept
// on the entry (its latest) so that the data a person tried is never lost.
type QuarantineReapply struct {
	By string    `json:"by"`
	At time.Time `json:"at"`
	// Applied reports that the item became a record, a revision or a
	// conflict entry (the entry is then resolved); false leaves it open.
	Applied bool `json:"applied"`
	// Status is the push status of the attempt (created, rejected, …).
	Status string `json:"status"`
	// Rev is the record's revision afterwards ("" when refused).
	Rev string `json:"rev,omitempty"`
	// FormVersion is the version the item was applied against.
	FormVersion string `json:"form_version,omitempty"`
	// Data is the corrected data that was applied; nil when the submitted
	// data was applied as it was.
	Data json.RawMessage `json:"data,omitempty"`
	// Errors are the findings of a refused attempt.
	Errors []Finding `json:"errors,omitempty"`
}

// QuarantineDismissal is a person's decision not to apply an entry.
type QuarantineDismissal struct {
	By     string
	Reason string
	At     time.Time
}
