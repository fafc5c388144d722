package openrosa

import (
	"context"
	"os"
	"testing"

	"github.com/fieldsync/fieldsync/internal/openrosa/odkengine"
)

// engineForms are definitions beyond the examples that exercise every kind of
// question, with translations.
var engineForms = map[string]string{
	"every-kind": `{"title": "Every kind", "schema": {"type": "object", "properties": {
		"s": {"type": "string", "minLength": 1, "pattern": "^[a-z]+$"}, "i": {"type": "integer", "minimum": 0, "maximum": 10},
		"big": {"type": "integer", "maximum": 10000000000}, "n": {"type": "number"}, "b": {"type": "boolean"},
		"c": {"const": true}, "e": {"enum": ["a b", "c", 3]}, "o": {"oneOf": [{"const": "x", "title": "Ex"}]},
		"m": {"type": "array", "items": {"enum": ["x", "y"]}, "uniqueItems": true, "maxItems": 1},
		"d": {"type": "string", "format": "date"}, "dt": {"type": "string", "format": "date-time"}, "t": {"type": "string", "format": "time"},
		"g": {"type": "object", "format": "geopoint"}, "photo": {"type": "string", "contentMediaType": "image/jpeg"},
		"voice": {"type": "string", "contentMediaType": "audio/mp4"},
		"grp": {"type": "object", "properties": {"inner": {"type": "integer"}, "deeper": {"type": "object", "properties": {"z": {"type": "string"}}}}},
		"rep": {"type": "array", "items": {"type": "object", "properties": {"k": {"type": "string"}, "sub": {"type": "array", "items": {"type": "object", "properties": {"w": {"type": "number"}}}}}}},
		"list": {"type": "array", "items": {"type": "string"}},
		"first name": {"type": "string"}}, "required": ["s", "c"]}}`,
	"translated": `{"title": "Translated", "schema": {"type": "object", "properties": {"g": {"title": "Gender", "enum": ["female", "male"]}, "age": {"title": "Age", "type": "integer"}}},
		"ui": {"language": "en", "choices": {"/g": {"female": "Female", "male": "Male"}},
			"translations": {"fr": {"labels": {"/g": "Sexe", "/age": "Âge"}, "choices": {"/g": {"female": "Femme"}}}, "sw": {}}}}`,
}

// TestEngineLoadsEveryXForm is the minimum bar of openrosa.md §5: ODK's own
// engine loads every XForm the server generates: the examples, the forms
// above, and every form of the mapping table that Collect is offered.
func TestEngineLoadsEveryXForm(t *testing.T) {
	odkengine.Require(t)
	defs := map[string][]byte{}
	for _, name := range []string{"incident-report", "perception-survey", "action-plan-followup"} {
		raw, err := os.ReadFile("../../schemas/examples/" + name + ".json")
		if err != nil {
			t.Fatal(err)
		}
		defs[name] = raw
	}
	for name, d := range engineForms {
		defs[name] = []byte(d)
	}
	for _, tc := range mappingTests {
		if len(tc.reasons) == 0 {
			defs["mapping: "+tc.name] = tc.def
		}
	}
	var names []string
	var jobs []odkengine.Job
	var forms []string
	for name, d := range defs {
		res, err := Generate("f", "1", d)
		if err != nil {
			t.Fatalf("%s: %v", name, err)
		}
		names = append(names, name)
		forms = append(forms, string(res.XForm))
		jobs = append(jobs, odkengine.Job{XForm: string(res.XForm)})
	}
	answers, err := odkengine.RunAll(context.Background(), jobs)
	if err != nil {
		t.Fatal(err)
	}
	for i, a := range answers {
		if a.Error != "" {
			t.Errorf("%s: the engine does not load the XForm: %s\n%s", names[i], a.Error, forms[i])
			continue
		}
		if len(a.Refs) < 2 || a.XML == "" {
			t.Errorf("%s: the engine loaded nothing: %+v", names[i], a)
		}
	}
}
