package forms

import (
	"fmt"
	"maps"
	"slices"
	"strconv"
	"strings"

	"github.com/fieldsync/fieldsync/internal/domain"
	"github.com/santhosh-tekuri/jsonschema/v6"
)

// A schema applies some subschemas to the value it checks itself ($ref, allOf,
// anyOf, oneOf, not, if/then/else, dependentSchemas) and others to a part of it
// (properties, items…). A cycle of the first kind makes a validator check the
// same value against the same schema forever: JSON Schema 2020-12 (core §9.4.1)
// leaves its meaning undefined, and jsonschema v6 compiles it happily and then
// fails every value that reaches it with a "reference cycle" error
// (kind.RefCycle), so the form would publish and reject every record. It is
// refused at upload instead. A cycle through a part of the value (a tree of
// items) is ordinary recursion, ends with the data, and stays allowed.

// maxLoopShown bounds how many schemas the message of a loop lists.
const maxLoopShown = 6

// inPlaceEdge is a link from a schema to a subschema that checks the same value.
type inPlaceEdge struct {
	path string // from the schema to the keyword, e.g. "$ref" or "allOf/1"
	ref  bool
	to   *jsonschema.Schema
}

// inPlaceEdges lists the subschemas s applies to the value it checks itself,
// in a stable order. A $dynamicRef is followed to the schema it names
// statically: in a one-document form that is where it resolves.
func inPlaceEdges(s *jsonschema.Schema) []inPlaceEdge {
	var out []inPlaceEdge
	add := func(path string, ref bool, to *jsonschema.Schema) {
		if to != nil {
			out = append(out, inPlaceEdge{path: path, ref: ref, to: to})
		}
	}
	add("$ref", true, s.Ref)
	add("$recursiveRef", true, s.RecursiveRef)
	if s.DynamicRef != nil {
		add("$dynamicRef", true, s.DynamicRef.Ref)
	}
	for _, l := range []struct {
		kw   string
		list []*jsonschema.Schema
	}{{"allOf", s.AllOf}, {"anyOf", s.AnyOf}, {"oneOf", s.OneOf}} {
		for i, x := range l.list {
			add(l.kw+"/"+strconv.Itoa(i), false, x)
		}
	}
	add("not", false, s.Not)
	add("if", false, s.If)
	add("then", false, s.Then)
	add("else", false, s.Else)
	for _, name := range slices.Sorted(maps.Keys(s.DependentSchemas)) {
		add("dependentSchemas/"+escapePointer(name), false, s.DependentSchemas[name])
	}
	for _, name := range slices.Sorted(maps.Keys(s.Dependencies)) {
		if x, ok := s.Dependencies[name].(*jsonschema.Schema); ok {
			add("dependencies/"+escapePointer(name), false, x)
		}
	}
	return out
}

// refLoopFindings finds every loop of in-place links among the schemas
// reachable from root, and reports each at the reference that closes it (a
// loop always holds one: subschemas written in place form a tree).
func refLoopFindings(root *jsonschema.Schema) []domain.Finding {
	const (
		onPath = 1
		done   = 2
	)
	state := map[*jsonschema.Schema]int{}
	type step struct {
		from *jsonschema.Schema
		edge inPlaceEdge
	}
	var path []step // the in-place links from where the walk entered, to here
	var out []domain.Finding
	var visit func(s *jsonschema.Schema)
	visit = func(s *jsonschema.Schema) {
		state[s] = onPath
		for _, e := range inPlaceEdges(s) {
			path = append(path, step{s, e})
			switch state[e.to] {
			case onPath:
				start := slices.IndexFunc(path, func(st step) bool { return st.from == e.to })
				loop := path[start:]
				closing := len(loop) - 1
				for !loop[closing].edge.ref && closing > 0 {
					closing--
				}
				out = append(out, loopFinding(loop[closing].from, loop[closing].edge, func(yield func(*jsonschema.Schema) bool) {
					for _, st := range loop {
						if !yield(st.from) {
							return
						}
					}
				}))
			case 0:
				visit(e.to)
			}
			path = path[:len(path)-1]
		}
		state[s] = done
	}
	for _, s := range reachable(root) {
		if state[s] == 0 {
			visit(s)
		}
	}
	return out
}

// reachable lists every schema reachable from root, root first, each once.
func reachable(root *jsonschema.Schema) []*jsonschema.Schema {
	var out []*jsonschema.Schema
	seen := map[*jsonschema.Schema]bool{}
	var walk func(s *jsonschema.Schema)
	walk = func(s *jsonschema.Schema) {
		if s == nil || seen[s] {
			return
		}
		seen[s] = true
		out = append(out, s)
		for _, e := range schemaEdges(s) {
			walk(e.to)
		}
	}
	walk(root)
	return out
}

// loopFinding reports the loop whose schemas are listed by loop, at the link
// e of schema from.
func loopFinding(from *jsonschema.Schema, e inPlaceEdge, loop func(func(*jsonschema.Schema) bool)) domain.Finding {
	ptr, _ := definitionPointer(from.Location)
	var names []string
	for s := range loop {
		p, _ := definitionPointer(s.Location)
		names = append(names, strings.TrimPrefix(p, "/schema"))
	}
	names = append(names, names[0])
	for i, n := range names {
		if n == "" {
			names[i] = "#"
		} else {
			names[i] = "#" + n
		}
	}
	if len(names) > maxLoopShown {
		names = append(names[:maxLoopShown-1], "…", names[len(names)-1])
	}
	kw := e.path[strings.LastIndexByte(e.path, '/')+1:]
	return domain.Finding{Path: ptr + "/" + e.path, Keyword: kw, Message: fmt.Sprintf(
		"closes a loop of references that never moves into the data (%s): it would check the same value forever, so no record could be accepted",
		strings.Join(names, " → "))}
}
