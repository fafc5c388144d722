package forms

import (
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"math"
	"strings"
	"testing"

	"github.com/fieldsync/fieldsync/internal/canonjson"
)

func TestCanonicalize(t *testing.T) {
	tests := []struct {
		name string
		in   string
		want string
	}{
		{"sorted keys, no whitespace", `{ "b" : 1, "a" : [ true , false , null ] }`, `{"a":[true,false,null],"b":1}`},
		{"nested objects", `{"z": {"y": 1, "x": {"b": 2, "a": 1}}, "a": {}}`, `{"a":{},"z":{"x":{"a":1,"b":2},"y":1}}`},
		// Numbers as ECMAScript writes doubles (RFC 8785 §3.2.2.3 and its test vectors).
		{"integers", `[0, -0, 1, -1, 1.0, 10e0, 100]`, `[0,0,1,-1,1,10,100]`},
		{"fractions", `[0.5, 0.1, -0.25, 1.5e-3]`, `[0.5,0.1,-0.25,0.0015]`},
		// Integers keep every digit (issue 9: they used to go through a double,
		// so 9007199254740993 and 9007199254740992 hashed the same).
		{"large", `[1e21, 1e20, 123456789012345678901, 9007199254740993]`, `[1e+21,100000000000000000000,123456789012345678901,9007199254740993]`},
		{"small", `[1e-6, 1e-7, 5e-324, 0.000001234]`, `[0.000001,1e-7,5e-324,0.000001234]`},
		{"rfc 8785 vectors", `[1E30, 4.50, 2e-3, 0.000000000000000000000000001]`, `[1e+30,4.5,0.002,1e-27]`},
		{"more digits than a double", `[333333333.33333329, 4.9e-324]`, `[333333333.33333329,4.9e-324]`},
		{"max double", `[1.7976931348623157e308, -5e-324]`, `[1.7976931348623157e+308,-5e-324]`},
		// Strings: only '"', '\' and controls escaped; everything else literal UTF-8.
		{"escapes", `["\u0041\u00e9\/\"\\\b\f\n\r\t\u0001\u001f\u007f"]`, "[\"Aé/\\\"\\\\\\b\\f\\n\\r\\t\\u0001\\u001f\u007f\"]"},
		{"non-ASCII kept", `["€ \u2028 😀 \ud83d\ude00"]`, "[\"€ \u2028 😀 😀\"]"},
		{"html not escaped", `["<a href='x'>&</a>"]`, `["<a href='x'>&</a>"]`},
		// Keys sorted by UTF-16 code units: U+1F600 (surrogates D83D DE00) sorts
		// before U+FB01 in UTF-16, after it in code points.
		{"utf-16 key order", `{"\ufb01": 1, "😀": 2, "a": 3, "\u00e9": 4, "": 5}`, `{"":5,"a":3,"é":4,"😀":2,"ﬁ":1}`},
		{"supplementary keys", `{"😁": 1, "😀": 2}`, `{"😀":2,"😁":1}`},
		{"prefix keys", `{"ab": 1, "a": 2, "b": 3}`, `{"a":2,"ab":1,"b":3}`},
		{"scalar", ` "x" `, `"x"`},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := Canonicalize([]byte(tt.in))
			if err != nil {
				t.Fatal(err)
			}
			if string(got) != tt.want {
				t.Errorf("got  %s\nwant %s", got, tt.want)
			}
			again, err := Canonicalize(got)
			if err != nil || string(again) != string(got) {
				t.Errorf("not idempotent: %s, %v", again, err)
			}
		})
	}
}

func TestCanonicalizeRefuses(t *testing.T) {
	for _, in := range []string{`{"a": 1, "a": 2}`, `[1e400]`, `[-1e400]`, `{`, ``, `[1] 2`} {
		if got, err := Canonicalize([]byte(in)); err == nil {
			t.Errorf("%s: got %s, want an error", in, got)
		}
	}
	for _, v := range []any{math.NaN(), math.Inf(1), json.Number("1e999"), struct{}{}} {
		if _, err := AppendCanonical(nil, v); err == nil {
			t.Errorf("%v: no error", v)
		}
	}
}

func TestCanonicalHashStable(t *testing.T) {
	variants := []string{
		`{"title":"Incident","conflict_policy":"merge","schema":{"type":"object","properties":{"n":{"type":"integer","minimum":0,"maximum":10}},"required":["n"]}}`,
		"{\n  \"schema\": {\n    \"required\": [\"n\"],\n    \"properties\": {\"n\": {\"maximum\": 10, \"minimum\": 0, \"type\": \"integer\"}},\n    \"type\": \"object\"\n  },\n  \"conflict_policy\": \"merge\",\n  \"title\": \"Incident\"\n}\n",
		`{"conflict_policy":"merge","title":"Incident","schema":{"properties":{"n":{"minimum":0.0,"maximum":1e1,"type":"integer"}},"type":"object","required":["n"]}}`,
		`{"title":"\u0049ncident","conflict_policy":"merge","schema":{"type":"object","required":["n"],"properties":{"n":{"type":"integer","minimum":-0,"maximum":10.00}}}}`,
	}
	first := mustParse(t, variants[0])
	for i, v := range variants[1:] {
		d := mustParse(t, v)
		if d.Hash != first.Hash {
			t.Errorf("variant %d: hash %s, want %s\n%s\n%s", i+1, d.Hash, first.Hash, d.Canonical, first.Canonical)
		}
	}
	// A real change changes the hash; so does an array's order.
	for _, v := range []string{
		`{"title":"Incident","conflict_policy":"merge","schema":{"type":"object","properties":{"n":{"type":"integer","minimum":0,"maximum":11}},"required":["n"]}}`,
		`{"title":"Incident","conflict_policy":"reject","schema":{"type":"object","properties":{"n":{"type":"integer","minimum":0,"maximum":10}},"required":["n"]}}`,
		`{"title":"Incident","schema":{"type":"object","properties":{"n":{"type":"integer","minimum":0,"maximum":10}},"required":["n"]}}`,
	} {
		if d := mustParse(t, v); d.Hash == first.Hash {
			t.Errorf("different definition, same hash: %s", v)
		}
	}
	// The hash of the canonical bytes is the same as of the source.
	again := mustParse(t, string(first.Canonical))
	if again.Hash != first.Hash || !strings.EqualFold(again.Hash, first.Hash) {
		t.Errorf("reparsed canonical: %s", again.Hash)
	}
}

// TestCanonicalizeAgreesWithRecords: a definition and a record canonicalise
// alike (issue 9: forms rounded integers above 2^53, the sync core did not).
func TestCanonicalizeAgreesWithRecords(t *testing.T) {
	for _, in := range []string{
		`{"id":12345678901234567891,"n":9007199254740993,"x":1.50,"y":1e21,"s":"\u00e9<"}`,
		`[333333333.33333329, 1E30, 4.50, 2e-3, 0.000000000000000000000000001, -0, -0.0]`,
		`{"\ufb01": 1, "😀": 2, "a": 3, "\u00e9": 4, "": 5}`,
	} {
		got, err := Canonicalize([]byte(in))
		if err != nil {
			t.Fatal(err)
		}
		want, err := canonjson.Canonical([]byte(in))
		if err != nil {
			t.Fatal(err)
		}
		if string(got) != string(want) {
			t.Errorf("%s: forms %s, records %s", in, got, want)
		}
	}
}

// TestCacheAcceptsHashesOfRoundedNumbers: a version stored before numbers were
// kept exact carries the hash of its definition with every number through a
// double; it still loads.
func TestCacheAcceptsHashesOfRoundedNumbers(t *testing.T) {
	src := `{"title":"Ids","schema":{"type":"object","properties":{"id":{"type":"integer","maximum":12345678901234567891}}}}`
	d := mustParse(t, src)
	if !strings.Contains(string(d.Canonical), "12345678901234567891") {
		t.Fatalf("canonical form lost digits: %s", d.Canonical)
	}
	rounded := strings.Replace(string(d.Canonical), "12345678901234567891", "12345678901234567000", 1)
	sum := sha256.Sum256([]byte(rounded))
	old := hex.EncodeToString(sum[:])
	if old == d.Hash {
		t.Fatal("the case is wrong: the hashes are equal")
	}
	if got, err := NewCache().Get(old, []byte(src)); err != nil || got.Hash != d.Hash {
		t.Fatalf("Get(old hash): %v, %v", got, err)
	}
	if _, err := NewCache().Get(strings.Repeat("0", 64), []byte(src)); err == nil {
		t.Fatal("Get with a wrong hash succeeded")
	}
}
