package mongo

import (
	"encoding/json"
	"testing"

	"go.mongodb.org/mongo-driver/v2/bson"
)

func TestJSONRoundTrip(t *testing.T) {
	tests := []struct {
		name  string
		in    string
		exact bool // the exact text must be kept beside the BSON
		bson  bool // a BSON value is stored
	}{
		{name: "object", in: `{"a":1,"b":"x","c":[true,false,null],"d":{"e":2.5}}`, bson: true},
		{name: "key order kept", in: `{"z":1,"a":2}`, bson: true},
		{name: "int32", in: `2147483647`, bson: true},
		{name: "int64", in: `9007199254740993`, bson: true},
		{name: "negative int64", in: `-9223372036854775808`, bson: true},
		{name: "big integer as decimal", in: `12345678901234567890123`, bson: true},
		{name: "double", in: `0.1`, bson: true},
		{name: "double exponent", in: `1e+21`, bson: true},
		{name: "small double", in: `1e-7`, bson: true},
		{name: "double negative exponent", in: `1.5e-10`, bson: true},
		{name: "minimal escapes", in: "\"a\\\"b\\\\c\\n\\u0001<>&é\u2028/\"", bson: true},
		{name: "null", in: `null`, bson: true},
		{name: "empty object", in: `{}`, bson: true},
		{name: "empty array", in: `[]`, bson: true},
		{name: "whitespace", in: `{ "a": 1 }`, exact: true, bson: true},
		{name: "float spelled as 1.0", in: `1.0`, exact: true, bson: true},
		{name: "html escaped", in: `"\u003c"`, exact: true, bson: true},
		{name: "dotted key", in: `{"a.b":1}`, exact: true},
		{name: "dollar key", in: `{"$where":1}`, exact: true},
		{name: "duplicate key", in: `{"a":1,"a":2}`, exact: true},
		{name: "precise decimal", in: `3.14159265358979323846`, exact: true, bson: true},
		{name: "huge integer", in: `1234567890123456789012345678901234567890`, exact: true},
		{name: "not JSON", in: `{"a":`, exact: true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			v, exact, err := encodeJSON(json.RawMessage(tt.in))
			if err != nil {
				t.Fatal(err)
			}
			if (exact != "") != tt.exact {
				t.Errorf("exact copy kept = %v, want %v", exact != "", tt.exact)
			}
			if !v.IsZero() != tt.bson {
				t.Errorf("BSON stored = %v, want %v", !v.IsZero(), tt.bson)
			}
			// Through a real document, as the store writes and reads it.
			raw, err := bson.Marshal(bson.D{{Key: "v", Value: v}})
			if err != nil && tt.bson {
				t.Fatal(err)
			}
			if tt.bson {
				v = bson.Raw(raw).Lookup("v")
			}
			got, err := decodeJSON(v, exact)
			if err != nil {
				t.Fatal(err)
			}
			if string(got) != tt.in {
				t.Errorf("round trip = %s, want %s", got, tt.in)
			}
		})
	}
	if v, exact, _ := encodeJSON(nil); !v.IsZero() || exact != "" {
		t.Error("absent value must store nothing")
	}
	if got, _ := decodeJSON(bson.RawValue{}, ""); got != nil {
		t.Errorf("absent value read back as %q, want nil", got)
	}
}

func TestIntegersStayIntegers(t *testing.T) {
	v, _, err := encodeJSON(json.RawMessage(`{"i":3,"l":5000000000,"f":3.5}`))
	if err != nil {
		t.Fatal(err)
	}
	doc := v.Document()
	for k, want := range map[string]bson.Type{"i": bson.TypeInt32, "l": bson.TypeInt64, "f": bson.TypeDouble} {
		if got := doc.Lookup(k).Type; got != want {
			t.Errorf("%s stored as %v, want %v", k, got, want)
		}
	}
}

// TestRenderedJSONIsCanonical: what the store writes back from BSON is the
// canonical form, even for a document an analyst edited by hand in MongoDB
// (keys out of order aside): invalid UTF-8 in a string comes back as U+FFFD,
// not as bytes that make the whole page invalid JSON.
func TestRenderedJSONIsCanonical(t *testing.T) {
	raw, err := bson.Marshal(bson.D{{Key: "s", Value: "a\xffb<\u2028"}, {Key: "d", Value: 1e21}, {Key: "t", Value: 0.1}})
	if err != nil {
		t.Fatal(err)
	}
	got, err := decodeJSON(bson.RawValue{Type: bson.TypeEmbeddedDocument, Value: raw}, "")
	if err != nil {
		t.Fatal(err)
	}
	want := "{\"s\":\"a\ufffdb<\u2028\",\"d\":1e+21,\"t\":0.1}"
	if string(got) != want {
		t.Errorf("got  %s\nwant %s", got, want)
	}
	if !json.Valid(got) {
		t.Errorf("not JSON: %q", got)
	}
}
