package domain

import (
	"context"
	"time"
)

// RecordQuery selects one form's records for the datasets of protocol.md §4:
// the exports, the records listing and (later) the OData feed. Records come in
// the order of (CreatedAt, ID) — the time the server first received the record,
// then its id — which no later write changes: a reader that pages with After
// sees every record that existed when it started exactly once, in whatever
// state it has when its page is read, however many edits land meanwhile.
// (Ordering by the changes feed would move an edited record behind the cursor
// and list it twice.) Descending reverses that order, newest first, with the
// same guarantee: the key is the same, only the direction of the walk
// changes.
//
// Since and Until bound CreatedAt, the server receive time of the record's
// first revision (ODK Central's "submission date"), not the time of its latest
// edit: Since is inclusive, Until exclusive, a zero time is no bound.
// Empty lists match everything; a non-empty list matches any of its values.
type RecordQuery struct {
	ProjectID string
	FormID    string
	Since     time.Time
	Until     time.Time
	// ReviewStates, Versions and Devices filter on Record.ReviewState,
	// Record.FormVersion and Record.DeviceID.
	ReviewStates []string
	Versions     []string
	Devices      []string
	// IncludeDeleted lists tombstones too (the listing does, exports do not).
	IncludeDeleted bool
	// Descending lists the records newest first: (CreatedAt, ID) descending,
	// the exact reverse of the ascending order (records received in the same
	// millisecond in descending id order). After is then the position to
	// continue *before*: the following page holds the records that come
	// before it in the ascending order. (The analysts' table shows the
	// latest submissions first.)
	Descending bool
	// After is the position to continue after, in the direction of the
	// query; the zero cursor is the start (the oldest record, or the newest
	// when Descending).
	After RecordCursor
	// Limit caps the page; 0 means the store's default (1000).
	Limit int
}

// RecordCursor is a position in the (CreatedAt, ID) order of RecordQuery. It
// names a record, not a direction: a caller that hands cursors out keeps the
// direction beside it (records.EncodeRecordCursor does).
type RecordCursor struct {
	CreatedAt time.Time
	ID        string
}

// IsZero reports the start position.
func (c RecordCursor) IsZero() bool { return c.CreatedAt.IsZero() && c.ID == "" }

// RecordQueryPage is one page of a RecordQuery.
type RecordQueryPage struct {
	Records []Record
	// Next is the position of the page's last record (After when empty): the
	// After of the following page.
	Next RecordCursor
	// More is true when the page is full: more records may follow.
	More bool
}

// DatasetStore reads records for analysis.
type DatasetStore interface {
	// QueryRecords returns one page of the records q selects, in (CreatedAt,
	// ID) order after q.After, or in the reverse order before q.After when
	// q.Descending. Each page is one short read, so a caller that
	// streams millions of records holds no read open between pages, and a
	// cancelled ctx stops it at the next page (ErrUnavailable wrapping the
	// context's error, like every store call).
	QueryRecords(ctx context.Context, q RecordQuery) (RecordQueryPage, error)
	// CountRecords counts the records q selects (q.After, q.Limit and
	// q.Descending play no part): one count over the same index as
	// QueryRecords, for the listing's total and OData's $count, instead of
	// reading every record. Writes under way while it counts may be counted
	// or not, as for a page read at that moment.
	CountRecords(ctx context.Context, q RecordQuery) (int, error)
}

// CeilMilli rounds t up to the next whole millisecond (t itself when whole).
// Stores keep times in milliseconds, so a query bound finer than that is
// rounded up before the comparison: CreatedAt >= Since and CreatedAt < Until
// then hold for the exact bounds the caller gave.
func CeilMilli(t time.Time) time.Time {
	if d := t.Sub(t.Truncate(time.Millisecond)); d > 0 {
		return t.Truncate(time.Millisecond).Add(time.Millisecond)
	}
	return t
}
