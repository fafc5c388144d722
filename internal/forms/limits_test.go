package forms

import (
	"fmt"
	"runtime"
	"strings"
	"testing"

	"github.com/fieldsync/fieldsync/internal/domain"
	"github.com/fieldsync/fieldsync/schemas"
	"github.com/santhosh-tekuri/jsonschema/v6"
)

// alternatives builds an unanchored pattern of n 18-character literal
// alternatives, the shape of issue 10.4's 20,000-alternative pattern.
func alternatives(n int) string {
	var b strings.Builder
	for i := range n {
		if i > 0 {
			b.WriteByte('|')
		}
		fmt.Fprintf(&b, "w%06dxyzabcdefgh", i*7919%1000000)
	}
	return b.String()
}

// jsonString quotes s as a JSON string.
func jsonString(s string) string {
	return `"` + strings.ReplaceAll(strings.ReplaceAll(s, `\`, `\\`), `"`, `\"`) + `"`
}

// TestPatternLimits: a pattern whose matching costs too much per answer is
// refused at upload, at its own pointer, with a message that states the limit
// (issue 10.4). Before the limits, every one of these published.
func TestPatternLimits(t *testing.T) {
	tests := []struct {
		name  string
		raw   string
		at    string
		kw    string
		limit int
	}{
		// 1,000 alternatives, 19 KB: a twentieth of the issue's pattern and
		// still a 35 ms check of a 10 KB answer.
		{"huge alternation", def(`{"code": {"type": "string", "pattern": ` + jsonString(alternatives(1000)) + `}}`),
			"/schema/properties/code/pattern", "pattern", MaxPatternLength},
		{"huge alternation, anchored", def(`{"code": {"type": "string", "pattern": ` + jsonString("^("+alternatives(1000)+")$") + `}}`),
			"/schema/properties/code/pattern", "pattern", MaxPatternLength},
		// 24 bytes that compile to 2,003 instructions.
		{"short pattern, large program", def(`{"code": {"type": "string", "pattern": "(?:[a-z]{1,100}){1,10}x"}}`),
			"/schema/properties/code/pattern", "pattern", MaxPatternProgram},
		{"anchored, bounded, but too large a program", def(`{"code": {"type": "string", "pattern": "^(?:[a-z]{1,100}){1,10}$"}}`),
			"/schema/properties/code/pattern", "pattern", MaxPatternProgram},
		// Unanchored: 122 instructions, all live.
		{"unanchored, too wide", def(`{"code": {"type": "string", "pattern": "[a-z]{1,60}Q"}}`),
			"/schema/properties/code/pattern", "pattern", MaxPatternWidth},
		// Anchored and bounded: dies after 201 characters, but keeps 300
		// instructions live until then.
		{"anchored, too wide", def(`{"code": {"type": "string", "pattern": "^(?:[a-z]?[a-z]?){100}Q"}}`),
			"/schema/properties/code/pattern", "pattern", MaxPatternWidth},
		{"patternProperties key", `{"title": "t", "schema": {"type": "object", "patternProperties": {` + jsonString(alternatives(100)) + `: {"type": "string"}}}}`,
			"/schema/patternProperties/" + escapePointer(alternatives(100)), "patternProperties", MaxPatternLength},
		{"patternProperties key, open program", `{"title": "t", "schema": {"type": "object", "patternProperties": {"x_[a-z]{1,60}": {"type": "string"}}}}`,
			"/schema/patternProperties/x_[a-z]{1,60}", "patternProperties", MaxPatternWidth},
		{"pattern in $defs behind a $ref", `{"title": "t", "schema": {"type": "object", "$defs": {"code": {"type": "string", "pattern": "[a-z]{1,60}Q"}}, "properties": {"a": {"$ref": "#/$defs/code"}}}}`,
			"/schema/$defs/code/pattern", "pattern", MaxPatternWidth},
		{"patterns too large together", def(`{` + manyPatterns(25) + `}`), "/schema", "", MaxPatternsProgram},
		{"propertyNames pattern", `{"title": "t", "schema": {"type": "object", "propertyNames": {"pattern": ` + jsonString(alternatives(200)) + `}}}`,
			"/schema/propertyNames/pattern", "pattern", MaxPatternLength},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, err := ParseDefinition([]byte(tt.raw))
			e := domainErr(t, err, domain.KindInvalid, CodeInvalidDefinition)
			assertFindings(t, e.Findings, []want{{tt.at, tt.kw}})
			if msg := e.Findings[0].Message; !strings.Contains(msg, fmt.Sprintf("at most %d", tt.limit)) {
				t.Errorf("message %q does not state the limit %d", msg, tt.limit)
			}
			if len(e.Findings[0].Message) > 400 {
				t.Errorf("message is %d bytes long; it must not quote the pattern", len(e.Findings[0].Message))
			}
		})
	}
}

// manyPatterns returns n properties with distinct patterns of 1,000
// instructions, each narrow enough on its own.
func manyPatterns(n int) string {
	var props []string
	for i := range n {
		props = append(props, fmt.Sprintf(`"p%d": {"type": "string", "pattern": "^[a-z]{0,490}%02d$"}`, i, i))
	}
	return strings.Join(props, ", ")
}

// TestIssuePatternRefused is issue 10.4's pattern itself: 20,000
// alternatives, 380 KB, which published and then took 17 s per 10 KB answer.
// It is refused without being compiled.
func TestIssuePatternRefused(t *testing.T) {
	raw := def(`{"code": {"type": "string", "pattern": ` + jsonString(alternatives(20000)) + `}}`)
	_, err := ParseDefinition([]byte(raw))
	e := domainErr(t, err, domain.KindInvalid, CodeInvalidDefinition)
	assertFindings(t, e.Findings, []want{{"/schema/properties/code/pattern", "pattern"}})
}

// TestFormatRegexAnswerBounded: an answer checked with "format": "regex" is
// compiled by the validator; one longer than MaxPatternLength is not a regex
// the server accepts, so a record cannot make it compile megabytes.
func TestFormatRegexAnswerBounded(t *testing.T) {
	d := mustParse(t, def(`{"re": {"type": "string", "format": "regex"}}`))
	if f := d.ValidateJSON([]byte(`{"re": "^[a-z]+$"}`)); len(f) != 0 {
		t.Errorf("a short regex: %v", f)
	}
	long := `{"re": ` + jsonString(alternatives(100)) + `}`
	assertFindings(t, d.ValidateJSON([]byte(long)), []want{{"/re", "format"}})
}

// TestPatternLimitsAllAtOnce: every pattern over a limit is reported in one
// answer, so a designer fixes them in one round.
func TestPatternLimitsAllAtOnce(t *testing.T) {
	raw := def(`{"a": {"type": "string", "pattern": ` + jsonString(alternatives(100)) + `},
		"b": {"type": "string", "pattern": "[a-z]{1,60}Q"},
		"c": {"type": "string", "pattern": "^[A-Z]{2}$"}}`)
	_, err := ParseDefinition([]byte(raw))
	e := domainErr(t, err, domain.KindInvalid, CodeInvalidDefinition)
	assertFindings(t, e.Findings, []want{{"/schema/properties/a/pattern", "pattern"}, {"/schema/properties/b/pattern", "pattern"}})
}

// TestPatternLimitsAccept: the patterns real forms use stay accepted, among
// them long bounded ones that only look expensive.
func TestPatternLimitsAccept(t *testing.T) {
	for _, p := range []string{
		`\S`, `^[^<>]*$`, `[^@\s]+@[^@\s]+\.[a-z]{2,}`, `^[\p{L} '.-]+$`, `^[A-Z][a-z]+( [A-Z][a-z]+)*$`,
		`^\+?[0-9 ()-]{7,20}$`, `^(?i)[a-z0-9._%+-]+@[a-z0-9.-]+\.[a-z]{2,}$`, `^https?://[^\s/$.?#].[^\s]*$`,
		`^(\+|00)[1-9][0-9 \-\(\)\.]{7,32}$`, `^[A-Za-z0-9][A-Za-z0-9._-]{0,99}\.(jpg|jpeg|png|pdf|m4a|mp3)$`,
		`^.{0,400}$`, `^(?:[A-Z][a-z']+)(?:[ -][A-Z][a-z']+){0,5}$`, `^[0-9]{4}-[0-9]{2}-[0-9]{2}$`,
		`^\d{4}-\d{2}-\d{2}T\d{2}:\d{2}(:\d{2}(\.\d+)?)?(Z|[+-]\d{2}:\d{2})$`,
		`^((25[0-5]|2[0-4]\d|1\d\d|[1-9]?\d)\.){3}(25[0-5]|2[0-4]\d|1\d\d|[1-9]?\d)$`,
		`^(?:[A-Z0-9]{3,6}-){2,4}[A-Z0-9]{3,6}$`, `^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$`,
	} {
		raw := def(`{"a": {"type": "string", "pattern": ` + jsonString(p) + `}}`)
		if _, err := ParseDefinition([]byte(raw)); err != nil {
			t.Errorf("pattern %s refused: %v", p, describeErr(err))
		}
	}
}

// TestExamplesWithinLimits: the three example forms are accepted under the
// pattern, loop and per-value limits, and are well inside them.
func TestExamplesWithinLimits(t *testing.T) {
	names := schemas.ExampleNames()
	if len(names) != 3 {
		t.Fatalf("%d example forms, want 3", len(names))
	}
	for _, name := range names {
		d := mustParseExample(t, name)
		_, costs := costFindings(d.schema)
		var most valueCost
		for s, c := range costs {
			forEachPattern(s, func(ptr, _ string, re jsonschema.Regexp) {
				src := re.String()
				pc, err := analyzePattern(src)
				if err != nil {
					t.Fatalf("%s %s: %v", name, ptr, err)
				}
				t.Logf("%s %s: %d bytes, %d instructions, width %d", name, ptr, len(src), pc.insts, pc.width)
				if len(src) > MaxPatternLength/2 || pc.insts > MaxPatternProgram/2 {
					t.Errorf("%s %s: less than half the limits left", name, ptr)
				}
			})
			most.schemas = max(most.schemas, c.schemas)
			most.width = max(most.width, c.width)
		}
		t.Logf("%s: at most %d schemas and a pattern width of %d per value", name, most.schemas, most.width)
		if most.schemas > MaxSchemasPerValue/4 || most.width > MaxPatternWidth/2 {
			t.Errorf("%s: %+v per value: less than half the limits left", name, most)
		}
	}
}

// TestPerValueLimits: patterns and schemas repeated on the same value through
// allOf and $ref add up, so a definition cannot multiply an accepted pattern
// (or any schema) thousands of times.
func TestPerValueLimits(t *testing.T) {
	nested := func(levels, width int) string {
		defs := `"a0": {"type": "string"}`
		for i := 1; i < levels; i++ {
			refs := strings.TrimSuffix(strings.Repeat(fmt.Sprintf(`{"$ref": "#/$defs/a%d"},`, i-1), width), ",")
			defs += fmt.Sprintf(`, "a%d": {"allOf": [%s]}`, i, refs)
		}
		return fmt.Sprintf(`{"title": "t", "schema": {"type": "object", "$defs": {%s}, "properties": {"x": {"$ref": "#/$defs/a%d"}}}}`, defs, levels-1)
	}
	repeat := func(pattern string, n int) string {
		refs := strings.TrimSuffix(strings.Repeat(`{"$ref": "#/$defs/p"},`, n), ",")
		return `{"title": "t", "schema": {"type": "object", "$defs": {"p": {"type": "string", "pattern": ` + jsonString(pattern) + `}},
			"properties": {"x": {"allOf": [` + refs + `]}}}}`
	}
	tests := []struct {
		name  string
		raw   string
		at    string
		limit int
	}{
		// 10^12 checks of one value, from 2 KB.
		{"nested allOf", nested(13, 10), "/schema/$defs/a2", MaxSchemasPerValue},
		// 10 instructions live (unanchored), seven times.
		{"pattern repeated", repeat(`[^@\s]+@[^@\s]+\.[a-z]{2,}`, 7), "/schema/properties/x", MaxPatternWidth},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, err := ParseDefinition([]byte(tt.raw))
			e := domainErr(t, err, domain.KindInvalid, CodeInvalidDefinition)
			assertFindings(t, e.Findings, []want{{tt.at, ""}})
			if msg := e.Findings[0].Message; !strings.Contains(msg, fmt.Sprintf("at most %d", tt.limit)) {
				t.Errorf("message %q does not state the limit %d", msg, tt.limit)
			}
		})
	}
	// Repeats within the limits are fine.
	mustParse(t, repeat(`^[A-Z]{2}$`, 20))
	mustParse(t, repeat(`[^@\s]+@[^@\s]+\.[a-z]{2,}`, 6))
	mustParse(t, nested(2, 10))
}

// TestManyLargePatternsNotCompiled: 2,000 patterns (100 KB) that each
// compile to 2,000 to 90,000 instructions are refused without compiling them
// all (which allocated gigabytes), with a bounded list of findings. (A 1 MiB
// definition of 20,000 properties takes jsonschema v6 some 10 s to compile
// whatever its patterns: its compile queue is quadratic.)
func TestManyLargePatternsNotCompiled(t *testing.T) {
	for _, format := range []string{`^[a-z]{0,999}x%05d$`, `^[a-z]{0,985}x%05d$`, `[a-z]{1000}[a-z]{1000}%05d`} {
		t.Run(format, func(t *testing.T) {
			var props []string
			for i := range 2000 {
				props = append(props, fmt.Sprintf(`"p%d": {"pattern": "%s"}`, i, fmt.Sprintf(format, i)))
			}
			raw := def(`{` + strings.Join(props, ", ") + `}`)
			var before, after runtime.MemStats
			runtime.ReadMemStats(&before)
			_, err := ParseDefinition([]byte(raw))
			runtime.ReadMemStats(&after)
			e := domainErr(t, err, domain.KindInvalid, CodeInvalidDefinition)
			if len(e.Findings) > maxCompileFindings+1 {
				t.Errorf("%d findings, want at most %d", len(e.Findings), maxCompileFindings+1)
			}
			if alloc := after.TotalAlloc - before.TotalAlloc; alloc > 100<<20 {
				t.Errorf("%d MB allocated", alloc>>20)
			} else {
				t.Logf("%d MB allocated, %d findings", alloc>>20, len(e.Findings))
			}
		})
	}
}
