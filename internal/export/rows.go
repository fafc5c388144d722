package export

import (
	"bytes"
	"strconv"
	"strings"
	"time"

	"github.com/go-json-experiment/json/jsontext"

	"github.com/fieldsync/fieldsync/internal/domain"
)

// Row is one row of a table while it is written: the record it comes from,
// its keys, and the raw JSON of each answer column (nil when absent). A Row
// and its cells are reused for the next row: a writer copies what it keeps.
type Row struct {
	Table  *Table
	Record *domain.Record
	// Key is the row's key: the record id for the main table, else the
	// parent's key, "/", the repeat's name and the item's index from 1
	// (3f0c…/members[2]), as ODK Central writes them.
	Key       string
	ParentKey string
	Cells     []jsontext.Value

	arena []byte
}

func (r *Row) reset(t *Table) {
	r.Table = t
	if cap(r.Cells) < len(t.Columns) {
		r.Cells = make([]jsontext.Value, len(t.Columns))
	}
	r.Cells = r.Cells[:len(t.Columns)]
	clear(r.Cells)
	r.arena = r.arena[:0]
}

// set copies v into the row's arena as column i's value. Earlier cells keep
// pointing into the arena's old array when append moves it, so they stay valid.
func (r *Row) set(i int, v jsontext.Value) {
	start := len(r.arena)
	r.arena = append(r.arena, v...)
	r.Cells[i] = jsontext.Value(r.arena[start:len(r.arena):len(r.arena)])
}

// flattener turns a record's data into rows, walking the JSON once along the
// table's schema tree: members the schema does not name are skipped.
type flattener struct {
	tables bool // repeats as tables of their own (csv.zip, xlsx)
	dec    *jsontext.Decoder
	rd     bytes.Reader
	rows   map[*Table]*Row
	emit   func(*Row) error
}

func newFlattener(tables bool, emit func(*Row) error) *flattener {
	f := &flattener{tables: tables, rows: map[*Table]*Row{}, emit: emit}
	f.dec = jsontext.NewDecoder(&f.rd, jsontext.AllowDuplicateNames(true), jsontext.AllowInvalidUTF8(true))
	return f
}

func (f *flattener) row(t *Table) *Row {
	r := f.rows[t]
	if r == nil {
		r = &Row{}
		f.rows[t] = r
	}
	r.reset(t)
	return r
}

// record emits the rows of one record: its repeat items first (when repeats
// are tables), then its main row.
func (f *flattener) record(m *Model, rec *domain.Record) error {
	r := f.row(m.Main)
	r.Record, r.Key, r.ParentKey = rec, rec.ID, ""
	if len(rec.Data) > 0 {
		f.rd.Reset(rec.Data)
		f.dec.Reset(&f.rd, jsontext.AllowDuplicateNames(true), jsontext.AllowInvalidUTF8(true))
		if err := f.object(m.Main, r, m.Main.root, rec); err != nil {
			return err
		}
	}
	return f.emit(r)
}

func (f *flattener) object(t *Table, r *Row, n *node, rec *domain.Record) error {
	if f.dec.PeekKind() != '{' {
		return f.dec.SkipValue()
	}
	if _, err := f.dec.ReadToken(); err != nil {
		return err
	}
	for f.dec.PeekKind() != '}' {
		name, err := f.dec.ReadValue()
		if err != nil {
			return err
		}
		var child *node
		if bytes.IndexByte(name, '\\') < 0 {
			child = n.children[string(name[1:len(name)-1])]
		} else {
			child = n.children[name.String()]
		}
		switch {
		case child == nil:
			err = f.dec.SkipValue()
		case child.col < 0:
			err = f.object(t, r, child, rec)
		case t.Columns[child.col].Kind == KindRepeat && f.tables:
			c := t.Columns[child.col]
			err = f.repeat(c.Table, c.Name, r.Key, rec)
		default:
			var v jsontext.Value
			if v, err = f.dec.ReadValue(); err == nil {
				r.set(child.col, v)
			}
		}
		if err != nil {
			return err
		}
	}
	_, err := f.dec.ReadToken()
	return err
}

func (f *flattener) repeat(t *Table, name, parentKey string, rec *domain.Record) error {
	if f.dec.PeekKind() != '[' {
		return f.dec.SkipValue()
	}
	if _, err := f.dec.ReadToken(); err != nil {
		return err
	}
	for i := 1; f.dec.PeekKind() != ']'; i++ {
		// The item's row is taken fresh: a nested repeat's rows are
		// emitted from inside it, before it.
		r := f.row(t)
		r.Record, r.ParentKey = rec, parentKey
		r.Key = parentKey + "/" + name + "[" + strconv.Itoa(i) + "]"
		if err := f.object(t, r, t.root, rec); err != nil {
			return err
		}
		if err := f.emit(r); err != nil {
			return err
		}
	}
	_, err := f.dec.ReadToken()
	return err
}

// Columns returns the columns a table shows: with repeats as tables of
// their own, a repeat is not a column of its parent.
func (t *Table) columns(tables bool) []int {
	out := make([]int, 0, len(t.Columns))
	for i, c := range t.Columns {
		if c.Kind == KindRepeat && tables {
			continue
		}
		out = append(out, i)
	}
	return out
}

// Header is the header row of a table as written: the record columns and
// answers for the main table, the answers and the keys for a repeat.
func (t *Table) header(tables bool) []string {
	var h []string
	if t.Parent == nil {
		h = append(h, MetaColumns...)
	}
	for _, i := range t.columns(tables) {
		h = append(h, t.Columns[i].Name)
	}
	if t.Parent != nil {
		h = append(h, ParentKeyColumn, KeyColumn)
	}
	return h
}

// timeText is how times are written in text formats: RFC 3339 UTC with
// milliseconds, the precision the server keeps.
func timeText(t time.Time) string {
	if t.IsZero() {
		return ""
	}
	return t.UTC().Format("2006-01-02T15:04:05.000Z07:00")
}

// metaText is the text of the record columns of a main row.
func metaText(dst []string, rec *domain.Record) []string {
	return append(dst, rec.ID, rec.FormVersion, rec.Rev, rec.CreatedBy, rec.DeviceID, timeText(rec.CreatedAt),
		timeText(rec.UpdatedAt), rec.ReviewState, strconv.FormatBool(len(rec.Conflicts) > 0))
}

// textOf is a cell's text in csv: a string unquoted, a number or boolean as
// written, nothing for null or absent, the items of a multiple choice
// separated by spaces, and the JSON of anything else (a repeat in csv).
// With labels, choice codes become their labels (a multiple choice's
// labels are separated by "; ", since labels hold spaces).
func textOf(c *Column, v jsontext.Value, labels bool, scratch *jsontext.Decoder, rd *bytes.Reader) string {
	if len(v) == 0 {
		return ""
	}
	switch v[0] {
	case 'n':
		return ""
	case '"':
		s := unquote(v)
		if labels && c.Kind == KindChoice {
			return c.Label(s)
		}
		return s
	case '[':
		if c.Kind != KindChoices {
			return string(v)
		}
		rd.Reset(v)
		scratch.Reset(rd, jsontext.AllowDuplicateNames(true), jsontext.AllowInvalidUTF8(true))
		if _, err := scratch.ReadToken(); err != nil {
			return string(v)
		}
		var b strings.Builder
		sep := " "
		if labels {
			sep = "; "
		}
		for scratch.PeekKind() != ']' {
			item, err := scratch.ReadValue()
			if err != nil {
				return string(v)
			}
			if b.Len() > 0 {
				b.WriteString(sep)
			}
			s := string(item)
			switch item[0] {
			case '"':
				s = unquote(item)
			case '{', '[':
				return string(v) // not a list of scalars after all
			}
			if labels {
				s = c.Label(s)
			}
			b.WriteString(s)
		}
		return b.String()
	}
	if labels && c.Kind == KindChoice {
		return c.Label(string(v))
	}
	return string(v)
}

// unquote returns a JSON string's value.
func unquote(v jsontext.Value) string {
	if bytes.IndexByte(v, '\\') < 0 {
		return string(v[1 : len(v)-1])
	}
	b, err := jsontext.AppendUnquote(nil, v)
	if err != nil {
		return string(v)
	}
	return string(b)
}
