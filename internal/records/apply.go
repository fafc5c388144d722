package records

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"time"

	"github.com/fieldsync/fieldsync/internal/domain"
	"github.com/fieldsync/fieldsync/internal/syncer"
)

// applyRound decides and writes the items of one round (each names a distinct
// record), retrying the items whose record moved on in between. known, when
// not nil, is the state of the round's records read ahead (a record absent
// from it did not exist): the first attempt decides on it instead of reading.
func (s *Service) applyRound(ctx context.Context, c Caller, projectID string, round []*item, known map[string]domain.Record, now time.Time) error {
	ids := make([]string, len(round))
	for i, it := range round {
		ids[i] = it.sub.ID
	}
	unlock, err := s.locks.lock(ctx, projectID, ids)
	if err != nil {
		return err
	}
	defer unlock()
	live := round
	for attempt := 1; len(live) > 0; attempt++ {
		if attempt > maxAttempts {
			return &domain.Error{Kind: domain.KindUnavailable, Code: "busy", Title: "Records are being written by others; try again", RetryAfter: time.Second}
		}
		ids := make([]string, len(live))
		for i, it := range live {
			ids[i] = it.sub.ID
		}
		current := known
		if attempt > 1 || current == nil {
			var err error
			if current, err = s.store.GetRecords(ctx, projectID, ids); err != nil {
				return err
			}
		}
		var writes []domain.RecordWrite
		var writers []*item
		for _, it := range live {
			var cur *domain.Record
			if r, ok := current[it.sub.ID]; ok {
				cur = &r
			}
			w, err := s.decide(ctx, c, projectID, it, cur, now)
			if err != nil {
				return err
			}
			if w != nil {
				writes = append(writes, *w)
				writers = append(writers, it)
			}
		}
		if len(writes) == 0 {
			return nil
		}
		results, err := s.store.WriteRecords(ctx, writes)
		if err != nil {
			return err
		}
		live = live[:0:0]
		for i, it := range writers {
			switch {
			case results[i] == nil:
				it.done = true
				it.applied = true
				// A new revision that is a tombstone: a deletion, audited.
				it.tombstone = writes[i].Record.Deleted && writes[i].Record.Rev != writes[i].ExpectRev
				if it.res.Current != nil {
					rec := writes[i].Record
					it.res.Current = &rec
				}
			case errors.Is(results[i], domain.ErrExists), errors.Is(results[i], domain.ErrStale), errors.Is(results[i], domain.ErrNotFound):
				// Another writer got there first: decide again on what it wrote.
				it.res = Result{ID: it.sub.ID}
				live = append(live, it)
			default:
				return results[i]
			}
		}
	}
	return nil
}

// decide works out what one item does to its record (cur is nil when there is
// none). It fills it.res and returns the write to make, or nil when the item
// needs no write (unchanged, forbidden, rejected).
func (s *Service) decide(ctx context.Context, c Caller, projectID string, it *item, cur *domain.Record, now time.Time) (*domain.RecordWrite, error) {
	in := &it.sub
	it.flaggedFrom = ""
	parent := ""
	if in.BaseRev != nil {
		parent = *in.BaseRev
	}
	inRev := it.rev
	fv := it.fv
	incoming := domain.Revision{
		ProjectID: projectID, RecordID: in.ID, Rev: inRev, Parent: parent, Deleted: in.Deleted,
		Data: it.canonical, FormVersion: in.FormVersion, ClientModifiedAt: in.ClientModifiedAt.UTC().Truncate(time.Millisecond),
		CreatedBy: c.Principal.Subject, DeviceID: c.Principal.DeviceID, CreatedAt: now,
	}

	if cur == nil {
		if fv.Form.State == domain.FormClosed {
			it.reject(domain.Finding{Path: "/form", Keyword: "closed", Message: fmt.Sprintf("form %q is closed: it takes no new records", in.Form)})
			return nil, nil
		}
		rec := domain.Record{
			ProjectID: projectID, ID: in.ID, FormID: in.Form, FormVersion: in.FormVersion,
			Rev: inRev, Deleted: in.Deleted, Data: it.canonical,
			CreatedBy: c.Principal.Subject, DeviceID: c.Principal.DeviceID,
			ClientModifiedAt: incoming.ClientModifiedAt, CreatedAt: now, UpdatedAt: now,
			ReviewState: domain.ReviewReceived, Shared: fv.Version.Shared,
			Attachments: in.Attachments,
		}
		it.flagClock(&rec, incoming.ClientModifiedAt, now)
		it.res.Status, it.res.Rev = StatusCreated, inRev
		it.res.MissingAttachments = missing(in.Attachments)
		return &domain.RecordWrite{Record: rec, Revisions: []domain.Revision{incoming}}, nil
	}

	if !c.canSee(*cur) {
		it.res.Status = StatusForbidden
		it.res.Errors = []domain.Finding{{Path: "/id", Keyword: "forbidden", Message: "this record belongs to someone else"}}
		it.done = true
		// Not applied, and not dropped: kept for a manager (an offline edit of
		// a record reassigned away from the tablet meanwhile).
		it.quarantine, it.reason = true, domain.QuarantineForbidden
		return nil, nil
	}
	if cur.FormID != in.Form {
		it.reject(domain.Finding{Path: "/form", Keyword: "mismatch", Message: fmt.Sprintf("record %s belongs to form %q", in.ID, cur.FormID)})
		return nil, nil
	}
	if cur.Rev == inRev {
		it.res.Status, it.res.Rev, it.done = StatusUnchanged, cur.Rev, true
		return nil, nil
	}

	next := *cur
	next.FormVersion = in.FormVersion
	next.DeviceID = c.Principal.DeviceID
	next.UpdatedAt = now
	next.Attachments = mergeAttachments(cur.Attachments, in.Attachments)
	it.res.MissingAttachments = missing(in.Attachments)

	if parent == cur.Rev {
		next.Rev, next.Data, next.Deleted = inRev, it.canonical, in.Deleted
		next.ClientModifiedAt = incoming.ClientModifiedAt
		it.flagClock(&next, incoming.ClientModifiedAt, now)
		it.res.Status, it.res.Rev = StatusUpdated, inRev
		return &domain.RecordWrite{Record: next, ExpectRev: cur.Rev, ExpectVersion: cur.Version, Revisions: []domain.Revision{incoming}}, nil
	}

	// A stale base. A replay of an edit that was already merged or kept as a
	// conflict finds its own revision in the history.
	if _, err := s.store.GetRevision(ctx, projectID, in.ID, inRev); err == nil {
		it.res.Status, it.res.Rev, it.done = StatusUnchanged, cur.Rev, true
		return nil, nil
	} else if !errors.Is(err, domain.ErrNotFound) {
		return nil, err
	}
	rin := syncer.ResolveInput{
		Policy: fv.Version.Policy,
		Base:   syncer.Version{Rev: parent},
		Current: syncer.Version{Rev: cur.Rev, Data: cur.Data, Deleted: cur.Deleted, ClientModifiedAt: cur.ClientModifiedAt, DeviceID: cur.DeviceID, By: cur.CreatedBy,
			OrderAt: orderAt(cur.ClientModifiedAt, cur.UpdatedAt)},
		Incoming: syncer.Version{Rev: inRev, Data: it.canonical, Deleted: in.Deleted, ClientModifiedAt: incoming.ClientModifiedAt, DeviceID: c.Principal.DeviceID, By: c.Principal.Subject,
			OrderAt: orderAt(incoming.ClientModifiedAt, now)},
		// The outcome carries the incoming edit's form version: its data must
		// fit that version, merged or not.
		Validate: func(data json.RawMessage) []domain.Finding { return fv.Validator.ValidateJSON(data) },
	}
	if parent != "" {
		b, err := s.store.GetRevision(ctx, projectID, in.ID, parent)
		switch {
		case err == nil:
			rin.Base = syncer.Version{Rev: b.Rev, Data: b.Data, Deleted: b.Deleted, ClientModifiedAt: b.ClientModifiedAt, DeviceID: b.DeviceID, By: b.CreatedBy}
		case errors.Is(err, domain.ErrNotFound):
			rin.BaseMissing = true
		default:
			return nil, err
		}
	}
	out, err := syncer.Resolve(rin)
	if err != nil {
		return nil, err
	}
	if !out.Applied && len(out.Conflicts) == 0 {
		// The edit changed nothing, or made what the record already holds.
		it.res.Status, it.res.Rev, it.done = out.Status, cur.Rev, true
		it.res.Current = cur
		return nil, nil
	}
	revs := []domain.Revision{incoming}
	next.Conflicts = append(append([]domain.Conflict(nil), cur.Conflicts...), out.Conflicts...)
	if out.Applied {
		next.Rev, next.Data, next.Deleted = out.Rev, out.Data, out.Deleted
		if incoming.ClientModifiedAt.After(cur.ClientModifiedAt) {
			next.ClientModifiedAt = incoming.ClientModifiedAt
		}
		it.flagClock(&next, incoming.ClientModifiedAt, now)
		revs = append(revs, domain.Revision{
			ProjectID: projectID, RecordID: in.ID, Rev: out.Rev, Parent: cur.Rev, Deleted: out.Deleted,
			Data: out.Data, FormVersion: in.FormVersion, ClientModifiedAt: next.ClientModifiedAt,
			CreatedBy: c.Principal.Subject, DeviceID: c.Principal.DeviceID, CreatedAt: now,
		})
	} else {
		// Nothing applied: the record keeps its data and revision, and gains the
		// conflict entry (a write that also moves it in the feed).
		next.FormVersion = cur.FormVersion
		next.DeviceID = cur.DeviceID
	}
	it.res.Status, it.res.Rev = out.Status, next.Rev
	it.res.Current = &next
	if len(out.Findings) > 0 {
		// The merge was refused by the schema: say why, as a rejection does.
		it.res.Errors = dataFindings(out.Findings)
	}
	return &domain.RecordWrite{Record: next, ExpectRev: cur.Rev, ExpectVersion: cur.Version, Revisions: revs}, nil
}

// dataFindings makes findings on a record's data relative to the pushed item,
// at most MaxFindings of them (capFindings).
func dataFindings(f []domain.Finding) []domain.Finding {
	f = capFindings(f)
	out := make([]domain.Finding, len(f))
	for i, x := range f {
		if x.Keyword != "more" {
			x.Path = "/data" + x.Path
		}
		out[i] = x
	}
	return out
}

// missing lists the declared attachments, all missing until fillMissing
// (attachment.go) looks at which the server holds; the record is stored all
// the same.
func missing(atts []domain.Attachment) []string {
	var out []string
	for _, a := range atts {
		out = append(out, a.Name)
	}
	return out
}

// mergeAttachments keeps every attachment a record ever declared, the newest
// declaration of a name winning.
func mergeAttachments(old, add []domain.Attachment) []domain.Attachment {
	if len(add) == 0 {
		return old
	}
	out := append([]domain.Attachment(nil), add...)
	names := map[string]bool{}
	for _, a := range add {
		names[a.Name] = true
	}
	for _, a := range old {
		if !names[a.Name] {
			out = append(out, a)
		}
	}
	return out
}

// MaxClockSkew is how far ahead of the server's clock a device's
// client_modified_at may be and still count as it is. An edit from a device
// whose clock runs further ahead (a wrong date or time zone, or a forged year
// 9999 that would win every later last-write-wins decision) is stored with the
// time it sent, but ordered against other edits as if made at its arrival plus
// MaxClockSkew, and its record is flagged for review.
const MaxClockSkew = time.Hour

// orderAt is the time an edit is ordered by: its device's time, at most
// MaxClockSkew past the server's time when it arrived.
func orderAt(clientAt, receivedAt time.Time) time.Time {
	if limit := receivedAt.Add(MaxClockSkew); clientAt.After(limit) {
		return limit
	}
	return clientAt
}

// flagClockAhead flags r for review (has_issues, and a comment unless an
// analyst wrote one) when the edit applied to it came from a device whose
// clock ran more than MaxClockSkew ahead of the server's.
func flagClockAhead(r *domain.Record, clientAt, now time.Time) {
	ahead := clientAt.Sub(now)
	if ahead <= MaxClockSkew {
		return
	}
	r.ReviewState = domain.ReviewHasIssues
	if r.ReviewComment == "" {
		r.ReviewComment = clockAheadNote(clientAt, now)
	}
}

// clockAheadNote says why flagClockAhead flagged a record.
func clockAheadNote(clientAt, now time.Time) string {
	return fmt.Sprintf("the device's clock was %s ahead of the server's when it sent this edit: its client_modified_at (%s) is kept, but it counts only as %s when edits are ordered",
		clientAt.Sub(now).Round(time.Minute), clientAt.UTC().Format(time.RFC3339), now.Add(MaxClockSkew).UTC().Format(time.RFC3339))
}

// flagClock is flagClockAhead, noting on the item the review state the flag
// replaced and why, so that the push adds the change to the record's review
// thread (pushAudited).
func (it *item) flagClock(r *domain.Record, clientAt, now time.Time) {
	prev := r.ReviewState
	flagClockAhead(r, clientAt, now)
	if r.ReviewState != prev {
		it.flaggedFrom, it.flagNote = prev, clockAheadNote(clientAt, now)
	}
}
