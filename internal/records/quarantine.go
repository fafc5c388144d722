package records

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"strconv"
	"strings"
	"time"
	"unicode/utf8"

	"github.com/google/uuid"

	"github.com/fieldsync/fieldsync/internal/audit"
	"github.com/fieldsync/fieldsync/internal/domain"
)

// Re-applying and dismissing quarantine entries (protocol.md §3, issue 11).
//
// A re-apply is the entry's item pushed again, now, through the same path as
// a push (validation, the form's state and its conflict policy): applyItems,
// not a copy of it. Who may do it is the route's business (analysts and
// managers); what the record then says is decided here:
//
// Attribution. A re-applied item is the submitter's edit let through, so the
// record and its new revision carry the original submitter and device, as if
// the push had been accepted: created_by of a record it creates is the
// submitter (an enumerator's tablet keeps seeing the record it made), and a
// conflict names the device the edit came from. This holds for an item that
// was forbidden too: a manager who re-applies an offline edit of a record
// reassigned away from the tablet lets that tablet's edit in; it does not
// become the manager's edit. Who re-applied it, when, and with which data is
// on the entry (resolved_by, last_reapply) and in the audit log
// (quarantine_reapplied, actor the person, detail submitted_by).
//
// Once. An entry is claimed in the store before it is applied (at most one
// claim per entry, on any number of server instances), so two people pressing
// "re-apply" at once apply it once: the other gets 409 quarantine_busy. A
// claim left by a server that died mid-way lapses after claimTTL.
//
// Nothing lost. A refused re-apply leaves the entry open with the new
// findings and keeps the data that was tried (last_reapply.data); an applied
// one resolves the entry and the data is the record's new revision.

// claimTTL is how long a re-apply's claim on an entry holds before another
// re-apply (or a dismissal) may take over: a re-apply of one item takes
// milliseconds, so only a server that died mid-way leaves one this old.
const claimTTL = 2 * time.Minute

// MaxDismissReason bounds the reason of a dismissal, in characters.
const MaxDismissReason = 1000

// Reapply is what a person sends to re-apply a quarantine entry. Zero fields
// keep what was submitted.
type Reapply struct {
	// Data is the corrected data; nil applies the submitted data.
	Data json.RawMessage
	// FormVersion applies the item against another version of its form (a
	// schema that was too strict, fixed in a newer version); "" keeps the
	// submitted one.
	FormVersion string
}

func quarantineNotFound() error {
	return &domain.Error{Kind: domain.KindNotFound, Code: "quarantine_not_found", Title: "No such quarantine entry in this project"}
}

// notOpen explains why an entry could not be claimed or dismissed: it is
// resolved or dismissed already (409 quarantine_not_open), or a re-apply of
// it is under way (409 quarantine_busy).
func (s *Service) notOpen(ctx context.Context, projectID, id string) error {
	cur, err := s.store.GetQuarantine(ctx, projectID, id)
	switch {
	case errors.Is(err, domain.ErrNotFound):
		return quarantineNotFound()
	case err != nil:
		return err
	}
	if st := cur.State(); st != domain.QuarantineOpen {
		return &domain.Error{Kind: domain.KindConflict, Code: "quarantine_not_open",
			Title: "This quarantine entry is " + st, Detail: "only open entries can be re-applied or dismissed"}
	}
	return &domain.Error{Kind: domain.KindConflict, Code: "quarantine_busy",
		Title: "This quarantine entry is being re-applied by someone else", Detail: "list the quarantine again in a moment to see the outcome",
		RetryAfter: time.Second}
}

// mayDecide refuses callers who do not own the data: only analysts, managers
// and admins re-apply or dismiss (the routes say so too; designers read the
// quarantine of their forms, they do not apply records).
func mayDecide(c Caller) error {
	if c.Principal.Admin && !c.Principal.IsDevice() {
		return nil
	}
	switch c.Role {
	case domain.RoleAnalyst, domain.RoleManager:
		return nil
	}
	return &domain.Error{Kind: domain.KindForbidden, Code: "forbidden", Title: "You may not do this",
		Detail: "re-applying and dismissing quarantine entries needs the analyst or manager role"}
}

// ReapplyQuarantine applies quarantine entry id again now, corrected by r, and
// returns the push result and the entry afterwards. A result of created,
// updated, merged, conflict or unchanged resolves the entry; rejected leaves
// it open with the new findings. Answers 404 quarantine_not_found, 409
// quarantine_not_open (resolved or dismissed) or quarantine_busy (another
// re-apply of it is under way), 403 forbidden for a caller who is neither
// analyst nor manager.
func (s *Service) ReapplyQuarantine(ctx context.Context, c Caller, projectID, id string, r Reapply) (Result, domain.QuarantineItem, error) {
	if err := mayDecide(c); err != nil {
		return Result{}, domain.QuarantineItem{}, err
	}
	now := s.clock()
	claim := uuid.NewString()
	entry, err := s.store.ClaimQuarantine(ctx, projectID, id, claim, now, now.Add(-claimTTL))
	switch {
	case errors.Is(err, domain.ErrNotFound):
		return Result{}, domain.QuarantineItem{}, quarantineNotFound()
	case errors.Is(err, domain.ErrStale):
		return Result{}, domain.QuarantineItem{}, s.notOpen(ctx, projectID, id)
	case err != nil:
		return Result{}, domain.QuarantineItem{}, err
	}
	// If anything below fails with the store, the claim lapses after
	// claimTTL: the outcome of a failed write is unknown, and a retry then is
	// safe (revisions are deterministic).

	it := &item{}
	sub, f := submissionOf(entry)
	if len(r.Data) > 0 {
		sub.Data = r.Data
	}
	if r.FormVersion != "" {
		sub.FormVersion = r.FormVersion
	}
	it.sub, it.res = sub, Result{ID: sub.ID}
	if f != nil && len(r.Data) == 0 {
		// The item as sent could not be read: only corrected data helps.
		it.rejectUndecodable(f)
	} else {
		// The submitter's edit, let through with the caller's authority
		// (see Attribution above): a caller that is no enumerator sees
		// every record.
		as := Caller{Principal: submitter(entry), Role: domain.RoleManager}
		if err := s.applyItems(ctx, as, projectID, []*item{it}, now); err != nil {
			return Result{}, domain.QuarantineItem{}, err
		}
	}
	res := it.res
	out := domain.QuarantineReapply{By: c.Principal.Subject, At: now, Status: res.Status, FormVersion: sub.FormVersion}
	switch res.Status {
	case StatusRejected, StatusForbidden:
		out.Errors = res.Errors
	default:
		out.Applied, out.Rev = true, res.Rev
	}
	if len(r.Data) > 0 {
		var buf bytes.Buffer
		if json.Compact(&buf, r.Data) == nil {
			out.Data = quarantinedBody(buf.Bytes())
		} else {
			out.Data = quarantinedBody(r.Data)
		}
	}
	settled, err := s.store.SettleQuarantine(ctx, projectID, id, claim, out)
	if errors.Is(err, domain.ErrStale) {
		// The claim lapsed and another re-apply took the entry over: the
		// item was applied all the same (the result says how); that other
		// re-apply settles the entry.
		s.log.Warn("quarantine re-apply outlived its claim", "project", projectID, "entry", id, "status", res.Status)
		settled, err = s.store.GetQuarantine(ctx, projectID, id)
	}
	if err != nil {
		return Result{}, domain.QuarantineItem{}, err
	}
	audit.Append(ctx, s.store, s.log, s.now, domain.AuditEvent{Type: audit.QuarantineReapplied, Actor: c.Principal.Subject,
		ProjectID: projectID, Subject: id, Detail: map[string]string{
			"record": sub.ID, "status": res.Status, "rev": res.Rev, "reason": entry.Reason,
			"submitted_by": entry.SubmittedBy, "corrected": strconv.FormatBool(len(r.Data) > 0), "form_version": sub.FormVersion,
		}})
	return res, settled, nil
}

// DismissQuarantine marks an open quarantine entry dismissed with a reason;
// the entry is kept. Answers 422 invalid_dismissal for a missing or too long
// reason, 404 quarantine_not_found, 409 quarantine_not_open or quarantine_busy,
// 403 forbidden for a caller who is neither analyst nor manager.
func (s *Service) DismissQuarantine(ctx context.Context, c Caller, projectID, id, reason string) (domain.QuarantineItem, error) {
	if err := mayDecide(c); err != nil {
		return domain.QuarantineItem{}, err
	}
	reason = strings.TrimSpace(reason)
	switch {
	case reason == "":
		return domain.QuarantineItem{}, domain.Invalid("invalid_dismissal", "A dismissal needs a reason",
			[]domain.Finding{{Path: "/reason", Keyword: "required", Message: "say why this entry is not to be applied (a test interview, a duplicate, …)"}})
	case utf8.RuneCountInString(reason) > MaxDismissReason:
		return domain.QuarantineItem{}, domain.Invalid("invalid_dismissal", "The reason is too long",
			[]domain.Finding{{Path: "/reason", Keyword: "maxLength", Message: fmt.Sprintf("at most %d characters", MaxDismissReason)}})
	}
	now := s.clock()
	entry, err := s.store.DismissQuarantine(ctx, projectID, id, domain.QuarantineDismissal{By: c.Principal.Subject, Reason: reason, At: now}, now.Add(-claimTTL))
	switch {
	case errors.Is(err, domain.ErrNotFound):
		return domain.QuarantineItem{}, quarantineNotFound()
	case errors.Is(err, domain.ErrStale):
		return domain.QuarantineItem{}, s.notOpen(ctx, projectID, id)
	case err != nil:
		return domain.QuarantineItem{}, err
	}
	audit.Append(ctx, s.store, s.log, s.now, domain.AuditEvent{Type: audit.QuarantineDismissed, Actor: c.Principal.Subject,
		ProjectID: projectID, Subject: id, Detail: map[string]string{
			"record": entry.RecordID, "reason": reason, "submitted_by": entry.SubmittedBy,
		}})
	return entry, nil
}

// submitter is the principal that pushed the entry's item.
func submitter(q domain.QuarantineItem) domain.Principal {
	p := domain.Principal{Subject: q.SubmittedBy, DeviceID: q.DeviceID}
	if p.DeviceID == "" {
		p.Username = q.SubmittedBy
	}
	return p
}

// wireSubmission is a pushed item in the protocol's words (api.Submission's
// fields): what the quarantine keeps, and reads back to re-apply it.
type wireSubmission struct {
	ID               string              `json:"id"`
	Form             string              `json:"form"`
	FormVersion      string              `json:"form_version"`
	BaseRev          *string             `json:"base_rev"`
	ClientModifiedAt time.Time           `json:"client_modified_at"`
	Deleted          bool                `json:"deleted"`
	Data             json.RawMessage     `json:"data"`
	Attachments      []domain.Attachment `json:"attachments,omitempty"`
}

// wireOf is a submission as a client would have sent it.
func wireOf(sub Submission) json.RawMessage {
	b, _ := json.Marshal(wireSubmission{ID: sub.ID, Form: sub.Form, FormVersion: sub.FormVersion, BaseRev: sub.BaseRev,
		ClientModifiedAt: sub.ClientModifiedAt, Deleted: sub.Deleted, Data: sub.Data, Attachments: sub.Attachments})
	return b
}

// submissionOf reads back the item a quarantine entry keeps, leniently: an
// unknown member (a reason it was rejected) is ignored, and the entry's own
// record id, form and version fill what the item does not say. An item that
// cannot be read (bad JSON, or kept truncated) comes back with a finding.
func submissionOf(q domain.QuarantineItem) (Submission, []domain.Finding) {
	var w wireSubmission
	err := json.Unmarshal(q.Submission, &w)
	sub := Submission{ID: w.ID, Form: w.Form, FormVersion: w.FormVersion, BaseRev: w.BaseRev,
		ClientModifiedAt: w.ClientModifiedAt, Deleted: w.Deleted, Data: w.Data, Attachments: w.Attachments}
	if sub.ID == "" {
		sub.ID = q.RecordID
	}
	if sub.Form == "" {
		sub.Form = q.FormID
	}
	if sub.FormVersion == "" {
		sub.FormVersion = q.FormVersion
	}
	if err != nil {
		return Submission{ID: q.RecordID, Form: q.FormID, FormVersion: q.FormVersion}, []domain.Finding{{Path: "", Keyword: "json",
			Message: "the item as it was sent cannot be read as a submission; re-apply it with corrected data"}}
	}
	var members map[string]json.RawMessage
	if json.Unmarshal(q.Submission, &members) == nil && len(members) == 1 && members["truncated"] != nil {
		return sub, []domain.Finding{{Path: "", Keyword: "truncated",
			Message: "the quarantine kept only the beginning of this item; re-apply it with corrected data"}}
	}
	return sub, nil
}
