package syncer

import (
	"errors"
	"fmt"
	"testing"
)

// wantClash is a Clash written as strings; "" stands for absent (nil).
type wantClash struct{ path, base, ours, theirs string }

// mergeCases is the merge table; base "" means an unknown base. It also seeds
// FuzzMerge.
var mergeCases = []struct {
	name               string
	base, ours, theirs string
	want               string
	clashes            []wantClash
}{
	// One field, every combination of what each side did to it. Base absent:
	{"absent, untouched by both", `{"x":0}`, `{"x":0}`, `{"x":0}`, `{"x":0}`, nil},
	{"added by ours", `{}`, `{"f":1}`, `{}`, `{"f":1}`, nil},
	{"added by theirs", `{}`, `{}`, `{"f":1}`, `{"f":1}`, nil},
	{"added by both, same", `{}`, `{"f":1}`, `{"f":1}`, `{"f":1}`, nil},
	{"added by both, different", `{}`, `{"f":1}`, `{"f":2}`, `{"f":1}`, []wantClash{{"/f", "", "1", "2"}}},
	// Base present:
	{"unchanged by both", `{"f":1}`, `{"f":1}`, `{"f":1}`, `{"f":1}`, nil},
	{"removed by theirs", `{"f":1,"g":0}`, `{"f":1,"g":0}`, `{"g":0}`, `{"g":0}`, nil},
	{"changed by theirs", `{"f":1}`, `{"f":1}`, `{"f":2}`, `{"f":2}`, nil},
	{"removed by ours", `{"f":1,"g":0}`, `{"g":0}`, `{"f":1,"g":0}`, `{"g":0}`, nil},
	{"removed by both", `{"f":1,"g":0}`, `{"g":0}`, `{"g":0}`, `{"g":0}`, nil},
	{"removed by ours, changed by theirs", `{"f":1,"g":0}`, `{"g":0}`, `{"f":2,"g":0}`, `{"g":0}`, []wantClash{{"/f", "1", "", "2"}}},
	{"changed by ours", `{"f":1}`, `{"f":2}`, `{"f":1}`, `{"f":2}`, nil},
	{"changed by ours, removed by theirs", `{"f":1,"g":0}`, `{"f":2,"g":0}`, `{"g":0}`, `{"f":2,"g":0}`, []wantClash{{"/f", "1", "2", ""}}},
	{"changed by both, same", `{"f":1}`, `{"f":2}`, `{"f":2}`, `{"f":2}`, nil},
	{"changed by both, different", `{"f":1}`, `{"f":2}`, `{"f":3}`, `{"f":2}`, []wantClash{{"/f", "1", "2", "3"}}},

	// Several fields at once.
	{
		"disjoint edits combine",
		`{"a":1,"b":1,"c":1,"d":1}`,
		`{"a":2,"b":1,"c":1,"e":5}`,
		`{"a":1,"b":3,"d":1,"f":6}`,
		`{"a":2,"b":3,"e":5,"f":6}`,
		nil,
	},
	{
		"clashes in key order",
		`{"z":0,"a":0,"m":0}`,
		`{"z":1,"a":1,"m":1}`,
		`{"z":2,"a":2,"m":0}`,
		`{"a":1,"m":1,"z":1}`,
		[]wantClash{{"/a", "0", "1", "2"}, {"/z", "0", "1", "2"}},
	},
	{"null is a value", `{"f":1}`, `{"f":null}`, `{"f":1}`, `{"f":null}`, nil},
	{"null versus removed clash", `{"f":1}`, `{"f":null}`, `{}`, `{"f":null}`, []wantClash{{"/f", "1", "null", ""}}},
	{"null base changed on both", `{"f":null}`, `{"f":true}`, `{"f":false}`, `{"f":true}`, []wantClash{{"/f", "null", "true", "false"}}},
	{"canonical equality", `{"f":1}`, `{"f":2.0}`, `{"f":2e0}`, `{"f":2}`, nil},
	{"key order does not matter", `{"a":1,"b":2}`, `{"b":2,"a":1,"c":3}`, `{"b":2,"a":1}`, `{"a":1,"b":2,"c":3}`, nil},

	// Nested objects.
	{
		"nested disjoint edits",
		`{"respondent":{"age":30,"gender":"f","village":"A"}}`,
		`{"respondent":{"age":31,"gender":"f","village":"A"}}`,
		`{"respondent":{"age":30,"gender":"f","village":"B"}}`,
		`{"respondent":{"age":31,"gender":"f","village":"B"}}`,
		nil,
	},
	{
		"nested clash",
		`{"respondent":{"age":30,"gender":"f"}}`,
		`{"respondent":{"age":31,"gender":"f"}}`,
		`{"respondent":{"age":32,"gender":"m"}}`,
		`{"respondent":{"age":31,"gender":"m"}}`,
		[]wantClash{{"/respondent/age", "30", "31", "32"}},
	},
	{
		"deep nesting",
		`{"a":{"b":{"c":{"d":1,"e":1}}}}`,
		`{"a":{"b":{"c":{"d":2,"e":1}}}}`,
		`{"a":{"b":{"c":{"d":3,"e":2}}}}`,
		`{"a":{"b":{"c":{"d":2,"e":2}}}}`,
		[]wantClash{{"/a/b/c/d", "1", "2", "3"}},
	},
	{"nested object added by both, fields merge", `{}`, `{"o":{"x":1}}`, `{"o":{"y":2}}`, `{"o":{"x":1,"y":2}}`, nil},
	{"nested object added by both, clash inside", `{}`, `{"o":{"x":1}}`, `{"o":{"x":2}}`, `{"o":{"x":1}}`, []wantClash{{"/o/x", "", "1", "2"}}},
	{"nested removed by theirs, unchanged by ours", `{"o":{"x":1},"k":0}`, `{"o":{"x":1},"k":0}`, `{"k":0}`, `{"k":0}`, nil},
	{"nested removed by theirs, edited inside by ours", `{"o":{"x":1,"y":1}}`, `{"o":{"x":2,"y":1}}`, `{}`, `{"o":{"x":2,"y":1}}`, []wantClash{{"/o", `{"x":1,"y":1}`, `{"x":2,"y":1}`, ""}}},
	{"nested emptied by both", `{"o":{"x":1,"y":1}}`, `{"o":{}}`, `{"o":{}}`, `{"o":{}}`, nil},
	{"nested emptied by one, added by other", `{"o":{"x":1}}`, `{"o":{}}`, `{"o":{"x":1,"y":2}}`, `{"o":{"y":2}}`, nil},

	// Arrays are one value.
	{"array changed by one", `{"a":[1,2]}`, `{"a":[1,2,3]}`, `{"a":[1,2]}`, `{"a":[1,2,3]}`, nil},
	{"array changed by both, same", `{"a":[1,2]}`, `{"a":[2,1]}`, `{"a":[2,1]}`, `{"a":[2,1]}`, nil},
	{"array changed by both, different", `{"a":[1,2]}`, `{"a":[1,2,3]}`, `{"a":[0,1,2]}`, `{"a":[1,2,3]}`, []wantClash{{"/a", "[1,2]", "[1,2,3]", "[0,1,2]"}}},
	{"array order is part of the value", `{"a":[1,2]}`, `{"a":[2,1]}`, `{"a":[1,2,3]}`, `{"a":[2,1]}`, []wantClash{{"/a", "[1,2]", "[2,1]", "[1,2,3]"}}},
	{"array of objects compared canonically", `{"a":[]}`, `{"a":[{"n":"x","t":1}]}`, `{"a":[{"t":1,"n":"x"}]}`, `{"a":[{"n":"x","t":1}]}`, nil},
	{"repeat group edits are not merged", `{"g":[{"q":1},{"q":2}]}`, `{"g":[{"q":9},{"q":2}]}`, `{"g":[{"q":1},{"q":8}]}`, `{"g":[{"q":9},{"q":2}]}`, []wantClash{{"/g", `[{"q":1},{"q":2}]`, `[{"q":9},{"q":2}]`, `[{"q":1},{"q":8}]`}}},

	// Type changes.
	{"object to scalar against inner edit", `{"o":{"x":1}}`, `{"o":{"x":2}}`, `{"o":5}`, `{"o":{"x":2}}`, []wantClash{{"/o", `{"x":1}`, `{"x":2}`, "5"}}},
	{"scalar to object against scalar edit", `{"o":1}`, `{"o":{"x":1}}`, `{"o":2}`, `{"o":{"x":1}}`, []wantClash{{"/o", "1", `{"x":1}`, "2"}}},
	{"object to array against object edit", `{"o":{"x":1}}`, `{"o":[1]}`, `{"o":{"x":1,"y":1}}`, `{"o":[1]}`, []wantClash{{"/o", `{"x":1}`, "[1]", `{"x":1,"y":1}`}}},
	{"scalar to object on both sides merges", `{"o":1}`, `{"o":{"x":1}}`, `{"o":{"y":1}}`, `{"o":{"x":1,"y":1}}`, nil},
	{"type change on one side only", `{"o":{"x":1}}`, `{"o":"none"}`, `{"o":{"x":1}}`, `{"o":"none"}`, nil},
	{"string versus number", `{"n":"1"}`, `{"n":1}`, `{"n":"01"}`, `{"n":1}`, []wantClash{{"/n", `"1"`, "1", `"01"`}}},

	// Pointer escaping (RFC 6901).
	{"tilde and slash escaped", `{"a/b":1,"m~n":1}`, `{"a/b":2,"m~n":2}`, `{"a/b":3,"m~n":3}`, `{"a/b":2,"m~n":2}`, []wantClash{{"/a~1b", "1", "2", "3"}, {"/m~0n", "1", "2", "3"}}},
	{"tilde one literal", `{"~1":{"/":0}}`, `{"~1":{"/":1}}`, `{"~1":{"/":2}}`, `{"~1":{"/":1}}`, []wantClash{{"/~01/~1", "0", "1", "2"}}},
	{"empty key", `{"":0}`, `{"":1}`, `{"":2}`, `{"":1}`, []wantClash{{"/", "0", "1", "2"}}},
	{"escaped key", `{"a\"b":0}`, `{"a\u0022b":1}`, `{"a\"b":2}`, `{"a\"b":1}`, []wantClash{{`/a"b`, "0", "1", "2"}}},
	{"unicode key", `{"ñ":{"😀":0}}`, `{"ñ":{"😀":1}}`, `{"ñ":{"😀":2}}`, `{"ñ":{"😀":1}}`, []wantClash{{"/ñ/😀", "0", "1", "2"}}},

	// Empty objects.
	{"all empty", `{}`, `{}`, `{}`, `{}`, nil},
	{"everything removed by ours", `{"a":1,"b":2}`, `{}`, `{"a":1,"b":2}`, `{}`, nil},

	// Unknown base: every difference clashes.
	{"unknown base, equal sides", "", `{"a":1}`, `{"a":1}`, `{"a":1}`, nil},
	{"unknown base, differing value", "", `{"a":1,"b":1}`, `{"a":2,"b":1}`, `{"a":1,"b":1}`, []wantClash{{"/a", "", "1", "2"}}},
	{"unknown base, field only ours", "", `{"a":1}`, `{}`, `{"a":1}`, []wantClash{{"/a", "", "1", ""}}},
	{"unknown base, field only theirs", "", `{}`, `{"a":1}`, `{}`, []wantClash{{"/a", "", "", "1"}}},
	{"unknown base, nested objects merge", "", `{"o":{"x":1,"y":1}}`, `{"o":{"x":1,"y":2}}`, `{"o":{"x":1,"y":1}}`, []wantClash{{"/o/y", "", "1", "2"}}},
}

func TestMerge(t *testing.T) {
	for _, tc := range mergeCases {
		t.Run(tc.name, func(t *testing.T) {
			got, clashes, err := Merge(optional(tc.base), []byte(tc.ours), []byte(tc.theirs))
			if err != nil {
				t.Fatalf("Merge: %v", err)
			}
			if string(got) != tc.want {
				t.Errorf("merged\n got %s\nwant %s", got, tc.want)
			}
			checkClashes(t, clashes, tc.clashes, false)

			// Swapping the sides swaps the clashes and keeps everything else.
			got2, clashes2, err := Merge(optional(tc.base), []byte(tc.theirs), []byte(tc.ours))
			if err != nil {
				t.Fatalf("swapped Merge: %v", err)
			}
			checkClashes(t, clashes2, tc.clashes, true)
			if len(tc.clashes) == 0 && string(got2) != tc.want {
				t.Errorf("swapped merged\n got %s\nwant %s", got2, tc.want)
			}
		})
	}
}

// optional turns "" into nil, the unknown base.
func optional(s string) []byte {
	if s == "" {
		return nil
	}
	return []byte(s)
}

func checkClashes(t *testing.T, got []Clash, want []wantClash, swapped bool) {
	t.Helper()
	if len(got) != len(want) {
		t.Errorf("swapped %v: %d clashes %s, want %d %v", swapped, len(got), fmtClashes(got), len(want), want)
		return
	}
	for i, w := range want {
		if swapped {
			w.ours, w.theirs = w.theirs, w.ours
		}
		g := got[i]
		if g.Path != w.path || !rawIs(g.Base, w.base) || !rawIs(g.Ours, w.ours) || !rawIs(g.Theirs, w.theirs) {
			t.Errorf("swapped %v: clash %d = %s, want %+v", swapped, i, fmtClashes(got[i:i+1]), w)
		}
	}
}

func rawIs(got []byte, want string) bool {
	if want == "" {
		return got == nil
	}
	return got != nil && string(got) == want
}

func fmtClashes(cs []Clash) string {
	s := "["
	for _, c := range cs {
		s += fmt.Sprintf("{%q base=%s ours=%s theirs=%s}", c.Path, orAbsent(c.Base), orAbsent(c.Ours), orAbsent(c.Theirs))
	}
	return s + "]"
}

func orAbsent(b []byte) string {
	if b == nil {
		return "<absent>"
	}
	return string(b)
}

func TestMergeErrors(t *testing.T) {
	tests := []struct {
		name               string
		base, ours, theirs string
		want               error
	}{
		{"ours array", `{}`, `[]`, `{}`, ErrNotObject},
		{"theirs string", `{}`, `{}`, `"x"`, ErrNotObject},
		{"base null", `null`, `{}`, `{}`, ErrNotObject},
		{"ours null", "", `null`, `{}`, ErrNotObject},
		{"theirs number", `{}`, `{}`, `1`, ErrNotObject},
		{"ours invalid", `{}`, `{`, `{}`, ErrInvalidJSON},
		{"theirs duplicate", `{}`, `{}`, `{"a":1,"a":1}`, ErrDuplicateKey},
		{"base invalid", `{"a":}`, `{}`, `{}`, ErrInvalidJSON},
		{"ours empty", `{}`, ``, `{}`, ErrInvalidJSON},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			got, clashes, err := Merge(optional(tc.base), []byte(tc.ours), []byte(tc.theirs))
			if !errors.Is(err, tc.want) {
				t.Errorf("Merge = %s, %v, %v; want %v", got, clashes, err, tc.want)
			}
		})
	}
}

func TestMergeOutputIsCanonical(t *testing.T) {
	for _, tc := range mergeCases {
		got, _, err := Merge(optional(tc.base), []byte(tc.ours), []byte(tc.theirs))
		if err != nil {
			t.Fatal(err)
		}
		if c, err := Canonical(got); err != nil || string(c) != string(got) {
			t.Errorf("%s: merged %s is not canonical (%s, %v)", tc.name, got, c, err)
		}
	}
}
