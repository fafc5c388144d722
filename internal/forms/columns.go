package forms

import (
	"bytes"
	"encoding/json"
	"slices"
	"strconv"
	"strings"

	"github.com/santhosh-tekuri/jsonschema/v6"
)

// ColumnKind says how an answer is laid out in a dataset (protocol.md §4).
type ColumnKind int

// The column kinds.
const (
	// ColumnValue is a scalar answer: one cell.
	ColumnValue ColumnKind = iota
	// ColumnMultiple is an array of scalars (a multiple choice): one cell, the
	// values separated by spaces.
	ColumnMultiple
	// ColumnRepeat is an array of objects (a repeat group): one JSON cell in
	// csv, its own table in csv.zip and xlsx. Column.Items lists the columns of
	// one item.
	ColumnRepeat
	// ColumnGeopoint is a location ("format": "geopoint").
	ColumnGeopoint
	// ColumnJSON is any other value the schema gives no columns for (an object
	// without properties, an array of arrays, a recursive schema): one JSON cell.
	ColumnJSON
)

// String returns the kind's name.
func (k ColumnKind) String() string {
	switch k {
	case ColumnValue:
		return "value"
	case ColumnMultiple:
		return "multiple"
	case ColumnRepeat:
		return "repeat"
	case ColumnGeopoint:
		return "geopoint"
	case ColumnJSON:
		return "json"
	}
	return "ColumnKind(" + strconv.Itoa(int(k)) + ")"
}

// Column is one answer column of a form's dataset.
type Column struct {
	// Name is the column header: property names from the top of the data joined
	// with "/" ("respondent/age"). For the Items of a repeat group it is
	// relative to one item.
	Name string
	// Pointer is the JSON pointer of the value in the data ("/respondent/age"),
	// relative to one item for the Items of a repeat group.
	Pointer string
	// Kind says how the value is laid out.
	Kind ColumnKind
	// Type is the JSON type the schema declares ("string", "integer", "number",
	// "boolean", "object", "array"), "" when it does not say. For a multiple
	// choice it is the type of the items.
	Type string
	// Format is the schema's format ("date", "geopoint", …; "" when none).
	Format string
	// Title is the schema's title, for a human-readable header.
	Title string
	// Items are the columns of one item of a repeat group.
	Items []Column
}

// Columns returns the answer columns of a definition's dataset, in the order the
// schema lists its properties. Nested objects are flattened into their
// properties; arrays are multiple choices or repeat groups. Properties are
// collected from the schema itself and from what it pulls in with $ref and allOf
// (in that order); anyOf, oneOf and if/then/else are alternatives, not columns,
// and are not followed.
func Columns(d *Definition) []Column {
	w := columnWalker{order: keyOrder(d.Schema)}
	return w.columns(d.schema, "", "")
}

// GeoFields returns the JSON pointers of the properties with "format":
// "geopoint", in schema order, for the GeoJSON export. Points inside repeat
// groups are left out: a pointer cannot address "every item" (Columns lists
// them among the Items of their group).
func GeoFields(d *Definition) []string {
	var out []string
	for _, c := range Columns(d) {
		if c.Kind == ColumnGeopoint {
			out = append(out, c.Pointer)
		}
	}
	return out
}

// keyOrder reads the order of the keys of every object in raw, keyed by the
// object's JSON pointer. Compiled schemas keep properties in Go maps; this is
// where the designer's order comes from.
func keyOrder(raw []byte) map[string][]string {
	order := map[string][]string{}
	dec := json.NewDecoder(bytes.NewReader(raw))
	var walk func(ptr string) bool
	walk = func(ptr string) bool {
		tok, err := dec.Token()
		if err != nil {
			return false
		}
		switch tok {
		case json.Delim('{'):
			var keys []string
			for dec.More() {
				kt, err := dec.Token()
				if err != nil {
					return false
				}
				key, _ := kt.(string)
				keys = append(keys, key)
				if !walk(ptr + "/" + escapePointer(key)) {
					return false
				}
			}
			order[ptr] = keys
			_, err = dec.Token()
			return err == nil
		case json.Delim('['):
			for i := 0; dec.More(); i++ {
				if !walk(ptr + "/" + strconv.Itoa(i)) {
					return false
				}
			}
			_, err = dec.Token()
			return err == nil
		}
		return true
	}
	walk("")
	return order
}

// maxChain bounds how many $ref/allOf hops are followed to learn what a
// property is; real forms need one or two.
const maxChain = 16

type columnWalker struct {
	order map[string][]string
	// stack holds the schemas whose properties are being flattened, to stop
	// at a recursive schema (a tree of nodes) instead of expanding it forever.
	stack []*jsonschema.Schema
}

type property struct {
	name string
	sch  *jsonschema.Schema
}

// chain returns s and the schemas it pulls in with $ref and allOf, depth
// first in the order they are written (s, its $ref and what that pulls in, then
// each allOf entry): together they say what a value is.
func chain(s *jsonschema.Schema) []*jsonschema.Schema {
	var out []*jsonschema.Schema
	var visit func(x *jsonschema.Schema)
	visit = func(x *jsonschema.Schema) {
		if x == nil || len(out) >= maxChain || slices.Contains(out, x) {
			return
		}
		out = append(out, x)
		visit(x.Ref)
		for _, a := range x.AllOf {
			visit(a)
		}
	}
	visit(s)
	return out
}

// properties lists the properties of s and of its chain, in schema order.
func (w *columnWalker) properties(s *jsonschema.Schema) []property {
	var out []property
	for _, x := range chain(s) {
		if len(x.Properties) == 0 {
			continue
		}
		var names []string
		if ptr, ok := definitionPointer(x.Location); ok {
			names = slices.Clone(w.order[strings.TrimPrefix(ptr, "/schema")+"/properties"])
		}
		// Names the order index misses (it always has them; belt and braces)
		// go last, sorted.
		var rest []string
		for n := range x.Properties {
			if !slices.Contains(names, n) {
				rest = append(rest, n)
			}
		}
		slices.Sort(rest)
		for _, n := range append(names, rest...) {
			ps, ok := x.Properties[n]
			if !ok || slices.ContainsFunc(out, func(p property) bool { return p.name == n }) {
				continue
			}
			out = append(out, property{n, ps})
		}
	}
	return out
}

func (w *columnWalker) columns(s *jsonschema.Schema, namePrefix, ptrPrefix string) []Column {
	n := len(w.stack)
	w.stack = append(w.stack, chain(s)...)
	defer func() { w.stack = w.stack[:n] }()
	var out []Column
	for _, p := range w.properties(s) {
		out = append(out, w.column(p.sch, namePrefix+p.name, ptrPrefix+"/"+escapePointer(p.name))...)
	}
	return out
}

// column lays out one property: one column, or several for a nested object.
func (w *columnWalker) column(s *jsonschema.Schema, name, ptr string) []Column {
	v := describe(s)
	c := Column{Name: name, Pointer: ptr, Type: v.typ, Format: v.format, Title: v.title}
	switch {
	case v.format == FormatGeopoint:
		c.Kind = ColumnGeopoint
	case v.isObject && v.hasProps:
		if w.recursive(s) {
			c.Kind = ColumnJSON
			break
		}
		return w.columns(s, name+"/", ptr)
	case v.isArray:
		c.Kind = ColumnJSON
		if v.items == nil {
			break
		}
		iv := describe(v.items)
		switch {
		case iv.isObject && iv.hasProps && iv.format != FormatGeopoint:
			if w.recursive(v.items) {
				break
			}
			c.Kind = ColumnRepeat
			c.Items = w.columns(v.items, "", "")
		case !iv.isObject && !iv.isArray:
			c.Kind = ColumnMultiple
			c.Type = iv.typ
			if c.Format == "" {
				c.Format = iv.format
			}
		}
	case v.isObject:
		c.Kind = ColumnJSON
	default:
		c.Kind = ColumnValue
	}
	return []Column{c}
}

// recursive reports whether flattening s would expand a schema that is
// already being flattened.
func (w *columnWalker) recursive(s *jsonschema.Schema) bool {
	for _, x := range chain(s) {
		if len(x.Properties) > 0 && slices.Contains(w.stack, x) {
			return true
		}
	}
	return false
}

// valueInfo is what a schema and its chain say about a value.
type valueInfo struct {
	typ, format, title string
	isObject, isArray  bool
	hasProps           bool
	items              *jsonschema.Schema
}

func describe(s *jsonschema.Schema) valueInfo {
	var v valueInfo
	var types []string
	for _, x := range chain(s) {
		if types == nil {
			types = declaredTypes(x)
		}
		if v.format == "" && x.Format != nil {
			v.format = x.Format.Name
		}
		if v.title == "" {
			v.title = x.Title
		}
		if len(x.Properties) > 0 {
			v.hasProps = true
		}
		if v.items == nil {
			if x.Items2020 != nil {
				v.items = x.Items2020
			} else if it, ok := x.Items.(*jsonschema.Schema); ok {
				v.items = it
			}
		}
	}
	for _, t := range types {
		if t != "null" && v.typ == "" {
			v.typ = t
		}
	}
	v.isObject = slices.Contains(types, "object") || (types == nil && v.hasProps)
	v.isArray = slices.Contains(types, "array") || (types == nil && v.items != nil)
	return v
}

// declaredTypes is the "type" of s, or the types of its const or enum values;
// nil when s says nothing.
func declaredTypes(s *jsonschema.Schema) []string {
	if s.Types != nil && !s.Types.IsEmpty() {
		return s.Types.ToStrings()
	}
	var vals []any
	if s.Const != nil {
		vals = []any{*s.Const}
	} else if s.Enum != nil {
		vals = s.Enum.Values
	}
	var out []string
	for _, x := range vals {
		if t := jsonTypeOf(x); !slices.Contains(out, t) {
			out = append(out, t)
		}
	}
	return out
}

func jsonTypeOf(v any) string {
	switch x := v.(type) {
	case nil:
		return "null"
	case bool:
		return "boolean"
	case string:
		return "string"
	case json.Number:
		if !strings.ContainsAny(string(x), ".eE") {
			return "integer"
		}
		return "number"
	case float64:
		if x == float64(int64(x)) {
			return "integer"
		}
		return "number"
	case []any:
		return "array"
	case map[string]any:
		return "object"
	}
	return ""
}
