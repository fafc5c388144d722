package mongo

import (
	"bytes"
	"encoding/json"
	"fmt"
	"math"
	"strconv"
	"strings"
	"unicode/utf8"

	"go.mongodb.org/mongo-driver/v2/bson"

	"github.com/fieldsync/fieldsync/internal/canonjson"
)

// JSON values (record data, revisions, conflict values, form definitions,
// quarantined submissions) are stored as real BSON, so that an analyst querying
// MongoDB sees fields, not strings. The mapping:
//
//   - objects become embedded documents with their keys in the given order, arrays
//     become arrays, strings, booleans and null map to their BSON types;
//   - a number written without fraction or exponent is an integer: int32 when it
//     fits, else int64, else (up to 34 digits) Decimal128, so an integer is never
//     rounded through a double;
//   - any other number is a double.
//
// Reading back writes the BSON as JSON in the canonical form (internal/canonjson:
// no whitespace, minimal string escaping, doubles as ECMAScript prints them), so the
// canonical JSON the services store comes back byte for byte. Whenever that is not
// so — the input was not canonical, held a key MongoDB-compatible servers refuse
// (one with '.', a leading '$' or NUL), a duplicate key, or a number no BSON type
// holds exactly — the exact text is stored beside the BSON in a "<field>_json"
// string (alone, when there is no faithful BSON form) and read back instead. So
// the round trip is exact for every input, and the extra copy costs nothing for
// the canonical data the services write.

// encodeJSON converts raw JSON into the BSON value to store and, when reading that
// value back would not reproduce raw exactly, the text to store beside it. An
// empty raw is an absent value: both results are zero, and the field is omitted.
func encodeJSON(raw json.RawMessage) (bson.RawValue, string, error) {
	if len(raw) == 0 {
		return bson.RawValue{}, "", nil
	}
	v, ok := parseJSON(raw)
	if !ok {
		// Not representable as BSON: keep the text only.
		return bson.RawValue{}, string(raw), nil
	}
	rv := bson.RawValue{Type: bson.TypeNull} // MarshalValue refuses a bare nil
	if v != nil {
		t, data, err := bson.MarshalValue(v)
		if err != nil {
			return bson.RawValue{}, "", fmt.Errorf("mongo: encode JSON value: %w", err)
		}
		rv = bson.RawValue{Type: t, Value: data}
	}
	back, err := renderJSON(nil, rv)
	if err != nil || !bytes.Equal(back, raw) {
		return rv, string(raw), nil
	}
	return rv, "", nil
}

// decodeJSON returns the JSON encodeJSON stored: the exact text when there is one,
// else the BSON value written as canonical JSON, else nil for an absent value.
func decodeJSON(v bson.RawValue, exact string) (json.RawMessage, error) {
	if exact != "" {
		return json.RawMessage(exact), nil
	}
	if v.IsZero() {
		return nil, nil
	}
	b, err := renderJSON(nil, v)
	if err != nil {
		return nil, fmt.Errorf("mongo: decode stored JSON: %w", err)
	}
	return b, nil
}

// parseJSON builds the BSON-ready Go value of raw (bson.D, bson.A, string, bool,
// nil, int32, int64, Decimal128, float64). ok is false when raw is not valid JSON
// or holds something BSON cannot keep faithfully (see the package comment above).
func parseJSON(raw []byte) (v any, ok bool) {
	dec := json.NewDecoder(bytes.NewReader(raw))
	dec.UseNumber()
	v, ok = parseValue(dec)
	if !ok {
		return nil, false
	}
	if _, err := dec.Token(); err == nil {
		return nil, false // trailing data
	}
	return v, true
}

func parseValue(dec *json.Decoder) (any, bool) {
	tok, err := dec.Token()
	if err != nil {
		return nil, false
	}
	switch t := tok.(type) {
	case json.Delim:
		switch t {
		case '{':
			d := bson.D{}
			seen := map[string]bool{}
			for dec.More() {
				kt, err := dec.Token()
				if err != nil {
					return nil, false
				}
				k, isStr := kt.(string)
				if !isStr || !safeKey(k) || seen[k] {
					return nil, false
				}
				seen[k] = true
				val, ok := parseValue(dec)
				if !ok {
					return nil, false
				}
				d = append(d, bson.E{Key: k, Value: val})
			}
			if _, err := dec.Token(); err != nil {
				return nil, false
			}
			return d, true
		case '[':
			a := bson.A{}
			for dec.More() {
				val, ok := parseValue(dec)
				if !ok {
					return nil, false
				}
				a = append(a, val)
			}
			if _, err := dec.Token(); err != nil {
				return nil, false
			}
			return a, true
		}
		return nil, false
	case string:
		return t, true
	case bool:
		return t, true
	case nil:
		return nil, true
	case json.Number:
		return parseNumber(string(t))
	}
	return nil, false
}

// parseNumber keeps integers exact (int32, int64, then Decimal128) and reads any
// other number as a double.
func parseNumber(s string) (any, bool) {
	if isIntegerLiteral(s) {
		if i, err := strconv.ParseInt(s, 10, 64); err == nil {
			if i >= math.MinInt32 && i <= math.MaxInt32 {
				return int32(i), true
			}
			return i, true
		}
		digits := strings.TrimPrefix(s, "-")
		if len(digits) <= 34 {
			if d, err := bson.ParseDecimal128(s); err == nil {
				return d, true
			}
		}
		return nil, false
	}
	f, err := strconv.ParseFloat(s, 64)
	if err != nil || math.IsInf(f, 0) || math.IsNaN(f) {
		return nil, false
	}
	return f, true
}

func isIntegerLiteral(s string) bool {
	s = strings.TrimPrefix(s, "-")
	if s == "" {
		return false
	}
	for i := 0; i < len(s); i++ {
		if s[i] < '0' || s[i] > '9' {
			return false
		}
	}
	return true
}

// safeKey reports whether every MongoDB-compatible server stores k as a field
// name: FerretDB refuses '.' and a leading '$', and MongoDB's update operators
// treat them as paths and operators.
func safeKey(k string) bool {
	return !strings.HasPrefix(k, "$") && !strings.ContainsAny(k, ".\x00") && utf8.ValidString(k)
}

// renderJSON appends v as canonical JSON (canonjson's strings and numbers) to b,
// its members in stored order.
func renderJSON(b []byte, v bson.RawValue) ([]byte, error) {
	switch v.Type {
	case bson.TypeEmbeddedDocument:
		elems, err := v.Document().Elements()
		if err != nil {
			return nil, err
		}
		b = append(b, '{')
		for i, e := range elems {
			if i > 0 {
				b = append(b, ',')
			}
			b = canonjson.AppendString(b, e.Key())
			b = append(b, ':')
			if b, err = renderJSON(b, e.Value()); err != nil {
				return nil, err
			}
		}
		return append(b, '}'), nil
	case bson.TypeArray:
		vals, err := v.Array().Values()
		if err != nil {
			return nil, err
		}
		b = append(b, '[')
		for i, e := range vals {
			if i > 0 {
				b = append(b, ',')
			}
			if b, err = renderJSON(b, e); err != nil {
				return nil, err
			}
		}
		return append(b, ']'), nil
	case bson.TypeString:
		return canonjson.AppendString(b, v.StringValue()), nil
	case bson.TypeBoolean:
		return strconv.AppendBool(b, v.Boolean()), nil
	case bson.TypeNull, bson.TypeUndefined:
		return append(b, "null"...), nil
	case bson.TypeInt32:
		return strconv.AppendInt(b, int64(v.Int32()), 10), nil
	case bson.TypeInt64:
		return strconv.AppendInt(b, v.Int64(), 10), nil
	case bson.TypeDouble:
		return canonjson.AppendFloat(b, v.Double())
	case bson.TypeDecimal128:
		return append(b, v.Decimal128().String()...), nil
	case bson.TypeDateTime:
		// Not written by this store; an analyst may have set one by hand.
		return canonjson.AppendString(b, v.Time().UTC().Format("2006-01-02T15:04:05.000Z07:00")), nil
	}
	// Other BSON types are never written by this store; show them as their
	// extended-JSON text rather than failing the read.
	return canonjson.AppendString(b, v.String()), nil
}
