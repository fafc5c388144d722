package sqlite

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/fieldsync/fieldsync/internal/domain"
)

// The tests of group commit (groupcommit.go). The deterministic ones hold the
// store's write gate, as a write of another caller would, so that the callers
// they start queue up and are then committed together as one group.

// holdGate takes the write gate; the returned func gives it back.
func holdGate(s *Store) (release func()) {
	s.writeGate <- struct{}{}
	return func() { <-s.writeGate }
}

// waitQueued waits until n writes wait for the next group.
func waitQueued(t *testing.T, s *Store, n int) {
	t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for {
		s.group.mu.Lock()
		got := len(s.group.waiting)
		s.group.mu.Unlock()
		if got == n {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("%d writes queued, want %d", got, n)
		}
		time.Sleep(time.Millisecond) // polling an observable condition, with a deadline
	}
}

// writeResult is what one WriteRecords call returned.
type writeResult struct {
	results []error
	err     error
}

// goWrite runs WriteRecords in a goroutine; the channel yields its outcome.
func goWrite(ctx context.Context, s *Store, writes []domain.RecordWrite) <-chan writeResult {
	out := make(chan writeResult, 1)
	go func() {
		res, err := s.WriteRecords(ctx, writes)
		out <- writeResult{res, err}
	}()
	return out
}

// goPart runs a raw group part in a goroutine; the channel yields its error.
func goPart(s *Store, fn func(ctx context.Context, tx *sql.Tx) error) <-chan error {
	out := make(chan error, 1)
	go func() { out <- s.writeGrouped(context.Background(), 1, fn) }()
	return out
}

// mustApply fails unless the call succeeded with every item applied.
func mustApply(t *testing.T, what string, r writeResult) {
	t.Helper()
	if r.err != nil {
		t.Fatalf("%s: %v", what, r.err)
	}
	for i, e := range r.results {
		if e != nil {
			t.Fatalf("%s: item %d: %v", what, i, e)
		}
	}
}

// mustHold fails unless the store holds the record at rev (want "" : absent).
func mustHold(t *testing.T, s *Store, w domain.RecordWrite, want string) {
	t.Helper()
	r, err := s.GetRecord(context.Background(), w.Record.ProjectID, w.Record.ID)
	switch {
	case want == "" && errors.Is(err, domain.ErrNotFound):
	case want == "":
		t.Errorf("record %s: got %v, %v; want it absent", w.Record.ID, r.Rev, err)
	case err != nil:
		t.Errorf("record %s: %v", w.Record.ID, err)
	case r.Rev != want:
		t.Errorf("record %s: rev %s, want %s", w.Record.ID, r.Rev, want)
	}
}

func openGroupTest(t *testing.T) *Store {
	return openTest(t, filepath.Join(t.TempDir(), "fieldsync.db"))
}

// TestGroupCommitSharesOneTransaction: writes queued behind another writer
// commit together, in one transaction, each with its own results and seqs in
// queue order.
func TestGroupCommitSharesOneTransaction(t *testing.T) {
	s := openGroupTest(t)
	ctx := t.Context()
	at := time.Date(2026, 3, 1, 8, 0, 0, 0, time.UTC)
	first := benchWrite("p", 0, at)
	mustApply(t, "first", writeNow(ctx, s, []domain.RecordWrite{first}))
	commits := s.group.commits.Load()

	release := holdGate(s)
	const n = 10
	var (
		writes [n][]domain.RecordWrite
		outs   [n]<-chan writeResult
	)
	for i := range n {
		writes[i] = []domain.RecordWrite{benchWrite("p", 1+i, at)}
		if i == 3 { // a create of a record that exists: ErrExists for this item only
			dup := first
			writes[i] = append(writes[i], dup)
		}
		outs[i] = goWrite(ctx, s, writes[i])
		waitQueued(t, s, i+1) // one at a time, so the queue's order is known
	}
	release()
	var lastSeq int64
	for i := range n {
		r := <-outs[i]
		if r.err != nil {
			t.Fatalf("write %d: %v", i, r.err)
		}
		if r.results[0] != nil {
			t.Fatalf("write %d: %v", i, r.results[0])
		}
		if i == 3 && !errors.Is(r.results[1], domain.ErrExists) {
			t.Errorf("write 3's duplicate create: %v, want ErrExists", r.results[1])
		}
		if seq := writes[i][0].Record.Seq; seq <= lastSeq {
			t.Errorf("write %d: seq %d after %d: want the queue's order", i, seq, lastSeq)
		} else {
			lastSeq = seq
		}
		mustHold(t, s, writes[i][0], writes[i][0].Record.Rev)
	}
	if got := s.group.commits.Load() - commits; got != 1 {
		t.Errorf("%d commits for %d queued writes, want 1", got, n)
	}
}

// writeNow is WriteRecords' outcome as a writeResult.
func writeNow(ctx context.Context, s *Store, writes []domain.RecordWrite) writeResult {
	res, err := s.WriteRecords(ctx, writes)
	return writeResult{res, err}
}

// TestGroupCommitCancelledWhileQueued: a caller that gives up while queued
// leaves the queue with its context's error and writes nothing; the others
// commit.
func TestGroupCommitCancelledWhileQueued(t *testing.T) {
	s := openGroupTest(t)
	at := time.Date(2026, 3, 1, 8, 0, 0, 0, time.UTC)
	a, b, c := benchWrite("p", 1, at), benchWrite("p", 2, at), benchWrite("p", 3, at)
	release := holdGate(s)
	outA := goWrite(t.Context(), s, []domain.RecordWrite{a})
	waitQueued(t, s, 1)
	bctx, cancel := context.WithCancel(t.Context())
	outB := goWrite(bctx, s, []domain.RecordWrite{b})
	waitQueued(t, s, 2)
	outC := goWrite(t.Context(), s, []domain.RecordWrite{c})
	waitQueued(t, s, 3)
	cancel()
	if r := <-outB; !errors.Is(r.err, context.Canceled) {
		t.Fatalf("cancelled write: %v, want context.Canceled", r.err)
	}
	waitQueued(t, s, 2)
	release()
	mustApply(t, "a", <-outA)
	mustApply(t, "c", <-outC)
	mustHold(t, s, a, a.Record.Rev)
	mustHold(t, s, b, "")
	mustHold(t, s, c, c.Record.Rev)
}

// TestGroupCommitCancelledInGroup: a caller that gives up once its part is in
// a transaction does not break that transaction; it learns the outcome (its
// write was committed), as do the others.
func TestGroupCommitCancelledInGroup(t *testing.T) {
	s := openGroupTest(t)
	at := time.Date(2026, 3, 1, 8, 0, 0, 0, time.UTC)
	a, b := benchWrite("p", 1, at), benchWrite("p", 2, at)
	started, proceed := make(chan struct{}), make(chan struct{})
	release := holdGate(s)
	// The group's first part writes a and then waits, so that b's caller
	// gives up while b is in the transaction, not yet written.
	outA := goPart(s, func(ctx context.Context, tx *sql.Tx) error {
		close(started)
		<-proceed
		return s.writeRecordsTx(ctx, tx, a)
	})
	waitQueued(t, s, 1)
	bctx, cancel := context.WithCancel(t.Context())
	outB := goWrite(bctx, s, []domain.RecordWrite{b})
	waitQueued(t, s, 2)
	release()
	<-started
	cancel()
	close(proceed)
	if err := <-outA; err != nil {
		t.Fatalf("first part: %v", err)
	}
	mustApply(t, "cancelled during its group", <-outB)
	mustHold(t, s, a, a.Record.Rev)
	mustHold(t, s, b, b.Record.Rev)
}

// writeRecordsTx writes one create in tx as WriteRecords' part would, for
// parts that do more than WriteRecords.
func (s *Store) writeRecordsTx(ctx context.Context, tx *sql.Tx, w domain.RecordWrite) error {
	rs := &recordState{final: &w.Record, seq: 1 << 40, version: 1}
	if err := tx.QueryRowContext(ctx, `SELECT coalesce(max(rk), 0) + 1 FROM records`).Scan(&rs.rk); err != nil {
		return err
	}
	if err := tx.QueryRowContext(ctx, `SELECT coalesce(max(seq), 0) + 1 FROM records WHERE project_id = ?`,
		w.Record.ProjectID).Scan(&rs.seq); err != nil {
		return err
	}
	row, err := recordRow(rs, batchEncoding{})
	if err != nil {
		return err
	}
	// WriteRecords' parts keep the transaction's counters; a part that
	// writes records otherwise must drop them (no such part exists outside
	// these tests).
	s.group.dropCounters()
	return s.execChunks(ctx, tx, insertRecordHead, 22, [][]any{row})
}

// TestGroupCommitCounters: the parts of one group take row keys and seqs on
// from the parts before them (kept in memory for the transaction, not read
// again): every project's seqs run on without a gap or a repeat, in queue
// order, and a failed part in the middle costs no seq.
func TestGroupCommitCounters(t *testing.T) {
	s := openGroupTest(t)
	ctx := t.Context()
	at := time.Date(2026, 3, 1, 8, 0, 0, 0, time.UTC)
	mustApply(t, "first", writeNow(ctx, s, []domain.RecordWrite{benchWrite("p", 0, at)}))
	release := holdGate(s)
	var (
		writes [][]domain.RecordWrite
		outs   []<-chan writeResult
		failed <-chan error
	)
	for i := range 8 {
		if i == 4 { // a part that writes a record, then fails
			failed = goPart(s, func(ctx context.Context, tx *sql.Tx) error {
				if err := s.writeRecordsTx(ctx, tx, benchWrite("p", 100, at)); err != nil {
					return err
				}
				return errors.New("this part fails after its write")
			})
			waitQueued(t, s, len(outs)+1)
		}
		project := []string{"p", "q"}[i%2]
		w := []domain.RecordWrite{benchWrite(project, 1+2*i, at), benchWrite(project, 2+2*i, at)}
		writes = append(writes, w)
		outs = append(outs, goWrite(ctx, s, w))
		n := len(outs)
		if failed != nil {
			n++
		}
		waitQueued(t, s, n)
	}
	release()
	if err := <-failed; err == nil {
		t.Fatal("the failing part succeeded")
	}
	want := map[string]int64{"p": 1, "q": 0}
	for i, out := range outs {
		mustApply(t, fmt.Sprint("write ", i), <-out)
		for _, w := range writes[i] {
			p := w.Record.ProjectID
			want[p]++
			if w.Record.Seq != want[p] {
				t.Errorf("write %d, record %s: seq %d, want %d", i, w.Record.ID, w.Record.Seq, want[p])
			}
			mustHold(t, s, w, w.Record.Rev)
		}
	}
	mustHold(t, s, benchWrite("p", 100, at), "")
}

// TestGroupCommitFailingPart: a part that fails halfway (a constraint error
// after a first write) is rolled back alone; the parts before and after it
// commit in the same transaction.
func TestGroupCommitFailingPart(t *testing.T) {
	s := openGroupTest(t)
	ctx := t.Context()
	at := time.Date(2026, 3, 1, 8, 0, 0, 0, time.UTC)
	a, f, c := benchWrite("p", 1, at), benchWrite("p", 2, at), benchWrite("p", 3, at)
	if _, _, err := s.PutSettingIfAbsent(ctx, "k", "v"); err != nil {
		t.Fatal(err)
	}
	commits := s.group.commits.Load()
	release := holdGate(s)
	outA := goWrite(ctx, s, []domain.RecordWrite{a})
	waitQueued(t, s, 1)
	outF := goPart(s, func(ctx context.Context, tx *sql.Tx) error {
		if err := s.writeRecordsTx(ctx, tx, f); err != nil {
			return err
		}
		_, err := tx.ExecContext(ctx, `INSERT INTO settings (key, value) VALUES ('k', 'again')`)
		return err
	})
	waitQueued(t, s, 2)
	outC := goWrite(ctx, s, []domain.RecordWrite{c})
	waitQueued(t, s, 3)
	release()
	if err := <-outF; !errors.Is(err, domain.ErrExists) {
		t.Errorf("failing part: %v, want ErrExists", err)
	}
	mustApply(t, "a", <-outA)
	mustApply(t, "c", <-outC)
	mustHold(t, s, a, a.Record.Rev)
	mustHold(t, s, f, "")
	mustHold(t, s, c, c.Record.Rev)
	if got := s.group.commits.Load() - commits; got != 1 {
		t.Errorf("%d commits, want 1: a failed part must not cost the others their group", got)
	}
}

// TestGroupCommitBrokenTransaction: when the whole transaction is lost (here
// a part ends it, as SQLite does on a full disk), the other parts run again
// alone and commit, with results as if they had been alone from the start.
func TestGroupCommitBrokenTransaction(t *testing.T) {
	s := openGroupTest(t)
	ctx := t.Context()
	at := time.Date(2026, 3, 1, 8, 0, 0, 0, time.UTC)
	old := benchWrite("p", 0, at)
	mustApply(t, "old", writeNow(ctx, s, []domain.RecordWrite{old}))
	a, r, c := benchWrite("p", 1, at), benchWrite("p", 2, at), benchWrite("p", 3, at)
	release := holdGate(s)
	// x creates r in the group, and refuses when run again alone: in the
	// group a's create of r is refused (ErrExists), alone it is applied.
	xr := r
	xr.Record.Rev = "1-" + strings.Repeat("a", 64)
	runs := 0
	outX := goPart(s, func(ctx context.Context, tx *sql.Tx) error {
		if runs++; runs > 1 {
			return errors.New("x refuses to run again")
		}
		return s.writeRecordsTx(ctx, tx, xr)
	})
	waitQueued(t, s, 1)
	aWrites := []domain.RecordWrite{a, old, r} // old exists: ErrExists in both runs
	outA := goWrite(ctx, s, aWrites)
	waitQueued(t, s, 2)
	outF := goPart(s, func(ctx context.Context, tx *sql.Tx) error {
		if _, err := tx.ExecContext(ctx, `ROLLBACK`); err != nil {
			return err
		}
		return errors.New("the transaction is gone")
	})
	waitQueued(t, s, 3)
	cWrites := []domain.RecordWrite{c}
	outC := goWrite(ctx, s, cWrites)
	waitQueued(t, s, 4)
	release()
	if err := <-outF; err == nil {
		t.Error("the part that broke the transaction succeeded")
	}
	if err := <-outX; err == nil {
		t.Error("x, run again alone, succeeded")
	}
	ra := <-outA
	if ra.err != nil || len(ra.results) != 3 || ra.results[0] != nil || !errors.Is(ra.results[1], domain.ErrExists) || ra.results[2] != nil {
		t.Errorf("a: %v %v, want [nil ErrExists nil]: the results of its run alone", ra.results, ra.err)
	}
	mustApply(t, "c", <-outC)
	mustHold(t, s, a, a.Record.Rev)
	mustHold(t, s, r, r.Record.Rev)
	mustHold(t, s, c, c.Record.Rev)
	if aWrites[0].Record.Seq == 0 || cWrites[0].Record.Seq <= aWrites[0].Record.Seq {
		t.Errorf("seqs a=%d c=%d: want both set, in queue order", aWrites[0].Record.Seq, cWrites[0].Record.Seq)
	}
	// The store goes on writing in groups.
	mustApply(t, "after", writeNow(ctx, s, []domain.RecordWrite{benchWrite("p", 4, at)}))
}

// TestGroupCommitPanic: a part that panics panics in its caller's goroutine,
// and the others commit.
func TestGroupCommitPanic(t *testing.T) {
	s := openGroupTest(t)
	ctx := t.Context()
	at := time.Date(2026, 3, 1, 8, 0, 0, 0, time.UTC)
	a := benchWrite("p", 1, at)
	release := holdGate(s)
	outA := goWrite(ctx, s, []domain.RecordWrite{a})
	waitQueued(t, s, 1)
	panicked := make(chan any, 1)
	go func() {
		defer func() { panicked <- recover() }()
		s.writeGrouped(ctx, 1, func(context.Context, *sql.Tx) error { panic("boom") })
	}()
	waitQueued(t, s, 2)
	release()
	if p := <-panicked; p == nil || !strings.Contains(fmt.Sprint(p), "boom") {
		t.Errorf("caller's panic: %v, want boom", p)
	}
	mustApply(t, "a", <-outA)
	mustHold(t, s, a, a.Record.Rev)
}

// TestGroupCommitManyWriters has many callers write at once, each creating
// records, updating its own, and sending stale updates and duplicate creates,
// and checks every caller's results, that every acknowledged write is stored,
// and that the feed holds each record once, at the seq of its last write.
// Run it with -race.
func TestGroupCommitManyWriters(t *testing.T) {
	s := openGroupTest(t)
	ctx := t.Context()
	at := time.Date(2026, 3, 1, 8, 0, 0, 0, time.UTC)
	writers, rounds := 40, 12
	if testing.Short() {
		writers, rounds = 10, 5
	}
	commits := s.group.commits.Load()
	type acked struct {
		w   domain.RecordWrite
		seq int64
	}
	final := make([]map[string]acked, writers) // per writer: record id → last acknowledged write
	var wg sync.WaitGroup
	for k := range writers {
		final[k] = map[string]acked{}
		wg.Go(func() {
			var mine []domain.RecordWrite // this writer's records, as last written
			lastSeq := int64(0)
			for r := range rounds {
				n := k*1000 + r
				batch := []domain.RecordWrite{benchWrite("p", n, at)}
				want := []error{nil}
				idx := 0
				if len(mine) > 0 {
					idx = r % len(mine)
					prev := mine[idx]
					upd := prev
					upd.Record.Rev = fmt.Sprintf("%d-%064x", r+2, n)
					upd.ExpectRev = prev.Record.Rev
					upd.Revisions = []domain.Revision{{ProjectID: "p", RecordID: prev.Record.ID, Rev: upd.Record.Rev,
						Parent: prev.Record.Rev, Data: prev.Record.Data, CreatedAt: at}}
					stale := upd
					stale.ExpectRev = "1-stale"
					dup := prev
					dup.ExpectRev = ""
					batch = append(batch, upd, stale, dup)
					want = append(want, nil, domain.ErrStale, domain.ErrExists)
				}
				res, err := s.WriteRecords(ctx, batch)
				if err != nil {
					t.Errorf("writer %d round %d: %v", k, r, err)
					return
				}
				for i := range want {
					if !errors.Is(res[i], want[i]) || (want[i] == nil && res[i] != nil) {
						t.Errorf("writer %d round %d item %d: %v, want %v", k, r, i, res[i], want[i])
					}
				}
				for i, w := range batch {
					if res[i] != nil {
						continue
					}
					if w.Record.Seq <= lastSeq {
						t.Errorf("writer %d: seq %d after its own %d", k, w.Record.Seq, lastSeq)
					}
					lastSeq = w.Record.Seq
					final[k][w.Record.ID] = acked{w, w.Record.Seq}
					if i == 0 {
						mine = append(mine, w)
					} else {
						mine[idx] = w
					}
				}
			}
		})
	}
	wg.Wait()
	if t.Failed() {
		return
	}
	var page domain.ChangesPage
	seen := map[string]int64{}
	for since := int64(0); ; since = page.Next {
		var err error
		if page, err = s.Changes(ctx, domain.ChangesQuery{ProjectID: "p", Since: since, Limit: 500}); err != nil {
			t.Fatal(err)
		}
		for _, r := range page.Records {
			if _, dup := seen[r.ID]; dup {
				t.Errorf("record %s twice in the feed", r.ID)
			}
			seen[r.ID] = r.Seq
		}
		if !page.More {
			break
		}
	}
	total := 0
	for k := range final {
		for id, a := range final[k] {
			total++
			mustHold(t, s, a.w, a.w.Record.Rev)
			if seen[id] != a.seq {
				t.Errorf("record %s at seq %d in the feed, acknowledged at %d", id, seen[id], a.seq)
			}
		}
	}
	if len(seen) != total {
		t.Errorf("feed holds %d records, %d acknowledged", len(seen), total)
	}
	t.Logf("%d calls in %d commits", writers*rounds, s.group.commits.Load()-commits)
}
