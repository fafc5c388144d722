package openrosa

import (
	"bytes"
	"encoding/json"
	"encoding/xml"
	"os"
	"strings"
	"testing"
)

// def wraps properties (and extra top-level schema members) into a definition.
func def(props string, extra ...string) []byte {
	e := ""
	if len(extra) > 0 {
		e = "," + strings.Join(extra, ",")
	}
	return []byte(`{"title": "T", "schema": {"type": "object", "properties": {` + props + `}` + e + `}}`)
}

// TestGenerateMapping is the table of openrosa.md §3: each JSON Schema shape,
// the XForm it becomes, and the JSON an answer to it reads back as.
func TestGenerateMapping(t *testing.T) {
	for _, tc := range mappingTests {
		t.Run(tc.name, func(t *testing.T) { tc.check(t) })
	}
}

// mappingTests is the table of TestGenerateMapping; TestEngineLoadsEveryXForm
// loads each of its forms in ODK's engine as well.
var mappingTests = []mappingTest{

	{name: "string", def: def(`"q": {"type": "string", "title": "Name", "description": "Full name"}`),
		has:    []string{`<bind nodeset="/data/q" type="string"/>`, `<input ref="/data/q">`, `<label>Name</label>`, `<hint>Full name</hint>`},
		answer: `<q> Amina  </q>`, want: `{"q":" Amina  "}`},
	{name: "label defaults to the name", def: def(`"village": {"type": "string"}`), has: []string{`<label>village</label>`}},
	{name: "integer with bounds", def: def(`"n": {"type": "integer", "minimum": 0, "exclusiveMaximum": 10}`, `"required": ["n"]`),
		has:    []string{`type="int" required="true()" constraint=". &gt;= 0 and . &lt; 10"`},
		answer: `<n>7</n>`, want: `{"n":7}`},
	{name: "integer wider than 32 bits", def: def(`"n": {"type": "integer", "maximum": 10000000000}`),
		has:    []string{`type="decimal"`, `. = round(.)`},
		answer: `<n>9000000000</n>`, want: `{"n":9000000000}`},
	{name: "number", def: def(`"x": {"type": "number"}`), has: []string{`type="decimal"`}, answer: `<x>12.50</x>`, want: `{"x":12.50}`},
	{name: "boolean", def: def(`"b": {"type": "boolean"}`),
		has:    []string{`<select1 ref="/data/b">`, `<label>Yes</label>`, `<value>true</value>`, `<label>No</label>`},
		answer: `<b>false</b>`, want: `{"b":false}`},
	{name: "consent", def: def(`"consent": {"const": true, "title": "Agreed"}`, `"required": ["consent"]`),
		has:    []string{`<trigger ref="/data/consent">`, `required="true()"`},
		answer: `<consent>OK</consent>`, want: `{"consent":true}`},
	{name: "enum with codes that are not tokens", def: def(`"e": {"enum": ["a b", "c", 3, null]}`),
		has:    []string{`<value>c1</value>`, `<value>c</value>`, `<value>3</value>`, `<value>c2</value>`, `<label>a b</label>`},
		answer: `<e>c1</e>`, want: `{"e":"a b"}`},
	{name: "enum of numbers reads numbers", def: def(`"e": {"enum": [1, 2, 3]}`), answer: `<e>2</e>`, want: `{"e":2}`},
	{name: "oneOf with titles", def: def(`"g": {"oneOf": [{"const": "f", "title": "Female"}, {"const": "m", "title": "Male"}]}`),
		has: []string{`<label>Female</label>`, `<value>f</value>`}, answer: `<g>m</g>`, want: `{"g":"m"}`},
	{name: "ui choices label", def: []byte(`{"title": "T", "schema": {"type": "object", "properties": {"g": {"enum": ["f"]}}}, "ui": {"choices": {"/g": {"f": "Female"}}}}`),
		has: []string{`<label>Female</label>`}},
	{name: "multiple choice", def: def(`"m": {"type": "array", "items": {"enum": ["x", "y", "z"]}, "uniqueItems": true, "maxItems": 2}`),
		has:    []string{`<select ref="/data/m">`, `count-selected(.) &lt;= 2`},
		answer: `<m>z x</m>`, want: `{"m":["z","x"]}`},
	{name: "group", def: def(`"r": {"type": "object", "title": "Respondent", "properties": {"age": {"type": "integer"}}, "required": ["age"]}`),
		has:    []string{`<r>`, `<age/>`, `<group ref="/data/r">`, `nodeset="/data/r/age" type="int" required="true()"`},
		answer: `<r><age>40</age></r>`, want: `{"r":{"age":40}}`},
	{name: "empty group is absent", def: def(`"r": {"type": "object", "properties": {"age": {"type": "integer"}}}`),
		answer: `<r><age/></r>`, want: `{}`},
	{name: "object without properties", def: def(`"o": {"type": "object"}, "l": {"type": "array", "items": {"type": "object"}}, "s": {"type": "string"}`),
		answer: `<s>x</s>`, want: `{"s":"x"}`, warnings: []string{"/o: an object without questions", "/l: a list of objects without questions"}},
	{name: "many questions", def: []byte(`{"title": "T", "schema": {"type": "object", "$defs": {"a": {"type": "object", "properties": {"x": {"$ref": "#/$defs/b"}, "y": {"$ref": "#/$defs/b"}, "z": {"$ref": "#/$defs/b"}}},
		"b": {"type": "object", "properties": {"p": {"$ref": "#/$defs/c"}, "q": {"$ref": "#/$defs/c"}, "r": {"$ref": "#/$defs/c"}}}, "c": {"type": "object", "properties": {"i": {"$ref": "#/$defs/d"}, "j": {"$ref": "#/$defs/d"}, "k": {"$ref": "#/$defs/d"}}},
		"d": {"type": "object", "properties": {"l": {"$ref": "#/$defs/e"}, "m": {"$ref": "#/$defs/e"}, "n": {"$ref": "#/$defs/e"}}}, "e": {"type": "object", "properties": {"s": {"$ref": "#/$defs/f"}, "t": {"$ref": "#/$defs/f"}, "u": {"$ref": "#/$defs/f"}}},
		"f": {"type": "object", "properties": {"v": {"$ref": "#/$defs/g"}, "w": {"$ref": "#/$defs/g"}, "x": {"$ref": "#/$defs/g"}}}, "g": {"type": "object", "properties": {"a1": {"$ref": "#/$defs/h"}, "a2": {"$ref": "#/$defs/h"}, "a3": {"$ref": "#/$defs/h"}}},
		"h": {"type": "object", "properties": {"b1": {"type": "string"}, "b2": {"type": "string"}, "b3": {"type": "string"}}}},
		"properties": {"root": {"$ref": "#/$defs/a"}}}}`), reasons: []string{"too many"}},
	{name: "repeat", def: def(`"hh": {"type": "array", "items": {"type": "object", "properties": {"name": {"type": "string"}, "age": {"type": "integer"}}}}`),
		has:    []string{`<hh jr:template="">`, `<repeat nodeset="/data/hh">`},
		answer: `<hh><name>A</name><age>3</age></hh><hh><name>B</name><age/></hh>`, want: `{"hh":[{"name":"A","age":3},{"name":"B"}]}`},
	{name: "repeat of a primitive", def: def(`"files": {"type": "array", "items": {"type": "string"}}`),
		has:    []string{`<files jr:template="">`, `<value/>`, `nodeset="/data/files/value"`},
		answer: `<files><value>a.jpg</value></files><files><value>b.jpg</value></files>`, want: `{"files":["a.jpg","b.jpg"]}`},
	{name: "pattern not anchored", def: def(`"p": {"type": "string", "pattern": "[0-9]+"}`),
		has: []string{`regex(., &#39;[\s\S]*(?:[0-9]+)[\s\S]*&#39;)`}},
	{name: "pattern anchored", def: def(`"p": {"type": "string", "pattern": "^[A-Z]{2}$", "minLength": 2}`),
		has: []string{`string-length(.) &gt;= 2 and regex(., &#39;^[A-Z]{2}$&#39;)`}},
	{name: "dates and times", def: def(`"d": {"type": "string", "format": "date"}, "dt": {"type": "string", "format": "date-time"}, "tm": {"type": "string", "format": "time"}`),
		has:    []string{`nodeset="/data/d" type="date"`, `nodeset="/data/dt" type="dateTime"`, `nodeset="/data/tm" type="time"`},
		answer: `<d>2024-04-02</d><dt>2024-04-02T21:40:00.000+03:00</dt><tm>21:40:00.000+03:00</tm>`,
		want:   `{"d":"2024-04-02","dt":"2024-04-02T21:40:00.000+03:00","tm":"21:40:00.000+03:00"}`},
	{name: "geopoint with altitude and accuracy", def: def(`"loc": {"type": "object", "format": "geopoint"}`),
		has: []string{`type="geopoint"`}, answer: `<loc>3.5 35.25 1200 8.5</loc>`,
		want: `{"loc":{"latitude":3.5,"longitude":35.25,"altitude":1200,"accuracy":8.5}}`},
	{name: "geopoint closed to latitude and longitude", def: def(`"loc": {"type": "object", "format": "geopoint", "properties": {"latitude": {}, "longitude": {}}, "additionalProperties": false}`),
		answer: `<loc>3.5 35.25 0 0</loc>`, want: `{"loc":{"latitude":3.5,"longitude":35.25}}`},
	{name: "photo", def: def(`"photo": {"type": "string", "contentMediaType": "image/jpeg"}`),
		has:    []string{`<upload ref="/data/photo" mediatype="image/*">`, `type="binary"`},
		answer: `<photo>1712.jpg</photo>`, want: `{"photo":"1712.jpg"}`},
	{name: "camera widget", def: []byte(`{"title": "T", "schema": {"type": "object", "properties": {"p": {"type": "string"}}}, "ui": {"widgets": {"p": "camera"}}}`),
		has: []string{`mediatype="image/*"`}},
	{name: "textarea widget and ui hint", def: []byte(`{"title": "T", "schema": {"type": "object", "properties": {"p": {"type": "string"}}}, "ui": {"widgets": {"p": "textarea"}, "hints": {"p": "Facts only"}}}`),
		has: []string{`appearance="multiline"`, `<hint>Facts only</hint>`}},
	{name: "names that are not XML names", def: def(`"first name": {"type": "string"}, "xmlThing": {"type": "string"}, "meta": {"type": "string"}`),
		has:    []string{`<q1/>`, `<q2/>`, `<q3/>`},
		answer: `<q1>A</q1><q2>B</q2><q3>C</q3>`, want: `{"first name":"A","xmlThing":"B","meta":"C"}`},
	{name: "$ref with sibling title", def: []byte(`{"title": "T", "schema": {"type": "object", "$defs": {"s": {"type": "integer", "minimum": 1}},
			"properties": {"day": {"title": "Day", "$ref": "#/$defs/s"}}}}`),
		has: []string{`<label>Day</label>`, `. &gt;= 1`}, answer: `<day>4</day>`, want: `{"day":4}`},
	{name: "translations", def: []byte(`{"title": "T", "schema": {"type": "object", "properties": {"g": {"title": "Gender", "enum": ["female"]}}},
			"ui": {"language": "en", "choices": {"/g": {"female": "Female"}}, "translations": {"fr": {"labels": {"/g": "Sexe"}, "choices": {"/g": {"female": "Femme"}}}}}}`),
		has: []string{`<translation lang="English (en)" default="true()">`, `<translation lang="French (fr)">`, `<value>Sexe</value>`, `<value>Femme</value>`,
			`<label ref="jr:itext('/data/g:label')"/>`, `<label ref="jr:itext('/data/g/female:label')"/>`}},
	{name: "keywords the XForm cannot express", def: def(`"a": {"type": "array", "items": {"type": "object", "properties": {"x": {"type": "string"}}}, "minItems": 1}, "n": {"type": "number", "multipleOf": 5}`, `"if": {}`, `"then": {}`, `"dependentRequired": {}`),
		warnings: []string{"/a: minItems", "/n: multipleOf", "/: if", "/: dependentRequired"}},
	{name: "union of object shapes", def: def(`"u": {"anyOf": [{"type": "object"}, {"type": "string"}]}`), reasons: []string{"/u: anyOf"}},
	{name: "tuple", def: def(`"t": {"type": "array", "prefixItems": [{"type": "string"}]}`), reasons: []string{"/t: prefixItems"}},
	{name: "array of arrays", def: def(`"t": {"type": "array", "items": {"type": "array"}}`), reasons: []string{"array of arrays"}},
	{name: "recursive $ref", def: []byte(`{"title": "T", "schema": {"type": "object", "$defs": {"n": {"type": "object", "properties": {"kid": {"$ref": "#/$defs/n"}}}},
			"properties": {"tree": {"$ref": "#/$defs/n"}}}}`), reasons: []string{"recursive"}},
}

type mappingTest struct {
	name     string
	def      []byte
	has      []string // substrings of the XForm
	answer   string   // the instance's children (in <data>)
	want     string   // the data read back
	warnings []string // substrings of warnings
	reasons  []string // substrings of reasons
}

func (tc mappingTest) check(t *testing.T) {
	{
		{
			res, err := Generate("f", "1", tc.def)
			if err != nil {
				t.Fatal(err)
			}
			x := string(res.XForm)
			for _, h := range tc.has {
				if !strings.Contains(x, h) {
					t.Errorf("the XForm lacks %s\n%s", h, x)
				}
			}
			if err := xml.Unmarshal(res.XForm, new(any)); err != nil {
				t.Errorf("the XForm is not well-formed XML: %v", err)
			}
			for _, w := range tc.warnings {
				if !containsSub(res.Meta.Warnings, w) {
					t.Errorf("warnings %q lack %q", res.Meta.Warnings, w)
				}
			}
			for _, r := range tc.reasons {
				if !containsSub(res.Meta.Reasons, r) {
					t.Errorf("reasons %q lack %q", res.Meta.Reasons, r)
				}
			}
			if len(tc.reasons) == 0 && len(res.Meta.Reasons) > 0 {
				t.Errorf("unexpected reasons %q", res.Meta.Reasons)
			}
			if tc.answer == "" {
				return
			}
			// The way back goes through the stored map, as a submission does.
			meta, err := ParseMeta(res.MetaJSON())
			if err != nil {
				t.Fatal(err)
			}
			in, err := ParseInstance([]byte(`<data id="f" version="1">` + tc.answer + `<meta><instanceID>uuid:x</instanceID></meta></data>`))
			if err != nil {
				t.Fatal(err)
			}
			got := meta.Decode(in)
			if len(got.Findings) > 0 {
				t.Fatalf("findings %+v", got.Findings)
			}
			if string(got.Data) != tc.want {
				t.Errorf("data = %s, want %s", got.Data, tc.want)
			}
		}
	}
}

func containsSub(list []string, sub string) bool {
	for _, s := range list {
		if strings.Contains(s, sub) {
			return true
		}
	}
	return false
}

// TestGenerateExamples: the three example forms convert with no reasons, and
// the same definition always gives the same bytes.
func TestGenerateExamples(t *testing.T) {
	for _, name := range []string{"incident-report", "perception-survey", "action-plan-followup"} {
		t.Run(name, func(t *testing.T) {
			raw, err := os.ReadFile("../../schemas/examples/" + name + ".json")
			if err != nil {
				t.Fatal(err)
			}
			a, err := Generate(name, "1", raw)
			if err != nil {
				t.Fatal(err)
			}
			if len(a.Meta.Reasons) > 0 {
				t.Errorf("reasons: %q", a.Meta.Reasons)
			}
			b, _ := Generate(name, "1", raw)
			if !bytes.Equal(a.XForm, b.XForm) || a.MD5 != b.MD5 {
				t.Error("two generations differ")
			}
		})
	}
}

// TestDecodeFindings: answers that do not read are findings (quarantine),
// never dropped.
func TestDecodeFindings(t *testing.T) {
	res, err := Generate("f", "1", def(`"n": {"type": "integer"}, "e": {"enum": ["a"]}, "loc": {"type": "object", "format": "geopoint"}`))
	if err != nil {
		t.Fatal(err)
	}
	in, err := ParseInstance([]byte(`<data id="f" version="1"><n>two</n><e>zz</e><loc>north</loc><extra>hello</extra><meta><instanceID>uuid:abc</instanceID><deprecatedID>uuid:old</deprecatedID><timeEnd>2024-01-02T03:04:05.000+03:00</timeEnd></meta></data>`))
	if err != nil {
		t.Fatal(err)
	}
	if in.InstanceID != "abc" || in.DeprecatedID != "old" || in.FormID != "f" || in.Version != "1" || in.TimeEnd.IsZero() {
		t.Errorf("instance %+v", in)
	}
	got := res.Meta.Decode(in)
	var kws []string
	for _, f := range got.Findings {
		kws = append(kws, f.Path+" "+f.Keyword)
	}
	want := []string{"/data/n type", "/data/e enum", "/data/loc format", "/data/extra unknown"}
	if strings.Join(kws, ",") != strings.Join(want, ",") {
		t.Errorf("findings %v, want %v", kws, want)
	}
	if !json.Valid(got.Data) {
		t.Errorf("data %s is not JSON", got.Data)
	}
	for _, bad := range []string{"", "not xml", "<a><b></a>", "<a/><b/>", `<!DOCTYPE a [<!ENTITY x "y">]><a>&x;</a>`} {
		if _, err := ParseInstance([]byte(bad)); err == nil {
			t.Errorf("ParseInstance(%q): no error", bad)
		}
	}
}
