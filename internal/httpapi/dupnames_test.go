package httpapi

import (
	"bytes"
	"errors"
	"net/http"
	"testing"

	"github.com/go-json-experiment/json/jsontext"

	"github.com/fieldsync/fieldsync/api"
)

var dupSeeds = []string{
	`{}`, `[]`, `"x"`, `1`, `{"a":1,"b":2}`, `{"a":1,"a":2}`, `{"a":{"b":1},"c":{"b":1}}`,
	`{"a":{"b":1,"b":2}}`, `[{"a":1},{"a":1}]`, `[{"a":1,"a":1}]`, `{"a":"a","b":"a"}`,
	`{"\u0061":1,"a":2}`, `{"a":[{"x":{"y":1,"y":1}}]}`, `{"a":1,"a":`, `{"data":{"x":1,"x":2}}`,
}

// FuzzDuplicateMember: with nothing skipped, duplicateMember finds a repeat
// exactly when encoding/json/v2's tokenizer refuses the value for one.
func FuzzDuplicateMember(f *testing.F) {
	for _, s := range dupSeeds {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, data []byte) {
		_, err := jsontext.NewDecoder(bytes.NewReader(data), jsontext.AllowInvalidUTF8(true)).ReadValue()
		var syn *jsontext.SyntacticError
		libDup := errors.As(err, &syn) && errors.Is(syn.Err, jsontext.ErrDuplicateName)
		if libDup && !jsontext.Value(data).IsValid(jsontext.AllowInvalidUTF8(true), jsontext.AllowDuplicateNames(true)) {
			return // invalid for another reason further on: the strict decoder words it
		}
		if got := duplicateMember(data); (got != "") != libDup {
			t.Fatalf("%q: duplicateMember %q, library says duplicate: %v (%v)", data, got, libDup, err)
		}
	})
}

func TestDuplicateMemberSkips(t *testing.T) {
	if got := duplicateMember([]byte(`{"data":{"x":1,"x":2},"id":"a"}`), "/data"); got != "" {
		t.Errorf("inside a skipped member: %q", got)
	}
	if got := duplicateMember([]byte(`{"data":{},"data":{}}`), "/data"); got == "" {
		t.Error("a skipped member repeated itself must be found")
	}
}

// TestPushRepeatedSubmissions: a push body naming submissions twice is refused
// as a whole (which list was meant is unknown), not decoded as the last one.
func TestPushRepeatedSubmissions(t *testing.T) {
	e := newSyncEnv(t)
	body := `{"submissions": [], "submissions": []}`
	resp, raw := e.ts.call(t, http.MethodPost, "/v1/projects/"+syncProject+"/sync/push", e.devA.token, body)
	p := problemOf(t, resp, raw, http.StatusBadRequest, api.CodeBadJSON)
	if p.Detail == "" {
		t.Error("no detail")
	}
}
