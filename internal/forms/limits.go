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
// Go's regexp runs in time linear in the input, but the factor is how many
// instructions of the compiled program are live at each character: about 8 ns
// each. A 20,000-alternative pattern keeps hundreds of thousands live, and one
// 10 KB answer took 17 s. That number, the pattern's width, is what the limits
// bound, because it is what every character of every answer costs, whatever
// the answer's length ("maxLength" does not help: the validator runs the
// pattern even on a string that is too long). The program size says nothing
// about it on its own: ^[a-z]{0,499}$ compiles to 1,000 instructions and keeps
// two live, ^(?:[a-z]?){499}$ to as many and keeps 500 live.
//
// The width is computed from the program by running it on an input that every
// character class accepts: an upper bound on the live instructions of Go's
// matchers (the NFA; the backtracker and the one-pass matcher do no more).
// An anchored pattern without unbounded repetition dies after its longest
// match; any other is taken at its widest for every character.
//
// The limits accept every pattern a real form uses for codes, file names,
// names, phone numbers, e-mail addresses and non-blank free text (the
// examples use at most half); a list of allowed values belongs in "enum".
const (
	// MaxPatternLength is the longest pattern accepted, in bytes. Longer ones
	// are not even compiled.
	MaxPatternLength = 1000
	// MaxPatternProgram is the most instructions one pattern may compile to
	// (regexp/syntax, simplified, as regexp.Compile does).
	MaxPatternProgram = 1000
	// MaxPatternsProgram is the most instructions all the patterns of a
	// schema may compile to together: it bounds the memory they hold and the
	// time their analysis takes at upload.
	MaxPatternsProgram = 20000
	// MaxPatternWidth is the most instructions the patterns that check one
	// value may keep live at one character, together: at most about 0.5 µs
	// per character of an answer. Real patterns keep 2 to 31 live.
	MaxPatternWidth = 64
	// MaxSchemasPerValue is the most schemas that may check one value in
	// place ($ref, allOf, anyOf, oneOf, not, if/then/else, dependentSchemas,
	// counting repeats). Without a bound, 2 KB of nested allOf make one record
	// cost 10^12 checks. The examples need at most 3; a list of 60 if/then
	// rules on one object fits. Each schema costs every value it checks: a
	// record of 10 KB of invalid array items against 200 schemas each takes
	// seconds in the library (it builds every error), so this is not much
	// more than a real form needs.
	MaxSchemasPerValue = 200
)

// patternCost is what matching a pattern costs.
type patternCost struct {
	insts int // instructions of the compiled program
	width int // the most instructions live at one character
}

// analyzePattern compiles src the way regexp.Compile does (Perl syntax,
// simplified) and measures the program. It takes time quadratic in the
// program: check the program size first.
func analyzePattern(src string) (patternCost, error) {
	prog, err := compilePattern(src)
	if err != nil {
		return patternCost{}, err
	}
	return patternCost{insts: len(prog.Inst), width: progWidth(prog)}, nil
}

func compilePattern(src string) (*syntax.Prog, error) {
	re, err := syntax.Parse(src, syntax.Perl)
	if err != nil {
		return nil, err
	}
	return syntax.Compile(re.Simplify())
}

// progWidth returns an upper bound on how many instructions Go's matcher has
// to visit at one character: it follows every branch as if each character
// matched every class. An anchored program is stepped until no thread is left
// (it then has a longest match); any other is taken at the union of every
// instruction it can reach, which is where an unanchored search ends up (it
// starts a new thread at every character) and more than a looping one ever
// holds at once.
func progWidth(prog *syntax.Prog) int {
	n := len(prog.Inst)
	mark := make([]int, n)
	gen := 0
	var stack []uint32
	// closure adds to set every instruction reachable from starts without
	// consuming a character, and returns it.
	closure := func(starts []uint32, set []uint32) []uint32 {
		stack = append(stack[:0], starts...)
		for len(stack) > 0 {
			pc := stack[len(stack)-1]
			stack = stack[:len(stack)-1]
			if mark[pc] == gen {
				continue
			}
			mark[pc] = gen
			set = append(set, pc)
			switch in := &prog.Inst[pc]; in.Op {
			case syntax.InstAlt, syntax.InstAltMatch:
				stack = append(stack, in.Out, in.Arg)
			case syntax.InstCapture, syntax.InstNop, syntax.InstEmptyWidth:
				stack = append(stack, in.Out)
			}
		}
		return set
	}
	// step returns where the consuming instructions of set lead.
	step := func(set []uint32) []uint32 {
		var next []uint32
		for _, pc := range set {
			switch in := &prog.Inst[pc]; in.Op {
			case syntax.InstRune, syntax.InstRune1, syntax.InstRuneAny, syntax.InstRuneAnyNotNL:
				next = append(next, in.Out)
			}
		}
		return next
	}
	start := []uint32{uint32(prog.Start)}
	if prog.StartCond()&syntax.EmptyBeginText != 0 {
		// Anchored: each step moves forward, so a program without a loop
		// is out of threads after at most n steps.
		gen++
		cur := closure(start, nil)
		widest := len(cur)
		for range n + 1 {
			next := step(cur)
			if len(next) == 0 {
				return widest
			}
			gen++
			cur = closure(next, cur[:0])
			widest = max(widest, len(cur))
		}
	}
	// Everything reachable: grow the set until it stops growing.
	gen++
	all := closure(start, nil)
	for done := 0; done < len(all); {
		next := step(all[done:])
		done = len(all)
		all = closure(next, all)
	}
	return len(all)
}

// patternProblem says why a pattern is refused on its own, or "" when it is
// accepted; c is its cost when it is.
func patternProblem(src string) (msg string, c patternCost) {
	if len(src) > MaxPatternLength {
		return fmt.Sprintf("is %d bytes long; a pattern may be at most %d bytes (list allowed values with enum instead)",
			len(src), MaxPatternLength), c
	}
	prog, err := compilePattern(src)
	if err != nil {
		return "is not a valid regular expression (RE2 syntax): " + err.Error(), c
	}
	c.insts = len(prog.Inst)
	if c.insts > MaxPatternProgram {
		return fmt.Sprintf("compiles to %d instructions; a pattern may compile to at most %d (simplify it, list allowed values with enum, or bound the length with maxLength rather than with a repetition)",
			c.insts, MaxPatternProgram), c
	}
	c.width = progWidth(prog)
	if c.width > MaxPatternWidth {
		return widthMessage(c.width), c
	}
	return "", c
}

func widthMessage(width int) string {
	return fmt.Sprintf("keeps up to %d instructions live at each character of an answer; the patterns that check one value may keep at most %d live together (nest optional parts, a(b(c)?)? rather than a?b?c?, anchor the pattern with ^ and bound its repetitions, or simplify it)",
		width, MaxPatternWidth)
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
	width   int64 // instructions the patterns matched keep live at one character
}

// costCap keeps the sums of a schema that nests references exponentially
// (each level referring to the one below twice) from overflowing.
const costCap = 1 << 40

func (c *valueCost) add(o valueCost) {
	c.schemas = min(c.schemas+o.schemas, costCap)
	c.width = min(c.width+o.width, costCap)
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
	type analysed struct {
		cost patternCost
		msg  string // why it is refused on its own, or ""
	}
	patterns := map[string]analysed{} // by source: each analysed once
	total := 0                        // instructions of the distinct patterns
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
			a, ok := patterns[src]
			if !ok {
				if total > MaxPatternsProgram {
					reported = true // and no more analysis: reported once, below
					return
				}
				a.msg, a.cost = patternProblem(src)
				total += a.cost.insts
				patterns[src] = a
			}
			if a.msg != "" {
				out = append(out, domain.Finding{Path: ptr, Keyword: keyword, Message: a.msg})
				reported = true
				return
			}
			pc := a.cost
			c.width += int64(pc.width)
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
	if total > MaxPatternsProgram {
		out = append(out, domain.Finding{Path: "/schema", Message: fmt.Sprintf(
			"has patterns that compile to more than %d instructions together; the patterns of a form may compile to at most %d together (list allowed values with enum, share a pattern through $defs)",
			MaxPatternsProgram, MaxPatternsProgram)})
	}
	return out, memo
}

// problem says which per-value limit c is over, or "".
func (c valueCost) problem() string {
	switch {
	case c.schemas > MaxSchemasPerValue:
		return fmt.Sprintf("applies %s to the same value (through $ref, allOf, anyOf, oneOf, not, if/then/else, dependentSchemas, counting repeats); at most %d may check one value",
			plural(int(c.schemas), "schema"), MaxSchemasPerValue)
	case c.width > MaxPatternWidth:
		return fmt.Sprintf("matches the same value against patterns that keep up to %d instructions live at each character together, counting repeats through $ref, allOf and their kind; at most %d are accepted",
			c.width, MaxPatternWidth)
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
