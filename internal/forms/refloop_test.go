package forms

import (
	"strings"
	"testing"

	"github.com/fieldsync/fieldsync/internal/domain"
)

// TestRefLoopRefused: a schema that refers back to itself without moving into
// the data checks the same value forever; jsonschema reports such a loop only
// when it validates, so the form published and then rejected every record
// (issue 10.8). It is refused at upload, at the $ref that closes the loop.
func TestRefLoopRefused(t *testing.T) {
	tests := []struct {
		name string
		raw  string
		at   string
	}{
		{"two $defs", `{"title": "t", "schema": {"type": "object", "$defs": {"a": {"$ref": "#/$defs/b"}, "b": {"$ref": "#/$defs/a"}}, "$ref": "#/$defs/a"}}`,
			"/schema/$defs/b/$ref"},
		{"root to itself", `{"title": "t", "schema": {"type": "object", "$ref": "#"}}`, "/schema/$ref"},
		{"through allOf", `{"title": "t", "schema": {"type": "object", "allOf": [{"required": ["a"]}, {"$ref": "#"}]}}`, "/schema/allOf/1/$ref"},
		{"through anyOf and oneOf", `{"title": "t", "schema": {"type": "object", "$defs": {"a": {"anyOf": [{"type": "string"}, {"oneOf": [{"$ref": "#/$defs/b"}]}]}, "b": {"allOf": [{"$ref": "#/$defs/a"}]}},
			"properties": {"x": {"$ref": "#/$defs/a"}}}}`, "/schema/$defs/b/allOf/0/$ref"},
		{"through not, if and then", `{"title": "t", "schema": {"type": "object", "$defs": {"a": {"if": {"type": "string"}, "then": {"not": {"$ref": "#/$defs/a"}}}},
			"properties": {"x": {"$ref": "#/$defs/a"}}}}`, "/schema/$defs/a/then/not/$ref"},
		{"through dependentSchemas", `{"title": "t", "schema": {"type": "object", "dependentSchemas": {"a": {"$ref": "#"}}}}`, "/schema/dependentSchemas/a/$ref"},
		{"inside a property", `{"title": "t", "schema": {"type": "object", "properties": {"p": {"$defs": {"q": {"$ref": "#/properties/p"}}, "$ref": "#/properties/p/$defs/q"}}}}`,
			"/schema/properties/p/$defs/q/$ref"},
		{"through an anchor", `{"title": "t", "schema": {"type": "object", "$defs": {"a": {"$anchor": "here", "allOf": [{"$ref": "#here"}]}}, "properties": {"x": {"$ref": "#/$defs/a"}}}}`,
			"/schema/$defs/a/allOf/0/$ref"},
		{"$dynamicRef", `{"title": "t", "schema": {"type": "object", "$dynamicAnchor": "node", "allOf": [{"$dynamicRef": "#node"}]}}`, "/schema/allOf/0/$dynamicRef"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, err := ParseDefinition([]byte(tt.raw))
			e := domainErr(t, err, domain.KindInvalid, CodeInvalidDefinition)
			kw := tt.at[strings.LastIndexByte(tt.at, '/')+1:]
			assertFindings(t, e.Findings, []want{{tt.at, kw}})
			if !strings.Contains(e.Findings[0].Message, "loop") {
				t.Errorf("message %q does not say it is a loop", e.Findings[0].Message)
			}
		})
	}
}

// TestRecursionAccepted: a schema that refers to itself for a part of the
// value (a tree of items) is recursion, not a loop, and stays accepted, as
// does a $ref shared by many places.
func TestRecursionAccepted(t *testing.T) {
	tests := []struct {
		name, raw, good, bad string
	}{
		{"tree", `{"title": "t", "schema": {"type": "object", "$defs": {"node": {"type": "object", "required": ["name"],
			"properties": {"name": {"type": "string"}, "children": {"type": "array", "items": {"$ref": "#/$defs/node"}}}}},
			"properties": {"root": {"$ref": "#/$defs/node"}}}}`,
			`{"root": {"name": "a", "children": [{"name": "b", "children": [{"name": "c"}]}]}}`,
			`{"root": {"name": "a", "children": [{"children": []}]}}`},
		{"root recursion through a property", `{"title": "t", "schema": {"type": "object", "properties": {"next": {"$ref": "#"}, "n": {"type": "integer"}}}}`,
			`{"n": 1, "next": {"n": 2, "next": {}}}`, `{"next": {"n": "x"}}`},
		{"diamond", `{"title": "t", "schema": {"type": "object", "$defs": {"s": {"type": "string"}, "a": {"allOf": [{"$ref": "#/$defs/s"}]}, "b": {"$ref": "#/$defs/s"}},
			"properties": {"x": {"allOf": [{"$ref": "#/$defs/a"}, {"$ref": "#/$defs/b"}, {"$ref": "#/$defs/s"}]}}}}`,
			`{"x": "y"}`, `{"x": 1}`},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			d := mustParse(t, tt.raw)
			if f := d.ValidateJSON([]byte(tt.good)); len(f) != 0 {
				t.Errorf("good record: %v", f)
			}
			if f := d.ValidateJSON([]byte(tt.bad)); len(f) == 0 {
				t.Errorf("bad record accepted")
			}
		})
	}
}
