package forms

import (
	"fmt"
	"regexp"
	"regexp/syntax"
	"slices"
	"sync/atomic"

	"github.com/fieldsync/fieldsync/internal/domain"
	"github.com/santhosh-tekuri/jsonschema/v6"
)

// Limits on the patterns of a form schema ("pattern", and the keys of
// "patternProperties", which are matched against property names).
//
// Go's regexp matches in time linear in the input, but the factor is the size
// of the compiled program: about 8 ns per instruction per character in the
// worst case (every instruction live at every step). A 20,000-alternative
// pattern made one 10 KB answer take 17 s. What bounds the cost of one check is
// therefore the program size times how far the matcher can run:
//
//   - a bounded pattern, anchored at the start with ^ and without unbounded
//     repetition (* + {n,}), stops after at most its longest match, whatever
//     the answer's length: its cost is at most program² steps;
//   - any other (open) pattern may run over the whole answer, which is as
//     long as the push body allows; "maxLength" does not shorten that, since
//     the validator runs the pattern even on a string that is too long.
//
// So open patterns get a much smaller program than bounded ones. The limits
// accept every pattern a real form uses for codes, names, phone numbers,
// e-mail addresses and non-blank free text, with room to spare (the examples
// use at most a quarter); a list of allowed values belongs in "enum".
const (
	// MaxPatternLength is the longest pattern accepted, in bytes.
	MaxPatternLength = 1000
	// MaxPatternProgram is the most instructions a bounded pattern may
	// compile to (regexp/syntax, after simplification): at most about 8 ms
	// for one check of an answer of any length.
	MaxPatternProgram = 1000
	// MaxOpenPatternProgram is the most instructions an open pattern may
	// compile to: at most about 0.25 µs per character of the answer.
	MaxOpenPatternProgram = 32
	// MaxSchemasPerValue is the most schemas that may check one value in
	// place ($ref, allOf, anyOf, oneOf, not, if/then/else, dependentSchemas,
	// counting repeats). The examples need at most 3; without a bound, a
	// few KiB of nested allOf make one record cost 10^9 checks.
	MaxSchemasPerValue = 1000
)

// patternCost is what matching a pattern costs.
type patternCost struct {
	insts   int  // instructions of the compiled program
	bounded bool // anchored at the start, with a finite longest match
}

// analyzePattern compiles src the way regexp.Compile does (Perl syntax,
// simplified) and measures the program.
func analyzePattern(src string) (patternCost, error) {
	re, err := syntax.Parse(src, syntax.Perl)
	if err != nil {
		return patternCost{}, err
	}
	re = re.Simplify()
	prog, err := syntax.Compile(re)
	if err != nil {
		return patternCost{}, err
	}
	// regexp stops matching an anchored program once no thread is left,
	// which happens after the longest match at the latest.
	anchored := prog.StartCond()&syntax.EmptyBeginText != 0
	return patternCost{insts: len(prog.Inst), bounded: anchored && maxRunes(re) >= 0}, nil
}

// maxRunes returns the most runes re can match, or -1 when that is unbounded.
func maxRunes(re *syntax.Regexp) int {
	switch re.Op {
	case syntax.OpLiteral:
		return len(re.Rune)
	case syntax.OpCharClass, syntax.OpAnyCharNotNL, syntax.OpAnyChar:
		return 1
	case syntax.OpCapture, syntax.OpQuest:
		return maxRunes(re.Sub[0])
	case syntax.OpStar, syntax.OpPlus:
		if maxRunes(re.Sub[0]) == 0 {
			return 0
		}
		return -1
	case syntax.OpRepeat:
		n := maxRunes(re.Sub[0])
		if n == 0 {
			return 0
		}
		if n < 0 || re.Max < 0 {
			return -1
		}
		return n * re.Max // Go's parser caps repetition counts at 1000
	case syntax.OpConcat, syntax.OpAlternate:
		total := 0
		for _, sub := range re.Sub {
			n := maxRunes(sub)
			if n < 0 {
				return -1
			}
			if re.Op == syntax.OpConcat {
				total += n
			} else {
				total = max(total, n)
			}
		}
		return total
	}
	return 0 // empty-width assertions, empty match, no match
}

// patternProblem says why a pattern is refused, or "" when it is accepted.
func patternProblem(src string) string {
	if len(src) > MaxPatternLength {
		return fmt.Sprintf("is %d bytes long; a pattern may be at most %d bytes (list allowed values with enum instead)",
			len(src), MaxPatternLength)
	}
	c, err := analyzePattern(src)
	if err != nil {
		return "is not a valid regular expression (RE2 syntax): " + err.Error()
	}
	if c.insts > MaxPatternProgram {
		return fmt.Sprintf("compiles to %d instructions; a pattern may compile to at most %d (simplify it, list allowed values with enum, or bound the length with maxLength rather than with a repetition)",
			c.insts, MaxPatternProgram)
	}
	if !c.bounded && c.insts > MaxOpenPatternProgram {
		return fmt.Sprintf("compiles to %d instructions and may run over the whole answer, as it is not anchored with ^ to a bounded length; such a pattern may compile to at most %d (anchor it with ^ and bound its repetitions, {0,50} rather than * or +, or simplify it)",
			c.insts, MaxOpenPatternProgram)
	}
	return ""
}

// forEachPattern calls fn with the pointer into the definition, the keyword
// and the source of every pattern of s: its "pattern" and the keys of its
// "patternProperties", in a stable order.
func forEachPattern(s *jsonschema.Schema, fn func(ptr, keyword, src string)) {
	ptr, _ := definitionPointer(s.Location)
	if s.Pattern != nil {
		fn(ptr+"/pattern", "pattern", s.Pattern.String())
	}
	keys := make([]string, 0, len(s.PatternProperties))
	for re := range s.PatternProperties {
		keys = append(keys, re.String())
	}
	slices.Sort(keys)
	for _, k := range keys {
		fn(ptr+"/patternProperties/"+escapePointer(k), "patternProperties", k)
	}
}

// valueCost is what checking one value against a schema costs, counting
// every schema that applies to that same value, as often as it applies: a
// schema reached through three allOf branches counts three times.
type valueCost struct {
	schemas int64 // schemas applied
	open    int64 // instructions of the open patterns matched
	bounded int64 // instructions of the bounded patterns matched
}

// costCap keeps the sums of a schema that nests references exponentially
// (each level referring to the one below twice) from overflowing.
const costCap = 1 << 40

func (c *valueCost) add(o valueCost) {
	c.schemas = min(c.schemas+o.schemas, costCap)
	c.open = min(c.open+o.open, costCap)
	c.bounded = min(c.bounded+o.bounded, costCap)
}

// costFindings checks every pattern reachable from root against the limits,
// alone and together with the other patterns and schemas that check the same
// value: allOf, $ref and their kind can apply one pattern to one value
// thousands of times (or, nested, 2^n times) from a definition of a few KiB.
// The patterns of a schema's patternProperties are counted as if they checked
// its value, although they check its property names: a value is an object or a
// string, never both, so this only ever overcounts a schema that has both.
//
// A sum over a limit is reported at the schema where it first goes over (none
// of the schemas it applies in place is over on its own), or at the pattern
// itself when that alone is over.
//
// It also returns the cost of every schema, for tests and measurements.
func costFindings(root *jsonschema.Schema) ([]domain.Finding, map[*jsonschema.Schema]valueCost) {
	var out []domain.Finding
	memo := map[*jsonschema.Schema]valueCost{}
	over := map[*jsonschema.Schema]bool{} // over a limit, or applies one that is
	onPath := map[*jsonschema.Schema]bool{}
	var cost func(s *jsonschema.Schema) valueCost
	cost = func(s *jsonschema.Schema) valueCost {
		if c, ok := memo[s]; ok {
			return c
		}
		if onPath[s] {
			return valueCost{} // a loop, refused by refLoopFindings
		}
		onPath[s] = true
		defer delete(onPath, s)
		c := valueCost{schemas: 1}
		reported := false
		forEachPattern(s, func(ptr, keyword, src string) {
			if msg := patternProblem(src); msg != "" {
				out = append(out, domain.Finding{Path: ptr, Keyword: keyword, Message: msg})
				reported = true
				return
			}
			pc, _ := analyzePattern(src) // patternProblem checked it compiles
			if pc.bounded {
				c.bounded += int64(pc.insts)
			} else {
				c.open += int64(pc.insts)
			}
		})
		for _, e := range inPlaceEdges(s) {
			c.add(cost(e.to))
			reported = reported || over[e.to]
		}
		memo[s] = c
		if msg := c.problem(); msg != "" {
			if !reported {
				ptr, _ := definitionPointer(s.Location)
				out = append(out, domain.Finding{Path: ptr, Message: msg})
			}
			reported = true
		}
		over[s] = reported
		return c
	}
	for _, s := range reachable(root) {
		cost(s)
	}
	return out, memo
}

// problem says which per-value limit c is over, or "".
func (c valueCost) problem() string {
	switch {
	case c.schemas > MaxSchemasPerValue:
		return fmt.Sprintf("applies %s to the same value (through $ref, allOf, anyOf, oneOf, not, if/then/else, dependentSchemas, counting repeats); at most %d may check one value",
			plural(int(c.schemas), "schema"), MaxSchemasPerValue)
	case c.open > MaxOpenPatternProgram:
		return fmt.Sprintf("matches the same value against open patterns (not anchored with ^ to a bounded length) of %d instructions together, counting repeats through $ref, allOf and their kind; they may compile to at most %d together",
			c.open, MaxOpenPatternProgram)
	case c.bounded > MaxPatternProgram:
		return fmt.Sprintf("matches the same value against patterns of %d instructions together, counting repeats through $ref, allOf and their kind; they may compile to at most %d together",
			c.bounded, MaxPatternProgram)
	}
	return ""
}

// patternEngine is the regexp engine of the form compilers. It is Go's
// regexp, except that a pattern longer than MaxPatternLength is not compiled
// at all while the schema compiles (compiling a 400 KB pattern costs time and
// memory for nothing): it becomes an oversizePattern, which checkCompiled
// then refuses with every other pattern over a limit, each at its pointer.
// The library also calls the engine when it validates "format": "regex" (in
// the meta-schema, and in a form that asks for a regex as an answer); once
// strict, an over-long pattern is then simply not a valid regex, so a record
// cannot make the server compile a 16 MB one.
type patternEngine struct{ strict atomic.Bool }

func (e *patternEngine) compile(src string) (jsonschema.Regexp, error) {
	if len(src) > MaxPatternLength {
		if e.strict.Load() {
			return nil, fmt.Errorf("longer than %d bytes", MaxPatternLength)
		}
		return oversizePattern(src), nil
	}
	return regexp.Compile(src)
}

// oversizePattern stands for a pattern too long to compile. It never
// validates anything: a definition holding one is always refused.
type oversizePattern string

func (p oversizePattern) String() string          { return string(p) }
func (p oversizePattern) MatchString(string) bool { return false }
