package main

import (
	"encoding/json"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"testing"

	"github.com/fieldsync/fieldsync/api"
	"github.com/fieldsync/fieldsync/schemas"
)

// TestFsctlForm is a designer's round trip: push a draft, replace it, publish
// it, list, close.
func TestFsctlForm(t *testing.T) {
	srv := newServer(t)
	dir := t.TempDir()
	c := &cli{t: t, env: map[string]string{"FSCTL_CONFIG": filepath.Join(dir, "fsctl.json")}}
	c.must(adminPassword+"\n", "login", "--server", srv.URL, "--username", "admin")
	c.must("", "project", "create", "north", "--title", "North district")

	def, err := schemas.Example("perception-survey")
	if err != nil {
		t.Fatal(err)
	}
	file := filepath.Join(dir, "perception.json")
	if err := os.WriteFile(file, def, 0o600); err != nil {
		t.Fatal(err)
	}

	if out := c.must("", "form", "push", file, "--project", "north", "--form", "perception", "--version", "1"); !strings.Contains(out, "Uploaded a new draft: perception version 1") {
		t.Errorf("first push: %q", out)
	}
	// Flags before the file work too.
	out := c.must("", "form", "push", "--project", "north", "--form", "perception", "--version", "1", "--publish", file)
	if !strings.Contains(out, "Replaced the draft perception version 1") || !strings.Contains(out, "Published perception version 1") {
		t.Errorf("push --publish: %q", out)
	}
	// Again, as a script re-run would: nothing to do, exit 0.
	if out := c.must("", "form", "push", file, "--project", "north", "--form", "perception", "--version", "1", "--publish"); !strings.Contains(out, "already published with this definition") {
		t.Errorf("re-run of push --publish: %q", out)
	}
	// Another definition for a published version: refused, exit 1.
	other := filepath.Join(dir, "other.json")
	if err := os.WriteFile(other, []byte(`{"title": "Other", "schema": {"type": "object"}}`), 0o600); err != nil {
		t.Fatal(err)
	}
	code, _, errOut := c.run("", "form", "push", other, "--project", "north", "--form", "perception", "--version", "1")
	if code != 1 || !strings.Contains(errOut, "version_published") {
		t.Errorf("push to a published version: %d %q", code, errOut)
	}
	// A broken definition from standard input: every finding is printed.
	code, _, errOut = c.run(`{"title": "", "schema": {"type": "array"}, "x": 1}`, "form", "push", "-", "--project", "north", "--form", "broken", "--version", "1")
	for _, want := range []string{"/title: ", "/schema/type: ", "/x: ", "invalid_definition"} {
		if code != 1 || !strings.Contains(errOut, want) {
			t.Errorf("push of a broken definition: exit %d, stderr lacks %q:\n%s", code, want, errOut)
		}
	}
	c.must("", "form", "push", other, "--project", "north", "--form", "other", "--version", "2024.05")

	out = c.must("", "form", "list", "--project", "north")
	for _, re := range []string{
		`(?m)^other\s+open\s+-\s+Other$`,
		`(?m)^perception\s+open\s+1\s+Community safety perception survey$`,
		`(?m)^perception\s+1\s+published\s+\d{4}-\d\d-\d\dT\S+Z\s+[0-9a-f]{12}$`,
		`(?m)^other\s+2024\.05\s+draft\s+-\s+[0-9a-f]{12}$`,
	} {
		if !regexp.MustCompile(re).MatchString(out) {
			t.Errorf("form list lacks %s:\n%s", re, out)
		}
	}
	var list api.FormList
	if err := json.Unmarshal([]byte(c.must("", "form", "list", "--project", "north", "--json")), &list); err != nil || len(list.Forms) != 2 {
		t.Errorf("form list --json: %v %+v", err, list)
	}

	if out := c.must("", "form", "close", "--project", "north", "--form", "perception", "--yes"); !strings.Contains(out, "Closed perception in north") {
		t.Errorf("form close: %q", out)
	}
	if out := c.must("", "form", "list", "--project", "north"); !regexp.MustCompile(`(?m)^perception\s+closed\s+1\s`).MatchString(out) {
		t.Errorf("form list after close:\n%s", out)
	}
	code, _, errOut = c.run("", "form", "close", "--project", "north", "--form", "nope", "--yes")
	if code != 1 || !strings.Contains(errOut, "form_not_found") {
		t.Errorf("close of an unknown form: %d %q", code, errOut)
	}
	if out := c.must("", "form", "list", "--project", "north", "--json"); !strings.Contains(out, `"state": "closed"`) {
		t.Errorf("form list --json after close: %s", out)
	}
}

func TestFsctlFormUsage(t *testing.T) {
	c := &cli{t: t, env: map[string]string{"FSCTL_CONFIG": filepath.Join(t.TempDir(), "fsctl.json")}}
	for _, args := range [][]string{
		{"form"},
		{"form", "frob"},
		{"form", "push", "--project", "p", "--form", "f", "--version", "1"},                    // no file
		{"form", "push", "f.json", "--form", "f", "--version", "1"},                            // no project
		{"form", "push", "f.json", "--project", "p", "--form", "f"},                            // no version
		{"form", "push", "a.json", "b.json", "--project", "p", "--form", "f", "-version", "1"}, // two files
		{"form", "list"},
		{"form", "close", "--project", "p"},
	} {
		if code, _, _ := c.run("", args...); code != 2 {
			t.Errorf("fsctl %v: exit %d, want 2", args, code)
		}
	}
	if code, _, errOut := c.run("", "form", "list", "--project", "p"); code != 1 || !strings.Contains(errOut, "not logged in") {
		t.Errorf("form list before login: %d %q", code, errOut)
	}
}

// TestFsctlFormClose: closing a form is confirmed first, on a terminal by y,
// elsewhere by --yes; without either it is refused and the form stays open.
func TestFsctlFormClose(t *testing.T) {
	c, _ := newSyncCLI(t)
	state := func() string {
		t.Helper()
		var list api.FormList
		if err := json.Unmarshal([]byte(c.must("", "form", "list", "--project", "north", "--json")), &list); err != nil || len(list.Forms) != 1 {
			t.Fatalf("form list: %v %+v", err, list)
		}
		return list.Forms[0].State
	}
	args := []string{"form", "close", "--project", "north", "--form", "visits"}
	const question = "Close form visits of project north? It will take no new records. [y/N] "

	// Standard input is not a terminal (a script, a pipe): refused, exit 2,
	// even with a "y" piped in.
	code, out, errOut := c.run("y\n", args...)
	if code != exitUsage || !strings.Contains(errOut, "not closing form visits of project north without confirmation") || !strings.Contains(errOut, "--yes") || strings.Contains(out, "Closed") {
		t.Errorf("form close without a terminal: exit %d\n%s\n%s", code, out, errOut)
	}
	if s := state(); s != "open" {
		t.Fatalf("the form is %s after a refused close", s)
	}

	// On a terminal: asked; anything but y keeps it open.
	c.tty = func(f any, e *env) bool { return true }
	for _, answer := range []string{"\n", "n\n", "no\n", ""} {
		code, out, errOut = c.run(answer, args...)
		if code != exitError || !strings.Contains(errOut, question) || !strings.Contains(out, "Not closed") {
			t.Errorf("form close answered %q: exit %d\n%s\n%s", answer, code, out, errOut)
		}
	}
	if s := state(); s != "open" {
		t.Fatalf("the form is %s after declined closes", s)
	}
	code, out, errOut = c.run("y\n", args...)
	if code != 0 || !strings.Contains(errOut, question) || !strings.Contains(out, "Closed visits in north") {
		t.Errorf("form close answered y: exit %d\n%s\n%s", code, out, errOut)
	}
	if s := state(); s != "closed" {
		t.Errorf("the form is %s after a confirmed close", s)
	}

	// --yes, without a terminal: no question.
	c.tty = nil
	code, out, errOut = c.run("", append(args, "--yes")...)
	if code != 0 || strings.Contains(errOut, question) || !strings.Contains(out, "Closed visits") {
		t.Errorf("form close --yes: exit %d\n%s\n%s", code, out, errOut)
	}
}
