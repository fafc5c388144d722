package mongo

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"time"

	"go.mongodb.org/mongo-driver/v2/bson"
	"go.mongodb.org/mongo-driver/v2/mongo/options"

	"github.com/fieldsync/fieldsync/internal/domain"
)

// counterDoc allocates a project's feed positions, keyed by the project id.
type counterDoc struct {
	ProjectID string `bson:"_id"`
	N         int64  `bson:"n"`
}

// changeDoc is one position of a project's changes feed, keyed by
// "<project>/<seq, 20 digits>". A void position holds no change (see the package
// comment).
type changeDoc struct {
	ID        string    `bson:"_id"`
	ProjectID string    `bson:"project_id"`
	Seq       int64     `bson:"seq"`
	RecordID  string    `bson:"record_id,omitempty"`
	Void      bool      `bson:"void,omitempty"`
	At        time.Time `bson:"at"`
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
	// gapPatience is how long a reader that already holds part of a page waits
	// for a missing position before answering the part (with More set), rather
	// than the whole VoidGrace.
	gapPatience = 50 * time.Millisecond
	// appendAttempts bounds the retries of appendChanges, whose positions can be
	// taken by readers' voids (or, on servers whose $inc is not atomic, by other
	// writers): each retry takes fresh positions.
	appendAttempts = 50
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

// appendChanges is step (c) of a write: it gives each record one new position of
// the project's feed and inserts the change documents there. A position whose
// insert hits the unique (project, seq) index was taken (a reader voided it after
// waiting for it too long): those records get fresh positions from the counter,
// larger than every position allocated so far. It returns the positions, in the
// order of recordIDs.
func (s *Store) appendChanges(ctx context.Context, projectID string, recordIDs []string) ([]int64, error) {
	seqs := make([]int64, len(recordIDs))
	todo := make([]int, len(recordIDs))
	for i := range todo {
		todo[i] = i
	}
	// Every write acknowledged before this call has its change at or below
	// floor, so positions above it keep the feed in real-time order.
	floor, err := s.topSeq(ctx, projectID)
	if err != nil {
		return nil, err
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
		if first <= floor {
			// Only where $inc is not atomic (FerretDB v1 can lose increments
			// and hand out old positions): void what we got instead of leaving
			// readers to wait for it, lift the counter, and allocate again.
			if err := s.voidPositions(ctx, projectID, first, min(last, floor)); err != nil {
				return nil, err
			}
			if _, err := s.counts.UpdateOne(ctx, bson.D{{Key: "_id", Value: projectID}},
				bson.D{{Key: "$max", Value: bson.D{{Key: "n", Value: floor}}}}); err != nil {
				return nil, translate(err)
			}
			continue
		}
		docs := make([]any, len(todo))
		for k, i := range todo {
			seq := first + int64(k)
			docs[k] = changeDoc{ID: changeKey(projectID, seq), ProjectID: projectID, Seq: seq, RecordID: recordIDs[i], At: now}
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
		var top int64
		for _, k := range failed {
			again = append(again, todo[k])
			top = max(top, first+int64(k))
		}
		todo = again
		// On MongoDB the counter is already past top. A server whose $inc is
		// not atomic (FerretDB v1) can lose increments and hand out taken
		// positions again; pushing the counter past top spares the retries.
		if _, err := s.counts.UpdateOne(ctx, bson.D{{Key: "_id", Value: projectID}},
			bson.D{{Key: "$max", Value: bson.D{{Key: "n", Value: top}}}}); err != nil {
			return nil, translate(err)
		}
	}
	return seqs, nil
}

// topSeq returns the largest position of the project's feed that holds a
// change document (0 for an empty feed).
func (s *Store) topSeq(ctx context.Context, projectID string) (int64, error) {
	docs, err := findAll[changeDoc](ctx, s.changes, bson.D{{Key: "project_id", Value: projectID}},
		options.Find().SetSort(bson.D{{Key: "seq", Value: -1}}).SetLimit(1).
			SetProjection(bson.D{{Key: "seq", Value: 1}}))
	if err != nil || len(docs) == 0 {
		return 0, err
	}
	return docs[0].Seq, nil
}

// voidPositions fills the positions [from, to] that nobody else filled with
// voids, so no reader waits for them.
func (s *Store) voidPositions(ctx context.Context, projectID string, from, to int64) error {
	var docs []any
	now := ms(time.Now())
	for seq := from; seq <= to; seq++ {
		docs = append(docs, changeDoc{ID: changeKey(projectID, seq), ProjectID: projectID, Seq: seq, Void: true, At: now})
	}
	if len(docs) == 0 {
		return nil
	}
	_, err := s.changes.InsertMany(ctx, docs, options.InsertMany().SetOrdered(false))
	if _, onlyDups := dupIndexes(err); err != nil && !onlyDups {
		return translate(err)
	}
	return nil
}

// changesAfter reads up to n feed positions after since, in order.
func (s *Store) changesAfter(ctx context.Context, projectID string, since int64, n int) ([]changeDoc, error) {
	return findAll[changeDoc](ctx, s.changes,
		bson.D{{Key: "project_id", Value: projectID}, {Key: "seq", Value: bson.D{{Key: "$gt", Value: since}}}},
		options.Find().SetSort(bson.D{{Key: "seq", Value: 1}}).SetLimit(int64(n)))
}

// Changes returns one page of the feed: the records at the contiguous run of
// positions after q.Since (see the package comment for why a reader stops at a
// missing position, and when it voids one).
//
// A record is placed at the last position of the run that names it, with that
// position as its Seq; it is skipped at a position below the one its document
// records as its latest (that later position holds a change too, so the record
// comes at it, on this page or a later one, and More says so). The page holds at
// most Limit records the caller may see; Next is the last position examined,
// past records the caller may not see; More reports whether positions beyond
// Next are taken.
func (s *Store) Changes(ctx context.Context, q domain.ChangesQuery) (domain.ChangesPage, error) {
	limit := q.Limit
	if limit <= 0 {
		limit = defaultChangesLimit
	}
	batch := min(limit, 500) + 1
	maxScan := max(4*limit, 2000)

	type placed struct {
		rec  domain.Record
		live bool
	}
	var (
		order   []*placed
		byID    = map[string]*placed{}
		count   int // live entries of order
		next    = q.Since
		scanned int
		more    bool
		// ahead is the largest position a skipped record's seq named. The
		// record is read after the positions, so that position may lie beyond
		// what this call saw of the feed: the page must then say More, or a
		// reader would stop before the position that lists the record.
		ahead int64
	)
walk:
	for {
		docs, err := s.changesAfter(ctx, q.ProjectID, next, batch)
		if err != nil {
			return domain.ChangesPage{}, err
		}
		if len(docs) == 0 {
			break
		}
		if docs[0].Seq != next+1 {
			// A hole at next+1 with a larger position taken: next+1 was
			// allocated and its change is not (visibly) written yet.
			patience := time.Duration(0)
			if next > q.Since {
				patience = gapPatience
			}
			filled, err := s.awaitPosition(ctx, q.ProjectID, next+1, patience)
			if err != nil {
				return domain.ChangesPage{}, err
			}
			if !filled {
				more = true
				break
			}
			continue
		}
		run := docs[:1]
		for _, d := range docs[1:] {
			if d.Seq != run[len(run)-1].Seq+1 {
				break
			}
			run = append(run, d)
		}
		var ids []string
		for _, d := range run {
			if !d.Void {
				ids = append(ids, d.RecordID)
			}
		}
		if s.afterPositions != nil {
			s.afterPositions()
		}
		recs, err := s.GetRecords(ctx, q.ProjectID, ids)
		if err != nil {
			return domain.ChangesPage{}, err
		}
		for _, d := range run {
			if !d.Void {
				r, ok := recs[d.RecordID]
				if ok && r.Seq > d.Seq {
					ahead = max(ahead, r.Seq)
				}
				if ok && r.Seq <= d.Seq && visible(r, q) {
					p := byID[r.ID]
					if p == nil && count == limit {
						more = true // d.Seq is taken and lies beyond next
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
			scanned++
		}
		if len(run) == len(docs) && len(docs) < batch {
			break // the end of the feed
		}
		if scanned >= maxScan {
			more = len(run) < len(docs)
			if !more {
				beyond, err := s.changesAfter(ctx, q.ProjectID, next, 1)
				if err != nil {
					return domain.ChangesPage{}, err
				}
				more = len(beyond) > 0
			}
			break
		}
	}
	page := domain.ChangesPage{Next: next, More: more || ahead > next}
	for _, p := range order {
		if p.live {
			page.Records = append(page.Records, p.rec)
		}
	}
	return page, nil
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
// reader (or another) inserted. With patience > 0 it gives up after patience and
// reports false, leaving the position for a later call.
func (s *Store) awaitPosition(ctx context.Context, projectID string, seq int64, patience time.Duration) (bool, error) {
	id := changeKey(projectID, seq)
	start := time.Now()
	voided := false
	poll := gapPoll
	for {
		ok, err := exists(ctx, s.changes, id)
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
			_, err := s.changes.InsertOne(ctx, changeDoc{ID: id, ProjectID: projectID, Seq: seq, Void: true, At: ms(time.Now())})
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

// kickSweep asks the sweeper for an early pass without waiting for it.
func (s *Store) kickSweep() {
	select {
	case s.kick <- struct{}{}:
	default:
	}
}

// sweeper runs sweepPending every SweepInterval, and when kicked, until ctx ends.
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
		if err := s.sweepPending(ctx); err != nil && ctx.Err() == nil {
			s.log.Warn("mongo: sweep of pending writes failed", "err", err)
		}
	}
}

// sweepBatch bounds the records one sweep pass repairs.
const sweepBatch = 1000

// sweepPending completes writes that were applied but whose writer stopped before
// completing them (a crash between steps (b) and (c), or a failure after): for
// every record pending for longer than PendingGrace it confirms the write's
// revisions, appends a feed entry and clears the marker. Those writes were never
// acknowledged; the repair puts the state that is visible in the record into the
// feed. A writer that was merely slow may also append its entry: a record twice
// in the feed is harmless, since readers take its current state.
func (s *Store) sweepPending(ctx context.Context) error {
	cutoff := time.Now().Add(-s.cfg.PendingGrace)
	docs, err := findAll[recordDoc](ctx, s.records,
		bson.D{{Key: "pending_at", Value: bson.D{{Key: "$lt", Value: cutoff}}}},
		options.Find().SetLimit(sweepBatch).SetProjection(bson.D{
			{Key: "project_id", Value: 1}, {Key: "record_id", Value: 1}, {Key: "pending", Value: 1},
			{Key: "pending_at", Value: 1}, {Key: "pending_revs", Value: 1}}))
	if err != nil {
		return err
	}
	var errs []error
	for _, d := range docs {
		if d.Pending == "" {
			continue
		}
		seqs, err := s.appendChanges(ctx, d.ProjectID, []string{d.RecordID})
		if err != nil {
			errs = append(errs, err)
			continue
		}
		a := applied{projectID: d.ProjectID, recordID: d.RecordID, token: d.Pending, revs: d.PendingRevs}
		if err := s.complete(ctx, []applied{a}, seqs); err != nil {
			errs = append(errs, err)
			continue
		}
		s.log.Warn("mongo: completed an interrupted record write", "project", d.ProjectID, "record", d.RecordID, "seq", seqs[0])
	}
	return errors.Join(errs...)
}
