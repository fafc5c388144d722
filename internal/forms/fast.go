package forms

import (
	"encoding/json"
	"maps"
	"math/big"
	"reflect"
	"regexp"
	"slices"
	"sync"
	"unicode/utf8"

	"github.com/santhosh-tekuri/jsonschema/v6"
)

// This file is the fast path of ValidateJSON. Most pushed records are valid,
// and for them the library's validator is the costliest step of a push (big.Rat
// numbers, evaluation tracking, an allocation per keyword). The fast path checks
// the record's bytes without decoding them, against a reduced copy of the
// compiled schema (fastNode), and answers "valid" or "not sure"; on "not sure"
// ValidateJSON takes the library path, so verdicts and findings stay the
// library's.
//
// It takes two passes. The scanner (fastjson.go) accepts the bytes only if the
// strict decoder would (and refuses, as not sure, what it does not want to
// handle: escaped keys, invalid UTF-8), and records where every value ends. The
// walker then applies the schema; composition keywords (allOf, if...) walk the
// same bytes again, skipping values in constant time.
//
// Inside the walk a subschema also answers "invalid", because not, if, anyOf and
// oneOf turn a failure into a success. Both definite answers must therefore be
// exactly the library's: numbers are compared as exact decimals (number), and
// what the walk cannot decide exactly (more than 19 significant digits, long
// arrays with uniqueItems, a geopoint it does not accept) is unsure. Formats
// call the compiled schema's own checkers, except geopoint, which is this
// package's and is mirrored on the bytes (walker.geopoint) rather than decoded
// into a map.
//
// The fast path is compiled only when every schema reachable from the root is
// draft 2020-12 and uses nothing but the keywords of fastNode; anything else
// (patternProperties, propertyNames, dependentSchemas, unevaluated*,
// $dynamicRef, asserted content*, vocabularies, a $ref cycle on one value...)
// leaves Definition.fast nil. TestFastKnowsEverySchemaField notices new
// keywords of the library.

// verdict is what the fast path concludes about a value.
type verdict uint8

const (
	unsure  verdict = iota // the library must decide
	valid                  // the library would report no error
	invalid                // the library would report an error
)

// and combines the verdicts of two keywords that both apply.
func (v verdict) and(o verdict) verdict {
	switch {
	case v == invalid || o == invalid:
		return invalid
	case v == unsure || o == unsure:
		return unsure
	}
	return valid
}

// or combines the verdicts of alternatives.
func (v verdict) or(o verdict) verdict {
	switch {
	case v == valid || o == valid:
		return valid
	case v == unsure || o == unsure:
		return unsure
	}
	return invalid
}

// typeMask is a set of JSON types, as the "type" keyword lists them.
type typeMask uint8

const (
	tNull typeMask = 1 << iota
	tBoolean
	tNumber
	tInteger
	tString
	tArray
	tObject
)

var typeNames = map[string]typeMask{
	"null": tNull, "boolean": tBoolean, "number": tNumber, "integer": tInteger,
	"string": tString, "array": tArray, "object": tObject,
}

// fastNode is one compiled schema reduced to what the fast path checks. A
// bound that is absent is -1 (counts) or nil (numbers).
type fastNode struct {
	never    bool     // the schema false
	types    typeMask // 0: any type
	enum     *fastEnum
	konst    *fastEnum
	format   *jsonschema.Format
	geopoint bool // format is this package's geopoint

	ref                 *fastNode
	onlyRef             bool // nothing but $ref: check goes straight to ref
	inPlaceKw           bool // some of the keywords below
	allOf, anyOf, oneOf []*fastNode
	not, ifs, then, els *fastNode

	// objects
	objectKw     bool         // some keyword below applies to objects
	names        []string     // properties and required names, sorted
	members      []fastMember // what each of names selects
	required     int          // distinct required names
	additional   *fastNode    // additionalProperties as a schema
	noAdditional bool         // additionalProperties: false
	minProps     int
	maxProps     int
	depRequired  []fastDep

	// arrays
	arrayKw     bool
	prefix      []*fastNode
	items       *fastNode
	contains    *fastNode
	minContains int // 1 unless given, when contains is present
	maxContains int
	minItems    int
	maxItems    int
	unique      bool

	// strings
	stringKw bool
	minLen   int
	maxLen   int
	pattern  *regexp.Regexp

	// numbers
	numberKw                   bool
	numUnsure                  bool // a bound has more digits than a number holds
	min, max, exMin, exMax, of *number
}

// fastMember is what an object member's name selects.
type fastMember struct {
	node     *fastNode // properties[name]; nil when only required
	required bool
}

// fastDep is one entry of dependentRequired.
type fastDep struct {
	prop string
	reqd []string
}

// fastEnum is the value set of enum or const.
type fastEnum struct {
	strs   []string // the strings, sorted
	others []any    // decoded non-string values: json.Number, bool, nil, objects, arrays
}

// compileFast builds the fast path of a compiled schema, or returns nil when
// the schema uses something the fast path does not support.
func compileFast(root *jsonschema.Schema) *fastNode {
	c := fastCompiler{nodes: map[*jsonschema.Schema]*fastNode{}, ok: true}
	n := c.node(root)
	if !c.ok || inPlaceCycle(n) {
		return nil
	}
	return n
}

// fastCompiler holds the state of compileFast: ok turns false at the first
// thing the fast path does not support.
type fastCompiler struct {
	nodes map[*jsonschema.Schema]*fastNode
	ok    bool
}

// supported reports whether the fast path knows every keyword s uses.
func supported(s *jsonschema.Schema) bool {
	return s.DraftVersion == 2020 && s.RecursiveRef == nil && s.DynamicRef == nil &&
		s.PropertyNames == nil && len(s.PatternProperties) == 0 && len(s.Dependencies) == 0 &&
		len(s.DependentSchemas) == 0 && s.UnevaluatedProperties == nil && s.UnevaluatedItems == nil &&
		s.Items == nil && s.AdditionalItems == nil && s.ContentEncoding == nil &&
		s.ContentMediaType == nil && s.ContentSchema == nil && len(s.Extensions) == 0
}

// node compiles s, once: schemas refer to each other, and to themselves.
func (c *fastCompiler) node(s *jsonschema.Schema) *fastNode {
	if s == nil {
		return nil
	}
	if n, ok := c.nodes[s]; ok {
		return n
	}
	n := &fastNode{minProps: -1, maxProps: -1, minItems: -1, maxItems: -1,
		minContains: -1, maxContains: -1, minLen: -1, maxLen: -1}
	c.nodes[s] = n
	if !supported(s) {
		c.ok = false
		return n
	}
	if s.Bool != nil {
		n.never = !*s.Bool
		return n
	}
	if s.Types != nil {
		for _, t := range s.Types.ToStrings() {
			n.types |= typeNames[t]
		}
	}
	if s.Enum != nil {
		n.enum = c.enum(s.Enum.Values)
	}
	if s.Const != nil {
		n.konst = c.enum([]any{*s.Const})
	}
	if f := s.Format; f != nil {
		n.format = f
		if f.Name == FormatGeopoint {
			// Only this package's checker is mirrored by walker.geopoint.
			n.geopoint = reflect.ValueOf(f.Validate).Pointer() == reflect.ValueOf(validateGeopoint).Pointer()
			c.ok = c.ok && n.geopoint
		}
	}
	n.ref = c.node(s.Ref)
	n.allOf, n.anyOf, n.oneOf = c.nodeList(s.AllOf), c.nodeList(s.AnyOf), c.nodeList(s.OneOf)
	n.not, n.ifs, n.then, n.els = c.node(s.Not), c.node(s.If), c.node(s.Then), c.node(s.Else)
	c.object(n, s)
	c.array(n, s)

	n.minLen, n.maxLen = intOr(s.MinLength), intOr(s.MaxLength)
	if s.Pattern != nil {
		re, ok := s.Pattern.(*regexp.Regexp)
		c.ok = c.ok && ok
		n.pattern = re
	}
	n.stringKw = n.minLen >= 0 || n.maxLen >= 0 || n.pattern != nil

	for _, b := range []struct {
		dst **number
		r   *big.Rat
	}{{&n.min, s.Minimum}, {&n.max, s.Maximum}, {&n.exMin, s.ExclusiveMinimum}, {&n.exMax, s.ExclusiveMaximum}, {&n.of, s.MultipleOf}} {
		if b.r == nil {
			continue
		}
		n.numberKw = true
		if x, ok := ratNumber(b.r); ok {
			*b.dst = &x
		} else {
			n.numUnsure = true
		}
	}
	n.inPlaceKw = slices.ContainsFunc(n.inPlace(), func(m *fastNode) bool { return m != nil })
	n.onlyRef = n.ref != nil && reflect.DeepEqual(*n, fastNode{ref: n.ref, inPlaceKw: true, minProps: -1, maxProps: -1,
		minItems: -1, maxItems: -1, minContains: -1, maxContains: -1, minLen: -1, maxLen: -1})
	return n
}

// object compiles the object keywords of s into n.
func (c *fastCompiler) object(n *fastNode, s *jsonschema.Schema) {
	members := map[string]fastMember{}
	for name, p := range s.Properties {
		members[name] = fastMember{node: c.node(p)}
	}
	for _, name := range s.Required {
		if m := members[name]; !m.required {
			m.required = true
			members[name] = m
			n.required++
		}
	}
	n.names = slices.Sorted(maps.Keys(members))
	for _, name := range n.names {
		n.members = append(n.members, members[name])
	}
	switch a := s.AdditionalProperties.(type) {
	case bool:
		n.noAdditional = !a
	case *jsonschema.Schema:
		n.additional = c.node(a)
	case nil:
	default:
		c.ok = false
	}
	for prop, reqd := range s.DependentRequired {
		n.depRequired = append(n.depRequired, fastDep{prop, reqd})
	}
	n.minProps, n.maxProps = intOr(s.MinProperties), intOr(s.MaxProperties)
	n.objectKw = len(n.names) > 0 || n.noAdditional || n.additional != nil ||
		n.minProps >= 0 || n.maxProps >= 0 || len(n.depRequired) > 0
}

// array compiles the array keywords of s into n.
func (c *fastCompiler) array(n *fastNode, s *jsonschema.Schema) {
	n.prefix = c.nodeList(s.PrefixItems)
	n.items = c.node(s.Items2020)
	if n.contains = c.node(s.Contains); n.contains != nil {
		n.minContains, n.maxContains = 1, intOr(s.MaxContains)
		if s.MinContains != nil {
			n.minContains = *s.MinContains
		}
	}
	n.minItems, n.maxItems = intOr(s.MinItems), intOr(s.MaxItems)
	n.unique = s.UniqueItems
	n.arrayKw = len(n.prefix) > 0 || n.items != nil || n.contains != nil ||
		n.minItems >= 0 || n.maxItems >= 0 || n.unique
}

// nodeList compiles a list of subschemas.
func (c *fastCompiler) nodeList(ss []*jsonschema.Schema) []*fastNode {
	var out []*fastNode
	for _, s := range ss {
		out = append(out, c.node(s))
	}
	return out
}

// enum compiles the values of enum or const, as the strict decoder yields
// them; any other Go type turns the fast path off.
func (c *fastCompiler) enum(values []any) *fastEnum {
	e := &fastEnum{}
	for _, v := range values {
		if s, ok := v.(string); ok {
			e.strs = append(e.strs, s)
			continue
		}
		c.ok = c.ok && decodedValue(v)
		e.others = append(e.others, v)
	}
	slices.Sort(e.strs)
	return e
}

// decodedValue reports whether v holds only what decodeJSON yields.
func decodedValue(v any) bool {
	switch x := v.(type) {
	case nil, bool, string, json.Number:
		return true
	case []any:
		for _, e := range x {
			if !decodedValue(e) {
				return false
			}
		}
		return true
	case map[string]any:
		for _, e := range x {
			if !decodedValue(e) {
				return false
			}
		}
		return true
	}
	return false
}

// intOr returns *p, or -1 for nil.
func intOr(p *int) int {
	if p == nil {
		return -1
	}
	return *p
}

// inPlaceCycle reports whether some schema reachable from root can reach
// itself while staying on the same value ($ref, allOf, not...). The library
// reports such a cycle as an error when it meets it; the fast path leaves those
// schemas to it.
func inPlaceCycle(root *fastNode) bool {
	all := map[*fastNode]bool{}
	var collect func(n *fastNode)
	collect = func(n *fastNode) {
		if n == nil || all[n] {
			return
		}
		all[n] = true
		for _, m := range n.inPlace() {
			collect(m)
		}
		for _, m := range append([]*fastNode{n.additional, n.items, n.contains}, n.prefix...) {
			collect(m)
		}
		for _, m := range n.members {
			collect(m.node)
		}
	}
	collect(root)
	state := map[*fastNode]uint8{} // 1 on the path, 2 done
	var visit func(n *fastNode) bool
	visit = func(n *fastNode) bool {
		if n == nil || state[n] == 2 {
			return false
		}
		if state[n] == 1 {
			return true
		}
		state[n] = 1
		for _, m := range n.inPlace() {
			if visit(m) {
				return true
			}
		}
		state[n] = 2
		return false
	}
	for n := range all {
		if visit(n) {
			return true
		}
	}
	return false
}

// inPlace lists the subschemas n applies to the value itself.
func (n *fastNode) inPlace() []*fastNode {
	out := append([]*fastNode{n.ref, n.not, n.ifs, n.then, n.els}, n.allOf...)
	return append(append(out, n.anyOf...), n.oneOf...)
}

// fastValid reports whether the library would accept data as a record of the
// schema n was compiled from: true only when it surely would (see the top of
// this file).
func fastValid(n *fastNode, data []byte) bool {
	return fastVerdict(n, data) == valid
}

// fastVerdict checks data against n: valid or invalid only when the strict
// decoder accepts data and the library would say the same.
func fastVerdict(n *fastNode, data []byte) verdict {
	ends := endsPool.Get().(*[]int32)
	if cap(*ends) < len(data) {
		*ends = make([]int32, max(len(data), 4096))
	}
	if cap(*ends) <= maxPooledEnds {
		defer endsPool.Put(ends)
	}
	sc := scanner{doc: doc{data: data, ends: (*ends)[:len(data)]}}
	if !sc.document() {
		return unsure
	}
	w := walker{doc: sc.doc, budget: 10_000 + 16*len(data)}
	v, _ := w.check(n, w.ws(0), -1)
	if w.budget < 0 {
		return unsure
	}
	return v
}

// endsPool holds the index of a document (doc.ends) between calls: four bytes
// per byte of the document. Indexes of documents over maxPooledEnds bytes are
// left to the garbage collector.
var endsPool = sync.Pool{New: func() any { return new([]int32) }}

const maxPooledEnds = 1 << 20

// walker applies fast nodes to a document the scanner accepted: the bytes are
// well-formed JSON, object keys have no escapes, strings are valid UTF-8, and
// the index says where every value ends.
type walker struct {
	doc
	budget int // checks left before the walk gives up (pathological schemas)
}

// check applies n to the value at i; end is where the value ends, or -1 when
// not known yet. It returns the verdict and the end of the value.
func (w *walker) check(n *fastNode, i, end int) (verdict, int) {
	if w.budget--; w.budget < 0 {
		return unsure, w.endOf(i, end)
	}
	for n.onlyRef { // no cycle: see inPlaceCycle
		n = n.ref
	}
	if n.never {
		return invalid, w.endOf(i, end)
	}
	v := valid
	switch c := w.data[i]; {
	case c == '{':
		if n.types != 0 && n.types&tObject == 0 {
			return invalid, w.endOf(i, end)
		}
		if n.objectKw {
			v, end = w.object(n, i)
		}
		if v != invalid && (n.enum != nil || n.konst != nil) {
			end = w.endOf(i, end)
			v = v.and(n.enum.matchSpan(w, i)).and(n.konst.matchSpan(w, i))
		}
	case c == '[':
		if n.types != 0 && n.types&tArray == 0 {
			return invalid, w.endOf(i, end)
		}
		if n.arrayKw {
			v, end = w.array(n, i)
		}
		if v != invalid && (n.enum != nil || n.konst != nil) {
			end = w.endOf(i, end)
			v = v.and(n.enum.matchSpan(w, i)).and(n.konst.matchSpan(w, i))
		}
	case c == '"':
		end = w.skip(i)
		v = w.checkString(n, w.str(i))
	case c == 't' || c == 'f' || c == 'n':
		t := tBoolean
		if c == 'n' {
			t = tNull
		}
		if n.types != 0 && n.types&t == 0 {
			return invalid, w.endOf(i, end)
		}
		end = w.endOf(i, end)
		v = n.enum.matchSpan(w, i).and(n.konst.matchSpan(w, i))
	default:
		end = w.skip(i)
		v = n.checkNumber(w.data[i:end])
	}
	if v == invalid {
		return invalid, w.endOf(i, end)
	}
	end = w.endOf(i, end)
	if n.format != nil {
		v = v.and(w.format(n, i, end))
	}
	if n.inPlaceKw {
		v = v.and(w.inPlace(n, i, end))
	}
	return v, end
}

// endOf returns end if known, else finds where the value at i ends.
func (w *walker) endOf(i, end int) int {
	if end >= 0 {
		return end
	}
	return w.skip(i)
}

// inPlace applies the keywords whose subschemas apply to the value itself.
func (w *walker) inPlace(n *fastNode, i, end int) verdict {
	v := valid
	apply := func(m *fastNode) verdict {
		r, _ := w.check(m, i, end)
		return r
	}
	if n.ref != nil {
		if v = v.and(apply(n.ref)); v == invalid {
			return v
		}
	}
	for _, m := range n.allOf {
		if v = v.and(apply(m)); v == invalid {
			return v
		}
	}
	if len(n.anyOf) > 0 {
		alt := invalid
		for _, m := range n.anyOf {
			if alt = alt.or(apply(m)); alt == valid {
				break
			}
		}
		if v = v.and(alt); v == invalid {
			return v
		}
	}
	if len(n.oneOf) > 0 {
		matched, open := 0, false
		for _, m := range n.oneOf {
			switch apply(m) {
			case valid:
				matched++
			case unsure:
				open = true
			}
			if matched > 1 {
				return invalid
			}
		}
		switch {
		case open:
			v = v.and(unsure)
		case matched == 0:
			return invalid
		}
	}
	if n.not != nil {
		switch apply(n.not) {
		case valid:
			return invalid
		case unsure:
			v = v.and(unsure)
		}
	}
	if n.ifs != nil && (n.then != nil || n.els != nil) {
		branch := n.els
		switch apply(n.ifs) {
		case valid:
			branch = n.then
		case unsure:
			return v.and(unsure)
		}
		if branch != nil {
			v = v.and(apply(branch))
		}
	}
	return v
}

// object applies the object keywords of n to the object at i.
func (w *walker) object(n *fastNode, i int) (verdict, int) {
	v := valid
	count, required, end, from := 0, 0, 0, 0
	p, more := w.open(i)
	for ; more; p, more = w.next(end) {
		key, at := w.key(p)
		count++
		var m fastMember
		if k, ok := search(n.names, key, from); ok {
			m, from = n.members[k], k+1
		}
		if m.required {
			required++
		}
		sub := m.node
		if sub == nil {
			if n.noAdditional {
				v = invalid
			}
			sub = n.additional
		}
		if sub == nil || v == invalid {
			end = w.skip(at)
			continue
		}
		var r verdict
		r, end = w.check(sub, at, -1)
		v = v.and(r)
	}
	if required < n.required || n.minProps >= 0 && count < n.minProps || n.maxProps >= 0 && count > n.maxProps {
		v = invalid
	}
	for _, d := range n.depRequired {
		if v != invalid && w.member(i, d.prop) >= 0 {
			for _, name := range d.reqd {
				if w.member(i, name) < 0 {
					v = invalid
				}
			}
		}
	}
	return v, p
}

// array applies the array keywords of n to the array at i.
func (w *walker) array(n *fastNode, i int) (verdict, int) {
	v := valid
	count, matched, open, end := 0, 0, 0, 0
	p, more := w.open(i)
	for ; more; p, more = w.next(end) {
		sub := n.items
		if count < len(n.prefix) {
			sub = n.prefix[count]
		}
		count++
		end = -1
		if sub != nil && v != invalid {
			var r verdict
			r, end = w.check(sub, p, -1)
			v = v.and(r)
		}
		if n.contains != nil && v != invalid {
			var r verdict
			r, end = w.check(n.contains, p, end)
			switch r {
			case valid:
				matched++
			case unsure:
				open++
			}
		}
		end = w.endOf(p, end)
	}
	if n.minItems >= 0 && count < n.minItems || n.maxItems >= 0 && count > n.maxItems {
		v = invalid
	}
	if n.contains != nil && v != invalid {
		switch {
		case matched+open < n.minContains, n.maxContains >= 0 && matched > n.maxContains:
			v = invalid
		case matched < n.minContains, n.maxContains >= 0 && matched+open > n.maxContains:
			v = unsure
		}
	}
	if n.unique && v != invalid {
		v = v.and(w.uniqueItems(i, count))
	}
	return v, p
}

// uniqueItems checks that no two of the count items of the array at i are
// equal. Long arrays are left to the library, which hashes them.
func (w *walker) uniqueItems(i, count int) verdict {
	if count > 64 {
		return unsure
	}
	v := valid
	for p, more := w.open(i); more; p, more = w.next(w.skip(p)) {
		for q := w.ws(i + 1); q != p; q, _ = w.next(w.skip(q)) {
			switch w.equalSpans(q, p) {
			case valid:
				return invalid
			case unsure:
				v = unsure
			}
		}
	}
	return v
}

// checkString applies n's type, string keywords, enum and const to the decoded
// string s.
func (w *walker) checkString(n *fastNode, s []byte) verdict {
	if n.types != 0 && n.types&tString == 0 {
		return invalid
	}
	if n.stringKw {
		if n.minLen >= 0 || n.maxLen >= 0 {
			l := utf8.RuneCount(s)
			if n.minLen >= 0 && l < n.minLen || n.maxLen >= 0 && l > n.maxLen {
				return invalid
			}
		}
		if n.pattern != nil && !n.pattern.Match(s) {
			return invalid
		}
	}
	return n.enum.matchString(s).and(n.konst.matchString(s))
}

// checkNumber applies n's type, number keywords, enum and const to the number
// literal lit.
func (n *fastNode) checkNumber(lit []byte) verdict {
	x, exact := parseNumber(lit)
	v := valid
	switch {
	case n.types == 0 || n.types&tNumber != 0:
	case n.types&tInteger == 0:
		return invalid
	case !exact:
		v = unsure
	case !x.isInt():
		return invalid
	}
	if n.numberKw {
		if !exact || n.numUnsure {
			v = unsure
		} else if n.min != nil && x.cmp(*n.min) < 0 || n.max != nil && x.cmp(*n.max) > 0 ||
			n.exMin != nil && x.cmp(*n.exMin) <= 0 || n.exMax != nil && x.cmp(*n.exMax) >= 0 {
			return invalid
		} else if n.of != nil {
			v = v.and(x.multipleOf(*n.of))
		}
	}
	for _, e := range []*fastEnum{n.enum, n.konst} {
		if e == nil || v == invalid {
			continue
		}
		r := invalid
		for _, o := range e.others {
			if r = r.or(equalNumber(x, exact, o)); r == valid {
				break
			}
		}
		v = v.and(r)
	}
	return v
}

// format applies n's format to the value at [i, end).
func (w *walker) format(n *fastNode, i, end int) verdict {
	if n.geopoint {
		return w.geopoint(i)
	}
	var val any
	if w.data[i] == '"' {
		val = string(w.str(i))
	} else {
		// Formats ignore other types, but ask the checker all the same.
		var err error
		if val, err = decodeJSON(w.data[i:end], MaxDepth); err != nil {
			return unsure
		}
	}
	if n.format.Validate(val) != nil {
		return invalid
	}
	return valid
}

// geopoint mirrors validateGeopoint on the value at i: valid when it would
// accept it, unsure otherwise.
func (w *walker) geopoint(i int) verdict {
	switch w.data[i] {
	case 'n':
		return valid
	case '{':
	default:
		return unsure
	}
	lat, lon := false, false
	end := 0
	for p, more := w.open(i); more; p, more = w.next(end) {
		key, at := w.key(p)
		if c := w.data[at]; c != '-' && !isDigit(c) {
			return unsure
		}
		end = w.skip(at)
		f, ok := parseFloat(w.data[at:end])
		switch string(key) {
		case "latitude":
			lat = ok && f >= -90 && f <= 90
			ok = lat
		case "longitude":
			lon = ok && f >= -180 && f <= 180
			ok = lon
		case "altitude":
		case "accuracy":
			ok = ok && f >= 0
		default:
			ok = false
		}
		if !ok {
			return unsure
		}
	}
	if lat && lon {
		return valid
	}
	return unsure
}

// matchString reports whether the decoded string s is one of e's values; a nil
// enum matches everything.
func (e *fastEnum) matchString(s []byte) verdict {
	if e == nil {
		return valid
	}
	_, ok := search(e.strs, s, 0)
	return verdictOf(ok)
}

// search looks for key in sorted and returns its index. Short lists are
// scanned. Objects in canonical JSON list their keys in order, and the caller
// passes where the previous key was found plus one: search looks at a few
// names from there before it bisects.
func search(sorted []string, key []byte, from int) (int, bool) {
	if len(sorted) <= 8 {
		for k, s := range sorted {
			if s == string(key) {
				return k, true
			}
		}
		return 0, false
	}
	for k := from; k < len(sorted) && k < from+4; k++ {
		if sorted[k] == string(key) {
			return k, true
		}
	}
	lo, hi := 0, len(sorted)
	for lo < hi {
		m := int(uint(lo+hi) >> 1)
		switch s := sorted[m]; {
		case string(key) == s:
			return m, true
		case string(key) < s:
			hi = m
		default:
			lo = m + 1
		}
	}
	return 0, false
}

// matchSpan reports whether the value at i (not a string or number) equals one
// of e's values; a nil enum matches everything.
func (e *fastEnum) matchSpan(w *walker, i int) verdict {
	if e == nil {
		return valid
	}
	v := invalid
	for _, o := range e.others {
		if v = v.or(w.equalValue(i, o)); v == valid {
			break
		}
	}
	return v
}
