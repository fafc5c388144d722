package main

import (
	"path/filepath"
	"strings"
	"testing"
)

func TestFsctlLoad(t *testing.T) {
	c, dir := newSyncCLI(t)
	samples := writeLines(t, filepath.Join(dir, "samples.ndjson"), `{"name": "Amina", "age": 30}`, "", `{"name": "Bello"}`)

	// 250 submissions of the sample data (edited with a member the form
	// allows) in pushes of 40 from 3 tablets: 6 full pushes and one of 10.
	out := c.must("", "load", "--project", "north", "--form", "visits", "--version", "1", "--sample", samples,
		"--tablets", "3", "--batch", "40", "--total", "250", "--edits", "0", "--shared", "0")
	for _, want := range []string{
		"Enrolled 3 virtual tablets in project north in ",
		"Pushed 250 items in 7 pushes from 3 tablets in ",
		"  push               7 requests, ms: p50 ",
		"  pull               7 requests, ms: p50 ",
		"Statuses: created 250, updated 0, unchanged 0, merged 0, conflict 0, rejected 0, forbidden 0.",
		"Pulled 250 records in ",
		"Verified 250 acknowledged records: 0 lost, 0 duplicated, 0 forked, 0 conflicts (0 not recorded): OK.",
		"Server peak RSS: ",
		"Revoked the 3 virtual tablets.",
	} {
		if !strings.Contains(out, want) {
			t.Errorf("output lacks %q:\n%s", want, out)
		}
	}
	// The tablets were real devices, and they are revoked.
	audit := c.must("", "audit", "--type", "device_revoked", "--project", "north")
	if n := strings.Count(audit, "device_revoked"); n != 3 {
		t.Errorf("%d device_revoked events, want 3:\n%s", n, audit)
	}

	// A sample the schema refuses: the load reports it and exits 1, and the
	// pushed items are in quarantine, like any tablet's.
	bad := writeLines(t, filepath.Join(dir, "bad.ndjson"), `{"age": -1}`)
	code, out, errOut := c.run("", "load", "--project", "north", "--form", "visits", "--version", "1", "--sample", bad,
		"--tablets", "1", "--total", "5")
	if code != 1 || !strings.Contains(out, "rejected 5") || !strings.Contains(errOut, "5 submissions did not go in (rejected 5, forbidden 0)") {
		t.Errorf("load of bad samples: exit %d\n%s\n%s", code, out, errOut)
	}
	if !strings.Contains(out, "Revoked the 1 virtual tablets.") {
		t.Errorf("tablet of the failed load not revoked:\n%s", out)
	}
}

func TestFsctlLoadUsage(t *testing.T) {
	c, dir := newSyncCLI(t)
	samples := writeLines(t, filepath.Join(dir, "samples.ndjson"), `{"name": "Amina"}`)
	notObject := writeLines(t, filepath.Join(dir, "array.ndjson"), `[1, 2]`)
	base := []string{"load", "--project", "north", "--form", "visits", "--version", "1"}
	for _, tc := range []struct {
		args []string
		code int
		want string
	}{
		{[]string{"load", "--version", "1"}, exitUsage, "--project"},
		{append(base[:len(base):len(base)], "--sample", samples, "--tablets", "0"), exitUsage, "--devices"},
		{append(base[:len(base):len(base)], "--devices", "100001"), exitUsage, "--devices"},
		{append(base[:len(base):len(base)], "--flaky", "0.9"), exitUsage, "--flaky"},
		{append(base[:len(base):len(base)], "--shared", "-1"), exitUsage, "--shared"},
		{append(base[:len(base):len(base)], "--sample", samples, "--batch", "1001"), exitUsage, "--batch"},
		{append(base[:len(base):len(base)], "--sample", samples, "--total", "0"), exitUsage, "--total, --duration"},
		{append(base[:len(base):len(base)], "--sample", notObject), exitError, "not a JSON object"},
		{append(base[:len(base):len(base)], "--sample", filepath.Join(dir, "missing.ndjson")), exitError, "missing.ndjson"},
	} {
		code, _, errOut := c.run("", tc.args...)
		if code != tc.code || !strings.Contains(errOut, tc.want) {
			t.Errorf("%v: exit %d, stderr %q; want exit %d mentioning %q", tc.args, code, errOut, tc.code, tc.want)
		}
	}
}
