package odata

import (
	"container/heap"
	"context"
	"errors"
	"slices"

	"github.com/fieldsync/fieldsync/internal/domain"
)

// The reference Source of the tests: the feed's first implementation, a scan
// of the project's changes feed, slow (it reads the whole form per page) but
// simple enough to trust; QuerySource must page and count as it does.

// ChangesReader is the part of the store scanSource reads.
type ChangesReader interface {
	Changes(ctx context.Context, q domain.ChangesQuery) (domain.ChangesPage, error)
}

// scanSource is a Source over the project's changes feed restricted to the
// form: it orders records by (CreatedAt, ID), which an edit never changes,
// and applies the filter in Go.
//
// Each Page and Count reads the form's whole feed (keeping only the Limit
// first records after the cursor in memory), so a full refresh costs
// records²/Limit reads: fine for thousands of records, slow for hundreds of
// thousands. It is the stand-in until the store offers a query filtered and
// ordered by the database; then the HTTP layer passes QuerySource with a
// QueryFunc over that query instead.
type scanSource struct {
	Store ChangesReader
}

// scanLimit is the page size of the changes feed while scanning.
const scanLimit = 1000

// scan calls fn with every record of the form's feed, each in its latest
// state; a record written during the scan may come twice (fn keeps the last).
func (s scanSource) scan(ctx context.Context, f Filter, fn func(r domain.Record)) error {
	since := int64(0)
	for {
		p, err := s.Store.Changes(ctx, domain.ChangesQuery{ProjectID: f.ProjectID, FormID: f.FormID, Since: since, Limit: scanLimit})
		if err != nil {
			return err
		}
		for _, r := range p.Records {
			fn(r)
		}
		since = p.Next
		if !p.More {
			return nil
		}
	}
}

// sortKey orders records: receive time, then id.

// Page implements Source.
func (s scanSource) Page(ctx context.Context, q Query) (Page, error) {
	if q.Limit < 1 {
		return Page{}, errors.New("odata: scanSource.Page: limit < 1")
	}
	var after *sortKey
	if q.After != "" {
		k, err := decodeCursor(q.After)
		if err != nil {
			return Page{}, err
		}
		after = &k
	}
	// A max-heap of the Limit+1 smallest keys after the cursor; by id, so a
	// record seen twice (written during the scan) keeps its latest state.
	h := &recordHeap{at: map[string]int{}}
	err := s.scan(ctx, q.Filter, func(r domain.Record) {
		k := keyOf(&r)
		if after != nil && !after.less(k) {
			return
		}
		if i, ok := h.at[r.ID]; ok {
			if q.keep(&r) {
				h.recs[i] = r // same key: the heap stays in order
			} else {
				heap.Remove(h, i)
			}
			return
		}
		if !q.keep(&r) {
			return
		}
		if h.Len() <= q.Limit {
			heap.Push(h, r)
			return
		}
		if k.less(keyOf(&h.recs[0])) {
			heap.Pop(h)
			heap.Push(h, r)
		}
	})
	if err != nil {
		return Page{}, err
	}
	recs := h.recs
	slices.SortFunc(recs, func(a, b domain.Record) int {
		if keyOf(&a).less(keyOf(&b)) {
			return -1
		}
		return 1
	})
	p := Page{Records: recs}
	if len(recs) > q.Limit {
		p.Records = recs[:q.Limit]
		p.Next = encodeCursor(keyOf(&p.Records[q.Limit-1]))
	}
	return p, nil
}

// Count implements Source.
func (s scanSource) Count(ctx context.Context, f Filter) (int, error) {
	kept := map[string]bool{}
	err := s.scan(ctx, f, func(r domain.Record) { kept[r.ID] = f.keep(&r) })
	n := 0
	for _, k := range kept {
		if k {
			n++
		}
	}
	return n, err
}

// recordHeap is a max-heap of records by sortKey, indexed by id.
type recordHeap struct {
	recs []domain.Record
	at   map[string]int
}

func (h *recordHeap) Len() int           { return len(h.recs) }
func (h *recordHeap) Less(i, j int) bool { return keyOf(&h.recs[j]).less(keyOf(&h.recs[i])) }
func (h *recordHeap) Swap(i, j int) {
	h.recs[i], h.recs[j] = h.recs[j], h.recs[i]
	h.at[h.recs[i].ID], h.at[h.recs[j].ID] = i, j
}
func (h *recordHeap) Push(x any) {
	r := x.(domain.Record)
	h.at[r.ID] = len(h.recs)
	h.recs = append(h.recs, r)
}
func (h *recordHeap) Pop() any {
	r := h.recs[len(h.recs)-1]
	h.recs = h.recs[:len(h.recs)-1]
	delete(h.at, r.ID)
	return r
}
