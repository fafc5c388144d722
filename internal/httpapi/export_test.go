package httpapi

import (
	"archive/zip"
	"bytes"
	"context"
	"encoding/csv"
	"encoding/json"
	"fmt"
	"io"
	"math"
	"net/http"
	"net/http/httptest"
	"net/url"
	"os"
	"slices"
	"strconv"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/getkin/kin-openapi/openapi3filter"
	"github.com/google/uuid"
	"github.com/xuri/excelize/v2"

	"github.com/fieldsync/fieldsync/api"
	"github.com/fieldsync/fieldsync/internal/audit"
	"github.com/fieldsync/fieldsync/internal/domain"
	"github.com/fieldsync/fieldsync/internal/store/mongo"
	"github.com/fieldsync/fieldsync/internal/store/mongo/mongotest"
)

func init() {
	// The spec check reads these answers as opaque bytes.
	openapi3filter.RegisterBodyDecoder("application/vnd.openxmlformats-officedocument.spreadsheetml.sheet", openapi3filter.FileBodyDecoder)
	openapi3filter.RegisterBodyDecoder("application/x-ndjson", openapi3filter.FileBodyDecoder)
	openapi3filter.RegisterBodyDecoder("application/zip", openapi3filter.FileBodyDecoder)
	openapi3filter.RegisterBodyDecoder("text/csv", openapi3filter.FileBodyDecoder)
}

// exportEnv is a project "safety" with the form "household" (versions 1 and
// 2 of internal/export/testdata), two tablets and an analyst.
type exportEnv struct {
	*syncEnv
}

// newExportEnv starts a server on the named store ("sqlite" or "mongo").
func newExportEnv(t *testing.T, store string, opts ...testOption) *exportEnv {
	t.Helper()
	if store == "mongo" {
		opts = append(opts, withConfig(func(c *Config) {
			st, err := mongo.Open(context.Background(), mongotest.Config(t))
			if err != nil {
				t.Fatal(err)
			}
			t.Cleanup(func() { st.Close() })
			c.Store = st
		}))
	}
	ts := newTestServer(t, opts...)
	e := &exportEnv{&syncEnv{ts: ts, admin: ts.adminToken(t)}}
	ts.want(t, http.StatusCreated, http.MethodPost, "/v1/projects", e.admin, api.CreateProjectRequest{ID: syncProject, Title: "Safety"}, nil)
	for _, v := range []string{"1", "2"} {
		def, err := os.ReadFile("../export/testdata/household-v" + v + ".json")
		if err != nil {
			t.Fatal(err)
		}
		ctx := context.Background()
		if _, _, err := ts.srv.forms.PutVersion(ctx, syncProject, "household", v, def); err != nil {
			t.Fatal(err)
		}
		if _, err := ts.srv.forms.Publish(ctx, syncProject, "household", v); err != nil {
			t.Fatal(err)
		}
	}
	e.devA = e.enroll(t, "tablet A")
	e.devB = e.enroll(t, "tablet B")
	e.analyst = ts.addUser(t, e.admin, "ana", syncProject, api.RoleAnalyst)
	return e
}

// householdData is the answers of record i: every kind of column, text that
// csv must quote, repeats with nested repeats, and a few answers left out.
func householdData(i int) string {
	members := `[]`
	if i%3 != 0 {
		members = fmt.Sprintf(`[{"name": "Awa %d", "age": %d, "jobs": [{"kind": "farm"}, {"kind": "market, \"small\""}]}, {"name": "Ali", "age": 40}]`, i, i%90)
	}
	loc := ""
	if i%4 != 0 {
		loc = fmt.Sprintf(`, "location": {"latitude": %.4f, "longitude": 31.%d, "altitude": 500}`, 4+float64(i)/1000, i)
	}
	return fmt.Sprintf(`{"village": "Kora %d, \"north\"\nline 2 é", "visit_date": "2026-02-%02d",
		"respondent": {"age": %d, "gender": %q}, "feels_safe": %q, "threats": %s%s,
		"members": %s, "income": %d.25}`,
		i, 1+i%28, 18+i%60, []string{"female", "male", "prefer_not_to_say"}[i%3], []string{"yes", "no"}[i%2],
		[]string{`["theft", "gbv"]`, `[]`, `["flood"]`}[i%3], loc, members, 1000+i)
}

// seed pushes n records from the two tablets (version 2 for every fifth, with
// consent), reviews some, deletes one, and returns the ids pushed.
func (e *exportEnv) seed(t *testing.T, n int) []string {
	t.Helper()
	var ids []string
	var batch []any
	flush := func(tok string) {
		if len(batch) > 0 {
			e.push(t, tok, batch...)
			batch = batch[:0]
		}
	}
	for i := range n {
		s := api.Submission{ID: uuid.NewString(), Form: "household", FormVersion: "1", ClientModifiedAt: clockBase, Data: json.RawMessage(householdData(i))}
		if i%5 == 4 {
			s.FormVersion = "2"
			var m map[string]any
			_ = json.Unmarshal(s.Data, &m)
			m["consent"] = i%2 == 0
			s.Data, _ = json.Marshal(m)
		}
		ids = append(ids, s.ID)
		batch = append(batch, s)
		if len(batch) == 500 {
			flush([]string{e.devA.token, e.devB.token}[(i/500)%2])
		}
	}
	flush(e.devB.token)
	return ids
}

// exportCall GETs an export and fails unless it answers 200.
func (e *exportEnv) exportCall(t *testing.T, query string) (*http.Response, []byte) {
	t.Helper()
	resp, body := e.ts.call(t, http.MethodGet, "/v1/projects/"+syncProject+"/forms/household/export?"+query, e.analyst, nil)
	if resp.StatusCode != http.StatusOK {
		t.Fatalf("export %s: %d %s", query, resp.StatusCode, body)
	}
	return resp, body
}

// stored reads the form's records as the records listing serves them.
func (e *exportEnv) stored(t *testing.T, query string) []api.Record {
	t.Helper()
	var all []api.Record
	cursor := ""
	for range 1000 {
		var page api.RecordPage
		e.ts.want(t, http.StatusOK, http.MethodGet, "/v1/projects/"+syncProject+"/forms/household/records?limit=1000&"+query+"&cursor="+url.QueryEscape(cursor), e.analyst, nil, &page)
		for _, r := range page.Records {
			if !r.Deleted {
				all = append(all, r)
			}
		}
		if page.Next == "" {
			return all
		}
		cursor = page.Next
	}
	t.Fatal("no end")
	return nil
}

// lookup finds a column's value in a record's data by its "/" path.
func lookup(data map[string]any, path string) (any, bool) {
	var cur any = data
	for _, p := range strings.Split(path, "/") {
		m, ok := cur.(map[string]any)
		if !ok {
			return nil, false
		}
		if cur, ok = m[p]; !ok {
			return nil, false
		}
	}
	return cur, true
}

func decodeData(t *testing.T, raw json.RawMessage) map[string]any {
	t.Helper()
	d := json.NewDecoder(bytes.NewReader(raw))
	d.UseNumber()
	var m map[string]any
	if err := d.Decode(&m); err != nil {
		t.Fatal(err)
	}
	return m
}

// wantText is what csv must hold for a value: the reference the writers are
// checked against, written from protocol.md §4 and not from the writers.
func wantText(v any, ok bool) string {
	if !ok || v == nil {
		return ""
	}
	switch v := v.(type) {
	case string:
		return v
	case json.Number:
		return v.String()
	case bool:
		return strconv.FormatBool(v)
	case []any:
		var parts []string
		for _, x := range v {
			if _, obj := x.(map[string]any); obj {
				b, _ := json.Marshal(v)
				return string(b)
			}
			parts = append(parts, wantText(x, true))
		}
		return strings.Join(parts, " ")
	}
	b, _ := json.Marshal(v)
	return string(b)
}

func metaWant(r api.Record) map[string]string {
	return map[string]string{"id": r.ID, "form_version": r.FormVersion, "rev": r.Rev, "created_by": r.CreatedBy,
		"device_id": r.DeviceID, "review_state": r.ReviewState, "has_conflicts": strconv.FormatBool(len(r.Conflicts) > 0)}
}

// sameJSONText compares a cell holding JSON with the stored value.
func sameJSONText(got string, want any) bool {
	var g any
	d := json.NewDecoder(strings.NewReader(got))
	d.UseNumber()
	if d.Decode(&g) != nil {
		return false
	}
	a, _ := json.Marshal(g)
	b, _ := json.Marshal(want)
	return bytes.Equal(a, b)
}

// checkCSV reads a csv export with encoding/csv and compares every row with
// the stored records, column by column.
func checkCSV(t *testing.T, body []byte, recs []api.Record) {
	t.Helper()
	rows, err := csv.NewReader(bytes.NewReader(body)).ReadAll()
	if err != nil {
		t.Fatalf("encoding/csv: %v", err)
	}
	if len(rows) != len(recs)+1 {
		t.Fatalf("%d rows for %d records", len(rows)-1, len(recs))
	}
	head := rows[0]
	wantHead := []string{"id", "form_version", "rev", "created_by", "device_id", "created_at", "updated_at", "review_state", "has_conflicts",
		"village", "visit_date", "respondent/age", "respondent/gender", "feels_safe", "threats", "location/latitude",
		"location/longitude", "location/altitude", "location/accuracy", "members", "income", "respondent/phone", "consent"}
	// Version 2 adds respondent/phone and consent: an export of version 1
	// only has version 1's columns.
	if len(head) < 21 || !slices.Equal(head, wantHead[:len(head)]) {
		t.Fatalf("header\n got %q\nwant %q", head, wantHead)
	}
	for i, r := range recs {
		row := rows[i+1]
		meta := metaWant(r)
		data := decodeData(t, r.Data)
		for j, name := range head {
			got := row[j]
			switch name {
			case "created_at", "updated_at":
				ts, err := time.Parse(time.RFC3339Nano, got)
				want := r.CreatedAt
				if name == "updated_at" {
					want = r.UpdatedAt
				}
				if err != nil || !ts.Equal(want) {
					t.Errorf("record %d %s: %q, want %s", i, name, got, want)
				}
				continue
			}
			if w, ok := meta[name]; ok {
				if got != w {
					t.Errorf("record %d %s: %q, want %q", i, name, got, w)
				}
				continue
			}
			v, ok := lookup(data, name)
			if name == "members" && ok {
				if !sameJSONText(got, v) {
					t.Errorf("record %d members: %q, want %v", i, got, v)
				}
				continue
			}
			if want := wantText(v, ok); got != want {
				t.Errorf("record %d %s: %q, want %q", i, name, got, want)
			}
		}
	}
}

// TestExportCSVAndXLSX exports the same records as csv and xlsx, reads them
// back with encoding/csv and excelize, and compares every cell with the
// stored records, on both stores.
func TestExportCSVAndXLSX(t *testing.T) {
	for _, store := range []string{"sqlite", "mongo"} {
		t.Run(store, func(t *testing.T) {
			e := newExportEnv(t, store)
			ids := e.seed(t, 24)
			// Review a few, and delete one: tombstones are not exported.
			for i, id := range ids[:6] {
				state := []string{api.ReviewApproved, api.ReviewHasIssues}[i%2]
				e.ts.want(t, http.StatusOK, http.MethodPatch, recordPath(id), e.analyst, api.RecordPatch{ReviewState: &state}, nil)
			}
			recs := e.stored(t, "")
			del := recs[7]
			del.Deleted = true
			e.push(t, e.devB.token, api.Submission{ID: del.ID, Form: "household", FormVersion: del.FormVersion, BaseRev: &del.Rev, Deleted: true, ClientModifiedAt: clockBase.Add(time.Hour), Data: json.RawMessage(`{}`)})
			recs = e.stored(t, "")
			if len(recs) != 23 {
				t.Fatalf("%d records stored", len(recs))
			}

			resp, body := e.exportCall(t, "format=csv")
			if ct := resp.Header.Get("Content-Type"); ct != "text/csv; charset=utf-8" {
				t.Errorf("Content-Type %q", ct)
			}
			if cd := resp.Header.Get("Content-Disposition"); cd != `attachment; filename="household.csv"` {
				t.Errorf("Content-Disposition %q", cd)
			}
			if _, err := time.Parse(time.RFC3339Nano, resp.Header.Get(UntilHeader)); err != nil {
				t.Errorf("%s: %q", UntilHeader, resp.Header.Get(UntilHeader))
			}
			checkCSV(t, body, recs)

			// Filters select the same records as the listing's.
			_, body = e.exportCall(t, "format=csv&review_state=approved,has_issues&version=1")
			checkCSV(t, body, e.stored(t, "review_state=approved&review_state=has_issues&version=1"))
			_, body = e.exportCall(t, "format=csv&device="+e.devA.id)
			checkCSV(t, body, e.stored(t, "device="+e.devA.id))
			since := recs[0].CreatedAt.Add(time.Millisecond).Format(time.RFC3339Nano)
			_, body = e.exportCall(t, "format=csv&since="+url.QueryEscape(since))
			checkCSV(t, body, e.stored(t, "since="+url.QueryEscape(since)))

			// The BOM, and labels.
			_, body = e.exportCall(t, "format=csv&bom=true&labels=true")
			if !bytes.HasPrefix(body, []byte("\xef\xbb\xbf")) {
				t.Error("bom=true: no BOM")
			}
			lrows, err := csv.NewReader(bytes.NewReader(body[3:])).ReadAll()
			if err != nil {
				t.Fatal(err)
			}
			gi, fi, ti := slices.Index(lrows[0], "respondent/gender"), slices.Index(lrows[0], "feels_safe"), slices.Index(lrows[0], "threats")
			for i, r := range recs {
				d := decodeData(t, r.Data)
				g, _ := lookup(d, "respondent/gender")
				wantG := map[string]string{"female": "Female", "male": "Male", "prefer_not_to_say": "prefer_not_to_say"}[g.(string)]
				f, _ := lookup(d, "feels_safe")
				wantF := map[string]string{"yes": "Yes", "no": "No"}[f.(string)]
				th, _ := lookup(d, "threats")
				var wantT []string
				for _, x := range th.([]any) {
					wantT = append(wantT, map[string]string{"theft": "theft", "gbv": "Gender-based violence", "flood": "flood"}[x.(string)])
				}
				row := lrows[i+1]
				if row[gi] != wantG || row[fi] != wantF || row[ti] != strings.Join(wantT, "; ") {
					t.Errorf("labels of record %d: %q %q %q", i, row[gi], row[fi], row[ti])
				}
			}

			_, body = e.exportCall(t, "format=xlsx")
			checkXLSX(t, body, recs)
		})
	}
}

// checkXLSX reads an xlsx export with excelize and compares it with the
// stored records: typed numbers and dates, repeats in their own sheets with
// PARENT_KEY and KEY, a frozen header, the codebook.
func checkXLSX(t *testing.T, body []byte, recs []api.Record) {
	t.Helper()
	f, err := excelize.OpenReader(bytes.NewReader(body))
	if err != nil {
		t.Fatalf("excelize: %v", err)
	}
	defer f.Close()
	if got := f.GetSheetList(); !slices.Equal(got, []string{"household", "household-members", "household-members-jobs", "codebook"}) {
		t.Fatalf("sheets %v", got)
	}
	raw := excelize.Options{RawCellValue: true}
	rows, err := f.GetRows("household", raw)
	if err != nil {
		t.Fatal(err)
	}
	if len(rows) != len(recs)+1 {
		t.Fatalf("%d rows for %d records", len(rows)-1, len(recs))
	}
	head := rows[0]
	if slices.Contains(head, "members") {
		t.Error("the repeat is a column of the main sheet too")
	}
	if p, err := f.GetPanes("household"); err != nil || !p.Freeze || p.YSplit != 1 {
		t.Errorf("header not frozen: %+v %v", p, err)
	}
	var wantMembers, wantJobs [][]string
	for i, r := range recs {
		row := rows[i+1]
		row = append(row, make([]string, len(head)-len(row))...) // GetRows drops empty trailing cells
		meta := metaWant(r)
		data := decodeData(t, r.Data)
		for j, name := range head {
			got := row[j]
			cell, _ := excelize.CoordinatesToCellName(j+1, i+2)
			switch name {
			case "created_at", "updated_at", "visit_date":
				want := r.CreatedAt
				if name == "updated_at" {
					want = r.UpdatedAt
				}
				if name == "visit_date" {
					v, _ := lookup(data, name)
					want, _ = time.Parse(time.DateOnly, v.(string))
				}
				serial, err := strconv.ParseFloat(got, 64)
				if err != nil {
					t.Errorf("record %d %s: %q is not an Excel date", i, name, got)
					continue
				}
				// excelize.ExcelDateToTime rounds to the second: read the serial
				// (days since 1899-12-30) to the millisecond.
				ts := time.Date(1899, 12, 30, 0, 0, 0, 0, time.UTC).Add(time.Duration(math.Round(serial*86400e3)) * time.Millisecond)
				if ts.Sub(want).Abs() > time.Millisecond {
					t.Errorf("record %d %s: %s, want %s", i, name, ts, want)
				}
				continue
			case "has_conflicts", "consent":
				v, ok := lookup(data, name)
				want := map[bool]string{true: "1", false: "0"}
				if name == "has_conflicts" {
					v, ok = len(r.Conflicts) > 0, true
				}
				if (!ok && got != "") || (ok && got != want[v.(bool)]) {
					t.Errorf("record %d %s: %q, want %v", i, name, got, v)
				}
				if typ, _ := f.GetCellType("household", cell); ok && typ != excelize.CellTypeBool {
					t.Errorf("record %d %s: cell type %v", i, name, typ)
				}
				continue
			}
			if w, ok := meta[name]; ok {
				if got != w {
					t.Errorf("record %d %s: %q, want %q", i, name, got, w)
				}
				continue
			}
			v, ok := lookup(data, name)
			if n, isNum := v.(json.Number); isNum {
				want, _ := n.Float64()
				g, err := strconv.ParseFloat(got, 64)
				if err != nil || math.Abs(g-want) > 1e-9 {
					t.Errorf("record %d %s: %q, want %v", i, name, got, want)
				}
				if typ, _ := f.GetCellType("household", cell); typ == excelize.CellTypeInlineString || typ == excelize.CellTypeSharedString {
					t.Errorf("record %d %s: a number written as text", i, name)
				}
				continue
			}
			if want := wantText(v, ok); got != want {
				t.Errorf("record %d %s: %q, want %q", i, name, got, want)
			}
		}
		ms, _ := lookup(data, "members")
		for k, m := range ms.([]any) {
			mm := m.(map[string]any)
			key := fmt.Sprintf("%s/members[%d]", r.ID, k+1)
			wantMembers = append(wantMembers, []string{mm["name"].(string), mm["age"].(json.Number).String(), r.ID, key})
			js, _ := mm["jobs"].([]any)
			for l, j := range js {
				wantJobs = append(wantJobs, []string{j.(map[string]any)["kind"].(string), key, fmt.Sprintf("%s/jobs[%d]", key, l+1)})
			}
		}
	}
	members, _ := f.GetRows("household-members", raw)
	if !slices.Equal(members[0], []string{"name", "age", "PARENT_KEY", "KEY"}) || len(members) != len(wantMembers)+1 {
		t.Fatalf("members sheet: %q…, %d rows for %d items", members[0], len(members)-1, len(wantMembers))
	}
	for i, w := range wantMembers {
		if !slices.Equal(members[i+1], w) {
			t.Errorf("member %d: %q, want %q", i, members[i+1], w)
		}
	}
	jobs, _ := f.GetRows("household-members-jobs", raw)
	if len(jobs) != len(wantJobs)+1 {
		t.Fatalf("jobs sheet: %d rows for %d items", len(jobs)-1, len(wantJobs))
	}
	for i, w := range wantJobs {
		if !slices.Equal(jobs[i+1], w) {
			t.Errorf("job %d: %q, want %q", i, jobs[i+1], w)
		}
	}
	cb, _ := f.GetRows("codebook")
	var labelled, typed bool
	for _, r := range cb {
		if len(r) == 6 && r[0] == "household" && r[1] == "threats" && r[4] == "gbv" && r[5] == "Gender-based violence" {
			labelled = true
		}
		if len(r) >= 4 && r[0] == "household-members" && r[1] == "age" && r[2] == "Member age" && r[3] == "integer" {
			typed = true
		}
	}
	if !labelled || !typed {
		t.Errorf("codebook lacks a choice label or a repeat's column: %q", cb)
	}
}

// TestExportFormats checks csv.zip, ndjson and geojson against the stored
// records, and the answers to bad parameters.
func TestExportFormats(t *testing.T) {
	e := newExportEnv(t, "sqlite")
	e.seed(t, 9)
	recs := e.stored(t, "")

	_, body := e.exportCall(t, "format=csv.zip&bom=true")
	zr, err := zip.NewReader(bytes.NewReader(body), int64(len(body)))
	if err != nil {
		t.Fatal(err)
	}
	files := map[string][][]string{}
	for _, f := range zr.File {
		rc, err := f.Open()
		if err != nil {
			t.Fatal(err)
		}
		b, _ := io.ReadAll(rc)
		rc.Close()
		if !bytes.HasPrefix(b, []byte("\xef\xbb\xbf")) {
			t.Errorf("%s: no BOM", f.Name)
		}
		if files[f.Name], err = csv.NewReader(bytes.NewReader(b[3:])).ReadAll(); err != nil {
			t.Fatalf("%s: %v", f.Name, err)
		}
	}
	main, members, jobs := files["household.csv"], files["household-members.csv"], files["household-members-jobs.csv"]
	if len(files) != 3 || len(main) != len(recs)+1 || slices.Contains(main[0], "members") {
		t.Fatalf("csv.zip: %d files, main %d rows", len(files), len(main))
	}
	nMembers := 0
	for _, r := range recs {
		ms, _ := lookup(decodeData(t, r.Data), "members")
		nMembers += len(ms.([]any))
	}
	if len(members) != nMembers+1 || !slices.Equal(members[0], []string{"name", "age", "PARENT_KEY", "KEY"}) || len(jobs) < 2 {
		t.Errorf("repeat tables: %d members for %d, %d jobs", len(members)-1, nMembers, len(jobs)-1)
	}
	// Every PARENT_KEY names a row of the parent table.
	keys := map[string]bool{}
	for _, r := range main[1:] {
		keys[r[0]] = true
	}
	for _, m := range members[1:] {
		if !keys[m[2]] {
			t.Errorf("member %q: no parent", m)
		}
		keys[m[3]] = true
	}
	for _, j := range jobs[1:] {
		if !keys[j[1]] {
			t.Errorf("job %q: no parent", j)
		}
	}

	resp, body := e.exportCall(t, "format=ndjson")
	if ct := resp.Header.Get("Content-Type"); ct != "application/x-ndjson" {
		t.Errorf("ndjson Content-Type %q", ct)
	}
	lines := strings.Split(strings.TrimSuffix(string(body), "\n"), "\n")
	if len(lines) != len(recs) {
		t.Fatalf("%d ndjson lines for %d records", len(lines), len(recs))
	}
	for i, l := range lines {
		var got struct {
			ID   string          `json:"id"`
			Rev  string          `json:"rev"`
			Data json.RawMessage `json:"data"`
		}
		if err := json.Unmarshal([]byte(l), &got); err != nil || got.ID != recs[i].ID || got.Rev != recs[i].Rev || !sameJSONText(string(got.Data), decodeData(t, recs[i].Data)) {
			t.Errorf("ndjson line %d: %s (%v)", i, l, err)
		}
	}

	_, body = e.exportCall(t, "format=geojson&labels=true")
	var fc struct {
		Type     string `json:"type"`
		Features []struct {
			ID       string `json:"id"`
			Geometry *struct {
				Type        string    `json:"type"`
				Coordinates []float64 `json:"coordinates"`
			} `json:"geometry"`
			Properties map[string]any `json:"properties"`
		} `json:"features"`
	}
	if err := json.Unmarshal(body, &fc); err != nil || fc.Type != "FeatureCollection" || len(fc.Features) != len(recs) {
		t.Fatalf("geojson: %v, %d features", err, len(fc.Features))
	}
	for i, f := range fc.Features {
		d := decodeData(t, recs[i].Data)
		lat, ok := lookup(d, "location/latitude")
		if !ok {
			if f.Geometry != nil {
				t.Errorf("feature %d: a geometry without a location", i)
			}
			continue
		}
		lon, _ := lookup(d, "location/longitude")
		la, _ := lat.(json.Number).Float64()
		lo, _ := lon.(json.Number).Float64()
		if f.ID != recs[i].ID || f.Geometry == nil || f.Geometry.Type != "Point" || len(f.Geometry.Coordinates) != 3 ||
			f.Geometry.Coordinates[0] != lo || f.Geometry.Coordinates[1] != la || f.Properties["review_state"] != recs[i].ReviewState {
			t.Errorf("feature %d: %+v", i, f)
		}
		if g, _ := lookup(d, "respondent/gender"); g == "female" && f.Properties["respondent/gender"] != "Female" {
			t.Errorf("feature %d: gender %v, not its label", i, f.Properties["respondent/gender"])
		}
	}

	for _, tc := range []struct{ query, code string }{
		{"format=pdf", "invalid_query"},
		{"fromat=csv", "unknown_parameter"},
		{"format=csv&labels=yes", "invalid_query"},
		{"since=yesterday", "invalid_query"},
		{"review_state=approvd", "invalid_query"},
		{"since=2026-03-02&until=2026-03-01", "invalid_query"},
		{"format=csv&attachments=true", "invalid_query"},
	} {
		resp, body := e.ts.call(t, http.MethodGet, "/v1/projects/"+syncProject+"/forms/household/export?"+tc.query, e.analyst, nil)
		problemOf(t, resp, body, http.StatusBadRequest, tc.code)
	}
	resp, body = e.ts.call(t, http.MethodGet, "/v1/projects/"+syncProject+"/forms/nosuch/export", e.analyst, nil)
	problemOf(t, resp, body, http.StatusNotFound, "form_not_found")

	// Every export leaves an audit event (the data left the server).
	evs, _, err := e.ts.store.ListAudit(context.Background(), domain.AuditFilter{Type: audit.DatasetExported}, "", 100)
	if err != nil || len(evs) != 3 || evs[0].Detail["format"] != "geojson" || evs[0].Detail["records"] != strconv.Itoa(len(recs)) || evs[0].Actor != "ana" {
		t.Errorf("audit: %v %+v", err, evs)
	}
}

// TestFormRecordsFilters: the listing filters with the export's query and
// refuses parameters it does not know.
func TestFormRecordsFilters(t *testing.T) {
	e := newExportEnv(t, "sqlite")
	ids := e.seed(t, 12)
	state := api.ReviewApproved
	for _, id := range ids[:3] {
		e.ts.want(t, http.StatusOK, http.MethodPatch, recordPath(id), e.analyst, api.RecordPatch{ReviewState: &state}, nil)
	}
	all := e.stored(t, "")
	if len(all) != 12 {
		t.Fatalf("%d records", len(all))
	}
	got := e.stored(t, "review_state=approved")
	if len(got) != 3 {
		t.Errorf("approved: %d records", len(got))
	}
	for _, r := range got {
		if r.ReviewState != api.ReviewApproved || !slices.Contains(ids[:3], r.ID) {
			t.Errorf("approved listing holds %s (%s)", r.ID, r.ReviewState)
		}
	}
	if got := e.stored(t, "version=2"); len(got) != 2 {
		t.Errorf("version 2: %d records", len(got))
	}
	if got := e.stored(t, "device="+e.devB.id); len(got) != 12 {
		t.Errorf("device B: %d records", len(got))
	}
	if got := e.stored(t, "device="+e.devA.id); len(got) != 0 {
		t.Errorf("device A: %d records", len(got))
	}
	until := all[0].CreatedAt.Add(time.Millisecond).Format(time.RFC3339Nano)
	if got := e.stored(t, "until="+url.QueryEscape(until)); len(got) != 12 {
		// One push: every record has the same receive time.
		t.Errorf("until: %d records", len(got))
	}
	if got := e.stored(t, "since="+url.QueryEscape(until)); len(got) != 0 {
		t.Errorf("since: %d records", len(got))
	}
	for _, tc := range []struct{ query, code string }{
		{"reviewstate=approved", "unknown_parameter"},
		{"review_state=done", "invalid_query"},
		{"until=03/01/2026", "invalid_query"},
	} {
		resp, body := e.ts.call(t, http.MethodGet, "/v1/projects/"+syncProject+"/forms/household/records?"+tc.query, e.analyst, nil)
		p := problemOf(t, resp, body, http.StatusBadRequest, tc.code)
		if tc.code == "unknown_parameter" && !strings.Contains(p.Detail, "reviewstate") {
			t.Errorf("the problem does not name the parameter: %+v", p)
		}
	}
}

// stallingQuery blocks the second QueryRecords call of an export until its
// context ends, and counts the calls.
type stallingQuery struct {
	domain.Store
	calls     atomic.Int32
	reached   chan struct{}
	cancelled chan struct{}
}

func (s *stallingQuery) QueryRecords(ctx context.Context, q domain.RecordQuery) (domain.RecordQueryPage, error) {
	if s.calls.Add(1) == 2 {
		close(s.reached)
		select {
		case <-ctx.Done():
			close(s.cancelled)
			return domain.RecordQueryPage{}, ctx.Err()
		case <-time.After(30 * time.Second):
		}
	}
	return s.Store.QueryRecords(ctx, q)
}

// TestExportClientGone: a client that hangs up mid-export stops the query.
func TestExportClientGone(t *testing.T) {
	var sq *stallingQuery
	e := newExportEnv(t, "sqlite", withConfig(func(c *Config) {
		sq = &stallingQuery{Store: c.Store, reached: make(chan struct{}), cancelled: make(chan struct{})}
		c.Store = sq
	}))
	e.seed(t, 600) // two pages
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	req, _ := http.NewRequestWithContext(ctx, http.MethodGet, e.ts.URL+"/v1/projects/"+syncProject+"/forms/household/export?format=csv", nil)
	req.Header.Set("Authorization", "Bearer "+e.analyst)
	done := make(chan error, 1)
	go func() {
		resp, err := http.DefaultClient.Do(req)
		if err == nil {
			_, err = io.Copy(io.Discard, resp.Body)
			resp.Body.Close()
		}
		done <- err
	}()
	select {
	case <-sq.reached:
	case <-time.After(30 * time.Second):
		t.Fatal("the export never read its second page")
	}
	cancel()
	select {
	case <-sq.cancelled:
	case <-time.After(30 * time.Second):
		t.Fatal("the query went on after the client left")
	}
	<-done
	// The handler is done when its audit event is written; no page was read after.
	deadline := time.Now().Add(30 * time.Second)
	for {
		evs, _, err := e.ts.store.ListAudit(context.Background(), domain.AuditFilter{Type: audit.DatasetExported}, "", 10)
		if err != nil {
			t.Fatal(err)
		}
		if len(evs) == 1 {
			if evs[0].Detail["failed"] != "true" {
				t.Errorf("audit of a cut export: %+v", evs[0])
			}
			break
		}
		if time.Now().After(deadline) {
			t.Fatal("the export handler did not end")
		}
		time.Sleep(10 * time.Millisecond)
	}
	if n := sq.calls.Load(); n != 2 {
		t.Errorf("%d pages read, want 2", n)
	}
}

// slowQuery makes every QueryRecords call take at least delay once armed: an
// export that lasts longer than the server's WriteTimeout.
type slowQuery struct {
	domain.Store
	armed atomic.Bool
	delay time.Duration
}

func (s *slowQuery) QueryRecords(ctx context.Context, q domain.RecordQuery) (domain.RecordQueryPage, error) {
	if s.armed.Load() {
		select {
		case <-time.After(s.delay):
		case <-ctx.Done():
			return domain.RecordQueryPage{}, ctx.Err()
		}
	}
	return s.Store.QueryRecords(ctx, q)
}

// TestExportOutlivesWriteTimeout: an export that keeps moving is not cut by
// the http.Server's WriteTimeout (fieldsync sets none, but a deployment may).
func TestExportOutlivesWriteTimeout(t *testing.T) {
	var sq *slowQuery
	e := newExportEnv(t, "sqlite", withConfig(func(c *Config) {
		sq = &slowQuery{Store: c.Store, delay: 150 * time.Millisecond}
		c.Store = sq
	}))
	e.seed(t, 600) // two pages of 500: at least 300 ms
	srv := httptest.NewUnstartedServer(e.ts.srv)
	srv.Config.WriteTimeout = 250 * time.Millisecond
	srv.Start()
	defer srv.Close()
	sq.armed.Store(true)
	req, _ := http.NewRequest(http.MethodGet, srv.URL+"/v1/projects/"+syncProject+"/forms/household/export?format=csv", nil)
	req.Header.Set("Authorization", "Bearer "+e.analyst)
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	rows, err := csv.NewReader(resp.Body).ReadAll()
	if err != nil || len(rows) != 601 {
		t.Fatalf("export past the WriteTimeout: %d rows, %v", len(rows), err)
	}
}
