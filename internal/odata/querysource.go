package odata

import (
	"context"
	"errors"
	"time"

	"github.com/fieldsync/fieldsync/internal/domain"
)

// QueryFunc reads one page of a form's records in (CreatedAt, ID) order,
// strictly after the position (afterAt, afterID) (zero: from the start),
// at most limit of them, leaving out deleted records and those outside
// f.Since, f.Until and f.ReviewStates (it may ignore f.Match, which
// QuerySource applies). more reports that records follow the page.
type QueryFunc func(ctx context.Context, f Filter, afterAt time.Time, afterID string, limit int) (recs []domain.Record, more bool, err error)

// QuerySource is a Source over a store query that filters and orders in the
// database, such as a RecordQuery in (created_at, id) order: each page
// costs one or a few indexed reads instead of a scan of the feed. It
// applies Filter.Match itself, reading on until a page is full, and uses
// the cursors of the test's reference scanSource.
type QuerySource struct {
	Query QueryFunc
	// CountFunc, when set, counts the records of a filter without a Match
	// (the store's count over the same index as Query), so $count does not
	// read every record; a filter with a Match is counted by reading.
	CountFunc func(ctx context.Context, f Filter) (int, error)
}

// Page implements Source.
func (s QuerySource) Page(ctx context.Context, q Query) (Page, error) {
	if q.Limit < 1 {
		return Page{}, errors.New("odata: QuerySource.Page: limit < 1")
	}
	var after sortKey
	if q.After != "" {
		k, err := decodeCursor(q.After)
		if err != nil {
			return Page{}, err
		}
		after = k
	}
	var out []domain.Record
	for len(out) <= q.Limit {
		recs, more, err := s.Query(ctx, q.Filter, after.at, after.id, max(q.Limit+1-len(out), sourcePageSize/10))
		if err != nil {
			return Page{}, err
		}
		for i := range recs {
			after = keyOf(&recs[i])
			if q.keep(&recs[i]) {
				out = append(out, recs[i])
			}
		}
		if !more || len(recs) == 0 {
			break
		}
	}
	p := Page{Records: out}
	if len(out) > q.Limit {
		p.Records = out[:q.Limit]
		p.Next = encodeCursor(keyOf(&p.Records[q.Limit-1]))
	}
	return p, nil
}

// Count implements Source.
func (s QuerySource) Count(ctx context.Context, f Filter) (int, error) {
	if s.CountFunc != nil && f.Match == nil {
		return s.CountFunc(ctx, f)
	}
	n := 0
	var after sortKey
	for {
		recs, more, err := s.Query(ctx, f, after.at, after.id, sourcePageSize)
		if err != nil {
			return 0, err
		}
		for i := range recs {
			after = keyOf(&recs[i])
			if f.keep(&recs[i]) {
				n++
			}
		}
		if !more || len(recs) == 0 {
			return n, nil
		}
	}
}
