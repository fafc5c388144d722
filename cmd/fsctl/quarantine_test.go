package main

import (
	"encoding/json"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/fieldsync/fieldsync/api"
)

// TestFsctlQuarantine is an analyst's round trip with the quarantine: list the
// refused items, re-apply one as it was (refused again, exit 1 with the
// findings) and corrected from a file (applied), dismiss another (the reason
// is required), list by state; and a designer reopens a closed form.
func TestFsctlQuarantine(t *testing.T) {
	srv := newServer(t)
	dir := t.TempDir()
	c := &cli{t: t, env: map[string]string{"FSCTL_CONFIG": filepath.Join(dir, "fsctl.json")}}
	c.must(adminPassword+"\n", "login", "--server", srv.URL, "--username", "admin")
	c.must("", "project", "create", "north", "--title", "North district")
	write := func(name, content string) string {
		t.Helper()
		p := filepath.Join(dir, name)
		if err := os.WriteFile(p, []byte(content), 0o600); err != nil {
			t.Fatal(err)
		}
		return p
	}
	def := write("visit.json", `{"title": "Visit", "schema": {"type": "object", "properties": {"name": {"type": "string"}, "age": {"type": "integer", "minimum": 0}}, "required": ["name"]}}`)
	c.must("", "form", "push", def, "--project", "north", "--form", "visit", "--version", "1", "--publish")

	const badID, otherID = "3f0c5c1e-9a7b-4c1d-8e2f-0a1b2c3d4e5f", "4f0c5c1e-9a7b-4c1d-8e2f-0a1b2c3d4e5f"
	items := write("items.ndjson", `{"id": "`+badID+`", "form": "visit", "form_version": "1", "data": {"name": "Ana", "age": -2}}
{"id": "`+otherID+`", "form": "visit", "form_version": "1", "data": {"age": 7}}
`)
	if code, _, _ := c.run("", "push", items, "--project", "north"); code != exitError {
		t.Fatalf("push of two bad items: exit %d, want 1", code)
	}

	out := c.must("", "quarantine", "list", "--project", "north")
	if !strings.Contains(out, badID) || !strings.Contains(out, "/data/age") || !strings.Contains(out, "open") {
		t.Errorf("quarantine list:\n%s", out)
	}
	entries := map[string]api.QuarantineItem{}
	for _, line := range strings.Split(strings.TrimSpace(c.must("", "quarantine", "list", "--project", "north", "--json")), "\n") {
		var it api.QuarantineItem
		if err := json.Unmarshal([]byte(line), &it); err != nil {
			t.Fatalf("quarantine list --json line %q: %v", line, err)
		}
		entries[it.RecordID] = it
	}
	bad, other := entries[badID].ID, entries[otherID].ID
	if bad == "" || other == "" {
		t.Fatalf("entries: %+v", entries)
	}

	// As it was: refused again, with the findings, exit 1.
	code, _, errOut := c.run("", "quarantine", "reapply", bad, "--project", "north")
	if code != exitError || !strings.Contains(errOut, "refused again (rejected)") || !strings.Contains(errOut, "/data/age") {
		t.Errorf("reapply as sent: exit %d\n%s", code, errOut)
	}
	// Corrected from a file, and from standard input.
	fixed := write("fixed.json", `{"name": "Ana", "age": 2}`)
	if out := c.must("", "quarantine", "reapply", bad, "--project", "north", "--data", fixed); !strings.Contains(out, "Applied: record "+badID+" created") {
		t.Errorf("reapply --data: %q", out)
	}
	code, _, errOut = c.run("not json", "quarantine", "reapply", other, "--project", "north", "--data", "-")
	if code != exitUsage || !strings.Contains(errOut, "does not hold JSON") {
		t.Errorf("reapply with bad data: exit %d\n%s", code, errOut)
	}
	code, _, errOut = c.run("", "quarantine", "dismiss", other, "--project", "north")
	if code != exitUsage || !strings.Contains(errOut, "--reason is required") {
		t.Errorf("dismiss without a reason: exit %d\n%s", code, errOut)
	}
	if out := c.must("", "quarantine", "dismiss", other, "--project", "north", "--reason", "a training interview"); !strings.Contains(out, "Dismissed entry "+other) {
		t.Errorf("dismiss: %q", out)
	}
	if out := c.must("", "quarantine", "list", "--project", "north"); !strings.Contains(out, "No open quarantine entries") {
		t.Errorf("open entries left:\n%s", out)
	}
	out = c.must("", "quarantine", "list", "--project", "north", "--state", "all", "--form", "visit")
	for _, want := range []string{"re-applied by admin", "dismissed by admin: a training interview"} {
		if !strings.Contains(out, want) {
			t.Errorf("quarantine list --state all lacks %q:\n%s", want, out)
		}
	}
	code, _, errOut = c.run("", "quarantine", "list", "--project", "north", "--state", "closed")
	if code != exitError || !strings.Contains(errOut, "invalid_query") {
		t.Errorf("list --state closed: exit %d\n%s", code, errOut)
	}

	// A designer's reopen.
	c.must("", "form", "close", "--project", "north", "--form", "visit", "--yes")
	if out := c.must("", "form", "reopen", "--project", "north", "--form", "visit"); !strings.Contains(out, "Reopened visit in north") {
		t.Errorf("form reopen: %q", out)
	}
	if out := c.must("", "form", "list", "--project", "north"); !strings.Contains(out, "visit  open") {
		t.Errorf("form list after reopen:\n%s", out)
	}
}
