package canonjson

import (
	"unicode/utf8"
)

// AppendString appends s as a JSON string escaped as RFC 8785 (and
// JSON.stringify) escape it: '"' and '\\' with a backslash, the control
// characters as \b \t \n \f \r where those exist and \u00xx (lowercase hex)
// otherwise, everything else as it is, including '/', DEL, U+2028 and HTML's
// <, > and &. Invalid UTF-8, which only a Go string can hold, becomes U+FFFD
// as in encoding/json.
//
// It is the one string escaper of the server: the canonical form of record
// data, the MongoDB store's JSON and the pull feed's records all use it.
// Unlike encoding/json it does not escape <, > and & for HTML: every answer is
// served as application/json with X-Content-Type-Options: nosniff, where no
// browser reads it as HTML, and the record data in the same answers is written
// unescaped anyway.
func AppendString[T ~string | ~[]byte](dst []byte, s T) []byte {
	const hex = "0123456789abcdef"
	dst = append(dst, '"')
	start := 0
	for i := 0; i < len(s); {
		c := s[i]
		if plain[c] {
			i++
			continue
		}
		if c >= utf8.RuneSelf {
			r, size := decodeRune(s[i:])
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

// plain marks the bytes a JSON string holds as they are, without a second
// look: printable ASCII and DEL, but '"' and '\\'.
var plain = func() (t [256]bool) {
	for b := 0x20; b < utf8.RuneSelf; b++ {
		t[b] = b != '"' && b != '\\'
	}
	return t
}()

// decodeRune is utf8.DecodeRune for strings and byte slices alike.
func decodeRune[T ~string | ~[]byte](s T) (rune, int) {
	var b [utf8.UTFMax]byte
	n := copy(b[:], s[:min(len(s), utf8.UTFMax)])
	return utf8.DecodeRune(b[:n])
}
