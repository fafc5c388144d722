package odata

import (
	"encoding/json"
	"fmt"
	"slices"
	"strconv"
	"strings"
	"unicode"
)

// Edm primitive types the feed uses.
const (
	edmString   = "Edm.String"
	edmInt64    = "Edm.Int64"
	edmDouble   = "Edm.Double"
	edmBoolean  = "Edm.Boolean"
	edmDateTime = "Edm.DateTimeOffset"
	edmDate     = "Edm.Date"
)

// Names of the feed that are not the form's: they follow ODK Central's OData
// feed, which Power BI users of ODK already know.
const (
	// SubmissionsSet is the entity set of the records themselves.
	SubmissionsSet = "Submissions"
	// keyName is the key property of every entity type.
	keyName = "__id"
	// systemName is the complex property with the record's metadata.
	systemName = "__system"
	systemType = "__system"
	geoType    = "__geopoint"
)

// encoding says how a property's value is written.
type encoding int

const (
	encText     encoding = iota // Edm.String: a string as it is, anything else as its JSON text
	encInt                      // Edm.Int64
	encDouble                   // Edm.Double
	encBool                     // Edm.Boolean
	encDateTime                 // Edm.DateTimeOffset
	encDate                     // Edm.Date
	encMulti                    // Edm.String: an array of scalars (a multiple choice), values separated by spaces (protocol.md §4)
	encComplex                  // a complex type: a group of questions
	encGeo                      // the __geopoint complex type: latitude, longitude, altitude, accuracy
)

// Prop is one property of an entity or complex type.
type Prop struct {
	// Name is the OData name: the JSON key made a valid identifier.
	Name string
	// Key is the property's key in the record data ("" for __id and __system).
	Key string
	// Type is the Edm type or the qualified name of a complex type.
	Type string
	// Title is the question's label (the schema title), "" when none.
	Title   string
	enc     encoding
	complex *Type
}

// Type is an entity type (of an entity set) or a complex type (a group).
type Type struct {
	Name  string
	Props []*Prop
	byKey map[string]*Prop
	names map[string]bool
}

func newType(name string, reserved ...string) *Type {
	t := &Type{Name: name, byKey: map[string]*Prop{}, names: map[string]bool{}}
	for _, r := range reserved {
		t.names[r] = true
	}
	return t
}

// Prop returns the property of OData name n.
func (t *Type) Prop(n string) *Prop {
	for _, p := range t.Props {
		if p.Name == n {
			return p
		}
	}
	return nil
}

// uniqueName makes key a valid, unused OData identifier in t.
func (t *Type) uniqueName(key string) string {
	base := identifier(key)
	n := base
	for i := 2; t.names[n]; i++ {
		n = base + "_" + strconv.Itoa(i)
	}
	t.names[n] = true
	return n
}

// identifier makes s a CSDL SimpleIdentifier: letters, digits and _, not
// starting with a digit, at most 128 characters.
func identifier(s string) string {
	var b strings.Builder
	for _, r := range s {
		switch {
		case r == '_' || unicode.IsLetter(r) || unicode.IsDigit(r):
			b.WriteRune(r)
		default:
			b.WriteRune('_')
		}
	}
	out := b.String()
	if out == "" || unicode.IsDigit([]rune(out)[0]) {
		out = "_" + out
	}
	if r := []rune(out); len(r) > 128 {
		out = string(r[:128])
	}
	return out
}

// Set is an entity set: Submissions, or one repeat group (an array of
// objects), whose rows point at their parent row with ParentKey.
type Set struct {
	Name string
	Type *Type
	// Parent is the set whose rows hold this set's arrays; nil for Submissions.
	Parent *Set
	// Path is the JSON keys from a parent row's object to the array.
	Path []string
	// ParentKey is the property naming the parent row's __id
	// ("__Submissions-id", "__Submissions-household-members-id").
	ParentKey string
}

// Model is the OData model of one form: its entity sets (Submissions first,
// then the repeat groups in schema order) and complex types.
type Model struct {
	Namespace string
	Container string
	Sets      []*Set
	Complex   []*Type
	names     map[string]bool // type names in use
}

// Set returns the entity set called name, or nil.
func (m *Model) Set(name string) *Set {
	for _, s := range m.Sets {
		if s.Name == name {
			return s
		}
	}
	return nil
}

// systemProps are the record metadata under __system, with the record field
// each one is read from (see systemValue). ODK Central's names where it has
// the same thing; filterable ones are listed in filter.go.
var systemProps = []struct{ name, typ string }{
	{"submissionDate", edmDateTime}, // created_at: when the server received the record
	{"updatedAt", edmDateTime},
	{"clientModifiedAt", edmDateTime},
	{"submitterId", edmString}, // created_by
	{"deviceId", edmString},
	{"formVersion", edmString},
	{"rev", edmString},
	{"reviewState", edmString},
	{"hasConflicts", edmBoolean},
}

// BuildModel builds the model of form formID from the definitions of its
// published versions, oldest first: the entity types are the union of the
// versions' schemas, properties in the order the schemas first list them.
// Where versions disagree on a question's type, scalar types widen (Int64
// and Double to Double, anything else to String, written as text) and the
// first structure (group, repeat) stays.
func BuildModel(formID string, definitions [][]byte) (*Model, error) {
	ns := identifier(formID)
	m := &Model{Namespace: "fieldsync.form." + ns, Container: ns, names: map[string]bool{systemType: true, geoType: true}}
	sub := &Set{Name: SubmissionsSet, Type: newType(SubmissionsSet, keyName, systemName)}
	m.names[SubmissionsSet] = true
	m.Sets = append(m.Sets, sub)
	for i, def := range definitions {
		doc, err := decodeOrdered(def)
		if err != nil {
			return nil, fmt.Errorf("odata: definition %d: %w", i, err)
		}
		d, _ := doc.(*object)
		schema, _ := d.Get("schema")
		w := walker{m: m, root: schema}
		w.object(sub, sub.Type, schema, nil, 0)
	}
	m.prune()
	// __id first and __system last, around the answers, as ODK Central does.
	sub.Type.Props = append([]*Prop{{Name: keyName, Type: edmString, enc: encText}}, sub.Type.Props...)
	sub.Type.Props = append(sub.Type.Props, &Prop{Name: systemName, Type: m.Namespace + "." + systemType, enc: encComplex})
	for _, s := range m.Sets[1:] {
		s.Type.Props = append([]*Prop{{Name: keyName, Type: edmString, enc: encText}}, s.Type.Props...)
		s.Type.Props = append(s.Type.Props, &Prop{Name: s.ParentKey, Type: edmString, enc: encText})
	}
	return m, nil
}

// prune drops groups left without properties (a group that holds only a
// repeat group, which is its own set): an empty column helps nobody.
func (m *Model) prune() {
	empty := map[*Type]bool{}
	for changed := true; changed; {
		changed = false
		for _, t := range m.Complex {
			if empty[t] {
				continue
			}
			n := 0
			for _, p := range t.Props {
				if p.complex == nil || !empty[p.complex] {
					n++
				}
			}
			if n == 0 {
				empty[t], changed = true, true
			}
		}
	}
	keep := func(t *Type) {
		t.Props = slices.DeleteFunc(t.Props, func(p *Prop) bool { return p.complex != nil && empty[p.complex] })
	}
	for _, s := range m.Sets {
		keep(s.Type)
	}
	m.Complex = slices.DeleteFunc(m.Complex, func(t *Type) bool { return empty[t] })
	for _, t := range m.Complex {
		keep(t)
	}
}

// maxSchemaDepth bounds the walk through $refs (a recursive schema).
const maxSchemaDepth = 32

type walker struct {
	m    *Model
	root any
}

// resolve follows local $refs and merges allOf branches' properties.
func (w *walker) resolve(node any, depth int) *object {
	o, _ := node.(*object)
	for i := 0; o != nil && i < maxSchemaDepth; i++ {
		ref, ok := o.Get("$ref")
		rs, _ := ref.(string)
		if !ok || !strings.HasPrefix(rs, "#") {
			break
		}
		target, ok := pointer(w.root, strings.TrimPrefix(rs, "#"))
		if !ok {
			return o
		}
		// Keywords beside the $ref (a title) stay; the target gives the rest.
		t, _ := target.(*object)
		if t == nil {
			return o
		}
		merged := &object{Vals: map[string]any{}}
		for _, src := range []*object{t, o} {
			for _, k := range src.Keys {
				if k == "$ref" && src == o {
					continue
				}
				if _, dup := merged.Vals[k]; !dup {
					merged.Keys = append(merged.Keys, k)
				}
				merged.Vals[k] = src.Vals[k]
			}
		}
		o = merged
	}
	return o
}

// pointer resolves a JSON pointer in an ordered document.
func pointer(doc any, ptr string) (any, bool) {
	if ptr == "" {
		return doc, true
	}
	cur := doc
	for _, tok := range strings.Split(strings.TrimPrefix(ptr, "/"), "/") {
		tok = strings.ReplaceAll(strings.ReplaceAll(tok, "~1", "/"), "~0", "~")
		switch c := cur.(type) {
		case *object:
			v, ok := c.Vals[tok]
			if !ok {
				return nil, false
			}
			cur = v
		case []any:
			i, err := strconv.Atoi(tok)
			if err != nil || i < 0 || i >= len(c) {
				return nil, false
			}
			cur = c[i]
		default:
			return nil, false
		}
	}
	return cur, true
}

// properties lists an object schema's properties in order, those of its
// allOf branches after its own.
func (w *walker) properties(o *object, depth int) (keys []string, vals map[string]any) {
	vals = map[string]any{}
	var add func(o *object, depth int)
	add = func(o *object, depth int) {
		if o == nil || depth > maxSchemaDepth {
			return
		}
		if p, ok := o.Get("properties"); ok {
			if po, ok := p.(*object); ok {
				for _, k := range po.Keys {
					if _, dup := vals[k]; !dup {
						keys = append(keys, k)
						vals[k] = po.Vals[k]
					}
				}
			}
		}
		if all, ok := o.Get("allOf"); ok {
			if arr, ok := all.([]any); ok {
				for _, b := range arr {
					add(w.resolve(b, depth+1), depth+1)
				}
			}
		}
	}
	add(o, depth)
	return keys, vals
}

// object adds the properties of an object schema to t; row is the set whose
// rows hold t's values (t is the row type or a group inside it) and path the
// JSON keys from the row's object to t's.
func (w *walker) object(row *Set, t *Type, node any, path []string, depth int) {
	o := w.resolve(node, depth)
	keys, vals := w.properties(o, depth)
	for _, k := range keys {
		w.prop(row, t, k, vals[k], path, depth+1)
	}
}

func (w *walker) prop(row *Set, t *Type, key string, node any, path []string, depth int) {
	if depth > maxSchemaDepth {
		return
	}
	o := w.resolve(node, depth)
	title, _ := getString(o, "title")
	c := classify(w, o, depth)
	if c.repeat != nil {
		w.repeat(row, key, c.repeat, append(append([]string(nil), path...), key), depth)
		return
	}
	p := t.byKey[key]
	if p == nil {
		p = &Prop{Name: t.uniqueName(key), Key: key, Title: title, enc: c.enc, Type: c.edm}
		if c.enc == encComplex {
			name := w.typeName(append(append([]string(nil), path...), key), row)
			p.complex = newType(name)
			p.Type = w.m.Namespace + "." + name
			w.m.Complex = append(w.m.Complex, p.complex)
		}
		if c.enc == encGeo {
			p.Type = w.m.Namespace + "." + geoType
		}
		t.byKey[key] = p
		t.Props = append(t.Props, p)
	} else {
		widen(p, c)
	}
	if p.enc == encComplex && c.enc == encComplex {
		w.object(row, p.complex, o, append(append([]string(nil), path...), key), depth)
	}
}

// widen merges another version's idea of a property into p.
func widen(p *Prop, c class) {
	if p.enc == c.enc || p.enc == encComplex || p.enc == encGeo || c.enc == encComplex || c.enc == encGeo {
		return // the same, or a structure: the first one stays
	}
	if (p.enc == encInt && c.enc == encDouble) || (p.enc == encDouble && c.enc == encInt) {
		p.enc, p.Type = encDouble, edmDouble
		return
	}
	p.enc, p.Type = encText, edmString
}

// repeat adds (or extends) the entity set of an array of objects.
func (w *walker) repeat(parent *Set, key string, items any, path []string, depth int) {
	var set *Set
	for _, s := range w.m.Sets {
		if s.Parent == parent && strings.Join(s.Path, "\x00") == strings.Join(path, "\x00") {
			set = s
		}
	}
	if set == nil {
		name := parent.Name
		for _, k := range path {
			name += "." + identifier(k)
		}
		for i := 2; w.m.names[name]; i++ {
			name = fmt.Sprintf("%s_%d", name, i)
		}
		w.m.names[name] = true
		set = &Set{Name: name, Type: newType(name, keyName), Parent: parent, Path: path,
			ParentKey: "__" + strings.ReplaceAll(parent.Name, ".", "-") + "-id"}
		set.Type.names[set.ParentKey] = true
		w.m.Sets = append(w.m.Sets, set)
	}
	w.object(set, set.Type, items, nil, depth)
}

// typeName names the complex type of a group: its path from the entity set,
// dotted, unique in the model.
func (w *walker) typeName(path []string, row *Set) string {
	parts := []string{}
	if row.Parent != nil {
		parts = append(parts, row.Name)
	}
	for _, k := range path {
		parts = append(parts, identifier(k))
	}
	name := strings.Join(parts, ".")
	base := name
	for i := 2; w.m.names[name]; i++ {
		name = fmt.Sprintf("%s_%d", base, i)
	}
	w.m.names[name] = true
	return name
}

type class struct {
	enc    encoding
	edm    string
	repeat any // the items schema of an array of objects
}

func getString(o *object, k string) (string, bool) {
	v, ok := o.Get(k)
	s, _ := v.(string)
	return s, ok && s != ""
}

// schemaTypes is the set of JSON types a schema says, inferred from const,
// enum and oneOf/anyOf consts when it has no "type"; null is left out.
func schemaTypes(w *walker, o *object, depth int) map[string]bool {
	out := map[string]bool{}
	if o == nil {
		return out
	}
	switch t := o.Vals["type"].(type) {
	case string:
		out[t] = true
	case []any:
		for _, x := range t {
			if s, ok := x.(string); ok {
				out[s] = true
			}
		}
	}
	if len(out) == 0 {
		add := func(v any) {
			switch x := v.(type) {
			case string:
				out["string"] = true
			case json.Number:
				if _, err := x.Int64(); err == nil {
					out["integer"] = true
				} else {
					out["number"] = true
				}
			case bool:
				out["boolean"] = true
			case *object:
				out["object"] = true
			case []any:
				out["array"] = true
			}
		}
		if c, ok := o.Get("const"); ok {
			add(c)
		}
		if e, ok := o.Vals["enum"].([]any); ok {
			for _, v := range e {
				add(v)
			}
		}
		for _, kw := range []string{"oneOf", "anyOf"} {
			if bs, ok := o.Vals[kw].([]any); ok && depth < maxSchemaDepth {
				for _, b := range bs {
					for t := range schemaTypes(w, w.resolve(b, depth+1), depth+1) {
						out[t] = true
					}
				}
			}
		}
		if _, ok := o.Get("properties"); ok {
			out["object"] = true
		}
		if _, ok := o.Get("items"); ok {
			out["array"] = true
		}
	}
	delete(out, "null")
	if out["integer"] && out["number"] {
		delete(out, "integer")
	}
	return out
}

// classify maps a property schema to how the feed shows it.
func classify(w *walker, o *object, depth int) class {
	format, _ := getString(o, "format")
	types := schemaTypes(w, o, depth)
	if format == "geopoint" {
		return class{enc: encGeo}
	}
	if len(types) != 1 {
		return class{enc: encText, edm: edmString}
	}
	var typ string
	for t := range types {
		typ = t
	}
	switch typ {
	case "string":
		switch format {
		case "date-time":
			return class{enc: encDateTime, edm: edmDateTime}
		case "date":
			return class{enc: encDate, edm: edmDate}
		}
		return class{enc: encText, edm: edmString}
	case "integer":
		return class{enc: encInt, edm: edmInt64}
	case "number":
		return class{enc: encDouble, edm: edmDouble}
	case "boolean":
		return class{enc: encBool, edm: edmBoolean}
	case "object":
		if keys, _ := w.properties(o, depth); len(keys) > 0 {
			return class{enc: encComplex}
		}
		return class{enc: encText, edm: edmString}
	case "array":
		items := w.resolve(o.Vals["items"], depth+1)
		it := schemaTypes(w, items, depth+1)
		if len(it) == 1 && it["object"] {
			if keys, _ := w.properties(items, depth+1); len(keys) > 0 {
				if f, _ := getString(items, "format"); f != "geopoint" {
					return class{repeat: items}
				}
			}
		}
		if len(it) > 0 && !it["object"] && !it["array"] {
			return class{enc: encMulti, edm: edmString}
		}
		return class{enc: encText, edm: edmString}
	}
	return class{enc: encText, edm: edmString}
}
