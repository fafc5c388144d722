package forms

import (
	"errors"
	"fmt"
	"maps"
	"regexp"
	"regexp/syntax"
	"slices"
	"strings"
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

// estimateInsts estimates the program size of a parsed, not yet simplified
// pattern the way Go's parser does (regexp/syntax calcSize): within a few
// instructions of the real size, without expanding the repetitions, which is
// what costs time and memory (90,000 instructions from 1,000 bytes take a
// quarter of a second to compile).
func estimateInsts(re *syntax.Regexp) int64 {
	var size int64
	switch re.Op {
	case syntax.OpLiteral:
		size = int64(len(re.Rune))
	case syntax.OpCapture, syntax.OpStar:
		size = 2 + estimateInsts(re.Sub[0])
	case syntax.OpPlus, syntax.OpQuest:
		size = 1 + estimateInsts(re.Sub[0])
	case syntax.OpConcat, syntax.OpAlternate:
		for _, sub := range re.Sub {
			size += estimateInsts(sub)
		}
		if re.Op == syntax.OpAlternate {
			size += int64(len(re.Sub) - 1)
		}
	case syntax.OpRepeat:
		sub := estimateInsts(re.Sub[0])
		switch {
		case re.Max >= 0:
			size = int64(re.Max)*sub + int64(re.Max-re.Min)
		case re.Min == 0:
			size = 2 + sub
		default:
			size = 1 + int64(re.Min)*sub
		}
	default:
		size = 1
	}
	return min(max(size, 1), costCap)
}

// tooLargeMessage refuses a pattern whose program is too large.
func tooLargeMessage(insts string) string {
	return fmt.Sprintf("compiles to %s instructions; a pattern may compile to at most %d (simplify it, list allowed values with enum, or bound the length with maxLength rather than with a repetition)",
		insts, MaxPatternProgram)
}

// lengthMessage refuses a pattern that is too long.
func lengthMessage(n int) string {
	return fmt.Sprintf("is %d bytes long; a pattern may be at most %d bytes (list allowed values with enum instead)",
		n, MaxPatternLength)
}

// precheckPattern refuses, without compiling it, a pattern that is too long
// or whose program would be far too large; re is nil when it is refused or
// not a regular expression (err).
func precheckPattern(src string) (re *syntax.Regexp, refused string, err error) {
	if len(src) > MaxPatternLength {
		return nil, lengthMessage(len(src)), nil
	}
	re, err = syntax.Parse(src, syntax.Perl)
	if err != nil {
		return nil, "", err
	}
	if est := estimateInsts(re); est > 2*MaxPatternProgram {
		return nil, tooLargeMessage(fmt.Sprintf("about %d", est)), nil
	}
	return re, "", nil
}

// patternProblem says why a pattern is refused on its own, or "" when it is
// accepted; c is its cost when it is.
func patternProblem(src string) (msg string, c patternCost) {
	re, refused, err := precheckPattern(src)
	if err != nil {
		return "is not a valid regular expression (RE2 syntax): " + err.Error(), c
	}
	if refused != "" {
		return refused, c
	}
	prog, err := syntax.Compile(re.Simplify())
	if err != nil {
		return "is not a valid regular expression (RE2 syntax): " + err.Error(), c
	}
	c.insts = len(prog.Inst)
	if c.insts > MaxPatternProgram {
		return tooLargeMessage(fmt.Sprint(c.insts)), c
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
func forEachPattern(s *jsonschema.Schema, fn func(ptr, keyword string, re jsonschema.Regexp)) {
	ptr, _ := definitionPointer(s.Location)
	if s.Pattern != nil {
		fn(ptr+"/pattern", "pattern", s.Pattern)
	}
	keys := slices.SortedFunc(maps.Keys(s.PatternProperties), func(a, b jsonschema.Regexp) int {
		return strings.Compare(a.String(), b.String())
	})
	for _, re := range keys {
		fn(ptr+"/patternProperties/"+escapePointer(re.String()), "patternProperties", re)
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
		forEachPattern(s, func(ptr, keyword string, re jsonschema.Regexp) {
			if r, ok := re.(*refusedPattern); ok {
				if r.overBudget {
					total = max(total, MaxPatternsProgram+1)
				} else {
					out = append(out, domain.Finding{Path: ptr, Keyword: keyword, Message: r.reason})
				}
				reported = true
				return
			}
			src := re.String()
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
			c.width += int64(a.cost.width)
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

// patternEngine is the regexp engine of one form compile. It is Go's
// regexp, except that while the schema compiles it does not compile a pattern
// that is too long, whose program would be far too large, or that comes after
// the patterns compiled so far reached twice MaxPatternsProgram: compiling
// those costs time and memory for nothing (a 1 MiB definition holds a
// thousand patterns of 90,000 instructions each). Such a pattern becomes a
// refusedPattern, which costFindings refuses with every other pattern over a
// limit, each at its pointer.
//
// The library also calls the engine when it validates "format": "regex": at
// compile time (the draft meta-schema), and, once strict, on answers to a form
// that asks for a regex. An answer only needs to be a valid regex, so it is
// parsed and never compiled; one over the limits is not a regex the server
// accepts, so a record cannot make the server compile megabytes.
type patternEngine struct {
	strict   atomic.Bool
	compiled map[string]jsonschema.Regexp // while compiling (one goroutine)
	insts    int64                        // estimated, of the compiled patterns
}

func (e *patternEngine) compile(src string) (jsonschema.Regexp, error) {
	if e.strict.Load() {
		_, refused, err := precheckPattern(src)
		if err != nil {
			return nil, err
		}
		if refused != "" {
			return nil, errors.New(refused)
		}
		return &refusedPattern{src: src, reason: "not compiled"}, nil
	}
	if re, ok := e.compiled[src]; ok {
		return re, nil
	}
	re, err := e.compileNew(src)
	if err == nil {
		if e.compiled == nil {
			e.compiled = map[string]jsonschema.Regexp{}
		}
		e.compiled[src] = re
	}
	return re, err
}

func (e *patternEngine) compileNew(src string) (jsonschema.Regexp, error) {
	re, refused, err := precheckPattern(src)
	if err != nil {
		return nil, err
	}
	if refused != "" {
		return &refusedPattern{src: src, reason: refused}, nil
	}
	est := estimateInsts(re)
	if e.insts+est > 2*MaxPatternsProgram {
		return &refusedPattern{src: src, overBudget: true}, nil
	}
	e.insts += est
	return regexp.Compile(src)
}

// metaEngine is the regexp engine of the meta-schema's compiler: Go's regexp
// for the meta-schema's own patterns, then, when it checks that the patterns
// of an uploaded definition are regular expressions ("format": "regex"),
// only a parse: the form's compile compiles them, if their size allows.
type metaEngine struct{ ready atomic.Bool }

func (e *metaEngine) compile(src string) (jsonschema.Regexp, error) {
	if !e.ready.Load() {
		return regexp.Compile(src)
	}
	if len(src) <= MaxPatternLength {
		if _, err := syntax.Parse(src, syntax.Perl); err != nil {
			return nil, err
		}
	}
	return &refusedPattern{src: src, reason: "not compiled"}, nil
}

// refusedPattern stands for a pattern that was not compiled. It never
// validates anything: a definition holding one is always refused.
type refusedPattern struct {
	src, reason string
	overBudget  bool // not compiled because of MaxPatternsProgram: reported once
}

func (p *refusedPattern) String() string          { return p.src }
func (p *refusedPattern) MatchString(string) bool { return false }
