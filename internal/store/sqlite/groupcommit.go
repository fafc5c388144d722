package sqlite

import (
	"context"
	"database/sql"
	"fmt"
	"runtime/debug"
	"slices"
	"sync"
	"sync/atomic"
	"time"
)

// Group commit.
//
// With synchronous=FULL every commit waits for an fsync of the WAL, and write
// transactions take turns: when many tablets each push a few items, the
// server would spend its time committing one small transaction after another.
// So writes that arrive while another is being written queue up, and one
// committer runs the whole queue as one transaction: one BEGIN IMMEDIATE, each
// caller's part in turn, one COMMIT and one fsync. Every caller returns only
// after that commit, so an acknowledgement still means the write is on disk.
//
// Each part runs inside a SAVEPOINT of its own. A part that fails is rolled
// back to its savepoint and its caller gets its error; the parts before and
// after it commit as if it had not been there. Should the transaction itself
// fail (SQLite rolls a whole transaction back on some errors, such as a full
// disk, and the COMMIT can fail), the parts are run again, each alone in a
// transaction of its own, so that one caller's part cannot sink the others.
// A part's function must therefore be safe to run again after a rollback.
//
// A part's statements run with its caller's context stripped of cancellation:
// an interrupted statement may roll back the whole transaction (and
// database/sql rolls a transaction back when the context it began with is
// done), and that transaction holds other callers' writes. A caller whose
// context ends while it is still queued leaves the queue and gets the
// context's error; once its part is taken into a transaction (after the
// committer holds SQLite's write lock, so only the group's own work and its
// fsync remain) it waits for the outcome and gets it, whatever its context
// says meanwhile: the caller learns what really happened.
//
// The changes feed's argument (top of record.go) is untouched: a group is one
// write transaction that holds SQLite's write lock from its BEGIN IMMEDIATE to
// its COMMIT; its parts read the largest seq inside it, each after the parts
// before it, so seq order is still commit order, and a reader's snapshot holds
// all of a group or none of it.

// maxGroupWeight bounds a group's size in items (the sum of its parts'
// weights); the first part is taken whatever its weight. A group holds its
// callers until its last part is written, so it must not grow without end.
const maxGroupWeight = 4096

// groupPart is one caller's share of a group transaction.
type groupPart struct {
	ctx    context.Context
	fn     func(ctx context.Context, tx *sql.Tx) error
	weight int
	err    error         // the outcome, set before done is closed
	panic  any           // what fn panicked with, to panic again in the caller
	done   chan struct{} // closed when the outcome is known
}

// groupQueue is the writes waiting for the next group transaction.
type groupQueue struct {
	mu      sync.Mutex
	waiting []*groupPart
	running bool         // a committer goroutine drains waiting
	commits atomic.Int64 // group transactions committed, for the tests

	// counters is what the parts of the write transaction counters.tx have
	// read and written of the row keys and seqs, so that each part of a
	// group does not read max(rk) and max(seq) again. Only the goroutine
	// holding the write gate touches it.
	counters txCounters
}

// txCounters are the largest record row key and each project's largest seq in
// the write transaction tx, as its parts so far left them. They are valid only
// inside tx (which holds SQLite's write lock, so nothing else writes
// meanwhile); a part that fails and is rolled back to its savepoint drops
// them, as its own writes were undone.
type txCounters struct {
	tx     *sql.Tx // kept, so a later transaction cannot reuse its address
	haveRK bool
	lastRK int64
	seq    map[string]int64
}

// countersOf returns the counters of tx, empty when tx is not the transaction
// they were kept for.
func (g *groupQueue) countersOf(tx *sql.Tx) *txCounters {
	if g.counters.tx != tx {
		g.counters = txCounters{tx: tx, seq: map[string]int64{}}
	}
	return &g.counters
}

// dropCounters forgets the counters (a part was rolled back, or its
// transaction ended).
func (g *groupQueue) dropCounters() { g.counters = txCounters{} }

// writeGrouped runs fn as part of a group transaction (see above) and returns
// once that transaction committed or fn's part failed. weight is the number
// of items fn writes. fn must use the context it is given, not ctx, and must
// be safe to run again after its transaction was rolled back.
func (s *Store) writeGrouped(ctx context.Context, weight int, fn func(ctx context.Context, tx *sql.Tx) error) error {
	if s.observe != nil {
		defer s.observed(opName(), time.Now())
	}
	if err := ctx.Err(); err != nil {
		return ctxErr(err)
	}
	p := &groupPart{ctx: ctx, fn: fn, weight: weight, done: make(chan struct{})}
	g := &s.group
	g.mu.Lock()
	g.waiting = append(g.waiting, p)
	if !g.running {
		g.running = true
		go s.commitGroups()
	}
	g.mu.Unlock()
	select {
	case <-p.done:
	case <-ctx.Done():
		g.mu.Lock()
		if i := slices.Index(g.waiting, p); i >= 0 {
			g.waiting = slices.Delete(g.waiting, i, i+1)
			g.mu.Unlock()
			return ctxErr(ctx.Err())
		}
		g.mu.Unlock()
		<-p.done // taken into a transaction: its outcome comes soon
	}
	if p.panic != nil {
		panic(p.panic)
	}
	return p.err
}

// commitGroups runs the queue, one group transaction after another, until it
// is empty.
func (s *Store) commitGroups() {
	g := &s.group
	for {
		g.mu.Lock()
		if len(g.waiting) == 0 {
			g.running = false
			g.mu.Unlock()
			return
		}
		g.mu.Unlock()
		// Wait for this process's other writers, then for SQLite's write
		// lock, while the queue goes on filling. Neither waits on a caller's
		// context: the committer serves every caller queued.
		s.writeGate <- struct{}{}
		tx, err := s.db.BeginTx(context.Background(), nil)
		g.mu.Lock()
		parts := g.take()
		g.mu.Unlock()
		switch {
		case err != nil:
			for _, p := range parts {
				p.finish(dbErr(p.ctx, err))
			}
		case len(parts) == 0: // every caller queued gave up meanwhile
			tx.Rollback()
		default:
			s.runGroup(tx, parts)
			s.group.dropCounters()
			s.poke() // a write committed: the WAL is checkpointed when writes pause
		}
		<-s.writeGate
	}
}

// take removes the next group's parts from the queue.
func (g *groupQueue) take() []*groupPart {
	n, weight := 0, 0
	for n < len(g.waiting) && (n == 0 || weight+g.waiting[n].weight <= maxGroupWeight) {
		weight += g.waiting[n].weight
		n++
	}
	parts := slices.Clone(g.waiting[:n])
	g.waiting = slices.Delete(g.waiting, 0, n)
	return parts
}

// runGroup runs parts in tx and commits it; parts whose callers gave up are
// skipped. Should the transaction fail, the parts still undecided run again
// alone.
func (s *Store) runGroup(tx *sql.Tx, parts []*groupPart) {
	live := parts[:0:0]
	for _, p := range parts {
		if err := p.ctx.Err(); err != nil {
			p.finish(ctxErr(err))
			continue
		}
		live = append(live, p)
	}
	if len(live) == 1 {
		// Alone, a part needs no savepoint: its error rolls the transaction back.
		p := live[0]
		if err := p.run(tx); err != nil {
			tx.Rollback()
			p.finish(err)
			return
		}
		err := tx.Commit()
		if err == nil {
			s.group.commits.Add(1)
		}
		p.finish(dbErr(p.ctx, err))
		return
	}
	ctx := context.Background()
	var (
		ok     []*groupPart // written, to be committed
		broken error        // the transaction can no longer commit
		rest   []*groupPart // not run when it broke
	)
	// SAVEPOINT and RELEASE run once a part: prepared once, not parsed anew.
	savepoint, err := s.stmt(ctx, tx, `SAVEPOINT part`)
	if err != nil {
		broken, rest = err, live
	}
	release, err := s.stmt(ctx, tx, `RELEASE part`)
	if err != nil {
		broken, rest = err, live
	}
	for i, p := range live {
		if broken != nil {
			break
		}
		if _, err := savepoint.ExecContext(ctx); err != nil {
			broken, rest = err, live[i:]
			break
		}
		if err := p.run(tx); err != nil {
			p.finish(err)
			s.group.dropCounters()
			if _, err := tx.ExecContext(ctx, `ROLLBACK TO part; RELEASE part`); err != nil {
				// SQLite rolled the transaction back (a full disk, say):
				// the parts written before are gone with it.
				broken, rest = err, live[i+1:]
				break
			}
			continue
		}
		if _, err := release.ExecContext(ctx); err != nil {
			broken, rest = err, live[i:]
			break
		}
		ok = append(ok, p)
	}
	if broken == nil {
		if err := tx.Commit(); err == nil {
			s.group.commits.Add(1)
			for _, p := range ok {
				p.finish(nil)
			}
			return
		}
	} else {
		tx.Rollback()
	}
	// Nothing of the group was committed: each part still undecided runs
	// again, alone, so that the failure stays with the part that caused it.
	for _, p := range append(ok, rest...) {
		p.finish(s.runAlone(p))
	}
}

// runAlone runs one part in a transaction of its own. The caller holds the
// write gate.
func (s *Store) runAlone(p *groupPart) error {
	defer s.group.dropCounters()
	tx, err := s.db.BeginTx(context.Background(), nil)
	if err != nil {
		return dbErr(p.ctx, err)
	}
	if err := p.run(tx); err != nil {
		tx.Rollback()
		return err
	}
	return dbErr(p.ctx, tx.Commit())
}

// run runs the part's function in tx and returns its error as write would. A
// panic in it becomes an error here (the committer serves other callers) and
// is panicked again in the caller's goroutine.
func (p *groupPart) run(tx *sql.Tx) (err error) {
	defer func() {
		if r := recover(); r != nil {
			p.panic = fmt.Sprintf("%v\n\nin the group committer:\n%s", r, debug.Stack())
			err = fmt.Errorf("sqlite: write panicked: %v", r)
		}
	}()
	return dbErr(p.ctx, p.fn(context.WithoutCancel(p.ctx), tx))
}

// finish hands the part's outcome to its caller.
func (p *groupPart) finish(err error) {
	p.err = err
	close(p.done)
}
