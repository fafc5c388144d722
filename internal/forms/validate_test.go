package forms

import (
	"bytes"
	"encoding/json"
	"strings"
	"testing"
	"time"

	"github.com/santhosh-tekuri/jsonschema/v6"
)

const formatsForm = `{"title": "Formats", "schema": {"type": "object", "properties": {
	"day":   {"type": "string", "format": "date"},
	"at":    {"type": "string", "format": "date-time"},
	"clock": {"type": "string", "format": "time"},
	"email": {"type": "string", "format": "email"},
	"id":    {"type": "string", "format": "uuid"},
	"point": {"type": "object", "format": "geopoint"},
	"maybe": {"type": ["object", "null"], "format": "geopoint"},
	"any":   {"format": "geopoint"}
}}}`

func TestFormatsAsserted(t *testing.T) {
	d := mustParse(t, formatsForm)
	tests := []struct {
		name  string
		data  string
		valid bool
	}{
		{"date", `{"day": "2024-02-29"}`, true},
		{"date not a leap year", `{"day": "2023-02-29"}`, false},
		{"date in another notation", `{"day": "29/02/2024"}`, false},
		{"date-time", `{"at": "2024-05-14T09:30:00+03:00"}`, true},
		{"date-time UTC fraction", `{"at": "2024-05-14T09:30:00.123Z"}`, true},
		{"date-time without zone", `{"at": "2024-05-14T09:30:00"}`, false},
		{"date-time with a space", `{"at": "2024-05-14 09:30:00Z"}`, false},
		{"time", `{"clock": "09:30:00+03:00"}`, true},
		{"time without zone", `{"clock": "09:30"}`, false},
		{"email", `{"email": "focal.point@example.org"}`, true},
		{"email without domain", `{"email": "focal.point@"}`, false},
		{"uuid", `{"id": "3f0c5c1e-8b7a-4d2e-9c1f-0a1b2c3d4e5f"}`, true},
		{"uuid too short", `{"id": "3f0c5c1e-8b7a-4d2e-9c1f"}`, false},
		{"uuid not hex", `{"id": "3f0c5c1e-8b7a-4d2e-9c1f-0a1b2c3d4e5g"}`, false},
		{"geopoint", `{"point": {"latitude": -1.31, "longitude": 36.78}}`, true},
		{"geopoint full", `{"point": {"latitude": 90, "longitude": -180, "altitude": -12.5, "accuracy": 0}}`, true},
		{"geopoint integers and exponents", `{"point": {"latitude": 1e1, "longitude": 36}}`, true},
		{"geopoint latitude out of range", `{"point": {"latitude": 90.0001, "longitude": 0}}`, false},
		{"geopoint longitude out of range", `{"point": {"latitude": 0, "longitude": -180.5}}`, false},
		{"geopoint negative accuracy", `{"point": {"latitude": 0, "longitude": 0, "accuracy": -1}}`, false},
		{"geopoint altitude not a number", `{"point": {"latitude": 0, "longitude": 0, "altitude": "high"}}`, false},
		{"geopoint missing longitude", `{"point": {"latitude": 0}}`, false},
		{"geopoint string latitude", `{"point": {"latitude": "0", "longitude": 0}}`, false},
		{"geopoint extra member", `{"point": {"latitude": 0, "longitude": 0, "name": "home"}}`, false},
		{"geopoint as array", `{"any": [0, 0]}`, false},
		{"geopoint as string", `{"any": "-1.31 36.78"}`, false},
		{"nullable geopoint null", `{"maybe": null}`, true},
		{"geopoint null where type forbids it", `{"point": null}`, false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got := d.ValidateJSON([]byte(tt.data))
			if tt.valid && len(got) != 0 {
				t.Fatalf("findings for a valid value: %v", got)
			}
			if !tt.valid && len(got) != 1 {
				t.Fatalf("findings %v, want exactly one", got)
			}
			if !tt.valid && got[0].Keyword != "format" && got[0].Keyword != "type" {
				t.Errorf("keyword %q", got[0].Keyword)
			}
		})
	}
}

// TestFindingsDoNotEchoValues keeps answers out of messages: findings are
// logged and listed in the quarantine.
func TestFindingsDoNotEchoValues(t *testing.T) {
	d := mustParse(t, formatsForm)
	secret := "Amina-Wanjiru"
	for _, data := range []string{
		`{"day": "` + secret + `"}`, `{"at": "` + secret + `"}`, `{"email": "` + secret + `"}`,
		`{"id": "` + secret + `"}`, `{"any": "` + secret + `"}`,
	} {
		for _, f := range d.ValidateJSON([]byte(data)) {
			if strings.Contains(f.Message, "Amina") {
				t.Errorf("message %q repeats the value", f.Message)
			}
		}
	}
	p := mustParseExample(t, "perception-survey")
	for _, f := range p.ValidateJSON([]byte(`{"respondent": {"gender": "` + secret + `", "age": "` + secret + `"}}`)) {
		if strings.Contains(f.Message, "Amina") {
			t.Errorf("message %q repeats the value", f.Message)
		}
	}
}

func TestValidateDecodedValues(t *testing.T) {
	d := mustParseExample(t, "perception-survey")
	rec := readSample(t, "perception-survey", "good-full.json")
	bad := readSample(t, "perception-survey", "bad-age-out-of-range.json")

	useNumber := func(b []byte) any {
		dec := json.NewDecoder(bytes.NewReader(b))
		dec.UseNumber()
		var v any
		if err := dec.Decode(&v); err != nil {
			t.Fatal(err)
		}
		return v
	}
	plain := func(b []byte) any {
		var v any
		if err := json.Unmarshal(b, &v); err != nil {
			t.Fatal(err)
		}
		return v
	}
	library := func(b []byte) any {
		v, err := jsonschema.UnmarshalJSON(bytes.NewReader(b))
		if err != nil {
			t.Fatal(err)
		}
		return v
	}
	tests := []struct {
		name string
		data func([]byte) any
	}{
		{"bytes", func(b []byte) any { return b }},
		{"json.RawMessage", func(b []byte) any { return json.RawMessage(b) }},
		{"json.Decoder with UseNumber", useNumber},
		{"jsonschema.UnmarshalJSON", library},
		{"json.Unmarshal (float64)", plain},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if f := d.Validate(tt.data(rec)); len(f) != 0 {
				t.Errorf("good record: %v", f)
			}
			assertFindings(t, d.Validate(tt.data(bad)), []want{{"/respondent/age", "minimum"}})
		})
	}
	t.Run("not JSON", func(t *testing.T) {
		f := d.Validate(struct{ A int }{1})
		if len(f) != 1 || f[0].Path != "" {
			t.Errorf("findings %v", f)
		}
	})
}

// TestHostileRecords covers data that would crash or stall the validator
// without the decoder's bounds: jsonschema v6 turns numbers into big.Rat, which
// fails (and the validator dereferences nil) beyond the float64 range and costs
// a lot for huge exponents.
func TestHostileRecords(t *testing.T) {
	d := mustParse(t, def(`{"n": {"type": "number", "minimum": 0, "multipleOf": 0.5}, "s": {"type": "object"}}`))
	tests := []struct {
		name string
		data string
		path string
	}{
		{"number beyond float64", `{"n": 1e999999999}`, "/n"},
		{"number with a huge negative exponent", `{"n": 1e-999999}`, "/n"},
		{"number beyond float64 without a huge exponent", `{"n": 2e308}`, "/n"},
		{"very long number", `{"n": 1` + strings.Repeat("0", 200) + `}`, "/n"},
		{"deep nesting", `{"s": ` + strings.Repeat(`{"a":`, 200) + `1` + strings.Repeat("}", 200) + `}`, "/s/a/a/a"},
		{"duplicate key", `{"n": 1, "n": -1}`, "/n"},
		{"not JSON", `{"n": 1,}`, ""},
		{"empty", ``, ""},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			start := time.Now()
			f := d.ValidateJSON([]byte(tt.data))
			if len(f) != 1 || !strings.HasPrefix(f[0].Path, tt.path) {
				t.Errorf("findings %v, want one at %q", f, tt.path)
			}
			if el := time.Since(start); el > 50*time.Millisecond {
				t.Errorf("took %v", el)
			}
		})
	}
	t.Run("decoded json.Number out of bounds", func(t *testing.T) {
		for _, lit := range []string{"1e999999999", "1e-999999", "12a"} {
			f := d.Validate(map[string]any{"n": json.Number(lit)})
			if len(f) != 1 || f[0].Path != "/n" {
				t.Errorf("%s: findings %v", lit, f)
			}
		}
	})
	t.Run("exact decimals", func(t *testing.T) {
		if f := d.ValidateJSON([]byte(`{"n": 0.5}`)); len(f) != 0 {
			t.Errorf("0.5 is a multiple of 0.5: %v", f)
		}
		assertFindings(t, d.ValidateJSON([]byte(`{"n": 0.3}`)), []want{{"/n", "multipleOf"}})
	})
}

func TestFindingsShape(t *testing.T) {
	d := mustParse(t, `{"title": "t", "schema": {"type": "object",
		"properties": {
			"choice": {"anyOf": [{"type": "string", "minLength": 3}, {"type": "integer"}]},
			"one": {"oneOf": [{"type": "integer"}, {"type": "number"}]},
			"a~b/c": {"type": "string"},
			"kids": {"type": "array", "items": false},
			"names": {"type": "object", "propertyNames": {"pattern": "^[a-z]+$"}},
			"when": {"type": "string"}, "then_req": {"type": "string"}
		},
		"dependentRequired": {"when": ["then_req"]},
		"not": {"required": ["forbidden"]}
	}}`)
	tests := []struct {
		name string
		data string
		want []want
	}{
		{"anyOf", `{"choice": "ab"}`, []want{{"/choice", "anyOf"}}},
		{"oneOf both", `{"one": 3}`, []want{{"/one", "oneOf"}}},
		{"escaped pointer", `{"a~b/c": 1}`, []want{{"/a~0b~1c", "type"}}},
		{"false schema", `{"kids": [1]}`, []want{{"/kids/0", "false"}}},
		{"propertyNames", `{"names": {"ok": 1, "Not OK": 2}}`, []want{{"/names/Not OK", "propertyNames"}}},
		{"dependentRequired", `{"when": "x"}`, []want{{"/then_req", "dependentRequired"}}},
		{"not", `{"forbidden": 1}`, []want{{"", "not"}}},
		{"root type", `[]`, []want{{"", "type"}}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			assertFindings(t, d.ValidateJSON([]byte(tt.data)), tt.want)
		})
	}
	f := d.ValidateJSON([]byte(`{"choice": "ab"}`))
	if len(f) == 1 && !strings.Contains(f[0].Message, "at least 3 characters") {
		t.Errorf("anyOf message does not explain the alternatives: %q", f[0].Message)
	}
}

func TestMessages(t *testing.T) {
	d := mustParse(t, `{"title": "t", "schema": {"type": "object", "properties": {
		"props": {"type": "object", "minProperties": 2, "maxProperties": 3},
		"one": {"type": "object", "minProperties": 1},
		"list": {"type": "array", "minItems": 2, "maxItems": 1},
		"has": {"type": "array", "contains": {"const": "x"}},
		"few": {"type": "array", "contains": {"const": "x"}, "minContains": 2, "maxContains": 3},
		"many": {"type": "array", "contains": {"const": "x"}, "maxContains": 1},
		"gt": {"exclusiveMinimum": 0.5},
		"lt": {"exclusiveMaximum": 10},
		"step": {"multipleOf": 0.25},
		"short": {"maxLength": 2},
		"word": {"minLength": 3},
		"tuple": {"type": "array", "prefixItems": [{"type": "integer"}], "items": false},
		"either": {"type": ["string", "integer", "null"]}
	}}}`)
	tests := []struct {
		data    string
		keyword string
		message string
	}{
		{`{"props": {"a": 1}}`, "minProperties", "must have at least 2 properties"},
		{`{"props": {"a": 1, "b": 2, "c": 3, "d": 4}}`, "maxProperties", "must have at most 3 properties"},
		{`{"one": {}}`, "minProperties", "must have at least 1 property"},
		{`{"list": [1]}`, "minItems", "must have at least 2 items"},
		{`{"list": [1, 2]}`, "maxItems", "must have at most 1 item"},
		{`{"has": ["y"]}`, "contains", "must contain a matching item"},
		{`{"few": ["x", "y"]}`, "minContains", "must contain at least 2 matching items"},
		{`{"many": ["x", "x"]}`, "maxContains", "must contain at most 1 matching item"},
		{`{"gt": 0.5}`, "exclusiveMinimum", "must be > 0.5"},
		{`{"lt": 10}`, "exclusiveMaximum", "must be < 10"},
		{`{"step": 0.3}`, "multipleOf", "must be a multiple of 0.25"},
		{`{"short": "abc"}`, "maxLength", "must be at most 2 characters long"},
		{`{"word": "ab"}`, "minLength", "must be at least 3 characters long"},
		{`{"tuple": [1, 2]}`, "false", "is not allowed"},
		{`{"either": true}`, "type", "must be null, integer or string, not boolean"},
	}
	for _, tt := range tests {
		t.Run(tt.keyword+" "+tt.data, func(t *testing.T) {
			f := d.ValidateJSON([]byte(tt.data))
			if len(f) != 1 || f[0].Keyword != tt.keyword || f[0].Message != tt.message {
				t.Errorf("findings %v, want [%s] %q", f, tt.keyword, tt.message)
			}
		})
	}
}
