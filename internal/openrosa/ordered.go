package openrosa

import "github.com/fieldsync/fieldsync/internal/ordjson"

// obj is a JSON object with its members in the order written: the XForm lists
// questions in the designer's order, which a Go map would lose.
type obj = ordjson.Object

// parseOrdered decodes JSON with objects as *obj, numbers as json.Number.
func parseOrdered(raw []byte) (any, error) { return ordjson.Decode(raw) }
