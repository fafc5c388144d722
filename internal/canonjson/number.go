package canonjson

import (
	"errors"
	"math"
	"strconv"
)

// errNumberRange is returned for a number whose value lies beyond the double
// range (1e400): RFC 8785 and every client that reads numbers as doubles
// cannot hold it.
var errNumberRange = errors.New("number out of range")

// maxExponent bounds the decimal exponent of a number's value (the n of
// Number::toString, about the number of digits before the point). It only
// matters for tiny numbers: anything above 309 is beyond the double range.
const maxExponent = 1 << 30

// scanNumber returns the end of the JSON number literal at b[i] and whether it
// is an integer literal (no fraction, no exponent). ok is false when b[i:]
// does not start with a number; end is then where the grammar broke.
func scanNumber(b []byte, i int) (end int, integer, ok bool) {
	digits := func() bool {
		j := i
		for i < len(b) && isDigit(b[i]) {
			i++
		}
		return i > j
	}
	if i < len(b) && b[i] == '-' {
		i++
	}
	switch {
	case i >= len(b):
		return i, false, false
	case b[i] == '0':
		i++
	case '1' <= b[i] && b[i] <= '9':
		digits()
	default:
		return i, false, false
	}
	integer = true
	if i < len(b) && b[i] == '.' {
		integer = false
		i++
		if !digits() {
			return i, false, false
		}
	}
	if i < len(b) && (b[i] == 'e' || b[i] == 'E') {
		integer = false
		i++
		if i < len(b) && (b[i] == '+' || b[i] == '-') {
			i++
		}
		if !digits() {
			return i, false, false
		}
	}
	return i, integer, true
}

func isDigit(c byte) bool { return '0' <= c && c <= '9' }

// appendNumber appends the canonical form of the number literal lit (already
// checked by scanNumber; integer as it reported). See the package comment for
// the rule.
func appendNumber[T ~string | ~[]byte](dst []byte, lit T, integer bool) ([]byte, error) {
	if integer {
		// Digit for digit; "-0" is the one integer with two spellings.
		if len(lit) == 2 && lit[0] == '-' && lit[1] == '0' {
			return append(dst, '0'), nil
		}
		return append(dst, lit...), nil
	}
	var buf [32]byte
	d, err := parseDecimal(buf[:0], lit)
	if err != nil {
		return dst, err
	}
	if d.n > 308 {
		// Near the top of the double range only the double itself can tell.
		if f, err := strconv.ParseFloat(string(lit), 64); err != nil || math.IsInf(f, 0) {
			return dst, errNumberRange
		}
	}
	return d.appendTo(dst), nil
}

// decimal is a number as Number::toString sees it (ECMA-262 §6.1.6.1.20):
// value = (-1)^neg × 0.digits × 10^n, digits without leading or trailing zeros
// (none for zero).
type decimal struct {
	neg    bool
	digits []byte
	n      int
}

// parseDecimal reads a number literal that scanNumber accepted, appending its
// significant digits to buf.
func parseDecimal[T ~string | ~[]byte](buf []byte, lit T) (decimal, error) {
	var d decimal
	i := 0
	if lit[0] == '-' {
		d.neg = true
		i++
	}
	point := -1 // digits before the point, when there is one
	for ; i < len(lit); i++ {
		c := lit[i]
		if c == '.' {
			point = len(buf)
			continue
		}
		if !isDigit(c) {
			break
		}
		if c == '0' && len(buf) == 0 {
			// A leading zero: it only moves the point.
			if point >= 0 {
				d.n--
			}
			continue
		}
		buf = append(buf, c)
	}
	if point < 0 {
		point = len(buf)
	}
	d.n += point
	if i < len(lit) { // the exponent
		i++
		neg := false
		if lit[i] == '+' || lit[i] == '-' {
			neg = lit[i] == '-'
			i++
		}
		e := 0
		for ; i < len(lit); i++ {
			if e = e*10 + int(lit[i]-'0'); e > maxExponent {
				break
			}
		}
		if neg {
			e = -e
		}
		d.n += e
	}
	for len(buf) > 0 && buf[len(buf)-1] == '0' {
		buf = buf[:len(buf)-1]
	}
	d.digits = buf
	if len(buf) == 0 {
		return decimal{}, nil // zero, whatever its sign and exponent
	}
	if d.n > maxExponent || d.n < -maxExponent {
		return decimal{}, errNumberRange
	}
	return d, nil
}

// appendTo writes d as Number::toString lays out a number's digits: plainly
// for 1e-7 < |d| < 1e21, otherwise as d.ddde±x.
func (d decimal) appendTo(dst []byte) []byte {
	k, n := len(d.digits), d.n
	if k == 0 {
		return append(dst, '0')
	}
	if d.neg {
		dst = append(dst, '-')
	}
	switch {
	case k <= n && n <= 21:
		dst = append(dst, d.digits...)
		for range n - k {
			dst = append(dst, '0')
		}
	case 0 < n && n <= 21:
		dst = append(dst, d.digits[:n]...)
		dst = append(dst, '.')
		dst = append(dst, d.digits[n:]...)
	case -6 < n && n <= 0:
		dst = append(dst, '0', '.')
		for range -n {
			dst = append(dst, '0')
		}
		dst = append(dst, d.digits...)
	default:
		dst = append(dst, d.digits[0])
		if k > 1 {
			dst = append(dst, '.')
			dst = append(dst, d.digits[1:]...)
		}
		dst = append(dst, 'e')
		if n-1 >= 0 {
			dst = append(dst, '+')
		}
		dst = strconv.AppendInt(dst, int64(n-1), 10)
	}
	return dst
}

// AppendFloat appends f as ECMAScript's Number.prototype.toString writes it,
// which is how RFC 8785 writes every number: the shortest digits that read back
// as f, plainly from 1e-6 up to 1e21 and as d.ddde±x outside. NaN and the
// infinities are not JSON: they are an error.
func AppendFloat(dst []byte, f float64) ([]byte, error) {
	if math.IsNaN(f) || math.IsInf(f, 0) {
		return dst, errors.New("canonjson: " + strconv.FormatFloat(f, 'g', -1, 64) + " is not a JSON number")
	}
	if f == 0 {
		return append(dst, '0'), nil // also for -0
	}
	var buf [32]byte
	// The shortest digits, as d.ddde±x: the same layout as a literal's.
	lit := strconv.AppendFloat(buf[:0], f, 'e', -1, 64)
	var digits [24]byte
	d, err := parseDecimal(digits[:0], lit)
	if err != nil {
		return dst, err // cannot happen: a double's exponent is small
	}
	return d.appendTo(dst), nil
}
