package main

import (
	"encoding/csv"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	"github.com/google/uuid"
)

// readCSV reads a csv file with encoding/csv.
func readCSV(t *testing.T, path string) [][]string {
	t.Helper()
	f, err := os.Open(path)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	rows, err := csv.NewReader(f).ReadAll()
	if err != nil {
		t.Fatalf("%s: %v", path, err)
	}
	return rows
}

// TestFsctlExport: an export lands whole in its file, and --since-last
// exports each record once over a series of runs.
func TestFsctlExport(t *testing.T) {
	c, dir := newSyncCLI(t)
	first := []string{uuid.NewString(), uuid.NewString(), uuid.NewString()}
	c.must("", "push", writeLines(t, filepath.Join(dir, "a.ndjson"),
		item(first[0], `{"name": "Amina, \"Ami\""}`), item(first[1], `{"name": "Bello\nline 2", "age": 40}`), item(first[2], `{"name": "Chidi"}`)),
		"--project", "north")

	out := filepath.Join(dir, "visits.csv")
	code, _, errOut := c.run("", "export", "--project", "north", "--form", "visits", "--out", out, "--since-last")
	if code != 0 || !strings.Contains(errOut, "Exported 3 records") {
		t.Fatalf("export: %d %s", code, errOut)
	}
	rows := readCSV(t, out)
	if len(rows) != 4 || rows[0][0] != "id" || !strings.Contains(strings.Join(rows[0], ","), "name") {
		t.Fatalf("export: %q", rows)
	}
	var names []string
	ni := 0
	for i, h := range rows[0] {
		if h == "name" {
			ni = i
		}
	}
	for _, r := range rows[1:] {
		names = append(names, r[ni])
	}
	// One push: one receive time, so the records come in id order.
	slices.Sort(names)
	if strings.Join(names, "|") != "Amina, \"Ami\"|Bello\nline 2|Chidi" {
		t.Errorf("names %q", names)
	}

	// The next --since-last run holds only what came since.
	second := uuid.NewString()
	c.must("", "push", writeLines(t, filepath.Join(dir, "b.ndjson"), item(second, `{"name": "Dede"}`)), "--project", "north")
	code, _, errOut = c.run("", "export", "--project", "north", "--form", "visits", "--out", out, "--since-last", "--format", "csv")
	if rows := readCSV(t, out); code != 0 || len(rows) != 2 || rows[1][0] != second {
		t.Fatalf("second --since-last export: %d %s %q", code, errOut, rows)
	}
	code, _, errOut = c.run("", "export", "--project", "north", "--form", "visits", "--out", out, "--since-last")
	if rows := readCSV(t, out); code != 0 || len(rows) != 1 || !strings.Contains(errOut, "Exported 0 records") {
		t.Fatalf("third --since-last export: %d %s %q", code, errOut, rows)
	}
	// Without --since-last: everything, and the remembered point stays.
	xlsx := filepath.Join(dir, "all.xlsx")
	code, _, errOut = c.run("", "export", "--project", "north", "--form", "visits", "--out", xlsx, "--format", "xlsx")
	if code != 0 || !strings.Contains(errOut, "Exported 4 records") {
		t.Fatalf("xlsx export: %d %s", code, errOut)
	}

	// A failed export leaves no file behind, not even a partial one.
	bad := filepath.Join(dir, "bad.csv")
	code, _, errOut = c.run("", "export", "--project", "north", "--form", "nosuch", "--out", bad)
	if code != 1 || !strings.Contains(errOut, "No such form") {
		t.Errorf("export of an unknown form: %d %s", code, errOut)
	}
	entries, _ := os.ReadDir(dir)
	for _, e := range entries {
		if strings.HasPrefix(e.Name(), "bad") || strings.Contains(e.Name(), ".part-") {
			t.Errorf("left behind: %s", e.Name())
		}
	}
	if code, _, _ := c.run("", "export", "--project", "north", "--form", "visits", "--since", "2026-01-01", "--since-last"); code != 2 {
		t.Errorf("--since with --since-last: exit %d", code)
	}
}
