package odata

import (
	"context"
	"encoding/base64"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/fieldsync/fieldsync/internal/domain"
)

// Filter selects records of one form for the feed. Deleted records are never
// selected.
type Filter struct {
	ProjectID string
	FormID    string
	// Since and Until bound the server receive time (CreatedAt, the feed's
	// submissionDate): Since <= CreatedAt < Until; a zero bound is open.
	Since, Until time.Time
	// ReviewStates, when not empty, keeps records in one of these states.
	ReviewStates []string
	// Match, when not nil, must also accept the record: the rest of a $filter
	// that the bounds above do not express.
	Match func(*domain.Record) bool
}

// keep applies the whole filter to r.
func (f *Filter) keep(r *domain.Record) bool {
	if r.Deleted || r.FormID != f.FormID {
		return false
	}
	if !f.Since.IsZero() && r.CreatedAt.Before(f.Since) {
		return false
	}
	if !f.Until.IsZero() && !r.CreatedAt.Before(f.Until) {
		return false
	}
	if len(f.ReviewStates) > 0 && !slices.Contains(f.ReviewStates, reviewState(r)) {
		return false
	}
	return f.Match == nil || f.Match(r)
}

// Query asks a Source for one page.
type Query struct {
	Filter
	// After is the cursor of the last record of the previous page ("" for the
	// start); only the Source that made it reads it.
	After string
	// Limit is the most records to return (at least 1).
	Limit int
}

// Page is one page of a Source.
type Page struct {
	Records []domain.Record
	// Next is the cursor after the last record, "" when no record follows.
	Next string
}

// Source is where the feed reads a form's records: the seam between the
// OData door and the store.
//
// Page returns the records of the filter after the cursor, in the Source's
// order, which must be stable while records are written: a record keeps its
// place when it is edited or reviewed, and a record written after a cursor
// was handed out comes after it (so paging with Next until it is "" yields
// every record that existed at the start exactly once, in its state when its
// page was read). Count returns how many records the filter selects. Errors:
// an *domain.Error of KindBadRequest with code invalid_skiptoken for a cursor
// the Source did not make; store failures as the store returns them.
//
// QuerySource is the implementation, over the store's dataset query in
// (CreatedAt, ID) order. The tests keep a reference implementation that
// scans the changes feed (scanSource) and compare the two.
type Source interface {
	Page(ctx context.Context, q Query) (Page, error)
	Count(ctx context.Context, f Filter) (int, error)
}

type sortKey struct {
	at time.Time
	id string
}

func (k sortKey) less(o sortKey) bool {
	if c := k.at.Compare(o.at); c != 0 {
		return c < 0
	}
	return k.id < o.id
}

func keyOf(r *domain.Record) sortKey { return sortKey{r.CreatedAt, r.ID} }

// encodeCursor and decodeCursor make StoreSource's cursors: "s1", the
// receive time in Unix nanoseconds and the id, base64url.
func encodeCursor(k sortKey) string {
	return base64.RawURLEncoding.EncodeToString([]byte("s1|" + strconv.FormatInt(k.at.UnixNano(), 10) + "|" + k.id))
}

func decodeCursor(s string) (sortKey, error) {
	b, err := base64.RawURLEncoding.DecodeString(s)
	parts := strings.SplitN(string(b), "|", 3)
	if err != nil || len(parts) != 3 || parts[0] != "s1" {
		return sortKey{}, errBadSkipToken()
	}
	ns, err := strconv.ParseInt(parts[1], 10, 64)
	if err != nil {
		return sortKey{}, errBadSkipToken()
	}
	return sortKey{time.Unix(0, ns).UTC(), parts[2]}, nil
}

func errBadSkipToken() error {
	return &domain.Error{Kind: domain.KindBadRequest, Code: "invalid_skiptoken", Title: "The $skiptoken is not one this server handed out",
		Detail: "follow @odata.nextLink as given, or start again without $skiptoken"}
}
