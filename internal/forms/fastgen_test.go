package forms

import (
	"encoding/json"
	"fmt"
	"strconv"
	"strings"
)

// This file is the structured input of FuzzFastAgreesWithLibrary: it turns the
// fuzzer's bytes into a random valid form schema and records for it. Mutating
// raw schema bytes mostly yields JSON the meta-schema refuses, so the fuzzer
// rarely reaches the fast path's composition and number logic; every input
// built here is a schema the fast path compiles, with records that sit on and
// around its bounds (valid ones, and ones that miss by one value).

// genSource hands out the fuzzer's bytes as choices. When they run out every
// choice is 0, the simplest one, so generation always ends.
type genSource struct {
	b []byte
}

func (g *genSource) byte() byte {
	if len(g.b) == 0 {
		return 0
	}
	c := g.b[0]
	g.b = g.b[1:]
	return c
}

// intn returns a choice in [0, n).
func (g *genSource) intn(n int) int {
	if n <= 1 {
		return 0
	}
	return int(g.byte()) % n
}

// chance is true with probability about k/8.
func (g *genSource) chance(k int) bool { return g.intn(8) < k }

func pick[T any](g *genSource, xs []T) T { return xs[g.intn(len(xs))] }

// Literals are kept as JSON text (json.RawMessage in schemas, and in records),
// so that numbers keep their spelling: "1", "1.0" and "1e0" are one number to
// the library, three inputs to the fast path's scanner.
var (
	genNumbers = []string{
		"0", "1", "-1", "2", "3", "10", "100", "-0", "1.0", "1e0", "1e2", "0.5", "2.5", "-2.5",
		"0.1", "0.2", "0.30000000000000004", "1e-7", "123.456", "9007199254740993",
		"12345678901234567890", "1.0000000000000000001", "1E+2", "-1e-2", "7", "42", "255",
	}
	genDivisors = []string{"1", "2", "3", "0.5", "0.1", "0.01", "2.5", "1e-2", "7"}
	genStrings  = []string{
		`""`, `"a"`, `"ab"`, `"abc"`, `"é"`, `"😀"`, `"aé😀"`, `"A1"`, `"yes"`, `"no"`,
		`"2024-02-29"`, `"2023-02-29"`, `"2024-01-02T03:04:05Z"`, `"03:04:05Z"`,
		`"a@example.org"`, `"not an email"`, `"123e4567-e89b-12d3-a456-426614174000"`,
		`"\u00e9"`, `"a\"b"`, `"\\"`, `"line\nbreak"`, `"\ud83d\ude00"`, `"tab\t"`, `"P1D"`,
	}
	genPatterns = []string{`^a`, `b$`, `^[a-z]+$`, `\d`, `^.{2}$`, `é`, `^(yes|no)$`, `[A-Z]`, `^$`, `\p{L}`}
	genFormats  = []string{"date", "date-time", "time", "email", "uuid", "duration", FormatGeopoint}
	genKeys     = []string{"a", "b", "c", "name", "age", "é", "x y", "0", "geo", "items"}
	genTypes    = []string{"null", "boolean", "integer", "number", "string", "array", "object"}
)

// genSchema is a schema under construction: an ordered list of members, so the
// fuzzer controls the key order too.
type genSchema struct {
	members []genMember
	// For records: what the schema asks, as far as the generator tracks it.
	typ      string // the one type, or ""
	props    []string
	sub      map[string]*genSchema
	required []string
	enum     []string
	items    *genSchema
}

type genMember struct {
	key   string
	value any // json.RawMessage, *genSchema, []*genSchema, map of *genSchema, or a bool
}

func (s *genSchema) set(key string, v any) { s.members = append(s.members, genMember{key, v}) }

// MarshalJSON writes the members in order.
func (s *genSchema) MarshalJSON() ([]byte, error) {
	var b strings.Builder
	b.WriteByte('{')
	for i, m := range s.members {
		if i > 0 {
			b.WriteString(", ")
		}
		k, _ := json.Marshal(m.key)
		b.Write(k)
		b.WriteString(": ")
		v, err := json.Marshal(m.value)
		if err != nil {
			return nil, err
		}
		b.Write(v)
	}
	b.WriteByte('}')
	return []byte(b.String()), nil
}

// genProps is an ordered properties object.
type genProps struct {
	keys []string
	sub  map[string]*genSchema
}

func (p genProps) MarshalJSON() ([]byte, error) {
	var b strings.Builder
	b.WriteByte('{')
	for i, k := range p.keys {
		if i > 0 {
			b.WriteString(", ")
		}
		kj, _ := json.Marshal(k)
		b.Write(kj)
		b.WriteString(": ")
		v, err := json.Marshal(p.sub[k])
		if err != nil {
			return nil, err
		}
		b.Write(v)
	}
	b.WriteByte('}')
	return []byte(b.String()), nil
}

func raw(s string) json.RawMessage { return json.RawMessage(s) }

// genFormSchema builds a form's schema: an object at the root, as forms require.
func genFormSchema(g *genSource) *genSchema {
	s := &genSchema{}
	defs := []*genSchema{}
	if g.chance(2) {
		// $defs referenced below by $ref, one level deep.
		for range 1 + g.intn(2) {
			defs = append(defs, genNode(g, 2, nil))
		}
		m := map[string]*genSchema{}
		for i, d := range defs {
			m[fmt.Sprintf("d%d", i)] = d
		}
		s.set("$defs", m)
	}
	genObject(g, s, 3, defs)
	if !s.has("type") {
		s.set("type", "object") // a form's schema must say it
	}
	return s
}

func (s *genSchema) has(key string) bool {
	for _, m := range s.members {
		if m.key == key {
			return true
		}
	}
	return false
}

// genNode builds a subschema with depth levels of nesting left.
func genNode(g *genSource, depth int, defs []*genSchema) *genSchema {
	s := &genSchema{}
	if depth <= 0 {
		genLeaf(g, s)
		return s
	}
	switch g.intn(10) {
	case 0, 1:
		genObject(g, s, depth-1, defs)
	case 2:
		genArray(g, s, depth-1, defs)
	case 3:
		genComposition(g, s, depth-1, defs)
	case 4:
		if len(defs) > 0 {
			s.set("$ref", fmt.Sprintf("#/$defs/d%d", g.intn(len(defs))))
			if g.chance(2) { // a keyword beside $ref applies too
				genLeafKeywords(g, s, pick(g, genTypes))
			}
			return s
		}
		genLeaf(g, s)
	default:
		genLeaf(g, s)
	}
	return s
}

// genLeaf builds a schema of scalars: a type and its keywords, or a value list.
func genLeaf(g *genSource, s *genSchema) {
	switch g.intn(8) {
	case 0:
		var vals []json.RawMessage
		for range 1 + g.intn(4) {
			v := genScalar(g)
			vals = append(vals, raw(v))
			s.enum = append(s.enum, v)
		}
		s.set("enum", vals)
		return
	case 1:
		v := genScalar(g)
		s.enum = []string{v}
		s.set("const", raw(v))
		return
	case 2:
		// A list of types.
		a, b := pick(g, genTypes), pick(g, genTypes)
		if a == b {
			b = "null"
			if a == b {
				b = "string"
			}
		}
		s.set("type", []string{a, b})
		genLeafKeywords(g, s, a)
		return
	case 3:
		if g.chance(1) {
			s.set("format", FormatGeopoint)
			s.typ = "object"
			s.set("type", []string{"object", "null"})
			return
		}
	}
	t := pick(g, []string{"string", "integer", "number", "boolean", "null", "string", "number"})
	if g.chance(7) {
		s.typ = t
		s.set("type", t)
	}
	genLeafKeywords(g, s, t)
}

// genLeafKeywords adds the keywords of type t (which apply to that type only,
// so they are interesting beside other types too).
func genLeafKeywords(g *genSource, s *genSchema, t string) {
	switch t {
	case "string":
		if g.chance(3) {
			s.set("minLength", g.intn(4))
		}
		if g.chance(3) {
			s.set("maxLength", g.intn(5))
		}
		if g.chance(2) {
			s.set("pattern", pick(g, genPatterns))
		}
		if g.chance(2) {
			s.set("format", pick(g, genFormats[:len(genFormats)-1]))
		}
	case "integer", "number":
		for _, k := range []string{"minimum", "maximum", "exclusiveMinimum", "exclusiveMaximum"} {
			if g.chance(2) {
				s.set(k, raw(pick(g, genNumbers)))
			}
		}
		if g.chance(2) {
			s.set("multipleOf", raw(pick(g, genDivisors)))
		}
	}
}

// genObject makes s an object schema.
func genObject(g *genSource, s *genSchema, depth int, defs []*genSchema) {
	s.typ = "object"
	if g.chance(7) {
		s.set("type", "object")
	}
	s.sub = map[string]*genSchema{}
	n := g.intn(5)
	for range n {
		k := pick(g, genKeys)
		if s.sub[k] != nil {
			continue
		}
		s.props = append(s.props, k)
		s.sub[k] = genNode(g, depth, defs)
	}
	if len(s.props) > 0 || g.chance(1) {
		s.set("properties", genProps{keys: s.props, sub: s.sub})
	}
	for _, k := range s.props {
		if g.chance(3) {
			s.required = append(s.required, k)
		}
	}
	if g.chance(1) {
		s.required = append(s.required, pick(g, genKeys)) // maybe not a property
	}
	if len(s.required) > 0 {
		uniq := []string{}
		for _, k := range s.required {
			if !contains(uniq, k) {
				uniq = append(uniq, k)
			}
		}
		s.required = uniq
		s.set("required", uniq)
	}
	switch g.intn(6) {
	case 0:
		s.set("additionalProperties", false)
	case 1:
		s.set("additionalProperties", genNode(g, depth-1, defs))
	}
	if g.chance(1) {
		s.set("minProperties", g.intn(3))
	}
	if g.chance(1) {
		s.set("maxProperties", g.intn(4))
	}
	if g.chance(1) && len(s.props) >= 2 {
		s.set("dependentRequired", map[string][]string{s.props[0]: {s.props[1]}})
	}
	if g.chance(1) {
		genComposition(g, s, depth-1, defs)
	}
}

// genArray makes s an array schema.
func genArray(g *genSource, s *genSchema, depth int, defs []*genSchema) {
	s.typ = "array"
	s.set("type", "array")
	if g.chance(2) {
		var prefix []*genSchema
		for range 1 + g.intn(2) {
			prefix = append(prefix, genNode(g, depth, defs))
		}
		s.set("prefixItems", prefix)
	}
	if g.chance(6) {
		s.items = genNode(g, depth, defs)
		s.set("items", s.items)
	} else if g.chance(2) {
		s.set("items", false)
	}
	if g.chance(2) {
		s.set("minItems", g.intn(3))
	}
	if g.chance(2) {
		s.set("maxItems", g.intn(4))
	}
	if g.chance(2) {
		s.set("uniqueItems", g.chance(6))
	}
	if g.chance(1) {
		s.set("contains", genNode(g, depth, defs))
		if g.chance(3) {
			s.set("minContains", g.intn(3))
		}
		if g.chance(3) {
			s.set("maxContains", g.intn(3))
		}
	}
}

// genComposition adds one composition keyword to s.
func genComposition(g *genSource, s *genSchema, depth int, defs []*genSchema) {
	list := func() []*genSchema {
		var out []*genSchema
		for range 1 + g.intn(3) {
			out = append(out, genNode(g, depth, defs))
		}
		return out
	}
	switch g.intn(5) {
	case 0:
		s.set("allOf", list())
	case 1:
		s.set("anyOf", list())
	case 2:
		s.set("oneOf", list())
	case 3:
		s.set("not", genNode(g, depth, defs))
	case 4:
		s.set("if", genNode(g, depth, defs))
		if g.chance(6) {
			s.set("then", genNode(g, depth, defs))
		}
		if g.chance(5) {
			s.set("else", genNode(g, depth, defs))
		}
	}
}

func contains(xs []string, x string) bool {
	for _, y := range xs {
		if y == x {
			return true
		}
	}
	return false
}

// genScalar is a scalar literal.
func genScalar(g *genSource) string {
	switch g.intn(5) {
	case 0:
		return pick(g, []string{"null", "true", "false"})
	case 1, 2:
		return pick(g, genNumbers)
	default:
		return pick(g, genStrings)
	}
}

// genRecord writes a record for s: it follows the schema where the generator
// tracks it (types, properties, required, enums, items), and strays from it by
// the fuzzer's choice, so that both verdicts occur.
func genRecord(g *genSource, s *genSchema) string {
	var b strings.Builder
	genValue(g, s, &b, 4)
	return b.String()
}

func genValue(g *genSource, s *genSchema, b *strings.Builder, depth int) {
	ws := func() {
		if g.chance(1) {
			b.WriteString(pick(g, []string{" ", "\n", "\t", "\r\n  "}))
		}
	}
	if s == nil || depth <= 0 || g.chance(1) {
		genAny(g, b, depth)
		return
	}
	if len(s.enum) > 0 && g.chance(6) {
		b.WriteString(pick(g, s.enum))
		return
	}
	switch s.typ {
	case "object":
		b.WriteByte('{')
		ws()
		var keys []string
		for _, k := range s.required {
			if g.chance(7) {
				keys = append(keys, k)
			}
		}
		for _, k := range s.props {
			if !contains(keys, k) && g.chance(4) {
				keys = append(keys, k)
			}
		}
		if g.chance(1) {
			keys = append(keys, pick(g, genKeys)) // extra, or a duplicate
		}
		// The order of the keys is the fuzzer's too.
		for i := len(keys) - 1; i > 0; i-- {
			j := g.intn(i + 1)
			keys[i], keys[j] = keys[j], keys[i]
		}
		for i, k := range keys {
			if i > 0 {
				b.WriteByte(',')
				ws()
			}
			kj, _ := json.Marshal(k)
			b.Write(kj)
			b.WriteByte(':')
			ws()
			genValue(g, s.sub[k], b, depth-1)
		}
		ws()
		b.WriteByte('}')
	case "array":
		b.WriteByte('[')
		n := g.intn(5)
		for i := range n {
			if i > 0 {
				b.WriteByte(',')
				ws()
			}
			genValue(g, s.items, b, depth-1)
		}
		b.WriteByte(']')
	case "string":
		b.WriteString(pick(g, genStrings))
	case "integer", "number":
		b.WriteString(pick(g, genNumbers))
	case "boolean":
		b.WriteString(pick(g, []string{"true", "false"}))
	case "null":
		b.WriteString("null")
	default:
		genAny(g, b, depth)
	}
}

// genAny writes any JSON value, a geopoint-like object now and then.
func genAny(g *genSource, b *strings.Builder, depth int) {
	switch k := g.intn(8); {
	case k < 5 || depth <= 0:
		b.WriteString(genScalar(g))
	case k == 5:
		lat := pick(g, []string{"0", "45.5", "-90", "90.0001", "1e1", `"12"`})
		lon := pick(g, []string{"0", "-180", "180.5", "12.25"})
		extra := pick(g, []string{"", `, "altitude": 10`, `, "accuracy": -1`, `, "accuracy": 3.5`, `, "x": 1`})
		b.WriteString(`{"latitude": ` + lat + `, "longitude": ` + lon + extra + `}`)
	case k == 6:
		b.WriteByte('[')
		for i := range g.intn(4) {
			if i > 0 {
				b.WriteByte(',')
			}
			genAny(g, b, depth-1)
		}
		b.WriteByte(']')
	default:
		b.WriteByte('{')
		for i := range g.intn(3) {
			if i > 0 {
				b.WriteByte(',')
			}
			b.WriteString(strconv.Quote(pick(g, genKeys)))
			b.WriteByte(':')
			genAny(g, b, depth-1)
		}
		b.WriteByte('}')
	}
}
