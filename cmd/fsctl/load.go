package main

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"math/rand/v2"
	"net"
	"net/http"
	"os"
	"slices"
	"sort"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/fieldsync/fieldsync/api"
	"github.com/fieldsync/fieldsync/schemas"
)

// runLoad is fsctl load: a fleet of --devices virtual tablets against a
// running server, with the protocol's own moves, and a check at the end that
// nothing the server acknowledged was lost.
//
// Each tablet is a real device of the project, made with the caller's
// manager rights and enrolled with its one-use code like a tablet that scans
// the QR code (revoked at the end unless --keep-devices). At its own pace it
// pushes batches of --batch items (new records from --sample, one JSON object
// per line used in turn, or made up by a generator of perception-survey
// interviews), pulls what it may see, and edits some of its records offline
// (--edits). The caller, as an analyst, corrects a share of the records
// behind the tablets' backs (--shared) and hands half of those to another
// tablet, which edits them too: so merges and conflicts happen. --flaky cuts
// that share of the tablets' requests for real (the TCP connection is closed
// in the middle of the body, or once the server has begun to answer) and the
// tablet sends the very same batch again, so the server's idempotency is
// what carries the run.
//
// At the end the caller pulls the whole project and checks the ledger of
// acknowledgements: every acknowledged record present once, at the
// acknowledged revision or a later one, every conflict answered recorded on
// its record. Exit status 1 when that check fails, when an item was refused
// (a --sample the schema rejects), or when a batch could not be delivered.
func runLoad(ctx context.Context, e *env, args []string) error {
	fs := newFlags(e, "load", "--project P [--form F --version V] [--sample FILE] [--devices N] [--batch N] [--total N] [--duration D] [--pace D] [--flaky P] [--json]")
	project := fs.String("project", "", "the project to load (required; its records stay: use a test project)")
	form := fs.String("form", fleetGenForm, "the form of the submissions; without --sample it must be a published copy of the example form "+fleetGenForm)
	version := fs.String("version", "1", "the published form version")
	samplePath := fs.String("sample", "", "data of submissions: JSON objects, one per line (- reads standard input); without it the records are made up, ~1 KB each")
	setup := fs.Bool("setup", false, "first create the project (if it does not exist) and publish the example form "+fleetGenForm+" as --form --version")
	devices := fs.Int("devices", 4, "virtual tablets, each enrolled, with its own outbox and pace")
	fs.IntVar(devices, "tablets", 4, "the same as --devices")
	batch := fs.Int("batch", 50, "items per push (at most 1000)")
	total := fs.Int("total", 20000, "new records to send in all (0: until --duration passes)")
	duration := fs.Duration("duration", 0, "stop after this long (0: until --total are sent)")
	pace := fs.Duration("pace", 0, "mean pause of a tablet between two syncs (each pause is 0.5 to 1.5 times it; the first start is spread over it)")
	flaky := fs.Float64("flaky", 0, "share of the tablets' requests whose connection is cut mid-body or before the answer is read (0 to 0.5)")
	edits := fs.Float64("edits", 0.1, "share of new records their tablet edits again before its next sync")
	shared := fs.Float64("shared", 0.02, "share of new records an analyst (the caller) corrects too, half of them then handed to another tablet")
	dataDir := fs.String("data-dir", "", "the server's data directory (SQLite), to report its growth per record")
	metricsURL := fs.String("metrics-url", "", "the server's Prometheus metrics, for its peak RSS (default: the server's /metrics)")
	seed := fs.Uint64("seed", 0, "seed of the random choices (0: a new one each run)")
	jsonOut := fs.Bool("json", false, "print one JSON object of the figures instead of the summary")
	fs.Bool("pull", true, "kept for old scripts: the final pull always runs")
	keep := fs.Bool("keep-devices", false, "do not revoke the virtual tablets at the end")
	if _, err := parse(fs, args, 0, 0); err != nil {
		return err
	}
	if err := requireFlags(fs, map[string]string{"project": *project, "form": *form, "version": *version}); err != nil {
		return err
	}
	switch {
	case *devices < 1 || *devices > 100000:
		return fs.usageErrorf("--devices must be from 1 to 100000")
	case *batch < 1 || *batch > api.MaxPushItems:
		return fs.usageErrorf("--batch must be from 1 to %d", api.MaxPushItems)
	case *total < 0 || *duration < 0 || *pace < 0:
		return fs.usageErrorf("--total, --duration and --pace cannot be negative")
	case *total == 0 && *duration == 0:
		return fs.usageErrorf("give --total, --duration or both")
	case *flaky < 0 || *flaky > 0.5:
		return fs.usageErrorf("--flaky must be from 0 to 0.5")
	case *edits < 0 || *edits > 1 || *shared < 0 || *shared > 1:
		return fs.usageErrorf("--edits and --shared must be from 0 to 1")
	}
	cfg := fleetConfig{project: *project, form: *form, version: *version, devices: *devices, batch: *batch,
		total: int64(*total), duration: *duration, pace: *pace, flaky: *flaky, edits: *edits, shared: *shared, seed: *seed}
	if *samplePath != "" {
		var err error
		if cfg.samples, err = readSamples(e, *samplePath); err != nil {
			return err
		}
	}
	if cfg.seed == 0 {
		cfg.seed = rand.Uint64()
	}
	out := e.stdout
	if *jsonOut {
		out = io.Discard // the narration; the figures come as JSON at the end
	}
	s, err := e.session(ctx)
	if err != nil {
		return err
	}
	if *setup {
		if err := loadSetup(ctx, s, cfg); err != nil {
			return err
		}
	}
	f := newFleet(e, s, cfg)
	var before int64
	if *dataDir != "" {
		if before, err = dirSizeAtRest(*dataDir, 10*time.Second); err != nil {
			return fmt.Errorf("--data-dir: %w", err)
		}
	}

	enrollStart := time.Now()
	err = f.enroll(ctx)
	if len(f.devices) > 0 && !*keep {
		defer func() { fmt.Fprintf(out, "Revoked the %d virtual tablets.\n", f.revoke(ctx)) }()
	}
	if err != nil {
		return err
	}
	fmt.Fprintf(out, "Enrolled %d virtual tablets in project %s in %s.\n", len(f.devices), cfg.project, time.Since(enrollStart).Round(time.Millisecond))

	// The metrics are read past --flaky: a cut sample would only be missing.
	rss := &rssSampler{url: *metricsURL, hc: &http.Client{Timeout: 5 * time.Second, Transport: f.plainTransport()}}
	if rss.url == "" {
		rss.url = strings.TrimRight(s.cfg.Server, "/") + "/metrics"
	}
	sctx, stopSampling := context.WithCancel(ctx)
	var sampling sync.WaitGroup
	sampling.Go(func() { rss.run(sctx, time.Second) })

	elapsed := f.run(ctx)
	if err := ctx.Err(); err != nil {
		stopSampling()
		return err
	}
	verdict, verr := f.verify(ctx)
	stopSampling()
	sampling.Wait()
	rss.sample(ctx) // and once more at the end
	if verr != nil {
		return fmt.Errorf("the final pull failed, so nothing is verified: %w", verr)
	}

	rep := f.report(elapsed, verdict)
	rep.ServerPeakRSS, err = rss.result()
	if err != nil && rep.ServerPeakRSS < 0 {
		fmt.Fprintf(e.stderr, "fsctl load: no server RSS from %s: %v\n", rss.url, err)
	}
	if *dataDir != "" {
		after, err := dirSizeAtRest(*dataDir, 10*time.Second)
		if err != nil {
			return fmt.Errorf("--data-dir: %w", err)
		}
		rep.DataDirBytes = after
		if created := rep.Statuses[api.PushCreated]; created > 0 {
			rep.BytesPerRecord = float64(after-before) / float64(created)
		}
	}
	if *jsonOut {
		enc := json.NewEncoder(e.stdout)
		if err := enc.Encode(rep); err != nil {
			return err
		}
	} else {
		rep.print(e.stdout)
	}
	if !verdict.ok() {
		return fmt.Errorf("verification failed: %d lost, %d duplicated, %d forked, %d conflicts not recorded (%s)",
			verdict.Lost, verdict.Duplicated, verdict.Forked, verdict.ConflictsUnrecorded, strings.Join(verdict.Examples, "; "))
	}
	if bad := rep.Statuses[api.PushRejected] + rep.Statuses[api.PushForbidden]; bad > 0 {
		return fmt.Errorf("%d submissions did not go in (rejected %d, forbidden %d): check --sample against the form's schema, and the project's quarantine",
			bad, rep.Statuses[api.PushRejected], rep.Statuses[api.PushForbidden])
	}
	if rep.FailedBatches > 0 {
		return fmt.Errorf("%d batches could not be delivered (first: %v)", rep.FailedBatches, f.firstErr)
	}
	return nil
}

// loadSetup creates the project unless it exists and publishes the example
// form as cfg.form version cfg.version unless that version exists.
func loadSetup(ctx context.Context, s *session, cfg fleetConfig) error {
	err := s.do(ctx, func(c *api.Client) error {
		_, err := c.CreateProject(ctx, cfg.project, "fsctl load")
		return err
	})
	var p *api.Problem
	if err != nil && !(errors.As(err, &p) && p.Status == http.StatusConflict) {
		return fmt.Errorf("--setup: creating project %s: %w", cfg.project, err)
	}
	err = s.do(ctx, func(c *api.Client) error {
		_, _, err := c.GetFormVersion(ctx, cfg.project, cfg.form, cfg.version)
		return err
	})
	if err == nil {
		return nil
	}
	if !errors.As(err, &p) || p.Status != http.StatusNotFound {
		return fmt.Errorf("--setup: %w", err)
	}
	def, err := schemas.Example(fleetGenForm)
	if err != nil {
		return err
	}
	return s.do(ctx, func(c *api.Client) error {
		if _, _, err := c.PutFormVersion(ctx, cfg.project, cfg.form, cfg.version, def); err != nil {
			return fmt.Errorf("--setup: %w", err)
		}
		if _, err := c.PublishFormVersion(ctx, cfg.project, cfg.form, cfg.version); err != nil {
			return fmt.Errorf("--setup: %w", err)
		}
		return nil
	})
}

// newFleet makes the run's shared parts: one HTTP transport for every
// tablet (a kept-alive connection each, as tablets have), cut by --flaky.
func newFleet(e *env, s *session, cfg fleetConfig) *fleet {
	var tr *http.Transport
	if e.httpClient != nil {
		if t, ok := e.httpClient.Transport.(*http.Transport); ok {
			tr = t.Clone()
		}
	}
	if tr == nil {
		tr = &http.Transport{
			Proxy:                 http.ProxyFromEnvironment,
			DialContext:           (&net.Dialer{Timeout: 30 * time.Second, KeepAlive: 30 * time.Second}).DialContext,
			ForceAttemptHTTP2:     true,
			TLSHandshakeTimeout:   10 * time.Second,
			ExpectContinueTimeout: time.Second,
		}
	}
	// One idle connection per tablet: fewer would close and redial
	// connections all run long, as no real fleet does.
	tr.MaxIdleConns = 0
	tr.MaxIdleConnsPerHost = cfg.devices + 8
	tr.IdleConnTimeout = 90 * time.Second
	var rt http.RoundTripper = tr
	f := &fleet{cfg: cfg, e: e, s: s, led: &ledger{recs: map[string]*ledgerRec{}},
		shareCh: make(chan shareJob, 4*cfg.devices+64)}
	if cfg.flaky > 0 {
		f.flaky = &flakyTransport{base: tr, p: cfg.flaky, rng: rand.New(rand.NewPCG(cfg.seed, 7))}
		dial := tr.DialContext
		if dial == nil {
			dial = (&net.Dialer{}).DialContext
		}
		tr.DialContext = f.flaky.dial(dial)
		rt = f.flaky
	}
	f.hc = &http.Client{Transport: rt, Timeout: e.requestTimeout()}
	return f
}

// plainTransport is the fleet's transport without the --flaky cuts.
func (f *fleet) plainTransport() http.RoundTripper {
	if f.flaky != nil {
		return f.flaky.base
	}
	return f.hc.Transport
}

// enroll makes and enrolls the tablets, a few at a time; on failure the
// tablets made so far are in f.devices, to be revoked.
func (f *fleet) enroll(ctx context.Context) error {
	stamp := f.e.clock().UTC().Format("2006-01-02T15:04:05Z")
	// Enrollment goes through a transport no --flaky cuts: the run is about
	// sync, and a lost enrollment answer spends the one-use code.
	plain := &http.Client{Transport: f.plainTransport(), Timeout: f.hc.Timeout}
	f.devices = make([]*fleetDevice, f.cfg.devices)
	var next atomic.Int64
	var mu sync.Mutex
	var firstErr error
	var wg sync.WaitGroup
	for range min(8, f.cfg.devices) {
		wg.Go(func() {
			for ctx.Err() == nil {
				k := int(next.Add(1)) - 1
				if k >= len(f.devices) {
					return
				}
				d, err := f.enrollOne(ctx, plain, stamp, k)
				mu.Lock()
				if d != nil {
					f.devices[k] = d
				}
				if err != nil && firstErr == nil {
					firstErr = err
				}
				stop := firstErr != nil
				mu.Unlock()
				if stop {
					return
				}
			}
		})
	}
	wg.Wait()
	made := f.devices[:0]
	for _, d := range f.devices {
		if d != nil {
			made = append(made, d)
		}
	}
	f.devices = made
	if firstErr == nil {
		firstErr = ctx.Err()
	}
	return firstErr
}

// enrollOne makes tablet k and enrolls it with its code; the device is
// returned (to be revoked) even when enrolling it failed.
func (f *fleet) enrollOne(ctx context.Context, plain *http.Client, stamp string, k int) (*fleetDevice, error) {
	var cd api.CreateDeviceResponse
	t0 := time.Now()
	err := f.s.do(ctx, func(c *api.Client) error {
		var err error
		cd, err = c.CreateDevice(ctx, f.cfg.project, fmt.Sprintf("fsctl load %s #%d", stamp, k+1))
		return err
	})
	if err != nil {
		return nil, fmt.Errorf("creating a virtual tablet (the load test needs manager rights in the project): %w", err)
	}
	d := &fleetDevice{f: f, n: k + 1, id: cd.DeviceID, st: newFleetStats(), seenAssigned: map[string]bool{},
		rng: rand.New(rand.NewPCG(f.cfg.seed, uint64(k)))}
	ec, err := api.NewClient(f.s.cfg.Server, api.WithHTTPClient(plain), api.WithUserAgent(userAgent()+" load"))
	if err != nil {
		return d, err
	}
	tok, err := ec.Enroll(ctx, cd.EnrollmentCode, map[string]string{"model": "fsctl load"})
	if err != nil {
		return d, fmt.Errorf("enrolling virtual tablet %s: %w", cd.DeviceID, err)
	}
	d.st.lat["enroll"] = append(d.st.lat["enroll"], time.Since(t0))
	d.refresh = tok.RefreshToken
	d.c, err = api.NewClient(f.s.cfg.Server, api.WithHTTPClient(f.hc), api.WithToken(tok.AccessToken), api.WithUserAgent(userAgent()+" load"))
	return d, err
}

// revoke revokes the tablets, a few at a time, even after Ctrl-C; it returns
// how many it revoked.
func (f *fleet) revoke(ctx context.Context) int {
	var n, next atomic.Int64
	var wg sync.WaitGroup
	for range min(8, len(f.devices)) {
		wg.Go(func() {
			for {
				k := int(next.Add(1)) - 1
				if k >= len(f.devices) {
					return
				}
				d := f.devices[k]
				rctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), requestTimeout)
				if err := f.s.do(rctx, func(c *api.Client) error { return c.RevokeDevice(rctx, f.cfg.project, d.id) }); err != nil {
					fmt.Fprintf(f.e.stderr, "fsctl load: revoking tablet %s: %v\n", d.id, err)
				} else {
					n.Add(1)
				}
				cancel()
			}
		})
	}
	wg.Wait()
	return int(n.Load())
}

// run lets the tablets and the analysts loose until the tablets are done
// (or --duration passes) and returns how long that took.
func (f *fleet) run(ctx context.Context) time.Duration {
	pctx := ctx
	if f.cfg.duration > 0 {
		var cancel context.CancelFunc
		pctx, cancel = context.WithTimeout(ctx, f.cfg.duration)
		defer cancel()
	}
	max := f.cfg.total
	if max == 0 {
		max = -1
	}
	f.bar = f.e.newProgress(max, "pushing", "items", false)
	defer f.bar.done()
	actx, stopAnalysts := context.WithCancel(pctx)
	var analysts sync.WaitGroup
	if f.cfg.shared > 0 {
		for k := range 2 {
			analysts.Go(func() { f.analyst(actx, k) })
		}
	}
	start := time.Now()
	var wg sync.WaitGroup
	for _, d := range f.devices {
		wg.Go(func() { d.run(pctx) })
	}
	wg.Wait()
	elapsed := time.Since(start)
	stopAnalysts()
	analysts.Wait()
	return elapsed
}

// loadReport is what fsctl load --json prints: one object, so that runs
// can be compared.
type loadReport struct {
	Devices  int     `json:"devices"`
	Batch    int     `json:"batch"`
	Flaky    float64 `json:"flaky"`
	Seed     uint64  `json:"seed"`
	Seconds  float64 `json:"seconds"` // the fleet's run, enrollment and final pull apart
	Pushed   int     `json:"pushed_items"`
	Pushes   int     `json:"pushes"`
	PushRate float64 `json:"push_per_s"` // acknowledged items per second
	// PullRate is the records per second of the final pull of the whole
	// project; TabletPulled the records the tablets' own pulls carried.
	PullRate     float64 `json:"pull_per_s"`
	TabletPulled int     `json:"tablet_pulled"`
	// Latency is per endpoint, of the answered requests, in milliseconds.
	Latency  map[string]latencySummary `json:"latency_ms"`
	Statuses map[string]int            `json:"statuses"`
	// Errors are the failed tries by endpoint and kind ("push network",
	// "push store_unavailable"); Retries how many were sent again.
	Errors        map[string]int `json:"errors"`
	Retries       int            `json:"retries"`
	Cuts          map[string]int `json:"cuts"`
	Deferred      int            `json:"deferred_batches"`
	FailedBatches int            `json:"failed_batches"`
	fleetVerdict
	OK             bool    `json:"ok"`
	DataDirBytes   int64   `json:"data_dir_bytes,omitempty"`
	BytesPerRecord float64 `json:"bytes_per_record,omitempty"`
	// ServerPeakRSS is the highest process_resident_memory_bytes seen on the
	// server's /metrics during the run; -1 when it could not be read.
	ServerPeakRSS int64 `json:"server_peak_rss_bytes"`
}

// latencySummary is the spread of one endpoint's answered requests.
type latencySummary struct {
	N   int     `json:"n"`
	P50 float64 `json:"p50"`
	P95 float64 `json:"p95"`
	P99 float64 `json:"p99"`
	Max float64 `json:"max"`
}

func summarize(l []time.Duration) latencySummary {
	slices.Sort(l)
	ms := func(d time.Duration) float64 { return float64(d.Microseconds()) / 1000 }
	q := func(p float64) float64 { return ms(l[min(len(l)-1, int(p*float64(len(l))))]) }
	return latencySummary{N: len(l), P50: q(0.50), P95: q(0.95), P99: q(0.99), Max: ms(l[len(l)-1])}
}

// report adds up the tablets' and analysts' figures.
func (f *fleet) report(elapsed time.Duration, v fleetVerdict) loadReport {
	all := newFleetStats()
	for _, d := range f.devices {
		all.add(d.st)
		f.firstErr = cmpOr(f.firstErr, d.st.firstErr)
	}
	for _, a := range f.analysts {
		all.add(a)
	}
	rep := loadReport{Devices: len(f.devices), Batch: f.cfg.batch, Flaky: f.cfg.flaky, Seed: f.cfg.seed,
		Seconds: elapsed.Seconds(), Pushed: all.pushed, Pushes: len(all.lat["push"]),
		PushRate: float64(all.pushed) / elapsed.Seconds(), TabletPulled: all.pulled,
		Latency: map[string]latencySummary{}, Statuses: all.statuses, Errors: all.errs, Retries: all.retries,
		Cuts: map[string]int{}, fleetVerdict: v, OK: v.ok()}
	if v.PullTook > 0 {
		rep.PullRate = float64(v.Pulled) / v.PullTook.Seconds()
	}
	for k, l := range all.lat {
		rep.Latency[k] = summarize(l)
	}
	for _, st := range pushStatuses {
		rep.Statuses[st] += 0 // every status present, 0 or not
	}
	if f.flaky != nil {
		rep.Cuts["mid_body"] = int(f.flaky.midBody.Load())
		rep.Cuts["before_answer"] = int(f.flaky.beforeAnswer.Load())
	}
	for _, d := range f.devices {
		rep.Deferred += d.st.failed - d.st.gaveUp
		rep.FailedBatches += d.st.gaveUp
	}
	return rep
}

func cmpOr(a, b error) error {
	if a != nil {
		return a
	}
	return b
}

// print writes the summary for people.
func (r loadReport) print(w io.Writer) {
	fmt.Fprintf(w, "Pushed %d items in %d pushes from %d tablets in %.1fs: %.0f items/s.\n", r.Pushed, r.Pushes, r.Devices, r.Seconds, r.PushRate)
	names := make([]string, 0, len(r.Latency))
	for k := range r.Latency {
		names = append(names, k)
	}
	sort.Strings(names)
	for _, k := range names {
		l := r.Latency[k]
		fmt.Fprintf(w, "  %-13s %6d requests, ms: p50 %.0f, p95 %.0f, p99 %.0f, max %.0f\n", k, l.N, l.P50, l.P95, l.P99, l.Max)
	}
	var parts []string
	for _, st := range pushStatuses {
		parts = append(parts, fmt.Sprintf("%s %d", st, r.Statuses[st]))
	}
	fmt.Fprintf(w, "Statuses: %s.\n", strings.Join(parts, ", "))
	if len(r.Cuts) > 0 || r.Retries > 0 {
		fmt.Fprintf(w, "Connections cut: %d mid-body, %d before the answer; %d tries sent again.\n", r.Cuts["mid_body"], r.Cuts["before_answer"], r.Retries)
	}
	if len(r.Errors) > 0 {
		keys := make([]string, 0, len(r.Errors))
		for k := range r.Errors {
			keys = append(keys, k)
		}
		sort.Strings(keys)
		parts = parts[:0]
		for _, k := range keys {
			parts = append(parts, fmt.Sprintf("%s %d", k, r.Errors[k]))
		}
		fmt.Fprintf(w, "Failed tries: %s.\n", strings.Join(parts, ", "))
	}
	if r.FailedBatches > 0 || r.Deferred > 0 {
		fmt.Fprintf(w, "Batches put off to a later sync: %d; given up: %d.\n", r.Deferred, r.FailedBatches)
	}
	fmt.Fprintf(w, "Pulled %d records in %s: %.0f records/s (the tablets' own pulls: %d records).\n", r.Pulled, r.PullTook.Round(time.Millisecond), r.PullRate, r.TabletPulled)
	verdict := "OK"
	if !r.OK {
		verdict = "FAILED"
	}
	fmt.Fprintf(w, "Verified %d acknowledged records: %d lost, %d duplicated, %d forked, %d conflicts (%d not recorded): %s.\n",
		r.Records, r.Lost, r.Duplicated, r.Forked, r.Conflicts, r.ConflictsUnrecorded, verdict)
	for _, x := range r.Examples {
		fmt.Fprintf(w, "  %s\n", x)
	}
	if r.DataDirBytes > 0 {
		fmt.Fprintf(w, "Data directory: %.1f MiB, %.0f bytes per created record.\n", float64(r.DataDirBytes)/(1<<20), r.BytesPerRecord)
	}
	if r.ServerPeakRSS >= 0 {
		fmt.Fprintf(w, "Server peak RSS: %.1f MiB.\n", float64(r.ServerPeakRSS)/(1<<20))
	}
}

// readSamples reads the data objects the submissions are made of.
func readSamples(e *env, path string) ([]json.RawMessage, error) {
	in := e.stdin
	if path != "-" {
		f, err := os.Open(path)
		if err != nil {
			return nil, err
		}
		defer f.Close()
		in = f
	}
	var out []json.RawMessage
	err := eachLine(in, func(n int, line []byte) error {
		if !json.Valid(line) || line[0] != '{' {
			return fmt.Errorf("%s line %d: not a JSON object on one line", path, n)
		}
		out = append(out, append(json.RawMessage(nil), line...))
		return nil
	})
	if err != nil {
		return nil, err
	}
	if len(out) == 0 {
		return nil, fmt.Errorf("%s holds no sample", path)
	}
	return out, nil
}
