package openrosa

import (
	"bytes"
	"crypto/md5"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"math"
	"regexp"
	"sort"
	"strconv"
	"strings"
)

// Field kinds: how a JSON Schema property is asked in the XForm and read back
// (openrosa.md §3).
const (
	KindString   = "string"
	KindInt      = "int"
	KindDecimal  = "decimal"
	KindBoolean  = "boolean" // select1 of true/false
	KindConsent  = "consent" // trigger, stores OK, reads as true
	KindSelect1  = "select1"
	KindSelect   = "select" // multiple choice, space-separated codes
	KindGroup    = "group"
	KindRepeat   = "repeat"
	KindGeopoint = "geopoint"
	KindDate     = "date"
	KindDateTime = "dateTime"
	KindTime     = "time"
	KindBinary   = "binary"
)

// Field is one question (or group) of a generated XForm and the way back from
// its XML to JSON. The tree is stored with the XForm (Meta), so a submission is
// read with the map its form was made with, whatever later code generates.
type Field struct {
	Name string `json:"name"` // the JSON property name
	XML  string `json:"xml"`  // the element name (an NCName; a generated code when Name is not one)
	Kind string `json:"kind"`
	// ValueType is the JSON type of a select's values ("string", "integer",
	// "number", "boolean"); "" when not a select.
	ValueType string   `json:"value_type,omitempty"`
	Choices   []Choice `json:"choices,omitempty"`
	// Geo lists the optional members of a geopoint the schema allows
	// ("altitude", "accuracy").
	Geo []string `json:"geo,omitempty"`
	// Item is set on a repeat of a primitive: each repeat holds one element
	// "value" read as Item.
	Item *Field `json:"item,omitempty"`
	// Fields are a group's or a repeat's members.
	Fields []*Field `json:"fields,omitempty"`

	// What only the XForm needs.
	label, hint, constraint, constraintMsg, appearance, mediatype string
	required                                                      bool
	ptr                                                           string // the ui pointer (array items as the array's)
}

// Choice maps a select's XML code to its JSON value.
type Choice struct {
	Code  string          `json:"code"`
	Value json.RawMessage `json:"value"`
	label string
	ptr   string
}

// Meta is what the generator says about a form, stored with its XForm.
type Meta struct {
	// Warnings list keywords the XForm cannot express; the server still checks
	// them when the submission arrives.
	Warnings []string `json:"warnings,omitempty"`
	// Reasons list shapes Collect cannot produce; a form with any is left out
	// of the form list.
	Reasons []string `json:"reasons,omitempty"`
	// Fields is the map from XML back to JSON.
	Fields []*Field `json:"fields,omitempty"`
}

// ErrGenerate is matched by Generate's errors: the definition could not be
// made into an XForm (a definition the forms service accepted always can; an
// error here is a bug, kept to the one form).
var ErrGenerate = errors.New("openrosa: cannot generate the XForm")

// Result is a generated XForm.
type Result struct {
	XForm []byte
	MD5   string // hex
	Meta  Meta
}

// MetaJSON returns Meta as stored.
func (r Result) MetaJSON() json.RawMessage {
	b, _ := json.Marshal(r.Meta)
	return b
}

// ParseMeta reads stored Meta.
func ParseMeta(raw json.RawMessage) (Meta, error) {
	var m Meta
	if len(raw) == 0 {
		return m, nil
	}
	err := json.Unmarshal(raw, &m)
	return m, err
}

// Generate makes the XForm of one form version from its definition (as
// stored: title, schema, ui). The output depends on nothing but its input, so
// a form generated twice is the same bytes; still, only the first generation
// is stored and served (Collect matches forms by md5).
func Generate(formID, version string, definition []byte) (res Result, err error) {
	defer func() {
		// A generator bug must not take a publish down with it: it is an
		// error of this form's XForm only.
		if v := recover(); v != nil {
			res, err = Result{}, fmt.Errorf("%w: %v", ErrGenerate, v)
		}
	}()
	root, err := parseOrdered(definition)
	if err != nil {
		return Result{}, fmt.Errorf("%w: definition: %v", ErrGenerate, err)
	}
	def, ok := root.(*obj)
	if !ok {
		return Result{}, fmt.Errorf("%w: definition is not an object", ErrGenerate)
	}
	g := &gen{root: def.Obj("schema"), ui: def.Obj("ui"), seen: map[string]bool{}}
	g.readUI()
	schema := g.root
	if schema == nil {
		return Result{}, fmt.Errorf("%w: definition has no schema", ErrGenerate)
	}
	fields := g.object(schema, "", "")
	g.warnKeywords(schema, "", map[string]bool{"properties": true, "required": true, "additionalProperties": true, "type": true})
	sort.Strings(g.warnings)
	g.warnings = dedup(g.warnings)
	g.reasons = dedup(g.reasons)
	title := def.Str("title")
	if title == "" {
		title = formID
	}
	var b bytes.Buffer
	g.write(&b, formID, version, title, fields)
	sum := md5.Sum(b.Bytes())
	return Result{XForm: b.Bytes(), MD5: hex.EncodeToString(sum[:]),
		Meta: Meta{Warnings: g.warnings, Reasons: g.reasons, Fields: fields}}, nil
}

func dedup(s []string) []string {
	var out []string
	for i, x := range s {
		if i == 0 || x != s[i-1] {
			out = append(out, x)
		}
	}
	return out
}

type gen struct {
	root *obj
	ui   *obj
	// languages: the default first; translations maps a language to its
	// labels, hints and choices by pointer.
	langs        []string
	labels       map[string]map[string]string            // lang → ptr → label
	choiceLabels map[string]map[string]map[string]string // lang → ptr → value → label
	hints        map[string]string
	widgets      map[string]string
	warnings     []string
	reasons      []string
	seen         map[string]bool // $refs being expanded: a cycle is recursion
	fields       int             // questions made so far (maxFields)
}

// maxFields bounds the questions of one XForm: $refs used several times at
// several levels multiply, and a form of more questions than this is not one
// an enumerator fills in on a tablet.
const maxFields = 5000

func ptrKey(k string) string {
	if strings.HasPrefix(k, "/") {
		return k
	}
	return "/" + k
}

func strMap(o *obj) map[string]string {
	out := map[string]string{}
	if o == nil {
		return out
	}
	for _, k := range o.Keys {
		if s, ok := o.Vals[k].(string); ok {
			out[ptrKey(k)] = s
		}
	}
	return out
}

func choiceMap(o *obj) map[string]map[string]string {
	out := map[string]map[string]string{}
	if o == nil {
		return out
	}
	for _, k := range o.Keys {
		out[ptrKey(k)] = strMap(o.Obj(k))
		for v, l := range out[ptrKey(k)] {
			// strMap made the value codes pointers; undo.
			delete(out[ptrKey(k)], v)
			out[ptrKey(k)][strings.TrimPrefix(v, "/")] = l
		}
	}
	return out
}

// readUI reads the fixed vocabulary of ui (protocol.md §2): language,
// choices, translations (an object by language, or just a list of languages),
// hints and widgets.
func (g *gen) readUI() {
	def := g.ui.Str("language")
	g.labels = map[string]map[string]string{}
	g.choiceLabels = map[string]map[string]map[string]string{"": choiceMap(g.ui.Obj("choices"))}
	g.hints = strMap(g.ui.Obj("hints"))
	g.widgets = strMap(g.ui.Obj("widgets"))
	tr, _ := g.ui.Get("translations")
	switch t := tr.(type) {
	case *obj:
		for _, lang := range t.Keys {
			lo := t.Obj(lang)
			g.langs = append(g.langs, lang)
			g.labels[lang] = strMap(lo.Obj("labels"))
			g.choiceLabels[lang] = choiceMap(lo.Obj("choices"))
		}
	case []any:
		for _, l := range t {
			if s, ok := l.(string); ok && s != "" {
				g.langs = append(g.langs, s)
			}
		}
	}
	if len(g.langs) > 0 {
		if def == "" {
			def = "default"
		}
		g.langs = append([]string{def}, g.langs...)
	}
}

// resolve follows local $refs; a $ref being expanded already is recursion.
func (g *gen) resolve(s *obj, path string) (*obj, func()) {
	ref := s.Str("$ref")
	if ref == "" {
		return s, func() {}
	}
	if g.seen[ref] || !strings.HasPrefix(ref, "#") {
		g.reasons = append(g.reasons, fmt.Sprintf("%s: recursive or external $ref %s: ODK Collect cannot ask it", orRoot(path), ref))
		return nil, func() {}
	}
	var target any = g.root
	for _, tok := range strings.Split(strings.TrimPrefix(ref, "#"), "/")[1:] {
		tok = strings.ReplaceAll(strings.ReplaceAll(tok, "~1", "/"), "~0", "~")
		o, ok := target.(*obj)
		if !ok {
			target = nil
			break
		}
		target, _ = o.Get(tok)
	}
	t, ok := target.(*obj)
	if !ok {
		g.reasons = append(g.reasons, fmt.Sprintf("%s: $ref %s does not name a schema", orRoot(path), ref))
		return nil, func() {}
	}
	g.seen[ref] = true
	t2, done := g.resolve(t, path)
	if t2 == nil {
		delete(g.seen, ref)
		return nil, func() {}
	}
	// The referring schema's own keywords (title, description…) win.
	merged := &obj{Vals: map[string]any{}}
	for _, k := range t2.Keys {
		merged.Keys = append(merged.Keys, k)
		merged.Vals[k] = t2.Vals[k]
	}
	for _, k := range s.Keys {
		if k == "$ref" {
			continue
		}
		if _, ok := merged.Vals[k]; !ok {
			merged.Keys = append(merged.Keys, k)
		}
		merged.Vals[k] = s.Vals[k]
	}
	return merged, func() { done(); delete(g.seen, ref) }
}

func orRoot(p string) string {
	if p == "" {
		return "/"
	}
	return p
}

// ncName matches the XML names used as they are; anything else gets a code.
var ncName = regexp.MustCompile(`^[A-Za-z_][A-Za-z0-9_.-]*$`)

// object maps the properties of an object schema to fields. path is the JSON
// pointer of the object in the data, ptr its ui pointer.
func (g *gen) object(s *obj, path, ptr string) []*Field {
	props := s.Obj("properties")
	required := map[string]bool{}
	if r, ok := s.Get("required"); ok {
		if a, ok := r.([]any); ok {
			for _, x := range a {
				if n, ok := x.(string); ok {
					required[n] = true
				}
			}
		}
	}
	if props == nil {
		return nil // an object without listed properties: nothing to ask
	}
	var out []*Field
	used := map[string]bool{"meta": path == ""}
	n := 0
	for _, name := range props.Keys {
		ps, ok := props.Vals[name].(*obj)
		if !ok {
			continue // true/false schemas: nothing to ask
		}
		xml := name
		if !ncName.MatchString(xml) || strings.HasPrefix(strings.ToLower(xml), "xml") || used[xml] {
			for {
				n++
				xml = fmt.Sprintf("q%d", n)
				if !used[xml] && props.Vals[xml] == nil {
					break
				}
			}
		}
		used[xml] = true
		f := g.field(ps, name, xml, path+"/"+escPtr(name), ptr+"/"+escPtr(name))
		if f == nil {
			continue
		}
		f.required = required[name]
		out = append(out, f)
	}
	return out
}

func escPtr(s string) string {
	return strings.ReplaceAll(strings.ReplaceAll(s, "~", "~0"), "/", "~1")
}

// field maps one property schema.
func (g *gen) field(s0 *obj, name, xml, path, ptr string) *Field {
	if g.fields++; g.fields > maxFields {
		if g.fields == maxFields+1 {
			g.reasons = append(g.reasons, fmt.Sprintf("more than %d questions: too many for ODK Collect", maxFields))
		}
		return nil
	}
	s, done := g.resolve(s0, path)
	defer done()
	if s == nil {
		return nil
	}
	f := &Field{Name: name, XML: xml, ptr: ptr}
	f.label = s.Str("title")
	if f.label == "" {
		f.label = name
	}
	f.hint = s.Str("description")
	if h, ok := g.hints[ptr]; ok {
		f.hint = h
	}
	handled := map[string]bool{"title": true, "description": true, "type": true, "$comment": true, "default": true, "examples": true, "$defs": true}
	widget := g.widgets[ptr]

	typ := s.Str("type")
	if t, ok := s.Get("type"); ok {
		if a, ok := t.([]any); ok {
			var nonNull []string
			for _, x := range a {
				if x != "null" {
					nonNull = append(nonNull, fmt.Sprint(x))
				}
			}
			if len(nonNull) != 1 {
				g.reasons = append(g.reasons, fmt.Sprintf("%s: a value of several types (%v): ODK Collect asks one type per question", path, nonNull))
				return nil
			}
			typ = nonNull[0]
		}
	}
	for _, k := range []string{"anyOf", "allOf", "prefixItems", "patternProperties"} {
		if _, ok := s.Get(k); ok {
			g.reasons = append(g.reasons, fmt.Sprintf("%s: %s: ODK Collect cannot produce this shape", path, k))
			return nil
		}
	}

	switch {
	case isTrue(s.Vals["const"]):
		f.Kind = KindConsent
		handled["const"] = true
	case s.Vals["enum"] != nil:
		vals, _ := s.Vals["enum"].([]any)
		if !g.choices(f, vals, nil, ptr) {
			return nil
		}
		f.Kind = KindSelect1
		handled["enum"] = true
	case s.Vals["oneOf"] != nil:
		branches, _ := s.Vals["oneOf"].([]any)
		var vals []any
		var titles []string
		for _, b := range branches {
			bo, ok := b.(*obj)
			c, has := bo.Get("const")
			if !ok || !has {
				g.reasons = append(g.reasons, fmt.Sprintf("%s: oneOf of shapes other than {const, title}: ODK Collect cannot produce it", path))
				return nil
			}
			vals = append(vals, c)
			titles = append(titles, bo.Str("title"))
		}
		if !g.choices(f, vals, titles, ptr) {
			return nil
		}
		f.Kind = KindSelect1
		handled["oneOf"] = true
	case typ == "boolean":
		f.Kind, f.ValueType = KindBoolean, "boolean"
		yes, no := "Yes", "No"
		if l, ok := g.choiceLabels[""][ptr]["true"]; ok {
			yes = l
		}
		if l, ok := g.choiceLabels[""][ptr]["false"]; ok {
			no = l
		}
		f.Choices = []Choice{{Code: "true", Value: json.RawMessage("true"), label: yes, ptr: ptr}, {Code: "false", Value: json.RawMessage("false"), label: no, ptr: ptr}}
	case typ == "integer" || typ == "number":
		f.Kind = KindDecimal
		if typ == "integer" {
			f.Kind = KindInt
		}
		var cons, msg []string
		for _, c := range []struct{ kw, op, say string }{
			{"minimum", ">=", "at least"}, {"maximum", "<=", "at most"},
			{"exclusiveMinimum", ">", "more than"}, {"exclusiveMaximum", "<", "less than"},
		} {
			v, ok := s.Get(c.kw)
			if !ok {
				continue
			}
			handled[c.kw] = true
			num, ok := v.(json.Number)
			if !ok {
				continue
			}
			if fv, err := num.Float64(); err == nil && typ == "integer" && (fv < math.MinInt32 || fv > math.MaxInt32) {
				// JavaRosa's int is 32 bits: ask a whole decimal instead.
				f.Kind = KindDecimal
			}
			cons = append(cons, ". "+c.op+" "+num.String())
			msg = append(msg, c.say+" "+num.String())
		}
		if typ == "integer" && f.Kind == KindDecimal {
			cons = append(cons, ". = round(.)")
			msg = append(msg, "a whole number")
		}
		f.constraint = strings.Join(cons, " and ")
		if len(msg) > 0 {
			f.constraintMsg = "Must be " + strings.Join(msg, ", ") + "."
		}
	case typ == "string":
		f.Kind = KindString
		switch s.Str("format") {
		case "date":
			f.Kind = KindDate
		case "date-time":
			f.Kind = KindDateTime
		case "time":
			f.Kind = KindTime
		case "":
		default:
			g.warnings = append(g.warnings, fmt.Sprintf("%s: format %s is checked by the server only", path, s.Str("format")))
		}
		handled["format"] = true
		media := s.Str("contentMediaType")
		handled["contentMediaType"] = true
		switch widget {
		case "camera", "photo", "image":
			media = "image/*"
		case "audio":
			media = "audio/*"
		case "video":
			media = "video/*"
		}
		for _, p := range []string{"image/", "audio/", "video/"} {
			if strings.HasPrefix(media, p) {
				f.Kind, f.mediatype = KindBinary, p+"*"
			}
		}
		var cons, msg []string
		if v, ok := s.Get("minLength"); ok {
			handled["minLength"] = true
			cons = append(cons, "string-length(.) >= "+fmt.Sprint(v))
			msg = append(msg, fmt.Sprintf("at least %v characters", v))
		}
		if v, ok := s.Get("maxLength"); ok {
			handled["maxLength"] = true
			cons = append(cons, "string-length(.) <= "+fmt.Sprint(v))
			msg = append(msg, fmt.Sprintf("at most %v characters", v))
		}
		if p := s.Str("pattern"); p != "" {
			handled["pattern"] = true
			if lit, ok := xpathLiteral(anchorPattern(p)); ok {
				cons = append(cons, "regex(., "+lit+")")
				msg = append(msg, "in the expected form")
			} else {
				g.warnings = append(g.warnings, fmt.Sprintf("%s: pattern is checked by the server only", path))
			}
		}
		if f.Kind != KindBinary {
			f.constraint = strings.Join(cons, " and ")
			if len(msg) > 0 {
				f.constraintMsg = "Must be " + strings.Join(msg, ", ") + "."
			}
		}
		if widget == "textarea" && f.Kind == KindString {
			f.appearance = "multiline"
		}
	case typ == "object" && s.Str("format") == "geopoint":
		f.Kind = KindGeopoint
		handled["format"], handled["properties"], handled["required"], handled["additionalProperties"] = true, true, true, true
		props := s.Obj("properties")
		closed := false
		if ap, ok := s.Get("additionalProperties"); ok && ap == false {
			closed = true
		}
		for _, m := range []string{"altitude", "accuracy"} {
			if _, ok := props.Get(m); ok || !closed {
				f.Geo = append(f.Geo, m)
			}
		}
	case typ == "object":
		f.Kind = KindGroup
		handled["properties"], handled["required"], handled["additionalProperties"] = true, true, true
		f.Fields = g.object(s, path, ptr)
		if len(f.Fields) == 0 {
			// XForms have no empty groups; there is nothing to ask anyway.
			g.warnings = append(g.warnings, fmt.Sprintf("%s: an object without questions is not asked in ODK Collect", path))
			return nil
		}
	case typ == "array":
		handled["items"] = true
		items, ok := s.Vals["items"].(*obj)
		if !ok {
			g.reasons = append(g.reasons, fmt.Sprintf("%s: an array without an items schema: ODK Collect cannot produce it", path))
			return nil
		}
		it, idone := g.resolve(items, path+"/items")
		defer idone()
		if it == nil {
			return nil
		}
		switch {
		case it.Vals["enum"] != nil || it.Vals["oneOf"] != nil:
			var vals []any
			var titles []string
			if e, ok := it.Vals["enum"].([]any); ok {
				vals = e
			} else {
				for _, b := range it.Vals["oneOf"].([]any) {
					bo, ok := b.(*obj)
					c, has := bo.Get("const")
					if !ok || !has {
						g.reasons = append(g.reasons, fmt.Sprintf("%s: oneOf of shapes other than {const, title}: ODK Collect cannot produce it", path))
						return nil
					}
					vals = append(vals, c)
					titles = append(titles, bo.Str("title"))
				}
			}
			if !g.choices(f, vals, titles, ptr) {
				return nil
			}
			f.Kind = KindSelect
			handled["uniqueItems"] = true
			if mx, ok := s.Get("maxItems"); ok {
				handled["maxItems"] = true
				f.constraint = fmt.Sprintf("count-selected(.) <= %v", mx)
				f.constraintMsg = fmt.Sprintf("Choose at most %v.", mx)
			}
		case it.Str("type") == "array":
			g.reasons = append(g.reasons, fmt.Sprintf("%s: an array of arrays: ODK Collect cannot produce it", path))
			return nil
		case it.Str("type") == "object" && it.Str("format") != "geopoint":
			f.Kind = KindRepeat
			f.Fields = g.object(it, path+"/-", ptr)
			if len(f.Fields) == 0 {
				g.warnings = append(g.warnings, fmt.Sprintf("%s: a list of objects without questions is not asked in ODK Collect", path))
				return nil
			}
			g.warnKeywords(it, path+"/items", map[string]bool{"properties": true, "required": true, "additionalProperties": true, "type": true, "title": true, "description": true})
		default:
			f.Kind = KindRepeat
			item := g.field(it, "value", "value", path+"/-", ptr)
			if item == nil {
				return nil
			}
			item.label = f.label
			item.required = true
			f.Item = item
		}
	default:
		f.Kind = KindString
		g.warnings = append(g.warnings, fmt.Sprintf("%s: no single type: asked as text, checked by the server", path))
	}
	g.warnKeywords(s, path, handled)
	return f
}

// warnKeywords lists the keywords of s the XForm does not express.
func (g *gen) warnKeywords(s *obj, path string, handled map[string]bool) {
	for _, k := range s.Keys {
		if handled[k] || k == "$schema" || k == "$id" || k == "$ref" {
			continue
		}
		switch k {
		case "if", "then", "else", "not", "dependentRequired", "dependentSchemas", "minItems", "maxItems",
			"contains", "minContains", "maxContains", "minProperties", "maxProperties", "multipleOf",
			"uniqueItems", "const", "unevaluatedProperties", "unevaluatedItems", "propertyNames", "format",
			"contentEncoding", "contentSchema", "enum":
			g.warnings = append(g.warnings, fmt.Sprintf("%s: %s is checked by the server only", orRoot(path), k))
		}
	}
}

func isTrue(v any) bool { b, ok := v.(bool); return ok && b }

// choices fills f's choices from enum values (with titles from oneOf). A
// value that cannot be an XML token (spaces, empty, not a scalar) or that
// repeats gets a generated code.
func (g *gen) choices(f *Field, vals []any, titles []string, ptr string) bool {
	if len(vals) == 0 {
		g.warnings = append(g.warnings, fmt.Sprintf("%s: a choice without options is not asked in ODK Collect", ptr))
		return false
	}
	types := map[string]bool{}
	used := map[string]bool{}
	for _, v := range vals {
		if s, ok := choiceCode(v); ok {
			used[s] = true
		}
	}
	n := 0
	taken := map[string]bool{}
	for i, v := range vals {
		raw, err := json.Marshal(plain(v))
		if err != nil {
			return false
		}
		switch x := v.(type) {
		case string:
			types["string"] = true
		case json.Number:
			if strings.ContainsAny(x.String(), ".eE") {
				types["number"] = true
			} else {
				types["integer"] = true
			}
		case bool:
			types["boolean"] = true
		default:
			types["other"] = true
		}
		code, ok := choiceCode(v)
		if !ok || taken[code] {
			for {
				n++
				code = fmt.Sprintf("c%d", n)
				if !used[code] && !taken[code] {
					break
				}
			}
		}
		taken[code] = true
		label := ""
		if i < len(titles) {
			label = titles[i]
		}
		key := strings.Trim(string(raw), `"`)
		if label == "" {
			label = g.choiceLabels[""][ptr][key]
		}
		if label == "" {
			label = key
		}
		f.Choices = append(f.Choices, Choice{Code: code, Value: raw, label: label, ptr: ptr})
	}
	switch {
	case len(types) == 1 && types["string"]:
		f.ValueType = "string"
	case len(types) == 1 && types["boolean"]:
		f.ValueType = "boolean"
	case !types["string"] && !types["boolean"] && !types["other"] && types["number"]:
		f.ValueType = "number"
	case len(types) == 1 && types["integer"]:
		f.ValueType = "integer"
	default:
		f.ValueType = "mixed"
	}
	return true
}

func plain(v any) any {
	if n, ok := v.(json.Number); ok {
		return json.RawMessage(n.String())
	}
	return v
}

// choiceCode is a choice value's code when it can be one as it is.
func choiceCode(v any) (string, bool) {
	var s string
	switch x := v.(type) {
	case string:
		s = x
	case json.Number:
		s = x.String()
	case bool:
		s = strconv.FormatBool(x)
	default:
		return "", false
	}
	if s == "" || len(s) > 64 || strings.ContainsAny(s, " \t\r\n\"'<>&") {
		return "", false
	}
	return s, true
}

// anchorPattern makes a JSON Schema pattern (which matches anywhere) into one
// that JavaRosa, which matches the whole answer, reads the same way.
func anchorPattern(p string) string {
	if strings.HasPrefix(p, "^") && strings.HasSuffix(p, "$") && !strings.HasSuffix(p, `\$`) {
		return p
	}
	return `[\s\S]*(?:` + p + `)[\s\S]*`
}

// xpathLiteral quotes s as an XPath 1.0 string literal, which has no escapes.
func xpathLiteral(s string) (string, bool) {
	switch {
	case !strings.Contains(s, "'"):
		return "'" + s + "'", true
	case !strings.Contains(s, `"`):
		return `"` + s + `"`, true
	}
	return "", false
}
