package export

import (
	"archive/zip"
	"bytes"
	"compress/flate"
	"io"
	"strconv"
	"strings"
	"time"

	"github.com/go-json-experiment/json/jsontext"
	"github.com/xuri/excelize/v2"

	"github.com/fieldsync/fieldsync/internal/domain"
)

// CodebookSheet is the name of the xlsx sheet that describes every column.
const CodebookSheet = "codebook"

// CodebookHeader is the header of the codebook sheet: one row per column,
// and one more per further choice of a choice question.
var CodebookHeader = []string{"sheet", "column", "title", "type", "code", "label"}

// xlsxWriter is format xlsx, through excelize's StreamWriter: one sheet per
// table (repeats with PARENT_KEY and KEY), numbers as numbers, dates as
// Excel dates (UTC: Excel has no time zones), the header row frozen, and the
// codebook. The stream writers spool each sheet to a temporary file past
// 16 MiB, so memory stays flat; the archive is written at the end.
type xlsxWriter struct {
	w       io.Writer
	m       *Model
	opt     Options
	file    *excelize.File
	sheets  map[*Table]*xlsxSheet
	f       *flattener
	date    int // style ids
	dt      int
	scratch *jsontext.Decoder
	rd      bytes.Reader
}

type xlsxSheet struct {
	name string
	sw   *excelize.StreamWriter
	cols []int
	n    int // rows written, the header included
	vals []any
}

func newXLSXWriter(w io.Writer, m *Model, opt Options) (*xlsxWriter, error) {
	x := &xlsxWriter{w: w, m: m, opt: opt, sheets: map[*Table]*xlsxSheet{},
		file: excelize.NewFile(excelize.Options{TmpDir: opt.TempDir}), scratch: jsontext.NewDecoder(bytes.NewReader(nil))}
	ok := false
	defer func() {
		if !ok {
			x.file.Close()
		}
	}()
	// File.WriteTo builds the whole archive in a bytes.Buffer before it
	// writes it out: the zip writer given here ignores that buffer and
	// writes to w directly, so a large workbook never sits in memory. Fast
	// deflate: spreadsheets compress well anyway, and the archive's CPU is
	// a quarter of an export's at the default level.
	x.file.SetZipWriter(func(io.Writer) excelize.ZipWriter {
		zw := zip.NewWriter(w)
		zw.RegisterCompressor(zip.Deflate, func(out io.Writer) (io.WriteCloser, error) {
			return flate.NewWriter(out, flate.BestSpeed)
		})
		return zw
	})
	var err error
	if x.date, err = x.file.NewStyle(&excelize.Style{NumFmt: 14}); err != nil { // m/d/yyyy, shown in the reader's locale
		return nil, err
	}
	fmtDT := "yyyy-mm-dd hh:mm:ss"
	if x.dt, err = x.file.NewStyle(&excelize.Style{CustomNumFmt: &fmtDT}); err != nil {
		return nil, err
	}
	bold, err := x.file.NewStyle(&excelize.Style{Font: &excelize.Font{Bold: true}})
	if err != nil {
		return nil, err
	}
	used := map[string]bool{strings.ToLower(CodebookSheet): true}
	for i, t := range m.Tables {
		name := sheetName(tableFileName(m, t), used)
		if i == 0 {
			err = x.file.SetSheetName("Sheet1", name)
		} else {
			_, err = x.file.NewSheet(name)
		}
		if err != nil {
			return nil, err
		}
		sw, err := x.file.NewStreamWriter(name)
		if err != nil {
			return nil, err
		}
		if err := sw.SetPanes(&excelize.Panes{Freeze: true, YSplit: 1, TopLeftCell: "A2", ActivePane: "bottomLeft"}); err != nil {
			return nil, err
		}
		s := &xlsxSheet{name: name, sw: sw, cols: t.columns(true)}
		if err := s.add(headerRow(t.header(true), bold)); err != nil {
			return nil, err
		}
		x.sheets[t] = s
	}
	if _, err := x.file.NewSheet(CodebookSheet); err != nil {
		return nil, err
	}
	if err := x.codebook(bold); err != nil {
		return nil, err
	}
	x.f = newFlattener(true, x.row)
	ok = true
	return x, nil
}

func headerRow(h []string, style int) []any {
	out := make([]any, len(h))
	for i, v := range h {
		out[i] = excelize.Cell{StyleID: style, Value: v}
	}
	return out
}

func (s *xlsxSheet) add(vals []any) error {
	s.n++
	return s.sw.SetRow("A"+strconv.Itoa(s.n), vals)
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
func (x *xlsxWriter) codebook(bold int) error {
	sw, err := x.file.NewStreamWriter(CodebookSheet)
	if err != nil {
		return err
	}
	if err := sw.SetPanes(&excelize.Panes{Freeze: true, YSplit: 1, TopLeftCell: "A2", ActivePane: "bottomLeft"}); err != nil {
		return err
	}
	s := &xlsxSheet{name: CodebookSheet, sw: sw}
	if err := s.add(headerRow(CodebookHeader, bold)); err != nil {
		return err
	}
	meta := map[string]string{"id": "Record id", "form_version": "Form version", "rev": "Revision",
		"created_by": "Created by", "device_id": "Device", "created_at": "Received by the server",
		"updated_at": "Last changed on the server", "review_state": "Review state", "has_conflicts": "Has unresolved conflicts"}
	metaKind := map[string]string{"created_at": KindDateTime.String(), "updated_at": KindDateTime.String(), "has_conflicts": KindBoolean.String()}
	for _, t := range x.m.Tables {
		sheet := x.sheets[t].name
		if t.Parent == nil {
			for _, c := range MetaColumns {
				kind := metaKind[c]
				if kind == "" {
					kind = KindText.String()
				}
				if err := s.add([]any{sheet, c, meta[c], kind}); err != nil {
					return err
				}
			}
		}
		for _, i := range t.columns(true) {
			c := t.Columns[i]
			if len(c.Choices) == 0 {
				if err := s.add([]any{sheet, c.Name, c.Title, c.Kind.String()}); err != nil {
					return err
				}
				continue
			}
			for _, ch := range c.Choices {
				if err := s.add([]any{sheet, c.Name, c.Title, c.Kind.String(), ch.Code, ch.Label}); err != nil {
					return err
				}
			}
		}
		if t.Parent != nil {
			if err := s.add([]any{sheet, ParentKeyColumn, "Key of the row that holds this item (" + ParentKeyColumn + " → KEY, or the record id)", KindText.String()}); err != nil {
				return err
			}
			if err := s.add([]any{sheet, KeyColumn, "Key of this item", KindText.String()}); err != nil {
				return err
			}
		}
	}
	return sw.Flush()
}

func (x *xlsxWriter) record(rec *domain.Record) error { return x.f.record(x.m, rec) }

func (x *xlsxWriter) row(r *Row) error {
	s := x.sheets[r.Table]
	v := s.vals[:0]
	if r.Table.Parent == nil {
		rec := r.Record
		v = append(v, rec.ID, rec.FormVersion, rec.Rev, rec.CreatedBy, rec.DeviceID, x.time(rec.CreatedAt),
			x.time(rec.UpdatedAt), rec.ReviewState, len(rec.Conflicts) > 0)
	}
	for _, i := range s.cols {
		v = append(v, x.cell(r.Table.Columns[i], r.Cells[i]))
	}
	if r.Table.Parent != nil {
		v = append(v, r.ParentKey, r.Key)
	}
	s.vals = v
	return s.add(v)
}

func (x *xlsxWriter) time(t time.Time) any {
	if t.IsZero() {
		return nil
	}
	return excelize.Cell{StyleID: x.dt, Value: t.UTC()}
}

// cell is a cell's value for excelize: numbers, booleans and dates typed,
// the rest as csv writes it. A value that does not fit its column's type (a
// record of an older version) is written as text.
func (x *xlsxWriter) cell(c *Column, v jsontext.Value) any {
	if len(v) == 0 || v[0] == 'n' {
		return nil
	}
	switch c.Kind {
	case KindInteger, KindNumber, KindChoice:
		if c.Kind == KindChoice && x.opt.Labels {
			break
		}
		if v[0] != '"' && v[0] != '[' && v[0] != '{' && v[0] != 't' && v[0] != 'f' {
			if f, err := strconv.ParseFloat(string(v), 64); err == nil {
				return f
			}
		}
	case KindBoolean:
		switch v[0] {
		case 't':
			return true
		case 'f':
			return false
		}
	case KindDate:
		if v[0] == '"' {
			if t, err := time.Parse(time.DateOnly, unquote(v)); err == nil {
				return excelize.Cell{StyleID: x.date, Value: t}
			}
		}
	case KindDateTime:
		if v[0] == '"' {
			if t, err := time.Parse(time.RFC3339Nano, unquote(v)); err == nil {
				return excelize.Cell{StyleID: x.dt, Value: t.UTC()}
			}
		}
	}
	return textOf(c, v, x.opt.Labels, x.scratch, &x.rd)
}

func (x *xlsxWriter) finish() error {
	for _, t := range x.m.Tables {
		if err := x.sheets[t].sw.Flush(); err != nil {
			return err
		}
	}
	_, err := x.file.WriteTo(x.w)
	return err
}

func (x *xlsxWriter) close() { x.file.Close() }
