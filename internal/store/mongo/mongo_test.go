package mongo_test

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/fieldsync/fieldsync/internal/domain"
	"github.com/fieldsync/fieldsync/internal/store/mongo"
	"github.com/fieldsync/fieldsync/internal/store/mongo/mongotest"
	"github.com/fieldsync/fieldsync/internal/store/storetest"
)

func TestMain(m *testing.M) { os.Exit(mongotest.RunMain(m)) }

// TestStore runs the conformance suite, each leaf test on a fresh database,
// and fails a leaf test whose store sent a filter without project_id to a
// sharded collection (see shardKeyMonitor).
func TestStore(t *testing.T) {
	storetest.Run(t, func(t *testing.T) domain.Store {
		monitor, report := shardKeyMonitor()
		// Registered before the store's Close, so it runs after it: no
		// command comes later.
		t.Cleanup(func() {
			for _, b := range report() {
				t.Errorf("filter without project_id: %s", b)
			}
		})
		st, err := mongo.OpenMonitored(t.Context(), mongotest.Config(t), monitor)
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { st.Close() })
		return st
	})
}

// TestFeedTwoInstances runs the suite's concurrent feed check with writers and
// readers spread over two Store values on one database, as two server
// instances behind a load balancer would be.
func TestFeedTwoInstances(t *testing.T) {
	cfg := mongotest.Config(t)
	var stores []domain.Store
	for range 2 {
		st, err := mongo.Open(t.Context(), cfg)
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { st.Close() })
		stores = append(stores, st)
	}
	storetest.RunConcurrentFeed(t, stores...)
}

func ctxT(t *testing.T) context.Context {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	t.Cleanup(cancel)
	return ctx
}

// rec builds a record write: a create when expect is "", else an update of a
// record at rev expect. The rev's generation counts the record's data writes.
func rec(project, id, by string, gen int, expect string) domain.RecordWrite {
	rev := fmt.Sprintf("%d-%s", gen, strings.Repeat(strconv.Itoa(gen%10), 8))
	parent := expect
	now := time.Now().UTC().Truncate(time.Millisecond)
	data := json.RawMessage(fmt.Sprintf(`{"gen":%d,"id":%q,"score":%d.5}`, gen, id, gen))
	return domain.RecordWrite{
		Record: domain.Record{ProjectID: project, ID: id, FormID: "survey", FormVersion: "1", Rev: rev, Data: data,
			CreatedBy: by, ClientModifiedAt: now, CreatedAt: now, UpdatedAt: now, ReviewState: domain.ReviewReceived},
		ExpectRev: expect,
		Revisions: []domain.Revision{{ProjectID: project, RecordID: id, Rev: rev, Parent: parent, Data: data,
			FormVersion: "1", ClientModifiedAt: now, CreatedBy: by, CreatedAt: now}},
	}
}

// write applies writes and fails the test unless each one applied.
func write(t *testing.T, st domain.Store, ws ...domain.RecordWrite) []domain.RecordWrite {
	t.Helper()
	res, err := st.WriteRecords(ctxT(t), ws)
	if err != nil {
		t.Fatalf("WriteRecords: %v", err)
	}
	for i, r := range res {
		if r != nil {
			t.Fatalf("write %d (%s): %v", i, ws[i].Record.ID, r)
		}
	}
	return ws
}

// pullAll pages from since until More is false.
func pullAll(t *testing.T, st domain.Store, q domain.ChangesQuery) ([]domain.Record, int64) {
	t.Helper()
	var out []domain.Record
	for {
		page, err := st.Changes(ctxT(t), q)
		if err != nil {
			t.Fatalf("Changes: %v", err)
		}
		if page.Next < q.Since {
			t.Fatalf("cursor moved back from %d to %d", q.Since, page.Next)
		}
		out = append(out, page.Records...)
		q.Since = page.Next
		if !page.More {
			return out, q.Since
		}
	}
}

func TestRecordWritesAndFeed(t *testing.T) {
	st := mongotest.Open(t)
	ctx := ctxT(t)
	const p = "proj"
	w1 := write(t, st, rec(p, "r1", "alice", 1, ""), rec(p, "r2", "bob", 1, ""))
	if w1[0].Record.Seq != 1 || w1[1].Record.Seq != 2 || w1[0].Record.Version != 1 {
		t.Fatalf("seq/version = %d/%d, %d", w1[0].Record.Seq, w1[0].Record.Version, w1[1].Record.Seq)
	}
	got, err := st.GetRecord(ctx, p, "r1")
	if err != nil {
		t.Fatal(err)
	}
	if string(got.Data) != string(w1[0].Record.Data) || got.Seq != 1 || got.Version != 1 || got.CreatedBy != "alice" {
		t.Fatalf("GetRecord = %+v", got)
	}

	// Conditional writes.
	res, err := st.WriteRecords(ctx, []domain.RecordWrite{
		rec(p, "r1", "alice", 1, ""),          // exists
		rec(p, "r1", "alice", 7, "0-nope"),    // stale
		rec(p, "missing", "alice", 2, "1-11"), // not found
		rec(p, "r1", "alice", 2, w1[0].Record.Rev),
	})
	if err != nil {
		t.Fatal(err)
	}
	for i, want := range []error{domain.ErrExists, domain.ErrStale, domain.ErrNotFound, nil} {
		if !errors.Is(res[i], want) || (want == nil && res[i] != nil) {
			t.Errorf("result %d = %v, want %v", i, res[i], want)
		}
	}
	// ExpectVersion guards metadata writes that keep the rev.
	cur, _ := st.GetRecord(ctx, p, "r1")
	meta := domain.RecordWrite{Record: cur, ExpectRev: cur.Rev, ExpectVersion: cur.Version}
	meta.Record.ReviewState = domain.ReviewApproved
	meta.Record.AssignedTo = []string{"carol"}
	write(t, st, meta)
	staleMeta := domain.RecordWrite{Record: cur, ExpectRev: cur.Rev, ExpectVersion: cur.Version}
	if res, err := st.WriteRecords(ctx, []domain.RecordWrite{staleMeta}); err != nil || !errors.Is(res[0], domain.ErrStale) {
		t.Fatalf("stale metadata write = %v, %v", res, err)
	}
	cur, _ = st.GetRecord(ctx, p, "r1")
	if cur.Version != 3 || cur.ReviewState != domain.ReviewApproved || cur.Rev[:2] != "2-" {
		t.Fatalf("after metadata write: %+v", cur)
	}

	// History holds the applied revisions only: the stale write's revision
	// (inserted before its condition failed) is not history.
	revs, err := st.ListRevisions(ctx, p, "r1")
	if err != nil {
		t.Fatal(err)
	}
	if len(revs) != 2 || revs[0].Rev != w1[0].Record.Rev || revs[1].Parent != w1[0].Record.Rev {
		t.Fatalf("ListRevisions = %+v", revs)
	}
	if _, err := st.GetRevision(ctx, p, "missing", "2-22222222"); !errors.Is(err, domain.ErrNotFound) {
		t.Fatalf("revision of a failed write: %v", err)
	}

	// The feed: r2 at 2, r1 at its latest position only.
	all, next := pullAll(t, st, domain.ChangesQuery{ProjectID: p, Limit: 1})
	if len(all) != 2 || all[0].ID != "r2" || all[1].ID != "r1" || all[1].Seq != next || all[1].Version != 3 {
		t.Fatalf("feed = %+v (next %d)", all, next)
	}
	// Visibility: carol sees r1 (assigned), dave nothing; a form filter.
	if got, _ := pullAll(t, st, domain.ChangesQuery{ProjectID: p, Subjects: []string{"carol"}}); len(got) != 1 || got[0].ID != "r1" {
		t.Fatalf("carol sees %+v", got)
	}
	if got, n := pullAll(t, st, domain.ChangesQuery{ProjectID: p, Subjects: []string{"dave"}}); len(got) != 0 || n != next {
		t.Fatalf("dave sees %+v, next %d", got, n)
	}
	if got, _ := pullAll(t, st, domain.ChangesQuery{ProjectID: p, FormID: "other"}); len(got) != 0 {
		t.Fatalf("form filter: %+v", got)
	}
	page, err := st.Changes(ctx, domain.ChangesQuery{ProjectID: p, Since: next})
	if err != nil || len(page.Records) != 0 || page.More || page.Next != next {
		t.Fatalf("empty page = %+v, %v", page, err)
	}
}

// TestGapVoiding stages a writer that allocated a position and stalls: a reader
// waits VoidGrace for it, voids it and moves on; the writer, when it finally
// inserts, finds the position taken and takes a new, larger one, so the reader
// (whose cursor is past the void) still gets the change.
func TestGapVoiding(t *testing.T) {
	st := mongotest.Open(t)
	ctx := ctxT(t)
	const p = "gaps"
	write(t, st, rec(p, "a", "x", 1, ""))  // position 1
	stalled, err := st.Allocate(ctx, p, 1) // position 2, never written in time
	if err != nil || stalled != 2 {
		t.Fatalf("Allocate = %d, %v", stalled, err)
	}
	write(t, st, rec(p, "b", "x", 1, "")) // position 3

	start := time.Now()
	page, err := st.Changes(ctx, domain.ChangesQuery{ProjectID: p, Since: 1})
	if err != nil {
		t.Fatal(err)
	}
	waited := time.Since(start)
	if len(page.Records) != 1 || page.Records[0].ID != "b" || page.Next != 3 || page.More {
		t.Fatalf("page = %+v", page)
	}
	if waited < mongotest.Config(t).VoidGrace {
		t.Errorf("reader voided after %v, before the grace period", waited)
	}
	if void, err := st.Void(ctx, p, stalled); err != nil || !void {
		t.Fatalf("position %d void = %v, %v", stalled, void, err)
	}

	// The stalled writer loses the position and gets a new one past the reader.
	if err := st.InsertChangeAt(ctx, p, stalled, "a"); !errors.Is(err, domain.ErrExists) {
		t.Fatalf("insert at voided position: %v", err)
	}
	seqs, err := st.AppendChanges(ctx, p, []string{"a"})
	if err != nil || seqs[0] <= page.Next {
		t.Fatalf("new position %v (%v), want > %d", seqs, err, page.Next)
	}
	got, _ := pullAll(t, st, domain.ChangesQuery{ProjectID: p, Since: page.Next})
	if len(got) != 1 || got[0].ID != "a" {
		t.Fatalf("after the writer's retry the reader gets %+v", got)
	}

	// A reader already holding part of a page does not wait out the grace for a
	// gap: it answers the part, with More.
	write(t, st, rec(p, "c", "x", 1, ""))
	if _, err := st.Allocate(ctx, p, 1); err != nil {
		t.Fatal(err)
	}
	write(t, st, rec(p, "d", "x", 1, ""))
	start = time.Now()
	page, err = st.Changes(ctx, domain.ChangesQuery{ProjectID: p, Since: seqs[0]})
	if err != nil {
		t.Fatal(err)
	}
	if len(page.Records) != 1 || page.Records[0].ID != "c" || !page.More || time.Since(start) > time.Second {
		t.Fatalf("partial page = %+v after %v", page, time.Since(start))
	}
}

// TestSkipNeedsMore stages a write that lands between a reader's reading of the
// positions and of the records: the reader skips the record at its old position
// (a later one names it), so the page must report More even though the reader
// saw no position beyond its Next, or the reader would stop without the record.
func TestSkipNeedsMore(t *testing.T) {
	st := mongotest.Open(t)
	ctx := ctxT(t)
	const p = "race"
	r := write(t, st, rec(p, "r", "x", 1, ""))[0] // position 1
	write(t, st, rec(p, "s", "x", 1, ""))         // position 2
	var once sync.Once
	st.SetAfterPositions(func() {
		once.Do(func() { write(t, st, rec(p, "r", "x", 2, r.Record.Rev)) }) // position 3
	})
	page, err := st.Changes(ctx, domain.ChangesQuery{ProjectID: p, Limit: 10})
	if err != nil {
		t.Fatal(err)
	}
	if len(page.Records) != 1 || page.Records[0].ID != "s" || page.Next != 2 || !page.More {
		t.Fatalf("page = %+v; want s only, Next 2, More", page)
	}
	got, _ := pullAll(t, st, domain.ChangesQuery{ProjectID: p, Since: page.Next})
	if len(got) != 1 || got[0].ID != "r" || got[0].Seq != 3 {
		t.Fatalf("next pages = %+v; want r at 3", got)
	}
}

// TestPendingSweep stages a writer that crashed after applying its write and
// before appending its change: the record holds the new state, marked pending,
// and the feed lacks it until the sweep (here of a second instance) appends it,
// when no reader met it before (TestPendingWriteNeverSettled: readers do).
func TestPendingSweep(t *testing.T) {
	cfg := mongotest.Config(t)
	ctx := ctxT(t)
	st, err := mongo.Open(ctx, cfg)
	if err != nil {
		t.Fatal(err)
	}
	defer st.Close()
	const p = "sweep"
	w := write(t, st, rec(p, "r", "x", 1, ""))[0]
	if err := st.ApplyOnly(ctx, rec(p, "r", "x", 2, w.Record.Rev)); err != nil {
		t.Fatal(err)
	}
	if tok, _ := st.Pending(ctx, p, "r"); tok == "" {
		t.Fatal("record not pending after a crashed write")
	}
	// The applied write is not history yet: its revision joins the history
	// when the write is completed.
	if _, err := st.RawRevision(ctx, p, "r", "2-22222222"); !errors.Is(err, domain.ErrNotFound) {
		t.Fatalf("revision of the pending write: %v", err)
	}
	got, next := pullAll(t, st, domain.ChangesQuery{ProjectID: p})
	if len(got) != 1 || got[0].Rev != "2-22222222" || next != 1 {
		// The reader sees the new state at the old position: it is the
		// record's current state.
		t.Fatalf("before the sweep: %+v next %d", got, next)
	}

	// A second instance whose grace is shorter than the write's age: its
	// Open sweeps before returning.
	cfg2 := cfg
	cfg2.PendingGrace = time.Nanosecond
	st2, err := mongo.Open(ctx, cfg2)
	if err != nil {
		t.Fatal(err)
	}
	defer st2.Close()
	if tok, err := st.Pending(ctx, p, "r"); err != nil || tok != "" {
		t.Fatalf("after the sweep the record is pending: %q, %v", tok, err)
	}
	if _, err := st.RawRevision(ctx, p, "r", "2-22222222"); err != nil {
		t.Fatalf("revision after the sweep: %v", err)
	}
	got, _ = pullAll(t, st, domain.ChangesQuery{ProjectID: p, Since: next})
	if len(got) != 1 || got[0].Rev != "2-22222222" || got[0].Seq != 2 {
		t.Fatalf("after the sweep: %+v", got)
	}
	if r, _ := st.GetRecord(ctx, p, "r"); r.Seq != 2 || r.Version != 2 {
		t.Fatalf("record after the sweep: seq %d version %d", r.Seq, r.Version)
	}
}

// TestCrashedWriterUnderLoad runs two Store values on one database (two server
// instances) with writers on both and readers paging meanwhile, and one writer
// that crashes after allocating a feed position: readers must void that
// position to get past it, while the others keep writing. Each reader
// repeatedly takes a snapshot of the writes acknowledged so far, pages until
// More is false, and checks that it has seen every record of the snapshot in a
// state at least as new. (TestFeedTwoInstances runs the suite's fuller check of
// the feed on two instances; this test adds the crashed writer.)
func TestCrashedWriterUnderLoad(t *testing.T) {
	cfg := mongotest.Config(t)
	// Longer than FerretDB's writes take under this load (SQLite serializes
	// them), so voids mostly hit the crashed writer; a slow writer whose
	// position is voided retries, which is safe too.
	cfg.VoidGrace = 500 * time.Millisecond
	ctx := ctxT(t)
	var stores []*mongo.Store
	for range 2 {
		st, err := mongo.Open(ctx, cfg)
		if err != nil {
			t.Fatal(err)
		}
		defer st.Close()
		stores = append(stores, st)
	}
	const (
		p        = "busy"
		writers  = 3
		records  = 6 // per writer
		updates  = 1 // per record
		readers  = 2
		pageSize = 7
	)

	var (
		mu    sync.Mutex
		acked = map[string]int{} // record id → generation acknowledged
		// halfway is closed when half the records are acknowledged.
		halfway     = make(chan struct{})
		halfwayOnce sync.Once
		// progress wakes each reader after acknowledged writes.
		progress = make([]chan struct{}, readers)
	)
	for r := range progress {
		progress[r] = make(chan struct{}, 1)
	}
	ack := func(id string, gen int) {
		mu.Lock()
		acked[id] = gen
		n := len(acked)
		mu.Unlock()
		if n >= writers*records/2 {
			halfwayOnce.Do(func() { close(halfway) })
		}
		for _, ch := range progress {
			select {
			case ch <- struct{}{}:
			default:
			}
		}
	}
	snapshot := func() map[string]int {
		mu.Lock()
		defer mu.Unlock()
		out := make(map[string]int, len(acked))
		for k, v := range acked {
			out[k] = v
		}
		return out
	}
	var wg sync.WaitGroup
	var writing atomic.Int32
	writing.Store(writers)
	// A writer that crashes after allocating a position, once the others are
	// under way: readers must void its position to get past it.
	wg.Add(1)
	go func() {
		defer wg.Done()
		select {
		case <-halfway:
		case <-ctx.Done():
			return
		}
		if _, err := stores[1].Allocate(ctx, p, 1); err != nil {
			t.Error(err)
		}
	}()
	for w := range writers {
		wg.Add(1)
		go func() {
			defer wg.Done()
			defer func() {
				writing.Add(-1)
				for _, ch := range progress {
					select {
					case ch <- struct{}{}:
					default:
					}
				}
			}()
			st := stores[w%2]
			revs := map[string]string{}
			for gen := 1; gen <= 1+updates; gen++ {
				for r := range records {
					id := fmt.Sprintf("w%d-r%d", w, r)
					res, err := st.WriteRecords(ctx, []domain.RecordWrite{rec(p, id, "u", gen, revs[id])})
					if err != nil || res[0] != nil {
						t.Errorf("write %s gen %d: %v %v", id, gen, err, res)
						return
					}
					revs[id] = rec(p, id, "u", gen, "").Record.Rev
					ack(id, gen)
				}
			}
		}()
	}
	for r := range readers {
		wg.Add(1)
		go func() {
			defer wg.Done()
			st := stores[r%2]
			seen := map[string]int{}
			var since int64
			for round := 0; ; round++ {
				last := writing.Load() == 0
				want := snapshot()
				for {
					page, err := st.Changes(ctx, domain.ChangesQuery{ProjectID: p, Since: since, Limit: pageSize})
					if err != nil {
						t.Errorf("reader %d: %v", r, err)
						return
					}
					if page.Next < since {
						t.Errorf("reader %d: cursor went back from %d to %d", r, since, page.Next)
						return
					}
					for _, rc := range page.Records {
						if rc.Seq <= since || rc.Seq > page.Next {
							t.Errorf("reader %d: record at %d outside (%d, %d]", r, rc.Seq, since, page.Next)
						}
						gen, _ := strconv.Atoi(strings.SplitN(rc.Rev, "-", 2)[0])
						seen[rc.ID] = max(seen[rc.ID], gen)
					}
					since = page.Next
					if !page.More {
						break
					}
				}
				for id, gen := range want {
					if seen[id] < gen {
						t.Errorf("reader %d round %d: skipped %s: saw generation %d, %d was acknowledged", r, round, id, seen[id], gen)
						return
					}
				}
				if !last {
					<-progress[r] // more writes were acknowledged, or the writers are done
					continue
				}
				if len(seen) != writers*records {
					t.Errorf("reader %d saw %d records, want %d", r, len(seen), writers*records)
				}
				t.Logf("reader %d: %d rounds of paging until More was false", r, round+1)
				return
			}
		}()
	}
	wg.Wait()
}

// TestSingleWinners checks the operations where exactly one of several
// concurrent callers may succeed.
func TestSingleWinners(t *testing.T) {
	st := mongotest.Open(t)
	ctx := ctxT(t)
	now := time.Now().UTC().Truncate(time.Millisecond)
	if err := st.CreateDevice(ctx, domain.Device{ID: "d1", ProjectID: "p", EnrollmentHash: "h1",
		EnrollmentExpiresAt: now.Add(time.Hour), CreatedAt: now}); err != nil {
		t.Fatal(err)
	}
	if err := st.CreateRefreshToken(ctx, domain.RefreshToken{Hash: "t1", FamilyID: "f", Subject: "u",
		ExpiresAt: now.Add(time.Hour), CreatedAt: now}); err != nil {
		t.Fatal(err)
	}
	const n = 12
	var enrolled, spent, created atomic.Int32
	var wg sync.WaitGroup
	for i := range n {
		wg.Add(3)
		go func() {
			defer wg.Done()
			d, err := st.EnrollDevice(ctx, "h1", map[string]string{"who": strconv.Itoa(i)}, now)
			switch {
			case err == nil:
				enrolled.Add(1)
				if d.EnrolledAt == nil || d.Info["who"] != strconv.Itoa(i) {
					t.Errorf("enrolled device %+v", d)
				}
			case !errors.Is(err, domain.ErrStale):
				t.Errorf("enroll: %v", err)
			}
		}()
		go func() {
			defer wg.Done()
			tok, err := st.SpendRefreshToken(ctx, "t1", now.Add(time.Duration(i)*time.Millisecond))
			switch {
			case err == nil:
				spent.Add(1)
			case errors.Is(err, domain.ErrStale):
				if tok.SpentAt == nil || tok.Hash != "t1" {
					t.Errorf("replayed token %+v", tok)
				}
			default:
				t.Errorf("spend: %v", err)
			}
		}()
		go func() {
			defer wg.Done()
			v, ok, err := st.PutSettingIfAbsent(ctx, "k", strconv.Itoa(i))
			if err != nil || v == "" {
				t.Errorf("PutSettingIfAbsent = %q, %v", v, err)
			}
			if ok {
				created.Add(1)
			}
		}()
	}
	wg.Wait()
	if enrolled.Load() != 1 || spent.Load() != 1 || created.Load() != 1 {
		t.Fatalf("winners: enroll %d, spend %d, setting %d; want 1 each", enrolled.Load(), spent.Load(), created.Load())
	}
	if _, err := st.EnrollDevice(ctx, "nope", nil, now); !errors.Is(err, domain.ErrNotFound) {
		t.Fatalf("unknown code: %v", err)
	}
	if _, err := st.SpendRefreshToken(ctx, "nope", now); !errors.Is(err, domain.ErrNotFound) {
		t.Fatalf("unknown token: %v", err)
	}
}

// TestIdentityAndForms is a quick pass over the rest of the contract (the
// conformance suite covers it in depth).
func TestIdentityAndForms(t *testing.T) {
	st := mongotest.Open(t)
	ctx := ctxT(t)
	now := time.Now().UTC().Truncate(time.Millisecond)

	u := domain.User{Username: "ann", DisplayName: "Ann", PasswordHash: "h", CreatedAt: now, UpdatedAt: now, TokensValidAfter: now}
	if err := st.CreateUser(ctx, u); err != nil {
		t.Fatal(err)
	}
	if err := st.CreateUser(ctx, u); !errors.Is(err, domain.ErrExists) {
		t.Fatalf("duplicate user: %v", err)
	}
	u.TokensValidAfter = time.Time{}
	u.Admin = true
	if err := st.UpdateUser(ctx, u); err != nil {
		t.Fatal(err)
	}
	if got, err := st.GetUser(ctx, "ann"); err != nil || got != u {
		t.Fatalf("GetUser = %+v, %v; want %+v", got, err, u)
	}
	if err := st.UpdateUser(ctx, domain.User{Username: "zed"}); !errors.Is(err, domain.ErrNotFound) {
		t.Fatalf("update unknown user: %v", err)
	}

	v := domain.FormVersion{ProjectID: "p", FormID: "f", Version: "1", Title: "T1", Policy: domain.PolicyMerge,
		Definition: json.RawMessage(`{"title":"T1","schema":{"type":"object"}}`), CreatedAt: now, UpdatedAt: now}
	if created, err := st.PutFormVersion(ctx, v); err != nil || !created {
		t.Fatalf("PutFormVersion = %v, %v", created, err)
	}
	if created, err := st.PutFormVersion(ctx, v); err != nil || created {
		t.Fatalf("replace draft = %v, %v", created, err)
	}
	pub, err := st.PublishFormVersion(ctx, "p", "f", "1", now)
	if err != nil || pub.State != domain.VersionPublished || string(pub.Definition) != string(v.Definition) {
		t.Fatalf("publish = %+v, %v", pub, err)
	}
	if _, err := st.PutFormVersion(ctx, v); !errors.Is(err, domain.ErrStale) {
		t.Fatalf("overwrite published: %v", err)
	}
	f, err := st.GetForm(ctx, "p", "f")
	if err != nil || f.CurrentVersion != "1" || f.State != domain.FormOpen || len(f.Versions) != 1 || f.Versions[0].Definition != nil {
		t.Fatalf("GetForm = %+v, %v", f, err)
	}
	if err := st.CloseForm(ctx, "p", "f", now); err != nil {
		t.Fatal(err)
	}
	if err := st.CloseForm(ctx, "p", "nope", now); !errors.Is(err, domain.ErrNotFound) {
		t.Fatalf("close unknown form: %v", err)
	}

	item := domain.QuarantineItem{ProjectID: "p", ID: "q1", RecordID: "r1", Submission: json.RawMessage(`{"a":1}`),
		Errors: []domain.Finding{{Path: "/a", Message: "bad"}}, LastSeen: now}
	got, err := st.PutQuarantine(ctx, item)
	if err != nil || got.Attempts != 1 || !got.FirstSeen.Equal(now) {
		t.Fatalf("PutQuarantine = %+v, %v", got, err)
	}
	item.LastSeen = now.Add(time.Second)
	if got, err = st.PutQuarantine(ctx, item); err != nil || got.Attempts != 2 || !got.FirstSeen.Equal(now) {
		t.Fatalf("PutQuarantine again = %+v, %v", got, err)
	}
	if err := st.ResolveQuarantine(ctx, "p", []string{"r1"}, now); err != nil {
		t.Fatal(err)
	}
	if items, _, err := st.ListQuarantine(ctx, "p", domain.QuarantineFilter{States: []string{domain.QuarantineOpen}}, "", 10); err != nil || len(items) != 0 {
		t.Fatalf("unresolved = %+v, %v", items, err)
	}

	for i := range 5 {
		if _, err := st.AppendAudit(ctx, domain.AuditEvent{Type: "login", Actor: "ann", Time: now,
			Detail: map[string]string{"n": strconv.Itoa(i), "a.b": "dotted"}}); err != nil {
			t.Fatal(err)
		}
	}
	var all []domain.AuditEvent
	cursor := ""
	for {
		evs, next, err := st.ListAudit(ctx, domain.AuditFilter{Actor: "ann"}, cursor, 2)
		if err != nil {
			t.Fatal(err)
		}
		all = append(all, evs...)
		if next == "" {
			break
		}
		cursor = next
	}
	if len(all) != 5 || all[0].Detail["n"] != "4" || all[4].Detail["a.b"] != "dotted" {
		t.Fatalf("audit = %+v", all)
	}
}
