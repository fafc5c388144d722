package storetest

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"sync"
	"sync/atomic"
	"testing"

	"github.com/fieldsync/fieldsync/internal/domain"
)

// Sizes of RunConcurrentFeed: small, so it stays quick on FerretDB.
const (
	feedWriters     = 4
	feedWritesEach  = 25
	feedSharedCount = 3 // records every writer updates, so writers collide
	feedPageLimit   = 7
	feedProject     = "juba"
)

// ackedWrite is one applied write as its writer saw it: the logical times at
// which the call started and returned, and the Seq the store gave it.
type ackedWrite struct {
	id         string
	gen        int
	seq        int64
	start, end int64
}

// feedLog is what the writers acknowledged, shared with the readers.
type feedLog struct {
	clock atomic.Int64 // logical time: orders the start and end of calls

	mu     sync.Mutex
	latest map[string]int // record id → highest acknowledged generation
	writes []ackedWrite
	errs   []error
}

func (l *feedLog) fail(format string, args ...any) {
	l.mu.Lock()
	defer l.mu.Unlock()
	l.errs = append(l.errs, fmt.Errorf(format, args...))
}

func (l *feedLog) ack(w ackedWrite) {
	l.mu.Lock()
	defer l.mu.Unlock()
	l.latest[w.id] = max(l.latest[w.id], w.gen)
	l.writes = append(l.writes, w)
}

// snapshot copies the acknowledged generations.
func (l *feedLog) snapshot() map[string]int {
	l.mu.Lock()
	defer l.mu.Unlock()
	out := make(map[string]int, len(l.latest))
	for k, v := range l.latest {
		out[k] = v
	}
	return out
}

// RunConcurrentFeed checks the changes feed under concurrent writers and readers:
// several goroutines write distinct records and the same records (conditional
// updates that collide and retry) while readers page through the feed over and
// over. It checks that
//   - a write acknowledged before another started got the smaller Seq, and no two
//     applied writes share a Seq;
//   - every page keeps the feed's invariants (Seq above the cursor, increasing,
//     at most Next, each record once);
//   - a reader that started after a write was acknowledged sees it (or a later
//     state of the record) by the time More is false, analysts and enumerators
//     alike, and an enumerator sees nothing it may not;
//   - at the end, a pass from the start holds every record exactly once in its
//     final state.
//
// Every store in stores must see the same data: pass one store, or several
// instances of a backend on one database (as several server processes would
// run); writers and readers are spread over them.
func RunConcurrentFeed(t *testing.T, stores ...domain.Store) {
	// Not a helper: failures point into this function.
	if len(stores) == 0 {
		t.Fatal("RunConcurrentFeed: no store")
	}
	ctx := t.Context()
	log := &feedLog{latest: map[string]int{}}

	// The records every writer updates.
	var shared []domain.RecordWrite
	for i := range feedSharedCount {
		shared = append(shared, create(testRecord(feedProject, recordID(900+i), "device:shared", 1)))
	}
	for _, r := range mustWrite(t, ctx, stores[0], shared...) {
		log.ack(ackedWrite{id: r.ID, gen: 1, seq: r.Seq})
	}

	writersDone := make(chan struct{})
	var writers, readers sync.WaitGroup
	for w := range feedWriters {
		writers.Add(1)
		go func() {
			defer writers.Done()
			feedWriter(ctx, stores[w%len(stores)], log, w)
		}()
	}
	// Readers: full passes from the start, and replicas that pull on from their
	// cursor as a tablet does; each as an analyst and as writer 0's enumerator.
	type reader struct {
		subjects []string
		replica  *feedReplica // nil for a reader of full passes
		passes   int
	}
	rds := []*reader{
		{}, {replica: newFeedReplica()},
		{subjects: []string{"device:w0"}}, {subjects: []string{"device:w0"}, replica: newFeedReplica()},
	}
	for i, rd := range rds {
		readers.Add(1)
		go func() {
			defer readers.Done()
			st := stores[(i+1)%len(stores)]
			for {
				select {
				case <-writersDone:
					return
				default:
				}
				var err error
				if rd.replica != nil {
					err = rd.replica.pull(ctx, st, rd.subjects)
				} else {
					err = feedReaderPass(ctx, st, log, rd.subjects)
				}
				if err != nil {
					log.fail("reader %d: %v", i, err)
					return
				}
				rd.passes++
			}
		}()
	}
	writers.Wait()
	close(writersDone)
	readers.Wait()

	for i, err := range log.errs {
		if i == 20 {
			t.Errorf("… and %d more errors", len(log.errs)-i)
			break
		}
		t.Error(err)
	}
	if t.Failed() {
		t.FailNow()
	}
	var passes []int
	for _, rd := range rds {
		passes = append(passes, rd.passes)
	}
	t.Logf("%d writes, reader passes %v", len(log.writes), passes)

	// Seq order agrees with real time, and seqs are never reused.
	seqs := map[int64]ackedWrite{}
	for _, a := range log.writes {
		if b, dup := seqs[a.seq]; dup {
			t.Errorf("writes %s gen %d and %s gen %d both got Seq %d", a.id, a.gen, b.id, b.gen, a.seq)
		}
		seqs[a.seq] = a
		for _, b := range log.writes {
			if a.end < b.start && a.seq >= b.seq {
				t.Errorf("write %s gen %d (Seq %d) was acknowledged before write %s gen %d started, which got Seq %d",
					a.id, a.gen, a.seq, b.id, b.gen, b.seq)
			}
		}
	}

	// The replicas catch up once more and must then hold every record they may see,
	// each in its final state: a change skipped once is never pulled again.
	final := log.snapshot()
	for i, rd := range rds {
		if rd.replica == nil {
			continue
		}
		if err := rd.replica.pull(ctx, stores[(i+1)%len(stores)], rd.subjects); err != nil {
			t.Fatalf("replica %d: last pull: %v", i, err)
		}
		want := map[string]int{}
		for id, gen := range final {
			if len(rd.subjects) == 0 || isOwnedBy(id, rd.subjects) {
				want[id] = gen
			}
		}
		same(t, fmt.Sprintf("replica %d (subjects %v): record id → generation", i, rd.subjects), rd.replica.gens, want)
	}

	// The final pass, through every store: each record once, in its final state.
	for i, st := range stores {
		all, _ := pull(t, ctx, st, domain.ChangesQuery{ProjectID: feedProject, Limit: feedPageLimit})
		seen := map[string]bool{}
		for _, r := range all {
			if seen[r.ID] {
				t.Errorf("store %d: final pass holds %s twice", i, r.ID)
			}
			seen[r.ID] = true
			sameRecord(t, "final state of "+r.ID, r, getRecord(t, ctx, st, feedProject, r.ID))
			if g := generation(r.Rev); g != final[r.ID] {
				t.Errorf("store %d: final pass has %s at generation %d, last acknowledged %d", i, r.ID, g, final[r.ID])
			}
		}
		if len(seen) != len(final) {
			t.Errorf("store %d: final pass holds %d records, %d were written", i, len(seen), len(final))
		}
	}
}

// feedWriter makes feedWritesEach writes: new records of its own, updates of its
// own records, and updates of the shared records (retried on ErrStale).
func feedWriter(ctx context.Context, st domain.Store, log *feedLog, w int) {
	subject := fmt.Sprintf("device:w%d", w)
	var own []domain.Record
	for k := range feedWritesEach {
		var write domain.RecordWrite
		switch {
		case k%3 == 2:
			id := recordID(900 + (w+k)%feedSharedCount)
			for attempt := 0; ; attempt++ {
				cur, err := st.GetRecord(ctx, feedProject, id)
				if err != nil {
					log.fail("writer %d: GetRecord %s: %v", w, id, err)
					return
				}
				n := next(cur)
				n.Rev = revFor(id, generation(cur.Rev)+1, subject) // writers never make the same rev
				ok, err := feedWrite(ctx, st, log, update(n, cur.Rev))
				if err != nil {
					log.fail("writer %d: update %s: %v", w, id, err)
					return
				}
				if ok {
					break
				}
				if attempt == 1000 {
					log.fail("writer %d: update %s still stale after %d attempts", w, id, attempt)
					return
				}
			}
			continue
		case k%3 == 1 && len(own) > 0:
			i := k % len(own)
			n := next(own[i])
			write = update(n, own[i].Rev)
			own[i] = n
		default:
			r := testRecord(feedProject, recordID(100*(w+1)+k), subject, 1)
			write = create(r)
			own = append(own, r)
		}
		ok, err := feedWrite(ctx, st, log, write)
		if err != nil || !ok {
			log.fail("writer %d: write %d of %s: applied %v, %v", w, k, write.Record.ID, ok, err)
			return
		}
	}
}

// feedWrite applies one write and logs it when applied. It reports false when the
// record's rev moved on (ErrStale), and an error for any other outcome.
func feedWrite(ctx context.Context, st domain.Store, log *feedLog, w domain.RecordWrite) (bool, error) {
	writes := []domain.RecordWrite{w}
	start := log.clock.Add(1)
	results, err := st.WriteRecords(ctx, writes)
	end := log.clock.Add(1)
	switch {
	case err != nil:
		return false, err
	case len(results) != 1:
		return false, fmt.Errorf("%d results for one write", len(results))
	case errors.Is(results[0], domain.ErrStale):
		return false, nil
	case results[0] != nil:
		return false, results[0]
	case writes[0].Record.Seq <= 0:
		return false, fmt.Errorf("applied write left with Seq %d", writes[0].Record.Seq)
	}
	log.ack(ackedWrite{id: w.Record.ID, gen: generation(w.Record.Rev), seq: writes[0].Record.Seq, start: start, end: end})
	return true, nil
}

// feedReaderPass pages through the feed from the start until More is false and
// checks it against what was acknowledged before the pass began.
func feedReaderPass(ctx context.Context, st domain.Store, log *feedLog, subjects []string) error {
	acked := log.snapshot()
	q := domain.ChangesQuery{ProjectID: feedProject, Subjects: subjects, Limit: feedPageLimit}
	seen := map[string]int{} // id → generation of its last appearance
	visible := func(r domain.Record) bool {
		return len(subjects) == 0 || slices.Contains(subjects, r.CreatedBy) || r.Shared ||
			slices.ContainsFunc(r.AssignedTo, func(s string) bool { return slices.Contains(subjects, s) })
	}
	for range maxPages {
		page, err := st.Changes(ctx, q)
		if err != nil {
			return fmt.Errorf("Changes(since %d): %w", q.Since, err)
		}
		if err := pageErr(q, page); err != nil {
			return err
		}
		for _, r := range page.Records {
			if !visible(r) {
				return fmt.Errorf("subjects %v see record %s created by %s", subjects, r.ID, r.CreatedBy)
			}
			seen[r.ID] = generation(r.Rev)
		}
		if !page.More {
			for id, gen := range acked {
				if len(subjects) > 0 && !isOwnedBy(id, subjects) {
					continue
				}
				if seen[id] < gen {
					return fmt.Errorf("subjects %v: record %s acknowledged at generation %d before the pass began, "+
						"the pass ended (Next %d) having seen generation %d", subjects, id, gen, page.Next, seen[id])
				}
			}
			return nil
		}
		q.Since = page.Next
	}
	return fmt.Errorf("still More after %d pages", maxPages)
}

// feedReplica is a reader's copy of the feed, kept as a tablet keeps it: it pulls
// on from its cursor and applies what comes.
type feedReplica struct {
	cursor int64
	gens   map[string]int // record id → generation held
}

func newFeedReplica() *feedReplica { return &feedReplica{gens: map[string]int{}} }

// pull pages from the replica's cursor until More is false.
func (rp *feedReplica) pull(ctx context.Context, st domain.Store, subjects []string) error {
	q := domain.ChangesQuery{ProjectID: feedProject, Subjects: subjects, Limit: feedPageLimit, Since: rp.cursor}
	for range maxPages {
		page, err := st.Changes(ctx, q)
		if err != nil {
			return fmt.Errorf("Changes(since %d): %w", q.Since, err)
		}
		if err := pageErr(q, page); err != nil {
			return err
		}
		for _, r := range page.Records {
			if g := generation(r.Rev); g < rp.gens[r.ID] {
				return fmt.Errorf("record %s went back from generation %d to %d", r.ID, rp.gens[r.ID], g)
			}
			rp.gens[r.ID] = generation(r.Rev)
		}
		q.Since, rp.cursor = page.Next, page.Next
		if !page.More {
			return nil
		}
	}
	return fmt.Errorf("still More after %d pages", maxPages)
}

// isOwnedBy reports whether a record id of RunConcurrentFeed belongs to the
// writer whose subject is among subjects (writer w makes ids 100*(w+1)+k).
func isOwnedBy(id string, subjects []string) bool {
	for w := range feedWriters {
		if !slices.Contains(subjects, fmt.Sprintf("device:w%d", w)) {
			continue
		}
		for k := range feedWritesEach {
			if id == recordID(100*(w+1)+k) {
				return true
			}
		}
	}
	return false
}

// pageErr is checkPage for goroutines: it returns what checkPage would fail on.
func pageErr(q domain.ChangesQuery, page domain.ChangesPage) error {
	if q.Limit > 0 && len(page.Records) > q.Limit {
		return fmt.Errorf("Changes(since %d, limit %d): %d records", q.Since, q.Limit, len(page.Records))
	}
	if page.Next < q.Since {
		return fmt.Errorf("Changes(since %d): Next %d moved backwards", q.Since, page.Next)
	}
	last := q.Since
	seen := map[string]bool{}
	for _, r := range page.Records {
		switch {
		case r.ProjectID != q.ProjectID:
			return fmt.Errorf("a page of project %s held a record of project %q", q.ProjectID, r.ProjectID)
		case r.Seq <= last:
			return fmt.Errorf("Changes(since %d): record %s at Seq %d, not above %d", q.Since, r.ID, r.Seq, last)
		case r.Seq > page.Next:
			return fmt.Errorf("Changes(since %d): record %s at Seq %d beyond Next %d", q.Since, r.ID, r.Seq, page.Next)
		case seen[r.ID]:
			return fmt.Errorf("Changes(since %d): record %s twice in one page", q.Since, r.ID)
		}
		seen[r.ID] = true
		last = r.Seq
	}
	return nil
}
