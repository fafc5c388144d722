package openrosa_test

import (
	"bytes"
	"encoding/json"
	"encoding/xml"
	"os"
	"testing"

	"github.com/fieldsync/fieldsync/internal/forms"
	"github.com/fieldsync/fieldsync/internal/openrosa"
)

// fuzzForm has a question of every kind and no constraint the XForm checks
// (bounds, patterns, required), so that an instance Decode reads without a
// finding must give data the schema accepts.
const fuzzForm = `{"title": "Fuzz", "schema": {"type": "object", "properties": {
	"s": {"type": "string"}, "i": {"type": "integer"}, "n": {"type": "number"}, "b": {"type": "boolean"},
	"c": {"const": true}, "e": {"enum": ["a", "b c", 1, true]}, "m": {"type": "array", "items": {"enum": ["x", "y"]}},
	"d": {"type": "string", "format": "date"}, "g": {"type": "object", "format": "geopoint"},
	"grp": {"type": "object", "properties": {"inner": {"type": "integer"}}},
	"rep": {"type": "array", "items": {"type": "object", "properties": {"k": {"type": "string"}, "v": {"type": "number"}}}},
	"list": {"type": "array", "items": {"type": "string"}},
	"p": {"type": "string", "contentMediaType": "image/jpeg"}}}}`

// FuzzDecode: whatever a client sends as an instance, ParseInstance and
// Decode never panic, Decode always gives a JSON object, and an instance read
// without findings is data whose types and choices the form's schema
// accepts (nothing is silently turned into something else; formats are
// checked by the push, like any item's).
func FuzzDecode(f *testing.F) {
	res, err := openrosa.Generate("fuzz", "1", []byte(fuzzForm))
	if err != nil {
		f.Fatal(err)
	}
	def, err := forms.ParseDefinition([]byte(fuzzForm))
	if err != nil {
		f.Fatal(err)
	}
	for _, seed := range []string{
		`<data id="fuzz" version="1"><s>hi</s><i>3</i><n>1.5</n><b>true</b><c>OK</c><e>c1</e><m>x y</m><d>2024-01-02</d><g>1 2 3 4</g><grp><inner>5</inner></grp><rep><k>a</k><v>2</v></rep><rep><k>b</k></rep><list><value>q</value></list><p>a.jpg</p><meta><instanceID>uuid:1</instanceID></meta></data>`,
		`<data><i>1e400</i><n>NaN</n><e>nope</e><g>1</g></data>`,
		`<data><unknown><x>1</x></unknown><rep/><rep><k/></rep></data>`,
		`<a:data xmlns:a="urn:x"><a:s>&lt;&amp;</a:s></a:data>`,
		"<data><s>\xff</s></data>",
	} {
		f.Add([]byte(seed))
	}
	f.Fuzz(func(t *testing.T, raw []byte) {
		in, err := openrosa.ParseInstance(raw)
		if err != nil {
			return
		}
		got := res.Meta.Decode(in)
		var v map[string]any
		if err := json.Unmarshal(got.Data, &v); err != nil {
			t.Fatalf("Decode gave %q, not a JSON object: %v", got.Data, err)
		}
		if len(got.Findings) == 0 {
			for _, f := range def.ValidateJSON(got.Data) {
				// Formats (a date, a location's ranges) are the schema's to
				// check: the push validates every item.
				if f.Keyword != "format" {
					t.Fatalf("Decode read %q without findings, but the schema refuses it: %+v", got.Data, f)
				}
			}
		}
	})
}

// FuzzGenerate: every definition the forms service accepts makes an XForm
// (never an error, never a panic) that is well-formed XML, the same bytes
// every time.
func FuzzGenerate(f *testing.F) {
	for _, name := range []string{"incident-report", "perception-survey", "action-plan-followup"} {
		raw, err := os.ReadFile("../../schemas/examples/" + name + ".json")
		if err != nil {
			f.Fatal(err)
		}
		f.Add(raw)
	}
	f.Add([]byte(fuzzForm))
	f.Add([]byte(`{"title": "T", "schema": {"type": "object"}}`))
	f.Add([]byte(`{"title": "T", "schema": {"type": "object", "$defs": {"a": {"type": "object", "properties": {"x": {"$ref": "#/$defs/b"}, "y": {"$ref": "#/$defs/b"}}}, "b": {"type": "object", "properties": {"p": {"$ref": "#/$defs/c"}, "q": {"$ref": "#/$defs/c"}}}, "c": {"type": "string"}}, "properties": {"r": {"$ref": "#/$defs/a"}}}}`))
	f.Fuzz(func(t *testing.T, raw []byte) {
		if _, err := forms.ParseDefinition(raw); err != nil {
			return
		}
		a, err := openrosa.Generate("f", "1", raw)
		if err != nil {
			t.Fatalf("Generate of an accepted definition: %v", err)
		}
		if err := xml.Unmarshal(a.XForm, new(any)); err != nil {
			t.Fatalf("the XForm is not well-formed: %v\n%s", err, a.XForm)
		}
		b, _ := openrosa.Generate("f", "1", raw)
		if !bytes.Equal(a.XForm, b.XForm) {
			t.Fatal("two generations differ")
		}
	})
}
