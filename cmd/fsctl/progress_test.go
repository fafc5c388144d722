package main

import (
	"fmt"
	"path/filepath"
	"strings"
	"testing"

	"github.com/google/uuid"
)

// TestFsctlProgress: push, pull and load show a progress bar on standard error
// when it is a terminal, and nothing of it otherwise.
func TestFsctlProgress(t *testing.T) {
	c, dir := newSyncCLI(t)
	var lines []string
	for i := range 30 {
		lines = append(lines, item(uuid.NewString(), fmt.Sprintf(`{"name": "n%d"}`, i)))
	}
	outbox := writeLines(t, filepath.Join(dir, "outbox.ndjson"), lines...)
	samples := writeLines(t, filepath.Join(dir, "samples.ndjson"), `{"name": "Amina"}`)
	commands := []struct {
		args   []string
		bar    string // the bar's text
		stdout string // what the command prints anyway
	}{
		{[]string{"push", outbox, "--project", "north", "--batch", "10"}, "pushing", "Pushed 30 items in 3 batches"},
		{[]string{"push", "-", "--project", "north", "--batch", "10"}, "pushing", "Pushed 30 items in 3 batches"},
		{[]string{"pull", "--project", "north", "--limit", "10", "--out", filepath.Join(dir, "records.ndjson")}, "pulling", ""},
		{[]string{"load", "--project", "north", "--form", "visits", "--version", "1", "--sample", samples, "--tablets", "2", "--batch", "5", "--total", "20", "--edits", "0", "--shared", "0"}, "pushing", "Pushed 20 items"},
	}
	stdin := strings.Join(lines, "\n")

	// Not a terminal (a buffer, as in a script's log): quiet.
	for _, tc := range commands {
		code, out, errOut := c.run(stdin, tc.args...)
		if code != 0 || !strings.Contains(out, tc.stdout) {
			t.Fatalf("fsctl %s: exit %d\n%s\n%s", strings.Join(tc.args, " "), code, out, errOut)
		}
		if strings.Contains(errOut, "\r") || strings.Contains(errOut, tc.bar) {
			t.Errorf("fsctl %s without a terminal printed a progress bar:\n%q", strings.Join(tc.args, " "), errOut)
		}
	}
	// Standard output alone a terminal: still quiet, the bar goes to stderr.
	c.tty = func(f any, e *env) bool { return f == e.stdout }
	for _, tc := range commands {
		if _, _, errOut := c.run(stdin, tc.args...); strings.Contains(errOut, "\r") {
			t.Errorf("fsctl %s with stdout alone on a terminal printed a bar:\n%q", strings.Join(tc.args, " "), errOut)
		}
	}
	// Standard error a terminal: a bar, cleared at the end; the summary is
	// printed as before.
	c.tty = func(f any, e *env) bool { return f == e.stderr }
	for _, tc := range commands {
		code, out, errOut := c.run(stdin, tc.args...)
		if code != 0 || !strings.Contains(out, tc.stdout) {
			t.Fatalf("fsctl %s on a terminal: exit %d\n%s\n%s", strings.Join(tc.args, " "), code, out, errOut)
		}
		if !strings.Contains(errOut, "\r") || !strings.Contains(errOut, tc.bar) {
			t.Errorf("fsctl %s on a terminal printed no progress bar:\n%q", strings.Join(tc.args, " "), errOut)
		}
	}
}
