package canonjson

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"math/big"
	"os"
	"reflect"
	"strconv"
	"strings"
	"testing"
	"unicode/utf8"
)

// FuzzCanonical checks Canonical against encoding/json: it never panics,
// accepts what encoding/json accepts except what it documents refusing (and
// nothing encoding/json refuses), writes JSON that encoding/json decodes to the
// same values as the input (strings equal, numbers of equal exact value), is
// idempotent, and agrees with AppendValue on the input as encoding/json
// decodes it.
func FuzzCanonical(f *testing.F) {
	for _, tc := range canonicalCases {
		f.Add([]byte(tc.in))
	}
	for _, tc := range canonicalErrorCases {
		if len(tc.in) < 100 {
			f.Add([]byte(tc.in))
		}
	}
	if raw, err := os.ReadFile("testdata/jcs/documents.jsonl"); err == nil {
		for _, line := range bytes.Split(bytes.TrimSpace(raw), []byte("\n")) {
			var pair [2]string
			if json.Unmarshal(line, &pair) == nil {
				f.Add([]byte(pair[0]))
			}
		}
	}
	f.Fuzz(func(t *testing.T, in []byte) {
		out, err := Canonical(in)
		if err != nil {
			var je *Error
			if !errors.As(err, &je) || !errors.Is(err, ErrInvalidJSON) {
				t.Fatalf("error %v (%T) is not an *Error matching ErrInvalidJSON", err, err)
			}
			if je.Offset < 0 || je.Offset > len(in) {
				t.Fatalf("offset %d outside the input of %d bytes", je.Offset, len(in))
			}
			if json.Valid(in) && utf8.Valid(in) && !documentedRefusal(je.Msg) {
				t.Fatalf("valid JSON %q refused: %v", in, err)
			}
			return
		}
		if !json.Valid(in) {
			t.Fatalf("invalid JSON %q accepted as %q", in, out)
		}
		if !json.Valid(out) || !Valid(out) {
			t.Fatalf("%q → invalid JSON %q", in, out)
		}
		again, err := Canonical(out)
		if err != nil || !bytes.Equal(again, out) {
			t.Fatalf("not idempotent: %q → %q → %q, %v", in, out, again, err)
		}
		vin, vout := decodeNumbers(t, in), decodeNumbers(t, out)
		if msg := compareMeaning(vin, vout, ""); msg != "" {
			t.Fatalf("%q → %q changed meaning: %s", in, out, msg)
		}
		if byValue, err := AppendValue(nil, vin); err != nil || !bytes.Equal(byValue, out) {
			t.Fatalf("AppendValue of %q = %q, %v; Canonical %q", in, byValue, err, out)
		}
	})
}

// documentedRefusal lists why Canonical may refuse RFC 8259 JSON.
func documentedRefusal(msg string) bool {
	for _, why := range []string{"duplicate object key", "out of range", "unpaired UTF-16 surrogate", "nesting deeper"} {
		if strings.Contains(msg, why) {
			return true
		}
	}
	return false
}

// decodeNumbers decodes b with encoding/json, numbers as json.Number.
func decodeNumbers(t *testing.T, b []byte) any {
	t.Helper()
	d := json.NewDecoder(bytes.NewReader(b))
	d.UseNumber()
	var v any
	if err := d.Decode(&v); err != nil {
		t.Fatalf("encoding/json cannot decode %q: %v", b, err)
	}
	return v
}

// compareMeaning compares two decoded documents: equal strings and structure,
// integer literals kept as written (-0 as 0), other numbers of equal exact
// decimal value. It returns "" when they mean the same.
func compareMeaning(a, b any, path string) string {
	switch a := a.(type) {
	case map[string]any:
		bm, ok := b.(map[string]any)
		if !ok || len(a) != len(bm) {
			return path + ": object differs"
		}
		for k, v := range a {
			w, ok := bm[k]
			if !ok {
				return path + ": lost key " + strconv.Quote(k)
			}
			if msg := compareMeaning(v, w, path+"/"+k); msg != "" {
				return msg
			}
		}
	case []any:
		bs, ok := b.([]any)
		if !ok || len(a) != len(bs) {
			return path + ": array differs"
		}
		for i := range a {
			if msg := compareMeaning(a[i], bs[i], path+"/"+strconv.Itoa(i)); msg != "" {
				return msg
			}
		}
	case json.Number:
		bn, ok := b.(json.Number)
		if !ok {
			return path + ": number became something else"
		}
		if lit := string(a); !strings.ContainsAny(lit, ".eE") {
			if lit == "-0" {
				lit = "0"
			}
			if string(bn) != lit {
				return fmt.Sprintf("%s: integer %s written %s", path, a, bn)
			}
			return ""
		}
		if !sameValue(a, bn) {
			return fmt.Sprintf("%s: number %s written %s", path, a, bn)
		}
	default:
		if !reflect.DeepEqual(a, b) {
			return fmt.Sprintf("%s: %v became %v", path, a, b)
		}
	}
	return ""
}

// sameValue reports whether a and b have the same exact value, through
// big.Rat; numbers with exponents beyond ±5000 (which big.Rat would take long
// over) are compared as doubles.
func sameValue(a, b json.Number) bool {
	huge := func(n json.Number) bool {
		i := strings.IndexAny(string(n), "eE")
		if i < 0 {
			return false
		}
		e, err := strconv.Atoi(string(n[i+1:]))
		return err != nil || e > 5000 || e < -5000
	}
	if huge(a) || huge(b) {
		x, _ := strconv.ParseFloat(string(a), 64)
		y, _ := strconv.ParseFloat(string(b), 64)
		return x == y
	}
	x, okx := new(big.Rat).SetString(string(a))
	y, oky := new(big.Rat).SetString(string(b))
	return okx && oky && x.Cmp(y) == 0
}

// FuzzValid: Valid accepts exactly what json.Valid accepts, up to MaxDepth.
func FuzzValid(f *testing.F) {
	for _, s := range validSeeds {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, b []byte) {
		got, want := Valid(b), json.Valid(b)
		if got && !want {
			t.Fatalf("Valid accepts %q, json.Valid does not", b)
		}
		if !got && want && bytes.Count(b, []byte("["))+bytes.Count(b, []byte("{")) <= MaxDepth {
			t.Fatalf("json.Valid accepts %q, Valid does not", b)
		}
	})
}
