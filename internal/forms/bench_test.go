package forms

import (
	"bytes"
	"encoding/json"
	"testing"

	"github.com/fieldsync/fieldsync/internal/domain"
)

// BenchmarkValidatePerception measures what every pushed record costs: checking
// the data bytes of one valid perception-survey record against the compiled
// schema. "fast" is ValidateJSON (the fast path answers), on the sample as
// written and on its canonical form, which is what a push hands it; "library"
// is the path every record took before the fast path, and still takes when the
// fast path is not sure: decoding the bytes and the library's validator.
func BenchmarkValidatePerception(b *testing.B) {
	d := mustParseExample(b, "perception-survey")
	if d.fast == nil {
		b.Fatal("no fast path for the perception survey")
	}
	rec := readSample(b, "perception-survey", "good-full.json")
	canonical := mustCanonical(b, rec)
	for _, bc := range []struct {
		name     string
		validate func([]byte) []domain.Finding
		rec      []byte
	}{
		{"fast", d.ValidateJSON, rec},
		{"fast-canonical", d.ValidateJSON, canonical},
		{"library", d.validateJSONLibrary, rec},
	} {
		b.Run(bc.name, func(b *testing.B) {
			b.SetBytes(int64(len(bc.rec)))
			b.ReportAllocs()
			for b.Loop() {
				if f := bc.validate(bc.rec); len(f) != 0 {
					b.Fatalf("findings: %v", f)
				}
			}
			b.ReportMetric(float64(b.N)/b.Elapsed().Seconds(), "validations/s")
		})
	}
}

// BenchmarkDecodeRecord isolates the decoding part of BenchmarkValidatePerception.
func BenchmarkDecodeRecord(b *testing.B) {
	d := mustParseExample(b, "perception-survey")
	rec := readSample(b, "perception-survey", "good-full.json")
	b.SetBytes(int64(len(rec)))
	b.ReportAllocs()
	for b.Loop() {
		if _, err := decodeJSONIntern(rec, MaxDepth, d.intern); err != nil {
			b.Fatal(err)
		}
	}
}

// BenchmarkStdlibDecodeRecord decodes the same record with encoding/json
// (UseNumber, into any): a yardstick for the speed of the machine.
func BenchmarkStdlibDecodeRecord(b *testing.B) {
	rec := readSample(b, "perception-survey", "good-full.json")
	b.SetBytes(int64(len(rec)))
	b.ReportAllocs()
	for b.Loop() {
		dec := json.NewDecoder(bytes.NewReader(rec))
		dec.UseNumber()
		var v any
		if err := dec.Decode(&v); err != nil {
			b.Fatal(err)
		}
	}
}

// BenchmarkValidateInvalidPerception measures a record with several findings,
// which also pays for turning the library's errors into findings.
func BenchmarkValidateInvalidPerception(b *testing.B) {
	d := mustParseExample(b, "perception-survey")
	rec := readSample(b, "perception-survey", "bad-several.json")
	b.ReportAllocs()
	for b.Loop() {
		if f := d.ValidateJSON(rec); len(f) == 0 {
			b.Fatal("no findings")
		}
	}
}

// BenchmarkParseDefinition measures an upload (and a cache miss).
func BenchmarkParseDefinition(b *testing.B) {
	raw := readExample(b, "perception-survey")
	b.ReportAllocs()
	for b.Loop() {
		if _, err := ParseDefinition(raw); err != nil {
			b.Fatal(err)
		}
	}
}
