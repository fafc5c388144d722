package ordjson

import (
	"encoding/json"
	"slices"
	"testing"
)

func TestDecodeKeepsOrder(t *testing.T) {
	v, err := Decode([]byte(`{"z": 1, "a": {"y": "s", "b": [1, {"k": null}]}, "m": [], "z": 2}`))
	if err != nil {
		t.Fatal(err)
	}
	o := v.(*Object)
	if !slices.Equal(o.Keys, []string{"z", "a", "m"}) {
		t.Errorf("keys %v, want the written order, a repeated key once", o.Keys)
	}
	if z, _ := o.Get("z"); z != json.Number("2") {
		t.Errorf("z = %v, want the last value as a json.Number", z)
	}
	if a := o.Obj("a"); a == nil || a.Str("y") != "s" || !slices.Equal(a.Keys, []string{"y", "b"}) {
		t.Errorf("a = %+v", a)
	}
	if m, _ := o.Get("m"); m == nil || len(m.([]any)) != 0 {
		t.Errorf("m = %#v, want an empty array", m)
	}
	var nilObj *Object
	if _, ok := nilObj.Get("x"); ok || nilObj.Str("x") != "" || nilObj.Obj("x") != nil {
		t.Error("a nil object has members")
	}
	for _, bad := range []string{`{"a": 1} {}`, `{"a": }`, `[1,`, ``} {
		if _, err := Decode([]byte(bad)); err == nil {
			t.Errorf("Decode(%q): no error", bad)
		}
	}
}
