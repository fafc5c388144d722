package forms

import (
	"errors"
	"fmt"
	"testing"
	"time"

	"github.com/fieldsync/fieldsync/internal/domain"
	"github.com/fieldsync/fieldsync/schemas"
)

// FuzzParseDefinition feeds arbitrary bytes to ParseDefinition: it must never
// panic, must refuse with a *domain.Error (never an internal error), and what it
// accepts must validate records without panicking and be stable under
// canonicalization.
func FuzzParseDefinition(f *testing.F) {
	for _, name := range schemas.ExampleNames() {
		raw, err := schemas.Example(name)
		if err != nil {
			f.Fatal(err)
		}
		f.Add(raw, []byte(`{}`))
	}
	seeds := []string{
		`{"title":"t","schema":{"type":"object"}}`,
		`{"title":"t","schema":{"type":"object","properties":{"a":{"$ref":"#/$defs/x"}},"$defs":{"x":{"type":"string","format":"date"}}}}`,
		`{"title":"t","schema":{"type":"object","properties":{"a":{"$ref":"http://127.0.0.1:9/x"}}}}`,
		`{"title":"t","schema":{"type":"object","properties":{"p":{"type":"object","format":"geopoint"}}}}`,
		`{"title":"t","schema":{"$id":"https://e.org/s","type":"object","$defs":{"n":{"$anchor":"n","items":{"$dynamicRef":"#n"}}},"properties":{"a":{"$ref":"#n"}}}}`,
		`{"title":"t","schema":{"type":"object","patternProperties":{"^a":{"minimum":1e308}},"if":{"required":["a"]},"then":{"not":{}}}}`,
		`{"title":"t","schema":{"type":"object","properties":{"a":{"allOf":[{"$ref":"#"}]}}}}`,
		`{"title":"t","ui":{},"shared":true,"conflict_policy":"reject","schema":{"type":"object","unevaluatedProperties":false}}`,
		`[`, `{"title":"t","title":"u"}`, `null`,
	}
	for _, s := range seeds {
		f.Add([]byte(s), []byte(`{"a":"2024-01-01","p":{"latitude":1,"longitude":2}}`))
	}
	f.Fuzz(func(t *testing.T, raw, record []byte) {
		watchdog := time.AfterFunc(10*time.Second, func() { panic(fmt.Sprintf("WATCHDOG slow input %q %q", raw, record)) })
		defer watchdog.Stop()
		d, err := ParseDefinition(raw)
		if err != nil {
			var e *domain.Error
			if !errors.As(err, &e) || e.Kind == domain.KindInternal {
				t.Fatalf("not a client error: %v", err)
			}
			if e.Kind == domain.KindInvalid && len(e.Findings) == 0 {
				t.Fatalf("422 without findings: %v", err)
			}
			return
		}
		again, err := ParseDefinition(d.Canonical)
		if err != nil {
			t.Fatalf("canonical form refused: %v\n%s", describeErr(err), d.Canonical)
		}
		if again.Hash != d.Hash {
			t.Fatalf("hash changed after canonicalization")
		}
		_ = d.ValidateJSON(record)
	})
}
