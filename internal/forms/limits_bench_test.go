package forms

import (
	"fmt"
	"strings"
	"testing"
)

// worstAccepted are definitions at the limits: the costliest the upload
// accepts for one value. [a-z]{0,31}Q keeps all its 64 instructions live at
// every character of a run of letters (MaxPatternWidth), and measured the
// slowest per character of the shapes tried (flat optionals, nested stars,
// alternations of runs).
var worstAccepted = []struct {
	name   string
	schema string
	value  func(n int) string // a record of about n bytes, with findings
}{
	{"pattern", `{"type": "object", "properties": {"a": {"type": "string", "pattern": "[a-z]{0,31}Q"}}}`, func(n int) string {
		return `{"a": "` + strings.Repeat("a", n) + `"}` // no Q: the fast path and the library both run it
	}},
	// Each item of a against 199 schemas: the allOf branch and its target
	// count for each reference.
	{"schemas", `{"type": "object", "$defs": {"s": {"type": "string", "minLength": 2}}, "properties": {"a": {"type": "array", "items": {"allOf": [` +
		strings.TrimSuffix(strings.Repeat(`{"$ref": "#/$defs/s"},`, (MaxSchemasPerValue-1)/2), ",") + `]}}}}`,
		func(n int) string {
			return `{"a": [` + strings.TrimSuffix(strings.Repeat(`"a",`, n/4), ",") + `]}`
		}},
}

// BenchmarkWorstAcceptedDefinition measures what the definitions at the limits
// cost: one 10 KB answer, and a push of 1,000 records of 16 KB each (the most
// a 16 MiB push body holds). Before the limits, one 10 KB answer against the
// issue's 20,000-alternative pattern took 17 s.
func BenchmarkWorstAcceptedDefinition(b *testing.B) {
	for _, w := range worstAccepted {
		d := mustParse(b, `{"title": "t", "schema": `+w.schema+`}`)
		sizes := []struct {
			name    string
			records int
			bytes   int
		}{{"answer-10KB", 1, 10 << 10}, {"push-1000x16KB", 1000, 16 << 10}}
		if w.name == "schemas" {
			sizes = sizes[:1] // a push is 1,600 times the answer: half an hour
		}
		for _, size := range sizes {
			rec := []byte(w.value(size.bytes))
			if len(d.ValidateJSON(rec)) == 0 {
				b.Fatalf("%s: the worst case must be a record with findings", w.name)
			}
			b.Run(fmt.Sprintf("%s/%s", w.name, size.name), func(b *testing.B) {
				b.SetBytes(int64(len(rec) * size.records))
				for b.Loop() {
					for range size.records {
						d.ValidateJSON(rec)
					}
				}
			})
		}
	}
}
