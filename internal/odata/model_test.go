package odata

import (
	"strings"
	"testing"
)

func model(t *testing.T, defs ...string) *Model {
	t.Helper()
	var raw [][]byte
	for _, d := range defs {
		raw = append(raw, []byte(d))
	}
	m, err := BuildModel("my-form", raw)
	if err != nil {
		t.Fatal(err)
	}
	return m
}

func propTypes(t *Type) map[string]string {
	out := map[string]string{}
	for _, p := range t.Props {
		out[p.Name] = p.Type
	}
	return out
}

// TestModelNames: JSON keys that are not OData identifiers are renamed, and
// never onto another property or the feed's own names.
func TestModelNames(t *testing.T) {
	m := model(t, `{"schema": {"type": "object", "properties": {
	  "first name": {"type": "string"}, "first_name": {"type": "string"}, "1st": {"type": "integer"},
	  "__id": {"type": "string"}, "__system": {"type": "string"}, "été": {"type": "boolean"}}}}`)
	got := []string{}
	for _, p := range m.Sets[0].Type.Props {
		got = append(got, p.Name+"="+p.Key)
	}
	want := "__id=,first_name=first name,first_name_2=first_name,_1st=1st,__id_2=__id,__system_2=__system,été=été,__system="
	if strings.Join(got, ",") != want {
		t.Errorf("properties %s\nwant %s", strings.Join(got, ","), want)
	}
	if m.Namespace != "fieldsync.form.my_form" {
		t.Errorf("namespace %q", m.Namespace)
	}
}

// TestModelUnion: versions disagreeing on a question's type widen it;
// a structure stays what the first version made it; recursive $refs end.
func TestModelUnion(t *testing.T) {
	m := model(t,
		`{"schema": {"type": "object", "properties": {
		  "n": {"type": "integer"}, "s": {"type": "integer"}, "g": {"type": "object", "properties": {"a": {"type": "string"}}},
		  "tree": {"$ref": "#/$defs/node"}, "any": {}, "nullable": {"type": ["string", "null"]}},
		  "$defs": {"node": {"type": "object", "properties": {"label": {"type": "string"}, "child": {"$ref": "#/$defs/node"}}}}}}`,
		`{"schema": {"type": "object", "properties": {
		  "n": {"type": "number"}, "s": {"type": "string"}, "g": {"type": "string"}}}}`)
	sub := propTypes(m.Sets[0].Type)
	for k, want := range map[string]string{"n": edmDouble, "s": edmString, "g": "fieldsync.form.my_form.g", "any": edmString, "nullable": edmString} {
		if sub[k] != want {
			t.Errorf("%s: %q, want %q", k, sub[k], want)
		}
	}
	if _, ok := sub["tree"]; !ok {
		t.Error("a recursive $ref lost its property")
	}
	if md := string(m.Metadata()); !strings.Contains(md, `<ComplexType Name="tree">`) {
		t.Errorf("no complex type for the recursive group:\n%s", md)
	}
}

// TestModelRepeatInGroup: a repeat group inside a group is a set named by
// its path; the group left empty is not a column.
func TestModelRepeatInGroup(t *testing.T) {
	m := model(t, `{"schema": {"type": "object", "properties": {
	  "household": {"type": "object", "properties": {"members": {"type": "array", "items": {"type": "object", "properties": {"name": {"type": "string"}}}}}},
	  "head": {"type": "object", "properties": {"name": {"type": "string"}, "kids": {"type": "array", "items": {"type": "object", "properties": {"age": {"type": "integer"}}}}}}}}}`)
	var sets []string
	for _, s := range m.Sets {
		sets = append(sets, s.Name+":"+strings.Join(s.Path, "/"))
	}
	if got := strings.Join(sets, ","); got != "Submissions:,Submissions.household.members:household/members,Submissions.head.kids:head/kids" {
		t.Errorf("sets %s", got)
	}
	sub := propTypes(m.Sets[0].Type)
	if _, ok := sub["household"]; ok {
		t.Errorf("the empty group is a column: %v", sub)
	}
	if sub["head"] == "" || len(m.Complex) != 1 {
		t.Errorf("head: %v, complex types %d", sub, len(m.Complex))
	}
}
