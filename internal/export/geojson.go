package export

import (
	"bufio"
	"bytes"
	"io"
	"strconv"

	"github.com/go-json-experiment/json/jsontext"

	"github.com/fieldsync/fieldsync/internal/domain"
)

// geoJSONWriter is format geojson: a FeatureCollection with one feature per
// record, its point from the form's first geopoint (or object with latitude
// and longitude), null when the record has none; its properties are the
// record columns and the answers, numbers and booleans as JSON, repeats as
// their JSON.
type geoJSONWriter struct {
	bw      *bufio.Writer
	m       *Model
	opt     Options
	f       *flattener
	buf     []byte
	n       int
	scratch *jsontext.Decoder
	rd      bytes.Reader
	err     error
}

func newGeoJSONWriter(w io.Writer, m *Model, opt Options) *geoJSONWriter {
	g := &geoJSONWriter{bw: bufio.NewWriterSize(w, 64<<10), m: m, opt: opt, scratch: jsontext.NewDecoder(bytes.NewReader(nil))}
	_, g.err = g.bw.WriteString(`{"type":"FeatureCollection","features":[`)
	g.f = newFlattener(false, g.row)
	return g
}

func (g *geoJSONWriter) record(rec *domain.Record) error {
	if g.err != nil {
		return g.err
	}
	return g.f.record(g.m, rec)
}

func (g *geoJSONWriter) row(r *Row) error {
	b := g.buf[:0]
	if g.n > 0 {
		b = append(b, ',')
	}
	g.n++
	rec := r.Record
	b = append(b, `{"type":"Feature","id":`...)
	b, _ = jsontext.AppendQuote(b, rec.ID)
	b = append(b, `,"geometry":`...)
	b = g.geometry(b, r)
	b = append(b, `,"properties":{`...)
	meta := metaText(nil, rec)
	for i, name := range MetaColumns {
		if i > 0 {
			b = append(b, ',')
		}
		b, _ = jsontext.AppendQuote(b, name)
		b = append(b, ':')
		if name == "has_conflicts" {
			b = append(b, meta[i]...)
			continue
		}
		b, _ = jsontext.AppendQuote(b, meta[i])
	}
	for i, c := range r.Table.Columns {
		b = append(b, ',')
		b, _ = jsontext.AppendQuote(b, c.Name)
		b = append(b, ':')
		v := r.Cells[i]
		switch {
		case len(v) == 0:
			b = append(b, "null"...)
		case c.Kind == KindChoices || (c.Kind == KindChoice && g.opt.Labels):
			b, _ = jsontext.AppendQuote(b, textOf(c, v, g.opt.Labels, g.scratch, &g.rd))
		default:
			b = append(b, v...)
		}
	}
	b = append(b, "}}"...)
	g.buf = b
	_, err := g.bw.Write(b)
	return err
}

// geometry appends the feature's Point, or null.
func (g *geoJSONWriter) geometry(b []byte, r *Row) []byte {
	lat, lon, alt := r.Table.Geo()
	num := func(i int) (float64, bool) {
		if i < 0 || len(r.Cells[i]) == 0 {
			return 0, false
		}
		f, err := strconv.ParseFloat(string(r.Cells[i]), 64)
		return f, err == nil
	}
	y, ok1 := num(lat)
	x, ok2 := num(lon)
	if !ok1 || !ok2 {
		return append(b, "null"...)
	}
	b = append(b, `{"type":"Point","coordinates":[`...)
	b = strconv.AppendFloat(b, x, 'g', -1, 64)
	b = append(b, ',')
	b = strconv.AppendFloat(b, y, 'g', -1, 64)
	if z, ok := num(alt); ok {
		b = append(b, ',')
		b = strconv.AppendFloat(b, z, 'g', -1, 64)
	}
	return append(b, "]}"...)
}

func (g *geoJSONWriter) finish() error {
	if g.err != nil {
		return g.err
	}
	if _, err := g.bw.WriteString("]}\n"); err != nil {
		return err
	}
	return g.bw.Flush()
}

func (g *geoJSONWriter) close() {}
