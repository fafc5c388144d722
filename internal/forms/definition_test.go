package forms

import (
	"bytes"
	"encoding/json"
	"fmt"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync/atomic"
	"testing"

	"github.com/fieldsync/fieldsync/internal/domain"
)

// def builds a definition around a schema's properties.
func def(properties string) string {
	return `{"title": "Test form", "schema": {"type": "object", "properties": ` + properties + `}}`
}

func TestParseDefinitionMetaSchemaFindings(t *testing.T) {
	tests := []struct {
		name string
		raw  string
		want []want
	}{
		{"empty object", `{}`, []want{{"/schema", "required"}, {"/title", "required"}}},
		{"not an object", `[]`, []want{{"", "type"}}},
		{"missing title", `{"schema": {"type": "object"}}`, []want{{"/title", "required"}}},
		{"blank title", `{"title": "   ", "schema": {"type": "object"}}`, []want{{"/title", "pattern"}}},
		{"title too long", `{"title": "` + strings.Repeat("x", 201) + `", "schema": {"type": "object"}}`, []want{{"/title", "maxLength"}}},
		{"wrong policy", `{"title": "t", "conflict_policy": "newest", "schema": {"type": "object"}}`, []want{{"/conflict_policy", "enum"}}},
		{"schema not an object type", `{"title": "t", "schema": {"type": "array"}}`, []want{{"/schema/type", "const"}}},
		{"schema without type", `{"title": "t", "schema": {"properties": {}}}`, []want{{"/schema/type", "required"}}},
		{"schema a boolean", `{"title": "t", "schema": true}`, []want{{"/schema", "type"}}},
		{"other draft", `{"title": "t", "schema": {"$schema": "http://json-schema.org/draft-07/schema#", "type": "object"}}`, []want{{"/schema/$schema", "enum"}}},
		{"ui not an object", `{"title": "t", "schema": {"type": "object"}, "ui": ["a"]}`, []want{{"/ui", "type"}}},
		{"shared not boolean", `{"title": "t", "schema": {"type": "object"}, "shared": "yes"}`, []want{{"/shared", "type"}}},
		{"unknown member", `{"title": "t", "schema": {"type": "object"}, "conflict-policy": "merge"}`, []want{{"/conflict-policy", "additionalProperties"}}},
		{"bad keyword value", def(`{"age": {"type": "integer", "minimum": "18"}}`), []want{{"/schema/properties/age/minimum", "type"}}},
		{"unknown type name", def(`{"age": {"type": "int"}}`), []want{{"/schema/properties/age/type", "anyOf"}}},
		{"bad pattern", def(`{"code": {"type": "string", "pattern": "("}}`), []want{{"/schema/properties/code/pattern", "format"}}},
		{"bad patternProperties", `{"title": "t", "schema": {"type": "object", "patternProperties": {"(": {}}}}`, []want{{"/schema/patternProperties/(", "propertyNames"}}},
		{"several at once", `{"title": "", "conflict_policy": "newest", "schema": {"type": "array", "properties": {"a": {"minLength": -1}}}, "ui": 1, "x": true}`, []want{
			{"/conflict_policy", "enum"},
			{"/schema/properties/a/minLength", "minimum"},
			{"/schema/type", "const"},
			{"/title", "minLength"},
			{"/title", "pattern"},
			{"/ui", "type"},
			{"/x", "additionalProperties"},
		}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, err := ParseDefinition([]byte(tt.raw))
			e := domainErr(t, err, domain.KindInvalid, CodeInvalidDefinition)
			assertFindings(t, e.Findings, tt.want)
		})
	}
}

func TestParseDefinitionCompileFindings(t *testing.T) {
	tests := []struct {
		name string
		raw  string
		want []want
	}{
		{"missing $defs target", def(`{"a": {"$ref": "#/$defs/nope"}}`), []want{{"/schema/properties/a/$ref", "$ref"}}},
		{"missing anchor", def(`{"a": {"$ref": "#nope"}}`), []want{{"/schema/properties/a/$ref", "$ref"}}},
		{"unknown format", def(`{"when": {"type": "string", "format": "date_time"}}`), []want{{"/schema/properties/when/format", "format"}}},
		// A nested resource in another draft is checked by the library against
		// that draft's meta-schema when it compiles (exclusiveMinimum is a
		// boolean in draft-04).
		{"nested draft-04 resource", def(`{"a": {"id": "https://example.org/a", "$schema": "http://json-schema.org/draft-04/schema#", "minimum": 1, "exclusiveMinimum": 5}}`),
			[]want{{"/schema/properties/a/exclusiveMinimum", "type"}}},
		{"unknown formats everywhere", `{"title": "t", "schema": {"type": "object", "format": "x", "properties": {"a": {"items": {"format": "y"}}}}}`,
			[]want{{"/schema/format", "format"}, {"/schema/properties/a/items/format", "format"}}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, err := ParseDefinition([]byte(tt.raw))
			e := domainErr(t, err, domain.KindInvalid, CodeInvalidDefinition)
			assertFindings(t, e.Findings, tt.want)
		})
	}
}

// TestRemoteRefRefused proves that no reference leaves the document: a server
// that the definition names gets no request, whatever the keyword.
func TestRemoteRefRefused(t *testing.T) {
	var requests atomic.Int64
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		requests.Add(1)
		w.Header().Set("Content-Type", "application/schema+json")
		fmt.Fprint(w, `{"type": "string"}`)
	}))
	defer srv.Close()

	tests := []struct {
		name     string
		raw      string
		wantPath string
		wantRef  string
	}{
		{"absolute $ref", def(`{"a": {"$ref": "` + srv.URL + `/string.json"}}`), "/schema/properties/a/$ref", srv.URL + "/string.json"},
		{"$ref with fragment", def(`{"a": {"$ref": "` + srv.URL + `/defs.json#/$defs/a"}}`), "/schema/properties/a/$ref", srv.URL + "/defs.json#/$defs/a"},
		{"relative $ref", def(`{"a": {"$ref": "common.json#/$defs/a"}}`), "/schema/properties/a/$ref", "common.json#/$defs/a"},
		{"relative to a remote $id", `{"title": "t", "schema": {"$id": "` + srv.URL + `/form.json", "type": "object", "properties": {"a": {"$ref": "other.json"}}}}`, "/schema", ""},
		{"$dynamicRef", def(`{"a": {"$dynamicRef": "` + srv.URL + `/x.json#meta"}}`), "/schema/properties/a/$dynamicRef", srv.URL + "/x.json#meta"},
		{"$schema of a subschema", def(`{"a": {"$id": "https://example.org/a", "$schema": "` + srv.URL + `/meta.json", "type": "string"}}`), "/schema/properties/a/$schema", srv.URL + "/meta.json"},
		{"file URL", def(`{"a": {"$ref": "file:///etc/passwd"}}`), "/schema/properties/a/$ref", "file:///etc/passwd"},
		{"draft meta-schema", def(`{"a": {"$ref": "https://json-schema.org/draft/2020-12/schema"}}`), "/schema/properties/a/$ref", "https://json-schema.org/draft/2020-12/schema"},
		{"nested in items", def(`{"a": {"type": "array", "items": {"$ref": "` + srv.URL + `/item.json"}}}`), "/schema/properties/a/items/$ref", srv.URL + "/item.json"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, err := ParseDefinition([]byte(tt.raw))
			e := domainErr(t, err, domain.KindInvalid, CodeRemoteRef)
			if len(e.Findings) == 0 {
				t.Fatal("no findings")
			}
			f := e.Findings[0]
			if tt.wantPath != "/schema" && f.Path != tt.wantPath {
				t.Errorf("path %q, want %q", f.Path, tt.wantPath)
			}
			if !strings.Contains(f.Message, tt.wantRef) {
				t.Errorf("message %q does not name %q", f.Message, tt.wantRef)
			}
		})
	}
	if n := requests.Load(); n != 0 {
		t.Fatalf("the referenced server got %d requests, want 0", n)
	}
}

func TestLocalRefs(t *testing.T) {
	tests := []struct {
		name   string
		raw    string
		good   string
		bad    string
		badAt  string
		badKey string
	}{
		{"$defs", `{"title": "t", "schema": {"type": "object", "$defs": {"scale": {"type": "integer", "minimum": 1, "maximum": 5}},
			"properties": {"a": {"$ref": "#/$defs/scale"}, "b": {"title": "B", "$ref": "#/$defs/scale"}}}}`,
			`{"a": 1, "b": 5}`, `{"a": 1, "b": 6}`, "/b", "maximum"},
		{"anchor", `{"title": "t", "schema": {"type": "object", "$defs": {"s": {"$anchor": "code", "type": "string", "pattern": "^[A-Z]+$"}},
			"properties": {"a": {"$ref": "#code"}}}}`,
			`{"a": "AB"}`, `{"a": "ab"}`, "/a", "pattern"},
		{"pointer into properties", `{"title": "t", "schema": {"type": "object", "properties": {"a": {"type": "boolean"}, "b": {"$ref": "#/properties/a"}}}}`,
			`{"a": true, "b": false}`, `{"a": true, "b": 1}`, "/b", "type"},
		{"own $id", `{"title": "t", "schema": {"$id": "https://example.org/forms/f.json", "type": "object", "$defs": {"a": {"type": "string"}},
			"properties": {"a": {"$ref": "https://example.org/forms/f.json#/$defs/a"}, "b": {"$ref": "#/$defs/a"}}}}`,
			`{"a": "x", "b": "y"}`, `{"a": "x", "b": 2}`, "/b", "type"},
		{"recursive", `{"title": "t", "schema": {"type": "object", "$defs": {"node": {"type": "object", "properties": {"name": {"type": "string"}, "children": {"type": "array", "items": {"$ref": "#/$defs/node"}}}}},
			"properties": {"tree": {"$ref": "#/$defs/node"}}}}`,
			`{"tree": {"name": "a", "children": [{"name": "b", "children": []}]}}`, `{"tree": {"children": [{"name": 3}]}}`, "/tree/children/0/name", "type"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			d := mustParse(t, tt.raw)
			if f := d.ValidateJSON([]byte(tt.good)); len(f) != 0 {
				t.Errorf("good record: %v", f)
			}
			assertFindings(t, d.ValidateJSON([]byte(tt.bad)), []want{{tt.badAt, tt.badKey}})
		})
	}
}

func TestParseDefinitionLimits(t *testing.T) {
	t.Run("too large", func(t *testing.T) {
		pad := strings.Repeat(" ", MaxDefinitionSize)
		_, err := ParseDefinition([]byte(`{"title": "t", "schema": {"type": "object"}}` + pad))
		domainErr(t, err, domain.KindTooLarge, "definition_too_large")
	})
	t.Run("at the size limit", func(t *testing.T) {
		head := `{"title": "t", "schema": {"type": "object"}}`
		raw := head + strings.Repeat(" ", MaxDefinitionSize-len(head))
		if _, err := ParseDefinition([]byte(raw)); err != nil {
			t.Fatalf("exactly %d bytes: %v", MaxDefinitionSize, err)
		}
	})
	nested := func(levels int) string {
		// The definition and "schema" are 2 levels, each {"type":"object","properties":{"a": …}} 2 more.
		s := `{"type": "string"}`
		for i := 0; i < levels; i++ {
			s = `{"type": "object", "properties": {"a": ` + s + `}}`
		}
		return `{"title": "t", "schema": ` + s + `}`
	}
	t.Run("too deep", func(t *testing.T) {
		_, err := ParseDefinition([]byte(nested(MaxDepth / 2)))
		e := domainErr(t, err, domain.KindInvalid, CodeTooDeep)
		if len(e.Findings) != 1 || !strings.HasPrefix(e.Findings[0].Path, "/schema/properties/a/properties/a") {
			t.Errorf("findings %v", e.Findings)
		}
	})
	t.Run("deep but within the limit", func(t *testing.T) {
		if _, err := ParseDefinition([]byte(nested(MaxDepth/2 - 2))); err != nil {
			t.Fatal(describeErr(err))
		}
	})
	t.Run("deep arrays", func(t *testing.T) {
		raw := `{"title": "t", "schema": {"type": "object", "x-data": ` + strings.Repeat("[", 100000) + strings.Repeat("]", 100000) + `}}`
		_, err := ParseDefinition([]byte(raw))
		domainErr(t, err, domain.KindInvalid, CodeTooDeep)
	})
}

func TestParseDefinitionBadJSON(t *testing.T) {
	tests := []struct {
		name   string
		raw    string
		offset string
	}{
		{"empty", ``, "at byte 0"},
		{"truncated", `{"title": "t", "schema": {"type": "object"`, "at byte 42"},
		{"trailing garbage", `{"title": "t", "schema": {"type": "object"}} x`, "at byte 45"},
		{"single quotes", `{'title': 't'}`, "at byte 1"},
		{"trailing comma", `{"title": "t",}`, "at byte 14"},
		{"control character in string", "{\"title\": \"a\tb\"}", "at byte 12"},
		{"bad escape", `{"title": "a\qb"}`, "at byte 12"},
		{"leading zero", `{"n": 01}`, "at byte 7"},
		{"NaN", `{"n": NaN}`, "at byte 6"},
		{"invalid UTF-8", "{\"title\": \"caf\xe9\"}", "at byte 14"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, err := ParseDefinition([]byte(tt.raw))
			e := domainErr(t, err, domain.KindBadRequest, "bad_json")
			if !strings.Contains(e.Detail, tt.offset) {
				t.Errorf("detail %q does not say %q", e.Detail, tt.offset)
			}
		})
	}
}

func TestParseDefinitionRefusedValues(t *testing.T) {
	tests := []struct {
		name string
		raw  string
		path string
	}{
		{"duplicate key", `{"title": "a", "title": "b", "schema": {"type": "object"}}`, "/title"},
		{"nested duplicate key", def(`{"a": {"type": "string"}, "a": {"type": "integer"}}`), "/schema/properties/a"},
		{"number out of range", `{"title": "t", "schema": {"type": "object", "maxProperties": 1e400}}`, "/schema/maxProperties"},
		{"huge exponent", `{"title": "t", "schema": {"type": "object", "properties": {"n": {"minimum": 1e-999999}}}}`, "/schema/properties/n/minimum"},
		{"very long number", `{"title": "t", "schema": {"type": "object", "properties": {"n": {"minimum": 0.` + strings.Repeat("0", 200) + `1}}}}`, "/schema/properties/n/minimum"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, err := ParseDefinition([]byte(tt.raw))
			e := domainErr(t, err, domain.KindInvalid, CodeInvalidDefinition)
			if len(e.Findings) != 1 || e.Findings[0].Path != tt.path {
				t.Errorf("findings %v, want one at %s", e.Findings, tt.path)
			}
		})
	}
}

func TestDefinitionFields(t *testing.T) {
	raw := `{
	  "title": "Water point safety",
	  "description": "Observation at water points",
	  "schema": {"type": "object", "properties": {"z": {"type": "string"}, "a": {"type": "string"}}},
	  "ui": {"order": ["z", "a"], "labels": {"z": "Zone"}}
	}`
	d := mustParse(t, raw)
	if d.Title != "Water point safety" || d.Description != "Observation at water points" {
		t.Errorf("title %q description %q", d.Title, d.Description)
	}
	if d.Policy != domain.PolicyMerge || d.Shared {
		t.Errorf("defaults: policy %q shared %v", d.Policy, d.Shared)
	}
	if got := string(d.UI); got != `{"order":["z","a"],"labels":{"z":"Zone"}}` {
		t.Errorf("UI %s", got)
	}
	if got := string(d.Schema); got != `{"type":"object","properties":{"z":{"type":"string"},"a":{"type":"string"}}}` {
		t.Errorf("Schema %s (must keep the key order)", got)
	}
	var compact bytes.Buffer
	_ = json.Compact(&compact, []byte(raw))
	if !bytes.Equal(d.Source, compact.Bytes()) {
		t.Errorf("Source %s", d.Source)
	}
	if !strings.HasPrefix(string(d.Canonical), `{"description":"Observation at water points","schema":{"properties":{"a":`) {
		t.Errorf("Canonical %s", d.Canonical)
	}
	if d.JSONSchema() == nil {
		t.Error("no compiled schema")
	}
	noUI := mustParse(t, `{"title": "t", "schema": {"type": "object"}, "shared": true, "conflict_policy": "reject"}`)
	if noUI.UI != nil || !noUI.Shared || noUI.Policy != domain.PolicyReject {
		t.Errorf("UI %s shared %v policy %q", noUI.UI, noUI.Shared, noUI.Policy)
	}
}
