package records

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"strings"
	"time"
	"unicode/utf8"

	"github.com/fieldsync/fieldsync/internal/audit"
	"github.com/fieldsync/fieldsync/internal/domain"
)

// Review thread limits.
const (
	// MaxCommentChars bounds a review comment: a thread is read on slow links,
	// and a comment is a note on a record, not a report.
	MaxCommentChars = 4000
	// DefaultCommentLimit and MaxCommentLimit are the page sizes of a thread.
	DefaultCommentLimit = 100
	MaxCommentLimit     = 1000
)

// checkComment answers 422 (code) for a comment longer than MaxCommentChars,
// at path.
func checkComment(code, path, text string) error {
	if n := utf8.RuneCountInString(text); n > MaxCommentChars {
		return domain.Invalid(code, fmt.Sprintf("The comment is longer than %d characters", MaxCommentChars),
			[]domain.Finding{{Path: path, Keyword: "maxLength", Message: fmt.Sprintf("must be at most %d characters; this one has %d", MaxCommentChars, n)}})
	}
	return nil
}

// AddComment adds a comment to a record's review thread, and sets the
// record's review state at the same time when state is not nil (as a PATCH
// with review_state and comment does). The record's review_comment becomes
// the comment. It answers 422 invalid_comment for an empty or too long text
// or an unknown state, 404 record_not_found; it returns the new entry.
func (s *Service) AddComment(ctx context.Context, c Caller, projectID, id, text string, state *string) (domain.ReviewEntry, error) {
	if strings.TrimSpace(text) == "" {
		return domain.ReviewEntry{}, domain.Invalid("invalid_comment", "text is required",
			[]domain.Finding{{Path: "/text", Keyword: "required", Message: "a comment needs some text"}})
	}
	if err := checkComment("invalid_comment", "/text", text); err != nil {
		return domain.ReviewEntry{}, err
	}
	if state != nil && !validReviewState(*state) {
		return domain.ReviewEntry{}, badReviewState("invalid_comment")
	}
	_, entry, err := s.update(ctx, c, projectID, id, Patch{ReviewState: state, Comment: &text})
	if err != nil {
		return domain.ReviewEntry{}, err
	}
	if entry == nil {
		// Unreachable: a non-empty comment always makes an entry.
		return domain.ReviewEntry{}, errors.New("records: comment made no review entry")
	}
	return *entry, nil
}

// Comments returns one page of a record's review thread, oldest first: the
// comments and the review-state changes, each with its author and time, after
// cursor ("" for the start), with the cursor of the next page ("" on the
// last). It answers 404 record_not_found, 400 invalid_cursor and 400
// invalid_limit (0 means DefaultCommentLimit).
func (s *Service) Comments(ctx context.Context, c Caller, projectID, id, cursor string, limit int) ([]domain.ReviewEntry, string, error) {
	if limit == 0 {
		limit = DefaultCommentLimit
	}
	if limit < 1 || limit > MaxCommentLimit {
		return nil, "", &domain.Error{Kind: domain.KindBadRequest, Code: "invalid_limit", Title: fmt.Sprintf("limit must be between 1 and %d", MaxCommentLimit)}
	}
	rec, err := s.store.GetRecord(ctx, projectID, id)
	if errors.Is(err, domain.ErrNotFound) || (err == nil && !c.canSee(rec)) {
		return nil, "", recordNotFound()
	}
	if err != nil {
		return nil, "", err
	}
	entries, next, err := s.store.ListReviews(ctx, projectID, id, cursor, limit)
	if e, ok := domain.AsError(err); ok && e.Kind == domain.KindBadRequest {
		return nil, "", &domain.Error{Kind: domain.KindBadRequest, Code: "invalid_cursor", Title: "The cursor is not one this server handed out",
			Detail: "pass the value of \"next\" from the previous page, or no cursor to start from the beginning", Err: err}
	}
	return entries, next, err
}

func validReviewState(v string) bool {
	switch v {
	case domain.ReviewReceived, domain.ReviewApproved, domain.ReviewHasIssues, domain.ReviewRejected:
		return true
	}
	return false
}

func badReviewState(code string) error {
	return domain.Invalid(code, "review_state is not one of received, approved, has_issues, rejected",
		[]domain.Finding{{Path: "/review_state", Keyword: "enum", Message: "must be received, approved, has_issues or rejected"}})
}

// reviewed keeps what a metadata write (a PATCH, a comment) changed: an entry
// in the record's review thread when the review state changed or a comment
// was made, and the audit events of each change. It returns the entry (nil
// when none). The record is written already: an entry that cannot be stored
// fails the call, so that the caller sees the thread is short of it.
func (s *Service) reviewed(ctx context.Context, c Caller, cur, next domain.Record, p Patch) (*domain.ReviewEntry, error) {
	ev := func(typ string, detail map[string]string) {
		s.audit(ctx, c, domain.AuditEvent{Type: typ, ProjectID: cur.ProjectID, Subject: cur.ID, Detail: detail})
	}
	stateChanged := next.ReviewState != cur.ReviewState
	if stateChanged {
		ev(audit.ReviewChanged, map[string]string{"from": cur.ReviewState, "to": next.ReviewState})
	}
	if p.AssignedTo != nil && !slices.Equal(cur.AssignedTo, next.AssignedTo) {
		ev(audit.RecordAssigned, map[string]string{"assigned_to": strings.Join(next.AssignedTo, ",")})
	}
	text := ""
	if p.Comment != nil {
		text = *p.Comment
	}
	if !stateChanged && text == "" {
		return nil, nil
	}
	e := domain.ReviewEntry{ProjectID: cur.ProjectID, RecordID: cur.ID, Author: c.Principal.Subject, CreatedAt: next.UpdatedAt,
		Text: text, ReviewState: next.ReviewState}
	if stateChanged {
		e.PreviousState = cur.ReviewState
	}
	stored, err := s.store.AppendReview(ctx, e)
	if err != nil {
		return nil, err
	}
	if text != "" {
		// The text is not copied into the audit log: it may quote answers.
		ev(audit.CommentAdded, map[string]string{"entry": stored.ID})
	}
	return &stored, nil
}

// audit appends a data event as c (see audit.Append: it never fails the
// operation it records).
func (s *Service) audit(ctx context.Context, c Caller, e domain.AuditEvent) {
	e.Actor, e.RemoteAddr = c.Principal.Subject, c.RemoteAddr
	audit.Append(ctx, s.store, s.log, s.now, e)
}

// pushAudited keeps what a push did besides its records: an audit event for
// each tombstone it stored, and a review-thread entry and audit event for each
// record it flagged for review (a device clock far ahead). Neither fails the
// push: its records are stored, and a retry would not redo these.
func (s *Service) pushAudited(ctx context.Context, c Caller, projectID string, items []*item, now time.Time) {
	for _, it := range items {
		if !it.applied {
			continue
		}
		if it.tombstone {
			s.audit(ctx, c, domain.AuditEvent{Type: audit.RecordDeleted, ProjectID: projectID, Subject: it.sub.ID,
				Detail: map[string]string{"rev": it.res.Rev}})
		}
		if it.flaggedFrom == "" {
			continue
		}
		s.audit(ctx, c, domain.AuditEvent{Type: audit.ReviewChanged, ProjectID: projectID, Subject: it.sub.ID,
			Detail: map[string]string{"from": it.flaggedFrom, "to": domain.ReviewHasIssues, "reason": "clock_ahead"}})
		if _, err := s.store.AppendReview(ctx, domain.ReviewEntry{ProjectID: projectID, RecordID: it.sub.ID,
			Author: c.Principal.Subject, CreatedAt: now, Text: it.flagNote, ReviewState: domain.ReviewHasIssues,
			PreviousState: it.flaggedFrom}); err != nil {
			s.log.Error("review entry lost", "project", projectID, "record", it.sub.ID, "err", err)
		}
	}
}
