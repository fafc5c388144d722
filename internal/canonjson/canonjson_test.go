package canonjson

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"math"
	"math/big"
	"os"
	"strconv"
	"strings"
	"testing"
)

// canonicalCases are the valid documents of the table test; they also seed
// FuzzCanonical.
var canonicalCases = []struct {
	name, in, want string
}{
	// Key order.
	{"sorted already", `{"a":1,"b":2}`, `{"a":1,"b":2}`},
	{"reversed keys", `{"b":1,"a":2}`, `{"a":2,"b":1}`},
	{"prefix sorts first", `{"ab":1,"a":2,"":3}`, `{"":3,"a":2,"ab":1}`},
	{"upper before lower", `{"b":1,"B":2,"a":3,"A":4}`, `{"A":4,"B":2,"a":3,"b":1}`},
	{"nested objects sorted", `{"z":{"y":1,"x":[{"d":1,"c":2}]},"a":null}`, `{"a":null,"z":{"x":[{"c":2,"d":1}],"y":1}}`},
	{"escaped key sorts by its text", `{"b":1,"\u0061":2}`, `{"a":2,"b":1}`},
	{
		// RFC 8785 §3.2.3: UTF-16 order puts U+1F600 (a surrogate pair) before U+FB33.
		"rfc 8785 sorting example",
		`{"\u20ac":"Euro Sign","\r":"Carriage Return","\ufb33":"Hebrew Letter Dalet With Dagesh","1":"One","\ud83d\ude00":"Emoji: Grinning Face","\u0080":"Control","\u00f6":"Latin Small Letter O With Diaeresis"}`,
		"{\"\\r\":\"Carriage Return\",\"1\":\"One\",\"\u0080\":\"Control\",\"ö\":\"Latin Small Letter O With Diaeresis\",\"€\":\"Euro Sign\",\"😀\":\"Emoji: Grinning Face\",\"\ufb33\":\"Hebrew Letter Dalet With Dagesh\"}",
	},
	{"raw utf-8 keys in utf-16 order", "{\"\uffff\":1,\"\U00010000\":2,\"\ud7ff\":3}", "{\"\ud7ff\":3,\"\U00010000\":2,\"\uffff\":1}"},
	{"many members", `{"j":0,"i":1,"h":2,"g":3,"f":4,"e":5,"d":6,"c":7,"b":8,"a":9,"k":10,"l":11,"m":12,"n":13}`, `{"a":9,"b":8,"c":7,"d":6,"e":5,"f":4,"g":3,"h":2,"i":1,"j":0,"k":10,"l":11,"m":12,"n":13}`},

	// Whitespace.
	{"whitespace removed", " {\n\t\"a\" : [ 1 , 2 ] ,\r\n \"b\" : { } } \n", `{"a":[1,2],"b":{}}`},
	{"empty containers", `[{}, [], {"a": []}]`, `[{},[],{"a":[]}]`},
	{"spaces inside strings kept", `{"a b":" x "}`, `{"a b":" x "}`},

	// Scalars at the root.
	{"root true", "true", "true"},
	{"root false", " false ", "false"},
	{"root null", "null", "null"},
	{"root string", `"x"`, `"x"`},
	{"root number", "1.50", "1.5"},

	// Strings.
	{"unicode kept as utf-8", `"Kibera — Laini Saba, ñandú, 日本, 😀"`, `"Kibera — Laini Saba, ñandú, 日本, 😀"`},
	{"unicode escapes decoded", `"\u00e9\u00E9\u65e5\ud83d\ude00"`, `"éé日😀"`},
	{"ascii escapes decoded", `"\u0041\/\u002f"`, `"A//"`},
	{"short escapes kept", `"\b\f\n\r\t"`, `"\b\f\n\r\t"`},
	{"control escapes short form", `"\u0008\u000c\u000a\u000d\u0009"`, `"\b\f\n\r\t"`},
	{"control escapes lowercase hex", `"\u0000\u001F\u000B\u0001"`, `"\u0000\u001f\u000b\u0001"`},
	{"quote and backslash", `"\"\\\u0022\u005c"`, `"\"\\\"\\"`},
	{"del and line separator literal", `"\u007f\u2028\u2029"`, "\"\x7f\u2028\u2029\""},
	{"raw del kept", "\"\x7f\"", "\"\x7f\""},
	{"slash not escaped", `"a/b"`, `"a/b"`},
	{"escape next to utf-8", `"é\u00e9é"`, `"ééé"`},
	{"escaped key with control", `{"a\nb":1,"a":2}`, `{"a":2,"a\nb":1}`},
	{"noncharacter escapes kept", `"\uffff\ufffe"`, "\"\uffff\ufffe\""},

	// Numbers.
	{"integer", "123", "123"},
	{"negative integer", "-45", "-45"},
	{"zero", "0", "0"},
	{"minus zero", "-0", "0"},
	{"minus zero float", "-0.0", "0"},
	{"minus zero exponent", "-0e5", "0"},
	{"one point zero", "1.0", "1"},
	{"trailing zeros", "4.50", "4.5"},
	{"exponent to integer", "1e2", "100"},
	{"capital exponent", "1E3", "1000"},
	{"plus exponent", "1e+3", "1000"},
	{"1e20 fixed", "1e20", "100000000000000000000"},
	{"1e21 exponent", "1e21", "1e+21"},
	{"1e30", "1E30", "1e+30"},
	{"1e-6 fixed", "1e-6", "0.000001"},
	{"1e-7 exponent", "1e-7", "1e-7"},
	{"negative small", "-1.5e-7", "-1.5e-7"},
	{"small fraction", "2e-3", "0.002"},
	{"1e-27", "0.000000000000000000000000001", "1e-27"},
	{"shortest round trip", "0.1", "0.1"},
	{"max double", "1.7976931348623157e308", "1.7976931348623157e+308"},
	{"min subnormal", "5e-324", "5e-324"},
	{"exponent 100", "1.5e-100", "1.5e-100"},
	{"integer 2^53+1 exact", "9007199254740993", "9007199254740993"},
	{"huge integer exact", "-123456789012345678901234567890", "-123456789012345678901234567890"},
	{"integer beyond 1e21 exact", "100000000000000000000000", "100000000000000000000000"},
	{"gps", `{"latitude":-1.2920660,"longitude":36.821945e0,"accuracy":12.50}`, `{"accuracy":12.5,"latitude":-1.292066,"longitude":36.821945}`},
	{"fixed from exponent", "12.345e3", "12345"},
	{"fraction from exponent", "12345e-2", "123.45"},
	{"leading zeros of a fraction", "0.00012300", "0.000123"},
	{"fixed at 1e-6", "0.0000012", "0.0000012"},
	{"exponent below 1e-6", "0.00000012", "1.2e-7"},
	{"fixed below 1e21", "123456789012345678901.5e0", "123456789012345678901.5"},
	{"exponent at 1e21", "1.5e21", "1.5e+21"},

	// Numbers JCS would change: the value is kept (see the package comment).
	{"double rounding kept", "333333333.33333329", "333333333.33333329"},
	{"more digits than a double", "3.14159265358979323846", "3.14159265358979323846"},
	{"id in a fraction literal", "12345678901234567891.0", "12345678901234567891"},
	{"id in exponent notation", "1.2345678901234567891e19", "12345678901234567891"},
	{"float integer beyond 2^53 kept", "9007199254740993.0", "9007199254740993"},
	{"long spelling of a double kept", "0.10000000000000001", "0.10000000000000001"},
	{"exact subnormal kept", "4.94065645841246544e-324", "4.94065645841246544e-324"},
	{"underflow kept", "1e-400", "1e-400"},
	{"rfc 8785 numbers", `[333333333.33333329, 1E30, 4.50, 2e-3, 0.000000000000000000000000001]`, `[333333333.33333329,1e+30,4.5,0.002,1e-27]`},

	// Nesting.
	{"deep arrays", strings.Repeat("[", MaxDepth) + strings.Repeat("]", MaxDepth), strings.Repeat("[", MaxDepth) + strings.Repeat("]", MaxDepth)},
	{"array order kept", `[3,1,2,{"b":1,"a":2}]`, `[3,1,2,{"a":2,"b":1}]`},
	{"object in array in object", `{"s":[{"n":"police","t":2},{"t":4,"n":"chief"}]}`, `{"s":[{"n":"police","t":2},{"n":"chief","t":4}]}`},
}

func TestCanonical(t *testing.T) {
	for _, tc := range canonicalCases {
		t.Run(tc.name, func(t *testing.T) {
			got, err := Canonical([]byte(tc.in))
			if err != nil {
				t.Fatalf("Canonical(%q): %v", tc.in, err)
			}
			if string(got) != tc.want {
				t.Errorf("Canonical(%q)\n got %q\nwant %q", tc.in, got, tc.want)
			}
			again, err := Canonical(got)
			if err != nil || string(again) != string(got) {
				t.Errorf("not idempotent: %q → %q, %v", got, again, err)
			}
		})
	}
}

// canonicalErrorCases are the refused documents; they also seed FuzzCanonical.
var canonicalErrorCases = []struct {
	name, in string
	dup      bool
	offset   int // checked when >= 0
}{
	{"empty", "", false, 0},
	{"only space", "  \n", false, 3},
	{"unclosed object", `{"a":1`, false, 6},
	{"unclosed array", `[1,2`, false, 4},
	{"key without value", `{"a"}`, false, 4},
	{"missing value", `{"a":}`, false, 5},
	{"trailing comma object", `{"a":1,}`, false, 7},
	{"trailing comma array", `[1,]`, false, 3},
	{"leading comma", `[,1]`, false, 1},
	{"missing comma", `[1 2]`, false, 3},
	{"unquoted key", `{a:1}`, false, 1},
	{"single quotes", `'a'`, false, 0},
	{"number key", `{1:1}`, false, 1},
	{"leading zero", `01`, false, 1},
	{"leading zero negative", `-01`, false, 2},
	{"trailing dot", `1.`, false, 2},
	{"leading dot", `.5`, false, 0},
	{"plus sign", `+1`, false, 0},
	{"bare minus", `-`, false, 1},
	{"minus letter", `-a`, false, 1},
	{"empty exponent", `1e`, false, 2},
	{"exponent sign only", `1e+`, false, 3},
	{"dot exponent", `1.e5`, false, 2},
	{"hex number", `0x10`, false, 1},
	{"nan", `NaN`, false, 0},
	{"infinity", `-Infinity`, false, 1},
	{"overflow", `1e400`, false, 0},
	{"negative overflow", `[-1.8e308]`, false, 1},
	{"capital literal", `True`, false, 0},
	{"short literal", `tru`, false, 3},
	{"wrong literal", `nul1`, false, 0},
	{"literal with suffix", `nullx`, false, 4},
	{"two values", `1 2`, false, 2},
	{"object then garbage", `{} x`, false, 3},
	{"bom", "\ufeff{}", false, 0},
	{"unterminated string", `"abc`, false, 4},
	{"raw tab in string", "\"a\tb\"", false, 2},
	{"raw newline in string", "\"a\nb\"", false, 2},
	{"raw nul in string", "\"\x00\"", false, 1},
	{"bad escape", `"\x"`, false, 1},
	{"escaped control", "\"\\\x01\"", false, 1},
	{"short unicode escape", `"\u12"`, false, 1},
	{"bad hex", `"\u12g4"`, false, 1},
	{"backslash at end", `"\`, false, 2},
	{"lone high surrogate", `"\ud800"`, false, 1},
	{"lone low surrogate", `"a\udc00"`, false, 2},
	{"high surrogate then letter", `"\ud800\u0041"`, false, 1},
	{"high surrogate then high", `"\ud800\ud800"`, false, 1},
	{"high surrogate then text", `"\ud800abcdef"`, false, 1},
	{"invalid utf-8", "\"a\xffb\"", false, 2},
	{"invalid utf-8 key", "{\"\xc3\":1}", false, 2},
	{"truncated utf-8 before escape", "\"\xe2\x82\\u00ac\"", false, 1},
	{"utf-8 surrogate encoding", "\"\xed\xa0\x80\"", false, 1},
	{"overlong utf-8", "\"\xc0\xaf\"", false, 1},
	{"utf-8 outside string", "\xc3\xa9", false, 0},
	{"too deep", strings.Repeat("[", MaxDepth+1) + strings.Repeat("]", MaxDepth+1), false, MaxDepth},
	{"too deep objects", strings.Repeat(`{"a":`, MaxDepth+1) + "1" + strings.Repeat("}", MaxDepth+1), false, MaxDepth * 5},
	{"duplicate key", `{"a":1,"a":2}`, true, 7},
	{"duplicate same value", `{"a":1,"a":1}`, true, 7},
	{"duplicate after sort", `{"b":1,"a":2,"b":3}`, true, 13},
	{"duplicate by escape", `{"a":1,"\u0061":2}`, true, 7},
	{"duplicate nested", `{"x":[{"k":1,"j":0,"k":2}]}`, true, 19},
	{"duplicate empty key", `{"":1,"":2}`, true, 6},
}

func TestCanonicalErrors(t *testing.T) {
	for _, tc := range canonicalErrorCases {
		t.Run(tc.name, func(t *testing.T) {
			got, err := Canonical([]byte(tc.in))
			if err == nil {
				t.Fatalf("Canonical(%q) = %q, want an error", tc.in, got)
			}
			if !errors.Is(err, ErrInvalidJSON) {
				t.Errorf("error %v does not match ErrInvalidJSON", err)
			}
			if errors.Is(err, ErrDuplicateKey) != tc.dup {
				t.Errorf("errors.Is(%v, ErrDuplicateKey) = %v, want %v", err, !tc.dup, tc.dup)
			}
			var je *Error
			if !errors.As(err, &je) {
				t.Fatalf("error %T is not a *Error", err)
			}
			if tc.offset >= 0 && je.Offset != tc.offset {
				t.Errorf("offset %d, want %d (%v)", je.Offset, tc.offset, err)
			}
		})
	}
}

func TestCanonicalErrorMessage(t *testing.T) {
	_, err := Canonical([]byte(`{"a":`))
	if got, want := err.Error(), "invalid JSON: unexpected end of input at byte 5"; got != want {
		t.Errorf("got %q, want %q", got, want)
	}
	_, err = Canonical([]byte(`{"b":1,"b":2}`))
	if got, want := err.Error(), `invalid JSON: duplicate object key "b" at byte 7`; got != want {
		t.Errorf("got %q, want %q", got, want)
	}
}

// TestCanonicalResultIsOwned guards the pooling: a result must not change when
// the pool's buffers are reused.
func TestCanonicalResultIsOwned(t *testing.T) {
	a, err := Canonical([]byte(`{"b":1,"a":2}`))
	if err != nil {
		t.Fatal(err)
	}
	for range 10 {
		if _, err := Canonical([]byte(`{"zzzzzzzzzzz":[1,2,3],"yyyyyyyyyy":{"x":"xxxxxxxx"}}`)); err != nil {
			t.Fatal(err)
		}
	}
	if string(a) != `{"a":2,"b":1}` {
		t.Errorf("result changed to %q", a)
	}
}

func TestCompareKeys(t *testing.T) {
	tests := []struct {
		name string
		a, b string
		want int // sign
	}{
		{"equal", "abc", "abc", 0},
		{"prefix", "ab", "abc", -1},
		{"ascii", "b", "a", 1},
		{"ascii before latin-1", "z", "é", -1},
		{"bmp order", "é", "€", -1},
		{"surrogate pair before U+E000", "\U0001F600", "\ue000", -1},
		{"surrogate pair after U+D7FF", "\U0001F600", "\ud7ff", 1},
		{"two supplementary", "\U0001F600", "\U0001F601", -1},
		{"shared lead byte", "\u00e9", "\u00ea", -1},
		{"U+FFFF after pair", "\uffff", "\U00010000", 1},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			got := CompareKeys([]byte(tc.a), []byte(tc.b))
			if sign(got) != tc.want {
				t.Errorf("CompareKeys(%q, %q) = %d, want sign %d", tc.a, tc.b, got, tc.want)
			}
			if back := CompareKeys([]byte(tc.b), []byte(tc.a)); sign(back) != -tc.want {
				t.Errorf("not antisymmetric: %d", back)
			}
		})
	}
}

func sign(n int) int {
	switch {
	case n < 0:
		return -1
	case n > 0:
		return 1
	}
	return 0
}

// TestCanonicalAgainstNode compares Canonical with a JavaScript engine's
// JSON.stringify plus UTF-16 key sorting (testdata/jcs/gen.js), an independent
// implementation of what RFC 8785 specifies, on generated documents with
// shuffled keys, escapes, spacing and numbers in non-canonical spellings. The
// output must be JavaScript's but for the numbers whose value JavaScript
// changes (long spellings of doubles such as 3.9679099999999999682E+2): those
// keep the exact value of the input.
func TestCanonicalAgainstNode(t *testing.T) {
	raw, err := os.ReadFile("testdata/jcs/documents.jsonl")
	if err != nil {
		t.Fatal(err)
	}
	lines := bytes.Split(bytes.TrimSpace(raw), []byte("\n"))
	for i, line := range lines {
		var pair [2]string
		if err := json.Unmarshal(line, &pair); err != nil {
			t.Fatalf("line %d: %v", i+1, err)
		}
		got, err := Canonical([]byte(pair[0]))
		if err != nil {
			t.Errorf("line %d: Canonical(%q): %v", i+1, pair[0], err)
			continue
		}
		if msg := sameButExactNumbers(t, pair[0], string(got), pair[1]); msg != "" {
			t.Errorf("line %d: Canonical(%q)\n got %q\nwant %q\n%s", i+1, pair[0], got, pair[1], msg)
		}
	}
	if len(lines) < 100 {
		t.Errorf("only %d documents", len(lines))
	}
}

// TestES6Numbers checks number formatting against ECMAScript's String(number):
// the vectors of RFC 8785 Appendix B, and random doubles written by Node
// (testdata/jcs/numbers.txt, "<ieee754 bits hex> <String(f)>").
func TestES6Numbers(t *testing.T) {
	vectors := []struct{ bits, want string }{
		{"0000000000000000", "0"},
		{"8000000000000000", "0"},
		{"0000000000000001", "5e-324"},
		{"8000000000000001", "-5e-324"},
		{"7fefffffffffffff", "1.7976931348623157e+308"},
		{"ffefffffffffffff", "-1.7976931348623157e+308"},
		{"4340000000000000", "9007199254740992"},
		{"c340000000000000", "-9007199254740992"},
		{"4430000000000000", "295147905179352830000"},
		{"44b52d02c7e14af5", "9.999999999999997e+22"},
		{"44b52d02c7e14af6", "1e+23"},
		{"44b52d02c7e14af7", "1.0000000000000001e+23"},
		{"444b1ae4d6e2ef4e", "999999999999999700000"},
		{"444b1ae4d6e2ef4f", "999999999999999900000"},
		{"444b1ae4d6e2ef50", "1e+21"},
		{"3eb0c6f7a0b5ed8c", "9.999999999999997e-7"},
		{"3eb0c6f7a0b5ed8d", "0.000001"},
		{"41b3de4355555553", "333333333.3333332"},
		{"41b3de4355555554", "333333333.33333325"},
		{"41b3de4355555555", "333333333.3333333"},
		{"41b3de4355555556", "333333333.3333334"},
		{"41b3de4355555557", "333333333.33333343"},
		{"becbf647612f3696", "-0.0000033333333333333333"},
		{"43143ff3c1cb0959", "1424953923781206.2"},
	}
	raw, err := os.ReadFile("testdata/jcs/numbers.txt")
	if err != nil {
		t.Fatal(err)
	}
	for _, line := range strings.Split(strings.TrimSpace(string(raw)), "\n") {
		bits, want, _ := strings.Cut(line, " ")
		vectors = append(vectors, struct{ bits, want string }{bits, want})
	}
	for _, v := range vectors {
		b, err := strconv.ParseUint(v.bits, 16, 64)
		if err != nil {
			t.Fatal(err)
		}
		f := math.Float64frombits(b)
		if got, err := AppendFloat(nil, f); err != nil || string(got) != v.want {
			t.Errorf("%s (%g): got %s, want %s", v.bits, f, got, v.want)
		}
		// Through the parser too: the exponent spelling always takes the double path.
		in := strconv.FormatFloat(f, 'e', -1, 64)
		if got, err := Canonical([]byte(in)); err != nil || string(got) != v.want {
			t.Errorf("Canonical(%s) = %s, %v; want %s", in, got, err, v.want)
		}
	}
}

// TestCanonicalConcurrent runs Canonical from many goroutines at once, as the
// push handler does, to catch sharing of the pooled state (run with -race).
func TestCanonicalConcurrent(t *testing.T) {
	want := make([]string, len(canonicalCases))
	for i, tc := range canonicalCases {
		want[i] = tc.want
	}
	errs := make(chan error, 8)
	for g := range 8 {
		go func() {
			for n := range 200 {
				i := (g + n) % len(canonicalCases)
				got, err := Canonical([]byte(canonicalCases[i].in))
				if err != nil || string(got) != want[i] {
					errs <- fmt.Errorf("%s: got %q, %v", canonicalCases[i].name, got, err)
					return
				}
			}
			errs <- nil
		}()
	}
	for range 8 {
		if err := <-errs; err != nil {
			t.Error(err)
		}
	}
}

// sameButExactNumbers compares got with JavaScript's canonical form want of
// the document in, token by token: equal, but where a number of got is the
// exact value of a number of in that JavaScript rounded (want holds another
// value, the same double). It returns "" when that holds.
func sameButExactNumbers(t *testing.T, in, got, want string) string {
	t.Helper()
	exact := map[string]bool{} // the values of the numbers of in
	for _, tok := range tokens(t, in) {
		if n, ok := tok.(json.Number); ok {
			exact[ratOf(t, n).RatString()] = true
		}
	}
	g, w := tokens(t, got), tokens(t, want)
	if len(g) != len(w) {
		return "different structure"
	}
	for i := range g {
		gn, gok := g[i].(json.Number)
		wn, wok := w[i].(json.Number)
		if !gok || !wok || gn == wn {
			if g[i] != w[i] {
				return fmt.Sprintf("token %d: %v, want %v", i, g[i], w[i])
			}
			continue
		}
		gf, _ := gn.Float64()
		wf, _ := wn.Float64()
		gr := ratOf(t, gn)
		if gf != wf || !exact[gr.RatString()] || gr.Cmp(ratOf(t, wn)) == 0 {
			return fmt.Sprintf("number %s, want %s or the exact value of an input number", gn, wn)
		}
	}
	return ""
}

func tokens(t *testing.T, doc string) []json.Token {
	t.Helper()
	dec := json.NewDecoder(strings.NewReader(doc))
	dec.UseNumber()
	var out []json.Token
	for {
		tok, err := dec.Token()
		if err == io.EOF {
			return out
		}
		if err != nil {
			t.Fatalf("%q: %v", doc, err)
		}
		out = append(out, tok)
	}
}

func ratOf(t *testing.T, n json.Number) *big.Rat {
	t.Helper()
	r, ok := new(big.Rat).SetString(string(n))
	if !ok {
		t.Fatalf("number %s", n)
	}
	return r
}
