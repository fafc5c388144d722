package records

import (
	"context"
	"encoding/base64"
	"encoding/binary"
	"fmt"
	"iter"
	"slices"
	"time"

	"github.com/fieldsync/fieldsync/internal/domain"
)

// ReviewStates are the review states of protocol.md §3, in workflow order.
var ReviewStates = []string{domain.ReviewReceived, domain.ReviewApproved, domain.ReviewHasIssues, domain.ReviewRejected}

// Listing cursors: "r1" (oldest first) or "d1" (newest first), then the
// receive time in Unix milliseconds (8 bytes) and the record id, base64url.
// Unlike a feed cursor ("c1", see EncodeCursor) it names a place in the
// receive order of one form's records (domain.RecordQuery), and the direction
// it was handed out for: the same position continues differently in the two
// orders, so a cursor used with the other order is refused rather than
// answered with a page that skips or repeats records. ("r1" is the cursor of
// the listing before it had an order: those stay valid.)

// Orders of the records listing (its order parameter).
const (
	// OrderAsc is oldest first, the listing's default: a script that mirrors
	// the data reads new records at the end.
	OrderAsc = "asc"
	// OrderDesc is newest first, as the console's table shows them.
	OrderDesc = "desc"
)

// ParseOrder reads the records listing's order parameter: "" or OrderAsc is
// ascending, OrderDesc descending (domain.RecordQuery.Descending); anything
// else answers 400 invalid_order.
func ParseOrder(s string) (descending bool, err error) {
	switch s {
	case "", OrderAsc:
		return false, nil
	case OrderDesc:
		return true, nil
	}
	return false, &domain.Error{Kind: domain.KindBadRequest, Code: "invalid_order", Title: "Unknown order",
		Detail: fmt.Sprintf("order=%q: use %s (oldest first, the default) or %s (newest first)", s, OrderAsc, OrderDesc)}
}

// EncodeRecordCursor makes the opaque cursor of a position of a RecordQuery
// in the given direction (RecordQuery.Descending).
func EncodeRecordCursor(c domain.RecordCursor, descending bool) string {
	b := make([]byte, 10, 10+len(c.ID))
	b[0], b[1] = 'r', '1'
	if descending {
		b[0] = 'd'
	}
	binary.BigEndian.PutUint64(b[2:], uint64(c.CreatedAt.UnixMilli()))
	b = append(b, c.ID...)
	return base64.RawURLEncoding.EncodeToString(b)
}

// DecodeRecordCursor reads a cursor made by EncodeRecordCursor: its position
// and direction; "" is the start (of either direction, reported ascending).
// Anything else answers 400 invalid_cursor.
func DecodeRecordCursor(s string) (c domain.RecordCursor, descending bool, err error) {
	if s == "" {
		return domain.RecordCursor{}, false, nil
	}
	b, err := base64.RawURLEncoding.DecodeString(s)
	if err != nil || len(b) < 11 || (b[0] != 'r' && b[0] != 'd') || b[1] != '1' || b[2]&0x80 != 0 {
		return domain.RecordCursor{}, false, &domain.Error{Kind: domain.KindBadRequest, Code: "invalid_cursor", Title: "The cursor is not one this server handed out",
			Detail: "pass the value of \"next\" from the previous page, or no cursor to start from the beginning"}
	}
	return domain.RecordCursor{CreatedAt: time.UnixMilli(int64(binary.BigEndian.Uint64(b[2:10]))).UTC(), ID: string(b[10:])}, b[0] == 'd', nil
}

// RecordPage is one page of a form's records listing.
type RecordPage struct {
	Records []domain.Record
	// Next is the cursor of the following page, "" on the last one.
	Next string
	// DeviceNames names the tablets of the page's records by id (see
	// Service.DeviceNames): the listing is read by people.
	DeviceNames map[string]string
}

// CheckQuery checks the parts of a dataset query a client chose: the form
// exists (404 form_not_found), review states are ones of ReviewStates (400
// invalid_query), since is before until (400 invalid_query).
func (s *Service) CheckQuery(ctx context.Context, q domain.RecordQuery) error {
	for _, st := range q.ReviewStates {
		if !slices.Contains(ReviewStates, st) {
			return &domain.Error{Kind: domain.KindBadRequest, Code: "invalid_query", Title: "Unknown review state",
				Detail: fmt.Sprintf("review_state %q: use one of %v", st, ReviewStates)}
		}
	}
	if !q.Since.IsZero() && !q.Until.IsZero() && !q.Since.Before(q.Until) {
		return &domain.Error{Kind: domain.KindBadRequest, Code: "invalid_query", Title: "since must be before until"}
	}
	_, _, err := s.pullArgs(ctx, q.ProjectID, "", 0, q.FormID)
	return err
}

// FormRecords is the records listing of one form
// (GET /v1/projects/{project}/forms/{form}/records): a page of the records q
// selects, tombstones included (scripts that mirror the data need them),
// after the opaque cursor, in receive order (newest first when
// q.Descending). limit 0 means DefaultPullLimit; outside 1..MaxPullLimit
// answers 400 invalid_limit; a bad cursor, or one handed out for the other
// order, 400 invalid_cursor; and CheckQuery's errors.
func (s *Service) FormRecords(ctx context.Context, q domain.RecordQuery, cursor string, limit int) (RecordPage, error) {
	after, descending, err := DecodeRecordCursor(cursor)
	if err != nil {
		return RecordPage{}, err
	}
	if cursor != "" && descending != q.Descending {
		return RecordPage{}, &domain.Error{Kind: domain.KindBadRequest, Code: "invalid_cursor", Title: "The cursor pages the records in the other order",
			Detail: fmt.Sprintf("this cursor continues a listing with order=%s; pass the same order with it, or no cursor to start again", orderName(descending))}
	}
	if limit == 0 {
		limit = DefaultPullLimit
	}
	if limit < 1 || limit > MaxPullLimit {
		return RecordPage{}, &domain.Error{Kind: domain.KindBadRequest, Code: "invalid_limit", Title: fmt.Sprintf("limit must be between 1 and %d", MaxPullLimit)}
	}
	if err := s.CheckQuery(ctx, q); err != nil {
		return RecordPage{}, err
	}
	q.After, q.Limit, q.IncludeDeleted = after, limit, true
	p, err := s.store.QueryRecords(ctx, q)
	if err != nil {
		return RecordPage{}, err
	}
	names, err := s.DeviceNames(ctx, Caller{}, q.ProjectID, p.Records)
	if err != nil {
		return RecordPage{}, err
	}
	out := RecordPage{Records: p.Records, DeviceNames: names}
	if p.More {
		out.Next = EncodeRecordCursor(p.Next, q.Descending)
	}
	return out, nil
}

// orderName is the order parameter of a direction.
func orderName(descending bool) string {
	if descending {
		return OrderDesc
	}
	return OrderAsc
}

// exportPage is the page size of Records: large enough that a page's store
// call costs little per record, small enough that a page's records take a
// few megabytes at most.
const exportPage = 500

// Records yields every record q selects (q.After and q.Limit are ignored), in
// receive order (newest first when q.Descending), one store page at a time:
// memory holds two pages whatever the count, and no store read stays open
// between pages. The next page is read while the caller handles the current
// one (on two cores the store's read and the caller's formatting overlap
// instead of taking turns). It stops at the first error, which it yields; a
// cancelled ctx, or a caller that stops ranging, stops the reads at the next
// page. Call CheckQuery first for a query a client chose.
func (s *Service) Records(ctx context.Context, q domain.RecordQuery) iter.Seq2[domain.Record, error] {
	return func(yield func(domain.Record, error) bool) {
		ctx, cancel := context.WithCancel(ctx)
		defer cancel()
		type result struct {
			page domain.RecordQueryPage
			err  error
		}
		pages := make(chan result, 1)
		go func() {
			defer close(pages)
			q.After, q.Limit = domain.RecordCursor{}, exportPage
			for {
				err := ctx.Err()
				var p domain.RecordQueryPage
				if err == nil {
					p, err = s.store.QueryRecords(ctx, q)
				}
				select {
				case pages <- result{p, err}:
				case <-ctx.Done():
					return
				}
				if err != nil || !p.More {
					return
				}
				q.After = p.Next
			}
		}()
		for r := range pages {
			if r.err != nil {
				yield(domain.Record{}, r.err)
				return
			}
			for _, rec := range r.page.Records {
				if !yield(rec, nil) {
					return
				}
			}
		}
	}
}
