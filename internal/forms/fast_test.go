package forms

import (
	"encoding/json"
	"fmt"
	"math/rand/v2"
	"os"
	"path/filepath"
	"reflect"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/fieldsync/fieldsync/schemas"
	"github.com/santhosh-tekuri/jsonschema/v6"
)

// fastCase is one instance of a fast-path table test and the verdict the fast
// path must give.
type fastCase struct {
	data string
	want verdict
}

// fastTable lists, per keyword, a schema and instances. A record is always an
// object, so each schema is the property "v" of the form's schema (wrapSchema),
// and each instance the value of "v" in a record (wrapData). Every definite
// verdict is also checked against the library.
var fastTable = []struct {
	name   string
	schema string
	cases  []fastCase
}{
	{"type", `{"type": "string"}`, []fastCase{
		{`"a"`, valid}, {`1`, invalid}, {`null`, invalid}, {`{}`, invalid}, {`[]`, invalid}, {`true`, invalid},
	}},
	{"type list", `{"type": ["object", "null"]}`, []fastCase{
		{`{}`, valid}, {`null`, valid}, {`false`, invalid}, {`[null]`, invalid},
	}},
	{"type integer", `{"type": "integer"}`, []fastCase{
		{`1`, valid}, {`-0`, valid}, {`1.0`, valid}, {`1.50e1`, valid}, {`1e2`, valid}, {`120e-1`, valid},
		{`1.5`, invalid}, {`1e-1`, invalid}, {`"1"`, invalid},
		{`12345678901234567890123`, unsure}, // more digits than the fast path holds
	}},
	{"type number", `{"type": "number"}`, []fastCase{
		{`1`, valid}, {`-1.25`, valid}, {`1E+2`, valid}, {`12345678901234567890123`, valid}, {`"1"`, invalid},
	}},
	{"type boolean null", `{"properties": {"b": {"type": "boolean"}, "n": {"type": "null"}}}`, []fastCase{
		{`{"b": true, "n": null}`, valid}, {`{"b": null}`, invalid}, {`{"n": false}`, invalid},
	}},
	{"enum", `{"enum": ["a", "b", 1, null, true, {"x": [1, 2]}, [1, "a"]]}`, []fastCase{
		{`"a"`, valid}, {`"b"`, valid}, {`1`, valid}, {`1.0`, valid}, {`10e-1`, valid}, {`null`, valid},
		{`true`, valid}, {`{"x": [1, 2.0]}`, valid}, {`[1, "a"]`, valid},
		{`"c"`, invalid}, {`"A"`, invalid}, {`2`, invalid}, {`false`, invalid}, {`{"x": [1]}`, invalid},
		{`{"x": [1, 2], "y": 1}`, invalid}, {`["a", 1]`, invalid}, {`{}`, invalid}, {`"\u0061"`, valid},
	}},
	{"enum objects", `{"enum": [{"a": 1, "b": "x"}]}`, []fastCase{
		{`{"b": "x", "a": 1}`, valid}, {`{"a": 1}`, invalid}, {`{"a": 1, "b": "y"}`, invalid}, {`{"a": 1, "c": "x"}`, invalid},
	}},
	{"const", `{"properties": {"t": {"const": true}, "n": {"const": 100}, "o": {"const": {"k": null}}, "z": {"const": null}}}`, []fastCase{
		{`{"t": true, "n": 100, "o": {"k": null}, "z": null}`, valid}, {`{"n": 100.0}`, valid}, {`{"n": 1e2}`, valid},
		{`{"t": false}`, invalid}, {`{"t": "true"}`, invalid}, {`{"n": 100.5}`, invalid}, {`{"n": -100}`, invalid},
		{`{"o": {"k": 0}}`, invalid}, {`{"z": 0}`, invalid}, {`{"n": 12345678901234567890123}`, unsure},
	}},
	{"properties required additionalProperties", `{"type": "object", "properties": {"a": {"type": "string"}, "b": {"type": "integer"}},
		"required": ["a", "c"], "additionalProperties": false}`, []fastCase{
		{`{"a": "x", "c": 1}`, invalid}, // c is required but not a property: additionalProperties forbids it
		{`{"a": "x"}`, invalid}, {`{"a": 1, "c": 1}`, invalid},
	}},
	{"properties required", `{"type": "object", "properties": {"a": {"type": "string"}, "b": {"type": "integer"}}, "required": ["a", "b"]}`, []fastCase{
		{`{"a": "x", "b": 1}`, valid}, {`{"b": 1, "a": "x"}`, valid}, {`{"a": "x", "b": 1, "zz": [1, {"q": 2}]}`, valid},
		{`{"a": "x"}`, invalid}, {`{"a": "x", "b": "1"}`, invalid}, {`{}`, invalid},
	}},
	{"additionalProperties schema", `{"properties": {"a": true}, "additionalProperties": {"type": "integer", "minimum": 0}}`, []fastCase{
		{`{"a": "x", "b": 1, "c": 0}`, valid}, {`{"b": -1}`, invalid}, {`{"b": "1"}`, invalid},
	}},
	{"false subschema", `{"properties": {"gone": false}}`, []fastCase{
		{`{"here": 1}`, valid}, {`{"gone": null}`, invalid},
	}},
	{"minProperties maxProperties", `{"minProperties": 1, "maxProperties": 2}`, []fastCase{
		{`{"a": 1}`, valid}, {`{"a": 1, "b": 2}`, valid}, {`{}`, invalid}, {`{"a": 1, "b": 2, "c": 3}`, invalid}, {`[]`, valid},
	}},
	{"dependentRequired", `{"dependentRequired": {"other": ["type"]}}`, []fastCase{
		{`{"type": "x", "other": "y"}`, valid}, {`{"type": "x"}`, valid}, {`{}`, valid}, {`{"other": "y"}`, invalid},
	}},
	{"items", `{"type": "array", "items": {"type": "integer"}}`, []fastCase{
		{`[]`, valid}, {`[1, 2, 3]`, valid}, {`[1, "2"]`, invalid}, {`[[1]]`, invalid},
	}},
	{"prefixItems", `{"prefixItems": [{"type": "string"}, {"type": "integer"}], "items": false}`, []fastCase{
		{`["a", 1]`, valid}, {`["a"]`, valid}, {`[]`, valid}, {`["a", 1, 2]`, invalid}, {`[1, 1]`, invalid},
	}},
	{"minItems maxItems", `{"minItems": 1, "maxItems": 2}`, []fastCase{
		{`[1]`, valid}, {`[1, [2, 3, 4]]`, valid}, {`[]`, invalid}, {`[1, 2, 3]`, invalid}, {`"ab"`, valid},
	}},
	{"uniqueItems", `{"uniqueItems": true}`, []fastCase{
		{`["a", "b", 1, "1", true, false, null, {}, []]`, valid}, {`["a", "a"]`, invalid}, {`[1, 1.0]`, invalid},
		{`[{"a": 1, "b": 2}, {"b": 2, "a": 1}]`, invalid}, {`[[1, 2], [1, 2.0]]`, invalid}, {`[[1, 2], [2, 1]]`, valid},
		{`[{"a": 1}, {"a": 2}]`, valid}, {`["\u0041", "A"]`, invalid}, {`[null, null]`, invalid},
		{`[12345678901234567890123, 1]`, unsure},
	}},
	{"contains", `{"contains": {"const": "x"}}`, []fastCase{
		{`["a", "x"]`, valid}, {`["x", "x"]`, valid}, {`["a"]`, invalid}, {`[]`, invalid}, {`{}`, valid},
	}},
	{"minContains maxContains", `{"contains": {"type": "integer"}, "minContains": 2, "maxContains": 3}`, []fastCase{
		{`[1, "a", 2]`, valid}, {`[1, 2, 3]`, valid}, {`[1]`, invalid}, {`[1, 2, 3, 4]`, invalid},
		{`[1, 2, 3, 12345678901234567890123]`, unsure},
		{`[1, 2, 12345678901234567890123]`, valid}, // 2 or 3 matches: valid either way
	}},
	{"minContains 0", `{"contains": {"type": "integer"}, "minContains": 0}`, []fastCase{
		{`[]`, valid}, {`["a"]`, valid},
	}},
	{"minLength maxLength", `{"minLength": 2, "maxLength": 3}`, []fastCase{
		{`"ab"`, valid}, {`"abc"`, valid}, {`"éé"`, valid}, {`"日本語"`, valid}, {`"\u00e9\u00e9"`, valid}, {`"a\n"`, valid},
		{`"a"`, invalid}, {`"abcd"`, invalid}, {`"日本語!"`, invalid}, {`"\ud83d\ude00"`, invalid}, {`3`, valid},
	}},
	{"pattern", `{"pattern": "^[A-Z]{2}-[0-9]+$"}`, []fastCase{
		{`"AB-12"`, valid}, {`"AB-"`, invalid}, {`"xAB-1"`, invalid}, {`"AB-1\n"`, invalid}, {`"\u0041B-1"`, valid}, {`12`, valid},
	}},
	{"pattern unanchored", `{"pattern": "a+"}`, []fastCase{
		{`"xxaxx"`, valid}, {`"xx"`, invalid},
	}},
	{"format date", `{"format": "date"}`, []fastCase{
		{`"2024-02-29"`, valid}, {`"2023-02-29"`, invalid}, {`"2024-2-1"`, invalid}, {`12`, valid}, {`{"a": 1}`, valid},
	}},
	{"format date-time", `{"type": "string", "format": "date-time"}`, []fastCase{
		{`"2024-05-14T09:32:10+03:00"`, valid}, {`"2024-05-14T09:32:10"`, invalid}, {`"2024-05-14T09:32:10\u002B03:00"`, valid},
	}},
	{"format geopoint", `{"properties": {"p": {"type": ["object", "null"], "format": "geopoint"}, "any": {"format": "geopoint"}}}`, []fastCase{
		{`{"p": {"latitude": -1.3, "longitude": 36.7}}`, valid},
		{`{"p": {"latitude": 90, "longitude": -180, "altitude": -12.5, "accuracy": 0}}`, valid},
		{`{"p": {"longitude": 1e1, "latitude": 1E1}}`, valid}, {`{"p": {"longitude": 1e-400, "latitude": -0}}`, valid}, {`{"p": null}`, valid}, {`{"any": null}`, valid},
		{`{"p": {"latitude": 90.0001, "longitude": 0}}`, unsure}, {`{"p": {"latitude": 0}}`, unsure},
		{`{"p": {"latitude": 0, "longitude": 0, "x": 1}}`, unsure}, {`{"p": {"latitude": "0", "longitude": 0}}`, unsure},
		{`{"p": {"latitude": 0, "longitude": 0, "accuracy": -0.5}}`, unsure}, {`{"any": [0, 0]}`, unsure},
		{`{"p": [0, 0]}`, invalid},
	}},
	{"minimum maximum", `{"minimum": -1.5, "maximum": 100}`, []fastCase{
		{`-1.5`, valid}, {`100`, valid}, {`100.0`, valid}, {`0`, valid}, {`-1.25`, valid}, {`99.999999999999999`, valid},
		{`-1.51`, invalid}, {`100.0000000000000001`, invalid}, {`1e3`, invalid}, {`-2`, invalid}, {`"1000"`, valid},
		{`100.00000000000000000000001`, unsure},
	}},
	{"exclusive bounds", `{"exclusiveMinimum": 0, "exclusiveMaximum": 1e2}`, []fastCase{
		{`0.001`, valid}, {`99`, valid}, {`1e-400`, valid}, {`99.99999999999999999`, valid},
		{`0`, invalid}, {`-0`, invalid}, {`-1e-400`, invalid}, {`100`, invalid}, {`1e2`, invalid},
	}},
	{"large bound", `{"maximum": 123456789012345678901234567890}`, []fastCase{
		{`1`, unsure}, {`"x"`, valid},
	}},
	{"multipleOf", `{"multipleOf": 0.01}`, []fastCase{
		{`1.23`, valid}, {`5`, valid}, {`0`, valid}, {`-0.1`, valid}, {`1.234`, invalid}, {`1e-3`, invalid},
		{`1e300`, unsure},
	}},
	{"multipleOf integer", `{"type": "integer", "multipleOf": 5}`, []fastCase{
		{`10`, valid}, {`-15`, valid}, {`5.0`, valid}, {`12`, invalid}, {`2.5`, invalid},
	}},
	{"$ref", `{"$defs": {"n": {"type": "integer", "minimum": 1}}, "properties": {"a": {"$ref": "#/properties/v/$defs/n"}, "b": {"$ref": "#/properties/v/$defs/n", "maximum": 5}}}`, []fastCase{
		{`{"a": 1, "b": 5}`, valid}, {`{"a": 0}`, invalid}, {`{"b": 6}`, invalid}, {`{"b": 0}`, invalid},
	}},
	{"recursive $ref", `{"$defs": {"node": {"type": "object", "properties": {"v": {"type": "integer"}, "children": {"type": "array", "items": {"$ref": "#/properties/v/$defs/node"}}}, "additionalProperties": false}}, "$ref": "#/properties/v/$defs/node"}`, []fastCase{
		{`{"v": 1, "children": [{"v": 2, "children": []}, {"children": [{"v": 3}]}]}`, valid},
		{`{"v": 1, "children": [{"v": 2, "children": [{"v": "3"}]}]}`, invalid},
		{`{"children": [{"x": 1}]}`, invalid},
	}},
	{"allOf", `{"allOf": [{"type": "integer"}, {"minimum": 2}]}`, []fastCase{
		{`2`, valid}, {`1`, invalid}, {`2.5`, invalid}, {`12345678901234567890123`, unsure},
	}},
	{"anyOf", `{"anyOf": [{"type": "string", "maxLength": 2}, {"type": "integer"}]}`, []fastCase{
		{`"ab"`, valid}, {`3`, valid}, {`"abc"`, invalid}, {`2.5`, invalid}, {`12345678901234567890123`, unsure},
	}},
	{"oneOf", `{"oneOf": [{"type": "integer"}, {"minimum": 10}]}`, []fastCase{
		{`5`, valid}, {`10.5`, valid}, {`"x"`, valid}, {`10`, invalid}, {`5.5`, invalid},
		{`12345678901234567890123`, unsure},
	}},
	{"not", `{"not": {"type": "string"}}`, []fastCase{
		{`1`, valid}, {`{}`, valid}, {`"x"`, invalid},
	}},
	{"not unsure", `{"not": {"properties": {"p": {"format": "geopoint"}}}}`, []fastCase{
		{`{"p": {"latitude": 99, "longitude": 0}}`, unsure}, {`{"p": {"latitude": 1, "longitude": 0}}`, invalid},
	}},
	{"if then else", `{"if": {"properties": {"k": {"const": "other"}}, "required": ["k"]}, "then": {"required": ["other"]}, "else": {"not": {"required": ["other"]}}}`, []fastCase{
		{`{"k": "other", "other": "x"}`, valid}, {`{"k": "a"}`, valid}, {`{}`, valid},
		{`{"k": "other"}`, invalid}, {`{"k": "a", "other": "x"}`, invalid},
	}},
	{"if unsure", `{"if": {"properties": {"n": {"maximum": 5}}}, "then": {"required": ["x"]}, "else": false}`, []fastCase{
		{`{"n": 1, "x": 1}`, valid}, {`{"n": 6, "x": 1}`, invalid}, {`{"n": 1}`, invalid},
		{`{"n": 12345678901234567890123, "x": 1}`, unsure}, // the library takes else
	}},
	{"if contains", `{"if": {"properties": {"m": {"contains": {"const": "other"}}}, "required": ["m"]}, "then": {"required": ["o"]}}`, []fastCase{
		{`{"m": ["a", "other"], "o": 1}`, valid}, {`{"m": ["a"]}`, valid}, {`{"m": ["other"]}`, invalid},
	}},
	{"boolean schema", `true`, []fastCase{
		{`{"a": [1, {"b": null}]}`, valid}, {`1`, valid},
	}},
	{"empty schema", `{}`, []fastCase{{`"x"`, valid}}},
	{"documents the decoder refuses", `{}`, []fastCase{
		{`{"a": 1, "a": 2}`, unsure}, {`{"b": 1, "a": 2, "b": 3}`, unsure}, {`[{"x": {"a": 1, "a": 1}}]`, unsure},
		{strings.Repeat("[", MaxDepth) + strings.Repeat("]", MaxDepth), unsure}, // one level more than MaxDepth
		{`1e401`, unsure}, {`1e400`, unsure}, {`1` + strings.Repeat("0", maxNumberLen), unsure},
		{"\"\xff\"", unsure}, {`{"\u0061": 1}`, unsure}, {`{"a": 1} x`, unsure}, {``, unsure}, {` `, unsure},
		{`[1,]`, unsure}, {`{"a" 1}`, unsure}, {`01`, unsure}, {`-`, unsure}, {`1.`, unsure}, {`tru`, unsure},
		{`{"b": {"y": 1, "x": 2}, "a": {"x": 1}, "b": 1}`, unsure},
		{keys(100, true, false), unsure}, {keys(maxUnsortedKeys+1, true, true), unsure},
		{`"a` + "\x01" + `"`, unsure}, {`"\x"`, unsure}, {`"\u12"`, unsure}, {`nul`, unsure}, {`{"a":1,}`, unsure},
	}},
	{"documents the decoder accepts", `{}`, []fastCase{
		{strings.Repeat("[", MaxDepth-1) + strings.Repeat("]", MaxDepth-1), valid}, {"\t{ \"a\" :\n[ 1 , 2 ] }\r\n", valid},
		{`1e308`, valid}, {keys(100, true, true), valid}, {keys(maxUnsortedKeys-1, true, true), valid},
		{keys(1000, false, true), valid}, {`"` + strings.Repeat("é", 10000) + `"`, valid}, {`"\ud800"`, valid}, {`{"b": 1, "a": 2}`, valid}, {`-0.0e-0`, valid},
	}},
}

// keys returns an object of n members, keys in decreasing order if reversed,
// and the first key repeated at the end unless unique.
func keys(n int, reversed, unique bool) string {
	var b strings.Builder
	b.WriteString("{")
	for i := range n {
		k := i
		if reversed {
			k = n - i
		}
		fmt.Fprintf(&b, `"k%06d": {"x": [%d]}, `, k, i)
	}
	if unique {
		b.WriteString(`"last": 0}`)
	} else {
		fmt.Fprintf(&b, `"k%06d": 1}`, n)
	}
	return b.String()
}

// libraryVerdict is the verdict of the strict decoder and the library.
func libraryVerdict(tb testing.TB, d *Definition, data []byte) verdict {
	tb.Helper()
	v, err := decodeJSONIntern(data, MaxDepth, d.intern)
	if err != nil {
		return unsure
	}
	if err := d.schema.Validate(v); err != nil {
		return invalid
	}
	return valid
}

func parseSchema(tb testing.TB, schema string) *Definition {
	tb.Helper()
	return mustParse(tb, `{"title": "t", "schema": `+schema+`}`)
}

func wrapSchema(s string) string { return `{"type": "object", "properties": {"v": ` + s + `}}` }
func wrapData(s string) string   { return `{"v": ` + s + `}` }

func TestFastKeywords(t *testing.T) {
	for _, tt := range fastTable {
		t.Run(tt.name, func(t *testing.T) {
			d := parseSchema(t, wrapSchema(tt.schema))
			if d.fast == nil {
				t.Fatal("no fast path")
			}
			for _, c := range tt.cases {
				data := []byte(wrapData(c.data))
				got := fastVerdict(d.fast, data)
				lib := libraryVerdict(t, d, data)
				name := c.data
				if len(name) > 80 {
					name = name[:80] + "…"
				}
				if got != c.want {
					t.Errorf("%s: fast verdict %v, want %v (library: %v)", name, got, c.want, lib)
				}
				if c.want != unsure && lib != c.want {
					t.Errorf("%s: library verdict %v, the table says %v", name, lib, c.want)
				}
				if got == valid && len(d.ValidateJSON(data)) != 0 {
					t.Errorf("%s: ValidateJSON has findings", name)
				}
			}
		})
	}
}

func (v verdict) String() string {
	return [...]string{unsure: "unsure", valid: "valid", invalid: "invalid"}[v]
}

// TestFastExamples runs the fast path on every sample of every example form:
// valid samples must take it, and no verdict may disagree with the library.
func TestFastExamples(t *testing.T) {
	for _, name := range schemas.ExampleNames() {
		d := mustParseExample(t, name)
		if d.fast == nil {
			t.Fatalf("%s: no fast path", name)
		}
		for _, data := range exampleSamples(t, name) {
			for _, b := range [][]byte{data, mustCanonical(t, data)} {
				got, lib := fastVerdict(d.fast, b), libraryVerdict(t, d, b)
				if got != unsure && got != lib {
					t.Errorf("%s: fast %v, library %v\n%s", name, got, lib, b)
				}
				if lib == valid && got != valid {
					t.Errorf("%s: a valid sample does not take the fast path\n%s", name, b)
				}
			}
		}
	}
}

func exampleSamples(tb testing.TB, form string) [][]byte {
	tb.Helper()
	files, err := os.ReadDir(filepath.Join(samplesDir, form))
	if err != nil {
		tb.Fatal(err)
	}
	var out [][]byte
	for _, f := range files {
		out = append(out, readSample(tb, form, f.Name()))
	}
	return out
}

func mustCanonical(tb testing.TB, data []byte) []byte {
	tb.Helper()
	c, err := Canonicalize(data)
	if err != nil {
		tb.Fatal(err)
	}
	return c
}

// TestFastOff checks that a schema the fast path does not fully understand
// leaves every record to the library.
func TestFastOff(t *testing.T) {
	for _, schema := range []string{
		wrapSchema(`{"patternProperties": {"^a": {"type": "string"}}}`),
		wrapSchema(`{"propertyNames": {"maxLength": 3}}`),
		wrapSchema(`{"dependentSchemas": {"a": {"required": ["b"]}}}`),
		`{"type": "object", "unevaluatedProperties": false}`,
		wrapSchema(`{"unevaluatedItems": false}`),
		`{"type": "object", "$defs": {"x": {"$dynamicAnchor": "x", "type": "object"}}, "properties": {"a": {"$dynamicRef": "#x"}}}`,
		wrapSchema(`{"$id": "https://fieldsync.invalid/d7", "$schema": "http://json-schema.org/draft-07/schema#", "type": "string"}`),
		// Cycles on the same value are refused at upload (refloop.go).
	} {
		d := parseSchema(t, schema)
		if d.fast != nil {
			t.Errorf("fast path on for %s", schema)
		}
	}
	// A recursive schema is fine as long as each step goes down a level.
	if d := parseSchema(t, `{"type": "object", "properties": {"next": {"$ref": "#"}}}`); d.fast == nil {
		t.Error("fast path off for a schema that recurses into a property")
	}
}

// TestFastKnowsEverySchemaField fails when the library gains a keyword: the
// fast path must then learn it or turn itself off for it.
func TestFastKnowsEverySchemaField(t *testing.T) {
	known := []string{
		// applied by the fast path
		"Bool", "Types", "Enum", "Const", "Format", "Ref", "AllOf", "AnyOf", "OneOf", "Not", "If", "Then", "Else",
		"MaxProperties", "MinProperties", "Required", "Properties", "AdditionalProperties", "DependentRequired",
		"MinItems", "MaxItems", "UniqueItems", "Contains", "MinContains", "MaxContains", "PrefixItems", "Items2020",
		"MinLength", "MaxLength", "Pattern", "Maximum", "Minimum", "ExclusiveMaximum", "ExclusiveMinimum", "MultipleOf",
		// turn the fast path off (see supported)
		"DraftVersion", "RecursiveRef", "DynamicRef", "PropertyNames", "PatternProperties", "Dependencies",
		"DependentSchemas", "UnevaluatedProperties", "UnevaluatedItems", "Items", "AdditionalItems",
		"ContentEncoding", "ContentMediaType", "ContentSchema", "Extensions",
		// no effect on a verdict
		"Location", "ID", "Anchor", "RecursiveAnchor", "DynamicAnchor", "Title", "Description", "Default",
		"Comment", "ReadOnly", "WriteOnly", "Examples", "Deprecated",
	}
	typ := reflect.TypeFor[jsonschema.Schema]()
	for i := range typ.NumField() {
		if f := typ.Field(i); f.IsExported() && !slices.Contains(known, f.Name) {
			t.Errorf("jsonschema.Schema.%s is new to the fast path", f.Name)
		}
	}
}

func TestNumbers(t *testing.T) {
	num := func(s string) number {
		n, ok := parseNumber([]byte(s))
		if !ok {
			t.Fatalf("parseNumber(%s) not exact", s)
		}
		return n
	}
	for _, tt := range []struct {
		a, b string
		cmp  int
	}{
		{"1", "1.0", 0}, {"-0", "0", 0}, {"0.0e5", "0", 0}, {"100", "1e2", 0}, {"1.5", "15e-1", 0},
		{"1", "2", -1}, {"-1", "-2", 1}, {"-1", "1", -1}, {"0.1", "0.09", 1}, {"0.123", "0.13", -1},
		{"9999999999999999999", "1e19", -1}, {"1e-400", "0", 1}, {"-1e-400", "0", -1}, {"123.45", "123.450001", -1},
	} {
		if got := num(tt.a).cmp(num(tt.b)); got != tt.cmp {
			t.Errorf("cmp(%s, %s) = %d, want %d", tt.a, tt.b, got, tt.cmp)
		}
		if got := num(tt.b).cmp(num(tt.a)); got != -tt.cmp {
			t.Errorf("cmp(%s, %s) = %d, want %d", tt.b, tt.a, got, -tt.cmp)
		}
	}
	if _, ok := parseNumber([]byte("12345678901234567891")); ok {
		t.Error("20 significant digits taken as exact")
	}
	if n, ok := parseNumber([]byte("1234567890123456789000000")); !ok || n.m != 1234567890123456789 || n.exp != 6 {
		t.Errorf("trailing zeros: %+v %v", n, ok)
	}
}

// FuzzFastAgreesWithLibrary checks the fast path against the strict decoder
// and the library: whenever the fast path gives a verdict, the decoder must
// accept the bytes and the library must give the same verdict. The fuzzer's
// bytes choose a form schema and records for it (fastgen_test.go), so every
// input reaches the fast path; FuzzFastRawSchemas mutates raw bytes instead.
func FuzzFastAgreesWithLibrary(f *testing.F) {
	for _, seed := range []string{"", "\x00", "\x01\x02\x03\x04", "\xff\xfe\xfd\xfc\xfb\xfa", strings.Repeat("\x07\x03", 40), strings.Repeat("\x02\x05\x01", 60)} {
		f.Add([]byte(seed))
	}
	f.Fuzz(func(t *testing.T, choices []byte) {
		if len(choices) > 4<<10 {
			return
		}
		g := &genSource{b: choices}
		root := genFormSchema(g)
		schema, err := json.Marshal(root)
		if err != nil {
			t.Fatal(err)
		}
		d := fuzzDefinition(schema)
		if d == nil {
			t.Fatalf("the generator made a schema ParseDefinition refuses:\n%s", schema)
		}
		if d.fast == nil {
			t.Fatalf("the generator made a schema without a fast path:\n%s", schema)
		}
		for range 4 {
			data := []byte(genRecord(g, root))
			checkFastAgrees(t, d, schema, data)
		}
	})
}

// FuzzFastRawSchemas is FuzzFastAgreesWithLibrary on arbitrary schema and
// record bytes, seeded with the example forms and the keyword table.
func FuzzFastRawSchemas(f *testing.F) {
	for _, name := range schemas.ExampleNames() {
		d := mustParseExample(f, name)
		for _, data := range exampleSamples(f, name) {
			f.Add([]byte(d.Schema), data)
			f.Add([]byte(d.Schema), mustCanonical(f, data))
		}
	}
	for _, tt := range fastTable {
		for _, c := range tt.cases {
			f.Add([]byte(wrapSchema(tt.schema)), []byte(wrapData(c.data)))
		}
	}
	f.Fuzz(func(t *testing.T, schema, data []byte) {
		if len(schema) > 8<<10 || len(data) > 8<<10 {
			return // keep the library's own worst cases out
		}
		d := fuzzDefinition(schema)
		if d == nil || d.fast == nil {
			return
		}
		checkFastAgrees(t, d, schema, data)
	})
}

// checkFastAgrees fails when the fast path's verdict on data is definite and
// not the library's.
func checkFastAgrees(t *testing.T, d *Definition, schema, data []byte) {
	t.Helper()
	watchdog := time.AfterFunc(10*time.Second, func() { panic(fmt.Sprintf("WATCHDOG slow input %q %q", schema, data)) })
	defer watchdog.Stop()
	got := fastVerdict(d.fast, data)
	if got == unsure {
		return
	}
	if lib := libraryVerdict(t, d, data); lib != got {
		t.Fatalf("fast %v, library %v\nschema: %s\ndata: %s", got, lib, schema, data)
	}
}

// fuzzDefinitions caches parsed definitions across fuzz inputs: parsing costs
// far more than validating.
var fuzzDefinitions = struct {
	sync.Mutex
	m map[string]*Definition
}{m: map[string]*Definition{}}

func fuzzDefinition(schema []byte) *Definition {
	fuzzDefinitions.Lock()
	defer fuzzDefinitions.Unlock()
	if d, ok := fuzzDefinitions.m[string(schema)]; ok {
		return d
	}
	if len(fuzzDefinitions.m) > 4096 {
		clear(fuzzDefinitions.m)
	}
	d, err := ParseDefinition([]byte(`{"title": "t", "schema": ` + string(schema) + `}`))
	if err != nil {
		d = nil
	}
	fuzzDefinitions.m[string(schema)] = d
	return d
}

// TestFastGeneratedAgrees runs FuzzFastAgreesWithLibrary's check on a fixed set
// of pseudo-random inputs in every test run, and checks that the generator
// keeps making schemas with a fast path and records of both verdicts.
func TestFastGeneratedAgrees(t *testing.T) {
	r := rand.New(rand.NewPCG(9, 9))
	verdicts := map[verdict]int{}
	for range 500 {
		choices := make([]byte, 50+r.IntN(400))
		for j := range choices {
			choices[j] = byte(r.IntN(256))
		}
		g := &genSource{b: choices}
		root := genFormSchema(g)
		schema, err := json.Marshal(root)
		if err != nil {
			t.Fatal(err)
		}
		d := fuzzDefinition(schema)
		if d == nil || d.fast == nil {
			t.Fatalf("generated schema refused or without a fast path:\n%s", schema)
		}
		for range 4 {
			data := []byte(genRecord(g, root))
			verdicts[fastVerdict(d.fast, data)]++
			checkFastAgrees(t, d, schema, data)
		}
	}
	if verdicts[valid] < 200 || verdicts[invalid] < 200 {
		t.Errorf("verdicts %v: the generator should make many valid and many invalid records", verdicts)
	}
}
