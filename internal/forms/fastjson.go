package forms

import (
	"bytes"
	"cmp"
	"encoding/json"
	"math"
	"math/big"
	"math/bits"
	"strconv"
	"unicode/utf8"
)

// This file holds the byte-level side of the fast path (fast.go): a scanner
// that accepts a document only when decodeJSON would, walker helpers that move
// over a document the scanner accepted, and exact decimal numbers.

// scanner checks that a document is one the strict decoder accepts, without
// decoding it, and records in ends where each value and key ends. It is
// stricter than the decoder where that keeps it simple: invalid UTF-8, escapes
// in object keys and long unsorted objects make it refuse, and the caller then
// takes the library path, which decides.
type scanner struct {
	doc
	pos   int
	depth int
	// keys holds the key spans of the objects being scanned, innermost last,
	// while they fit: unsorted keys are compared with them pairwise.
	keys  [64][2]int32
	nkeys int
}

// doc is a document with the index the scanner builds: ends[i] is where the
// value or key that starts at byte i ends. Only value and key starts are set.
type doc struct {
	data []byte
	ends []int32
}

// maxUnsortedKeys bounds the keys of an object whose keys are not in strictly
// increasing byte order, which the scanner compares pairwise.
const maxUnsortedKeys = 256

// document scans the whole input: one value and whitespace around it.
func (s *scanner) document() bool {
	if len(s.data) > math.MaxInt32 || !s.value() {
		return false
	}
	s.ws()
	return s.pos == len(s.data)
}

// ws skips whitespace.
func (s *scanner) ws() {
	for s.pos < len(s.data) {
		switch s.data[s.pos] {
		case ' ', '\t', '\n', '\r':
			s.pos++
		default:
			return
		}
	}
}

// more skips whitespace and reports whether a byte follows.
func (s *scanner) more() bool {
	s.ws()
	return s.pos < len(s.data)
}

// value scans the value at pos and records its end.
func (s *scanner) value() bool {
	if !s.more() {
		return false
	}
	start := s.pos
	ok := false
	switch c := s.data[s.pos]; {
	case c == '{':
		ok = s.object()
	case c == '[':
		ok = s.array()
	case c == '"':
		ok = s.string(false)
	case c == 't':
		ok = s.literal("true")
	case c == 'f':
		ok = s.literal("false")
	case c == 'n':
		ok = s.literal("null")
	case c == '-' || isDigit(c):
		s.pos, ok = scanNumber(s.data, s.pos)
	}
	s.ends[start] = int32(s.pos)
	return ok
}

// literal scans true, false or null.
func (s *scanner) literal(word string) bool {
	if len(s.data)-s.pos < len(word) || string(s.data[s.pos:s.pos+len(word)]) != word {
		return false
	}
	s.pos += len(word)
	return true
}

// enter steps into an object or array and checks the depth.
func (s *scanner) enter() bool {
	s.depth++
	s.pos++
	return s.depth <= MaxDepth
}

// object scans an object, refusing duplicate keys.
func (s *scanner) object() bool {
	start := s.pos
	if !s.enter() {
		return false
	}
	if s.more() && s.data[s.pos] == '}' {
		s.pos++
		s.depth--
		return true
	}
	var prev []byte
	count, sorted, first := 0, true, s.nkeys
	defer func() { s.nkeys = first }()
	for {
		if !s.more() || s.data[s.pos] != '"' {
			return false
		}
		at := s.pos
		if !s.string(true) {
			return false
		}
		s.ends[at] = int32(s.pos)
		key := s.data[at+1 : s.pos-1]
		if count > 0 && bytes.Compare(prev, key) >= 0 {
			sorted = false
		}
		if count++; !sorted && (count > maxUnsortedKeys || s.hasKeyBefore(start, at, first, key)) {
			return false
		}
		if prev = key; s.nkeys < len(s.keys) {
			s.keys[s.nkeys] = [2]int32{int32(at + 1), int32(s.pos - 1)}
			s.nkeys++
		}
		if !s.more() || s.data[s.pos] != ':' {
			return false
		}
		s.pos++
		if !s.value() || !s.more() {
			return false
		}
		switch s.data[s.pos] {
		case ',':
			s.pos++
		case '}':
			s.pos++
			s.depth--
			return true
		default:
			return false
		}
	}
}

// hasKeyBefore reports whether the object at i has the key before the member
// at stop (all scanned already); first is the index in s.keys of the object's
// first key.
func (s *scanner) hasKeyBefore(i, stop, first int, key []byte) bool {
	if s.nkeys < len(s.keys) {
		for _, k := range s.keys[first:s.nkeys] {
			if bytes.Equal(s.data[k[0]:k[1]], key) {
				return true
			}
		}
		return false
	}
	end := 0
	for p, more := s.open(i); more && p != stop; p, more = s.next(end) {
		k, at := s.key(p)
		if bytes.Equal(k, key) {
			return true
		}
		end = s.skip(at)
	}
	return false
}

// array scans an array.
func (s *scanner) array() bool {
	if !s.enter() {
		return false
	}
	if s.more() && s.data[s.pos] == ']' {
		s.pos++
		s.depth--
		return true
	}
	for {
		if !s.value() || !s.more() {
			return false
		}
		switch s.data[s.pos] {
		case ',':
			s.pos++
		case ']':
			s.pos++
			s.depth--
			return true
		default:
			return false
		}
	}
}

// string scans the string at pos. A key must have no escapes: then its raw
// bytes are its value.
func (s *scanner) string(key bool) bool {
	data := s.data
	for i := s.pos + 1; i < len(data); {
		c := data[i]
		if plain[c] {
			i++
			continue
		}
		switch {
		case c == '"':
			s.pos = i + 1
			return true
		case c == '\\':
			if key || i+1 >= len(data) {
				return false
			}
			switch data[i+1] {
			case '"', '\\', '/', 'b', 'f', 'n', 'r', 't':
				i += 2
			case 'u':
				if _, ok := hex4(data, i+2); !ok {
					return false
				}
				i += 6
			default:
				return false
			}
		case c < 0x20:
			return false
		default:
			r, size := utf8.DecodeRune(data[i:])
			if r == utf8.RuneError && size == 1 {
				return false
			}
			i += size
		}
	}
	return false
}

// plain marks the bytes a string holds as they are: printable ASCII but the
// quote and the backslash.
var plain = func() (t [256]bool) {
	for c := 0x20; c < utf8.RuneSelf; c++ {
		t[c] = c != '"' && c != '\\'
	}
	return t
}()

// scanNumber scans the number literal at i as decoder.number does: by the JSON
// grammar and the decoder's limits (maxNumberLen, maxExponent, the float64 range).
func scanNumber(data []byte, i int) (int, bool) {
	start, n := i, len(data)
	digits := func() bool {
		if i >= n || !isDigit(data[i]) {
			return false
		}
		for i < n && isDigit(data[i]) {
			i++
		}
		return true
	}
	if data[i] == '-' {
		i++
	}
	switch {
	case i >= n:
		return i, false
	case data[i] == '0':
		i++
	case !digits():
		return i, false
	}
	if i < n && data[i] == '.' {
		i++
		if !digits() {
			return i, false
		}
	}
	hasExp := i < n && (data[i] == 'e' || data[i] == 'E')
	if hasExp {
		i++
		if i < n && (data[i] == '+' || data[i] == '-') {
			i++
		}
		from := i
		if !digits() {
			return i, false
		}
		if exp, _ := smallDecimal(data[from:i]); exp > maxExponent {
			return i, false
		}
	}
	if i-start > maxNumberLen {
		return i, false
	}
	if hasExp {
		if _, ok := parseFloat(data[start:i]); !ok {
			return i, false
		}
	}
	return i, true
}

// smallDecimal returns the value of a run of digits, saturated above 1e9.
func smallDecimal(digits []byte) (int, bool) {
	v := 0
	for _, c := range digits {
		if v > 1e9 {
			return v, false
		}
		v = v*10 + int(c-'0')
	}
	return v, true
}

// parseFloat is strconv.ParseFloat on a number literal, as toFloat applies it
// to a json.Number.
func parseFloat(lit []byte) (float64, bool) {
	f, err := strconv.ParseFloat(string(lit), 64)
	return f, err == nil && !math.IsInf(f, 0) && !math.IsNaN(f)
}

// ws returns the position of the first non-space byte at or after i.
func (d *doc) ws(i int) int {
	if i < len(d.data) && d.data[i] > ' ' {
		return i
	}
	for i < len(d.data) {
		switch d.data[i] {
		case ' ', '\t', '\n', '\r':
			i++
		default:
			return i
		}
	}
	return i
}

// skip returns where the value at i ends.
func (d *doc) skip(i int) int { return int(d.ends[i]) }

// str returns the decoded value of the string at i. Strings without escapes are
// their raw bytes; others go through the strict decoder.
func (d *doc) str(i int) []byte {
	s := d.data[i+1 : d.ends[i]-1]
	if bytes.IndexByte(s, '\\') < 0 {
		return s
	}
	dec := decoder{data: d.data, pos: i}
	v, _, _ := dec.string()
	return []byte(v)
}

// open starts on the object or array at i. It returns the position of the
// first key or item and true, or the end of the empty container and false.
func (d *doc) open(i int) (int, bool) {
	i = d.ws(i + 1)
	if c := d.data[i]; c == '}' || c == ']' {
		return i + 1, false
	}
	return i, true
}

// next continues after a member or item that ends at end, like open.
func (d *doc) next(end int) (int, bool) {
	end = d.ws(end)
	if d.data[end] == ',' {
		return d.ws(end + 1), true
	}
	return end + 1, false
}

// key reads the member at i: its key (which has no escapes) and where its value
// starts.
func (d *doc) key(i int) ([]byte, int) {
	end := int(d.ends[i])
	return d.data[i+1 : end-1], d.ws(d.ws(end) + 1)
}

// member returns where the value of the member key of the object at i
// starts, or -1.
func (d *doc) member(i int, key string) int {
	end := 0
	for p, more := d.open(i); more; p, more = d.next(end) {
		k, at := d.key(p)
		if string(k) == key {
			return at
		}
		end = d.skip(at)
	}
	return -1
}

// members counts the members or items of the object or array at i.
func (d *doc) members(i int) int {
	n, end := 0, 0
	for p, more := d.open(i); more; p, more = d.next(end) {
		if d.data[i] == '{' {
			_, p = d.key(p)
		}
		end = d.skip(p)
		n++
	}
	return n
}

// equalSpans compares the values at i and j as the library's equals does:
// numbers by value, objects whatever the order of their keys.
func (d *doc) equalSpans(i, j int) verdict {
	a, b := d.data[i], d.data[j]
	switch {
	case a == '"' && b == '"':
		s, t := d.str(i), d.str(j)
		return verdictOf(bytes.Equal(s, t))
	case isNumberStart(a) && isNumberStart(b):
		x, okx := parseNumber(d.data[i:d.ends[i]])
		y, oky := parseNumber(d.data[j:d.ends[j]])
		if !okx || !oky {
			return unsure
		}
		return verdictOf(x == y)
	case a != b:
		return invalid
	case a == '[':
		v := valid
		p, more := d.open(i)
		q, moreB := d.open(j)
		for more && moreB && v != invalid {
			v = v.and(d.equalSpans(p, q))
			p, more = d.next(d.skip(p))
			q, moreB = d.next(d.skip(q))
		}
		if v != invalid && more != moreB {
			return invalid
		}
		return v
	case a == '{':
		if d.members(i) != d.members(j) {
			return invalid
		}
		v, end := valid, 0
		for p, more := d.open(i); more && v != invalid; p, more = d.next(end) {
			key, at := d.key(p)
			other := d.member(j, string(key))
			if other < 0 {
				return invalid
			}
			v = v.and(d.equalSpans(at, other))
			end = d.skip(at)
		}
		return v
	}
	return valid // the same literal
}

// equalValue compares the value at i with a decoded value of the schema, as
// the library's equals does.
func (d *doc) equalValue(i int, v any) verdict {
	switch x := v.(type) {
	case nil:
		return verdictOf(d.data[i] == 'n')
	case bool:
		return verdictOf(x && d.data[i] == 't' || !x && d.data[i] == 'f')
	case string:
		if d.data[i] != '"' {
			return invalid
		}
		s := d.str(i)
		return verdictOf(string(s) == x)
	case json.Number:
		if !isNumberStart(d.data[i]) {
			return invalid
		}
		n, exact := parseNumber(d.data[i:d.ends[i]])
		return equalNumber(n, exact, x)
	case []any:
		if d.data[i] != '[' {
			return invalid
		}
		v, k, end := valid, 0, 0
		p, more := d.open(i)
		for ; more && v != invalid; p, more = d.next(end) {
			if k >= len(x) {
				return invalid
			}
			v = v.and(d.equalValue(p, x[k]))
			k++
			end = d.skip(p)
		}
		if v != invalid && k != len(x) {
			return invalid
		}
		return v
	case map[string]any:
		if d.data[i] != '{' {
			return invalid
		}
		v, k, end := valid, 0, 0
		p, more := d.open(i)
		for ; more && v != invalid; p, more = d.next(end) {
			key, at := d.key(p)
			e, ok := x[string(key)]
			if !ok {
				return invalid
			}
			v = v.and(d.equalValue(at, e))
			k++
			end = d.skip(at)
		}
		if v != invalid && k != len(x) {
			return invalid
		}
		return v
	}
	return unsure
}

// equalNumber compares the instance number n (exact or not) with a schema
// number.
func equalNumber(n number, exact bool, v any) verdict {
	lit, ok := v.(json.Number)
	if !ok {
		return invalid // not a number; the compiler admits only decoded values
	}
	m, mExact := parseNumber([]byte(lit))
	if !exact || !mExact {
		return unsure
	}
	return verdictOf(n == m)
}

// isNumberStart reports whether a value that starts with c is a number.
func isNumberStart(c byte) bool { return c == '-' || isDigit(c) }

// verdictOf is valid for true, invalid for false.
func verdictOf(ok bool) verdict {
	if ok {
		return valid
	}
	return invalid
}

// number is an exact decimal: (-1)^neg × m × 10^exp, normalized so that m has
// no trailing zero digit, and zero is the zero value. Two numbers are equal
// exactly when their values are.
type number struct {
	m   uint64
	exp int
	neg bool
}

// maxDigits is the most significant digits a number holds.
const maxDigits = 19

// parseNumber reads a JSON number literal exactly. exact is false when it has
// more than maxDigits significant digits.
func parseNumber(lit []byte) (n number, exact bool) {
	digits, zeros, frac, point := 0, 0, 0, false
	i := 0
	if len(lit) > 0 && lit[0] == '-' {
		n.neg = true
		i++
	}
	for ; i < len(lit); i++ {
		c := lit[i]
		if c == '.' {
			point = true
			continue
		}
		if c == 'e' || c == 'E' {
			e, ok := smallDecimal(bytes.TrimLeft(lit[i+1:], "+-"))
			if !ok {
				return number{}, false
			}
			if lit[i+1] == '-' {
				e = -e
			}
			n.exp += e
			break
		}
		if point {
			frac++
		}
		if c == '0' {
			if n.m != 0 {
				zeros++
			}
			continue
		}
		if digits+zeros+1 > maxDigits {
			return number{}, false
		}
		for ; zeros > 0; zeros-- {
			n.m *= 10
			digits++
		}
		n.m = n.m*10 + uint64(c-'0')
		digits++
	}
	if n.m == 0 {
		return number{}, true
	}
	n.exp += zeros - frac
	return n, true
}

// ratNumber converts a bound of the compiled schema, which the compiler parsed
// from a decimal literal, to a number; ok is false when it does not fit.
func ratNumber(r *big.Rat) (number, bool) {
	num := new(big.Int).Abs(r.Num())
	den := new(big.Int).Set(r.Denom())
	exp := 0
	var rem big.Int
	for den.Cmp(big.NewInt(1)) != 0 {
		switch {
		case rem.Mod(den, big.NewInt(10)).Sign() == 0:
			den.Quo(den, big.NewInt(10))
		case rem.Mod(den, big.NewInt(2)).Sign() == 0:
			den.Quo(den, big.NewInt(2))
			num.Mul(num, big.NewInt(5))
		case rem.Mod(den, big.NewInt(5)).Sign() == 0:
			den.Quo(den, big.NewInt(5))
			num.Mul(num, big.NewInt(2))
		default:
			return number{}, false // not a decimal
		}
		exp--
	}
	if num.Sign() == 0 {
		return number{}, true
	}
	for rem.Mod(num, big.NewInt(10)).Sign() == 0 {
		num.Quo(num, big.NewInt(10))
		exp++
	}
	if !num.IsUint64() || len(num.String()) > maxDigits {
		return number{}, false
	}
	return number{m: num.Uint64(), exp: exp, neg: r.Sign() < 0}, true
}

// isInt reports whether n is an integer, as big.Rat.IsInt would.
func (n number) isInt() bool { return n.exp >= 0 }

// sign returns -1, 0 or +1.
func (n number) sign() int {
	switch {
	case n.m == 0:
		return 0
	case n.neg:
		return -1
	}
	return 1
}

// cmp compares n and o by value: -1, 0 or +1.
func (n number) cmp(o number) int {
	sn, so := n.sign(), o.sign()
	if sn != so || sn == 0 {
		return cmp.Compare(sn, so)
	}
	c := cmpMagnitude(n, o)
	return c * sn
}

// cmpMagnitude compares |a| and |b|, both not zero.
func cmpMagnitude(a, b number) int {
	// The leading digit of m × 10^exp has the weight 10^(digits(m)+exp-1).
	la, lb := numDigits(a.m)+a.exp, numDigits(b.m)+b.exp
	if la != lb {
		return cmp.Compare(la, lb)
	}
	// The same magnitude: scaled to the smaller exponent both have as many
	// digits as the longer mantissa, so they fit.
	e := min(a.exp, b.exp)
	ma, _ := scale(a.m, a.exp-e)
	mb, _ := scale(b.m, b.exp-e)
	return cmp.Compare(ma, mb)
}

// multipleOf reports whether n / of is an integer (of > 0).
func (n number) multipleOf(of number) verdict {
	if n.m == 0 {
		return valid
	}
	e := min(n.exp, of.exp)
	a, okA := scale(n.m, n.exp-e)
	b, okB := scale(of.m, of.exp-e)
	if !okA || !okB || b == 0 {
		return unsure
	}
	return verdictOf(a%b == 0)
}

// scale returns m × 10^k, and false if that overflows.
func scale(m uint64, k int) (uint64, bool) {
	for ; k > 0; k-- {
		hi, lo := bits.Mul64(m, 10)
		if hi != 0 {
			return 0, false
		}
		m = lo
	}
	return m, true
}

// numDigits returns the number of decimal digits of m.
func numDigits(m uint64) int {
	d := 1
	for m >= 10 {
		m /= 10
		d++
	}
	return d
}
