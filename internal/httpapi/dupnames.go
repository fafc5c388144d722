package httpapi

import (
	"bytes"
	"fmt"
	"slices"

	"github.com/go-json-experiment/json/jsontext"
)

// duplicateMember finds the first object member name that appears twice in one
// object of data, and words it for a client ("" when there is none, or when
// data is not valid JSON: the strict decoder words that). encoding/json keeps
// the last of repeated members without a word, so {"id": "a", "id": "b"}
// would silently be record b; the protocol promises that nothing a client sent
// is dropped silently, so repeats are refused instead.
//
// The values of the members at the JSON pointers in skip are not looked into:
// they are checked by whoever reads them (a push's items one by one, so that
// one bad item does not fail the others; record data by the canonicaliser).
func duplicateMember(data []byte, skip ...jsontext.Pointer) string {
	dec := jsontext.NewDecoder(bytes.NewReader(data), jsontext.AllowDuplicateNames(true), jsontext.AllowInvalidUTF8(true))
	var open []map[string]bool // the names seen in each open object; nil for an array
	for {
		tok, err := dec.ReadToken()
		if err != nil {
			return ""
		}
		switch kind := tok.Kind(); kind {
		case '{':
			open = append(open, map[string]bool{})
		case '[':
			open = append(open, nil)
		case '}', ']':
			open = open[:len(open)-1]
		case '"':
			depth := dec.StackDepth()
			if k, n := dec.StackIndex(depth); k != '{' || n%2 != 1 {
				break // a string value, not a name
			}
			name := tok.String()
			seen := open[len(open)-1]
			if seen[name] {
				ptr := dec.StackPointer()
				return fmt.Sprintf("member %q appears more than once in one object (%s, byte %d): send it once", name, ptr, dec.InputOffset())
			}
			seen[name] = true
			if slices.Contains(skip, dec.StackPointer()) {
				if err := dec.SkipValue(); err != nil {
					return ""
				}
			}
		}
		if dec.StackDepth() == 0 {
			return ""
		}
	}
}
