package records

import (
	"bytes"
	"container/heap"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/fieldsync/fieldsync/internal/audit"
	"github.com/fieldsync/fieldsync/internal/domain"
	"github.com/fieldsync/fieldsync/internal/syncer"
)

func recordNotFound() error {
	return &domain.Error{Kind: domain.KindNotFound, Code: "record_not_found", Title: "No such record in this project"}
}

// Get returns one record the caller may see, and its history when withRevs
// is set (see history for its order). A record that does not exist, or that
// an enumerator may not see, answers 404 record_not_found: the answer does not
// tell which.
func (s *Service) Get(ctx context.Context, c Caller, projectID, id string, withRevs bool) (domain.Record, []domain.Revision, error) {
	rec, err := s.store.GetRecord(ctx, projectID, id)
	if errors.Is(err, domain.ErrNotFound) || (err == nil && !c.canSee(rec)) {
		return domain.Record{}, nil, recordNotFound()
	}
	if err != nil || !withRevs {
		return rec, nil, err
	}
	revs, err := s.history(ctx, rec)
	return rec, revs, err
}

// history returns every revision the server holds of the record, parents
// before their children, and otherwise in the order they were stored (oldest
// first). Side revisions are included: the pushed edit of a merge, an edit a
// conflict kept (policy reject, or the loser of last-write-wins) and an edit
// whose clash an analyst has since resolved. They are what the server received,
// and protocol.md promises that nothing a client sent disappears; the record's
// own line is found by following parent from the record's rev.
func (s *Service) history(ctx context.Context, rec domain.Record) ([]domain.Revision, error) {
	all, err := s.store.ListRevisions(ctx, rec.ProjectID, rec.ID)
	if err != nil {
		return nil, err
	}
	held := make(map[string]bool, len(all))
	for _, r := range all {
		held[r.Rev] = true
	}
	// Kahn's algorithm; ready holds indexes into all, smallest (oldest) first.
	children := map[string][]int{}
	ready := &indexHeap{}
	for i, r := range all {
		if r.Parent == "" || r.Parent == r.Rev || !held[r.Parent] {
			heap.Push(ready, i)
		} else {
			children[r.Parent] = append(children[r.Parent], i)
		}
	}
	out := make([]domain.Revision, 0, len(all))
	placed := make([]bool, len(all))
	for ready.Len() > 0 {
		i := heap.Pop(ready).(int)
		out = append(out, all[i])
		placed[i] = true
		for _, c := range children[all[i].Rev] {
			heap.Push(ready, c)
		}
		delete(children, all[i].Rev)
	}
	// A cycle (damaged data) leaves revisions unplaced: show them all the same.
	for i := range all {
		if !placed[i] {
			out = append(out, all[i])
		}
	}
	return out, nil
}

// indexHeap is a min-heap of ints for container/heap.
type indexHeap []int

func (h indexHeap) Len() int           { return len(h) }
func (h indexHeap) Less(i, j int) bool { return h[i] < h[j] }
func (h indexHeap) Swap(i, j int)      { h[i], h[j] = h[j], h[i] }
func (h *indexHeap) Push(x any)        { *h = append(*h, x.(int)) }
func (h *indexHeap) Pop() any {
	old := *h
	x := old[len(old)-1]
	*h = old[:len(old)-1]
	return x
}

// Correct applies an analyst's correction of a record's data. ifMatch is the
// revision the analyst read: "" answers 428 if_match_required, a stale one 412
// rev_mismatch, data that fails the schema of the record's form version 422
// invalid_data. Recorded conflicts stay (resolve them with Resolve). A
// correction of a deleted record restores it with the given data.
func (s *Service) Correct(ctx context.Context, c Caller, projectID, id, ifMatch string, data json.RawMessage) (domain.Record, error) {
	if ifMatch == "" {
		return domain.Record{}, &domain.Error{Kind: domain.KindPreconditionRequired, Code: "if_match_required",
			Title: "If-Match is required", Detail: "send the record's rev (its ETag) in If-Match, so a correction never overwrites an edit you have not seen"}
	}
	return s.rewrite(ctx, c, projectID, id, ifMatch, data, false, false)
}

// Resolve settles a record's recorded conflicts: the record becomes data (or a
// tombstone when deleted is set) as a new revision, and its conflicts list is
// emptied. rev is the revision the analyst looked at: "" answers 422
// invalid_resolution, a stale one 412 rev_mismatch. Data is checked against the
// schema unless deleted.
func (s *Service) Resolve(ctx context.Context, c Caller, projectID, id, rev string, data json.RawMessage, deleted bool) (domain.Record, error) {
	if rev == "" {
		return domain.Record{}, domain.Invalid("invalid_resolution", "rev is required", []domain.Finding{{Path: "/rev", Keyword: "required", Message: "rev is required"}})
	}
	return s.rewrite(ctx, c, projectID, id, rev, data, deleted, true)
}

// rewrite makes data the record's new revision, a child of expect, which must
// be the current rev. A write refused because only the record's metadata moved
// on meanwhile (a review, an assignment, a conflict entry: the rev is still
// expect) is tried again on the fresh state; a moved rev is a 412.
func (s *Service) rewrite(ctx context.Context, c Caller, projectID, id, expect string, data json.RawMessage, deleted, clearConflicts bool) (domain.Record, error) {
	if deleted && len(bytes.TrimSpace(data)) == 0 {
		data = json.RawMessage("{}")
	}
	canon, err := syncer.Canonical(data)
	if err != nil || len(canon) == 0 || canon[0] != '{' {
		return domain.Record{}, domain.Invalid("invalid_data", "data must be a JSON object", []domain.Finding{{Path: "/data", Keyword: "type", Message: "data must be a JSON object"}})
	}
	if f := tooManyValues(canon); f != nil {
		return domain.Record{}, domain.Invalid("invalid_data", "The data is too large", f)
	}
	unlock, err := s.locks.lock(ctx, projectID, []string{id})
	if err != nil {
		return domain.Record{}, err
	}
	defer unlock()
	for attempt := 0; attempt < maxAttempts; attempt++ {
		cur, err := s.store.GetRecord(ctx, projectID, id)
		if errors.Is(err, domain.ErrNotFound) {
			return domain.Record{}, recordNotFound()
		}
		if err != nil {
			return domain.Record{}, err
		}
		if cur.Rev != expect {
			return domain.Record{}, staleRev(cur.Rev)
		}
		if clearConflicts && len(cur.Conflicts) == 0 {
			// Resolving settles conflicts; without any it would only make a
			// revision nobody asked a question about.
			return domain.Record{}, &domain.Error{Kind: domain.KindConflict, Code: "no_conflicts",
				Title:  "The record has no conflicts to resolve",
				Detail: "to correct its data, PUT the record with its rev instead"}
		}
		if !deleted {
			fv, err := s.forms.LookupVersion(ctx, projectID, cur.FormID, cur.FormVersion)
			if err != nil {
				return domain.Record{}, err
			}
			if f := fv.Validator.ValidateJSON(canon); len(f) > 0 {
				return domain.Record{}, domain.Invalid("invalid_data", "The data does not match the form's schema", dataFindings(f))
			}
		}
		now := s.clock()
		rev, err := syncer.NewRev(cur.Rev, canon, deleted)
		if err != nil {
			return domain.Record{}, err
		}
		next := cur
		next.Rev, next.Data, next.Deleted = rev, canon, deleted
		next.ClientModifiedAt, next.UpdatedAt = now, now
		next.DeviceID = ""
		if clearConflicts {
			next.Conflicts = nil
		}
		w := domain.RecordWrite{Record: next, ExpectRev: cur.Rev, ExpectVersion: cur.Version, Revisions: []domain.Revision{{
			ProjectID: projectID, RecordID: id, Rev: rev, Parent: cur.Rev, Deleted: deleted, Data: canon, FormVersion: cur.FormVersion,
			ClientModifiedAt: now, CreatedBy: c.Principal.Subject, CreatedAt: now,
		}}}
		ws := []domain.RecordWrite{w}
		res, err := s.store.WriteRecords(ctx, ws)
		if err != nil {
			return domain.Record{}, err
		}
		switch {
		case res[0] == nil:
			s.rewritten(ctx, c, cur, ws[0].Record, clearConflicts)
			return ws[0].Record, nil
		case errors.Is(res[0], domain.ErrStale):
			continue // read again: a moved rev answers 412 above
		case errors.Is(res[0], domain.ErrNotFound):
			return domain.Record{}, recordNotFound()
		default:
			return domain.Record{}, res[0]
		}
	}
	return domain.Record{}, errBusy()
}

// rewritten audits a correction or a resolution (and the tombstone a
// resolution may store).
func (s *Service) rewritten(ctx context.Context, c Caller, cur, next domain.Record, resolved bool) {
	if resolved {
		s.audit(ctx, c, domain.AuditEvent{Type: audit.ConflictResolved, ProjectID: cur.ProjectID, Subject: cur.ID,
			Detail: map[string]string{"rev": next.Rev, "prev_rev": cur.Rev, "conflicts": strconv.Itoa(len(cur.Conflicts))}})
	} else {
		s.audit(ctx, c, domain.AuditEvent{Type: audit.RecordCorrected, ProjectID: cur.ProjectID, Subject: cur.ID,
			Detail: map[string]string{"rev": next.Rev, "prev_rev": cur.Rev}})
	}
	if next.Deleted {
		s.audit(ctx, c, domain.AuditEvent{Type: audit.RecordDeleted, ProjectID: cur.ProjectID, Subject: cur.ID,
			Detail: map[string]string{"rev": next.Rev}})
	}
}

func errBusy() error {
	return &domain.Error{Kind: domain.KindUnavailable, Code: "busy", Title: "The record is being written by others; try again", RetryAfter: time.Second}
}

func staleRev(current string) error {
	return &domain.Error{Kind: domain.KindPrecondition, Code: "rev_mismatch", Title: "The record has changed since you read it",
		Detail: "its current rev is " + current + "; read it again and redo the change"}
}

// Patch is an analyst's review of a record and its hand-over to devices or
// users. Nil fields are left as they are.
type Patch struct {
	ReviewState *string
	Comment     *string
	AssignedTo  *[]string
}

// Update applies a Patch. It changes no data and so makes no revision, but it
// moves the record in the changes feed, so an assignee's next pull carries it.
// A non-empty comment, and a change of the review state, are added to the
// record's review thread with the caller and the time (see Comments); the
// review comment shown on the record is the latest one (an empty comment
// clears it, and adds nothing to the thread). It answers 422 invalid_patch
// for a review state outside the four, a comment longer than MaxCommentChars,
// or an empty or too long assignee, and 404 record_not_found.
func (s *Service) Update(ctx context.Context, c Caller, projectID, id string, p Patch) (domain.Record, error) {
	if p.ReviewState != nil && !validReviewState(*p.ReviewState) {
		return domain.Record{}, badReviewState("invalid_patch")
	}
	if p.Comment != nil {
		if err := checkComment("invalid_patch", "/comment", *p.Comment); err != nil {
			return domain.Record{}, err
		}
	}
	rec, _, err := s.update(ctx, c, projectID, id, p)
	return rec, err
}

// update applies a checked Patch and keeps its review entry (returned, nil
// when the patch made none) and audit events.
func (s *Service) update(ctx context.Context, c Caller, projectID, id string, p Patch) (domain.Record, *domain.ReviewEntry, error) {
	if p.AssignedTo != nil {
		for i, a := range *p.AssignedTo {
			if a == "" || len(a) > 128 {
				return domain.Record{}, nil, domain.Invalid("invalid_patch", "assigned_to holds usernames or device:<id> subjects",
					[]domain.Finding{{Path: "/assigned_to/" + itoa(i), Keyword: "format", Message: "must be a username or device:<id>"}})
			}
		}
		if err := s.checkAssignees(ctx, projectID, *p.AssignedTo); err != nil {
			return domain.Record{}, nil, err
		}
	}
	unlock, err := s.locks.lock(ctx, projectID, []string{id})
	if err != nil {
		return domain.Record{}, nil, err
	}
	defer unlock()
	for attempt := 0; attempt < maxAttempts; attempt++ {
		cur, err := s.store.GetRecord(ctx, projectID, id)
		if errors.Is(err, domain.ErrNotFound) {
			return domain.Record{}, nil, recordNotFound()
		}
		if err != nil {
			return domain.Record{}, nil, err
		}
		next := cur
		if p.ReviewState != nil {
			next.ReviewState = *p.ReviewState
		}
		if p.Comment != nil {
			next.ReviewComment = *p.Comment
		}
		if p.AssignedTo != nil {
			next.AssignedTo = append([]string{}, *p.AssignedTo...)
		}
		next.UpdatedAt = s.clock()
		ws := []domain.RecordWrite{{Record: next, ExpectRev: cur.Rev, ExpectVersion: cur.Version}}
		res, err := s.store.WriteRecords(ctx, ws)
		if err != nil {
			return domain.Record{}, nil, err
		}
		if res[0] == nil {
			// With the Seq and Version the store gave it.
			entry, err := s.reviewed(ctx, c, cur, ws[0].Record, p)
			return ws[0].Record, entry, err
		}
		if !errors.Is(res[0], domain.ErrStale) {
			return domain.Record{}, nil, res[0]
		}
		// The data moved on meanwhile: apply the patch to the new state.
	}
	return domain.Record{}, nil, errBusy()
}

// Quarantine lists the project's quarantine entries that match f in the
// order they were first seen, one page after cursor ("" for the start) with
// the cursor of the next page ("" on the last). A state outside open,
// resolved and dismissed answers 400 invalid_query; a cursor the store did not
// make 400 invalid_cursor.
func (s *Service) Quarantine(ctx context.Context, projectID string, f domain.QuarantineFilter, cursor string, limit int) ([]domain.QuarantineItem, string, error) {
	if limit == 0 {
		limit = DefaultPullLimit
	}
	if limit < 1 || limit > MaxPullLimit {
		return nil, "", &domain.Error{Kind: domain.KindBadRequest, Code: "invalid_limit", Title: "limit must be between 1 and 1000"}
	}
	for _, st := range f.States {
		if !slices.Contains(domain.QuarantineStates, st) {
			return nil, "", &domain.Error{Kind: domain.KindBadRequest, Code: "invalid_query", Title: "state must be open, resolved or dismissed",
				Detail: fmt.Sprintf("%q is not a state of a quarantine entry", st)}
		}
	}
	items, next, err := s.store.ListQuarantine(ctx, projectID, f, cursor, limit)
	if err == nil {
		// Pages are bounded by bytes too: a page stops before the item that
		// would take it past quarantinePageBytes (one item always fits), and
		// is read again at that length for its cursor.
		size := 0
		for i, it := range items {
			size += len(it.Submission)
			if it.LastReapply != nil {
				size += len(it.LastReapply.Data)
			}
			if size > quarantinePageBytes && i > 0 {
				items, next, err = s.store.ListQuarantine(ctx, projectID, f, cursor, i)
				break
			}
		}
	}
	if e, ok := domain.AsError(err); ok && e.Kind == domain.KindBadRequest {
		// The store's cursor check: answer it in the words of every other cursor.
		return nil, "", &domain.Error{Kind: domain.KindBadRequest, Code: "invalid_cursor", Title: "The cursor is not one this server handed out",
			Detail: "pass the value of \"next\" from the previous page, or no cursor to start from the beginning", Err: err}
	}
	return items, next, err
}

func itoa(i int) string {
	b, _ := json.Marshal(i)
	return string(b)
}

// checkAssignees answers 422 invalid_patch naming every assignee that is
// neither a member of the project nor one of its devices that is not revoked:
// a record handed to a misspelt name would reach nobody.
func (s *Service) checkAssignees(ctx context.Context, projectID string, names []string) error {
	var bad []domain.Finding
	for i, a := range names {
		ok := false
		if id, isDevice := strings.CutPrefix(a, "device:"); isDevice {
			d, err := s.store.GetDevice(ctx, id)
			switch {
			case err == nil:
				ok = d.ProjectID == projectID && d.RevokedAt == nil
			case !errors.Is(err, domain.ErrNotFound):
				return err
			}
		} else {
			_, err := s.store.GetMembership(ctx, projectID, a)
			switch {
			case err == nil:
				ok = true
			case !errors.Is(err, domain.ErrNotFound):
				return err
			}
		}
		if !ok {
			bad = append(bad, domain.Finding{Path: "/assigned_to/" + itoa(i), Keyword: "unknown",
				Message: fmt.Sprintf("%q is neither a member of the project nor one of its tablets", a)})
		}
	}
	if len(bad) > 0 {
		return domain.Invalid("invalid_patch", "assigned_to names someone who cannot receive the record", capFindings(bad))
	}
	return nil
}
