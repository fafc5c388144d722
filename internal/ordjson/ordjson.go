// Package ordjson decodes JSON with objects that keep their key order. Form
// definitions list questions in the designer's order (the order of a schema's
// properties), and the OData feed and the XForm follow it; a Go map would
// lose it.
package ordjson

import (
	"bytes"
	"encoding/json"
	"fmt"
)

// Object is a JSON object with its members in the order written.
type Object struct {
	Keys []string
	Vals map[string]any
}

// Get returns the member k; false when there is none (or o is nil).
func (o *Object) Get(k string) (any, bool) {
	if o == nil {
		return nil, false
	}
	v, ok := o.Vals[k]
	return v, ok
}

// Str returns the member k when it is a string, else "".
func (o *Object) Str(k string) string {
	v, _ := o.Get(k)
	s, _ := v.(string)
	return s
}

// Obj returns the member k when it is an object, else nil.
func (o *Object) Obj(k string) *Object {
	v, _ := o.Get(k)
	x, _ := v.(*Object)
	return x
}

// Decode decodes one JSON value with objects as *Object, arrays as []any and
// numbers as json.Number. Data after the value is an error.
func Decode(data []byte) (any, error) {
	dec := json.NewDecoder(bytes.NewReader(data))
	dec.UseNumber()
	v, err := decodeValue(dec)
	if err != nil {
		return nil, err
	}
	if dec.More() {
		return nil, fmt.Errorf("trailing data")
	}
	return v, nil
}

// decodeValue decodes the next value of dec.
func decodeValue(dec *json.Decoder) (any, error) {
	tok, err := dec.Token()
	if err != nil {
		return nil, err
	}
	switch t := tok.(type) {
	case json.Delim:
		switch t {
		case '{':
			o := &Object{Vals: map[string]any{}}
			for dec.More() {
				kt, err := dec.Token()
				if err != nil {
					return nil, err
				}
				k, _ := kt.(string)
				v, err := decodeValue(dec)
				if err != nil {
					return nil, err
				}
				if _, dup := o.Vals[k]; !dup {
					o.Keys = append(o.Keys, k)
				}
				o.Vals[k] = v
			}
			_, err := dec.Token() // }
			return o, err
		case '[':
			arr := []any{}
			for dec.More() {
				v, err := decodeValue(dec)
				if err != nil {
					return nil, err
				}
				arr = append(arr, v)
			}
			_, err := dec.Token() // ]
			return arr, err
		}
		return nil, fmt.Errorf("unexpected %v", t)
	default:
		return t, nil
	}
}
