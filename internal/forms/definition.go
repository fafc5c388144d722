package forms

import (
	"bytes"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"net/url"
	"slices"
	"strings"
	"sync"
	"unicode/utf8"

	"github.com/fieldsync/fieldsync/internal/domain"
	"github.com/fieldsync/fieldsync/schemas"
	"github.com/santhosh-tekuri/jsonschema/v6"
)

// Limits on an uploaded definition. Real forms are a few dozen KiB and nest
// about ten levels; the limits keep a hostile upload from costing much memory or
// stack before it is refused.
const (
	// MaxDefinitionSize is the largest definition accepted, in bytes. Larger
	// ones fail with Kind TooLarge (413) and code "definition_too_large": the
	// same answer as any oversized body, and the client's fix is the same.
	MaxDefinitionSize = 1 << 20
	// MaxDepth is the deepest nesting of objects and arrays accepted in a
	// definition (code "definition_too_deep", 422) and in a record's data.
	MaxDepth = 64
)

// Error codes of ParseDefinition, beside "bad_json" and "definition_too_large".
const (
	// CodeInvalidDefinition: the definition breaks the meta-schema or its
	// schema does not compile; the findings say where.
	CodeInvalidDefinition = "invalid_definition"
	// CodeRemoteRef: the schema refers to a document other than itself.
	CodeRemoteRef = "remote_ref"
	// CodeTooDeep: the definition nests deeper than MaxDepth.
	CodeTooDeep = "definition_too_deep"
)

// schemaURL is the address the form schema is compiled under. It only names
// the document for $ref resolution: every URL loader refuses, and the .invalid
// top-level domain (RFC 2606) can never resolve anyway. An http(s) base (rather
// than a urn) makes a relative $ref such as "common.json" resolve to a distinct
// URL, which is then refused and reported, instead of silently meaning this
// document.
const schemaURL = "https://fieldsync.invalid/form/schema.json"

// metaURL is the address the form-definition meta-schema is compiled under.
const metaURL = "https://fieldsync.invalid/form-definition.schema.json"

// Definition is a parsed, checked and compiled form definition (protocol.md §2).
// It is immutable and safe for concurrent use; share it through a Cache.
type Definition struct {
	// Title is the form's name.
	Title string
	// Description is the optional note about the form ("" when absent).
	Description string
	// Policy is the conflict policy: domain.PolicyMerge (the default),
	// PolicyReject or PolicyLastWriteWins.
	Policy string
	// Shared makes every record of the form visible to every enumerator.
	Shared bool
	// UI is the "ui" member as given (whitespace removed); nil when absent.
	UI json.RawMessage
	// Schema is the "schema" member as given (whitespace removed), keys in
	// their original order.
	Schema json.RawMessage

	// Source is the whole definition as given with insignificant whitespace
	// removed. Unlike Canonical it keeps the key order, which the exports need to
	// list answers in the order the designer wrote them: store and serve Source,
	// and use Hash (from Canonical) as the identity.
	Source []byte
	// Canonical is the RFC 8785 canonical JSON of the whole definition.
	Canonical []byte
	// Hash is the lowercase hex sha256 of Canonical: the version's content hash
	// and ETag.
	Hash string

	schema *jsonschema.Schema
	intern map[string]any // see decoder.intern
	fast   *fastNode      // the fast path of ValidateJSON (fast.go); nil when off
	media  []mediaField   // answers that name files (media.go)
}

// JSONSchema returns the compiled schema, for callers that need the library's
// own API. Validate records with Validate or ValidateJSON, which turn the
// library's errors into findings and guard it against hostile numbers.
func (d *Definition) JSONSchema() *jsonschema.Schema { return d.schema }

// ParseDefinition checks and compiles a form definition. It returns a
// *domain.Error when the definition is refused:
//   - Kind TooLarge, code "definition_too_large": more than MaxDefinitionSize bytes;
//   - Kind BadRequest, code "bad_json": not JSON, or not UTF-8; Detail gives
//     the byte offset;
//   - Kind Invalid, code "definition_too_deep": nested deeper than MaxDepth;
//   - Kind Invalid, code "remote_ref": the schema refers to a document other
//     than itself (a URL, a file, another draft's meta-schema); nothing is ever
//     fetched;
//   - Kind Invalid, code "invalid_definition": anything else, with every finding
//     of the meta-schema (schemas/form-definition.schema.json), or what the
//     schema compiler reports, as JSON pointers into the definition.
//
// Any other error is an internal failure.
func ParseDefinition(raw []byte) (*Definition, error) {
	if len(raw) > MaxDefinitionSize {
		return nil, &domain.Error{Kind: domain.KindTooLarge, Code: "definition_too_large",
			Title:  "The form definition is too large",
			Detail: fmt.Sprintf("%d bytes; at most %d are accepted", len(raw), MaxDefinitionSize)}
	}
	// Records follow encoding/json and turn invalid UTF-8 into U+FFFD; a
	// definition is refused instead, so that Source (stored and served) is
	// valid UTF-8 and means exactly what Canonical means.
	if i := invalidUTF8At(raw); i >= 0 {
		return nil, &domain.Error{Kind: domain.KindBadRequest, Code: "bad_json",
			Title: "The form definition is not valid JSON", Detail: fmt.Sprintf("invalid UTF-8 at byte %d", i)}
	}
	doc, err := decodeJSON(raw, MaxDepth)
	if err != nil {
		return nil, definitionJSONError(err)
	}
	meta, err := metaSchema()
	if err != nil {
		return nil, fmt.Errorf("forms: compile the form-definition meta-schema: %w", err)
	}
	if err := meta.Validate(doc); err != nil {
		return nil, domain.Invalid(CodeInvalidDefinition, "The form definition is not valid", findingsOf(err, "", doc))
	}
	obj := doc.(map[string]any) // the meta-schema requires an object
	sch, code, findings := compileSchema(obj["schema"])
	if len(findings) > 0 {
		title := "The form definition is not valid"
		if code == CodeRemoteRef {
			title = "The form schema refers to documents outside the definition"
		}
		return nil, domain.Invalid(code, title, findings)
	}

	canonical, err := AppendCanonical(nil, doc)
	if err != nil {
		return nil, fmt.Errorf("forms: canonicalize definition: %w", err) // the decoder admits only representable values
	}
	var src bytes.Buffer
	if err := json.Compact(&src, raw); err != nil {
		return nil, fmt.Errorf("forms: compact definition: %w", err)
	}
	var parts struct {
		UI     json.RawMessage `json:"ui"`
		Schema json.RawMessage `json:"schema"`
	}
	// Case-insensitive matching of encoding/json is harmless here: the
	// meta-schema admits only the exact member names, each once.
	if err := json.Unmarshal(src.Bytes(), &parts); err != nil {
		return nil, fmt.Errorf("forms: split definition: %w", err)
	}
	media, mediaBad := mediaFields(sch, obj["schema"])
	if len(mediaBad) > 0 {
		return nil, domain.Invalid(CodeInvalidDefinition, "The form definition is not valid", mediaBad)
	}
	sum := sha256.Sum256(canonical)
	d := &Definition{
		media:     media,
		Policy:    domain.PolicyMerge,
		UI:        parts.UI,
		Schema:    parts.Schema,
		Source:    src.Bytes(),
		Canonical: canonical,
		Hash:      hex.EncodeToString(sum[:]),
		schema:    sch,
		intern:    internTable(obj["schema"]),
		fast:      compileFast(sch),
	}
	d.Title, _ = obj["title"].(string)
	d.Description, _ = obj["description"].(string)
	if p, ok := obj["conflict_policy"].(string); ok {
		d.Policy = p
	}
	d.Shared, _ = obj["shared"].(bool)
	return d, nil
}

// invalidUTF8At returns the offset of the first invalid UTF-8 sequence in b,
// or -1.
func invalidUTF8At(b []byte) int {
	if utf8.Valid(b) {
		return -1
	}
	for i := 0; i < len(b); {
		r, size := utf8.DecodeRune(b[i:])
		if r == utf8.RuneError && size == 1 {
			return i
		}
		i += size
	}
	return -1
}

// internTable collects the strings of a schema document, keys and values:
// among them are the property names and choice values records repeat.
func internTable(schema any) map[string]any {
	t := map[string]any{}
	add := func(s string) {
		if len(s) <= maxInternLen && len(t) < maxInterned {
			t[s] = s
		}
	}
	var walk func(v any)
	walk = func(v any) {
		switch x := v.(type) {
		case string:
			add(x)
		case map[string]any:
			for k, e := range x {
				add(k)
				walk(e)
			}
		case []any:
			for _, e := range x {
				walk(e)
			}
		}
	}
	walk(schema)
	return t
}

// definitionJSONError turns a decoding failure of a definition into the
// client's error.
func definitionJSONError(err error) error {
	var je *jsonError
	if !errors.As(err, &je) {
		return err
	}
	switch je.Kind {
	case errSyntax:
		return &domain.Error{Kind: domain.KindBadRequest, Code: "bad_json",
			Title: "The form definition is not valid JSON", Detail: je.Error(), Err: err}
	case errDepth:
		return domain.Invalid(CodeTooDeep, "The form definition is nested too deeply",
			[]domain.Finding{{Path: je.Path, Message: je.Msg}})
	default:
		return domain.Invalid(CodeInvalidDefinition, "The form definition is not valid",
			[]domain.Finding{{Path: je.Path, Message: je.Msg}})
	}
}

// metaSchema compiles the form-definition meta-schema once per process. It is
// package state only in the sense of a cache of a constant: the input is
// embedded and the result never changes.
var metaSchema = sync.OnceValues(func() (*jsonschema.Schema, error) {
	doc, err := decodeJSON(schemas.FormDefinition(), MaxDepth)
	if err != nil {
		return nil, err
	}
	c, _, _ := newCompiler()
	engine := &metaEngine{}
	c.UseRegexpEngine(engine.compile)
	if err := c.AddResource(metaURL, doc); err != nil {
		return nil, err
	}
	sch, err := c.Compile(metaURL)
	engine.ready.Store(true)
	return sch, err
})

// refusingLoader is the compiler's only URL loader: it loads nothing, and
// remembers what was asked for. The draft meta-schemas that jsonschema embeds
// are served by the library before a loader is asked, and never from the
// network.
type refusingLoader struct{ asked []string }

var errNoLoading = errors.New("the server never loads schemas from URLs")

func (l *refusingLoader) Load(u string) (any, error) {
	l.asked = append(l.asked, u)
	return nil, errNoLoading
}

// newCompiler returns a compiler set up for form schemas: draft 2020-12 when
// $schema is absent, formats asserted (including geopoint), no URL loading (the
// library's default would read local files through file:// URLs), and Go's
// regexp behind a guard on the pattern size (patternEngine).
func newCompiler() (*jsonschema.Compiler, *refusingLoader, *patternEngine) {
	c := jsonschema.NewCompiler()
	c.DefaultDraft(jsonschema.Draft2020)
	c.AssertFormat()
	c.RegisterFormat(geopointFormat())
	l := &refusingLoader{}
	c.UseLoader(l)
	e := &patternEngine{}
	c.UseRegexpEngine(e.compile)
	return c, l, e
}

// compileSchema compiles the "schema" member of a definition. On failure it
// returns the error code and the findings, with paths into the definition.
func compileSchema(doc any) (*jsonschema.Schema, string, []domain.Finding) {
	c, _, engine := newCompiler()
	if err := c.AddResource(schemaURL, doc); err != nil {
		return nil, CodeInvalidDefinition, []domain.Finding{{Path: "/schema", Message: cleanMessage(err)}}
	}
	sch, err := c.Compile(schemaURL)
	if err != nil {
		code, f := compileFindings(err, doc)
		return nil, code, f
	}
	// From now on the engine only sees answers to "format": "regex".
	engine.strict.Store(true)
	if code, f := checkCompiled(sch, doc); len(f) > 0 {
		return nil, code, f
	}
	return sch, "", nil
}

// compileFindings explains a compile error.
func compileFindings(err error, doc any) (string, []domain.Finding) {
	var load *jsonschema.LoadURLError
	if errors.As(err, &load) {
		return CodeRemoteRef, []domain.Finding{remoteRefFinding(load.URL, doc)}
	}
	var sve *jsonschema.SchemaValidationError
	if errors.As(err, &sve) {
		prefix, _ := definitionPointer(sve.URL)
		sub, _ := lookupPointer(doc, strings.TrimPrefix(prefix, "/schema"))
		return CodeInvalidDefinition, findingsOf(sve.Err, prefix, sub)
	}
	var pnf *jsonschema.JSONPointerNotFoundError
	if errors.As(err, &pnf) {
		return CodeInvalidDefinition, []domain.Finding{missingRefFinding(pnf.URL, doc)}
	}
	var anf *jsonschema.AnchorNotFoundError
	if errors.As(err, &anf) {
		return CodeInvalidDefinition, []domain.Finding{missingRefFinding(anf.Reference, doc)}
	}
	var re *jsonschema.InvalidRegexError
	if errors.As(err, &re) {
		p, _ := definitionPointer(re.URL)
		kw := p[strings.LastIndexByte(p, '/')+1:]
		return CodeInvalidDefinition, []domain.Finding{{Path: p, Keyword: kw,
			Message: "is not a valid regular expression (RE2 syntax): " + re.Err.Error()}}
	}
	return CodeInvalidDefinition, []domain.Finding{{Path: "/schema", Message: cleanMessage(err)}}
}

// cleanMessage renders a library error with our internal base URL taken out.
func cleanMessage(err error) string {
	return strings.ReplaceAll(err.Error(), schemaURL, "")
}

// definitionPointer turns a location in the compiled document (schemaURL#ptr)
// into a JSON pointer into the definition ("/schema" + ptr).
func definitionPointer(loc string) (string, bool) {
	frag, ok := strings.CutPrefix(loc, schemaURL+"#")
	if !ok {
		return "/schema", false
	}
	ptr, err := url.PathUnescape(frag)
	if err != nil {
		return "/schema", false
	}
	return "/schema" + ptr, true
}

// findRef looks for a reference member ($ref, $dynamicRef, $recursiveRef,
// $schema) in the schema document whose value satisfies match, and returns its pointer into the definition, the keyword and
// the value as written. It walks every object, so it may also find a "$ref"
// inside an enum value; it only serves to point the designer at the right line.
func findRef(doc any, match func(ref string) bool) (path, keyword, ref string, found bool) {
	refKeywords := []string{"$ref", "$dynamicRef", "$recursiveRef", "$schema"}
	var walk func(v any, ptr string) bool
	walk = func(v any, ptr string) bool {
		switch v := v.(type) {
		case map[string]any:
			for _, kw := range refKeywords {
				if s, ok := v[kw].(string); ok && match(s) {
					path, keyword, ref = ptr+"/"+escapePointer(kw), kw, s
					return true
				}
			}
			keys := make([]string, 0, len(v))
			for k := range v {
				keys = append(keys, k)
			}
			slices.Sort(keys) // deterministic when several refs match
			for _, k := range keys {
				if walk(v[k], ptr+"/"+escapePointer(k)) {
					return true
				}
			}
		case []any:
			for i, e := range v {
				if walk(e, fmt.Sprintf("%s/%d", ptr, i)) {
					return true
				}
			}
		}
		return false
	}
	found = walk(doc, "/schema")
	return path, keyword, ref, found
}

// resolveRef resolves ref against the document's address, without fragment.
func resolveRef(ref string) string {
	base, _ := url.Parse(schemaURL)
	r, err := url.Parse(ref)
	if err != nil {
		return ""
	}
	u := base.ResolveReference(r)
	u.Fragment, u.RawFragment = "", ""
	return u.String()
}

func remoteRefFinding(loadURL string, doc any) domain.Finding {
	path, kw, ref, ok := findRef(doc, func(ref string) bool {
		return resolveRef(ref) == loadURL || strings.SplitN(ref, "#", 2)[0] == loadURL
	})
	if !ok {
		path, kw, ref = "/schema", "$ref", loadURL
	}
	return domain.Finding{Path: path, Keyword: kw, Message: fmt.Sprintf(
		"refers to %q outside the definition; only references inside the document (such as \"#/$defs/name\") are allowed, and the server never loads a URL", ref)}
}

func missingRefFinding(target string, doc any) domain.Finding {
	_, frag, _ := strings.Cut(target, "#")
	if f, err := url.PathUnescape(frag); err == nil {
		frag = f
	}
	path, kw, ref, ok := findRef(doc, func(ref string) bool {
		_, f, has := strings.Cut(ref, "#")
		if uf, err := url.PathUnescape(f); err == nil {
			f = uf
		}
		return has && f == frag
	})
	if !ok {
		path, kw, ref = "/schema", "$ref", "#"+frag
	}
	return domain.Finding{Path: path, Keyword: kw, Message: fmt.Sprintf("refers to %q, which does not exist in the schema", ref)}
}

// checkCompiled walks the compiled schema and refuses what compiled fine but is
// not allowed: references that left the document (the draft meta-schemas that
// jsonschema embeds are reachable without a loader, e.g.
// {"$ref": "https://json-schema.org/draft/2020-12/schema"}), formats the
// server does not know, patterns over the limits (limits.go) and loops of
// references that never reach the data (refloop.go).
func checkCompiled(root *jsonschema.Schema, doc any) (string, []domain.Finding) {
	var remote, other []domain.Finding
	seen := map[*jsonschema.Schema]bool{}
	var visit func(s *jsonschema.Schema)
	visit = func(s *jsonschema.Schema) {
		if s == nil || seen[s] {
			return
		}
		seen[s] = true
		ptr, ok := definitionPointer(s.Location)
		if !ok {
			return // reported by the edge that led here
		}
		raw, _ := lookupPointer(doc, strings.TrimPrefix(ptr, "/schema"))
		obj, _ := raw.(map[string]any)
		if f, ok := obj["format"].(string); ok && !isKnownFormat(f) {
			other = append(other, domain.Finding{Path: ptr + "/format", Keyword: "format",
				Message: fmt.Sprintf("unknown format %q; known formats: %s", f, strings.Join(KnownFormats(), ", "))})
		}
		for _, e := range schemaEdges(s) {
			if e.ref && e.to != nil && !strings.HasPrefix(e.to.Location, schemaURL+"#") {
				ref, _ := obj[e.keyword].(string)
				if ref == "" {
					ref = e.to.Location
				}
				remote = append(remote, domain.Finding{Path: ptr + "/" + escapePointer(e.keyword), Keyword: e.keyword,
					Message: fmt.Sprintf("refers to %q outside the definition; only references inside the document (such as \"#/$defs/name\") are allowed", ref)})
				continue
			}
			visit(e.to)
		}
	}
	visit(root)
	if len(remote) > 0 {
		return CodeRemoteRef, sortFindings(remote)
	}
	other = append(other, refLoopFindings(root)...)
	costs, _ := costFindings(root)
	other = append(other, costs...)
	return CodeInvalidDefinition, capFindings(sortFindings(other))
}

// maxCompileFindings bounds the findings of the compile phase: a 1 MiB
// definition can hold 50,000 patterns over a limit, and a designer fixes the
// first ones first anyway.
const maxCompileFindings = 100

// capFindings keeps the first maxCompileFindings findings and counts the rest.
func capFindings(f []domain.Finding) []domain.Finding {
	if len(f) <= maxCompileFindings {
		return f
	}
	n := len(f) - maxCompileFindings
	return append(f[:maxCompileFindings], domain.Finding{Path: "/schema",
		Message: fmt.Sprintf("and %s like those above, not listed", plural(n, "more finding"))})
}

// edge is one link from a compiled schema to a subschema.
type edge struct {
	keyword string
	ref     bool // a reference ($ref, $dynamicRef, $recursiveRef), not a subschema in place
	to      *jsonschema.Schema
}

// schemaEdges lists every subschema a compiled schema links to.
func schemaEdges(s *jsonschema.Schema) []edge {
	var out []edge
	add := func(kw string, to *jsonschema.Schema) {
		if to != nil {
			out = append(out, edge{keyword: kw, to: to})
		}
	}
	addAny := func(kw string, v any) {
		switch v := v.(type) {
		case *jsonschema.Schema:
			add(kw, v)
		case []*jsonschema.Schema:
			for _, x := range v {
				add(kw, x)
			}
		}
	}
	if s.Ref != nil {
		out = append(out, edge{keyword: "$ref", ref: true, to: s.Ref})
	}
	if s.RecursiveRef != nil {
		out = append(out, edge{keyword: "$recursiveRef", ref: true, to: s.RecursiveRef})
	}
	if s.DynamicRef != nil && s.DynamicRef.Ref != nil {
		out = append(out, edge{keyword: "$dynamicRef", ref: true, to: s.DynamicRef.Ref})
	}
	add("not", s.Not)
	for _, x := range s.AllOf {
		add("allOf", x)
	}
	for _, x := range s.AnyOf {
		add("anyOf", x)
	}
	for _, x := range s.OneOf {
		add("oneOf", x)
	}
	add("if", s.If)
	add("then", s.Then)
	add("else", s.Else)
	add("propertyNames", s.PropertyNames)
	for _, x := range s.Properties {
		add("properties", x)
	}
	for _, x := range s.PatternProperties {
		add("patternProperties", x)
	}
	addAny("additionalProperties", s.AdditionalProperties)
	for _, x := range s.Dependencies {
		addAny("dependencies", x)
	}
	for _, x := range s.DependentSchemas {
		add("dependentSchemas", x)
	}
	add("unevaluatedProperties", s.UnevaluatedProperties)
	add("contains", s.Contains)
	addAny("items", s.Items)
	addAny("additionalItems", s.AdditionalItems)
	for _, x := range s.PrefixItems {
		add("prefixItems", x)
	}
	add("items", s.Items2020)
	add("unevaluatedItems", s.UnevaluatedItems)
	add("contentSchema", s.ContentSchema)
	return out
}

// lookupPointer returns the value at a JSON pointer in a decoded document.
func lookupPointer(doc any, ptr string) (any, bool) {
	if ptr == "" {
		return doc, true
	}
	if !strings.HasPrefix(ptr, "/") {
		return nil, false
	}
	v := doc
	for _, tok := range strings.Split(ptr[1:], "/") {
		tok = unescapePointer(tok)
		switch x := v.(type) {
		case map[string]any:
			var ok bool
			if v, ok = x[tok]; !ok {
				return nil, false
			}
		case []any:
			i := 0
			for _, c := range tok {
				if c < '0' || c > '9' || i > len(x) {
					return nil, false
				}
				i = i*10 + int(c-'0')
			}
			if tok == "" || i >= len(x) {
				return nil, false
			}
			v = x[i]
		default:
			return nil, false
		}
	}
	return v, true
}
