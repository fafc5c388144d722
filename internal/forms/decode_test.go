package forms

import (
	"bytes"
	"encoding/json"
	"errors"
	"reflect"
	"strings"
	"testing"
	"unicode/utf8"
)

// stdDecode decodes like the rest of the server does (encoding/json, UseNumber).
func stdDecode(b []byte) (any, error) {
	if !json.Valid(b) { // exactly one value, nothing after it
		return nil, errors.New("not valid JSON")
	}
	dec := json.NewDecoder(bytes.NewReader(b))
	dec.UseNumber()
	var v any
	if err := dec.Decode(&v); err != nil {
		return nil, err
	}
	return v, nil
}

func TestDecodeMatchesEncodingJSON(t *testing.T) {
	inputs := []string{
		`{}`, `[]`, `null`, `true`, `false`, `0`, `-0`, `-1.5e+3`, `1E2`, `"x"`,
		` { "a" : [ 1 , "two" , { "three" : null } ] } `,
		`"\u00e9\ud83d\ude00\/\b\f\n\r\t\"\\"`,
		`"\ud800"`, `"\ud800\u0041"`, `"\udc00\ud800"`, `"\ud83d\ud83d\ude00"`,
		"\"\xff\xfe\"", "\"a\xc3\"", "\"\xed\xa0\x80\"", "\"é😀\"",
		`{"a": {"b": {"c": [[[]]]}}}`,
	}
	for _, in := range inputs {
		t.Run(in, func(t *testing.T) {
			want, werr := stdDecode([]byte(in))
			got, gerr := decodeJSON([]byte(in), MaxDepth)
			if (werr == nil) != (gerr == nil) {
				t.Fatalf("encoding/json error %v, ours %v", werr, gerr)
			}
			if !reflect.DeepEqual(got, want) {
				t.Errorf("got %#v, want %#v", got, want)
			}
		})
	}
}

func TestDecodeErrors(t *testing.T) {
	tests := []struct {
		in     string
		kind   jsonErrorKind
		offset int
		path   string
	}{
		{`{"a": 1`, errSyntax, 7, ""},
		{`{"a" 1}`, errSyntax, 5, ""},
		{`[1 2]`, errSyntax, 3, ""},
		{`tru`, errSyntax, 3, ""},
		{`trUe`, errSyntax, 2, ""},
		{`"abc`, errSyntax, 4, ""},
		{`"\u12"`, errSyntax, 1, ""},
		{`"\u12`, errSyntax, 5, ""},
		{`-`, errSyntax, 1, ""},
		{`1.`, errSyntax, 2, ""},
		{`1.e5`, errSyntax, 2, ""},
		{`1e`, errSyntax, 2, ""},
		{`+1`, errSyntax, 0, ""},
		{`{"a": [1, {"b": 1, "b": 2}]}`, errDuplicate, 19, "/a/1/b"},
		{`{"x/y": {"~": [1e999]}}`, errNumber, 15, "/x~1y/~0/0"},
		{`[[[[1]]]]`, errDepth, 3, "/0/0/0"},
	}
	for _, tt := range tests {
		t.Run(tt.in, func(t *testing.T) {
			_, err := decodeJSON([]byte(tt.in), 3)
			je, ok := err.(*jsonError)
			if !ok {
				t.Fatalf("error %v (%T)", err, err)
			}
			if je.Kind != tt.kind || je.Offset != tt.offset || je.Path != tt.path {
				t.Errorf("kind %d offset %d path %q (%v), want %d %d %q", je.Kind, je.Offset, je.Path, je, tt.kind, tt.offset, tt.path)
			}
		})
	}
}

func TestDecodeIntern(t *testing.T) {
	intern := internTable(map[string]any{"gender": map[string]any{"enum": []any{"female", "male"}}})
	v, err := decodeJSONIntern([]byte(`{"gender": "female", "other": "female\u0021", "n": 7, "m": 1000}`), MaxDepth, intern)
	if err != nil {
		t.Fatal(err)
	}
	want := map[string]any{"gender": "female", "other": "female!", "n": json.Number("7"), "m": json.Number("1000")}
	if !reflect.DeepEqual(v, want) {
		t.Errorf("got %#v", v)
	}
}

// FuzzDecode checks the strict decoder against encoding/json: it accepts
// exactly the JSON encoding/json accepts (less what it refuses on purpose),
// and yields the same values.
func FuzzDecode(f *testing.F) {
	for _, s := range []string{`{"a":[1,2.5e3,"x",true,null]}`, `"\ud83d\ude00"`, "\"\xff\"", `{"a":1,"a":2}`, `[[[[[[]]]]]]`, `1e999`, `-0.0`} {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, data []byte) {
		got, gerr := decodeJSON(data, 5)
		want, werr := stdDecode(data)
		if gerr != nil {
			je := gerr.(*jsonError)
			if je.Kind == errSyntax && werr == nil {
				t.Fatalf("we refuse %q (%v), encoding/json accepts it", data, gerr)
			}
			if je.Offset < 0 || je.Offset > len(data) {
				t.Fatalf("offset %d outside input of %d bytes", je.Offset, len(data))
			}
			return
		}
		if werr != nil {
			t.Fatalf("we accept %q, encoding/json refuses it: %v", data, werr)
		}
		if !reflect.DeepEqual(got, want) {
			t.Fatalf("%q: got %#v, want %#v", data, got, want)
		}
		// Canonical JSON of what we decoded is valid UTF-8 JSON that decodes
		// to the same canonical bytes.
		c, err := AppendCanonical(nil, got)
		if err != nil {
			t.Fatalf("canonical of %q: %v", data, err)
		}
		if !utf8.Valid(c) || !json.Valid(c) {
			t.Fatalf("canonical %q is not valid", c)
		}
		c2, err := Canonicalize(c)
		if err != nil || !bytes.Equal(c, c2) {
			t.Fatalf("canonical not stable: %q → %q (%v)", c, c2, err)
		}
		if strings.Contains(string(c), "\n") {
			t.Fatalf("canonical has whitespace: %q", c)
		}
	})
}
