package main

import (
	"encoding/json"
	"path/filepath"
	"strings"
	"testing"

	"github.com/google/uuid"

	"github.com/fieldsync/fieldsync/api"
)

// TestFsctlRecordComments: an analyst comments from the command line, setting
// the review state, and reads the thread back.
func TestFsctlRecordComments(t *testing.T) {
	c, dir := newSyncCLI(t)
	id := uuid.NewString()
	c.must("", "push", writeLines(t, filepath.Join(dir, "outbox.ndjson"), item(id, `{"name": "Amina"}`)), "--project", "north")

	out := c.must("", "record", "comment", id, "--project", "north", "--text", "Village name\nmisspelt", "--state", "has_issues")
	if !strings.Contains(out, "from received to has_issues") {
		t.Errorf("comment: %q", out)
	}
	c.must("", "record", "comment", id, "--project", "north", "--text", "checked")
	out = c.must("", "record", "comments", id, "--project", "north")
	for _, want := range []string{"AUTHOR", "admin", "received -> has_issues", "Village name misspelt", "checked"} {
		if !strings.Contains(out, want) {
			t.Errorf("comments lack %q:\n%s", want, out)
		}
	}
	var page api.CommentList
	if err := json.Unmarshal([]byte(c.must("", "record", "comments", id, "--project", "north", "--json", "--limit", "1")), &page); err != nil || len(page.Items) != 1 || page.Next == "" {
		t.Errorf("--json --limit 1: %v %+v", err, page)
	}
	// Bad input: a clear refusal, exit 2 for usage, 1 for the server's.
	if code, _, errOut := c.run("", "record", "comment", id, "--project", "north"); code != 2 || !strings.Contains(errOut, "--text") {
		t.Errorf("comment without --text: %d %q", code, errOut)
	}
	if code, _, errOut := c.run("", "record", "comment", id, "--project", "north", "--text", "x", "--state", "maybe"); code != 1 || !strings.Contains(errOut, "review_state") {
		t.Errorf("comment with a bad state: %d %q", code, errOut)
	}
}
