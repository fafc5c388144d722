package odata

import (
	"bytes"
	"encoding/json"

	"github.com/fieldsync/fieldsync/internal/ordjson"
)

// object is a JSON object that keeps its key order: the feed lists answers in
// the order the designer's schema lists its properties (protocol.md §4).
type object = ordjson.Object

// decodeOrdered decodes JSON with objects as *object, arrays as []any and
// numbers as json.Number.
func decodeOrdered(data []byte) (any, error) { return ordjson.Decode(data) }

// decodeData decodes record data with maps (order does not matter there: the
// model gives the order) and json.Number numbers.
func decodeData(data []byte) (map[string]any, error) {
	dec := json.NewDecoder(bytes.NewReader(data))
	dec.UseNumber()
	var m map[string]any
	if err := dec.Decode(&m); err != nil {
		return nil, err
	}
	return m, nil
}
