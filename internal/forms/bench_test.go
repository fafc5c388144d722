package forms

import (
	"bytes"
	"encoding/json"
	"testing"
)

// BenchmarkValidatePerception measures what every pushed record costs: decoding
// the data bytes of one perception-survey record and validating them against
// the compiled schema.
func BenchmarkValidatePerception(b *testing.B) {
	d := mustParseExample(b, "perception-survey")
	rec := readSample(b, "perception-survey", "good-full.json")
	b.SetBytes(int64(len(rec)))
	b.ReportAllocs()
	for b.Loop() {
		if f := d.ValidateJSON(rec); len(f) != 0 {
			b.Fatalf("findings: %v", f)
		}
	}
	b.ReportMetric(float64(b.N)/b.Elapsed().Seconds(), "validations/s")
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
