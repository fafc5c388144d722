package records

import (
	"context"
	"encoding/json"
	"errors"
	"time"

	"github.com/fieldsync/fieldsync/internal/domain"
	"github.com/fieldsync/fieldsync/internal/syncer"
)

func recordNotFound() error {
	return &domain.Error{Kind: domain.KindNotFound, Code: "record_not_found", Title: "No such record in this project"}
}

// Get returns one record the caller may see, and its history (oldest first)
// when withRevs is set.
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

// history walks the parent chain from the current revision, so side revisions
// (edits that were merged or kept as conflicts) are left out of the line.
func (s *Service) history(ctx context.Context, rec domain.Record) ([]domain.Revision, error) {
	all, err := s.store.ListRevisions(ctx, rec.ProjectID, rec.ID)
	if err != nil {
		return nil, err
	}
	byRev := make(map[string]domain.Revision, len(all))
	for _, r := range all {
		byRev[r.Rev] = r
	}
	var line []domain.Revision
	for rev := rec.Rev; rev != ""; {
		r, ok := byRev[rev]
		if !ok {
			break
		}
		line = append(line, r)
		delete(byRev, rev) // guards against a cycle in damaged data
		rev = r.Parent
	}
	for i, j := 0, len(line)-1; i < j; i, j = i+1, j-1 {
		line[i], line[j] = line[j], line[i]
	}
	return line, nil
}

// Correct applies an analyst's correction of a record's data. ifMatch is the
// revision the analyst read; a stale one answers 412.
func (s *Service) Correct(ctx context.Context, c Caller, projectID, id, ifMatch string, data json.RawMessage) (domain.Record, error) {
	if ifMatch == "" {
		return domain.Record{}, &domain.Error{Kind: domain.KindPreconditionRequired, Code: "if_match_required",
			Title: "If-Match is required", Detail: "send the record's rev (its ETag) in If-Match, so a correction never overwrites an edit you have not seen"}
	}
	return s.rewrite(ctx, c, projectID, id, ifMatch, data, false)
}

// Resolve settles a record's recorded conflicts with the chosen data, based on
// the revision rev the analyst looked at.
func (s *Service) Resolve(ctx context.Context, c Caller, projectID, id, rev string, data json.RawMessage) (domain.Record, error) {
	if rev == "" {
		return domain.Record{}, domain.Invalid("invalid_resolution", "rev is required", []domain.Finding{{Path: "/rev", Keyword: "required", Message: "rev is required"}})
	}
	return s.rewrite(ctx, c, projectID, id, rev, data, true)
}

func (s *Service) rewrite(ctx context.Context, c Caller, projectID, id, expect string, data json.RawMessage, clearConflicts bool) (domain.Record, error) {
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
	canon, err := syncer.Canonical(data)
	if err != nil || len(canon) == 0 || canon[0] != '{' {
		return domain.Record{}, domain.Invalid("invalid_data", "data must be a JSON object", []domain.Finding{{Path: "/data", Keyword: "type", Message: "data must be a JSON object"}})
	}
	fv, err := s.forms.LookupVersion(ctx, projectID, cur.FormID, cur.FormVersion)
	if err != nil {
		return domain.Record{}, err
	}
	if f := fv.Validator.ValidateJSON(canon); len(f) > 0 {
		for i := range f {
			f[i].Path = "/data" + f[i].Path
		}
		return domain.Record{}, domain.Invalid("invalid_data", "The data does not match the form's schema", f)
	}
	now := s.clock()
	rev, err := syncer.NewRev(cur.Rev, canon, false)
	if err != nil {
		return domain.Record{}, err
	}
	next := cur
	next.Rev, next.Data, next.Deleted = rev, canon, false
	next.ClientModifiedAt, next.UpdatedAt = now, now
	next.DeviceID = ""
	if clearConflicts {
		next.Conflicts = nil
	}
	w := domain.RecordWrite{Record: next, ExpectRev: cur.Rev, ExpectVersion: cur.Version, Revisions: []domain.Revision{{
		ProjectID: projectID, RecordID: id, Rev: rev, Parent: cur.Rev, Data: canon, FormVersion: cur.FormVersion,
		ClientModifiedAt: now, CreatedBy: c.Principal.Subject, CreatedAt: now,
	}}}
	if err := s.writeOne(ctx, w); err != nil {
		return domain.Record{}, err
	}
	return next, nil
}

func staleRev(current string) error {
	return &domain.Error{Kind: domain.KindPrecondition, Code: "rev_mismatch", Title: "The record has changed since you read it",
		Detail: "its current rev is " + current + "; read it again and redo the change"}
}

func (s *Service) writeOne(ctx context.Context, w domain.RecordWrite) error {
	res, err := s.store.WriteRecords(ctx, []domain.RecordWrite{w})
	if err != nil {
		return err
	}
	switch {
	case res[0] == nil:
		return nil
	case errors.Is(res[0], domain.ErrStale):
		cur, err := s.store.GetRecord(ctx, w.Record.ProjectID, w.Record.ID)
		if err != nil {
			return err
		}
		return staleRev(cur.Rev)
	case errors.Is(res[0], domain.ErrNotFound):
		return recordNotFound()
	}
	return res[0]
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
func (s *Service) Update(ctx context.Context, c Caller, projectID, id string, p Patch) (domain.Record, error) {
	if p.ReviewState != nil {
		switch *p.ReviewState {
		case domain.ReviewReceived, domain.ReviewApproved, domain.ReviewHasIssues, domain.ReviewRejected:
		default:
			return domain.Record{}, domain.Invalid("invalid_patch", "review_state is not one of received, approved, has_issues, rejected",
				[]domain.Finding{{Path: "/review_state", Keyword: "enum", Message: "must be received, approved, has_issues or rejected"}})
		}
	}
	if p.AssignedTo != nil {
		for i, a := range *p.AssignedTo {
			if a == "" || len(a) > 128 {
				return domain.Record{}, domain.Invalid("invalid_patch", "assigned_to holds usernames or device:<id> subjects",
					[]domain.Finding{{Path: "/assigned_to/" + itoa(i), Keyword: "format", Message: "must be a username or device:<id>"}})
			}
		}
	}
	for attempt := 0; attempt < maxAttempts; attempt++ {
		cur, err := s.store.GetRecord(ctx, projectID, id)
		if errors.Is(err, domain.ErrNotFound) {
			return domain.Record{}, recordNotFound()
		}
		if err != nil {
			return domain.Record{}, err
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
		res, err := s.store.WriteRecords(ctx, []domain.RecordWrite{{Record: next, ExpectRev: cur.Rev, ExpectVersion: cur.Version}})
		if err != nil {
			return domain.Record{}, err
		}
		if res[0] == nil {
			return next, nil
		}
		if !errors.Is(res[0], domain.ErrStale) {
			return domain.Record{}, res[0]
		}
		// The data moved on meanwhile: apply the patch to the new state.
	}
	return domain.Record{}, &domain.Error{Kind: domain.KindUnavailable, Code: "busy", Title: "The record is being written by others; try again", RetryAfter: time.Second}
}

// Quarantine lists the project's rejected items.
func (s *Service) Quarantine(ctx context.Context, projectID string, all bool, cursor string, limit int) ([]domain.QuarantineItem, string, error) {
	if limit == 0 {
		limit = DefaultPullLimit
	}
	if limit < 1 || limit > MaxPullLimit {
		return nil, "", &domain.Error{Kind: domain.KindBadRequest, Code: "invalid_limit", Title: "limit must be between 1 and 1000"}
	}
	return s.store.ListQuarantine(ctx, projectID, all, cursor, limit)
}

func itoa(i int) string {
	b, _ := json.Marshal(i)
	return string(b)
}
