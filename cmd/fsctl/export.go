package main

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"time"

	"github.com/fieldsync/fieldsync/api"
)

// runExport is fsctl export --project P --form F [--format csv|csv.zip|xlsx|
// ndjson|geojson] [--out FILE] [--since T | --since-last] [--until T]
// [--review-state S] [--version V] [--device D] [--labels] [--bom]: one
// form's records as a dataset file (protocol.md §4).
//
// The file is written to a temporary file beside --out and renamed when the
// whole export arrived, so FILE is never a truncated dataset. A progress bar
// on a terminal counts bytes, and records for csv and ndjson.
//
// --since-last exports only the records the server received since the
// previous successful --since-last run for the same server, project and form
// (the bound the server applied, Fieldsync-Until, kept in export-state.json
// beside the config file), so repeated runs make a series of files that
// neither overlap nor leave a gap.
func runExport(ctx context.Context, e *env, args []string) error {
	fs := newFlags(e, "export", "--project P --form F [--format csv|csv.zip|xlsx|ndjson|geojson] [--out FILE] [--since TIME | --since-last] [--until TIME] [filters]")
	project := fs.String("project", "", "the project (required)")
	form := fs.String("form", "", "the form (required)")
	format := fs.String("format", "csv", "csv, csv.zip (repeat groups as tables of their own), xlsx, ndjson or geojson")
	out := fs.String("out", "", "the file to write (default FORM.FORMAT in the current directory)")
	since := fs.String("since", "", "only records the server received at or after this `time` (RFC 3339 or YYYY-MM-DD)")
	until := fs.String("until", "", "only records the server received before this `time`")
	sinceLast := fs.Bool("since-last", false, "only records received since the last --since-last export of this form from this server")
	reviewState := fs.String("review-state", "", "only records in these review `states` (comma-separated: received, approved, has_issues, rejected)")
	version := fs.String("version", "", "only records of these form `versions` (comma-separated)")
	device := fs.String("device", "", "only records last written by these device `ids` (comma-separated)")
	labels := fs.Bool("labels", false, "write choice labels instead of codes")
	bom := fs.Bool("bom", false, "start csv files with a UTF-8 byte order mark (for Excel)")
	if _, err := parse(fs, args, 0, 0); err != nil {
		return err
	}
	if err := requireFlags(fs, map[string]string{"project": *project, "form": *form}); err != nil {
		return err
	}
	if *sinceLast && *since != "" {
		return fs.usageErrorf("give --since or --since-last, not both")
	}
	q := api.ExportQuery{Format: *format, Labels: *labels, BOM: *bom,
		ReviewStates: splitList(*reviewState), Versions: splitList(*version), Devices: splitList(*device)}
	var err error
	if q.Since, err = parseTimeFlag(*since); err != nil {
		return fs.usageErrorf("--since: %v", err)
	}
	if q.Until, err = parseTimeFlag(*until); err != nil {
		return fs.usageErrorf("--until: %v", err)
	}
	if *out == "" {
		*out = *form + "." + *format
	}

	s, err := e.session(ctx)
	if err != nil {
		return err
	}
	stateKey := s.cfg.Server + " " + *project + " " + *form
	if *sinceLast {
		st, err := e.loadExportState()
		if err != nil {
			return err
		}
		q.Since = st[stateKey] // zero the first time: everything
	}
	// An export takes as long as it takes: no overall timeout, but one
	// --timeout without a byte ends it (see stallGuard).
	hc := e.client()
	hc.Timeout = 0
	c, err := api.NewClient(s.cfg.Server, api.WithHTTPClient(hc), api.WithUserAgent(userAgent()))
	if err != nil {
		return err
	}

	tmp, err := os.CreateTemp(filepath.Dir(*out), "."+filepath.Base(*out)+".part-*")
	if err != nil {
		return err
	}
	defer os.Remove(tmp.Name()) // nothing left to remove after the rename
	defer tmp.Close()
	bar := e.newProgress(-1, "exporting", "", true)
	defer bar.done()
	counter := newRecordCounter(*format)
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	// xlsx and csv.zip are built whole on the server before their first
	// byte: only a dead connection (TCP keep-alive) ends those.
	guard := newStallGuard(e.requestTimeout(), cancel, *format != "xlsx" && *format != "csv.zip")
	defer guard.stop()
	w := io.MultiWriter(tmp, counter, progressWriter{bar, counter}, guard)
	var info api.ExportInfo
	err = s.do(ctx, func(*api.Client) error {
		c.SetToken(s.c.Token())
		info, err = c.Export(ctx, *project, *form, q, w)
		return err
	})
	if err != nil {
		if guard.stalled() {
			return fmt.Errorf("the server sent nothing for %s: the export was given up (raise --timeout on a slow link)", e.requestTimeout())
		}
		return err
	}
	bar.done()
	if err := tmp.Sync(); err != nil {
		return err
	}
	if err := tmp.Close(); err != nil {
		return err
	}
	if err := os.Rename(tmp.Name(), *out); err != nil {
		return err
	}
	records := info.Records
	if records < 0 {
		records = counter.records()
	}
	if *sinceLast && !info.Until.IsZero() {
		st, err := e.loadExportState()
		if err != nil {
			return err
		}
		st[stateKey] = info.Until
		if err := e.saveExportState(st); err != nil {
			return fmt.Errorf("the export is in %s, but remembering where it stopped failed (the next --since-last run exports the same records again): %w", *out, err)
		}
	}
	fmt.Fprintf(e.stderr, "Exported %d records (%s) to %s.\n", records, humanBytes(info.Bytes), *out)
	if !info.Until.IsZero() {
		fmt.Fprintf(e.stderr, "Records received until %s (next time: --since %s, or --since-last).\n",
			info.Until.Format(time.RFC3339), info.Until.Format(time.RFC3339Nano))
	}
	return nil
}

func splitList(s string) []string {
	var out []string
	for _, p := range strings.Split(s, ",") {
		if p = strings.TrimSpace(p); p != "" {
			out = append(out, p)
		}
	}
	return out
}

// parseTimeFlag reads an RFC 3339 time or a date (midnight UTC); "" is zero.
func parseTimeFlag(s string) (time.Time, error) {
	if s == "" {
		return time.Time{}, nil
	}
	for _, layout := range []string{time.RFC3339Nano, time.DateOnly} {
		if t, err := time.Parse(layout, s); err == nil {
			return t, nil
		}
	}
	return time.Time{}, fmt.Errorf("%q is not an RFC 3339 time (2026-03-01T08:00:00Z) or a date (2026-03-01)", s)
}

func humanBytes(n int64) string {
	switch {
	case n >= 1<<30:
		return fmt.Sprintf("%.1f GiB", float64(n)/(1<<30))
	case n >= 1<<20:
		return fmt.Sprintf("%.1f MiB", float64(n)/(1<<20))
	case n >= 1<<10:
		return fmt.Sprintf("%.1f KiB", float64(n)/(1<<10))
	}
	return fmt.Sprintf("%d bytes", n)
}

// exportStatePath is export-state.json beside the config file.
func (e *env) exportStatePath() (string, error) {
	p, err := e.configPath()
	if err != nil {
		return "", err
	}
	return filepath.Join(filepath.Dir(p), "export-state.json"), nil
}

// loadExportState reads where each --since-last export stopped, keyed by
// "server project form"; a missing file is an empty state.
func (e *env) loadExportState() (map[string]time.Time, error) {
	p, err := e.exportStatePath()
	if err != nil {
		return nil, err
	}
	st := map[string]time.Time{}
	data, err := os.ReadFile(p)
	if errors.Is(err, os.ErrNotExist) {
		return st, nil
	}
	if err != nil {
		return nil, err
	}
	if err := json.Unmarshal(data, &st); err != nil {
		return nil, fmt.Errorf("%s is not valid (delete it to export everything again): %w", p, err)
	}
	return st, nil
}

func (e *env) saveExportState(st map[string]time.Time) error {
	p, err := e.exportStatePath()
	if err != nil {
		return err
	}
	data, err := json.MarshalIndent(st, "", "  ")
	if err != nil {
		return err
	}
	if err := os.MkdirAll(filepath.Dir(p), 0o700); err != nil {
		return err
	}
	return writeFileAtomic(p, append(data, '\n'))
}

// progressWriter moves the bar by the bytes written, and shows the records
// counted so far (csv, ndjson).
type progressWriter struct {
	p *progress
	c *recordCounter
}

func (w progressWriter) Write(b []byte) (int, error) {
	if n := w.c.records(); n > 0 {
		w.p.describe(fmt.Sprintf("exporting %d records", n))
	}
	w.p.add(len(b))
	return len(b), nil
}

// recordCounter counts the records of a csv (line ends outside quoted
// fields, less the header) or ndjson (lines) stream as it passes, for the
// summary when the server sends no count.
type recordCounter struct {
	format string
	lines  int64
	quoted bool
}

func newRecordCounter(format string) *recordCounter { return &recordCounter{format: format} }

func (c *recordCounter) Write(b []byte) (int, error) {
	switch c.format {
	case "csv":
		for _, x := range b {
			switch {
			case x == '"':
				c.quoted = !c.quoted // "" inside a field toggles twice
			case x == '\n' && !c.quoted:
				c.lines++
			}
		}
	case "ndjson":
		for _, x := range b {
			if x == '\n' {
				c.lines++
			}
		}
	}
	return len(b), nil
}

func (c *recordCounter) records() int64 {
	if c.format == "csv" && c.lines > 0 {
		return c.lines - 1
	}
	return c.lines
}

// stallGuard cancels the export when no byte arrived for d: a link that
// went dead is given up, a slow one that keeps moving is not.
type stallGuard struct {
	mu    sync.Mutex
	t     *time.Timer
	d     time.Duration
	fired bool
}

func newStallGuard(d time.Duration, cancel context.CancelFunc, armed bool) *stallGuard {
	g := &stallGuard{d: d}
	if !armed {
		d = 1<<63 - 1
		g.d = d
	}
	g.t = time.AfterFunc(d, func() {
		g.mu.Lock()
		g.fired = true
		g.mu.Unlock()
		cancel()
	})
	return g
}

func (g *stallGuard) Write(b []byte) (int, error) {
	g.t.Reset(g.d)
	return len(b), nil
}

func (g *stallGuard) stop() { g.t.Stop() }

func (g *stallGuard) stalled() bool {
	g.mu.Lock()
	defer g.mu.Unlock()
	return g.fired
}
