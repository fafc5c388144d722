package main

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/url"
	"os"
	"path/filepath"
	"strings"
	"time"

	"github.com/fieldsync/fieldsync/api"
)

// Push batching: at most api.MaxPushItems items, and a body well under the
// server's 16 MiB so the envelope and a few long lines always fit.
const (
	maxBatchBytes = 15 << 20
	// maxAttempts bounds the tries of one push or one pull page the server
	// could not take (503, 429, a dropped connection). Pushing a batch again
	// is always safe, since what was applied answers "unchanged", and pulling
	// a page again changes nothing.
	maxAttempts = 5
)

// pushStatuses are the push statuses in the order the summary prints them.
var pushStatuses = []string{api.PushCreated, api.PushUpdated, api.PushUnchanged, api.PushMerged, api.PushConflict, api.PushRejected, api.PushForbidden}

// pushLine is one submission of the file and where it came from.
type pushLine struct {
	n   int // line number, from 1
	raw json.RawMessage
}

// runPush is fsctl push FILE --project P [--batch N] [--fail-on-conflict]:
// send the submissions of an NDJSON file (one JSON object per line, the shape
// of a push item; "-" reads standard input), as a tablet's outbox would, in
// batches of at most 1000.
//
// Then it uploads the files the server does not hold yet (missing_attachments)
// from --files (default: the folder attachments beside FILE), each resumed
// from the bytes the server already holds, so running it again after an
// interruption sends only what is left.
//
// It prints how many items ended in each status, and for every item that did
// not go in cleanly its line, id, status and findings on standard error.
//
// Exit status: 1 when an item was rejected (it is in the project's quarantine)
// or forbidden, or a line is not JSON: those items need fixing, and pushing the
// fixed file again is safe, since items already applied answer "unchanged". A
// conflict is reported but exits 0: the item is kept on its record for an
// analyst to resolve, and pushing it again would change nothing; add
// --fail-on-conflict to make it fatal too.
func runPush(ctx context.Context, e *env, args []string) error {
	fs := newFlags(e, "push", "FILE.ndjson --project P [--batch N] [--fail-on-conflict] [--files DIR]")
	filesDir := fs.String("files", "", "folder of the files the items declare in attachments: DIR/<record id>/<name> or DIR/<name> (default: attachments beside FILE)")
	project := fs.String("project", "", "the project (required)")
	batch := fs.Int("batch", api.MaxPushItems, "items per push (at most 1000)")
	failOnConflict := fs.Bool("fail-on-conflict", false, "exit 1 when an item ended as a conflict as well")
	pos, err := parse(fs, args, 1, 1)
	if err != nil {
		return err
	}
	if err := requireFlags(fs, map[string]string{"project": *project}); err != nil {
		return err
	}
	if *batch < 1 || *batch > api.MaxPushItems {
		return fs.usageErrorf("--batch must be from 1 to %d", api.MaxPushItems)
	}
	if *filesDir == "" {
		*filesDir = "attachments"
		if pos[0] != "-" {
			*filesDir = filepath.Join(filepath.Dir(pos[0]), "attachments")
		}
	}
	var toUpload []pendingFile
	missingFiles := 0
	in := e.stdin
	size := int64(-1) // the progress bar counts bytes of a file, items of stdin
	if pos[0] != "-" {
		f, err := os.Open(pos[0])
		if err != nil {
			return err
		}
		defer f.Close()
		in = f
		if fi, err := f.Stat(); err == nil && fi.Mode().IsRegular() {
			size = fi.Size()
		}
	}
	s, err := e.session(ctx)
	if err != nil {
		return err
	}
	bar := e.newProgress(size, "pushing", "items", size >= 0)
	defer bar.done()

	counts := map[string]int{}
	invalid, batches, sent := 0, 0, 0
	var pending []pushLine
	batchBytes := 0
	flush := func() error {
		if len(pending) == 0 {
			return nil
		}
		batches++
		results, err := pushBatch(ctx, e, s, *project, pending)
		if err != nil {
			if sent > 0 {
				fmt.Fprintf(e.stderr, "fsctl push: stopped at line %d; the %d items before it were pushed, and pushing the whole file again is safe\n", pending[0].n, sent)
			}
			return err
		}
		bar.clear() // the lines below, not after the bar
		for i, r := range results {
			counts[r.Status]++
			reportItem(e.stderr, pending[i], r)
			for _, name := range r.MissingAttachments {
				p, sz, err := findFile(*filesDir, r.ID, name)
				if err != nil {
					missingFiles++
					fmt.Fprintf(e.stderr, "line %d: %s: file %q is not in %s; the record is stored without it\n", pending[i].n, r.ID, name, *filesDir)
					continue
				}
				toUpload = append(toUpload, pendingFile{line: pending[i].n, recordID: r.ID, name: name, path: p, size: sz})
			}
		}
		sent += len(pending)
		if size >= 0 {
			bar.add(batchBytes)
		} else {
			bar.add(len(pending))
		}
		bar.describe(fmt.Sprintf("pushed %d items", sent))
		pending, batchBytes = pending[:0], 0
		return nil
	}

	err = eachLine(in, func(n int, line []byte) error {
		if !json.Valid(line) {
			bar.clear()
			invalid++
			fmt.Fprintf(e.stderr, "line %d: not valid JSON; not pushed\n", n)
			return nil
		}
		if len(pending) == *batch || (len(pending) > 0 && batchBytes+len(line) > maxBatchBytes) {
			if err := flush(); err != nil {
				return err
			}
		}
		pending = append(pending, pushLine{n: n, raw: append(json.RawMessage(nil), line...)})
		batchBytes += len(line) + 1
		return nil
	})
	if err != nil {
		return err
	}
	if err := flush(); err != nil {
		return err
	}
	bar.done()
	failedFiles, err := uploadFiles(ctx, e, s, *project, toUpload)
	if err != nil {
		return err
	}

	var parts []string
	for _, st := range pushStatuses {
		parts = append(parts, fmt.Sprintf("%s %d", st, counts[st]))
	}
	if invalid > 0 {
		parts = append(parts, fmt.Sprintf("not JSON %d", invalid))
	}
	unit := "batches"
	if batches == 1 {
		unit = "batch"
	}
	fmt.Fprintf(e.stdout, "Pushed %d items in %d %s: %s.\n", sent, batches, unit, strings.Join(parts, ", "))
	if len(toUpload)+missingFiles > 0 {
		fmt.Fprintf(e.stdout, "Uploaded %d of %d files the server did not hold.\n", len(toUpload)-failedFiles, len(toUpload)+missingFiles)
	}

	bad := counts[api.PushRejected] + counts[api.PushForbidden] + invalid
	if *failOnConflict {
		bad += counts[api.PushConflict]
	}
	if bad > 0 {
		return fmt.Errorf("%d items did not go in as sent (listed above); fix them and push the file again: items already applied answer unchanged", bad)
	}
	if failedFiles+missingFiles > 0 {
		return fmt.Errorf("%d files were not uploaded (listed above); push the file again to send them: uploads resume where they stopped", failedFiles+missingFiles)
	}
	return nil
}

// rawPush is a push body whose items are sent exactly as the file holds them,
// so that a malformed item is judged (and quarantined) by the server.
type rawPush struct {
	Submissions []json.RawMessage `json:"submissions"`
}

// pushBatch sends one batch, again when the server asks to wait (503, 429) or
// the connection drops, and returns one result per item.
func pushBatch(ctx context.Context, e *env, s *session, project string, lines []pushLine) ([]api.PushResult, error) {
	body := rawPush{Submissions: make([]json.RawMessage, len(lines))}
	for i, l := range lines {
		body.Submissions[i] = l.raw
	}
	path := "/v1/projects/" + url.PathEscape(project) + "/sync/push"
	var out api.PushResponse
	err := e.retry(ctx, "push", func() error {
		return s.do(ctx, func(c *api.Client) error { return c.Do(ctx, http.MethodPost, path, body, &out) })
	})
	if err != nil {
		return nil, err
	}
	if len(out.Results) != len(lines) {
		return nil, fmt.Errorf("the server answered %d results for %d items", len(out.Results), len(lines))
	}
	return out.Results, nil
}

// retry calls f until it succeeds, fails for good, or has failed maxAttempts
// times; before each new try it says on standard error why, and waits as
// retryable says. what names the command in that line.
func (e *env) retry(ctx context.Context, what string, f func() error) error {
	for attempt := 1; ; attempt++ {
		err := f()
		wait, again := retryable(err, attempt)
		if !again || attempt == maxAttempts || ctx.Err() != nil {
			return err
		}
		e.bar.clear()
		fmt.Fprintf(e.stderr, "fsctl %s: %s; trying again in %s\n", what, e.describe(err), wait)
		if err := e.wait(ctx, wait); err != nil {
			return err
		}
	}
}

// describe words an error in one line, for a retry notice.
func (e *env) describe(err error) string {
	if msg, ok := e.explainNetError(err); ok {
		return msg
	}
	var p *api.Problem
	if errors.As(err, &p) {
		return fmt.Sprintf("%s (%d %s)", p.Title, p.Status, p.Code)
	}
	return err.Error()
}

// retryable says whether a failed push or pull is worth sending again, and
// after how long: the server's Retry-After, else a pause that doubles from 1s,
// at most a minute. The server's 503 and 429 and a broken connection are
// worth it; other answers, a timeout (the server may be stuck), a certificate
// or a name that does not resolve are not.
func retryable(err error, attempt int) (time.Duration, bool) {
	var netErr net.Error
	if err == nil || errors.Is(err, context.Canceled) || errors.Is(err, context.DeadlineExceeded) ||
		(errors.As(err, &netErr) && netErr.Timeout()) || permanentNetError(err) {
		return 0, false
	}
	wait := time.Duration(1<<(attempt-1)) * time.Second
	var p *api.Problem
	if errors.As(err, &p) {
		if p.Status != http.StatusServiceUnavailable && p.Status != http.StatusTooManyRequests {
			return 0, false
		}
		if p.RetryAfter > 0 {
			wait = p.RetryAfter
		}
	}
	return min(wait, time.Minute), true
}

// reportItem prints an item that did not go in cleanly.
func reportItem(w io.Writer, l pushLine, r api.PushResult) {
	id := r.ID
	if id == "" {
		id = "?"
	}
	switch r.Status {
	case api.PushRejected, api.PushForbidden:
		what := "kept in the project's quarantine"
		if r.Status == api.PushForbidden {
			what = "you may not write this record"
		}
		fmt.Fprintf(w, "line %d (id %s): %s: %s\n", l.n, id, r.Status, what)
		for _, f := range r.Errors {
			path := f.Path
			if path == "" {
				path = "(item)"
			}
			fmt.Fprintf(w, "  %s: %s\n", path, f.Message)
		}
	case api.PushConflict:
		var paths []string
		if r.Current != nil {
			for _, c := range r.Current.Conflicts {
				p := c.Path
				if p == "" {
					p = "(whole record)"
				}
				paths = append(paths, p)
			}
		}
		fmt.Fprintf(w, "line %d (id %s): conflict: kept on the record for an analyst to resolve (rev %s; conflicts at %s)\n",
			l.n, id, r.Rev, strings.Join(paths, ", "))
	}
}

// runPull is fsctl pull --project P [--since CURSOR | --cursor-file F] [--out
// FILE.ndjson] [--limit N]: every change visible to the caller after the
// cursor (from the beginning without one), one record per line in its current
// state, deleted records included ("deleted": true), pulled page by page until
// the server has no more. A page the server could not serve (503, 429, a
// broken connection) is asked again, as push does.
//
// With --out the records go to FILE (written whole or not at all) and standard
// output gets only the final cursor, one line, for a script to keep and pass
// as --since next time. Without --out the records go to standard output and
// the cursor is printed on standard error.
//
// With --cursor-file the cursor is read from F (from the beginning when F does
// not exist yet) and F gets the final cursor once the whole pull succeeded,
// after --out is in place: a pull that fails half-way leaves F as it was, and
// the next run pulls the same changes again. Pulling again is safe (every
// line is a record's whole current state), whereas a cursor ahead of records
// that never reached --out would lose them.
func runPull(ctx context.Context, e *env, args []string) error {
	fs := newFlags(e, "pull", "--project P [--since CURSOR | --cursor-file F] [--out FILE.ndjson] [--limit N]")
	project := fs.String("project", "", "the project (required)")
	since := fs.String("since", "", "the cursor printed by the previous pull; from the beginning without it")
	cursorFile := fs.String("cursor-file", "", "read the cursor from this file, and write the new cursor there when the whole pull succeeded (a failed pull leaves the file unchanged)")
	outPath := fs.String("out", "", "write the records to this file (whole or not at all) instead of standard output")
	limit := fs.Int("limit", api.MaxPullLimit, "records per page (at most 1000)")
	if _, err := parse(fs, args, 0, 0); err != nil {
		return err
	}
	if err := requireFlags(fs, map[string]string{"project": *project}); err != nil {
		return err
	}
	if *limit < 1 || *limit > api.MaxPullLimit {
		return fs.usageErrorf("--limit must be from 1 to %d", api.MaxPullLimit)
	}
	if *since != "" && *cursorFile != "" {
		return fs.usageErrorf("give --since or --cursor-file, not both")
	}
	if *cursorFile != "" {
		data, err := os.ReadFile(*cursorFile)
		if err != nil && !errors.Is(err, os.ErrNotExist) {
			return err
		}
		*since = strings.TrimSpace(string(data))
	}
	s, err := e.session(ctx)
	if err != nil {
		return err
	}

	var w io.Writer = e.stdout
	var tmp *os.File
	if *outPath != "" {
		tmp, err = os.CreateTemp(filepath.Dir(*outPath), ".fsctl-pull-*.ndjson")
		if err != nil {
			return err
		}
		defer os.Remove(tmp.Name()) // nothing left to remove after the rename
		defer tmp.Close()
		w = tmp
	}
	// Records scrolling on the terminal are their own progress.
	bar := &progress{}
	if tmp != nil || !e.isTerminal(e.stdout) {
		bar = e.newProgress(-1, "pulling", "records", false)
	}
	defer bar.done()
	bw := bufio.NewWriterSize(w, 256<<10)
	enc := json.NewEncoder(bw)
	n := 0
	cursor, err := pullPages(ctx, s, *project, *since, *limit, func(page api.PullResponse) error {
		for _, r := range page.Changes {
			if err := enc.Encode(r); err != nil {
				return err
			}
		}
		n += len(page.Changes)
		bar.add(len(page.Changes))
		return nil
	})
	if err != nil {
		return err
	}
	if err := bw.Flush(); err != nil {
		return err
	}
	bar.done()
	if tmp != nil {
		if err := tmp.Sync(); err != nil {
			return err
		}
		if err := tmp.Close(); err != nil {
			return err
		}
		if err := os.Rename(tmp.Name(), *outPath); err != nil {
			return err
		}
	}
	if *cursorFile != "" {
		if err := writeFileAtomic(*cursorFile, []byte(cursor+"\n")); err != nil {
			return fmt.Errorf("the records are pulled, but saving the cursor in %s failed (the next pull will fetch them again): %w", *cursorFile, err)
		}
	}
	switch {
	case tmp == nil && *cursorFile != "":
		fmt.Fprintf(e.stderr, "Pulled %d records. The cursor is in %s.\n", n, *cursorFile)
	case tmp == nil:
		fmt.Fprintf(e.stderr, "Pulled %d records. Next time: --since %s\n", n, cursor)
	default:
		fmt.Fprintf(e.stderr, "Pulled %d records into %s.\n", n, *outPath)
		fmt.Fprintln(e.stdout, cursor)
	}
	return nil
}

// writeFileAtomic replaces path with data so that, whatever happens, path
// holds either the old or the new content in full: a temp file in the same
// directory, synced, renamed over path, and the directory synced.
func writeFileAtomic(path string, data []byte) error {
	dir := filepath.Dir(path)
	tmp, err := os.CreateTemp(dir, "."+filepath.Base(path)+".tmp-*")
	if err != nil {
		return err
	}
	defer os.Remove(tmp.Name()) // nothing left to remove after the rename
	defer tmp.Close()
	if _, err := tmp.Write(data); err != nil {
		return err
	}
	if err := tmp.Sync(); err != nil {
		return err
	}
	if err := tmp.Close(); err != nil {
		return err
	}
	if err := os.Rename(tmp.Name(), path); err != nil {
		return err
	}
	// The rename itself is durable once the directory is synced; not every
	// system can sync a directory, and the file is whole either way.
	if d, err := os.Open(dir); err == nil {
		_ = d.Sync()
		d.Close()
	}
	return nil
}

// pullPages pulls page after page from the cursor since until the server has
// no more, handing each page to f, and returns the final cursor. A page the
// server could not serve is asked again (e.retry).
func pullPages(ctx context.Context, s *session, project, since string, limit int, f func(api.PullResponse) error) (string, error) {
	cursor := since
	for {
		var page api.PullResponse
		err := s.e.retry(ctx, "pull", func() error {
			return s.do(ctx, func(c *api.Client) error {
				var err error
				page, err = c.Pull(ctx, project, cursor, limit)
				return err
			})
		})
		if err != nil {
			return cursor, err
		}
		if err := f(page); err != nil {
			return cursor, err
		}
		cursor = page.Next
		if !page.More {
			return cursor, nil
		}
	}
}

// eachLine calls f with every line of in that is not blank, trimmed, and its
// number from 1; line is valid only during the call. A line may be as long as
// a push body.
func eachLine(in io.Reader, f func(n int, line []byte) error) error {
	sc := bufio.NewScanner(in)
	sc.Buffer(make([]byte, 64<<10), api.MaxBodyBytes)
	for n := 1; sc.Scan(); n++ {
		if line := bytes.TrimSpace(sc.Bytes()); len(line) > 0 {
			if err := f(n, line); err != nil {
				return err
			}
		}
	}
	if err := sc.Err(); err != nil {
		if errors.Is(err, bufio.ErrTooLong) {
			return fmt.Errorf("a line is longer than %d bytes, more than one push may carry", api.MaxBodyBytes)
		}
		return err
	}
	return nil
}
