package odata

import (
	"container/heap"
	"context"
	"encoding/base64"
	"errors"
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
// StoreSource is the implementation over the changes feed; QuerySource the
// one over a store query ordered by (CreatedAt, ID), which replaces it
// without touching the rest of the package (and keeps its cursors).
type Source interface {
	Page(ctx context.Context, q Query) (Page, error)
	Count(ctx context.Context, f Filter) (int, error)
}

// ChangesReader is the part of the store StoreSource reads.
type ChangesReader interface {
	Changes(ctx context.Context, q domain.ChangesQuery) (domain.ChangesPage, error)
}

// StoreSource is a Source over the project's changes feed restricted to the
// form: it orders records by (CreatedAt, ID), which an edit never changes,
// and applies the filter in Go.
//
// Each Page and Count reads the form's whole feed (keeping only the Limit
// first records after the cursor in memory), so a full refresh costs
// records²/Limit reads: fine for thousands of records, slow for hundreds of
// thousands. It is the stand-in until the store offers a query filtered and
// ordered by the database; then the HTTP layer passes QuerySource with a
// QueryFunc over that query instead.
type StoreSource struct {
	Store ChangesReader
}

// scanLimit is the page size of the changes feed while scanning.
const scanLimit = 1000

// scan calls fn with every record of the form's feed, each in its latest
// state; a record written during the scan may come twice (fn keeps the last).
func (s StoreSource) scan(ctx context.Context, f Filter, fn func(r domain.Record)) error {
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

// Page implements Source.
func (s StoreSource) Page(ctx context.Context, q Query) (Page, error) {
	if q.Limit < 1 {
		return Page{}, errors.New("odata: StoreSource.Page: limit < 1")
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
func (s StoreSource) Count(ctx context.Context, f Filter) (int, error) {
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
