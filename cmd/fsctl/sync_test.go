package main

import (
	"bufio"
	"encoding/json"
	"fmt"
	"net/http"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/google/uuid"

	"github.com/fieldsync/fieldsync/api"
)

// syncForm is a small form: name required, age at least 0.
const syncForm = `{"title": "Visits", "schema": {"type": "object",
	"properties": {"name": {"type": "string"}, "age": {"type": "integer", "minimum": 0}},
	"required": ["name"]}}`

// newSyncCLI logs in as admin on a server with the sync service, creates
// project "north" and publishes form "visits" version 1.
func newSyncCLI(t *testing.T) (*cli, string) {
	t.Helper()
	return newSyncCLIWith(t, nil)
}

// newSyncCLIWith is newSyncCLI on a server whose handler wrap wraps.
func newSyncCLIWith(t *testing.T, wrap func(http.Handler) http.Handler) (*cli, string) {
	t.Helper()
	srv := newServerWith(t, wrap)
	dir := t.TempDir()
	c := &cli{t: t, env: map[string]string{"FSCTL_CONFIG": filepath.Join(dir, "fsctl.json")}}
	c.must(adminPassword+"\n", "login", "--server", srv.URL, "--username", "admin")
	c.must("", "project", "create", "north", "--title", "North district")
	def := filepath.Join(dir, "visits.json")
	if err := os.WriteFile(def, []byte(syncForm), 0o600); err != nil {
		t.Fatal(err)
	}
	c.must("", "form", "push", def, "--project", "north", "--form", "visits", "--version", "1", "--publish")
	return c, dir
}

func item(id, data string) string {
	return fmt.Sprintf(`{"id": %q, "form": "visits", "form_version": "1", "base_rev": null, "client_modified_at": "2026-03-01T09:00:00Z", "data": %s}`, id, data)
}

func editItem(id, base, data, at string) string {
	return fmt.Sprintf(`{"id": %q, "form": "visits", "form_version": "1", "base_rev": %q, "client_modified_at": %q, "data": %s}`, id, base, at, data)
}

func writeLines(t *testing.T, path string, lines ...string) string {
	t.Helper()
	if err := os.WriteFile(path, []byte(strings.Join(lines, "\n")+"\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	return path
}

// readRecords reads an NDJSON file of records.
func readRecords(t *testing.T, data string) []api.Record {
	t.Helper()
	var out []api.Record
	sc := bufio.NewScanner(strings.NewReader(data))
	sc.Buffer(nil, 1<<20)
	for sc.Scan() {
		var r api.Record
		if err := json.Unmarshal(sc.Bytes(), &r); err != nil {
			t.Fatalf("line %q: %v", sc.Text(), err)
		}
		out = append(out, r)
	}
	return out
}

func TestFsctlPushPull(t *testing.T) {
	c, dir := newSyncCLI(t)
	ids := []string{uuid.NewString(), uuid.NewString(), uuid.NewString()}
	file := writeLines(t, filepath.Join(dir, "outbox.ndjson"),
		item(ids[0], `{"name": "Amina"}`),
		item(ids[1], `{"name": "Bello", "age": 40}`),
		"",
		item(uuid.NewString(), `{"name": "Issa", "age": -1}`),                                           // line 4: fails the schema
		`{"id": "`+uuid.NewString()+`", "form": "visits", "form_version": "1", "data": {}, "extra": 1}`, // line 5: unknown field
		`{"id": "not json`, // line 6
		item(ids[2], `{"name": "Chidi"}`),
	)

	code, out, errOut := c.run("", "push", file, "--project", "north")
	if code != 1 {
		t.Fatalf("push with bad items: exit %d, want 1\n%s\n%s", code, out, errOut)
	}
	if want := "Pushed 5 items in 1 batch: created 3, updated 0, unchanged 0, merged 0, conflict 0, rejected 2, forbidden 0, not JSON 1."; !strings.Contains(out, want) {
		t.Errorf("summary %q, want %q", out, want)
	}
	for _, want := range []string{"line 4 (id ", "rejected: kept in the project's quarantine", "/data/age:", "line 5 (id ", "unknown field", "line 6: not valid JSON", "push the file again"} {
		if !strings.Contains(errOut, want) {
			t.Errorf("stderr lacks %q:\n%s", want, errOut)
		}
	}

	// The same file again (a retry after a lost answer): nothing new.
	code, out, _ = c.run("", "push", file, "--project", "north")
	if code != 1 || !strings.Contains(out, "created 0, updated 0, unchanged 3,") || !strings.Contains(out, "rejected 2") {
		t.Errorf("push again: %d %q", code, out)
	}

	// Pull everything into a file; stdout is the cursor alone.
	recFile := filepath.Join(dir, "records.ndjson")
	cursor := strings.TrimSpace(c.must("", "pull", "--project", "north", "--out", recFile, "--limit", "2"))
	if cursor == "" || strings.ContainsAny(cursor, " \n") {
		t.Fatalf("pull printed %q, want one cursor", cursor)
	}
	data, err := os.ReadFile(recFile)
	if err != nil {
		t.Fatal(err)
	}
	recs := readRecords(t, string(data))
	if len(recs) != 3 || recs[0].ID != ids[0] || recs[1].ID != ids[1] || recs[2].ID != ids[2] {
		t.Fatalf("pulled %s", data)
	}

	// An edit and a clash on the same field from the same base: updated, then
	// conflict; by default a conflict is reported and exits 0.
	base := recs[1].Rev
	edits := writeLines(t, filepath.Join(dir, "edits.ndjson"),
		editItem(ids[1], base, `{"name": "Bello", "age": 41}`, "2026-03-02T09:00:00Z"),
		editItem(ids[1], base, `{"name": "Bello", "age": 42}`, "2026-03-03T09:00:00Z"),
	)
	code, out, errOut = c.run("", "push", edits, "--project", "north")
	if code != 0 || !strings.Contains(out, "updated 1,") || !strings.Contains(out, "conflict 1,") ||
		!strings.Contains(errOut, "line 2 (id "+ids[1]+"): conflict: kept on the record") || !strings.Contains(errOut, "/age") {
		t.Errorf("push with a conflict: %d\n%s\n%s", code, out, errOut)
	}
	clash := writeLines(t, filepath.Join(dir, "clash.ndjson"),
		editItem(ids[0], recs[0].Rev, `{"name": "Amina K."}`, "2026-03-04T09:00:00Z"),
		editItem(ids[0], recs[0].Rev, `{"name": "Amina B."}`, "2026-03-05T09:00:00Z"),
	)
	if code, out, _ := c.run("", "push", clash, "--project", "north", "--fail-on-conflict"); code != 1 || !strings.Contains(out, "conflict 1,") {
		t.Errorf("--fail-on-conflict: %d %q", code, out)
	}

	// Only what changed since the cursor: the two edited records.
	more := filepath.Join(dir, "more.ndjson")
	next := strings.TrimSpace(c.must("", "pull", "--project", "north", "--since", cursor, "--out", more))
	data, _ = os.ReadFile(more)
	if recs := readRecords(t, string(data)); len(recs) != 2 || recs[0].ID != ids[1] || recs[1].ID != ids[0] || len(recs[0].Conflicts) != 1 {
		t.Errorf("pull since the cursor: %s", data)
	}
	// Nothing since then: an empty file, and the same cursor.
	if again := strings.TrimSpace(c.must("", "pull", "--project", "north", "--since", next, "--out", more)); again != next {
		t.Errorf("idle pull moved the cursor from %s to %s", next, again)
	}
	if data, _ := os.ReadFile(more); len(data) != 0 {
		t.Errorf("idle pull wrote %q", data)
	}
	// Without --out: the records on stdout, the cursor on stderr.
	code, out, errOut = c.run("", "pull", "--project", "north")
	if code != 0 || len(readRecords(t, out)) != 3 || !strings.Contains(errOut, "Pulled 3 records. Next time: --since "+next) {
		t.Errorf("pull to stdout: %d\n%s\n%s", code, out, errOut)
	}
	// A cursor the server never made.
	if code, _, errOut := c.run("", "pull", "--project", "north", "--since", "bogus"); code != 1 || !strings.Contains(errOut, "invalid_cursor") {
		t.Errorf("bad cursor: %d %q", code, errOut)
	}
	// A failed pull leaves --out as it was.
	if code, _, _ := c.run("", "pull", "--project", "north", "--since", "bogus", "--out", recFile); code != 1 {
		t.Errorf("bad cursor with --out: exit %d", code)
	}
	if got, _ := os.ReadFile(recFile); len(readRecords(t, string(got))) != 3 {
		t.Errorf("a failed pull changed %s", recFile)
	}
}

// TestFsctlPushBatches: a file longer than one push goes in several, from
// standard input as well.
func TestFsctlPushBatches(t *testing.T) {
	c, _ := newSyncCLI(t)
	var lines []string
	for i := range 2500 {
		lines = append(lines, item(uuid.NewString(), fmt.Sprintf(`{"name": "n%d", "age": %d}`, i, i%90)))
	}
	out := c.must(strings.Join(lines, "\n"), "push", "-", "--project", "north")
	if !strings.Contains(out, "Pushed 2500 items in 3 batches: created 2500,") {
		t.Errorf("push: %q", out)
	}
	out = c.must(strings.Join(lines[:10], "\n"), "push", "-", "--project", "north", "--batch", "4")
	if !strings.Contains(out, "Pushed 10 items in 3 batches: created 0, updated 0, unchanged 10,") {
		t.Errorf("push --batch 4: %q", out)
	}
	code, _, errOut := c.run("", "pull", "--project", "north", "--out", filepath.Join(t.TempDir(), "all.ndjson"))
	if code != 0 || !strings.Contains(errOut, "Pulled 2500 records") {
		t.Errorf("pull: %d %q", code, errOut)
	}
}

func TestFsctlSyncUsage(t *testing.T) {
	c := &cli{t: t, env: map[string]string{"FSCTL_CONFIG": filepath.Join(t.TempDir(), "fsctl.json")}}
	for _, args := range [][]string{
		{"push", "--project", "p"},           // no file
		{"push", "f.ndjson"},                 // no project
		{"push", "a", "b", "--project", "p"}, // two files
		{"push", "f", "--project", "p", "--batch", "1001"},
		{"pull"}, // no project
		{"pull", "--project", "p", "--limit", "0"},
		{"pull", "--project", "p", "extra"},
	} {
		if code, _, _ := c.run("", args...); code != exitUsage {
			t.Errorf("fsctl %s: exit %d, want %d", strings.Join(args, " "), code, exitUsage)
		}
	}
}

// faults makes a server fail chosen requests: a request whose path ends in a
// given suffix takes the next fault queued for it; a nil fault, or none left,
// lets it through to the real handler.
type faults struct {
	mu    sync.Mutex
	queue map[string][]http.HandlerFunc
}

// add queues faults for the requests whose path ends in suffix.
func (f *faults) add(suffix string, fs ...http.HandlerFunc) {
	f.mu.Lock()
	defer f.mu.Unlock()
	if f.queue == nil {
		f.queue = map[string][]http.HandlerFunc{}
	}
	f.queue[suffix] = append(f.queue[suffix], fs...)
}

func (f *faults) wrap(h http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		f.mu.Lock()
		var fault http.HandlerFunc
		for suffix, q := range f.queue {
			if strings.HasSuffix(r.URL.Path, suffix) && len(q) > 0 {
				fault, f.queue[suffix] = q[0], q[1:]
			}
		}
		f.mu.Unlock()
		if fault == nil {
			h.ServeHTTP(w, r)
			return
		}
		fault(w, r)
	})
}

// failWith answers a problem document with status and, unless empty, a
// Retry-After header.
func failWith(status int, code, retryAfter string) http.HandlerFunc {
	return func(w http.ResponseWriter, r *http.Request) {
		if retryAfter != "" {
			w.Header().Set("Retry-After", retryAfter)
		}
		w.Header().Set("Content-Type", api.ProblemContentType)
		w.WriteHeader(status)
		fmt.Fprintf(w, `{"type": "about:blank", "title": %q, "status": %d, "code": %q}`, http.StatusText(status), status, code)
	}
}

// breakOff starts a 200 answer and breaks the connection half-way, as a
// dropped mobile link does.
func breakOff(w http.ResponseWriter, r *http.Request) {
	w.Header().Set("Content-Type", "application/json")
	w.Header().Set("Content-Length", "1000")
	w.WriteHeader(http.StatusOK)
	fmt.Fprint(w, `{"changes": [`)
	w.(http.Flusher).Flush()
	conn, _, err := http.NewResponseController(w).Hijack()
	if err == nil {
		conn.Close()
	}
}

// TestFsctlPullRetries: pull asks a page again when the server says to wait
// (503 with Retry-After, 429) or the connection breaks, with push's bounded
// backoff, and gives up on other answers or after five tries.
func TestFsctlPullRetries(t *testing.T) {
	f := &faults{}
	c, dir := newSyncCLIWith(t, f.wrap)
	file := writeLines(t, filepath.Join(dir, "outbox.ndjson"),
		item(uuid.NewString(), `{"name": "Amina"}`), item(uuid.NewString(), `{"name": "Bello"}`), item(uuid.NewString(), `{"name": "Chidi"}`))

	// Push, for comparison: a 503 with Retry-After: 3 is waited out.
	f.add("/sync/push", failWith(http.StatusServiceUnavailable, "unavailable", "3"))
	code, out, errOut := c.run("", "push", file, "--project", "north")
	if code != 0 || !strings.Contains(out, "created 3,") || !slices.Equal(c.waits, []time.Duration{3 * time.Second}) ||
		!strings.Contains(errOut, "fsctl push: Service Unavailable (503 unavailable); trying again in 3s") {
		t.Fatalf("push through a 503: exit %d, waits %v\n%s\n%s", code, c.waits, out, errOut)
	}

	// Pull, on the second page (of 2 records): 503 with Retry-After: 7, then
	// 429 without (the backoff's 2s), then a broken answer (4s).
	c.waits = nil
	f.add("/sync/pull", nil,
		failWith(http.StatusServiceUnavailable, "unavailable", "7"),
		failWith(http.StatusTooManyRequests, "rate_limited", ""),
		breakOff)
	recFile := filepath.Join(dir, "records.ndjson")
	code, out, errOut = c.run("", "pull", "--project", "north", "--limit", "2", "--out", recFile)
	data, _ := os.ReadFile(recFile)
	if code != 0 || strings.TrimSpace(out) == "" || len(readRecords(t, string(data))) != 3 {
		t.Fatalf("pull through failures: exit %d\n%s\n%s\n%s", code, out, errOut, data)
	}
	if want := []time.Duration{7 * time.Second, 2 * time.Second, 4 * time.Second}; !slices.Equal(c.waits, want) {
		t.Errorf("pull waited %v, want %v", c.waits, want)
	}
	for _, want := range []string{
		"fsctl pull: Service Unavailable (503 unavailable); trying again in 7s\n",
		"fsctl pull: Too Many Requests (429 rate_limited); trying again in 2s\n",
		"fsctl pull: the connection to the server broke before the whole answer came",
	} {
		if !strings.Contains(errOut, want) {
			t.Errorf("stderr lacks %q:\n%s", want, errOut)
		}
	}

	// A server that stays unavailable: five tries, then its answer.
	c.waits = nil
	for range 5 {
		f.add("/sync/pull", failWith(http.StatusServiceUnavailable, "unavailable", "1"))
	}
	code, _, errOut = c.run("", "pull", "--project", "north")
	if code != 1 || len(c.waits) != 4 || !strings.Contains(errOut, "fsctl: Service Unavailable\n") {
		t.Errorf("pull from a server that stays unavailable: exit %d, waits %v\n%s", code, c.waits, errOut)
	}
	// Other failures are not tried again.
	c.waits = nil
	f.add("/sync/pull", failWith(http.StatusInternalServerError, "internal", ""))
	if code, _, _ := c.run("", "pull", "--project", "north"); code != 1 || len(c.waits) != 0 {
		t.Errorf("pull after a 500: exit %d, waits %v", code, c.waits)
	}
}

// TestFsctlPullCursorFile: --cursor-file changes only when a whole pull
// succeeded, so a pull broken half-way starts again from the last cursor
// fully received.
func TestFsctlPullCursorFile(t *testing.T) {
	f := &faults{}
	c, dir := newSyncCLIWith(t, f.wrap)
	var lines []string
	for i := range 5 {
		lines = append(lines, item(uuid.NewString(), fmt.Sprintf(`{"name": "n%d"}`, i)))
	}
	c.must("", "push", writeLines(t, filepath.Join(dir, "a.ndjson"), lines...), "--project", "north")
	pulled := t.TempDir()
	cursorFile := filepath.Join(pulled, "cursor")
	out := filepath.Join(pulled, "records.ndjson")
	pull := func() (int, string) {
		code, _, errOut := c.run("", "pull", "--project", "north", "--limit", "2", "--cursor-file", cursorFile, "--out", out)
		return code, errOut
	}
	onlyFiles := func(want ...string) {
		t.Helper()
		entries, _ := os.ReadDir(pulled)
		var got []string
		for _, e := range entries {
			got = append(got, e.Name())
		}
		if !slices.Equal(got, want) {
			t.Errorf("files after the pull: %v, want %v (no temp file left)", got, want)
		}
	}

	// The server breaks on the second page: no cursor file, no records file.
	f.add("/sync/pull", nil, failWith(http.StatusInternalServerError, "internal", ""))
	if code, errOut := pull(); code != 1 {
		t.Fatalf("pull broken on page 2: exit %d\n%s", code, errOut)
	}
	onlyFiles()
	// Again, whole: the five records and a cursor.
	if code, errOut := pull(); code != 0 {
		t.Fatalf("pull: exit %d\n%s", code, errOut)
	}
	onlyFiles("cursor", "records.ndjson")
	first, _ := os.ReadFile(cursorFile)
	if data, _ := os.ReadFile(out); len(readRecords(t, string(data))) != 5 || len(strings.TrimSpace(string(first))) == 0 {
		t.Fatalf("pull wrote %q and cursor %q", data, first)
	}

	// Three more; broken on the second page again: the cursor stays.
	lines = lines[:0]
	for i := range 3 {
		lines = append(lines, item(uuid.NewString(), fmt.Sprintf(`{"name": "m%d"}`, i)))
	}
	c.must("", "push", writeLines(t, filepath.Join(dir, "b.ndjson"), lines...), "--project", "north")
	f.add("/sync/pull", nil, failWith(http.StatusInternalServerError, "internal", ""))
	if code, _ := pull(); code != 1 {
		t.Fatalf("pull broken on page 2: exit %d", code)
	}
	if got, _ := os.ReadFile(cursorFile); string(got) != string(first) {
		t.Errorf("a failed pull moved the cursor from %q to %q", first, got)
	}
	onlyFiles("cursor", "records.ndjson")
	// Resumed: exactly the three new records, and a new cursor.
	if code, errOut := pull(); code != 0 {
		t.Fatalf("resumed pull: exit %d\n%s", code, errOut)
	}
	data, _ := os.ReadFile(out)
	if recs := readRecords(t, string(data)); len(recs) != 3 {
		t.Errorf("resumed pull got %d records, want the 3 new ones", len(recs))
	}
	if got, _ := os.ReadFile(cursorFile); string(got) == string(first) {
		t.Error("the cursor did not move after a successful pull")
	}

	if code, _, errOut := c.run("", "pull", "--project", "north", "--since", "x", "--cursor-file", cursorFile); code != exitUsage || !strings.Contains(errOut, "not both") {
		t.Errorf("--since with --cursor-file: exit %d %q", code, errOut)
	}
}
