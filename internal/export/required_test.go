package export

import "testing"

// TestBuildRequired: a column is required when its object's "required" lists
// it, through a $ref and inside a repeat; a required geopoint requires its
// latitude and longitude only; the latest version decides.
func TestBuildRequired(t *testing.T) {
	v1 := `{"title":"t","schema":{"type":"object","required":["name","place","kids"],"$defs":{"who":{"type":"object","required":["age"],"properties":{"age":{"type":"integer"},"nick":{"type":"string"}}}},
	"properties":{"name":{"type":"string"},"note":{"type":"string"},"place":{"type":"object","format":"geopoint"},
	"person":{"$ref":"#/$defs/who"},
	"kids":{"type":"array","items":{"type":"object","required":["kid"],"properties":{"kid":{"type":"string"}}}}}}}`
	v2 := `{"title":"t","schema":{"type":"object","required":["note"],"properties":{"name":{"type":"string"},"note":{"type":"string"}}}}`
	m, err := Build("f", []Version{{Version: "1", Definition: []byte(v1)}})
	if err != nil {
		t.Fatal(err)
	}
	got := map[string]bool{}
	for _, tb := range m.Tables {
		for _, c := range tb.Columns {
			got[c.Pointer] = c.Required
		}
	}
	want := map[string]bool{"/name": true, "/note": false, "/place/latitude": true, "/place/longitude": true,
		"/place/altitude": false, "/place/accuracy": false, "/person/age": true, "/person/nick": false,
		"/kids": true, "/kids/kid": true}
	for p, w := range want {
		if g, ok := got[p]; !ok || g != w {
			t.Errorf("%s: required %v (column present: %v), want %v", p, g, ok, w)
		}
	}
	m, err = Build("f", []Version{{Version: "1", Definition: []byte(v1)}, {Version: "2", Definition: []byte(v2)}})
	if err != nil {
		t.Fatal(err)
	}
	for _, c := range m.Main.Columns {
		if (c.Name == "name" && c.Required) || (c.Name == "note" && !c.Required) {
			t.Errorf("%s: required %v after version 2", c.Name, c.Required)
		}
	}
}
