package syncer

import (
	"errors"
	"fmt"
	"math"
	"slices"
	"strconv"
	"sync"
	"unicode/utf16"
	"unicode/utf8"
)

// ErrInvalidJSON is matched (with errors.Is) by every error Canonical returns for
// input that is not acceptable JSON; the error itself is a *JSONError.
var ErrInvalidJSON = errors.New("invalid JSON")

// ErrDuplicateKey is matched (with errors.Is) by the *JSONError Canonical returns
// for an object that names the same key twice. Such input is valid RFC 8259 JSON,
// but parsers disagree on which value counts (first, last, error), so a record
// holding it could mean different things to the server and to an analyst's script:
// it is refused rather than silently reduced to one value.
var ErrDuplicateKey = errors.New("duplicate object key")

// JSONError says why a document is not acceptable JSON and where.
type JSONError struct {
	// Offset is the byte offset in the input where the problem was found.
	Offset int
	// Msg says what is wrong, for example "unexpected end of input"; together with
	// Offset it is meant for the detail of a problem document.
	Msg string
	dup bool
}

// Error implements error.
func (e *JSONError) Error() string {
	return fmt.Sprintf("invalid JSON: %s at byte %d", e.Msg, e.Offset)
}

// Is makes errors.Is match ErrInvalidJSON, and ErrDuplicateKey for duplicates.
func (e *JSONError) Is(target error) bool {
	return target == ErrInvalidJSON || (e.dup && target == ErrDuplicateKey)
}

// MaxDepth is the deepest nesting of objects and arrays Canonical accepts. Survey
// records nest a few levels; the limit keeps hostile input from costing stack.
const MaxDepth = 1000

// Canonical returns the canonical form of the JSON document raw, after RFC 8785
// (JSON Canonicalization Scheme), so that equal data gives equal bytes and
// therefore equal revision hashes on every instance:
//
//   - no whitespace outside strings;
//   - object members sorted by their keys compared as UTF-16 code units (as JCS
//     and JavaScript do; this differs from byte order only for keys holding
//     characters above U+FFFF);
//   - strings with minimal escaping: only '"', '\\' and control characters are
//     escaped, using \b \t \n \f \r where they exist and \u00xx (lowercase hex)
//     otherwise; everything else, including '/', DEL and U+2028, is written as
//     UTF-8;
//   - numbers with a fraction or an exponent are read as IEEE 754 doubles and
//     written as ECMAScript's Number.prototype.toString does (JCS): 1.0 → 1,
//     1e2 → 100, 1e21 → 1e+21, 1e-7 → 1e-7, -0.0 → 0;
//   - integer literals (no fraction, no exponent) are kept digit for digit, -0
//     written as 0. This is the one deliberate difference from JCS, which would
//     round integers beyond 2^53 to the nearest double: a household id or phone
//     number typed as a number must never change. Up to 2^53 every spelling of
//     an integer gives the same bytes; beyond it 12345678901234567891 and
//     1.2345678901234567891e19 canonicalise differently (the second is a double).
//
// Canonical refuses, with a *JSONError matching ErrInvalidJSON: anything that is
// not RFC 8259 JSON, trailing data, invalid UTF-8, escapes of unpaired UTF-16
// surrogates (JCS forbids them; they cannot be represented in UTF-8), numbers
// beyond the double range (1e400), nesting deeper than MaxDepth, and duplicate
// keys (also matching ErrDuplicateKey). Numbers below the double range (1e-400)
// become 0, as in every JSON parser that reads doubles. Any JSON value may be
// the root.
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
	return &JSONError{Offset: c.pos, Msg: fmt.Sprintf(format, args...)}
}

func (c *canonicalizer) errEOF() error {
	return &JSONError{Offset: len(c.in), Msg: "unexpected end of input"}
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
			switch cmp := compareKeys(c.keyOf(c.members[n-1]), c.keyOf(m)); {
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
	return &JSONError{Offset: at, Msg: "duplicate object key " + strconv.Quote(string(key)), dup: true}
}

// reorder sorts the members of the object opened at out[open] and rewrites its
// body in that order. Nested objects were finished before, so scratch is free.
func (c *canonicalizer) reorder(open, mark int) error {
	ms := c.members[mark:]
	slices.SortStableFunc(ms, func(a, b member) int { return compareKeys(c.keyOf(a), c.keyOf(b)) })
	for i := 1; i < len(ms); i++ {
		if compareKeys(c.keyOf(ms[i-1]), c.keyOf(ms[i])) == 0 {
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

// plain marks the bytes scanString passes over without a second look: ASCII
// other than control characters, '"' and '\\'.
var plain = func() (t [256]bool) {
	for b := 0x20; b < 0x80; b++ {
		t[b] = b != '"' && b != '\\'
	}
	return t
}()

func badUTF8(start int, raw []byte) error {
	off := start
	for len(raw) > 0 {
		r, n := utf8.DecodeRune(raw)
		if r == utf8.RuneError && n <= 1 {
			break
		}
		raw, off = raw[n:], off+n
	}
	return &JSONError{Offset: off, Msg: "invalid UTF-8 in string"}
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
	c.tmp, err = unescape(c.tmp[:0], raw, start)
	if err != nil {
		return err
	}
	c.out = appendQuoted(c.out, c.tmp)
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
	c.keys, err = unescape(c.keys, raw, c.pos-len(raw)-1)
	if err != nil {
		return member{}, err
	}
	c.out = appendQuoted(c.out, c.keys[from:])
	return member{keyStart: from, keyEnd: len(c.keys), escaped: true}, nil
}

// unescape appends the text of a JSON string's raw content to dst. start is the
// input offset of raw, for error messages.
func unescape(dst, raw []byte, start int) ([]byte, error) {
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
			return nil, &JSONError{Offset: start + i, Msg: "invalid escape"}
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
				return nil, &JSONError{Offset: start + i, Msg: `invalid \u escape`}
			}
			switch {
			case utf16.IsSurrogate(r) && r < 0xdc00:
				// A high surrogate must be followed by an escaped low one.
				lo, ok := rune(0), false
				if i+12 <= len(raw) && raw[i+6] == '\\' && raw[i+7] == 'u' {
					lo, ok = hex4(raw[i+8:])
				}
				if !ok || lo < 0xdc00 || lo > 0xdfff {
					return nil, &JSONError{Offset: start + i, Msg: "unpaired UTF-16 surrogate in string"}
				}
				dst = utf8.AppendRune(dst, utf16.DecodeRune(r, lo))
				i += 6
			case utf16.IsSurrogate(r):
				return nil, &JSONError{Offset: start + i, Msg: "unpaired UTF-16 surrogate in string"}
			default:
				dst = utf8.AppendRune(dst, r)
			}
			i += 4
		default:
			return nil, &JSONError{Offset: start + i, Msg: "invalid escape " + quoteByte(e)}
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

// appendQuoted appends s as a JSON string with JCS's minimal escaping.
func appendQuoted(dst, s []byte) []byte {
	const hex = "0123456789abcdef"
	dst = append(dst, '"')
	start := 0
	for i, ch := range s {
		if ch >= 0x20 && ch != '"' && ch != '\\' {
			continue
		}
		dst = append(dst, s[start:i]...)
		switch ch {
		case '"', '\\':
			dst = append(dst, '\\', ch)
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
			dst = append(dst, '\\', 'u', '0', '0', hex[ch>>4], hex[ch&0xf])
		}
		start = i + 1
	}
	dst = append(dst, s[start:]...)
	return append(dst, '"')
}

func (c *canonicalizer) number() error {
	in, start := c.in, c.pos
	i := start
	digits := func() bool {
		j := i
		for i < len(in) && in[i] >= '0' && in[i] <= '9' {
			i++
		}
		return i > j
	}
	if in[i] == '-' {
		i++
	}
	switch {
	case i >= len(in):
		return c.errEOF()
	case in[i] == '0':
		i++
	case in[i] >= '1' && in[i] <= '9':
		digits()
	default:
		c.pos = i
		return c.errf("invalid character %s in number", quoteByte(in[i]))
	}
	integer := true
	if i < len(in) && in[i] == '.' {
		integer = false
		i++
		if !digits() {
			return c.numberEnd(i)
		}
	}
	if i < len(in) && (in[i] == 'e' || in[i] == 'E') {
		integer = false
		i++
		if i < len(in) && (in[i] == '+' || in[i] == '-') {
			i++
		}
		if !digits() {
			return c.numberEnd(i)
		}
	}
	lit := in[start:i]
	c.pos = i
	if integer {
		if len(lit) == 2 && lit[0] == '-' && lit[1] == '0' {
			lit = lit[1:]
		}
		c.out = append(c.out, lit...)
		return nil
	}
	f, err := strconv.ParseFloat(string(lit), 64)
	if err != nil {
		c.pos = start
		return c.errf("number %s out of range", lit)
	}
	c.out = appendES6(c.out, f)
	return nil
}

func (c *canonicalizer) numberEnd(i int) error {
	c.pos = i
	if i >= len(c.in) {
		return c.errEOF()
	}
	return c.errf("invalid character %s in number", quoteByte(c.in[i]))
}

// appendES6 appends f as ECMAScript's Number.prototype.toString writes it: the
// shortest digits that read back as f, fixed notation from 1e-6 up to 1e21, and
// exponent notation without leading exponent zeros outside.
func appendES6(dst []byte, f float64) []byte {
	if f == 0 {
		return append(dst, '0') // also for -0
	}
	format := byte('f')
	if abs := math.Abs(f); abs < 1e-6 || abs >= 1e21 {
		format = 'e'
	}
	dst = strconv.AppendFloat(dst, f, format, -1, 64)
	if format == 'e' {
		// Go writes e-07 where ECMAScript writes e-7.
		if n := len(dst); n >= 4 && dst[n-4] == 'e' && dst[n-3] == '-' && dst[n-2] == '0' {
			dst[n-2] = dst[n-1]
			dst = dst[:n-1]
		}
	}
	return dst
}

// compareKeys orders object keys as JCS does: by their UTF-16 code units. For
// valid UTF-8 that is byte order except that characters above U+FFFF (surrogate
// pairs, D800–DFFF) sort before U+E000–U+FFFF.
func compareKeys(a, b []byte) int {
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
		ra, _ := utf8.DecodeRune(a[i:])
		rb, _ := utf8.DecodeRune(b[i:])
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
