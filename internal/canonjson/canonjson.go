// Package canonjson writes JSON in one canonical form, so that equal data
// gives equal bytes, and therefore equal hashes, on every instance: the form
// record revisions hash (internal/syncer), form definitions hash
// (internal/forms), the MongoDB store reads back, and whose string escaping the
// pull feed uses. It is RFC 8785, the JSON Canonicalization Scheme (JCS), with
// one deliberate difference in numbers:
//
//   - no whitespace outside strings;
//   - object members sorted by their keys compared as UTF-16 code units (as JCS
//     and JavaScript do; this differs from byte order only for keys holding
//     characters above U+FFFF);
//   - strings with JCS's minimal escaping (AppendString);
//   - literals true, false and null as they are;
//   - numbers keep their exact value. An integer literal (no fraction, no
//     exponent) is written digit for digit, -0 as 0. Any other number is
//     written as its exact decimal value laid out as ECMAScript's
//     Number::toString lays out digits: 1.0 → 1, 1e2 → 100, 4.50 → 4.5,
//     1e21 → 1e+21, 1e-7 → 1e-7, -0.0 → 0.
//
// The number rule and JCS. JCS reads every number as an IEEE double and writes
// the shortest digits that read back as that double. Whenever that keeps the
// number's value (every number a JSON producer writes from a double with the
// shortest round-trip digits, as JavaScript, Go, Python, Java 19+ do) the
// output here is the same, byte for byte. It differs only where JCS would
// change a value: a 20-digit identity number typed into a number field
// (12345678901234567891 stays, JCS writes 12345678901234567000), a decimal with
// more digits than a double holds (3.14159265358979323846 stays), a double
// spelled with more digits than it needs (0.10000000000000001 stays: JCS
// writes 0.1), a value below the double range (1e-400 stays: JCS writes 0).
// Integers of 22 digits or more are written plainly (JCS: 1e+21 notation), so
// that integer literals, which the sync core always kept as written, keep the
// bytes their stored revisions were hashed from. Canonical output is a fixed
// point (canonicalising it again changes nothing), and so is JCS output.
//
// Why: data is stored in its canonical form, and an answer must never be
// stored with other digits than the enumerator entered. Numbers beyond the
// double range (1e400) are refused, as JCS requires: no client that reads
// numbers as doubles could hold them.
package canonjson

import (
	"errors"
	"fmt"
	"slices"
	"strconv"
	"sync"
	"unicode/utf16"
	"unicode/utf8"
)

// ErrInvalidJSON is matched (with errors.Is) by every error Canonical returns for
// input that is not acceptable JSON; the error itself is a *Error.
var ErrInvalidJSON = errors.New("invalid JSON")

// ErrDuplicateKey is matched (with errors.Is) by the *Error Canonical returns
// for an object that names the same key twice. Such input is valid RFC 8259 JSON,
// but parsers disagree on which value counts (first, last, error), so a record
// holding it could mean different things to the server and to an analyst's script:
// it is refused rather than silently reduced to one value.
var ErrDuplicateKey = errors.New("duplicate object key")

// Error says why a document is not acceptable JSON and where.
type Error struct {
	// Offset is the byte offset in the input where the problem was found.
	Offset int
	// Msg says what is wrong, for example "unexpected end of input"; together with
	// Offset it is meant for the detail of a problem document.
	Msg string
	dup bool
}

// Error implements error.
func (e *Error) Error() string {
	return fmt.Sprintf("invalid JSON: %s at byte %d", e.Msg, e.Offset)
}

// Is makes errors.Is match ErrInvalidJSON, and ErrDuplicateKey for duplicates.
func (e *Error) Is(target error) bool {
	return target == ErrInvalidJSON || (e.dup && target == ErrDuplicateKey)
}

// MaxDepth is the deepest nesting of objects and arrays Canonical accepts. Survey
// records nest a few levels; the limit keeps hostile input from costing stack.
const MaxDepth = 1000

// Canonical returns the canonical form of the JSON document raw (see the
// package comment). Any JSON value may be the root.
//
// Canonical refuses, with an *Error matching ErrInvalidJSON: anything that is
// not RFC 8259 JSON, trailing data, invalid UTF-8, escapes of unpaired UTF-16
// surrogates (JCS forbids them; they cannot be represented in UTF-8), numbers
// beyond the double range (1e400) or with a decimal exponent beyond ±2^30,
// nesting deeper than MaxDepth, and duplicate keys (also matching
// ErrDuplicateKey).
func Canonical(raw []byte) ([]byte, error) {
	c := getCanonicalizer()
	defer putCanonicalizer(c)
	out, err := c.canonical(raw)
	if err != nil {
		return nil, err
	}
	return slices.Clone(out), nil
}

// canonicalizer is the reusable state of one canonicalisation. It is pooled so
// that the hot path (every pushed record) allocates only its result.
type canonicalizer struct {
	in      []byte
	pos     int
	out     []byte
	depth   int
	members []member // a stack: each object level uses the tail it appended
	keys    []byte   // unescaped keys that had escapes, referenced by members
	scratch []byte   // the body of the object being reordered
	tmp     []byte   // unescaped string values
}

// member is one object member written to out while its object is open. It
// holds offsets rather than slices: without pointers, sorting members needs no
// GC write barriers.
type member struct {
	keyStart, keyEnd int  // the unescaped key in in, or in keys when escaped
	escaped          bool // the key had escapes: it lives in keys
	start, end       int  // `"key":value` in out
	at               int  // input offset of the key, for error messages
}

func (c *canonicalizer) keyOf(m member) []byte {
	if m.escaped {
		return c.keys[m.keyStart:m.keyEnd]
	}
	return c.in[m.keyStart:m.keyEnd]
}

var canonicalizers = sync.Pool{New: func() any { return new(canonicalizer) }}

func getCanonicalizer() *canonicalizer { return canonicalizers.Get().(*canonicalizer) }

func putCanonicalizer(c *canonicalizer) {
	// A huge document must not pin its buffers in the pool forever.
	const keep = 1 << 20
	if cap(c.out) > keep || cap(c.scratch) > keep || cap(c.tmp) > keep || cap(c.keys) > keep {
		return
	}
	c.in = nil
	c.members = c.members[:0]
	canonicalizers.Put(c)
}

// canonical writes the canonical form of raw into c.out and returns it; the
// result is valid until c is reused.
func (c *canonicalizer) canonical(raw []byte) ([]byte, error) {
	c.in, c.pos, c.depth = raw, 0, 0
	c.out = c.out[:0]
	c.members = c.members[:0]
	c.keys = c.keys[:0]
	if err := c.value(); err != nil {
		return nil, err
	}
	c.skipSpace()
	if c.pos < len(c.in) {
		return nil, c.errf("invalid character %s after top-level value", quoteByte(c.in[c.pos]))
	}
	return c.out, nil
}

func (c *canonicalizer) errf(format string, args ...any) error {
	return &Error{Offset: c.pos, Msg: fmt.Sprintf(format, args...)}
}

func (c *canonicalizer) errEOF() error {
	return &Error{Offset: len(c.in), Msg: "unexpected end of input"}
}

func quoteByte(b byte) string {
	if b >= 0x20 && b < 0x7f {
		return strconv.QuoteRune(rune(b))
	}
	return fmt.Sprintf("0x%02x", b)
}

func (c *canonicalizer) skipSpace() {
	for c.pos < len(c.in) {
		switch c.in[c.pos] {
		case ' ', '\t', '\n', '\r':
			c.pos++
		default:
			return
		}
	}
}

func (c *canonicalizer) value() error {
	c.skipSpace()
	if c.pos >= len(c.in) {
		return c.errEOF()
	}
	switch ch := c.in[c.pos]; {
	case ch == '{':
		return c.object()
	case ch == '[':
		return c.array()
	case ch == '"':
		return c.stringValue()
	case ch == '-' || (ch >= '0' && ch <= '9'):
		return c.number()
	case ch == 't':
		return c.literal("true")
	case ch == 'f':
		return c.literal("false")
	case ch == 'n':
		return c.literal("null")
	default:
		return c.errf("invalid character %s looking for beginning of value", quoteByte(ch))
	}
}

func (c *canonicalizer) literal(word string) error {
	end := c.pos + len(word)
	if end > len(c.in) || string(c.in[c.pos:end]) != word {
		if end > len(c.in) && string(c.in[c.pos:]) == word[:len(c.in)-c.pos] {
			return c.errEOF()
		}
		return c.errf("invalid literal, expected %s", word)
	}
	c.out = append(c.out, word...)
	c.pos = end
	return nil
}

func (c *canonicalizer) enter() error {
	c.depth++
	if c.depth > MaxDepth {
		return c.errf("nesting deeper than %d", MaxDepth)
	}
	return nil
}

func (c *canonicalizer) array() error {
	if err := c.enter(); err != nil {
		return err
	}
	c.pos++ // '['
	c.out = append(c.out, '[')
	c.skipSpace()
	if c.pos < len(c.in) && c.in[c.pos] == ']' {
		c.pos++
		c.out = append(c.out, ']')
		c.depth--
		return nil
	}
	for {
		if err := c.value(); err != nil {
			return err
		}
		c.skipSpace()
		if c.pos >= len(c.in) {
			return c.errEOF()
		}
		switch c.in[c.pos] {
		case ',':
			c.pos++
			c.out = append(c.out, ',')
		case ']':
			c.pos++
			c.out = append(c.out, ']')
			c.depth--
			return nil
		default:
			return c.errf("invalid character %s after array element", quoteByte(c.in[c.pos]))
		}
	}
}

func (c *canonicalizer) object() error {
	if err := c.enter(); err != nil {
		return err
	}
	open := len(c.out)
	c.pos++ // '{'
	c.out = append(c.out, '{')
	c.skipSpace()
	if c.pos < len(c.in) && c.in[c.pos] == '}' {
		c.pos++
		c.out = append(c.out, '}')
		c.depth--
		return nil
	}
	mark := len(c.members)
	sorted := true
	for {
		c.skipSpace()
		if c.pos >= len(c.in) {
			return c.errEOF()
		}
		if c.in[c.pos] != '"' {
			return c.errf("invalid character %s looking for beginning of object key", quoteByte(c.in[c.pos]))
		}
		at, start := c.pos, len(c.out)
		m, err := c.key()
		if err != nil {
			return err
		}
		m.start, m.at = start, at
		c.skipSpace()
		if c.pos >= len(c.in) {
			return c.errEOF()
		}
		if c.in[c.pos] != ':' {
			return c.errf("invalid character %s after object key", quoteByte(c.in[c.pos]))
		}
		c.pos++
		c.out = append(c.out, ':')
		if err := c.value(); err != nil {
			return err
		}
		// Records are usually written in key order by the collector app, so check
		// order on the fly and sort only when needed.
		m.end = len(c.out)
		if n := len(c.members); n > mark {
			switch cmp := CompareKeys(c.keyOf(c.members[n-1]), c.keyOf(m)); {
			case cmp == 0:
				return dupError(at, c.keyOf(m))
			case cmp > 0:
				sorted = false
			}
		}
		c.members = append(c.members, m)
		c.skipSpace()
		if c.pos >= len(c.in) {
			return c.errEOF()
		}
		if ch := c.in[c.pos]; ch == ',' {
			c.pos++
			c.out = append(c.out, ',')
			continue
		} else if ch != '}' {
			return c.errf("invalid character %s after object value", quoteByte(ch))
		}
		c.pos++
		break
	}
	if !sorted {
		if err := c.reorder(open, mark); err != nil {
			return err
		}
	}
	c.out = append(c.out, '}')
	c.members = c.members[:mark]
	c.depth--
	return nil
}

func dupError(at int, key []byte) error {
	return &Error{Offset: at, Msg: "duplicate object key " + strconv.Quote(string(key)), dup: true}
}

// reorder sorts the members of the object opened at out[open] and rewrites its
// body in that order. Nested objects were finished before, so scratch is free.
func (c *canonicalizer) reorder(open, mark int) error {
	ms := c.members[mark:]
	slices.SortStableFunc(ms, func(a, b member) int { return CompareKeys(c.keyOf(a), c.keyOf(b)) })
	for i := 1; i < len(ms); i++ {
		if CompareKeys(c.keyOf(ms[i-1]), c.keyOf(ms[i])) == 0 {
			return dupError(max(ms[i-1].at, ms[i].at), c.keyOf(ms[i]))
		}
	}
	base := open + 1
	c.scratch = append(c.scratch[:0], c.out[base:]...)
	c.out = c.out[:base]
	for i, m := range ms {
		if i > 0 {
			c.out = append(c.out, ',')
		}
		c.out = append(c.out, c.scratch[m.start-base:m.end-base]...)
	}
	return nil
}

// scanString moves past the string starting at c.pos and returns its raw content
// (between the quotes) and whether it holds escapes. Without escapes the content
// is checked to be UTF-8 here; with escapes unescape checks it.
func (c *canonicalizer) scanString() (raw []byte, escaped bool, err error) {
	start := c.pos + 1
	ascii := true
	for i := start; i < len(c.in); {
		// Most bytes are plain ASCII text: skip them with one table lookup each.
		for i < len(c.in) && plain[c.in[i]] {
			i++
		}
		if i >= len(c.in) {
			break
		}
		switch ch := c.in[i]; {
		case ch == '"':
			raw = c.in[start:i]
			if !ascii && !escaped && !utf8.Valid(raw) {
				return nil, false, badUTF8(start, raw)
			}
			c.pos = i + 1
			return raw, escaped, nil
		case ch == '\\':
			escaped = true
			i += 2 // the escaped byte is checked by unescape; this skips an escaped quote
		case ch < 0x20:
			c.pos = i
			return nil, false, c.errf("invalid control character %s in string", quoteByte(ch))
		case ch >= 0x80:
			ascii = false
			i++
		default:
			i++
		}
	}
	return nil, false, c.errEOF()
}

func badUTF8(start int, raw []byte) error {
	off := start
	for len(raw) > 0 {
		r, n := utf8.DecodeRune(raw)
		if r == utf8.RuneError && n <= 1 {
			break
		}
		raw, off = raw[n:], off+n
	}
	return &Error{Offset: off, Msg: "invalid UTF-8 in string"}
}

func (c *canonicalizer) stringValue() error {
	raw, escaped, err := c.scanString()
	if err != nil {
		return err
	}
	if !escaped {
		// Without escapes and control characters the text is already minimal.
		c.out = append(c.out, '"')
		c.out = append(c.out, raw...)
		c.out = append(c.out, '"')
		return nil
	}
	start := c.pos - len(raw) - 1
	c.tmp, err = Unescape(c.tmp[:0], raw, start)
	if err != nil {
		return err
	}
	c.out = AppendString(c.out, c.tmp)
	return nil
}

// key is stringValue for object keys: it also returns a member naming the
// unescaped key, which the members sort on.
func (c *canonicalizer) key() (member, error) {
	raw, escaped, err := c.scanString()
	if err != nil {
		return member{}, err
	}
	if !escaped {
		c.out = append(c.out, '"')
		c.out = append(c.out, raw...)
		c.out = append(c.out, '"')
		return member{keyStart: c.pos - 1 - len(raw), keyEnd: c.pos - 1}, nil
	}
	from := len(c.keys)
	c.keys, err = Unescape(c.keys, raw, c.pos-len(raw)-1)
	if err != nil {
		return member{}, err
	}
	c.out = AppendString(c.out, c.keys[from:])
	return member{keyStart: from, keyEnd: len(c.keys), escaped: true}, nil
}

// Unescape appends the text of a JSON string's raw content (between the quotes)
// to dst, refusing what Canonical refuses in a string (bad escapes, unpaired
// surrogates, invalid UTF-8). start is the input offset of raw, for the
// *Error's Offset.
func Unescape(dst, raw []byte, start int) ([]byte, error) {
	for i := 0; i < len(raw); {
		ch := raw[i]
		if ch != '\\' {
			j := i + 1
			for j < len(raw) && raw[j] != '\\' {
				j++
			}
			if !utf8.Valid(raw[i:j]) {
				return nil, badUTF8(start+i, raw[i:j])
			}
			dst = append(dst, raw[i:j]...)
			i = j
			continue
		}
		if i+1 >= len(raw) {
			return nil, &Error{Offset: start + i, Msg: "invalid escape"}
		}
		switch e := raw[i+1]; e {
		case '"', '\\', '/':
			dst = append(dst, e)
		case 'b':
			dst = append(dst, '\b')
		case 'f':
			dst = append(dst, '\f')
		case 'n':
			dst = append(dst, '\n')
		case 'r':
			dst = append(dst, '\r')
		case 't':
			dst = append(dst, '\t')
		case 'u':
			r, ok := hex4(raw[i+2:])
			if !ok {
				return nil, &Error{Offset: start + i, Msg: `invalid \u escape`}
			}
			switch {
			case utf16.IsSurrogate(r) && r < 0xdc00:
				// A high surrogate must be followed by an escaped low one.
				lo, ok := rune(0), false
				if i+12 <= len(raw) && raw[i+6] == '\\' && raw[i+7] == 'u' {
					lo, ok = hex4(raw[i+8:])
				}
				if !ok || lo < 0xdc00 || lo > 0xdfff {
					return nil, &Error{Offset: start + i, Msg: "unpaired UTF-16 surrogate in string"}
				}
				dst = utf8.AppendRune(dst, utf16.DecodeRune(r, lo))
				i += 6
			case utf16.IsSurrogate(r):
				return nil, &Error{Offset: start + i, Msg: "unpaired UTF-16 surrogate in string"}
			default:
				dst = utf8.AppendRune(dst, r)
			}
			i += 4
		default:
			return nil, &Error{Offset: start + i, Msg: "invalid escape " + quoteByte(e)}
		}
		i += 2
	}
	return dst, nil
}

func hex4(b []byte) (rune, bool) {
	if len(b) < 4 {
		return 0, false
	}
	var r rune
	for _, ch := range b[:4] {
		var d byte
		switch {
		case ch >= '0' && ch <= '9':
			d = ch - '0'
		case ch >= 'a' && ch <= 'f':
			d = ch - 'a' + 10
		case ch >= 'A' && ch <= 'F':
			d = ch - 'A' + 10
		default:
			return 0, false
		}
		r = r<<4 | rune(d)
	}
	return r, true
}

// CompareKeys orders object keys as JCS does: by their UTF-16 code units. For
// valid UTF-8 that is byte order except that characters above U+FFFF (surrogate
// pairs, D800–DFFF) sort before U+E000–U+FFFF.
func CompareKeys[T ~string | ~[]byte](a, b T) int {
	n := min(len(a), len(b))
	for i := 0; i < n; i++ {
		x, y := a[i], b[i]
		if x == y {
			continue
		}
		if x < 0x80 && y < 0x80 {
			return int(x) - int(y)
		}
		// Back up to the start of the differing character; the prefix is shared.
		for i > 0 && !utf8.RuneStart(a[i]) {
			i--
		}
		ra, _ := decodeRune(a[i:])
		rb, _ := decodeRune(b[i:])
		return int(utf16Order(ra)) - int(utf16Order(rb))
	}
	return len(a) - len(b)
}

// utf16Order maps a character to a number that sorts as its UTF-16 encoding.
func utf16Order(r rune) rune {
	switch {
	case r >= 0x10000:
		return r - 0x10000 + 0xd800 // high surrogates first
	case r >= 0xe000:
		return r + 0x100000 // after every surrogate pair
	default:
		return r
	}
}

func (c *canonicalizer) number() error {
	start := c.pos
	end, integer, ok := scanNumber(c.in, start)
	if !ok {
		c.pos = end
		if end >= len(c.in) {
			return c.errEOF()
		}
		return c.errf("invalid character %s in number", quoteByte(c.in[end]))
	}
	out, err := appendNumber(c.out, c.in[start:end], integer)
	if err != nil {
		return c.errf("number %s out of range", c.in[start:end])
	}
	c.out, c.pos = out, end
	return nil
}
