package syncer

import "github.com/fieldsync/fieldsync/internal/canonjson"

// The canonical JSON of record data is internal/canonjson's; these names keep
// the sync core's API (the records service and the stores use them).

// ErrInvalidJSON is matched (with errors.Is) by every error Canonical returns for
// input that is not acceptable JSON; the error itself is a *JSONError.
var ErrInvalidJSON = canonjson.ErrInvalidJSON

// ErrDuplicateKey is matched (with errors.Is) by the *JSONError Canonical returns
// for an object that names the same key twice.
var ErrDuplicateKey = canonjson.ErrDuplicateKey

// JSONError says why a document is not acceptable JSON and where.
type JSONError = canonjson.Error

// MaxDepth is the deepest nesting of objects and arrays Canonical accepts.
const MaxDepth = canonjson.MaxDepth

// Canonical returns the canonical form of the JSON document raw, which revisions
// hash: canonjson.Canonical (RFC 8785 with numbers kept exactly; see
// internal/canonjson).
func Canonical(raw []byte) ([]byte, error) { return canonjson.Canonical(raw) }

// compareKeys orders object keys as the canonical form does.
func compareKeys(a, b []byte) int { return canonjson.CompareKeys(a, b) }

// unescape appends the text of a JSON string's raw content to dst.
func unescape(dst, raw []byte, start int) ([]byte, error) { return canonjson.Unescape(dst, raw, start) }
