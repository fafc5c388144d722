package forms

import (
	"encoding/json"
	"fmt"
	"slices"
	"strconv"
	"strings"
	"sync"
	"unicode/utf16"
	"unicode/utf8"
)

// This file is a small strict JSON decoder. It exists instead of encoding/json
// because every pushed record goes through it, and because the values it yields
// must be safe to hand to the schema validator:
//
//   - It is about twice as fast as json.Decoder with UseNumber into any, which
//     matters at tens of thousands of records per second.
//   - It yields exactly what jsonschema v6 expects: map[string]any, []any, string,
//     bool, nil and json.Number (exact numbers, so "integer" and multipleOf are
//     decided on the digits the client sent, not on a rounded float64).
//   - It refuses duplicate object keys. With duplicates the validator could see one
//     value and the store another (I-JSON, RFC 7493, forbids them; RFC 8785
//     canonical JSON assumes I-JSON).
//   - It bounds nesting depth, and refuses numbers the validator would choke on:
//     jsonschema converts numbers to big.Rat, and a literal such as 1e-999999 or
//     a thousand digits costs milliseconds to seconds there, while one beyond the
//     float64 range makes big.Rat fail (a nil *big.Rat the validator would
//     dereference).
//
// Strings are decoded like encoding/json does it (invalid UTF-8 and lone
// surrogates become U+FFFD), so a value means the same here as in the rest of
// the server.

// maxNumberLen bounds the length of a number literal. No answer of a form needs
// more digits than a float64 holds (17); the margin is for clients that print
// trailing zeros.
const maxNumberLen = 100

// maxExponent bounds the decimal exponent written in a number literal.
const maxExponent = 400

// jsonErrorKind classifies a decoding failure.
type jsonErrorKind int

const (
	errSyntax    jsonErrorKind = iota // not JSON at all
	errDepth                          // nested deeper than allowed
	errDuplicate                      // an object repeats a key
	errNumber                         // a number outside what we accept
)

// jsonError is a decoding failure. Offset is the byte where it was detected;
// Path (a JSON pointer) is set for the failures that are not syntax errors.
type jsonError struct {
	Kind   jsonErrorKind
	Offset int
	Path   string
	Msg    string
	tokens []string // Path under construction, innermost first
}

func (e *jsonError) Error() string {
	if e.Kind == errSyntax {
		return fmt.Sprintf("%s at byte %d", e.Msg, e.Offset)
	}
	return fmt.Sprintf("%s at %q (byte %d)", e.Msg, e.Path, e.Offset)
}

// maxInterned bounds the strings a definition interns, and maxInternLen their
// length: enough for the property names and choice values of any real form.
const (
	maxInterned  = 8192
	maxInternLen = 64
)

// decoder holds the state of one decodeJSON call.
type decoder struct {
	data     []byte
	pos      int
	depth    int
	maxDepth int
	buf      []byte // scratch for strings with escapes
	// intern maps strings a record is likely to contain (property names and
	// choice values of its schema) to one shared copy, already boxed in an
	// interface: a string found there costs no allocation at all. nil for no
	// interning.
	intern map[string]any
}

// decodeJSON decodes one JSON value that must fill data (surrounding whitespace
// allowed). Objects and arrays may nest at most maxDepth levels. Every error is a
// *jsonError.
func decodeJSON(data []byte, maxDepth int) (any, error) {
	return decodeJSONIntern(data, maxDepth, nil)
}

// decodeJSONIntern is decodeJSON with an intern table (see decoder.intern).
func decodeJSONIntern(data []byte, maxDepth int, intern map[string]any) (any, error) {
	d := decoder{data: data, maxDepth: maxDepth, intern: intern}
	v, err := d.value()
	if err != nil {
		return nil, finish(err)
	}
	d.skipSpace()
	if d.pos < len(d.data) {
		return nil, d.syntax("invalid character %s after top-level value", quoteByte(d.data[d.pos]))
	}
	return v, nil
}

// finish turns the path tokens gathered while the recursion unwound into Path.
func finish(err *jsonError) error {
	if err.Kind != errSyntax {
		var sb strings.Builder
		for _, tok := range slices.Backward(err.tokens) {
			sb.WriteByte('/')
			sb.WriteString(escapePointer(tok))
		}
		err.Path = sb.String()
	}
	err.tokens = nil
	return err
}

func (d *decoder) syntax(format string, args ...any) *jsonError {
	return &jsonError{Kind: errSyntax, Offset: d.pos, Msg: fmt.Sprintf(format, args...)}
}

func (d *decoder) unexpectedEnd() *jsonError {
	return &jsonError{Kind: errSyntax, Offset: len(d.data), Msg: "unexpected end of input"}
}

func quoteByte(c byte) string {
	if c < utf8.RuneSelf {
		return strconv.QuoteRune(rune(c))
	}
	return fmt.Sprintf("byte 0x%02x", c)
}

func (d *decoder) skipSpace() {
	for d.pos < len(d.data) {
		switch d.data[d.pos] {
		case ' ', '\t', '\n', '\r':
			d.pos++
		default:
			return
		}
	}
}

func (d *decoder) value() (any, *jsonError) {
	d.skipSpace()
	if d.pos >= len(d.data) {
		return nil, d.unexpectedEnd()
	}
	switch c := d.data[d.pos]; {
	case c == '{':
		return d.object()
	case c == '[':
		return d.array()
	case c == '"':
		s, boxed, err := d.string()
		if err != nil {
			return nil, err
		}
		if boxed != nil {
			return boxed, nil
		}
		return s, nil
	case c == 't':
		return true, d.literal("true")
	case c == 'f':
		return false, d.literal("false")
	case c == 'n':
		return nil, d.literal("null")
	case c == '-' || (c >= '0' && c <= '9'):
		return d.number()
	default:
		return nil, d.syntax("invalid character %s looking for beginning of value", quoteByte(c))
	}
}

func (d *decoder) literal(word string) *jsonError {
	for i := 0; i < len(word); i++ {
		if d.pos >= len(d.data) {
			return d.unexpectedEnd()
		}
		if d.data[d.pos] != word[i] {
			return d.syntax("invalid character %s in literal %s", quoteByte(d.data[d.pos]), word)
		}
		d.pos++
	}
	return nil
}

func (d *decoder) enter() *jsonError {
	d.depth++
	if d.depth > d.maxDepth {
		return &jsonError{Kind: errDepth, Offset: d.pos, Msg: fmt.Sprintf("nested deeper than %d levels", d.maxDepth)}
	}
	return nil
}

func (d *decoder) object() (any, *jsonError) {
	if err := d.enter(); err != nil {
		return nil, err
	}
	d.pos++ // '{'
	m := make(map[string]any)
	d.skipSpace()
	if d.pos < len(d.data) && d.data[d.pos] == '}' {
		d.pos++
		d.depth--
		return m, nil
	}
	for {
		d.skipSpace()
		if d.pos >= len(d.data) {
			return nil, d.unexpectedEnd()
		}
		if d.data[d.pos] != '"' {
			return nil, d.syntax("invalid character %s looking for beginning of object key string", quoteByte(d.data[d.pos]))
		}
		keyStart := d.pos
		key, _, err := d.string()
		if err != nil {
			return nil, err
		}
		d.skipSpace()
		if d.pos >= len(d.data) {
			return nil, d.unexpectedEnd()
		}
		if d.data[d.pos] != ':' {
			return nil, d.syntax("invalid character %s after object key", quoteByte(d.data[d.pos]))
		}
		d.pos++
		v, err := d.value()
		if err != nil {
			if err.Kind != errSyntax {
				err.tokens = append(err.tokens, key)
			}
			return nil, err
		}
		if _, dup := m[key]; dup {
			return nil, &jsonError{Kind: errDuplicate, Offset: keyStart, Msg: "duplicate object key", tokens: []string{key}}
		}
		m[key] = v
		d.skipSpace()
		if d.pos >= len(d.data) {
			return nil, d.unexpectedEnd()
		}
		switch d.data[d.pos] {
		case ',':
			d.pos++
		case '}':
			d.pos++
			d.depth--
			return m, nil
		default:
			return nil, d.syntax("invalid character %s after object key:value pair", quoteByte(d.data[d.pos]))
		}
	}
}

func (d *decoder) array() (any, *jsonError) {
	if err := d.enter(); err != nil {
		return nil, err
	}
	d.pos++ // '['
	arr := []any{}
	d.skipSpace()
	if d.pos < len(d.data) && d.data[d.pos] == ']' {
		d.pos++
		d.depth--
		return arr, nil
	}
	for {
		v, err := d.value()
		if err != nil {
			if err.Kind != errSyntax {
				err.tokens = append(err.tokens, strconv.Itoa(len(arr)))
			}
			return nil, err
		}
		arr = append(arr, v)
		d.skipSpace()
		if d.pos >= len(d.data) {
			return nil, d.unexpectedEnd()
		}
		switch d.data[d.pos] {
		case ',':
			d.pos++
		case ']':
			d.pos++
			d.depth--
			return arr, nil
		default:
			return nil, d.syntax("invalid character %s after array element", quoteByte(d.data[d.pos]))
		}
	}
}

// string decodes the string starting at d.pos (a '"'). The common case, plain
// valid UTF-8 without escapes, costs one scan and one allocation, or none when
// the string is interned: then boxed holds it, ready to be returned as any.
func (d *decoder) string() (s string, boxed any, err *jsonError) {
	start := d.pos + 1
	i := start
	for i < len(d.data) {
		c := d.data[i]
		switch {
		case c == '"':
			d.pos = i + 1
			if d.intern != nil {
				// The conversion in a map index does not allocate.
				if b, ok := d.intern[string(d.data[start:i])]; ok {
					return b.(string), b, nil
				}
			}
			return string(d.data[start:i]), nil, nil
		case c == '\\':
			s, err := d.slowString(start, i)
			return s, nil, err
		case c < 0x20:
			d.pos = i
			return "", nil, d.syntax("invalid character %s in string literal", quoteByte(c))
		case c < utf8.RuneSelf:
			i++
		default:
			r, size := utf8.DecodeRune(d.data[i:])
			if r == utf8.RuneError && size == 1 {
				s, err := d.slowString(start, i)
				return s, nil, err
			}
			i += size
		}
	}
	return "", nil, d.unexpectedEnd()
}

// slowString finishes a string that has escapes or invalid UTF-8; data[start:i]
// is already known to be plain.
func (d *decoder) slowString(start, i int) (string, *jsonError) {
	b := append(d.buf[:0], d.data[start:i]...)
	for i < len(d.data) {
		c := d.data[i]
		switch {
		case c == '"':
			d.pos = i + 1
			d.buf = b[:0]
			return string(b), nil
		case c < 0x20:
			d.pos = i
			return "", d.syntax("invalid character %s in string literal", quoteByte(c))
		case c == '\\':
			if i+1 >= len(d.data) {
				return "", d.unexpectedEnd()
			}
			switch e := d.data[i+1]; e {
			case '"', '\\', '/':
				b = append(b, e)
				i += 2
			case 'b':
				b = append(b, '\b')
				i += 2
			case 'f':
				b = append(b, '\f')
				i += 2
			case 'n':
				b = append(b, '\n')
				i += 2
			case 'r':
				b = append(b, '\r')
				i += 2
			case 't':
				b = append(b, '\t')
				i += 2
			case 'u':
				r, ok := hex4(d.data, i+2)
				if !ok {
					d.pos = i
					if i+6 > len(d.data) && hexPrefix(d.data[i+2:]) {
						return "", d.unexpectedEnd()
					}
					return "", d.syntax("invalid escape in string literal")
				}
				i += 6
				if utf16.IsSurrogate(r) {
					// A valid pair becomes one rune; anything else is U+FFFD, and a
					// following escape is read on its own (as encoding/json does).
					if i+1 < len(d.data) && d.data[i] == '\\' && d.data[i+1] == 'u' {
						if r2, ok := hex4(d.data, i+2); ok {
							if dec := utf16.DecodeRune(r, r2); dec != utf8.RuneError {
								b = utf8.AppendRune(b, dec)
								i += 6
								continue
							}
						}
					}
					r = utf8.RuneError
				}
				b = utf8.AppendRune(b, r)
			default:
				d.pos = i
				return "", d.syntax("invalid escape %s in string literal", quoteByte(e))
			}
		case c < utf8.RuneSelf:
			b = append(b, c)
			i++
		default:
			r, size := utf8.DecodeRune(d.data[i:])
			if r == utf8.RuneError && size == 1 {
				b = utf8.AppendRune(b, utf8.RuneError)
			} else {
				b = append(b, d.data[i:i+size]...)
			}
			i += size
		}
	}
	return "", d.unexpectedEnd()
}

// hex4 reads the 4 hex digits at data[i:i+4].
func hex4(data []byte, i int) (rune, bool) {
	if i+4 > len(data) {
		return 0, false
	}
	var r rune
	for _, c := range data[i : i+4] {
		switch {
		case c >= '0' && c <= '9':
			c -= '0'
		case c >= 'a' && c <= 'f':
			c = c - 'a' + 10
		case c >= 'A' && c <= 'F':
			c = c - 'A' + 10
		default:
			return 0, false
		}
		r = r<<4 | rune(c)
	}
	return r, true
}

// hexPrefix reports whether b (shorter than 4 bytes) could start a \u escape.
func hexPrefix(b []byte) bool {
	for _, c := range b {
		if !(c >= '0' && c <= '9' || c >= 'a' && c <= 'f' || c >= 'A' && c <= 'F') {
			return false
		}
	}
	return true
}

func isDigit(c byte) bool { return c >= '0' && c <= '9' }

// number scans a number literal by the JSON grammar and checks it against the
// limits described at the top of this file.
func (d *decoder) number() (any, *jsonError) {
	start := d.pos
	i := d.pos
	n := len(d.data)
	if d.data[i] == '-' {
		i++
	}
	switch {
	case i >= n:
		d.pos = i
		return nil, d.unexpectedEnd()
	case d.data[i] == '0':
		i++
	case d.data[i] >= '1' && d.data[i] <= '9':
		for i < n && isDigit(d.data[i]) {
			i++
		}
	default:
		d.pos = i
		return nil, d.syntax("invalid character %s in numeric literal", quoteByte(d.data[i]))
	}
	if i < n && d.data[i] == '.' {
		i++
		if i >= n {
			d.pos = i
			return nil, d.unexpectedEnd()
		}
		if !isDigit(d.data[i]) {
			d.pos = i
			return nil, d.syntax("invalid character %s after decimal point in numeric literal", quoteByte(d.data[i]))
		}
		for i < n && isDigit(d.data[i]) {
			i++
		}
	}
	hasExp := false
	if i < n && (d.data[i] == 'e' || d.data[i] == 'E') {
		hasExp = true
		i++
		if i < n && (d.data[i] == '+' || d.data[i] == '-') {
			i++
		}
		if i >= n {
			d.pos = i
			return nil, d.unexpectedEnd()
		}
		if !isDigit(d.data[i]) {
			d.pos = i
			return nil, d.syntax("invalid character %s in exponent of numeric literal", quoteByte(d.data[i]))
		}
		exp := 0
		for i < n && isDigit(d.data[i]) {
			if exp <= maxExponent {
				exp = exp*10 + int(d.data[i]-'0')
			}
			i++
		}
		if exp > maxExponent {
			return nil, &jsonError{Kind: errNumber, Offset: start, Msg: "number exponent out of range"}
		}
	}
	d.pos = i
	lit := d.data[start:i]
	if len(lit) > maxNumberLen {
		return nil, &jsonError{Kind: errNumber, Offset: start, Msg: fmt.Sprintf("number longer than %d characters", maxNumberLen)}
	}
	if n := smallInt(lit); n >= 0 {
		return smallNumbers()[n], nil
	}
	s := string(lit)
	if hasExp {
		// Without an exponent a literal this short cannot leave the float64 range.
		if _, err := strconv.ParseFloat(s, 64); err != nil {
			return nil, &jsonError{Kind: errNumber, Offset: start, Msg: "number out of range"}
		}
	}
	return json.Number(s), nil
}

// smallNumbers holds json.Number("0") … json.Number("999") boxed in
// interfaces, shared by all decoders: answers on scales, ages and counts are
// such numbers, and boxing each would cost an allocation. Computed once; never
// changed.
var smallNumbers = sync.OnceValue(func() *[1000]any {
	var t [1000]any
	for i := range t {
		t[i] = json.Number(strconv.Itoa(i))
	}
	return &t
})

// smallInt returns the value of lit if it is a plain integer literal below
// 1000 (as JSON writes it: no sign, no leading zero), else -1.
func smallInt(lit []byte) int {
	if len(lit) == 0 || len(lit) > 3 || (lit[0] == '0' && len(lit) > 1) {
		return -1
	}
	n := 0
	for _, c := range lit {
		if !isDigit(c) {
			return -1
		}
		n = n*10 + int(c-'0')
	}
	return n
}

// escapePointer escapes one JSON pointer token (RFC 6901).
func escapePointer(tok string) string {
	if !strings.ContainsAny(tok, "~/") {
		return tok
	}
	tok = strings.ReplaceAll(tok, "~", "~0")
	return strings.ReplaceAll(tok, "/", "~1")
}

// unescapePointer undoes escapePointer.
func unescapePointer(tok string) string {
	if !strings.Contains(tok, "~") {
		return tok
	}
	tok = strings.ReplaceAll(tok, "~1", "/")
	return strings.ReplaceAll(tok, "~0", "~")
}
