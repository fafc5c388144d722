package export

import (
	"archive/zip"
	"bytes"
	"context"
	"encoding/json"
	"encoding/xml"
	"errors"
	"fmt"
	"io"
	"os"
	"reflect"
	"slices"
	"strings"
	"testing"
	"time"
	"unicode/utf8"

	"github.com/xuri/excelize/v2"

	"github.com/fieldsync/fieldsync/internal/domain"
)

// awkwardForm has a column of every kind, a repeat group holding another,
// and a second version that retypes a column.
const awkwardForm = `{"title": "Awkward", "schema": {"type": "object", "properties": {
	"text": {"title": "Text", "type": "string"},
	"count": {"title": "Count", "type": "integer"},
	"amount": {"title": "Amount", "type": "number"},
	"flag": {"title": "Flag", "type": "boolean"},
	"day": {"title": "Day", "type": "string", "format": "date"},
	"at": {"title": "At", "type": "string", "format": "date-time"},
	"choice": {"title": "Choice", "oneOf": [{"const": "a", "title": "Ā — alpha"}, {"const": "b", "title": "بيت"}]},
	"code": {"title": "Code", "enum": [1, 2, 3]},
	"many": {"title": "Many", "type": "array", "items": {"enum": ["x", "y", "=z"]}},
	"blob": {"title": "Blob", "type": "object"},
	"where": {"title": "Where", "type": "object", "format": "geopoint"},
	"items": {"title": "Items", "type": "array", "items": {"type": "object", "properties": {
		"label": {"type": "string"},
		"when": {"type": "string", "format": "date"},
		"parts": {"type": "array", "items": {"type": "object", "properties": {"v": {"type": "number"}, "note": {"type": "string"}}}}
	}}}
}}}`

const awkwardFormV2 = `{"title": "Awkward", "schema": {"type": "object", "properties": {
	"text": {"title": "Text", "type": "string"},
	"count": {"title": "Count (v2)", "type": "string"},
	"extra": {"title": "Extra", "type": "string"}
}}}`

func awkwardModel(t testing.TB) *Model {
	t.Helper()
	m, err := Build("awkward", []Version{{Version: "1", Definition: json.RawMessage(awkwardForm)}, {Version: "2", Definition: json.RawMessage(awkwardFormV2)}})
	if err != nil {
		t.Fatal(err)
	}
	return m
}

// awkwardTexts are strings that are hard to put in a spreadsheet cell.
var awkwardTexts = []string{
	"", "plain", " lead", "trail ", "\tboth\t", "\r\nCRLF\r\n", "line one\nline two", "\n",
	"naïve café 日本語 😀 𝄞", "مرحبا بالعالم", "abc مرحبا 123 עברית", "\u202eRTL override\u202c",
	"nul\x00 soh\x01 us\x1f del\x7f", "\ufffe\uffff", "\ufffd kept", "bad utf-8 \xff\xfe\xc3",
	"=1+2", "=HYPERLINK(\"http://example.org\",\"x\")", "+1", "-1", "@SUM(A1)", "=",
	`<b>&amp;</b> "q" 'a' ]]>`, "0123", "1e5", "TRUE",
	"_x0041_", "_x005F_x0041_", "_x0041_x0042_", "_xD800_", "_x005f_", "a_x00_b", "_x005F_",
	strings.Repeat("é", maxCellChars+10), strings.Repeat("😀", maxCellChars/2+5), strings.Repeat("x", maxCellChars),
	strings.Repeat("y", maxCellChars+1), strings.Repeat("z", maxCellChars-1) + "😀", strings.Repeat(" ", 40000),
}

// awkwardRecords exercise every kind of cell: the texts, numbers, dates
// and booleans at their edges, nulls, absent answers, values that do not
// fit their column, and repeat groups.
func awkwardRecords(t testing.TB) []domain.Record {
	t.Helper()
	at := time.Date(2026, 3, 1, 8, 0, 0, 123e6, time.UTC)
	var recs []domain.Record
	add := func(version string, data map[string]any) {
		b, err := json.Marshal(data)
		if err != nil {
			t.Fatal(err)
		}
		i := len(recs)
		recs = append(recs, domain.Record{ID: fmt.Sprintf("rec-%03d", i), FormID: "awkward", FormVersion: version, Rev: "1-x",
			CreatedBy: "device:t", DeviceID: "t", CreatedAt: at.Add(time.Duration(i) * time.Minute), UpdatedAt: at.Add(time.Hour), ReviewState: "received",
			Data: b})
	}
	for _, s := range awkwardTexts {
		data := map[string]any{"text": s}
		if len(s) < 1000 { // the long ones once is enough (and cheaper under -race)
			data["items"] = []any{map[string]any{"label": s, "parts": []any{map[string]any{"note": s}}}}
		}
		add("1", data)
	}
	numbers := []string{"0", "-0", "1.5", "-5", "1e300", "1e-300", "123456789012345678", "0.30000000000000004", "1e21",
		"3.14159265358979323846", "1E400", "12345678901234567890.5", `"12"`, `"12a"`, "true", "[1]", `{"a":1}`}
	for _, n := range numbers {
		add("1", map[string]any{"count": json.RawMessage(n), "amount": json.RawMessage(n), "code": json.RawMessage(n),
			"where": map[string]any{"latitude": json.RawMessage(n), "longitude": 36.7}})
	}
	days := []string{"2024-02-29", "1900-01-01", "1900-02-28", "1900-03-01", "1899-12-31", "1899-12-30", "0001-01-01", "9999-12-31",
		"2024-13-01", "2024-05-01T08:00:00Z", ""}
	for _, d := range days {
		add("1", map[string]any{"day": d, "items": []any{map[string]any{"when": d}, map[string]any{}}})
	}
	times := []string{"2024-05-01T08:10:10+03:00", "2024-05-01T08:10:10.123456789Z", "1899-12-31T23:59:59Z", "1899-12-30T12:00:00Z",
		"2400-01-01T00:00:00Z", "9999-12-31T23:59:59.999Z", "2024-05-01", "not a time"}
	for _, s := range times {
		add("1", map[string]any{"at": s})
	}
	for _, v := range []any{true, false, "yes", 1, nil} {
		add("1", map[string]any{"flag": v})
	}
	add("1", map[string]any{"choice": "a", "many": []any{"x", "=z"}, "code": 2, "blob": map[string]any{"k": "=v"}})
	add("1", map[string]any{"choice": "b", "many": []any{}, "code": 9})
	add("1", map[string]any{"choice": "zz", "many": []any{"x", map[string]any{}}})
	add("1", map[string]any{"choice": nil, "many": nil, "items": []any{}, "text": nil})
	add("1", map[string]any{})
	add("2", map[string]any{"count": "twelve", "extra": "=2*3", "text": "v2"})
	r := domain.Record{ID: "rec-zero-times", FormID: "awkward", FormVersion: "1", Rev: "1-y", CreatedBy: "", ReviewState: "", Data: json.RawMessage(`{"text":"x"}`)}
	r.Conflicts = []domain.Conflict{{Path: "/text"}}
	recs = append(recs, r, domain.Record{ID: "rec-no-data", FormID: "awkward", FormVersion: "1"})
	return recs
}

// TestXLSXMatchesExcelize is the differential test of the xlsx writer: for
// the same records, its file and the one excelize's StreamWriter writes
// (refXLSXWriter) read back the same, cell by cell — value, type, style,
// no formula — with the same sheets and frozen panes; and their parts are
// the same bytes.
func TestXLSXMatchesExcelize(t *testing.T) {
	cases := []struct {
		name string
		m    *Model
		recs []domain.Record
		opt  Options
	}{
		{"awkward", awkwardModel(t), awkwardRecords(t), Options{}},
		{"awkward labels", awkwardModel(t), awkwardRecords(t), Options{Labels: true}},
		{"household", testModel(t), testRecords(), Options{}},
		{"household labels", testModel(t), testRecords(), Options{Labels: true}},
		{"no records", testModel(t), nil, Options{}},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			want, err := refXLSX(tc.m, tc.recs, tc.opt)
			if err != nil {
				t.Fatal(err)
			}
			got, err := newXLSX(tc.m, tc.recs, tc.opt)
			if err != nil {
				t.Fatal(err)
			}
			compareWorkbooks(t, got, want)
			compareParts(t, got, want)
		})
	}
}

// compareWorkbooks reads both files with excelize and compares what a
// reader sees.
func compareWorkbooks(t *testing.T, got, want []byte) {
	t.Helper()
	g, err := excelize.OpenReader(bytes.NewReader(got))
	if err != nil {
		t.Fatalf("excelize cannot open the file: %v", err)
	}
	defer g.Close()
	w, err := excelize.OpenReader(bytes.NewReader(want))
	if err != nil {
		t.Fatal(err)
	}
	defer w.Close()
	sheets := w.GetSheetList()
	if gs := g.GetSheetList(); !slices.Equal(gs, sheets) {
		t.Fatalf("sheets %q, want %q", gs, sheets)
	}
	if g.GetActiveSheetIndex() != w.GetActiveSheetIndex() {
		t.Errorf("active sheet %d, want %d", g.GetActiveSheetIndex(), w.GetActiveSheetIndex())
	}
	styles := map[int]string{}
	for _, sheet := range sheets {
		gp, err1 := g.GetPanes(sheet)
		wp, err2 := w.GetPanes(sheet)
		if err1 != nil || err2 != nil || !reflect.DeepEqual(gp, wp) || !wp.Freeze || wp.YSplit != 1 {
			t.Errorf("%s: panes %+v (%v), want %+v (%v), frozen at row 1", sheet, gp, err1, wp, err2)
		}
		// Values as stored and as shown (the number formats applied).
		var grows [][]string
		for _, opt := range []excelize.Options{{RawCellValue: true}, {}} {
			gr, err := g.GetRows(sheet, opt)
			if err != nil {
				t.Fatal(err)
			}
			wr, err := w.GetRows(sheet, opt)
			if err != nil {
				t.Fatal(err)
			}
			if len(gr) != len(wr) {
				t.Fatalf("%s: %d rows, want %d", sheet, len(gr), len(wr))
			}
			for r := range wr {
				if !slices.Equal(gr[r], wr[r]) {
					t.Errorf("%s row %d (raw %v):\n got %q\nwant %q", sheet, r+1, opt.RawCellValue, short(fmt.Sprint(gr[r])), short(fmt.Sprint(wr[r])))
				}
			}
			grows = gr
		}
		// Each cell's type, style and (no) formula.
		diffs := 0
		for r, row := range grows {
			for c := range row {
				cell, _ := excelize.CoordinatesToCellName(c+1, r+1)
				if d := compareCell(g, w, sheet, cell, styles); d != "" {
					t.Errorf("%s!%s: %s", sheet, cell, d)
					if diffs++; diffs > 10 {
						t.Fatal("too many differences")
					}
				}
			}
		}
	}
}

// compareCell says how a cell's type, style or formula differs between two
// workbooks, "" if not. styles caches the style of an id, compared once.
func compareCell(g, w *excelize.File, sheet, cell string, styles map[int]string) string {
	type view struct {
		Formula string
		Type    excelize.CellType
		StyleID int
	}
	read := func(f *excelize.File) (v view, err error) {
		if v.Formula, err = f.GetCellFormula(sheet, cell); err != nil {
			return
		}
		if v.Type, err = f.GetCellType(sheet, cell); err != nil {
			return
		}
		v.StyleID, err = f.GetCellStyle(sheet, cell)
		return
	}
	gv, err := read(g)
	if err != nil {
		return err.Error()
	}
	wv, err := read(w)
	if err != nil {
		return err.Error()
	}
	if gv.Formula != "" {
		return fmt.Sprintf("a formula %q", gv.Formula)
	}
	if gv != wv {
		return fmt.Sprintf("%+v, want %+v", gv, wv)
	}
	if _, ok := styles[gv.StyleID]; !ok {
		gs, err1 := g.GetStyle(gv.StyleID)
		ws, err2 := w.GetStyle(wv.StyleID)
		if err1 != nil || err2 != nil || !reflect.DeepEqual(gs, ws) {
			return fmt.Sprintf("style %d: %+v (%v), want %+v (%v)", gv.StyleID, gs, err1, ws, err2)
		}
		styles[gv.StyleID] = ""
	}
	return ""
}

func short(s string) string {
	if len(s) > 300 {
		return s[:300] + "…"
	}
	return s
}

// compareParts compares the archives part by part, uncompressed.
func compareParts(t *testing.T, got, want []byte) {
	t.Helper()
	gp, wp := readParts(t, got), readParts(t, want)
	if !slices.Equal(sortedKeys(gp), sortedKeys(wp)) {
		t.Fatalf("parts %q, want %q", sortedKeys(gp), sortedKeys(wp))
	}
	for name, w := range wp {
		g := gp[name]
		if bytes.Equal(g, w) {
			continue
		}
		i := 0
		for i < min(len(g), len(w)) && g[i] == w[i] {
			i++
		}
		from := max(0, i-80)
		t.Errorf("%s differs at byte %d:\n got …%s\nwant …%s", name, i, short(string(g[from:min(len(g), i+200)])), short(string(w[from:min(len(w), i+200)])))
	}
}

func readParts(t *testing.T, b []byte) map[string][]byte {
	t.Helper()
	zr, err := zip.NewReader(bytes.NewReader(b), int64(len(b)))
	if err != nil {
		t.Fatalf("not a zip archive: %v", err)
	}
	parts := map[string][]byte{}
	for _, f := range zr.File {
		rc, err := f.Open()
		if err != nil {
			t.Fatal(err)
		}
		data, err := io.ReadAll(rc) // also checks the CRC
		rc.Close()
		if err != nil {
			t.Fatalf("%s: %v", f.Name, err)
		}
		if _, dup := parts[f.Name]; dup {
			t.Errorf("part %s twice", f.Name)
		}
		parts[f.Name] = data
	}
	return parts
}

func sortedKeys(m map[string][]byte) []string {
	var out []string
	for k := range m {
		out = append(out, k)
	}
	slices.Sort(out)
	return out
}

// TestXLSXAwkwardCells checks, on the xlsx writer's own file read back, what
// an analyst sees of hard values: text that looks like a formula stays
// text, scripts and emoji come back whole, control characters become
// U+FFFD, over-long text is cut at Excel's 32,767 characters, numbers are
// numbers and dates dates. Every XML part is well-formed.
func TestXLSXAwkwardCells(t *testing.T) {
	m := awkwardModel(t)
	recs := awkwardRecords(t)
	b, err := newXLSX(m, recs, Options{})
	if err != nil {
		t.Fatal(err)
	}
	for name, data := range readParts(t, b) {
		dec := xml.NewDecoder(bytes.NewReader(data))
		for {
			if _, err := dec.Token(); err == io.EOF {
				break
			} else if err != nil {
				t.Fatalf("%s is not well-formed XML: %v", name, err)
			}
		}
	}
	f, err := excelize.OpenReader(bytes.NewReader(b))
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	rows, err := f.GetRows("awkward", excelize.Options{RawCellValue: true})
	if err != nil {
		t.Fatal(err)
	}
	head := rows[0]
	col := func(name string) int {
		i := slices.Index(head, name)
		if i < 0 {
			t.Fatalf("no column %s in %q", name, head)
		}
		return i + 1
	}
	cell := func(name string, row int) (string, excelize.CellType, string) {
		t.Helper()
		ref, _ := excelize.CoordinatesToCellName(col(name), row+2)
		v, err := f.GetCellValue("awkward", ref, excelize.Options{RawCellValue: true})
		if err != nil {
			t.Fatal(err)
		}
		typ, _ := f.GetCellType("awkward", ref)
		formula, _ := f.GetCellFormula("awkward", ref)
		return v, typ, formula
	}
	textRow := func(s string) int { return slices.Index(awkwardTexts, s) }
	for _, tc := range []struct{ in, want string }{
		{"=1+2", "=1+2"},
		{"@SUM(A1)", "@SUM(A1)"},
		{"مرحبا بالعالم", "مرحبا بالعالم"},
		{"naïve café 日本語 😀 𝄞", "naïve café 日本語 😀 𝄞"},
		{"nul\x00 soh\x01 us\x1f del\x7f", "nul\ufffd soh\ufffd us\ufffd del\x7f"},
		{"\r\nCRLF\r\n", "\r\nCRLF\r\n"},
		{" lead", " lead"},
		{"_x0041_", "_x0041_"},
		{`<b>&amp;</b> "q" 'a' ]]>`, `<b>&amp;</b> "q" 'a' ]]>`},
		{strings.Repeat("y", maxCellChars+1), strings.Repeat("y", maxCellChars)},
		{strings.Repeat("😀", maxCellChars/2+5), strings.Repeat("😀", maxCellChars/2)},
		{strings.Repeat("z", maxCellChars-1) + "😀", strings.Repeat("z", maxCellChars-1)},
	} {
		v, typ, formula := cell("text", textRow(tc.in))
		if v != tc.want || typ != excelize.CellTypeInlineString || formula != "" {
			t.Errorf("text %q: read back %q (type %v, formula %q), want the text %q", short(tc.in), short(v), typ, formula, short(tc.want))
		}
	}
	n := len(awkwardTexts) // the first number record
	if v, typ, _ := cell("amount", n+2); v != "1.5" || typ == excelize.CellTypeInlineString {
		t.Errorf("1.5: %q %v", v, typ)
	}
	if v, _, _ := cell("amount", n+6); v != "123456789012345000" {
		t.Errorf("a number past 15 digits: %q", v)
	}
	if v, typ, _ := cell("amount", n+12); v != "12" || typ != excelize.CellTypeInlineString {
		t.Errorf(`"12" in a number column: %q %v, want the text`, v, typ)
	}
	d := n + 17 // the first date record
	if v, _, _ := cell("day", d); v != "45351" {
		t.Errorf("2024-02-29: serial %q", v)
	}
	if v, typ, _ := cell("day", d+5); v != "1899-12-30T00:00:00Z" || typ != excelize.CellTypeInlineString {
		t.Errorf("1899-12-30, before Excel's dates: %q %v", v, typ)
	}
	if v, _ := f.GetCellValue("awkward", mustCell(col("day"), d)); v != "02-29-24" {
		t.Errorf("2024-02-29 shown as %q", v)
	}
}

func mustCell(col, row int) string {
	ref, err := excelize.CoordinatesToCellName(col, row+2)
	if err != nil {
		panic(err)
	}
	return ref
}

// FuzzXLSXText checks the escaping of text cells: for any string, the cell
// the xlsx writer writes is well-formed XML, is the same as excelize's
// StreamWriter writes, and reads back as the string (cut to Excel's limit,
// with what XML cannot hold replaced).
//
//	go test -run x -fuzz FuzzXLSXText ./internal/export/
func FuzzXLSXText(f *testing.F) {
	for _, s := range awkwardTexts {
		if len(s) < 1000 {
			f.Add(s)
		}
	}
	f.Add(strings.Repeat("ab", maxCellChars/2) + "\U0001F600")
	f.Fuzz(func(t *testing.T, s string) {
		x := &xlsxWriter{}
		sheet := &xlsxSheet{refs: []string{"A"}, row: []byte("1")}
		got := x.str(nil, sheet, 0, 0, s)
		want := excelizeCell(t, s)
		if !bytes.Equal(got, want) {
			t.Fatalf("cell of %q:\n got %s\nwant %s", short(s), short(string(got)), short(string(want)))
		}
		var c struct {
			T string `xml:"is>t"`
		}
		if err := xml.Unmarshal(got, &c); err != nil {
			t.Fatalf("cell of %q is not XML: %v: %s", short(s), err, short(string(got)))
		}
		if !strings.Contains(s, "_x") { // else the text holds bstr escapes
			if w := xmlSafe(truncateUTF16(s, maxCellChars)); c.T != w {
				t.Fatalf("cell of %q reads back %q, want %q", short(s), short(c.T), short(w))
			}
		}
	})
}

// excelizeCell is the <c> element excelize's StreamWriter writes for s in A1.
func excelizeCell(t *testing.T, s string) []byte {
	t.Helper()
	f := excelize.NewFile()
	defer f.Close()
	sw, err := f.NewStreamWriter("Sheet1")
	if err != nil {
		t.Fatal(err)
	}
	if err := sw.SetRow("A1", []any{s}); err != nil {
		t.Fatal(err)
	}
	if err := sw.Flush(); err != nil {
		t.Fatal(err)
	}
	buf, err := f.WriteToBuffer()
	if err != nil {
		t.Fatal(err)
	}
	sheet := readParts(t, buf.Bytes())["xl/worksheets/sheet1.xml"]
	start := bytes.Index(sheet, []byte(`<row r="1">`)) + len(`<row r="1">`)
	end := bytes.LastIndex(sheet, []byte(`</row>`))
	return sheet[start:end]
}

// xmlSafe is s with each character XML 1.0 cannot hold (and each byte of
// invalid UTF-8) replaced by U+FFFD.
func xmlSafe(s string) string {
	var b strings.Builder
	for i, r := range s {
		if r == utf8.RuneError && !strings.HasPrefix(s[i:], "\ufffd") ||
			r < 0x20 && r != '\t' && r != '\n' && r != '\r' || r == 0xFFFE || r == 0xFFFF {
			r = utf8.RuneError
		}
		b.WriteRune(r)
	}
	return b.String()
}

// countingWriter counts what it is given.
type countingWriter struct{ n int64 }

func (w *countingWriter) Write(p []byte) (int, error) {
	w.n += int64(len(p))
	return len(p), nil
}

// TestXLSXStreams checks that an xlsx export goes out as the records are
// read, not whole at the end (which held the sheets in memory): before the
// last record is read, the client has most of the file. The repeat groups'
// temporary files are gone afterwards, after a failure too.
func TestXLSXStreams(t *testing.T) {
	m := testModel(t)
	base := testRecords()
	const n = 5000
	recs := func(out *countingWriter, before *int64, fail error) iterSeq {
		return func(yield func(domain.Record, error) bool) {
			for i := range n {
				rec := base[1]
				if i%10 == 0 {
					rec = base[0] // with repeat groups
				}
				rec.ID = fmt.Sprintf("r%05d", i)
				if i == n-1 {
					*before = out.n
					if fail != nil {
						yield(domain.Record{}, fail)
						return
					}
				}
				if !yield(rec, nil) {
					return
				}
			}
		}
	}
	dir := t.TempDir()
	var out countingWriter
	var before int64
	if _, err := Write(context.Background(), &out, m, recs(&out, &before, nil), Options{Format: FormatXLSX, TempDir: dir}); err != nil {
		t.Fatal(err)
	}
	if before < out.n/2 {
		t.Errorf("%d bytes of %d written before the last record was read; want most of them", before, out.n)
	}
	failed := errors.New("the store went away")
	if _, err := Write(context.Background(), &countingWriter{}, m, recs(&out, &before, failed), Options{Format: FormatXLSX, TempDir: dir}); !errors.Is(err, failed) {
		t.Fatalf("err %v, want %v", err, failed)
	}
	if left, _ := os.ReadDir(dir); len(left) > 0 {
		t.Errorf("temporary files left: %v", left)
	}
}

type iterSeq = func(yield func(domain.Record, error) bool)
