// Package export turns one form's records into datasets (protocol.md §4): the
// column model shared by every format, and the streaming writers of csv,
// csv.zip, xlsx, ndjson and geojson. It knows no HTTP and no store: the caller
// hands it the form's versions and an iterator of records, and a writer.
package export

import (
	"bytes"
	"encoding/json"
	"fmt"
	"strconv"
	"strings"

	"github.com/go-json-experiment/json/jsontext"
)

// Kind is what a column holds, which decides how a writer formats it.
type Kind int

// The kinds of columns.
const (
	KindText     Kind = iota // a string (or anything the schema leaves open)
	KindInteger              // "type": "integer"
	KindNumber               // "type": "number"
	KindBoolean              // "type": "boolean"
	KindDate                 // "format": "date"
	KindDateTime             // "format": "date-time"
	KindChoice               // one code of an enum / oneOf
	KindChoices              // an array of scalars: a multiple choice, values space-separated
	KindRepeat               // an array of objects: a JSON cell in csv, its own table elsewhere
	KindJSON                 // an object or array the schema does not describe: its JSON
)

// String is the kind's name in the codebook.
func (k Kind) String() string {
	return [...]string{"text", "integer", "number", "boolean", "date", "date-time", "choice", "multiple choice", "repeat", "json"}[k]
}

// Choice is one code of a choice question with its label.
type Choice struct {
	Code  string
	Label string
}

// Column is one answer column: a leaf of the schema's properties.
type Column struct {
	// Name is the path of the answer, names joined with "/" (respondent/age);
	// inside a repeat table, relative to the repeat's items.
	Name string
	// Pointer is the JSON pointer of the answer in the record's data (for
	// a repeat table, from the data root, array items as the array's own
	// pointer): the key of the form's ui labels.
	Pointer string
	// Title is the question's label: the schema title, else the name.
	Title string
	Kind  Kind
	// Required is true when the schema lists the answer in its object's
	// "required" (the latitude and longitude of a required geopoint too);
	// the web console's preview and version comparison show it.
	Required bool
	// Choices are the codes of a choice question, in schema order, with
	// their labels (oneOf titles, else ui.choices, else the code).
	Choices []Choice
	// Table is the repeat's own table (KindRepeat only).
	Table *Table

	labels map[string]string // code → label
	geo    string            // "latitude"/"longitude"/"altitude" of a geopoint part
}

// Label returns a code's label, the code itself when it has none.
func (c *Column) Label(code string) string {
	if l, ok := c.labels[code]; ok {
		return l
	}
	return code
}

// Table is one table of a dataset: the form's records, or the items of one
// repeat group.
type Table struct {
	// Name is "" for the main table, else the repeat's path (household/members).
	Name    string
	Columns []*Column
	// Parent is the table whose rows hold this repeat; nil for the main table.
	Parent *Table

	root *node
	// geo are the columns of the first geopoint (latitude, longitude,
	// altitude), -1 when absent: the geometry of geojson.
	geo [3]int
}

// node is one step of a table's schema tree: a member of an object, either a
// column (col ≥ 0) or a group of members.
type node struct {
	children map[string]*node
	col      int
}

// Model is the column model of one form across the versions given to Build.
type Model struct {
	Form string
	Main *Table
	// Tables is every table, the main one first, then the repeats depth-first
	// in column order.
	Tables []*Table
}

// MetaColumns are the record columns before the answers (protocol.md §4).
var MetaColumns = []string{"id", "form_version", "rev", "created_by", "device_id", "created_at", "updated_at", "review_state", "has_conflicts"}

// Repeat tables end with these columns: the key of the row holding the item
// (the record id, or the KEY of the enclosing item), and the item's own key.
const (
	ParentKeyColumn = "PARENT_KEY"
	KeyColumn       = "KEY"
)

// Version is one form version's definition, as stored (key order kept).
type Version struct {
	Version    string
	Definition json.RawMessage
}

// Build makes the column model of a form from its versions, in version
// order: the columns of the first version in the order its schema lists its
// properties, then each column a later version adds, at the end of its table.
// A column's title and choices come from the latest version that has it.
func Build(form string, versions []Version) (*Model, error) {
	m := &Model{Form: form, Main: newTable("", nil)}
	m.Tables = []*Table{m.Main}
	for _, v := range versions {
		def, err := parseOrdered(v.Definition)
		if err != nil {
			return nil, fmt.Errorf("export: version %s: %w", v.Version, err)
		}
		d, _ := def.(*object)
		if d == nil {
			return nil, fmt.Errorf("export: version %s: the definition is not an object", v.Version)
		}
		schema, _ := d.get("schema").(*object)
		if schema == nil {
			continue
		}
		b := &builder{m: m, root: schema, ui: uiOf(d.get("ui"))}
		b.object(m.Main, m.Main.root, schema, "", "", 0)
	}
	for _, t := range m.Tables {
		t.findGeo()
	}
	return m, nil
}

func newTable(name string, parent *Table) *Table {
	return &Table{Name: name, Parent: parent, root: &node{col: -1}, geo: [3]int{-1, -1, -1}}
}

// maxDepth bounds the schema walk ($ref loops, absurd nesting).
const maxDepth = 32

type builder struct {
	m    *Model
	root *object
	ui   ui
}

// object adds the columns of an object schema's properties under n. name is
// the path within the table ("" at its root), ptr the JSON pointer from the
// data root.
func (b *builder) object(t *Table, n *node, s *object, name, ptr string, depth int) {
	rs := b.resolve(s, 0)
	props, _ := rs.get("properties").(*object)
	if props == nil || depth > maxDepth {
		return
	}
	required := map[string]bool{}
	if rl, ok := rs.get("required").([]any); ok {
		for _, k := range rl {
			required[str(k)] = true
		}
	}
	for i, key := range props.keys {
		ps, _ := props.vals[i].(*object)
		if ps == nil {
			ps = &object{}
		}
		b.property(t, n, key, ps, join(name, key), ptr+"/"+escapePointer(key), depth+1, required[key])
	}
}

// property adds one property: a group, a repeat or a column. req is whether
// the enclosing object requires it.
func (b *builder) property(t *Table, parent *node, key string, raw *object, name, ptr string, depth int, req bool) {
	s := b.resolve(raw, 0)
	title := str(raw.get("title"))
	if title == "" {
		title = str(s.get("title"))
	}
	if title == "" {
		title = key
	}
	typ := schemaType(s)
	_, hasProps := s.get("properties").(*object)
	switch {
	case str(s.get("format")) == "geopoint" && !hasProps:
		g := b.group(parent, key)
		for _, part := range []string{"latitude", "longitude", "altitude", "accuracy"} {
			c := b.column(t, g, part, join(name, part), ptr+"/"+part, title+" ("+part+")", KindNumber)
			c.Required = req && (part == "latitude" || part == "longitude")
			if part != "accuracy" {
				c.geo = part
			}
		}
		return
	case typ == "object" || hasProps:
		if !hasProps {
			b.column(t, parent, key, name, ptr, title, KindJSON).Required = req
			return
		}
		g := b.group(parent, key)
		b.object(t, g, s, name, ptr, depth)
		// A location given as an object with latitude and longitude is a
		// point for geojson too (protocol.md §4).
		if lat, lon := g.children["latitude"], g.children["longitude"]; lat != nil && lon != nil && lat.col >= 0 && lon.col >= 0 {
			for _, part := range []string{"latitude", "longitude", "altitude"} {
				if n := g.children[part]; n != nil && n.col >= 0 {
					t.Columns[n.col].geo = part
				}
			}
		}
		return
	case typ == "array" || s.get("items") != nil:
		items, _ := s.get("items").(*object)
		if items == nil {
			b.column(t, parent, key, name, ptr, title, KindChoices).Required = req
			return
		}
		it := b.resolve(items, 0)
		if _, ok := it.get("properties").(*object); ok || schemaType(it) == "object" {
			c := b.column(t, parent, key, name, ptr, title, KindRepeat)
			c.Required = req
			full := name
			if t.Name != "" {
				full = t.Name + "/" + name
			}
			if c.Table == nil {
				c.Table = newTable(full, t)
				b.m.Tables = append(b.m.Tables, c.Table)
			}
			b.object(c.Table, c.Table.root, it, "", ptr, depth)
			return
		}
		c := b.column(t, parent, key, name, ptr, title, KindChoices)
		c.Required = req
		b.choices(c, it, ptr)
		return
	}
	kind := KindText
	switch {
	case s.get("enum") != nil || s.get("const") != nil || hasConstBranches(s):
		kind = KindChoice
	case typ == "integer":
		kind = KindInteger
	case typ == "number":
		kind = KindNumber
	case typ == "boolean":
		kind = KindBoolean
	case str(s.get("format")) == "date":
		kind = KindDate
	case str(s.get("format")) == "date-time":
		kind = KindDateTime
	}
	c := b.column(t, parent, key, name, ptr, title, kind)
	c.Required = req
	if kind == KindChoice {
		b.choices(c, s, ptr)
	}
}

// group returns the group node key under parent, creating it.
func (b *builder) group(parent *node, key string) *node {
	if parent.children == nil {
		parent.children = map[string]*node{}
	}
	g := parent.children[key]
	if g == nil || g.col >= 0 {
		g = &node{col: -1}
		parent.children[key] = g
	}
	return g
}

// column returns the column name of t, creating it at the end (a later
// version's title and kind replace an earlier one's).
func (b *builder) column(t *Table, parent *node, key, name, ptr, title string, kind Kind) *Column {
	if parent.children == nil {
		parent.children = map[string]*node{}
	}
	if n := parent.children[key]; n != nil && n.col >= 0 {
		c := t.Columns[n.col]
		c.Title = title
		if c.Kind != KindRepeat || kind == KindRepeat {
			c.Kind = kind
		}
		return c
	}
	c := &Column{Name: name, Pointer: ptr, Title: title, Kind: kind}
	parent.children[key] = &node{col: len(t.Columns)}
	t.Columns = append(t.Columns, c)
	return c
}

// choices adds the codes of an enum, a const or oneOf/anyOf const branches
// to c, with labels from the branch titles, else the form's ui.choices.
func (b *builder) choices(c *Column, s *object, ptr string) {
	if c.labels == nil {
		c.labels = map[string]string{}
	}
	add := func(v any, title string) {
		code := scalarText(v)
		if title == "" {
			title = b.ui.choices[ptr][code]
		}
		for i, ch := range c.Choices {
			if ch.Code == code {
				if title != "" {
					c.Choices[i].Label = title
					c.labels[code] = title
				}
				return
			}
		}
		label := title
		if label == "" {
			label = code
		}
		c.Choices = append(c.Choices, Choice{Code: code, Label: label})
		c.labels[code] = label
	}
	if e, ok := s.get("enum").([]any); ok {
		for _, v := range e {
			add(v, "")
		}
	}
	if v := s.get("const"); v != nil {
		add(v, "")
	}
	for _, k := range []string{"oneOf", "anyOf"} {
		bs, _ := s.get(k).([]any)
		for _, br := range bs {
			o, _ := br.(*object)
			if o == nil {
				continue
			}
			o = b.resolve(o, 0)
			if v := o.get("const"); v != nil {
				add(v, str(o.get("title")))
			}
		}
	}
}

// resolve follows a local $ref ("#/$defs/x") to its target.
func (b *builder) resolve(s *object, depth int) *object {
	ref := str(s.get("$ref"))
	if ref == "" || !strings.HasPrefix(ref, "#") || depth > maxDepth {
		return s
	}
	var cur any = b.root
	for _, tok := range strings.Split(strings.TrimPrefix(ref, "#"), "/")[1:] {
		tok = strings.ReplaceAll(strings.ReplaceAll(tok, "~1", "/"), "~0", "~")
		o, _ := cur.(*object)
		if o == nil {
			return s
		}
		cur = o.get(tok)
	}
	t, _ := cur.(*object)
	if t == nil {
		return s
	}
	return b.resolve(t, depth+1)
}

// findGeo notes the first geopoint's columns.
func (t *Table) findGeo() {
	for i, c := range t.Columns {
		if c.geo == "" {
			continue
		}
		k := map[string]int{"latitude": 0, "longitude": 1, "altitude": 2}[c.geo]
		if t.geo[k] < 0 && (t.geo[0] < 0 || strings.HasPrefix(c.Name, strings.TrimSuffix(t.Columns[t.geo[0]].Name, "latitude"))) {
			t.geo[k] = i
		}
	}
}

// Geo returns the columns of the table's first geopoint (latitude,
// longitude, altitude; -1 when absent).
func (t *Table) Geo() (lat, lon, alt int) { return t.geo[0], t.geo[1], t.geo[2] }

func hasConstBranches(s *object) bool {
	bs, _ := s.get("oneOf").([]any)
	if len(bs) == 0 {
		return false
	}
	for _, br := range bs {
		if o, _ := br.(*object); o == nil || o.get("const") == nil {
			return false
		}
	}
	return true
}

// schemaType is the schema's "type", the first that is not "null" of a list.
func schemaType(s *object) string {
	switch t := s.get("type").(type) {
	case string:
		return t
	case []any:
		for _, v := range t {
			if x, _ := v.(string); x != "" && x != "null" {
				return x
			}
		}
	}
	return ""
}

func join(prefix, name string) string {
	if prefix == "" {
		return name
	}
	return prefix + "/" + name
}

func escapePointer(s string) string {
	return strings.ReplaceAll(strings.ReplaceAll(s, "~", "~0"), "/", "~1")
}

func str(v any) string { s, _ := v.(string); return s }

// scalarText is a choice code's text: a string as is, a number as written.
func scalarText(v any) string {
	switch v := v.(type) {
	case string:
		return v
	case number:
		return string(v)
	case bool:
		return strconv.FormatBool(v)
	case nil:
		return ""
	}
	return fmt.Sprint(v)
}

// ui is the part of a form's "ui" the exports read (protocol.md §2).
type ui struct {
	choices map[string]map[string]string // pointer → code → label
}

func uiOf(v any) ui {
	out := ui{choices: map[string]map[string]string{}}
	o, _ := v.(*object)
	if o == nil {
		return out
	}
	ch, _ := o.get("choices").(*object)
	if ch == nil {
		return out
	}
	for i, ptr := range ch.keys {
		m, _ := ch.vals[i].(*object)
		if m == nil {
			continue
		}
		labels := map[string]string{}
		for j, code := range m.keys {
			labels[code] = str(m.vals[j])
		}
		out.choices[ptr] = labels
	}
	return out
}

// object is a JSON object that keeps its key order: exports list answers in
// the order the designer wrote the schema.
type object struct {
	keys []string
	vals []any
}

func (o *object) get(k string) any {
	if o == nil {
		return nil
	}
	for i, key := range o.keys {
		if key == k {
			return o.vals[i]
		}
	}
	return nil
}

// number is a JSON number as written.
type number string

// parseOrdered decodes JSON into *object, []any, string, number, bool and nil.
func parseOrdered(b []byte) (any, error) {
	d := jsontext.NewDecoder(bytes.NewReader(b))
	return decodeOrdered(d)
}

func decodeOrdered(d *jsontext.Decoder) (any, error) {
	tok, err := d.ReadToken()
	if err != nil {
		return nil, err
	}
	switch tok.Kind() {
	case '{':
		o := &object{}
		for d.PeekKind() != '}' {
			k, err := d.ReadToken()
			if err != nil {
				return nil, err
			}
			key := k.String() // before the next read voids the token
			v, err := decodeOrdered(d)
			if err != nil {
				return nil, err
			}
			o.keys = append(o.keys, key)
			o.vals = append(o.vals, v)
		}
		_, err := d.ReadToken()
		return o, err
	case '[':
		a := []any{}
		for d.PeekKind() != ']' {
			v, err := decodeOrdered(d)
			if err != nil {
				return nil, err
			}
			a = append(a, v)
		}
		_, err := d.ReadToken()
		return a, err
	case '"':
		return tok.String(), nil
	case '0':
		return number(tok.String()), nil
	case 't', 'f':
		return tok.Bool(), nil
	}
	return nil, nil
}
