package main

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/google/uuid"

	"github.com/fieldsync/fieldsync/api"
)

// runLoad is fsctl load: a load test of a running server, with the protocol's
// own moves. It enrolls --tablets virtual tablets in the project (real
// devices, made with the caller's manager rights and revoked at the end unless
// --keep-devices), and each pushes outboxes of --batch new submissions of the
// form, built from the --sample data (one JSON object per line, used in turn),
// until --total submissions are sent or --duration has passed. With --pull,
// the caller then pulls the whole project, page by page, as an analyst's
// export does.
//
// It prints the rates (submissions/s, records/s), the latency of each push
// (p50, p90, p99, max) and how many items ended in each status. Every pushed
// record is real data in the project: run it on a project made for the test.
//
// Exit status 1 when an item did not go in as created (a sample that fails the
// schema, say) or a push failed: a load figure is worth nothing if the server
// refused the load.
func runLoad(ctx context.Context, e *env, args []string) error {
	fs := newFlags(e, "load", "--project P --form F --version V --sample FILE [--tablets N] [--batch N] [--total N] [--duration D] [--pull] [--keep-devices]")
	project := fs.String("project", "", "the project to load (required; its records stay: use a test project)")
	form := fs.String("form", "", "the form of the submissions (required)")
	version := fs.String("version", "", "the published form version (required)")
	samplePath := fs.String("sample", "", "data of submissions: JSON objects, one per line (required; - reads standard input)")
	tablets := fs.Int("tablets", 4, "virtual tablets pushing at once")
	batch := fs.Int("batch", api.MaxPushItems, "submissions per push (at most 1000)")
	total := fs.Int("total", 20000, "submissions to send in all (0: until --duration passes)")
	duration := fs.Duration("duration", 0, "stop pushing after this long (0: until --total are sent)")
	pull := fs.Bool("pull", false, "pull the whole project afterwards and report the rate")
	keep := fs.Bool("keep-devices", false, "do not revoke the virtual tablets at the end")
	if _, err := parse(fs, args, 0, 0); err != nil {
		return err
	}
	if err := requireFlags(fs, map[string]string{"project": *project, "form": *form, "version": *version, "sample": *samplePath}); err != nil {
		return err
	}
	switch {
	case *tablets < 1 || *tablets > 1000:
		return fs.usageErrorf("--tablets must be from 1 to 1000")
	case *batch < 1 || *batch > api.MaxPushItems:
		return fs.usageErrorf("--batch must be from 1 to %d", api.MaxPushItems)
	case *total < 0 || *duration < 0:
		return fs.usageErrorf("--total and --duration cannot be negative")
	case *total == 0 && *duration == 0:
		return fs.usageErrorf("give --total, --duration or both")
	}
	samples, err := readSamples(e, *samplePath)
	if err != nil {
		return err
	}
	s, err := e.session(ctx)
	if err != nil {
		return err
	}

	devices, err := enrollLoadTablets(ctx, e, s, *project, *tablets)
	if len(devices) > 0 && !*keep {
		defer func() {
			n := 0
			for _, d := range devices {
				// Revoke even after Ctrl-C: the tablets must not stay enrolled.
				rctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), requestTimeout)
				if err := s.do(rctx, func(c *api.Client) error { return c.RevokeDevice(rctx, *project, d.id) }); err != nil {
					fmt.Fprintf(e.stderr, "fsctl load: revoking tablet %s: %v\n", d.id, err)
				} else {
					n++
				}
				cancel()
			}
			fmt.Fprintf(e.stdout, "Revoked the %d virtual tablets.\n", n)
		}()
	}
	if err != nil {
		return err
	}
	fmt.Fprintf(e.stdout, "Enrolled %d virtual tablets in project %s.\n", len(devices), *project)

	run := loadRun{project: *project, form: *form, version: *version, samples: samples, batch: *batch, total: int64(*total)}
	pctx := ctx
	if *duration > 0 {
		var cancel context.CancelFunc
		pctx, cancel = context.WithTimeout(ctx, *duration)
		defer cancel()
	}
	max := int64(*total)
	if max == 0 {
		max = -1
	}
	run.bar = e.newProgress(max, "pushing", "submissions", false)
	start := time.Now()
	var wg sync.WaitGroup
	for _, d := range devices {
		wg.Go(func() { run.tablet(pctx, d.client) })
	}
	wg.Wait()
	elapsed := time.Since(start)
	run.bar.done()
	run.report(e.stdout, elapsed)
	if err := ctx.Err(); err != nil {
		return err
	}

	if *pull {
		n, pages, took, err := pullAll(ctx, s, *project)
		if err != nil {
			return err
		}
		unit := "pages"
		if pages == 1 {
			unit = "page"
		}
		fmt.Fprintf(e.stdout, "Pulled %d records in %d %s in %s: %s records/s.\n", n, pages, unit, took.Round(time.Millisecond), rate(n, took))
	}
	if run.failed > 0 {
		return fmt.Errorf("%d pushes failed (first: %v)", run.failed, run.firstErr)
	}
	if bad := run.sent.Load() - int64(run.statuses[api.PushCreated]); bad > 0 {
		return fmt.Errorf("%d submissions did not go in as created: check --sample against the form's schema, and the project's quarantine", bad)
	}
	return nil
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

// loadTablet is one enrolled virtual tablet.
type loadTablet struct {
	id     string
	client *api.Client
}

// enrollLoadTablets makes and enrolls n devices; on failure it returns those
// made so far with the error, so they are revoked.
func enrollLoadTablets(ctx context.Context, e *env, s *session, project string, n int) ([]loadTablet, error) {
	stamp := e.clock().UTC().Format("2006-01-02T15:04:05Z")
	var out []loadTablet
	for k := 1; k <= n; k++ {
		var d api.CreateDeviceResponse
		err := s.do(ctx, func(c *api.Client) error {
			var err error
			d, err = c.CreateDevice(ctx, project, fmt.Sprintf("fsctl load %s #%d", stamp, k))
			return err
		})
		if err != nil {
			return out, fmt.Errorf("creating a virtual tablet (the load test needs manager rights in the project): %w", err)
		}
		out = append(out, loadTablet{id: d.DeviceID})
		c, err := api.NewClient(s.cfg.Server, api.WithHTTPClient(e.client()), api.WithUserAgent(userAgent()+" load"))
		if err != nil {
			return out, err
		}
		if _, err := c.Enroll(ctx, d.EnrollmentCode, map[string]string{"model": "fsctl load"}); err != nil {
			return out, fmt.Errorf("enrolling virtual tablet %s: %w", d.DeviceID, err)
		}
		out[len(out)-1].client = c
	}
	return out, nil
}

// loadRun is the shared state of the pushing tablets.
type loadRun struct {
	project, form, version string
	samples                []json.RawMessage
	batch                  int
	total                  int64 // 0: no bound
	bar                    *progress

	claimed atomic.Int64 // submissions handed to tablets
	sent    atomic.Int64 // submissions in pushes that were answered

	mu        sync.Mutex
	latencies []time.Duration
	statuses  map[string]int
	failed    int
	firstErr  error
}

// tablet pushes batches until the run's total is claimed or ctx ends.
func (r *loadRun) tablet(ctx context.Context, c *api.Client) {
	for ctx.Err() == nil {
		n := int64(r.batch)
		from := r.claimed.Add(n) - n
		if r.total > 0 {
			if from >= r.total {
				return
			}
			n = min(n, r.total-from)
		}
		subs := make([]api.Submission, n)
		now := time.Now().UTC()
		for i := range subs {
			subs[i] = api.Submission{ID: uuid.NewString(), Form: r.form, FormVersion: r.version,
				ClientModifiedAt: now, Data: r.samples[(int(from)+i)%len(r.samples)]}
		}
		t0 := time.Now()
		res, err := c.Push(ctx, r.project, subs)
		took := time.Since(t0)
		r.mu.Lock()
		switch {
		case err != nil && ctx.Err() != nil && errors.Is(err, ctx.Err()):
			// The run's --duration ended during this push: not a failure.
		case err != nil:
			r.failed++
			if r.firstErr == nil {
				r.firstErr = err
			}
		default:
			r.sent.Add(n)
			r.bar.add(int(n))
			r.latencies = append(r.latencies, took)
			if r.statuses == nil {
				r.statuses = map[string]int{}
			}
			for _, x := range res.Results {
				r.statuses[x.Status]++
			}
		}
		r.mu.Unlock()
	}
}

// report prints the push figures.
func (r *loadRun) report(w io.Writer, elapsed time.Duration) {
	sent := int(r.sent.Load())
	fmt.Fprintf(w, "Pushed %d submissions in %d pushes in %s: %s submissions/s.\n", sent, len(r.latencies), elapsed.Round(time.Millisecond), rate(sent, elapsed))
	if len(r.latencies) > 0 {
		l := slices.Clone(r.latencies)
		slices.Sort(l)
		q := func(p float64) time.Duration { return l[min(len(l)-1, int(p*float64(len(l))))].Round(time.Millisecond) }
		fmt.Fprintf(w, "Push latency: p50 %s, p90 %s, p99 %s, max %s.\n", q(0.50), q(0.90), q(0.99), l[len(l)-1].Round(time.Millisecond))
	}
	var parts []string
	for _, st := range pushStatuses {
		parts = append(parts, fmt.Sprintf("%s %d", st, r.statuses[st]))
	}
	fmt.Fprintf(w, "Statuses: %s.\n", strings.Join(parts, ", "))
	if r.failed > 0 {
		fmt.Fprintf(w, "Failed pushes: %d (first: %v).\n", r.failed, r.firstErr)
	}
}

// pullAll pulls every change of the project visible to the session's user.
func pullAll(ctx context.Context, s *session, project string) (records, pages int, took time.Duration, err error) {
	start := time.Now()
	_, err = pullPages(ctx, s, project, "", api.MaxPullLimit, func(page api.PullResponse) error {
		records += len(page.Changes)
		pages++
		return nil
	})
	return records, pages, time.Since(start), err
}

// rate words n per d as a whole number per second.
func rate(n int, d time.Duration) string {
	if d <= 0 {
		return "-"
	}
	return fmt.Sprintf("%.0f", float64(n)/d.Seconds())
}
