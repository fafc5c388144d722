package export

import (
	"bytes"
	"context"
	"encoding/csv"
	"encoding/json"
	"iter"
	"os"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/xuri/excelize/v2"

	"github.com/fieldsync/fieldsync/internal/domain"
)

func testModel(t *testing.T) *Model {
	t.Helper()
	var vs []Version
	for _, v := range []string{"1", "2"} {
		b, err := os.ReadFile("testdata/household-v" + v + ".json")
		if err != nil {
			t.Fatal(err)
		}
		vs = append(vs, Version{Version: v, Definition: b})
	}
	m, err := Build("household", vs)
	if err != nil {
		t.Fatal(err)
	}
	return m
}

func names(t *Table) []string {
	var out []string
	for _, c := range t.Columns {
		out = append(out, c.Name)
	}
	return out
}

func TestBuild(t *testing.T) {
	m := testModel(t)
	want := []string{"village", "visit_date", "respondent/age", "respondent/gender", "feels_safe", "threats",
		"location/latitude", "location/longitude", "location/altitude", "location/accuracy", "members", "income",
		"respondent/phone", "consent"}
	if got := names(m.Main); !slices.Equal(got, want) {
		t.Errorf("main columns\n got %v\nwant %v", got, want)
	}
	if len(m.Tables) != 3 || m.Tables[1].Name != "members" || m.Tables[2].Name != "members/jobs" {
		t.Fatalf("tables: %d", len(m.Tables))
	}
	if got := names(m.Tables[1]); !slices.Equal(got, []string{"name", "age", "jobs"}) {
		t.Errorf("members columns %v", got)
	}
	g := m.Main.Columns[3]
	if g.Kind != KindChoice || g.Label("female") != "Female" || g.Label("prefer_not_to_say") != "prefer_not_to_say" {
		t.Errorf("gender %+v", g)
	}
	if c := m.Main.Columns[4]; c.Label("yes") != "Yes" {
		t.Errorf("oneOf label %+v", c)
	}
	if c := m.Tables[1].Columns[1]; c.Kind != KindInteger || c.Title != "Member age" {
		t.Errorf("$ref column %+v", c)
	}
	if lat, lon, _ := m.Main.Geo(); lat != 6 || lon != 7 {
		t.Errorf("geo %d %d", lat, lon)
	}
}

func records(recs ...domain.Record) iter.Seq2[domain.Record, error] {
	return func(yield func(domain.Record, error) bool) {
		for _, r := range recs {
			if !yield(r, nil) {
				return
			}
		}
	}
}

var at = time.Date(2026, 3, 1, 8, 0, 0, 0, time.UTC)

func testRecords() []domain.Record {
	return []domain.Record{
		{ID: "r1", FormID: "household", FormVersion: "1", Rev: "1-a", CreatedBy: "device:t1", DeviceID: "t1", CreatedAt: at, UpdatedAt: at, ReviewState: "received",
			Data: json.RawMessage(`{"village":"Kora, \"north\"","visit_date":"2026-02-28","respondent":{"age":34,"gender":"female"},"feels_safe":"yes",` +
				`"threats":["theft","gbv"],"location":{"latitude":4.85,"longitude":31.6,"altitude":500},` +
				`"members":[{"name":"Awa","age":12,"jobs":[{"kind":"farm"}]},{"name":"Ali","age":40}],"income":1250.5,"extra":1}`)},
		{ID: "r2", FormID: "household", FormVersion: "2", Rev: "1-b", CreatedBy: "ana", CreatedAt: at.Add(time.Minute), UpdatedAt: at.Add(time.Hour),
			ReviewState: "approved", Conflicts: []domain.Conflict{{Path: "/village"}},
			Data: json.RawMessage(`{"village":"Gudele\nline two","consent":true,"respondent":{"phone":"+211"}}`)},
	}
}

func TestCSV(t *testing.T) {
	m := testModel(t)
	var b bytes.Buffer
	n, err := Write(context.Background(), &b, m, records(testRecords()...), Options{Format: FormatCSV, BOM: true, Labels: true})
	if err != nil || n != 2 {
		t.Fatal(n, err)
	}
	if !strings.HasPrefix(b.String(), bom) {
		t.Error("no BOM")
	}
	rows, err := csv.NewReader(strings.NewReader(strings.TrimPrefix(b.String(), bom))).ReadAll()
	if err != nil {
		t.Fatal(err)
	}
	head := rows[0]
	col := func(row []string, name string) string { return row[slices.Index(head, name)] }
	if len(rows) != 3 || col(rows[1], "village") != `Kora, "north"` || col(rows[1], "respondent/gender") != "Female" ||
		col(rows[1], "threats") != "theft; Gender-based violence" || col(rows[1], "location/latitude") != "4.85" ||
		col(rows[1], "has_conflicts") != "false" || col(rows[2], "has_conflicts") != "true" || col(rows[2], "village") != "Gudele\nline two" ||
		col(rows[2], "consent") != "true" || col(rows[1], "created_at") != "2026-03-01T08:00:00.000Z" {
		t.Errorf("csv:\n%s", b.String())
	}
	var members []map[string]any
	if err := json.Unmarshal([]byte(col(rows[1], "members")), &members); err != nil || len(members) != 2 {
		t.Errorf("members cell %q: %v", col(rows[1], "members"), err)
	}
}

func TestXLSX(t *testing.T) {
	m := testModel(t)
	var b bytes.Buffer
	if _, err := Write(context.Background(), &b, m, records(testRecords()...), Options{Format: FormatXLSX}); err != nil {
		t.Fatal(err)
	}
	f, err := excelize.OpenReader(&b)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	if got := f.GetSheetList(); !slices.Equal(got, []string{"household", "household-members", "household-members-jobs", "codebook"}) {
		t.Errorf("sheets %v", got)
	}
	rows, err := f.GetRows("household-members")
	if err != nil {
		t.Fatal(err)
	}
	if len(rows) != 3 || !slices.Equal(rows[0], []string{"name", "age", "PARENT_KEY", "KEY"}) || !slices.Equal(rows[2], []string{"Ali", "40", "r1", "r1/members[2]"}) {
		t.Errorf("members sheet %q", rows)
	}
	jobs, _ := f.GetRows("household-members-jobs")
	if len(jobs) != 2 || !slices.Equal(jobs[1], []string{"farm", "r1/members[1]", "r1/members[1]/jobs[1]"}) {
		t.Errorf("jobs sheet %q", jobs)
	}
	// Numbers are numbers, dates are dates (the raw value is the Excel serial).
	if v, _ := f.GetCellValue("household", "L1"); v != "respondent/age" {
		t.Errorf("L1 %q", v)
	}
	if v, _ := f.GetCellValue("household", "L2", excelize.Options{RawCellValue: true}); v != "34" {
		t.Errorf("age %q", v)
	}
	if typ, _ := f.GetCellType("household", "L2"); typ == excelize.CellTypeInlineString || typ == excelize.CellTypeSharedString {
		t.Errorf("age cell type %v", typ)
	}
	if v, _ := f.GetCellValue("household", "K2", excelize.Options{RawCellValue: true}); v != "46081" {
		t.Errorf("visit date serial %q", v)
	}
	panes, err := f.GetPanes("household")
	if err != nil || !panes.Freeze || panes.YSplit != 1 {
		t.Errorf("panes %+v %v", panes, err)
	}
	cb, _ := f.GetRows(CodebookSheet)
	found := false
	for _, r := range cb {
		if len(r) == 6 && r[1] == "respondent/gender" && r[4] == "female" && r[5] == "Female" {
			found = true
		}
	}
	if !found {
		t.Errorf("codebook %q", cb)
	}
}
