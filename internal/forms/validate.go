package forms

import (
	"encoding/json"
	"fmt"
	"strconv"

	"github.com/fieldsync/fieldsync/internal/domain"
)

// ValidateJSON validates a record's data, given as JSON bytes, and returns every
// finding, with JSON pointers relative to the data ("/respondent/age"); none
// when the data is valid. Bytes that are not JSON give one finding at "" with the
// byte offset. This is the path for untrusted input: the decoder refuses
// duplicate keys, nesting deeper than MaxDepth and numbers the validator could
// not handle (see decode.go).
//
// Valid data usually takes a fast path that checks the bytes without decoding
// them (fast.go); whatever it cannot vouch for takes the library path, so the
// findings are the same either way.
func (d *Definition) ValidateJSON(data []byte) []domain.Finding {
	if d.fast != nil && fastValid(d.fast, data) {
		return nil
	}
	return d.validateJSONLibrary(data)
}

// validateJSONLibrary is ValidateJSON without the fast path: decode, then the
// library's validator.
func (d *Definition) validateJSONLibrary(data []byte) []domain.Finding {
	v, err := decodeJSONIntern(data, MaxDepth, d.intern)
	if err != nil {
		return []domain.Finding{decodeFinding(err)}
	}
	return d.validate(v)
}

// Validate validates a record's data like ValidateJSON. data is either JSON
// bytes ([]byte or json.RawMessage, handed to ValidateJSON) or an already decoded
// value: map[string]any, []any, string, bool, nil, and numbers as json.Number
// (json.Decoder.UseNumber or jsonschema.UnmarshalJSON, which keep the exact
// digits) or float64 (encoding/json's default, exact only up to 2^53). Numbers
// are checked against the same bounds as in ValidateJSON first.
func (d *Definition) Validate(data any) []domain.Finding {
	switch b := data.(type) {
	case []byte:
		return d.ValidateJSON(b)
	case json.RawMessage:
		return d.ValidateJSON(b)
	}
	if f, bad := checkNumbers(data, ""); bad {
		return []domain.Finding{f}
	}
	return d.validate(data)
}

func (d *Definition) validate(v any) []domain.Finding {
	if err := d.schema.Validate(v); err != nil {
		return findingsOf(err, "", v)
	}
	return nil
}

// decodeFinding explains why record bytes could not be decoded.
func decodeFinding(err error) domain.Finding {
	je, ok := err.(*jsonError)
	if !ok {
		return domain.Finding{Message: "is not valid JSON"}
	}
	if je.Kind == errSyntax {
		return domain.Finding{Message: "is not valid JSON: " + je.Error()}
	}
	return domain.Finding{Path: je.Path, Message: je.Msg}
}

// checkNumbers applies the decoder's number bounds to an already decoded
// value, which may come from a decoder without them.
func checkNumbers(v any, ptr string) (domain.Finding, bool) {
	switch x := v.(type) {
	case json.Number:
		if msg := numberProblem(string(x)); msg != "" {
			return domain.Finding{Path: ptr, Message: msg}, true
		}
	case map[string]any:
		for k, e := range x {
			if f, bad := checkNumbers(e, ptr+"/"+escapePointer(k)); bad {
				return f, true
			}
		}
	case []any:
		for i, e := range x {
			if f, bad := checkNumbers(e, ptr+"/"+strconv.Itoa(i)); bad {
				return f, true
			}
		}
	}
	return domain.Finding{}, false
}

// numberProblem checks a number literal the way decoder.number does; it returns
// "" when the literal is acceptable.
func numberProblem(lit string) string {
	if len(lit) > maxNumberLen {
		return fmt.Sprintf("number longer than %d characters", maxNumberLen)
	}
	d := decoder{data: []byte(lit), maxDepth: 1}
	v, err := d.value()
	if err != nil {
		if err.Kind == errNumber {
			return err.Msg
		}
		return "is not a valid number"
	}
	if _, ok := v.(json.Number); !ok || d.pos != len(lit) {
		return "is not a valid number"
	}
	return ""
}
