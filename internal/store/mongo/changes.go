package mongo

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"sync/atomic"
	"time"

	"go.mongodb.org/mongo-driver/v2/bson"
	"go.mongodb.org/mongo-driver/v2/mongo/options"

	"github.com/fieldsync/fieldsync/internal/domain"
)

// counterDoc is a project's feed bookkeeping, keyed by the project id: the
// position allocator, the settled watermark and the compaction cursor (see the
// package comment).
type counterDoc struct {
	ProjectID string `bson:"_id"`
	// N is the last position handed out.
	N int64 `bson:"n"`
	// Settled is the watermark W: every position at or below it is known to be
	// filled (a change, a void, or a change compaction removed). Only raised.
	Settled int64 `bson:"settled"`
	// Compacted is how far compaction has examined the feed (≤ Settled).
	Compacted int64 `bson:"compacted"`
}

// changeDoc is one position of a project's changes feed, keyed by
// "<project>/<seq, 20 digits>". A void position holds no change (see the package
// comment). A change carries what visibility needs, as of the write it
// announces: the record's form and its subjects (created_by, every assignee,
// sharedSubject when shared), so a reader's page is an index range.
type changeDoc struct {
	ID        string    `bson:"_id"`
	ProjectID string    `bson:"project_id"`
	Seq       int64     `bson:"seq"`
	RecordID  string    `bson:"record_id,omitempty"`
	FormID    string    `bson:"form_id,omitempty"`
	Subjects  []string  `bson:"subjects,omitempty"`
	Prev      int64     `bson:"prev,omitempty"` // the record's seq before this write: the entry this one supersedes
	Void      bool      `bson:"void,omitempty"`
	At        time.Time `bson:"at"`
}

// sharedSubject stands for "every subject" in a change's subjects: usernames
// and device subjects cannot be "*".
const sharedSubject = "*"

// subjectsOf lists who may see a record in the given state (see visible).
func subjectsOf(d recordDoc) []string {
	var out []string
	if d.CreatedBy != "" {
		out = append(out, d.CreatedBy)
	}
	out = append(out, d.AssignedTo...)
	if d.Shared {
		out = append(out, sharedSubject)
	}
	return slices.Compact(slices.Sorted(slices.Values(out)))
}

// entry is a change to append: the record and, for readers' filters, the form
// and subjects of the state it announces; prev is the record's seq before.
type entry struct {
	recordID string
	formID   string
	subjects []string
	prev     int64
}

// entryOf is the change that announces a record document's state.
func entryOf(d recordDoc) entry {
	return entry{recordID: d.RecordID, formID: d.FormID, subjects: subjectsOf(d), prev: d.Seq}
}

func changeKey(projectID string, seq int64) string {
	return fmt.Sprintf("%s/%020d", projectID, seq)
}

// Changes tuning.
const (
	defaultChangesLimit = 1000
	// A reader looks again for a missing position after gapPoll, then twice as
	// long each time up to gapPollMax: gaps of in-flight writes close within
	// milliseconds, while a dead writer's gap lasts VoidGrace and should not
	// cost a query every few milliseconds meanwhile.
	gapPoll    = 2 * time.Millisecond
	gapPollMax = 100 * time.Millisecond
	// gapPatience is how long a reader that already has positions to serve
	// waits for a missing one before serving those (with More set), rather than
	// the whole VoidGrace.
	gapPatience = 50 * time.Millisecond
	// appendAttempts bounds the retries of appendChanges, whose positions can be
	// taken by readers' voids: each retry takes fresh positions.
	appendAttempts = 50
	// verifyBatch is how many positions a gap check reads at once, and
	// verifyMax how many one call checks at most (more only when the watermark
	// lags far behind, once).
	verifyBatch = 1000
	verifyMax   = 20 * verifyBatch
	// pageBatch caps the changes one query of a page reads.
	pageBatch = 1000
)

// allocate takes n consecutive positions of the project's feed and returns the
// last one. The counter document is created on first use.
func (s *Store) allocate(ctx context.Context, projectID string, n int) (int64, error) {
	var c counterDoc
	err := retryUpsert(func() error {
		return s.counts.FindOneAndUpdate(ctx, bson.D{{Key: "_id", Value: projectID}},
			bson.D{{Key: "$inc", Value: bson.D{{Key: "n", Value: int64(n)}}}},
			options.FindOneAndUpdate().SetUpsert(true).SetReturnDocument(options.After)).Decode(&c)
	})
	if err != nil {
		return 0, translate(err)
	}
	return c.N, nil
}

// appendChanges is step (c) of a write: it gives each entry one new position of
// the project's feed and inserts the change documents there. A position whose
// insert hits the unique (project, seq) index was taken (a reader voided it after
// waiting for it too long): those entries get fresh positions from the counter,
// larger than every position allocated so far. It returns the positions, in the
// order of entries.
func (s *Store) appendChanges(ctx context.Context, projectID string, entries []entry) ([]int64, error) {
	seqs := make([]int64, len(entries))
	todo := make([]int, len(entries))
	for i := range todo {
		todo[i] = i
	}
	for attempt := 0; len(todo) > 0; attempt++ {
		if attempt == appendAttempts {
			return nil, fmt.Errorf("mongo: %w: no free feed position after %d attempts", domain.ErrUnavailable, attempt)
		}
		last, err := s.allocate(ctx, projectID, len(todo))
		if err != nil {
			return nil, err
		}
		first := last - int64(len(todo)) + 1
		now := ms(time.Now())
		docs := make([]any, len(todo))
		for k, i := range todo {
			seq, e := first+int64(k), entries[i]
			docs[k] = changeDoc{ID: changeKey(projectID, seq), ProjectID: projectID, Seq: seq, RecordID: e.recordID,
				FormID: e.formID, Subjects: e.subjects, Prev: e.prev, At: now}
			seqs[i] = seq
		}
		_, err = s.changes.InsertMany(ctx, docs, options.InsertMany().SetOrdered(false))
		if err == nil {
			return seqs, nil
		}
		failed, onlyDups := dupIndexes(err)
		if !onlyDups {
			return nil, translate(err)
		}
		var again []int
		for _, k := range failed {
			again = append(again, todo[k])
		}
		todo = again
	}
	return seqs, nil
}

// counter reads a project's counter document (zero for a project without one).
func (s *Store) counter(ctx context.Context, projectID string) (counterDoc, error) {
	c, err := findOne[counterDoc](ctx, s.counts, bson.D{{Key: "_id", Value: projectID}})
	if errors.Is(err, domain.ErrNotFound) {
		return counterDoc{ProjectID: projectID}, nil
	}
	return c, err
}

// raiseSettled raises the project's watermark to n (never lowers it).
func (s *Store) raiseSettled(ctx context.Context, projectID string, n int64) error {
	_, err := s.counts.UpdateOne(ctx, bson.D{{Key: "_id", Value: projectID}},
		bson.D{{Key: "$max", Value: bson.D{{Key: "settled", Value: n}}}})
	return translate(err)
}

// positionsAfter reads the taken positions in (from, to] (to 0: no bound), up
// to n, in order; only their seq.
func (s *Store) positionsAfter(ctx context.Context, projectID string, from, to int64, n int) ([]int64, error) {
	rng := bson.D{{Key: "$gt", Value: from}}
	if to > 0 {
		rng = append(rng, bson.E{Key: "$lte", Value: to})
	}
	docs, err := findAll[changeDoc](ctx, s.changes,
		bson.D{{Key: "project_id", Value: projectID}, {Key: "seq", Value: rng}},
		options.Find().SetSort(bson.D{{Key: "seq", Value: 1}}).SetLimit(int64(n)).
			SetProjection(bson.D{{Key: "_id", Value: 0}, {Key: "seq", Value: 1}}))
	if err != nil {
		return nil, err
	}
	s.verified.Add(int64(len(docs)))
	out := make([]int64, len(docs))
	for i, d := range docs {
		out[i] = d.Seq
	}
	return out, nil
}

// settledTop returns top ≥ since such that every position in (since, top] is
// filled, the end of the contiguous run of taken positions after since, and
// raises the watermark to it when the run starts at or below the watermark. Positions at or below the watermark are filled
// (some were emptied by compaction): only the tail above it is read. At a
// missing position g the reader re-reads the watermark (g may have been
// compacted), then waits for g: for as long as patience when it already has a
// run to serve, else until g is filled, voiding it after VoidGrace. wait false
// never waits: the run ends at the first missing position.
func (s *Store) settledTop(ctx context.Context, projectID string, since int64, wait bool) (int64, error) {
	c, err := s.counter(ctx, projectID)
	if err != nil {
		return 0, err
	}
	w := c.Settled
	top := max(since, w)
	if top >= c.N {
		return top, nil // nothing was allocated above: no tail to check
	}
	checked := 0
	for checked < verifyMax {
		seqs, err := s.positionsAfter(ctx, projectID, top, 0, verifyBatch)
		if err != nil {
			return 0, err
		}
		checked += len(seqs)
		full := len(seqs) == verifyBatch
		for len(seqs) > 0 && seqs[0] == top+1 {
			top, seqs = seqs[0], seqs[1:]
		}
		if len(seqs) == 0 {
			if full {
				continue // a whole batch, contiguous: read on
			}
			break // the end of the feed
		}
		// A hole at top+1 with a larger position taken.
		if c, err = s.counter(ctx, projectID); err != nil {
			return 0, err
		}
		if c.Settled > top {
			top = c.Settled // the hole was compacted away
			continue
		}
		if !wait {
			break
		}
		patience := time.Duration(0)
		if top > since {
			patience = gapPatience
		}
		filled, err := s.awaitPosition(ctx, projectID, top+1, patience)
		if err != nil {
			return 0, err
		}
		if !filled {
			break
		}
	}
	// The run is known from the watermark up only when the check started
	// there: a cursor above the watermark is the caller's word, not a check.
	if since <= w && top > w {
		if err := s.raiseSettled(ctx, projectID, top); err != nil {
			return 0, err
		}
	}
	return top, nil
}

// Changes returns one page of the feed: the records the caller may see at the
// positions of the settled run after q.Since (see the package comment for why a
// reader stops at a missing position, and when it voids one).
//
// The visible changes in (Since, top] are read with one filtered, sorted query
// (by subjects or form when the query has them), in batches only as long as
// records are skipped. A record is placed at the last position of the page that
// names it, with that position as its Seq; it is skipped at a position below
// the one its document records as its latest (that later position holds a
// change too, so the record comes at it, on this page or a later one, and More
// says so). The page holds at most Limit records; when it is full, Next is the
// last position examined; otherwise Next is top, past records the caller may
// not see. More reports whether positions beyond Next are taken.
func (s *Store) Changes(ctx context.Context, q domain.ChangesQuery) (domain.ChangesPage, error) {
	limit := q.Limit
	if limit <= 0 {
		limit = defaultChangesLimit
	}
	top, err := s.settledTop(ctx, q.ProjectID, q.Since, true)
	if err != nil {
		return domain.ChangesPage{}, err
	}
	if s.afterPositions != nil {
		s.afterPositions()
	}

	type placed struct {
		rec  domain.Record
		live bool
	}
	var (
		order []*placed
		byID  = map[string]*placed{}
		count int // live entries of order
		next  = q.Since
		full  bool
		// ahead is the largest position a skipped record's seq named. The
		// record is read after the positions, so that position may lie beyond
		// top: the page must then say More, or a reader would stop before the
		// position that lists the record. It cannot keep a reader going for
		// ever: the position is taken, so later calls' top reaches it.
		ahead int64
	)
walk:
	for next < top {
		n := min(limit-count+1, pageBatch)
		docs, err := s.visibleChanges(ctx, q, next, top, n)
		if err != nil {
			return domain.ChangesPage{}, err
		}
		if len(docs) == 0 {
			next = top
			break
		}
		ids := make([]string, len(docs))
		for i, d := range docs {
			ids[i] = d.RecordID
		}
		recs, err := s.recordDocs(ctx, q.ProjectID, ids)
		if err != nil {
			return domain.ChangesPage{}, err
		}
		byRecord := make(map[string]recordDoc, len(recs))
		for _, r := range recs {
			byRecord[r.RecordID] = r
		}
		for _, d := range docs {
			rd, ok := byRecord[d.RecordID]
			if ok && rd.Seq > d.Seq {
				ahead = max(ahead, rd.Seq)
			}
			if ok && rd.Seq <= d.Seq {
				r, err := rd.record()
				if err != nil {
					return domain.ChangesPage{}, err
				}
				if visible(r, q) {
					p := byID[r.ID]
					if p == nil && count == limit {
						full = true // d.Seq is taken and lies beyond next
						break walk
					}
					if p != nil {
						p.live = false
						count--
					}
					r.Seq = d.Seq
					p = &placed{rec: r, live: true}
					byID[r.ID] = p
					order = append(order, p)
					count++
				}
			}
			next = d.Seq
		}
		if len(docs) < n {
			next = top // every visible change up to top was read
		}
	}
	more := full || ahead > next
	if !more {
		// Read after the page: a change compaction removed from (Since, top]
		// was superseded by one at a position taken before the removal, so
		// before this read, which then sees it (or a later one).
		beyond, err := s.positionsAfter(ctx, q.ProjectID, next, 0, 1)
		if err != nil {
			return domain.ChangesPage{}, err
		}
		more = len(beyond) > 0
	}
	page := domain.ChangesPage{Next: next, More: more}
	for _, p := range order {
		if p.live {
			page.Records = append(page.Records, p.rec)
		}
	}
	return page, nil
}

// visibleChanges reads up to n changes in (after, top] that the query's caller
// may see, as of the writes they announce, in order.
func (s *Store) visibleChanges(ctx context.Context, q domain.ChangesQuery, after, top int64, n int) ([]changeDoc, error) {
	filter := bson.D{{Key: "project_id", Value: q.ProjectID},
		{Key: "seq", Value: bson.D{{Key: "$gt", Value: after}, {Key: "$lte", Value: top}}}}
	if q.FormID != "" {
		filter = append(filter, bson.E{Key: "form_id", Value: q.FormID})
	}
	if len(q.Subjects) > 0 {
		subjects := append(slices.Clone(q.Subjects), sharedSubject)
		filter = append(filter, bson.E{Key: "subjects", Value: bson.D{{Key: "$in", Value: subjects}}})
	} else if q.FormID == "" {
		filter = append(filter, bson.E{Key: "void", Value: bson.D{{Key: "$ne", Value: true}}})
	}
	docs, err := findAll[changeDoc](ctx, s.changes, filter, options.Find().
		SetSort(bson.D{{Key: "seq", Value: 1}}).SetLimit(int64(n)).
		SetProjection(bson.D{{Key: "seq", Value: 1}, {Key: "record_id", Value: 1}}))
	if err != nil {
		return nil, err
	}
	s.examined.Add(int64(len(docs)))
	return docs, nil
}

// visible applies the query's form filter and an enumerator's visibility: records
// it created, records assigned to it, records of shared forms.
func visible(r domain.Record, q domain.ChangesQuery) bool {
	if q.FormID != "" && r.FormID != q.FormID {
		return false
	}
	if len(q.Subjects) == 0 || r.Shared || slices.Contains(q.Subjects, r.CreatedBy) {
		return true
	}
	for _, a := range r.AssignedTo {
		if slices.Contains(q.Subjects, a) {
			return true
		}
	}
	return false
}

// awaitPosition waits for the change at an allocated position to become visible.
// It reports true when the position is filled: by its writer, or, once the
// position has been missing for VoidGrace on this reader's clock, by a void this
// reader (or another) inserted; or when the watermark passed it (compaction
// emptied it). With patience > 0 it gives up after patience and reports false,
// leaving the position for a later call.
func (s *Store) awaitPosition(ctx context.Context, projectID string, seq int64, patience time.Duration) (bool, error) {
	id := changeKey(projectID, seq)
	start := time.Now()
	voided := false
	poll := gapPoll
	for {
		ok, err := exists(ctx, s.changes, bson.D{{Key: "_id", Value: id}, {Key: "project_id", Value: projectID}})
		if err != nil {
			return false, err
		}
		if ok {
			return true, nil
		}
		waited := time.Since(start)
		if patience > 0 && waited >= patience {
			return false, nil
		}
		if waited >= s.cfg.VoidGrace && !voided {
			// Never void below the watermark: such a position was filled, and
			// is empty because compaction removed its change.
			c, err := s.counter(ctx, projectID)
			if err != nil {
				return false, err
			}
			if c.Settled >= seq {
				return true, nil
			}
			_, err = s.changes.InsertOne(ctx, changeDoc{ID: id, ProjectID: projectID, Seq: seq, Void: true, At: ms(time.Now())})
			switch {
			case err == nil:
				s.log.Warn("mongo: voided a feed position whose change was not written in time",
					"project", projectID, "seq", seq, "waited", waited.Round(time.Millisecond))
				return true, nil
			case isDup(err):
				// The writer's change (or another reader's void) is there but
				// not yet visible to majority reads: keep looking.
				voided = true
			default:
				return false, translate(err)
			}
		}
		select {
		case <-ctx.Done():
			return false, translate(ctx.Err())
		case <-time.After(poll):
		}
		poll = min(2*poll, gapPollMax)
	}
}

// compactBatch bounds the changes one compaction step examines, and
// compactSteps the steps per project and sweep.
const (
	compactBatch = 1000
	compactSteps = 10
)

// compact removes superseded changes at or below the project's watermark: a
// change at p whose record has a change at a later position q ≤ W that names p
// as its prev. It examines the feed from the compaction cursor up to W, in
// bounded steps, and moves the cursor. Voids are never removed: a slow writer
// whose position was voided must still fail its insert there.
func (s *Store) compact(ctx context.Context, c counterDoc) error {
	from := c.Compacted
	for range compactSteps {
		if from >= c.Settled {
			return nil
		}
		docs, err := findAll[changeDoc](ctx, s.changes, bson.D{{Key: "project_id", Value: c.ProjectID},
			{Key: "seq", Value: bson.D{{Key: "$gt", Value: from}, {Key: "$lte", Value: c.Settled}}}},
			options.Find().SetSort(bson.D{{Key: "seq", Value: 1}}).SetLimit(compactBatch).
				SetProjection(bson.D{{Key: "seq", Value: 1}, {Key: "prev", Value: 1}}))
		if err != nil {
			return err
		}
		to := c.Settled
		if len(docs) == compactBatch {
			to = docs[len(docs)-1].Seq
		}
		var prevs []int64
		for _, d := range docs {
			if d.Prev > 0 && d.Prev < d.Seq {
				prevs = append(prevs, d.Prev)
			}
		}
		if len(prevs) > 0 {
			res, err := s.changes.DeleteMany(ctx, bson.D{{Key: "project_id", Value: c.ProjectID},
				{Key: "seq", Value: bson.D{{Key: "$in", Value: prevs}}}, {Key: "void", Value: bson.D{{Key: "$ne", Value: true}}}})
			if err != nil {
				return translate(err)
			}
			s.compacted.Add(res.DeletedCount)
		}
		if _, err := s.counts.UpdateOne(ctx, bson.D{{Key: "_id", Value: c.ProjectID}},
			bson.D{{Key: "$max", Value: bson.D{{Key: "compacted", Value: to}}}}); err != nil {
			return translate(err)
		}
		from = to
	}
	return nil
}

// sweeper runs sweep every SweepInterval, and when kicked, until ctx ends.
func (s *Store) sweeper(ctx context.Context) {
	defer close(s.done)
	t := time.NewTicker(s.cfg.SweepInterval)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		case <-s.kick:
		}
		if err := s.sweep(ctx); err != nil && ctx.Err() == nil {
			s.log.Warn("mongo: sweep failed", "err", err)
		}
	}
}

// sweepBatch bounds the records one sweep pass completes per project.
const sweepBatch = 1000

// sweep visits every project with a feed: it completes writes pending for
// longer than PendingGrace, raises the watermark over the filled positions
// (without waiting at a gap) and compacts up to it.
func (s *Store) sweep(ctx context.Context) error {
	counters, err := findAll[counterDoc](ctx, s.counts, bson.D{})
	if err != nil {
		return err
	}
	var errs []error
	for _, c := range counters {
		if err := s.sweepPending(ctx, c.ProjectID); err != nil {
			errs = append(errs, err)
			continue
		}
		top, err := s.settledTop(ctx, c.ProjectID, 0, false)
		if err != nil {
			errs = append(errs, err)
			continue
		}
		c.Settled = max(c.Settled, top)
		if err := s.compact(ctx, c); err != nil {
			errs = append(errs, err)
		}
	}
	return errors.Join(errs...)
}

// sweepPending completes the project's writes that were applied but whose
// writer stopped before completing them (a crash between steps (b) and (c), or a
// failure after) and that no reader met since: for every record pending for
// longer than PendingGrace it settles the write (see settle). Those writes were
// never acknowledged; the repair puts the state that is visible in the record
// into the feed.
func (s *Store) sweepPending(ctx context.Context, projectID string) error {
	cutoff := time.Now().Add(-s.cfg.PendingGrace)
	docs, err := findAll[recordDoc](ctx, s.records,
		bson.D{{Key: "project_id", Value: projectID}, {Key: "pending_at", Value: bson.D{{Key: "$lt", Value: cutoff}}}},
		options.Find().SetLimit(sweepBatch))
	if err != nil {
		return err
	}
	if len(docs) == 0 {
		return nil
	}
	if _, err := s.settle(ctx, docs); err != nil {
		return err
	}
	for _, d := range docs {
		s.log.Warn("mongo: completed an interrupted record write", "project", d.ProjectID, "record", d.RecordID)
	}
	return nil
}

// feedCounts count, for tests, the change documents Changes read (examined: by
// page queries; verified: by gap checks) and the changes compaction removed.
type feedCounts struct {
	examined, verified, compacted atomic.Int64
}

// StartFeedAfter makes the project's feed hand out positions above n only,
// for fieldsync migrate: a tablet keeps the pull cursor it had on the old
// store, a position at most n there, and every position of this store is
// then above it, so the tablet pulls the moved records again (it already
// holds them: nothing changes) instead of skipping those whose new position
// is below its cursor. Positions up to n are settled at once: no change will
// ever fill them. Only for a project whose feed is empty here (ErrStale
// otherwise).
func (s *Store) StartFeedAfter(ctx context.Context, projectID string, n int64) error {
	c, err := s.counter(ctx, projectID)
	if err != nil {
		return err
	}
	if c.N != 0 {
		return fmt.Errorf("mongo: the feed of project %s already has positions: %w", projectID, domain.ErrStale)
	}
	err = retryUpsert(func() error {
		_, err := s.counts.UpdateOne(ctx, bson.D{{Key: "_id", Value: projectID}},
			bson.D{{Key: "$max", Value: bson.D{{Key: "n", Value: n}, {Key: "settled", Value: n}, {Key: "compacted", Value: n}}}},
			options.UpdateOne().SetUpsert(true))
		return err
	})
	return translate(err)
}
