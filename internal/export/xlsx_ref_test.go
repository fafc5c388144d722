package export

import (
	"bytes"
	"context"
	"io"
	"iter"
	"strconv"
	"time"

	"github.com/go-json-experiment/json/jsontext"
	"github.com/xuri/excelize/v2"

	"github.com/fieldsync/fieldsync/internal/domain"
)

// refXLSXWriter is the reference the xlsx writer is compared with: the same
// workbook, every row written through excelize's StreamWriter, as the xlsx
// export was before it wrote its rows itself (it kept 16 MiB of each
// sheet in memory).
type refXLSXWriter struct {
	w       io.Writer
	m       *Model
	opt     Options
	wb      *workbook
	n       map[*Table]int // rows written, the header included
	f       *flattener
	vals    []any
	scratch *jsontext.Decoder
	rd      bytes.Reader
}

// writeRefXLSX writes the records as xlsx through refXLSXWriter.
func writeRefXLSX(w io.Writer, m *Model, records iter.Seq2[domain.Record, error], opt Options) (int64, error) {
	wb, err := newWorkbook(m, opt)
	if err != nil {
		return 0, err
	}
	x := &refXLSXWriter{w: w, m: m, opt: opt, wb: wb, n: map[*Table]int{}, scratch: jsontext.NewDecoder(bytes.NewReader(nil))}
	for _, t := range m.Tables {
		x.n[t] = 1
	}
	x.f = newFlattener(true, x.row)
	return run(x, records, opt)
}

// Ensure the reference drives like a format's writer.
var _ writer = (*refXLSXWriter)(nil)

func (x *refXLSXWriter) record(rec *domain.Record) error { return x.f.record(x.m, rec) }

func (x *refXLSXWriter) row(r *Row) error {
	v := x.vals[:0]
	if r.Table.Parent == nil {
		rec := r.Record
		v = append(v, rec.ID, rec.FormVersion, rec.Rev, rec.CreatedBy, rec.DeviceID, x.time(rec.CreatedAt),
			x.time(rec.UpdatedAt), rec.ReviewState, len(rec.Conflicts) > 0)
	}
	for _, i := range r.Table.columns(true) {
		v = append(v, x.cell(r.Table.Columns[i], r.Cells[i]))
	}
	if r.Table.Parent != nil {
		v = append(v, r.ParentKey, r.Key)
	}
	x.vals = v
	x.n[r.Table]++
	return x.wb.streams[r.Table].SetRow("A"+strconv.Itoa(x.n[r.Table]), v)
}

func (x *refXLSXWriter) time(t time.Time) any {
	if t.IsZero() {
		return nil
	}
	return excelize.Cell{StyleID: x.wb.dt, Value: t.UTC()}
}

func (x *refXLSXWriter) cell(c *Column, v jsontext.Value) any {
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
				return excelize.Cell{StyleID: x.wb.date, Value: t}
			}
		}
	case KindDateTime:
		if v[0] == '"' {
			if t, err := time.Parse(time.RFC3339Nano, unquote(v)); err == nil {
				return excelize.Cell{StyleID: x.wb.dt, Value: t.UTC()}
			}
		}
	}
	return textOf(c, v, x.opt.Labels, x.scratch, &x.rd)
}

func (x *refXLSXWriter) finish() error {
	for _, t := range x.m.Tables {
		if err := x.wb.streams[t].Flush(); err != nil {
			return err
		}
	}
	_, err := x.wb.file.WriteTo(x.w)
	return err
}

func (x *refXLSXWriter) close() { x.wb.file.Close() }

// refXLSX is the reference's file for the records.
func refXLSX(m *Model, recs []domain.Record, opt Options) ([]byte, error) {
	var b bytes.Buffer
	_, err := writeRefXLSX(&b, m, records(recs...), opt)
	return b.Bytes(), err
}

// newXLSX is the xlsx writer's file for the records.
func newXLSX(m *Model, recs []domain.Record, opt Options) ([]byte, error) {
	var b bytes.Buffer
	opt.Format = FormatXLSX
	_, err := Write(context.Background(), &b, m, records(recs...), opt)
	return b.Bytes(), err
}
