package syncer

import (
	"bytes"
	"errors"
	"testing"

	"github.com/fieldsync/fieldsync/internal/canonjson"
)

// TestCanonicalIsCanonjson: record data is canonicalised by internal/canonjson
// (its tests hold the cases); the sync core's names only forward to it.
func TestCanonicalIsCanonjson(t *testing.T) {
	for _, in := range []string{`{"b":1,"a":[1.0,"\u00e9"]}`, `12345678901234567891`, `3.14159265358979323846`} {
		got, err := Canonical([]byte(in))
		want, werr := canonjson.Canonical([]byte(in))
		if err != nil || werr != nil || !bytes.Equal(got, want) {
			t.Errorf("Canonical(%s) = %s, %v; canonjson %s, %v", in, got, err, want, werr)
		}
	}
	_, err := Canonical([]byte(`{"a":1,"a":2}`))
	var je *JSONError
	if !errors.Is(err, ErrInvalidJSON) || !errors.Is(err, ErrDuplicateKey) || !errors.As(err, &je) || je.Offset != 7 {
		t.Errorf("duplicate key: %v", err)
	}
}

// TestRevisionsKeepEveryDigit: two edits that differ only in digits a double
// cannot hold are different revisions, and an identity number's digits are
// hashed as typed.
func TestRevisionsKeepEveryDigit(t *testing.T) {
	a, err := NewRev("", []byte(`{"id":12345678901234567891}`), false)
	if err != nil {
		t.Fatal(err)
	}
	b, err := NewRev("", []byte(`{"id":12345678901234567892}`), false)
	if err != nil {
		t.Fatal(err)
	}
	if a == b {
		t.Errorf("different ids, same revision %s", a)
	}
	c, err := NewRev("", []byte(`{"x":0.10000000000000001}`), false)
	if err != nil {
		t.Fatal(err)
	}
	d, err := NewRev("", []byte(`{"x":0.1}`), false)
	if err != nil {
		t.Fatal(err)
	}
	if c == d {
		t.Errorf("different decimals, same revision %s", c)
	}
}

func sign(n int) int {
	switch {
	case n < 0:
		return -1
	case n > 0:
		return 1
	}
	return 0
}
