package export

import (
	"archive/zip"
	"bufio"
	"bytes"
	"compress/flate"
	"encoding/xml"
	"fmt"
	"io"
	"os"
	"path"
	"strconv"
	"strings"
	"time"
	"unicode/utf8"

	"github.com/go-json-experiment/json/jsontext"
	"github.com/xuri/excelize/v2"

	"github.com/fieldsync/fieldsync/internal/domain"
)

// CodebookSheet is the name of the xlsx sheet that describes every column.
const CodebookSheet = "codebook"

// CodebookHeader is the header of the codebook sheet: one row per column,
// and one more per further choice of a choice question.
var CodebookHeader = []string{"sheet", "column", "title", "type", "code", "label"}

// xlsxWriter is format xlsx: one sheet per table (repeats with PARENT_KEY
// and KEY), numbers as numbers, dates as Excel dates (UTC: Excel has no
// time zones), the header row frozen, and the codebook.
//
// excelize builds the workbook (sheets, styles, panes, header rows, the
// codebook), but the data rows are written here, as the same SpreadsheetML
// excelize's StreamWriter writes: that keeps 16 MiB of each sheet's XML in
// memory (in a buffer that grows to 32 MB) before it spills to a temporary
// file, which put an export's peak RSS at 150–180 MB. Here the main sheet
// goes straight into the archive as the records pass, and each repeat
// group's sheet (whose rows come between the main sheet's) through a small
// buffer into a temporary file, copied in at the end: memory holds a row,
// whatever the count. TestXLSXMatchesExcelize compares the result with
// what excelize's StreamWriter writes, cell by cell.
type xlsxWriter struct {
	m       *Model
	opt     Options
	zw      *zip.Writer
	sheets  map[*Table]*xlsxSheet
	f       *flattener
	date    int // style ids
	dt      int
	scratch *jsontext.Decoder
	rd      bytes.Reader
	esc     []byte // scratch for the rare strings bstrMarshal must see
}

// xlsxSheet is a data sheet while its rows are written.
type xlsxSheet struct {
	name string
	part string // its entry in the archive
	// head is the sheet's XML up to its data rows (the header row
	// included), tail what follows them: both as excelize wrote them.
	head, tail []byte
	cols       []int
	refs       []string // column letters
	n          int      // rows written, the header included
	row        []byte   // the row number's text
	w          *bufio.Writer
	file       *os.File // the spool of a repeat's sheet
}

func newXLSXWriter(w io.Writer, m *Model, opt Options) (x *xlsxWriter, err error) {
	wb, err := newWorkbook(m, opt)
	if err != nil {
		return nil, err
	}
	defer wb.file.Close()
	x = &xlsxWriter{m: m, opt: opt, sheets: map[*Table]*xlsxSheet{}, date: wb.date, dt: wb.dt,
		scratch: jsontext.NewDecoder(bytes.NewReader(nil))}
	defer func() {
		if err != nil {
			x.close()
		}
	}()
	// The workbook with only the header rows is small: it is written to
	// memory, and its parts are copied into the archive as they are,
	// but for the data sheets, whose rows go between head and tail.
	for _, t := range m.Tables {
		if err := wb.streams[t].Flush(); err != nil {
			return nil, err
		}
	}
	buf, err := wb.file.WriteToBuffer()
	if err != nil {
		return nil, err
	}
	zr, err := zip.NewReader(bytes.NewReader(buf.Bytes()), int64(buf.Len()))
	if err != nil {
		return nil, err
	}
	parts, err := sheetParts(zr)
	if err != nil {
		return nil, err
	}
	byPart := map[string]*xlsxSheet{}
	for _, t := range m.Tables {
		s := &xlsxSheet{name: wb.names[t], part: parts[wb.names[t]], cols: t.columns(true)}
		if s.part == "" {
			return nil, fmt.Errorf("export: no part for sheet %q in the workbook", s.name)
		}
		ncols := len(t.header(true))
		for i := range ncols {
			ref, err := excelize.ColumnNumberToName(i + 1)
			if err != nil {
				return nil, err // past Excel's 16,384 columns
			}
			s.refs = append(s.refs, ref)
		}
		s.n = 1
		x.sheets[t] = s
		byPart[s.part] = s
	}
	// Fast deflate: spreadsheets compress well anyway, and the archive's
	// CPU is a quarter of an export's at the default level.
	x.zw = zip.NewWriter(w)
	x.zw.RegisterCompressor(zip.Deflate, func(out io.Writer) (io.WriteCloser, error) {
		return flate.NewWriter(out, flate.BestSpeed)
	})
	for _, zf := range zr.File {
		s := byPart[zf.Name]
		if s == nil {
			if err := x.zw.Copy(zf); err != nil {
				return nil, err
			}
			continue
		}
		if s.head, s.tail, err = splitSheet(zf); err != nil {
			return nil, err
		}
	}
	for _, t := range m.Tables {
		s := x.sheets[t]
		if s.head == nil {
			return nil, fmt.Errorf("export: no part %s in the workbook", s.part)
		}
		if t.Parent == nil {
			// The main sheet's rows go straight into the archive.
			e, err := x.zw.CreateHeader(&zip.FileHeader{Name: s.part, Method: zip.Deflate})
			if err != nil {
				return nil, err
			}
			s.w = bufio.NewWriterSize(e, 64<<10)
			if _, err := s.w.Write(s.head); err != nil {
				return nil, err
			}
			continue
		}
		if s.file, err = os.CreateTemp(opt.TempDir, "fieldsync-export-*.xml"); err != nil {
			return nil, err
		}
		s.w = bufio.NewWriterSize(s.file, 64<<10)
	}
	x.f = newFlattener(true, x.row)
	return x, nil
}

// sheetParts maps each sheet's name to its part in the archive, as the
// workbook and its relationships say.
func sheetParts(zr *zip.Reader) (map[string]string, error) {
	var wb struct {
		Sheets []struct {
			Name string `xml:"name,attr"`
			RID  string `xml:"http://schemas.openxmlformats.org/officeDocument/2006/relationships id,attr"`
		} `xml:"sheets>sheet"`
	}
	var rels struct {
		Rels []struct {
			ID     string `xml:"Id,attr"`
			Target string `xml:"Target,attr"`
		} `xml:"Relationship"`
	}
	if err := unmarshalPart(zr, "xl/workbook.xml", &wb); err != nil {
		return nil, err
	}
	if err := unmarshalPart(zr, "xl/_rels/workbook.xml.rels", &rels); err != nil {
		return nil, err
	}
	targets := map[string]string{}
	for _, r := range rels.Rels {
		if t, ok := strings.CutPrefix(r.Target, "/"); ok {
			targets[r.ID] = t
		} else {
			targets[r.ID] = path.Join("xl", r.Target)
		}
	}
	parts := map[string]string{}
	for _, s := range wb.Sheets {
		parts[s.Name] = targets[s.RID]
	}
	return parts, nil
}

func unmarshalPart(zr *zip.Reader, name string, v any) error {
	f, err := zr.Open(name)
	if err != nil {
		return err
	}
	defer f.Close()
	return xml.NewDecoder(f).Decode(v)
}

// splitSheet cuts a data sheet's XML where its rows end.
func splitSheet(zf *zip.File) (head, tail []byte, err error) {
	rc, err := zf.Open()
	if err != nil {
		return nil, nil, err
	}
	defer rc.Close()
	b, err := io.ReadAll(rc)
	if err != nil {
		return nil, nil, err
	}
	i := bytes.LastIndex(b, []byte("</sheetData>"))
	if i < 0 {
		return nil, nil, fmt.Errorf("export: no </sheetData> in %s", zf.Name)
	}
	return b[:i:i], b[i:], nil
}

// workbook is an export's workbook as excelize builds it: a sheet per table
// with its frozen, bold header row in a StreamWriter left open for the
// rows, and the codebook.
type workbook struct {
	file    *excelize.File
	names   map[*Table]string
	streams map[*Table]*excelize.StreamWriter
	date    int // style ids
	dt      int
}

func newWorkbook(m *Model, opt Options) (wb *workbook, err error) {
	wb = &workbook{file: excelize.NewFile(excelize.Options{TmpDir: opt.TempDir}), names: map[*Table]string{},
		streams: map[*Table]*excelize.StreamWriter{}}
	defer func() {
		if err != nil {
			wb.file.Close()
		}
	}()
	if wb.date, err = wb.file.NewStyle(&excelize.Style{NumFmt: 14}); err != nil { // m/d/yyyy, shown in the reader's locale
		return nil, err
	}
	fmtDT := "yyyy-mm-dd hh:mm:ss"
	if wb.dt, err = wb.file.NewStyle(&excelize.Style{CustomNumFmt: &fmtDT}); err != nil {
		return nil, err
	}
	bold, err := wb.file.NewStyle(&excelize.Style{Font: &excelize.Font{Bold: true}})
	if err != nil {
		return nil, err
	}
	used := map[string]bool{strings.ToLower(CodebookSheet): true}
	for i, t := range m.Tables {
		name := sheetName(tableFileName(m, t), used)
		if i == 0 {
			err = wb.file.SetSheetName("Sheet1", name)
		} else {
			_, err = wb.file.NewSheet(name)
		}
		if err != nil {
			return nil, err
		}
		sw, err := wb.file.NewStreamWriter(name)
		if err != nil {
			return nil, err
		}
		if err := sw.SetPanes(&excelize.Panes{Freeze: true, YSplit: 1, TopLeftCell: "A2", ActivePane: "bottomLeft"}); err != nil {
			return nil, err
		}
		if err := sw.SetRow("A1", headerRow(t.header(true), bold)); err != nil {
			return nil, err
		}
		wb.names[t], wb.streams[t] = name, sw
	}
	if _, err := wb.file.NewSheet(CodebookSheet); err != nil {
		return nil, err
	}
	if err := wb.codebook(m, bold); err != nil {
		return nil, err
	}
	return wb, nil
}

func headerRow(h []string, style int) []any {
	out := make([]any, len(h))
	for i, v := range h {
		out[i] = excelize.Cell{StyleID: style, Value: v}
	}
	return out
}

// sheetName makes a valid, unique sheet name: at most 31 characters, none
// of : \ / ? * [ ].
func sheetName(name string, used map[string]bool) string {
	name = strings.Map(func(r rune) rune {
		if strings.ContainsRune(`:\/?*[]`, r) {
			return '-'
		}
		return r
	}, name)
	if r := []rune(name); len(r) > 31 {
		name = string(r[:31])
	}
	base := []rune(name)
	for i := 2; used[strings.ToLower(name)]; i++ {
		suffix := "~" + strconv.Itoa(i)
		name = string(base[:min(len(base), 31-len(suffix))]) + suffix
	}
	used[strings.ToLower(name)] = true
	return name
}

// codebook writes the codebook sheet: for every column of every sheet its
// title, type and choices (code → label), so that Stata, SPSS and R users
// can label their variables.
func (wb *workbook) codebook(m *Model, bold int) error {
	sw, err := wb.file.NewStreamWriter(CodebookSheet)
	if err != nil {
		return err
	}
	if err := sw.SetPanes(&excelize.Panes{Freeze: true, YSplit: 1, TopLeftCell: "A2", ActivePane: "bottomLeft"}); err != nil {
		return err
	}
	n := 0
	add := func(vals []any) error {
		n++
		return sw.SetRow("A"+strconv.Itoa(n), vals)
	}
	if err := add(headerRow(CodebookHeader, bold)); err != nil {
		return err
	}
	meta := map[string]string{"id": "Record id", "form_version": "Form version", "rev": "Revision",
		"created_by": "Created by", "device_id": "Device", "created_at": "Received by the server",
		"updated_at": "Last changed on the server", "review_state": "Review state", "has_conflicts": "Has unresolved conflicts"}
	metaKind := map[string]string{"created_at": KindDateTime.String(), "updated_at": KindDateTime.String(), "has_conflicts": KindBoolean.String()}
	for _, t := range m.Tables {
		sheet := wb.names[t]
		if t.Parent == nil {
			for _, c := range MetaColumns {
				kind := metaKind[c]
				if kind == "" {
					kind = KindText.String()
				}
				if err := add([]any{sheet, c, meta[c], kind}); err != nil {
					return err
				}
			}
		}
		for _, i := range t.columns(true) {
			c := t.Columns[i]
			if len(c.Choices) == 0 {
				if err := add([]any{sheet, c.Name, c.Title, c.Kind.String()}); err != nil {
					return err
				}
				continue
			}
			for _, ch := range c.Choices {
				if err := add([]any{sheet, c.Name, c.Title, c.Kind.String(), ch.Code, ch.Label}); err != nil {
					return err
				}
			}
		}
		if t.Parent != nil {
			if err := add([]any{sheet, ParentKeyColumn, "Key of the row that holds this item (" + ParentKeyColumn + " → KEY, or the record id)", KindText.String()}); err != nil {
				return err
			}
			if err := add([]any{sheet, KeyColumn, "Key of this item", KindText.String()}); err != nil {
				return err
			}
		}
	}
	return sw.Flush()
}

func (x *xlsxWriter) record(rec *domain.Record) error { return x.f.record(x.m, rec) }

// row writes one row's XML into the buffer of its sheet, in one piece.
func (x *xlsxWriter) row(r *Row) error {
	s := x.sheets[r.Table]
	s.n++
	s.row = strconv.AppendInt(s.row[:0], int64(s.n), 10)
	b := s.w.AvailableBuffer()
	b = append(b, `<row r="`...)
	b = append(b, s.row...)
	b = append(b, `">`...)
	col := 0
	if r.Table.Parent == nil {
		rec := r.Record
		b = x.str(b, s, 0, 0, rec.ID)
		b = x.str(b, s, 1, 0, rec.FormVersion)
		b = x.str(b, s, 2, 0, rec.Rev)
		b = x.str(b, s, 3, 0, rec.CreatedBy)
		b = x.str(b, s, 4, 0, rec.DeviceID)
		if !rec.CreatedAt.IsZero() {
			b = x.time(b, s, 5, x.dt, rec.CreatedAt)
		}
		if !rec.UpdatedAt.IsZero() {
			b = x.time(b, s, 6, x.dt, rec.UpdatedAt)
		}
		b = x.str(b, s, 7, 0, rec.ReviewState)
		b = x.bool(b, s, 8, len(rec.Conflicts) > 0)
		col = len(MetaColumns)
	}
	for _, i := range s.cols {
		b = x.cell(b, s, col, r.Table.Columns[i], r.Cells[i])
		col++
	}
	if r.Table.Parent != nil {
		b = x.str(b, s, col, 0, r.ParentKey)
		b = x.str(b, s, col+1, 0, r.Key)
	}
	b = append(b, `</row>`...)
	_, err := s.w.Write(b)
	return err
}

// cell writes an answer: numbers, booleans and dates typed, the rest as
// csv writes it. A value that does not fit its column's type (a record of
// an older version) is written as text; null or absent, as no cell.
func (x *xlsxWriter) cell(b []byte, s *xlsxSheet, col int, c *Column, v jsontext.Value) []byte {
	if len(v) == 0 || v[0] == 'n' {
		return b
	}
	switch c.Kind {
	case KindInteger, KindNumber, KindChoice:
		if c.Kind == KindChoice && x.opt.Labels {
			break
		}
		if v[0] != '"' && v[0] != '[' && v[0] != '{' && v[0] != 't' && v[0] != 'f' {
			if f, err := strconv.ParseFloat(string(v), 64); err == nil {
				return x.value(b, s, col, 0, "", formatCellFloat(f))
			}
		}
	case KindBoolean:
		switch v[0] {
		case 't':
			return x.bool(b, s, col, true)
		case 'f':
			return x.bool(b, s, col, false)
		}
	case KindDate:
		if v[0] == '"' {
			if t, err := time.Parse(time.DateOnly, unquote(v)); err == nil {
				return x.time(b, s, col, x.date, t)
			}
		}
	case KindDateTime:
		if v[0] == '"' {
			if t, err := time.Parse(time.RFC3339Nano, unquote(v)); err == nil {
				return x.time(b, s, col, x.dt, t)
			}
		}
	}
	return x.str(b, s, col, 0, textOf(c, v, x.opt.Labels, x.scratch, &x.rd))
}

// open starts cell col of the sheet's current row: <c r="B7" s="1" t="…">.
func (x *xlsxWriter) open(b []byte, s *xlsxSheet, col, style int, typ string) []byte {
	b = append(b, `<c r="`...)
	b = append(b, s.refs[col]...)
	b = append(b, s.row...)
	b = append(b, '"')
	if style != 0 {
		b = append(b, ` s="`...)
		b = strconv.AppendInt(b, int64(style), 10)
		b = append(b, '"')
	}
	if typ != "" {
		b = append(b, ` t="`...)
		b = append(b, typ...)
		b = append(b, '"')
	}
	return append(b, '>')
}

// value writes a cell of a number (typ "") or boolean (typ "b").
func (x *xlsxWriter) value(b []byte, s *xlsxSheet, col, style int, typ, v string) []byte {
	b = x.open(b, s, col, style, typ)
	b = append(b, `<v>`...)
	b = append(b, v...)
	return append(b, `</v></c>`...)
}

func (x *xlsxWriter) bool(b []byte, s *xlsxSheet, col int, v bool) []byte {
	if v {
		return x.value(b, s, col, 0, "b", "1")
	}
	return x.value(b, s, col, 0, "b", "0")
}

// time writes a time as its Excel serial number, in UTC; one before 1900,
// which Excel cannot show, as RFC 3339 text.
func (x *xlsxWriter) time(b []byte, s *xlsxSheet, col, style int, t time.Time) []byte {
	t = t.UTC()
	if v := excelTime(t); v > 0 {
		return x.value(b, s, col, style, "", strconv.FormatFloat(v, 'f', -1, 64))
	}
	return x.str(b, s, col, style, t.Format(time.RFC3339Nano))
}

// maxCellChars is the most text an Excel cell holds, in UTF-16 code units.
const maxCellChars = 32767

// str writes a text cell as an inline string (no shared-string table to
// hold in memory). As excelize does, text past Excel's 32,767 characters
// is cut, characters XML 1.0 cannot hold (control characters, invalid
// UTF-8) become U+FFFD, and text that starts or ends with white space
// keeps it. Text starting with "=" stays text: only a <f> element makes a
// formula.
func (x *xlsxWriter) str(b []byte, s *xlsxSheet, col, style int, v string) []byte {
	b = x.open(b, s, col, style, "inlineStr")
	if len(v) > maxCellChars { // UTF-16 units are never more than UTF-8 bytes
		v = truncateUTF16(v, maxCellChars)
	}
	b = append(b, `<is><t`...)
	if v != "" && (isXMLSpace(v[0]) || isXMLSpace(v[len(v)-1])) {
		b = append(b, ` xml:space="preserve"`...)
	}
	b = append(b, '>')
	if strings.Contains(v, "_x") {
		x.esc = appendXMLText(x.esc[:0], v)
		b = append(b, bstrMarshal(string(x.esc))...)
	} else {
		b = appendXMLText(b, v)
	}
	return append(b, `</t></is></c>`...)
}

func isXMLSpace(c byte) bool { return c == ' ' || c == '\t' || c == '\n' || c == '\r' }

// truncateUTF16 cuts s to at most n UTF-16 code units (Excel counts those),
// as excelize's truncateUTF16Units does.
func truncateUTF16(s string, n int) string {
	units := 0
	for i, r := range s {
		if r >= 0x10000 {
			units += 2
		} else {
			units++
		}
		if units > n {
			return s[:i]
		}
	}
	return s
}

// appendXMLText appends s escaped as XML character data, as
// encoding/xml.EscapeText does (excelize's escaping, with newlines left
// as they are): what XML 1.0 cannot hold becomes U+FFFD.
func appendXMLText(b []byte, s string) []byte {
	last := 0
	for i := 0; i < len(s); {
		c := s[i]
		var esc string
		width := 1
		if c < utf8.RuneSelf {
			switch c {
			case '"':
				esc = "&#34;"
			case '\'':
				esc = "&#39;"
			case '&':
				esc = "&amp;"
			case '<':
				esc = "&lt;"
			case '>':
				esc = "&gt;"
			case '\t':
				esc = "&#x9;"
			case '\r':
				esc = "&#xD;"
			case '\n':
			default:
				if c < 0x20 {
					esc = "\uFFFD"
				}
			}
		} else {
			var r rune
			r, width = utf8.DecodeRuneInString(s[i:])
			if r == utf8.RuneError && width == 1 || r == 0xFFFE || r == 0xFFFF {
				esc = "\uFFFD"
			}
		}
		if esc != "" {
			b = append(b, s[last:i]...)
			b = append(b, esc...)
			last = i + width
		}
		i += width
	}
	return append(b, s[last:]...)
}

func (x *xlsxWriter) finish() error {
	// The main sheet's entry is the open one: it ends first.
	if err := x.sheets[x.m.Main].end(); err != nil {
		return err
	}
	for _, t := range x.m.Tables {
		if t == x.m.Main {
			continue
		}
		// A repeat's sheet: its spooled rows, between head and tail.
		s := x.sheets[t]
		if err := s.w.Flush(); err != nil {
			return err
		}
		if _, err := s.file.Seek(0, io.SeekStart); err != nil {
			return err
		}
		e, err := x.zw.CreateHeader(&zip.FileHeader{Name: s.part, Method: zip.Deflate})
		if err != nil {
			return err
		}
		s.w.Reset(e)
		if _, err := s.w.Write(s.head); err != nil {
			return err
		}
		if _, err := s.w.ReadFrom(s.file); err != nil {
			return err
		}
		if err := s.end(); err != nil {
			return err
		}
	}
	return x.zw.Close()
}

// end writes what follows the sheet's rows.
func (s *xlsxSheet) end() error {
	if _, err := s.w.Write(s.tail); err != nil {
		return err
	}
	return s.w.Flush()
}

func (x *xlsxWriter) close() {
	for _, s := range x.sheets {
		if s.file != nil {
			s.file.Close()
			os.Remove(s.file.Name())
			s.file = nil
		}
	}
}
