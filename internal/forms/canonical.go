package forms

import (
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"strconv"

	"github.com/fieldsync/fieldsync/internal/canonjson"
)

// A definition's identity is the hash of its canonical JSON, the one form
// internal/canonjson writes for record data too: RFC 8785 with every number
// kept at its exact value (a "const" or "maximum" beyond 2^53 keeps its
// digits, so two definitions that differ only there get different hashes).

// Canonicalize returns the canonical form of the JSON document raw, after the
// checks of this package's decoder (MaxDepth, number limits, duplicate keys).
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
	return canonjson.AppendValue(dst, v)
}

// hasHash reports whether hash names d: its Hash, or the hash its definition
// had before the canonical form kept numbers exact. Until then every number of
// a definition was canonicalised through a double, so a stored version whose
// definition holds an integer beyond 2^53, one of 22 digits or more, or a
// decimal with more digits than a double holds carries that older hash.
func (d *Definition) hasHash(hash string) bool {
	if d.Hash == hash {
		return true
	}
	v, err := decodeJSON(d.Canonical, MaxDepth)
	if err != nil {
		return false
	}
	old, err := AppendCanonical(nil, throughDouble(v))
	if err != nil {
		return false
	}
	sum := sha256.Sum256(old)
	return hex.EncodeToString(sum[:]) == hash
}

// throughDouble replaces every number of v with its nearest double, as the
// canonical form of definitions did before canonjson.
func throughDouble(v any) any {
	switch v := v.(type) {
	case json.Number:
		if f, err := strconv.ParseFloat(string(v), 64); err == nil {
			return f
		}
	case []any:
		out := make([]any, len(v))
		for i, e := range v {
			out[i] = throughDouble(e)
		}
		return out
	case map[string]any:
		out := make(map[string]any, len(v))
		for k, e := range v {
			out[k] = throughDouble(e)
		}
		return out
	}
	return v
}
