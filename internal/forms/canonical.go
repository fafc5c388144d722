package forms

import (
	"cmp"
	"encoding/json"
	"fmt"
	"math"
	"slices"
	"strconv"
	"unicode/utf8"
)

// Canonical JSON (RFC 8785, the JSON Canonicalization Scheme): object keys sorted
// by their UTF-16 code units, no insignificant whitespace, strings escaped as
// ECMAScript's JSON.stringify does, numbers written as ECMAScript writes a
// double. Two definitions that differ only in key order, whitespace or the
// spelling of a number (1.0, 1e0) canonicalize to the same bytes and so get the
// same hash.
//
// internal/syncer has its own canonicalizer for record data; the two are to be
// merged into one package later. Until then they must agree on RFC 8785.

// Canonicalize returns the RFC 8785 canonical form of the JSON document raw. It
// refuses what RFC 8785 cannot represent: duplicate keys, numbers beyond the
// float64 range, and (like every decoding in this package) nesting deeper than
// MaxDepth.
func Canonicalize(raw []byte) ([]byte, error) {
	v, err := decodeJSON(raw, MaxDepth)
	if err != nil {
		return nil, err
	}
	return AppendCanonical(nil, v)
}

// AppendCanonical appends the canonical JSON of v to dst. v is a decoded JSON
// value: map[string]any, []any, string, bool, nil, json.Number or float64 (what
// this package's decoder, jsonschema.UnmarshalJSON and encoding/json produce).
func AppendCanonical(dst []byte, v any) ([]byte, error) {
	switch v := v.(type) {
	case nil:
		return append(dst, "null"...), nil
	case bool:
		if v {
			return append(dst, "true"...), nil
		}
		return append(dst, "false"...), nil
	case string:
		return appendCanonicalString(dst, v), nil
	case json.Number:
		f, err := strconv.ParseFloat(string(v), 64)
		if err != nil {
			return nil, fmt.Errorf("canonical JSON: number %q: %w", string(v), err)
		}
		return appendES6Number(dst, f)
	case float64:
		return appendES6Number(dst, v)
	case []any:
		dst = append(dst, '[')
		for i, e := range v {
			if i > 0 {
				dst = append(dst, ',')
			}
			var err error
			if dst, err = AppendCanonical(dst, e); err != nil {
				return nil, err
			}
		}
		return append(dst, ']'), nil
	case map[string]any:
		keys := make([]string, 0, len(v))
		for k := range v {
			keys = append(keys, k)
		}
		slices.SortFunc(keys, compareUTF16)
		dst = append(dst, '{')
		for i, k := range keys {
			if i > 0 {
				dst = append(dst, ',')
			}
			dst = appendCanonicalString(dst, k)
			dst = append(dst, ':')
			var err error
			if dst, err = AppendCanonical(dst, v[k]); err != nil {
				return nil, err
			}
		}
		return append(dst, '}'), nil
	default:
		return nil, fmt.Errorf("canonical JSON: unsupported type %T", v)
	}
}

// appendES6Number writes f as ECMAScript's Number.prototype.toString does
// (RFC 8785 §3.2.2.3): the shortest representation that reads back as the same
// double, in plain notation for 1e-6 <= |f| < 1e21 and exponent notation
// otherwise.
func appendES6Number(dst []byte, f float64) ([]byte, error) {
	if math.IsNaN(f) || math.IsInf(f, 0) {
		return nil, fmt.Errorf("canonical JSON: %v is not a JSON number", f)
	}
	if f == 0 {
		return append(dst, '0'), nil // also for -0
	}
	abs := math.Abs(f)
	if abs >= 1e-6 && abs < 1e21 {
		return strconv.AppendFloat(dst, f, 'f', -1, 64), nil
	}
	start := len(dst)
	dst = strconv.AppendFloat(dst, f, 'e', -1, 64)
	// Go writes e-07 and e+21; ECMAScript writes e-7 and e+21.
	n := len(dst)
	if n-start >= 4 && dst[n-4] == 'e' && dst[n-2] == '0' {
		dst[n-2] = dst[n-1]
		dst = dst[:n-1]
	}
	return dst, nil
}

// appendCanonicalString writes s as JSON.stringify does: only '"', '\\' and
// control characters are escaped, the short escapes where they exist, lowercase
// \u00xx otherwise. Invalid UTF-8 (possible only in strings made by the caller)
// becomes U+FFFD.
func appendCanonicalString(dst []byte, s string) []byte {
	const hex = "0123456789abcdef"
	dst = append(dst, '"')
	start := 0
	for i := 0; i < len(s); {
		c := s[i]
		if c >= 0x20 && c != '"' && c != '\\' && c < utf8.RuneSelf {
			i++
			continue
		}
		if c >= utf8.RuneSelf {
			r, size := utf8.DecodeRuneInString(s[i:])
			if r == utf8.RuneError && size == 1 {
				dst = append(dst, s[start:i]...)
				dst = append(dst, "\uFFFD"...)
				i++
				start = i
				continue
			}
			i += size
			continue
		}
		dst = append(dst, s[start:i]...)
		switch c {
		case '"', '\\':
			dst = append(dst, '\\', c)
		case '\b':
			dst = append(dst, '\\', 'b')
		case '\f':
			dst = append(dst, '\\', 'f')
		case '\n':
			dst = append(dst, '\\', 'n')
		case '\r':
			dst = append(dst, '\\', 'r')
		case '\t':
			dst = append(dst, '\\', 't')
		default:
			dst = append(dst, '\\', 'u', '0', '0', hex[c>>4], hex[c&0xf])
		}
		i++
		start = i
	}
	dst = append(dst, s[start:]...)
	return append(dst, '"')
}

// compareUTF16 orders strings by their UTF-16 code units, as RFC 8785 sorts
// keys. UTF-8 byte order equals code point order, which differs from UTF-16
// order only between supplementary characters (surrogate pairs, 0xD800-0xDFFF)
// and U+E000-U+FFFF; runes are compared after mapping the former to their lead
// surrogate.
func compareUTF16(a, b string) int {
	for a != "" && b != "" {
		ra, sa := utf8.DecodeRuneInString(a)
		rb, sb := utf8.DecodeRuneInString(b)
		if ra != rb {
			ua, ub := utf16Unit(ra), utf16Unit(rb)
			if ua == ub {
				// Both supplementary with the same lead surrogate: the trail
				// surrogates follow code point order.
				return cmp.Compare(ra, rb)
			}
			return cmp.Compare(ua, ub)
		}
		a, b = a[sa:], b[sb:]
	}
	return cmp.Compare(len(a), len(b))
}

// utf16Unit is the first UTF-16 code unit of r.
func utf16Unit(r rune) rune {
	if r >= 0x10000 {
		return 0xD800 + (r-0x10000)>>10
	}
	return r
}
