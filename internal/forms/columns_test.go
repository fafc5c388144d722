package forms

import (
	"slices"
	"testing"
)

// col is the part of a Column the tests compare.
type col struct {
	name string
	kind ColumnKind
	typ  string
}

func cols(cs []Column) []col {
	var out []col
	for _, c := range cs {
		out = append(out, col{c.Name, c.Kind, c.Type})
	}
	return out
}

func TestColumnsPerception(t *testing.T) {
	d := mustParseExample(t, "perception-survey")
	got := Columns(d)
	want := []col{
		{"consent", ColumnValue, "boolean"},
		{"interview_start", ColumnValue, "string"},
		{"interview_location", ColumnGeopoint, "object"},
		{"respondent/age", ColumnValue, "integer"},
		{"respondent/gender", ColumnValue, "string"},
		{"respondent/community", ColumnValue, "string"},
		{"respondent/village", ColumnValue, "string"},
		{"respondent/role", ColumnValue, "string"},
		{"feeling_safe/day", ColumnValue, "integer"},
		{"feeling_safe/night", ColumnValue, "integer"},
		{"main_threats", ColumnMultiple, "string"},
		{"main_threats_other", ColumnValue, "string"},
		{"trust/police", ColumnValue, "integer"},
		{"trust/chiefs", ColumnValue, "integer"},
		{"trust/community_watch", ColumnValue, "integer"},
		{"trust/ngos", ColumnValue, "integer"},
		{"incidents", ColumnRepeat, "array"},
		{"priorities", ColumnMultiple, "string"},
		{"comments", ColumnValue, "string"},
	}
	if !slices.Equal(cols(got), want) {
		t.Errorf("columns\n got  %v\n want %v", cols(got), want)
	}
	inc := got[slices.IndexFunc(got, func(c Column) bool { return c.Name == "incidents" })]
	wantItems := []col{
		{"date", ColumnValue, "string"},
		{"type", ColumnValue, "string"},
		{"reported_to", ColumnValue, "string"},
		{"location", ColumnGeopoint, "object"},
	}
	if !slices.Equal(cols(inc.Items), wantItems) {
		t.Errorf("repeat group items %v", cols(inc.Items))
	}
	if inc.Pointer != "/incidents" || inc.Items[0].Pointer != "/date" || inc.Items[0].Format != "date" {
		t.Errorf("pointers %q %q format %q", inc.Pointer, inc.Items[0].Pointer, inc.Items[0].Format)
	}
	age := got[3]
	if age.Pointer != "/respondent/age" || age.Title != "Age in years" {
		t.Errorf("age column %+v", age)
	}
	// The order comes from Source: it must survive a round trip through the
	// cache with the canonical (sorted) bytes only if the caller stored Source.
	if g := GeoFields(d); !slices.Equal(g, []string{"/interview_location"}) {
		t.Errorf("GeoFields %v", g)
	}
}

func TestColumnsShapes(t *testing.T) {
	d := mustParse(t, `{"title": "t", "schema": {"type": "object",
		"$defs": {
			"point": {"type": "object", "format": "geopoint"},
			"person": {"type": "object", "properties": {"role": {"type": "string"}, "age": {"type": "integer"}}},
			"node": {"type": "object", "properties": {"name": {"type": "string"}, "child": {"$ref": "#/$defs/node"}}}
		},
		"properties": {
			"zeta": {"type": "string"},
			"a~b/c": {"type": "number"},
			"where": {"$ref": "#/$defs/point"},
			"also_where": {"title": "Second point", "$ref": "#/$defs/point"},
			"head": {"$ref": "#/$defs/person"},
			"merged": {"allOf": [{"$ref": "#/$defs/person"}, {"properties": {"extra": {"type": "boolean"}}}]},
			"tags": {"type": "array", "items": {"type": "string"}},
			"codes": {"type": "array", "items": {"enum": [1, 2, 3]}},
			"matrix": {"type": "array", "items": {"type": "array"}},
			"people": {"type": "array", "items": {"$ref": "#/$defs/person"}},
			"free": {"type": "object"},
			"tree": {"$ref": "#/$defs/node"},
			"nullable": {"type": ["null", "string"]},
			"untyped": {},
			"choice": {"enum": ["x", "y"]}
		}
	}}`)
	want := []col{
		{"zeta", ColumnValue, "string"},
		{"a~b/c", ColumnValue, "number"},
		{"where", ColumnGeopoint, "object"},
		{"also_where", ColumnGeopoint, "object"},
		{"head/role", ColumnValue, "string"},
		{"head/age", ColumnValue, "integer"},
		{"merged/role", ColumnValue, "string"},
		{"merged/age", ColumnValue, "integer"},
		{"merged/extra", ColumnValue, "boolean"},
		{"tags", ColumnMultiple, "string"},
		{"codes", ColumnMultiple, "integer"},
		{"matrix", ColumnJSON, "array"},
		{"people", ColumnRepeat, "array"},
		{"free", ColumnJSON, "object"},
		{"tree/name", ColumnValue, "string"},
		{"tree/child", ColumnJSON, "object"},
		{"nullable", ColumnValue, "string"},
		{"untyped", ColumnValue, ""},
		{"choice", ColumnValue, "string"},
	}
	got := Columns(d)
	if !slices.Equal(cols(got), want) {
		t.Errorf("columns\n got  %v\n want %v", cols(got), want)
	}
	if got[1].Pointer != "/a~0b~1c" {
		t.Errorf("escaped pointer %q", got[1].Pointer)
	}
	if got[3].Title != "Second point" {
		t.Errorf("title of a $ref property: %q", got[3].Title)
	}
	if g := GeoFields(d); !slices.Equal(g, []string{"/where", "/also_where"}) {
		t.Errorf("GeoFields %v", g)
	}
}

func TestColumnKindString(t *testing.T) {
	for k, s := range map[ColumnKind]string{ColumnValue: "value", ColumnMultiple: "multiple", ColumnRepeat: "repeat",
		ColumnGeopoint: "geopoint", ColumnJSON: "json", ColumnKind(9): "ColumnKind(9)"} {
		if k.String() != s {
			t.Errorf("%d: %q", int(k), k.String())
		}
	}
}
