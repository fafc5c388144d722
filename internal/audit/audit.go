// Package audit holds what every service needs to write the audit log: the
// types of the data events (forms, records, quarantine; the security events are
// identity's) and Append, which records an event without ever failing the
// operation it describes.
package audit

import (
	"context"
	"log/slog"
	"time"

	"github.com/fieldsync/fieldsync/internal/domain"
)

// Data event types. Subject is what the event was done to (a form id, a record
// id, a quarantine entry id); detail keys never hold survey answers, only ids,
// revisions, states and counts, since the audit log is read by admins who may not
// see the data.
const (
	// FormPublished is a form version published; subject the form, detail version.
	FormPublished = "form_published"
	// FormClosed is a form closed to new records; subject the form.
	FormClosed = "form_closed"
	// FormReopened is a closed form opened again; subject the form.
	FormReopened = "form_reopened"
	// RecordCorrected is an analyst's correction (PUT); subject the record,
	// detail rev (new) and prev_rev.
	RecordCorrected = "record_corrected"
	// ConflictResolved is a record's conflicts settled; subject the record,
	// detail rev (new), conflicts (how many).
	ConflictResolved = "conflict_resolved"
	// ReviewChanged is a record's review state changed; subject the record,
	// detail from, to.
	ReviewChanged = "review_changed"
	// RecordAssigned is a record's assignment changed; subject the record,
	// detail assigned_to (comma-separated).
	RecordAssigned = "record_assigned"
	// CommentAdded is a review comment on a record; subject the record (the
	// text is not copied: it may quote answers).
	CommentAdded = "comment_added"
	// RecordDeleted is a record deleted (a tombstone stored); subject the
	// record, detail rev.
	RecordDeleted = "record_deleted"
	// QuarantineReapplied is a quarantine entry applied again, corrected or
	// not; subject the entry, detail record, status (the push status).
	QuarantineReapplied = "quarantine_reapplied"
	// QuarantineDismissed is a quarantine entry dismissed; subject the entry,
	// detail record, reason.
	QuarantineDismissed = "quarantine_dismissed"
	// DatasetExported is a form's records exported (they leave the server);
	// subject the form, detail format, records (how many), failed ("true"
	// when the export stopped part-way).
	DatasetExported = "dataset_exported"
)

// DataTypes lists every data event type above.
var DataTypes = []string{FormPublished, FormClosed, FormReopened, RecordCorrected, ConflictResolved,
	ReviewChanged, RecordAssigned, CommentAdded, RecordDeleted, QuarantineReapplied, QuarantineDismissed,
	DatasetExported}

// Appender is the part of the store Append needs (domain.AuditStore's).
type Appender interface {
	AppendAudit(ctx context.Context, e domain.AuditEvent) (domain.AuditEvent, error)
}

// timeout bounds an audit write that outlives its request.
const timeout = 5 * time.Second

// Append stores e. It never fails the operation it records: the operation
// already happened, and refusing it now would not undo it; a lost event is
// logged loudly instead. The write outlives a cancelled request, so a client
// that hangs up cannot erase its trace. A zero e.Time becomes now().
func Append(ctx context.Context, st Appender, log *slog.Logger, now func() time.Time, e domain.AuditEvent) {
	if e.Time.IsZero() {
		if now == nil {
			now = time.Now
		}
		e.Time = now().UTC()
	}
	if log == nil {
		log = slog.Default()
	}
	ctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), timeout)
	defer cancel()
	if _, err := st.AppendAudit(ctx, e); err != nil {
		log.Error("audit event lost", "type", e.Type, "actor", e.Actor, "subject", e.Subject, "err", err)
	}
}
