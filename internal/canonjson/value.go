package canonjson

import (
	"encoding/json"
	"fmt"
	"slices"
)

// AppendValue appends the canonical JSON of v, a decoded JSON value:
// map[string]any, []any, string, bool, nil, json.Number or float64 (what
// encoding/json, jsonschema.UnmarshalJSON and the forms decoder produce). A
// json.Number is canonicalised as the literal it holds, exactly as Canonical
// canonicalises that literal; a float64 is written by AppendFloat. It fails on
// other types, on a json.Number that is not a JSON number or is beyond the
// double range, and on NaN and the infinities.
func AppendValue(dst []byte, v any) ([]byte, error) {
	switch v := v.(type) {
	case nil:
		return append(dst, "null"...), nil
	case bool:
		if v {
			return append(dst, "true"...), nil
		}
		return append(dst, "false"...), nil
	case string:
		return AppendString(dst, v), nil
	case json.Number:
		end, integer, ok := scanNumber([]byte(v), 0)
		if !ok || end != len(v) {
			return dst, fmt.Errorf("canonjson: %q is not a JSON number", string(v))
		}
		out, err := appendNumber(dst, v, integer)
		if err != nil {
			return dst, fmt.Errorf("canonjson: number %s: %w", string(v), err)
		}
		return out, nil
	case float64:
		return AppendFloat(dst, v)
	case []any:
		dst = append(dst, '[')
		for i, e := range v {
			if i > 0 {
				dst = append(dst, ',')
			}
			var err error
			if dst, err = AppendValue(dst, e); err != nil {
				return dst, err
			}
		}
		return append(dst, ']'), nil
	case map[string]any:
		keys := make([]string, 0, len(v))
		for k := range v {
			keys = append(keys, k)
		}
		slices.SortFunc(keys, CompareKeys[string])
		dst = append(dst, '{')
		for i, k := range keys {
			if i > 0 {
				dst = append(dst, ',')
			}
			dst = AppendString(dst, k)
			dst = append(dst, ':')
			var err error
			if dst, err = AppendValue(dst, v[k]); err != nil {
				return dst, err
			}
		}
		return append(dst, '}'), nil
	default:
		return dst, fmt.Errorf("canonjson: unsupported type %T", v)
	}
}
