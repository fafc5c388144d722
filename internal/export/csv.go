package export

import (
	"archive/zip"
	"bufio"
	"bytes"
	"context"
	"encoding/csv"
	"errors"
	"io"
	"os"
	"strings"

	"github.com/go-json-experiment/json/jsontext"

	"github.com/fieldsync/fieldsync/internal/domain"
)

// bom is the UTF-8 byte order mark.
const bom = "\xef\xbb\xbf"

// tableCSV writes the rows of one table as csv.
type tableCSV struct {
	t       *Table
	cols    []int
	labels  bool
	cw      *csv.Writer
	fields  []string
	scratch *jsontext.Decoder
	rd      bytes.Reader
}

func newTableCSV(w io.Writer, t *Table, tables, labels, withBOM bool) (*tableCSV, error) {
	if withBOM {
		if _, err := io.WriteString(w, bom); err != nil {
			return nil, err
		}
	}
	tc := &tableCSV{t: t, cols: t.columns(tables), labels: labels, cw: csv.NewWriter(w),
		scratch: jsontext.NewDecoder(bytes.NewReader(nil))}
	return tc, tc.cw.Write(t.header(tables))
}

func (tc *tableCSV) row(r *Row) error {
	f := tc.fields[:0]
	if tc.t.Parent == nil {
		f = metaText(f, r.Record)
	}
	for _, i := range tc.cols {
		f = append(f, textOf(tc.t.Columns[i], r.Cells[i], tc.labels, tc.scratch, &tc.rd))
	}
	if tc.t.Parent != nil {
		f = append(f, r.ParentKey, r.Key)
	}
	tc.fields = f
	return tc.cw.Write(f)
}

func (tc *tableCSV) flush() error {
	tc.cw.Flush()
	return tc.cw.Error()
}

// csvWriter is format csv: the main table, each repeat group one JSON cell.
type csvWriter struct {
	m   *Model
	bw  *bufio.Writer
	tc  *tableCSV
	f   *flattener
	err error
}

func newCSVWriter(w io.Writer, m *Model, opt Options) *csvWriter {
	c := &csvWriter{m: m, bw: bufio.NewWriterSize(w, 64<<10)}
	c.tc, c.err = newTableCSV(c.bw, m.Main, false, opt.Labels, opt.BOM)
	c.f = newFlattener(false, c.tc.row)
	return c
}

func (c *csvWriter) record(rec *domain.Record) error {
	if c.err != nil {
		return c.err
	}
	return c.f.record(c.m, rec)
}

func (c *csvWriter) finish() error {
	if c.err != nil {
		return c.err
	}
	if err := c.tc.flush(); err != nil {
		return err
	}
	return c.bw.Flush()
}

func (c *csvWriter) close() {}

// zipWriter is format csv.zip: one csv file per table, repeats with
// PARENT_KEY and KEY. Every table is spooled to a temporary file while the
// records pass (zip entries are written one after the other, and the tables
// grow together), then copied into the archive; attachments, when asked for,
// go into it as the records pass.
type zipWriter struct {
	ctx    context.Context
	m      *Model
	opt    Options
	zw     *zip.Writer
	files  []*os.File
	bufs   []*bufio.Writer
	tables map[*Table]*tableCSV
	f      *flattener
	err    error
}

func newZipWriter(ctx context.Context, w io.Writer, m *Model, opt Options) *zipWriter {
	z := &zipWriter{ctx: ctx, m: m, opt: opt, zw: zip.NewWriter(w), tables: map[*Table]*tableCSV{}}
	for _, t := range m.Tables {
		f, err := os.CreateTemp(opt.TempDir, "fieldsync-export-*.csv")
		if err != nil {
			z.err = err
			return z
		}
		z.files = append(z.files, f)
		bw := bufio.NewWriterSize(f, 64<<10)
		z.bufs = append(z.bufs, bw)
		if z.tables[t], z.err = newTableCSV(bw, t, true, opt.Labels, opt.BOM); z.err != nil {
			return z
		}
	}
	z.f = newFlattener(true, func(r *Row) error { return z.tables[r.Table].row(r) })
	return z
}

func (z *zipWriter) record(rec *domain.Record) error {
	if z.err != nil {
		return z.err
	}
	if err := z.f.record(z.m, rec); err != nil {
		return err
	}
	if z.opt.Attachments == nil {
		return nil
	}
	for _, a := range rec.Attachments {
		if err := z.attachment(rec, a); err != nil {
			return err
		}
	}
	return nil
}

// attachment copies one stored attachment into the archive; one the server
// does not hold yet is left out (the record says it is missing).
func (z *zipWriter) attachment(rec *domain.Record, a domain.Attachment) error {
	rc, err := z.opt.Attachments.OpenAttachment(z.ctx, *rec, a)
	if errors.Is(err, domain.ErrNotFound) {
		return nil
	}
	if err != nil {
		return err
	}
	defer rc.Close()
	w, err := z.zw.CreateHeader(&zip.FileHeader{Name: "attachments/" + rec.ID + "/" + a.Name, Method: zip.Store})
	if err != nil {
		return err
	}
	_, err = io.Copy(w, rc)
	return err
}

func (z *zipWriter) finish() error {
	if z.err != nil {
		return z.err
	}
	for i, t := range z.m.Tables {
		if err := z.tables[t].flush(); err != nil {
			return err
		}
		if err := z.bufs[i].Flush(); err != nil {
			return err
		}
		if _, err := z.files[i].Seek(0, io.SeekStart); err != nil {
			return err
		}
		w, err := z.zw.Create(tableFileName(z.m, t) + ".csv")
		if err != nil {
			return err
		}
		if _, err := io.Copy(w, z.files[i]); err != nil {
			return err
		}
	}
	return z.zw.Close()
}

func (z *zipWriter) close() {
	for _, f := range z.files {
		f.Close()
		os.Remove(f.Name())
	}
	z.files = nil
}

// tableFileName names a table's file: the form id, and for a repeat its path
// with "-" for "/" (perception-household-members).
func tableFileName(m *Model, t *Table) string {
	if t.Parent == nil {
		return m.Form
	}
	return m.Form + "-" + strings.ReplaceAll(t.Name, "/", "-")
}
