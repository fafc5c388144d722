package e2e

import (
	"context"
	"fmt"
	"math/rand/v2"
	"sync"
	"testing"
	"time"

	"github.com/google/uuid"

	"github.com/fieldsync/fieldsync/api"
	"github.com/fieldsync/fieldsync/internal/domain"
	"github.com/fieldsync/fieldsync/internal/records"
)

// TestNoSkipAcrossInstances checks protocol.md §3's guarantee with two server
// instances on one database: a client that pulls until more is false has every
// change committed before it started, even while others push through the other
// instance.
//
// Pushers (enrolled tablets) push batches of new records and edits (a few of them
// tombstones) of their own earlier records, each batch through the other
// instance than the one before, and remember every acknowledged revision.
// Pullers (an analyst who sees everything, and two tablets who see their own
// records and those of the shared form) pull until more is false again and again
// while the pushes go on, each page through the other instance than the page
// before, and remember the last revision they got of every record. Each pull
// round starts after a push was acknowledged (no sleeps), so rounds interleave
// with the pushes. When every pusher is done, each puller pulls until more is
// false once more from where it stood. Then, for every puller:
//   - every acknowledged record it may see was pulled, and the last revision it
//     got is the record's last acknowledged one (nothing skipped, nothing stale);
//   - it got nothing it may not see, and nothing nobody acknowledged;
//   - no page held a record twice, no cursor went back, and no record went back
//     to an older generation.
func TestNoSkipAcrossInstances(t *testing.T) {
	for _, be := range backends() {
		t.Run(be.name, func(t *testing.T) {
			t.Parallel() // FerretDB waits much on its own locks: overlap it
			// SQLite takes much data. FerretDB scans whole collections and
			// serialises writes, so the MongoDB run is small; many pushers of
			// small batches leave the most feed positions allocated but not yet
			// written while others pull. Even so a pull rarely meets such a
			// hole here: with Changes changed to read past holes, 1 to 3 of 4
			// runs at 8×6×2 failed, and under the race detector pulls hardly
			// ever meet one. The MongoDB run is foremost a test of the whole
			// stack on that store; the store's own tests stage holes.
			size := noSkipSize{pushers: 4, batches: 30, items: 20, limit: 25}
			switch {
			case be.small && raceEnabled:
				size = noSkipSize{pushers: 6, batches: 4, items: 2, limit: 5}
			case be.small:
				size = noSkipSize{pushers: 8, batches: 6, items: 2, limit: 7}
			case raceEnabled:
				size = noSkipSize{pushers: 4, batches: 16, items: 20, limit: 25}
			}
			runNoSkip(t, be.open(t), size)
		})
	}
}

type noSkipSize struct {
	pushers, batches, items int
	limit                   int // pull page size
}

// acked is the last acknowledged state of a record.
type acked struct {
	rev   string
	owner string // the pusher's subject
	form  string
}

const (
	privateForm = "visits" // each tablet sees its own records
	sharedForm  = "sites"  // "shared": every tablet sees every record
)

type noSkipRun struct {
	t    *testing.T
	c    *cluster
	size noSkipSize
	devs []device
	acks *signal // fired after every acknowledged push
}

func runNoSkip(t *testing.T, stores [2]domain.Store, size noSkipSize) {
	c := newCluster(t, stores)
	c.publish(privateForm, "1", siteForm(false))
	c.publish(sharedForm, "1", siteForm(true))
	r := &noSkipRun{t: t, c: c, size: size, acks: newSignal()}
	analyst := c.addAnalyst("analyst1")
	for i := range size.pushers {
		r.devs = append(r.devs, c.addDevice(fmt.Sprintf("tablet-%d", i)))
	}
	pullers := []*puller{
		{name: "analyst", cl: c.clients(analyst)},
		{name: "tablet-0", cl: c.clients(r.devs[0].token), subject: r.devs[0].subject, offset: 1},
		{name: "tablet-1", cl: c.clients(r.devs[1].token), subject: r.devs[1].subject},
	}

	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Minute)
	defer cancel()
	start := time.Now()
	results := make([]map[string]acked, size.pushers)
	var pushers sync.WaitGroup
	for p := range size.pushers {
		pushers.Go(func() { results[p] = r.pusher(ctx, p) })
	}
	done := make(chan struct{})
	var pulls sync.WaitGroup
	for _, pl := range pullers {
		pl.project, pl.limit, pl.seen, pl.gen = c.project, size.limit, map[string]string{}, map[string]int{}
		pulls.Go(func() { pl.run(ctx, r.acks, done) })
	}
	pushers.Wait()
	close(done)
	pulls.Wait()

	final := map[string]acked{}
	for _, m := range results {
		for id, a := range m {
			final[id] = a
		}
	}
	t.Logf("%d records acknowledged by %d pushers in %v", len(final), size.pushers, time.Since(start).Round(time.Millisecond))
	if want := size.pushers * size.batches * size.items / 2; len(final) < want && !t.Failed() {
		t.Fatalf("only %d records acknowledged, want at least %d", len(final), want)
	}
	for _, in := range c.inst {
		t.Log(in.storeTimings("WriteRecords", "GetRecords", "GetRevision", "Changes", "ResolveQuarantine"))
	}
	for _, pl := range pullers {
		pl.check(final)
		t.Logf("%s: %d pull rounds, %d pages, %d changes, %d distinct records", pl.name, pl.rounds, pl.pages, pl.changes, len(pl.seen))
		if len(pl.problems) > 0 {
			t.Errorf("%s: %d problems:\n\t%s", pl.name, len(pl.problems), short(pl.problems, 15))
		}
	}
}

// pusher pushes the batches of tablet p and returns what was acknowledged.
func (r *noSkipRun) pusher(ctx context.Context, p int) map[string]acked {
	dev := r.devs[p]
	cl := r.c.clients(dev.token)
	rng := rand.New(rand.NewPCG(uint64(p)+1, 7))
	mine := map[string]acked{}
	var ids []string
	visits := map[string]int{}
	for b := range r.size.batches {
		var subs []api.Submission
		picked := map[string]bool{}
		now := time.Now().UTC()
		for k := range r.size.items {
			if len(ids) > 0 && rng.IntN(4) == 0 {
				id := ids[rng.IntN(len(ids))]
				if !picked[id] {
					picked[id] = true
					visits[id]++
					a := mine[id]
					base := a.rev
					subs = append(subs, api.Submission{ID: id, Form: a.form, FormVersion: "1", BaseRev: &base,
						ClientModifiedAt: now, Deleted: rng.IntN(10) == 0, Data: visitData(id, visits[id], rng)})
					continue
				}
			}
			id := uuid.NewString()
			form := privateForm
			if rng.IntN(5) == 0 {
				form = sharedForm
			}
			picked[id] = true
			subs = append(subs, api.Submission{ID: id, Form: form, FormVersion: "1", ClientModifiedAt: now,
				Data: visitData(fmt.Sprintf("p%d-b%d-k%d", p, b, k), 0, rng)})
		}
		resp, retried, err := pushRetry(ctx, cl[(p+b)%2], r.c.project, subs)
		if err != nil {
			r.t.Errorf("tablet-%d batch %d: push: %v", p, b, err)
			return mine
		}
		for i, res := range resp.Results {
			sub := subs[i]
			want := api.PushCreated
			if sub.BaseRev != nil {
				want = api.PushUpdated
			}
			if res.Status != want && !(retried && res.Status == api.PushUnchanged) || res.ID != sub.ID || res.Rev == "" {
				r.t.Errorf("tablet-%d batch %d item %d: got %+v, want status %s", p, b, i, res, want)
				continue
			}
			if sub.BaseRev == nil {
				ids = append(ids, sub.ID)
			}
			mine[sub.ID] = acked{rev: res.Rev, owner: dev.subject, form: sub.Form}
		}
		r.acks.fire()
	}
	return mine
}

// visitData is a valid record of siteForm.
func visitData(site string, visit int, rng *rand.Rand) []byte {
	return fmt.Appendf(nil, `{"site":%q,"visit":%d,"a":"a%d","score":%d,"location":{"latitude":%.5f,"longitude":%.5f}}`,
		site, visit, rng.IntN(1000), 1+rng.IntN(5), -1.3+rng.Float64()/10, 36.8+rng.Float64()/10)
}

// pushRetry pushes, and pushes the same batch again while the server answers
// that it is busy (a retry is safe: revisions are deterministic). retried says
// an earlier attempt failed, so items it applied may answer unchanged.
func pushRetry(ctx context.Context, cl *api.Client, project string, subs []api.Submission) (resp api.PushResponse, retried bool, err error) {
	for attempt := 0; ; attempt++ {
		resp, err = push(ctx, cl, project, subs)
		if err == nil || !retryable(err) || attempt == 10 {
			return resp, attempt > 0, err
		}
	}
}

// puller is one client pulling the feed.
type puller struct {
	name    string
	cl      [2]*api.Client
	subject string // "" for a caller who sees every record
	offset  int    // which instance the first page goes to
	project string
	limit   int

	cursor  string
	since   int64
	seen    map[string]string // record id → last rev pulled
	gen     map[string]int    // record id → generation of that rev
	rounds  int
	pages   int
	changes int

	problems []string
}

// run pulls until more is false after each acknowledged push, until done is
// closed; then it pulls until more is false once more.
func (pl *puller) run(ctx context.Context, acks *signal, done <-chan struct{}) {
	for {
		next := acks.wait()
		if err := pl.pullThrough(ctx); err != nil {
			pl.problem("pull: %v", err)
			return
		}
		select {
		case <-done:
			if err := pl.pullThrough(ctx); err != nil {
				pl.problem("final pull: %v", err)
			}
			return
		case <-next:
		case <-ctx.Done():
			pl.problem("gave up: %v", ctx.Err())
			return
		}
	}
}

// pullThrough pulls pages until more is false, checking each page.
func (pl *puller) pullThrough(ctx context.Context) error {
	pl.rounds++
	for {
		var page api.PullResponse
		var err error
		for attempt := 0; ; attempt++ {
			page, err = pull(ctx, pl.cl[(pl.pages+pl.offset)%2], pl.project, pl.cursor, pl.limit)
			if err == nil || !retryable(err) || attempt == 10 {
				break
			}
		}
		if err != nil {
			return err
		}
		pl.pages++
		next, err := records.DecodeCursor(page.Next)
		if err != nil {
			return fmt.Errorf("page %d: cursor %q: %v", pl.pages, page.Next, err)
		}
		if next < pl.since {
			pl.problem("page %d: cursor went back from %d to %d", pl.pages, pl.since, next)
		}
		if len(page.Changes) > pl.limit {
			pl.problem("page %d: %d changes, limit %d", pl.pages, len(page.Changes), pl.limit)
		}
		onPage := map[string]bool{}
		for _, ch := range page.Changes {
			pl.changes++
			if onPage[ch.ID] {
				pl.problem("page %d: record %s twice", pl.pages, ch.ID)
			}
			onPage[ch.ID] = true
			if pl.subject != "" && ch.CreatedBy != pl.subject && ch.Form != sharedForm {
				pl.problem("page %d: got record %s of %s (form %s), not visible to it", pl.pages, ch.ID, ch.CreatedBy, ch.Form)
			}
			g := generation(ch.Rev)
			if g < pl.gen[ch.ID] {
				pl.problem("page %d: record %s went back from generation %d to %s", pl.pages, ch.ID, pl.gen[ch.ID], ch.Rev)
			}
			pl.gen[ch.ID] = g
			pl.seen[ch.ID] = ch.Rev
		}
		pl.cursor, pl.since = page.Next, next
		if !page.More {
			return nil
		}
	}
}

// check compares what the puller got with what was acknowledged.
func (pl *puller) check(final map[string]acked) {
	for id, a := range final {
		if pl.subject != "" && a.owner != pl.subject && a.form != sharedForm {
			continue
		}
		got, ok := pl.seen[id]
		switch {
		case !ok:
			pl.problem("never got record %s (%s, rev %s)", id, a.form, a.rev)
		case got != a.rev:
			pl.problem("record %s: last pulled rev %s, acknowledged %s", id, got, a.rev)
		}
	}
	for id := range pl.seen {
		if _, ok := final[id]; !ok {
			pl.problem("got record %s that no push acknowledged", id)
		}
	}
}

func (pl *puller) problem(format string, args ...any) {
	pl.problems = append(pl.problems, fmt.Sprintf(format, args...))
}
