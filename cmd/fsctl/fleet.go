package main

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"math/rand/v2"
	"net/http"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/google/uuid"

	"github.com/fieldsync/fieldsync/api"
)

// fleetConfig is what one fsctl load run does.
type fleetConfig struct {
	project, form, version string
	// samples are the data of new records, used in turn; nil makes them with
	// genSurvey.
	samples  []json.RawMessage
	devices  int
	batch    int
	total    int64         // new records in all; 0: until duration
	duration time.Duration // 0: until total
	pace     time.Duration // mean pause of a tablet between two syncs
	flaky    float64       // share of device requests cut
	edits    float64       // share of new records their tablet edits again offline
	shared   float64       // share of new records an analyst edits too (and hands to another tablet)
	seed     uint64
}

// fleetMaxAttempts bounds the tries of one push or pull page: a tablet that
// cannot get a batch through in that many tries keeps it in its outbox and
// tries again at its next sync.
const fleetMaxAttempts = 12

// fleet is one run: the tablets, the analysts who edit behind them, and the
// ledger of every acknowledgement the server gave.
type fleet struct {
	cfg   fleetConfig
	e     *env
	s     *session // the caller's: a manager, who is also the analyst
	hc    *http.Client
	flaky *flakyTransport // nil without --flaky
	led   *ledger
	bar   *progress

	devices []*fleetDevice
	claimed atomic.Int64 // new records handed to tablets
	shareCh chan shareJob

	mu       sync.Mutex
	analysts []*fleetStats
	firstErr error // the first failure of a tablet, for the exit message
}

// fleetStats are the figures of one tablet or analyst; each keeps its own,
// without locks, and the run adds them up at the end.
type fleetStats struct {
	lat      map[string][]time.Duration // answered requests, by endpoint
	statuses map[string]int             // push results
	errs     map[string]int             // failed tries, by kind
	retries  int
	pushed   int // items in answered pushes
	pulled   int // records in the tablets' own pulls
	failed   int // batches that did not get through at a sync
	gaveUp   int // of them, those refused for good (not tried again)
	firstErr error
}

func newFleetStats() *fleetStats {
	return &fleetStats{lat: map[string][]time.Duration{}, statuses: map[string]int{}, errs: map[string]int{}}
}

func (st *fleetStats) add(o *fleetStats) {
	for k, v := range o.lat {
		st.lat[k] = append(st.lat[k], v...)
	}
	for k, v := range o.statuses {
		st.statuses[k] += v
	}
	for k, v := range o.errs {
		st.errs[k] += v
	}
	st.retries += o.retries
	st.pushed += o.pushed
	st.pulled += o.pulled
	st.failed += o.failed
	if st.firstErr == nil {
		st.firstErr = o.firstErr
	}
}

// errKind names a failed try for the counts: the problem code, or
// "network" for a cut or refused connection.
func errKind(err error) string {
	var p *api.Problem
	if errors.As(err, &p) {
		return p.Code
	}
	return "network"
}

// retriable says whether a try that failed with err is worth repeating as
// it is: the link failed, or the server asked to come back later.
func retriable(err error) bool {
	var p *api.Problem
	if !errors.As(err, &p) {
		return true // no answer: a cut, a reset, a timeout
	}
	return p.Status == http.StatusTooManyRequests || p.Status == http.StatusRequestTimeout || p.Status >= 500 ||
		p.Code == api.CodeBodyTooSlow
}

// backoff is the pause before try n+1 (from 1): 50 ms doubling to 2 s, with
// jitter, or what the server asked for.
func backoff(rng *rand.Rand, n int, err error) time.Duration {
	var p *api.Problem
	if errors.As(err, &p) && p.RetryAfter > 0 {
		return p.RetryAfter
	}
	d := min(2*time.Second, 50*time.Millisecond<<min(n-1, 6))
	return d/2 + time.Duration(rng.Int64N(int64(d)))
}

// ledgerRec is what the server acknowledged of one record.
type ledgerRec struct {
	gen  int      // the highest generation acknowledged
	revs []string // the revisions acknowledged at gen (one, unless two edits forked)
	// conflicts are the tablets whose push of this record answered conflict:
	// each must be found among the record's recorded conflicts.
	conflicts []string
}

// ledger holds every acknowledgement of the run, by record id.
type ledger struct {
	mu   sync.Mutex
	recs map[string]*ledgerRec
}

// revGen reads the generation of a rev ("3-9c1f…" → 3); 0 when it has none.
func revGen(rev string) int {
	g, _, _ := strings.Cut(rev, "-")
	n, _ := strconv.Atoi(g)
	return n
}

// ack notes that the server answered rev for record id; conflictBy is the
// tablet whose push answered conflict, or "".
func (l *ledger) ack(id, rev, conflictBy string) {
	if rev == "" {
		return
	}
	g := revGen(rev)
	l.mu.Lock()
	defer l.mu.Unlock()
	r := l.recs[id]
	if r == nil {
		r = &ledgerRec{}
		l.recs[id] = r
	}
	switch {
	case g > r.gen:
		r.gen, r.revs = g, append(r.revs[:0], rev)
	case g == r.gen && !containsString(r.revs, rev):
		r.revs = append(r.revs, rev)
	}
	if conflictBy != "" {
		r.conflicts = append(r.conflicts, conflictBy)
	}
}

func containsString(list []string, s string) bool {
	for _, x := range list {
		if x == s {
			return true
		}
	}
	return false
}

// shareJob is a record an analyst edits behind its tablet's back: the
// tablet's own offline edit of it waits (gate) until the analyst's is in, so
// the tablet pushes an edit of a revision that is no longer current, as a
// tablet that was offline all day does.
type shareJob struct {
	id, rev string
	data    json.RawMessage
	gate    chan struct{}
}

// fleetDevice is one enrolled virtual tablet.
type fleetDevice struct {
	f       *fleet
	n       int
	id      string
	c       *api.Client
	refresh string
	rng     *rand.Rand
	st      *fleetStats
	cursor  string
	// outbox holds the edits made offline, in the order made.
	outbox []outboxItem
	// seenAssigned are the records handed to this tablet that it edited.
	seenAssigned map[string]bool
	seq          int
}

// outboxItem is one submission waiting to be pushed; gate, when not nil,
// holds it back until closed (see shareJob).
type outboxItem struct {
	sub  api.Submission
	gate chan struct{}
}

// sleep pauses for d, or not at all in tests (env.sleep).
func (f *fleet) sleep(ctx context.Context, d time.Duration) error {
	if d <= 0 {
		return ctx.Err()
	}
	return f.e.wait(ctx, d)
}

// run is the tablet's life: sync, pause, sync, until its share of the new
// records is sent and its outbox is empty, or ctx ends.
func (d *fleetDevice) run(ctx context.Context) {
	pace := d.f.cfg.pace
	// Tablets do not all start at once.
	if d.f.sleep(ctx, time.Duration(d.rng.Float64()*float64(pace))) != nil {
		return
	}
	for ctx.Err() == nil {
		batch, fresh := d.nextBatch(ctx)
		if len(batch) == 0 {
			return
		}
		res, err := d.push(ctx, batch, fresh)
		if err != nil {
			if ctx.Err() != nil {
				return
			}
			d.st.failed++
			if !retriable(err) {
				// The server refuses the batch as such (a revoked tablet, a
				// project gone): sending it again changes nothing.
				d.st.gaveUp++
				return
			}
			// Kept for the next sync, as a tablet keeps its outbox.
			back := make([]outboxItem, 0, len(batch)+len(d.outbox))
			for _, s := range batch {
				back = append(back, outboxItem{sub: s})
			}
			d.outbox = append(back, d.outbox...)
		} else {
			d.absorb(batch, fresh, res)
		}
		d.pull(ctx)
		if len(d.outbox) == 0 && d.f.cfg.total > 0 && d.f.claimed.Load() >= d.f.cfg.total {
			return // nothing left to send: no pause before finding that out
		}
		// A tablet's pace: a pause of half to one and a half times --pace.
		if d.f.sleep(ctx, time.Duration((0.5+d.rng.Float64())*float64(pace))) != nil {
			return
		}
	}
}

// nextBatch fills a push: the outbox's edits first, then new records while
// the run wants more. fresh counts the new ones at the end of the batch.
// When all that is left are edits held back for an analyst, it waits.
func (d *fleetDevice) nextBatch(ctx context.Context) (batch []api.Submission, fresh int) {
	cfg := d.f.cfg
	for {
		rest := d.outbox[:0]
		for _, it := range d.outbox {
			ready := it.gate == nil
			if !ready {
				select {
				case <-it.gate:
					ready = true
				default:
				}
			}
			if ready && len(batch) < cfg.batch {
				batch = append(batch, it.sub)
			} else {
				rest = append(rest, it)
			}
		}
		d.outbox = rest
		if n := int64(cfg.batch - len(batch)); n > 0 {
			from := d.f.claimed.Add(n) - n
			if cfg.total > 0 {
				n = max(0, min(n, cfg.total-from))
			}
			now := time.Now().UTC()
			for range n {
				d.seq++
				var data json.RawMessage
				if cfg.samples != nil {
					data = cfg.samples[(int(from)+fresh)%len(cfg.samples)]
				} else {
					data = genSurvey(d.rng, fmt.Sprintf("tablet %d, interview %d", d.n, d.seq), now)
				}
				batch = append(batch, api.Submission{ID: uuid.NewString(), Form: cfg.form, FormVersion: cfg.version,
					ClientModifiedAt: now, Data: data})
				fresh++
			}
		}
		if len(batch) > 0 || len(d.outbox) == 0 {
			return batch, fresh
		}
		// Only gated edits are left: wait for the first, then look again.
		select {
		case <-d.outbox[0].gate:
		case <-ctx.Done():
			return nil, 0
		}
	}
}

// push sends one batch, and sends it again, the same items, after a cut or
// a server that asks to come back, as a tablet does: the server's
// idempotency makes the repeat safe. It fails when the batch did not get
// through (ctx ended, or too many tries, or a refusal). The progress bar
// counts the new records (the run's --total), not the edits.
func (d *fleetDevice) push(ctx context.Context, batch []api.Submission, fresh int) (api.PushResponse, error) {
	var res api.PushResponse
	err := d.try(ctx, "push", func() error {
		var err error
		res, err = d.c.Push(ctx, d.f.cfg.project, batch)
		return err
	})
	if err != nil {
		return res, err
	}
	d.st.pushed += len(batch)
	d.f.bar.add(fresh)
	return res, nil
}

// try runs one request until it is answered, timing the answered try under
// endpoint; it renews the tablet's token when it expired.
func (d *fleetDevice) try(ctx context.Context, endpoint string, do func() error) error {
	for n := 1; ; n++ {
		t0 := time.Now()
		err := do()
		if err == nil {
			d.st.lat[endpoint] = append(d.st.lat[endpoint], time.Since(t0))
			return nil
		}
		if ctx.Err() != nil {
			return err
		}
		d.st.errs[endpoint+" "+errKind(err)]++
		if api.IsCode(err, api.CodeUnauthorized) && d.refresh != "" {
			tok, rerr := d.c.Refresh(ctx, d.refresh)
			if rerr == nil {
				d.c.SetToken(tok.AccessToken)
				d.refresh = tok.RefreshToken
				continue
			}
			err = rerr
		} else if retriable(err) && n < fleetMaxAttempts {
			d.st.retries++
			if d.f.sleep(ctx, backoff(d.rng, n, err)) != nil {
				return err
			}
			continue
		}
		if d.st.firstErr == nil {
			d.st.firstErr = fmt.Errorf("tablet %d: %s: %w", d.n, endpoint, err)
		}
		return err
	}
}

// absorb notes the answers of a push in the ledger, and makes the tablet's
// offline edits of the new records it goes back to.
func (d *fleetDevice) absorb(batch []api.Submission, fresh int, res api.PushResponse) {
	cfg := d.f.cfg
	firstNew := len(batch) - fresh
	for i, r := range res.Results {
		d.st.statuses[r.Status]++
		if i >= len(batch) || r.ID != batch[i].ID {
			d.st.errs["push results out of order"]++
			continue
		}
		conflictBy := ""
		if r.Status == api.PushConflict {
			conflictBy = d.id
		}
		d.f.led.ack(r.ID, r.Rev, conflictBy)
		if i < firstNew || r.Status != api.PushCreated || d.rng.Float64() >= cfg.edits {
			continue
		}
		// The enumerator goes back to this interview before the next sync.
		data, err := genEdit(d.rng, batch[i].Data, fmt.Sprintf("tablet %d", d.n), true)
		if err != nil {
			continue
		}
		rev := r.Rev
		it := outboxItem{sub: api.Submission{ID: r.ID, Form: batch[i].Form, FormVersion: batch[i].FormVersion,
			BaseRev: &rev, ClientModifiedAt: time.Now().UTC(), Data: data}}
		if d.rng.Float64() < cfg.shared/max(cfg.edits, cfg.shared) {
			job := shareJob{id: r.ID, rev: r.Rev, data: batch[i].Data, gate: make(chan struct{})}
			select {
			case d.f.shareCh <- job:
				it.gate = job.gate
			default: // the analysts are busy: this one stays the tablet's alone
			}
		}
		d.outbox = append(d.outbox, it)
	}
}

// pull takes the changes the tablet may see since its last pull; a record an
// analyst handed to it is edited offline for the next sync.
func (d *fleetDevice) pull(ctx context.Context) {
	for {
		var page api.PullResponse
		err := d.try(ctx, "pull", func() error {
			var err error
			page, err = d.c.Pull(ctx, d.f.cfg.project, d.cursor, api.MaxPullLimit)
			return err
		})
		if err != nil {
			return
		}
		d.st.pulled += len(page.Changes)
		for _, rec := range page.Changes {
			if rec.DeviceID == d.id || d.seenAssigned[rec.ID] || rec.Deleted || !containsString(rec.AssignedTo, "device:"+d.id) {
				continue
			}
			d.seenAssigned[rec.ID] = true
			data, err := genEdit(d.rng, rec.Data, fmt.Sprintf("tablet %d", d.n), true)
			if err != nil {
				continue
			}
			rev := rec.Rev
			d.outbox = append(d.outbox, outboxItem{sub: api.Submission{ID: rec.ID, Form: rec.Form, FormVersion: rec.FormVersion,
				BaseRev: &rev, ClientModifiedAt: time.Now().UTC(), Data: data}})
		}
		d.cursor = page.Next
		if !page.More {
			return
		}
	}
}

// analyst corrects the records of shareCh while the fleet pushes: a PUT of
// the revision its tablet was acknowledged, then, for half of them, a PATCH
// that hands the record to another tablet, which pulls it and edits it too.
func (f *fleet) analyst(ctx context.Context, k int) {
	st := newFleetStats()
	defer func() {
		f.mu.Lock()
		f.analysts = append(f.analysts, st)
		f.mu.Unlock()
	}()
	rng := rand.New(rand.NewPCG(f.cfg.seed, uint64(1<<32+k)))
	timed := func(endpoint string, do func(c *api.Client) error) error {
		t0 := time.Now()
		err := f.s.do(ctx, do)
		if err != nil {
			st.errs[endpoint+" "+errKind(err)]++
			if st.firstErr == nil && ctx.Err() == nil {
				st.firstErr = fmt.Errorf("analyst: %s: %w", endpoint, err)
			}
			return err
		}
		st.lat[endpoint] = append(st.lat[endpoint], time.Since(t0))
		return nil
	}
	for {
		var job shareJob
		select {
		case job = <-f.shareCh:
		case <-ctx.Done():
			return
		}
		data, err := genEdit(rng, job.data, "analyst", false)
		if err == nil {
			var rec api.Record
			if timed("record_put", func(c *api.Client) error {
				var err error
				rec, err = c.CorrectRecord(ctx, f.cfg.project, job.id, job.rev, data)
				return err
			}) == nil {
				f.led.ack(job.id, rec.Rev, "")
				if len(f.devices) > 1 && rng.IntN(2) == 0 {
					to := []string{"device:" + f.devices[rng.IntN(len(f.devices))].id}
					if timed("record_patch", func(c *api.Client) error {
						var err error
						rec, err = c.PatchRecord(ctx, f.cfg.project, job.id, api.RecordPatch{AssignedTo: &to})
						return err
					}) == nil {
						f.led.ack(job.id, rec.Rev, "")
					}
				}
			}
		}
		close(job.gate)
	}
}
