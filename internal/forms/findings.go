package forms

import (
	"cmp"
	"errors"
	"fmt"
	"math/big"
	"slices"
	"strconv"
	"strings"

	"github.com/fieldsync/fieldsync/internal/domain"
	"github.com/santhosh-tekuri/jsonschema/v6"
	"github.com/santhosh-tekuri/jsonschema/v6/kind"
)

// Findings are written for people who fix a form or a record in the field:
// one finding per problem, addressed by a JSON pointer to the value (for a
// missing property: to where it should be), with the schema keyword that failed
// and a short message. Messages never repeat the submitted value: answers are
// sensitive, and findings are logged and listed in the quarantine.

// maxAlternatives bounds how many reasons an anyOf/oneOf finding lists.
const maxAlternatives = 4

// findingsOf flattens a jsonschema validation error into findings. prefix is
// prepended to every path (for example "/schema" when the instance was the
// schema inside a definition). The result is sorted and free of duplicates.
// instance is the validated value; it is only read to repair a location the
// library gets wrong (see propertyNamesPath).
func findingsOf(err error, prefix string, instance any) []domain.Finding {
	var ve *jsonschema.ValidationError
	if !errors.As(err, &ve) {
		return []domain.Finding{{Path: prefix, Message: "is not valid"}}
	}
	c := collector{prefix: prefix, instance: instance}
	c.collect(ve, &c.out)
	out := c.out
	if len(out) == 0 {
		out = append(out, domain.Finding{Path: prefix, Message: "is not valid"})
	}
	return sortFindings(out)
}

func sortFindings(f []domain.Finding) []domain.Finding {
	slices.SortFunc(f, func(a, b domain.Finding) int {
		return cmp.Or(cmp.Compare(a.Path, b.Path), cmp.Compare(a.Keyword, b.Keyword), cmp.Compare(a.Message, b.Message))
	})
	return slices.Compact(f)
}

// collector flattens one validation error.
type collector struct {
	prefix   string
	instance any
	out      []domain.Finding
}

func (c *collector) collect(e *jsonschema.ValidationError, out *[]domain.Finding) {
	prefix := c.prefix
	path := prefix + pointerOf(e.InstanceLocation)
	switch k := e.ErrorKind.(type) {
	case *kind.AnyOf:
		*out = append(*out, domain.Finding{Path: path, Keyword: "anyOf",
			Message: c.alternatives("must match at least one of the allowed forms", e, path)})
		return
	case *kind.OneOf:
		if len(k.Subschemas) >= 2 {
			*out = append(*out, domain.Finding{Path: path, Keyword: "oneOf",
				Message: fmt.Sprintf("must match exactly one of the allowed forms, but matches #%d and #%d", k.Subschemas[0], k.Subschemas[1])})
			return
		}
		*out = append(*out, domain.Finding{Path: path, Keyword: "oneOf",
			Message: c.alternatives("must match exactly one of the allowed forms", e, path)})
		return
	case *kind.Required:
		for _, p := range k.Missing {
			*out = append(*out, domain.Finding{Path: path + "/" + escapePointer(p), Keyword: "required", Message: "is required"})
		}
		return
	case *kind.DependentRequired:
		for _, p := range k.Missing {
			*out = append(*out, domain.Finding{Path: path + "/" + escapePointer(p), Keyword: "dependentRequired",
				Message: fmt.Sprintf("is required when %q is present", k.Prop)})
		}
		return
	case *kind.Dependency:
		for _, p := range k.Missing {
			*out = append(*out, domain.Finding{Path: path + "/" + escapePointer(p), Keyword: "dependencies",
				Message: fmt.Sprintf("is required when %q is present", k.Prop)})
		}
		return
	case *kind.PropertyNames:
		// The causes describe the name as a value of its own, located at "";
		// the finding belongs at the property.
		path = prefix + pointerOf(propertyNamesPath(c.instance, e.InstanceLocation, k.Property))
		*out = append(*out, domain.Finding{Path: path + "/" + escapePointer(k.Property), Keyword: "propertyNames",
			Message: c.alternatives("is not an allowed property name", e, prefix)})
		return
	case *kind.Contains, *kind.MinContains:
		// The causes say why each item did not match; the finding is that
		// none (or too few) did, not that every item must be fixed.
		*out = append(*out, domain.Finding{Path: path, Keyword: keywordOf(k), Message: messageOf(k)})
		return
	case *kind.AdditionalProperties:
		for _, p := range k.Properties {
			*out = append(*out, domain.Finding{Path: path + "/" + escapePointer(p), Keyword: "additionalProperties", Message: "is not allowed"})
		}
		return
	}
	// Every other kind with causes (the whole schema, $ref, allOf, properties,
	// items, then/else…) only groups its causes: the causes are the findings.
	if len(e.Causes) > 0 {
		for _, cause := range e.Causes {
			c.collect(cause, out)
		}
		return
	}
	*out = append(*out, domain.Finding{Path: path, Keyword: keywordOf(e.ErrorKind), Message: messageOf(e.ErrorKind)})
}

// alternatives builds the message of a failed anyOf/oneOf: the reasons each
// alternative failed, briefly. Listing them as separate findings would read as
// if all had to be fixed, when fixing one is enough.
func (c *collector) alternatives(head string, e *jsonschema.ValidationError, path string) string {
	var leaves []domain.Finding
	for _, cause := range e.Causes {
		c.collect(cause, &leaves)
	}
	var reasons []string
	for _, l := range leaves {
		r := l.Message
		if rel, ok := strings.CutPrefix(l.Path, path); ok && rel != "" {
			r = rel + " " + r
		}
		if !slices.Contains(reasons, r) {
			reasons = append(reasons, r)
		}
	}
	if len(reasons) == 0 {
		return head
	}
	more := ""
	if len(reasons) > maxAlternatives {
		more = fmt.Sprintf("; and %d more", len(reasons)-maxAlternatives)
		reasons = reasons[:maxAlternatives]
	}
	return head + " (" + strings.Join(reasons, "; ") + more + ")"
}

// propertyNamesPath repairs the location of a propertyNames failure:
// jsonschema v6.0.3 stores its validator's location buffer there without
// copying it, so by the time the error is returned its tokens may have been
// overwritten by a sibling's (its length is still right). The object holding
// the property is looked up in the instance: the library's path if it fits,
// else the first object at that depth with that property.
func propertyNamesPath(instance any, tokens []string, prop string) []string {
	if v, ok := lookupPointer(instance, pointerOf(tokens)); ok {
		if m, ok := v.(map[string]any); ok {
			if _, ok := m[prop]; ok {
				return tokens
			}
		}
	}
	var found []string
	var walk func(v any, at []string) bool
	walk = func(v any, at []string) bool {
		if len(at) == len(tokens) {
			if m, ok := v.(map[string]any); ok {
				if _, ok := m[prop]; ok {
					found = slices.Clone(at)
					return true
				}
			}
			return false
		}
		switch x := v.(type) {
		case map[string]any:
			keys := make([]string, 0, len(x))
			for k := range x {
				keys = append(keys, k)
			}
			slices.Sort(keys)
			for _, k := range keys {
				if walk(x[k], append(at, k)) {
					return true
				}
			}
		case []any:
			for i, e := range x {
				if walk(e, append(at, strconv.Itoa(i))) {
					return true
				}
			}
		}
		return false
	}
	if walk(instance, nil) {
		return found
	}
	return tokens
}

func pointerOf(tokens []string) string {
	if len(tokens) == 0 {
		return ""
	}
	var sb strings.Builder
	for _, t := range tokens {
		sb.WriteByte('/')
		sb.WriteString(escapePointer(t))
	}
	return sb.String()
}

func keywordOf(k jsonschema.ErrorKind) string {
	switch k.(type) {
	case *kind.FalseSchema:
		return "false"
	case *kind.Not:
		return "not"
	}
	if p := k.KeywordPath(); len(p) > 0 {
		return p[0]
	}
	return ""
}

func messageOf(k jsonschema.ErrorKind) string {
	switch k := k.(type) {
	case *kind.Type:
		return fmt.Sprintf("must be %s, not %s", orList(k.Want), k.Got)
	case *kind.Enum:
		return "must be one of " + valueList(k.Want)
	case *kind.Const:
		return "must be " + jsonValue(k.Want)
	case *kind.Format:
		return formatMessage(k)
	case *kind.Minimum:
		return "must be >= " + ratString(k.Want)
	case *kind.Maximum:
		return "must be <= " + ratString(k.Want)
	case *kind.ExclusiveMinimum:
		return "must be > " + ratString(k.Want)
	case *kind.ExclusiveMaximum:
		return "must be < " + ratString(k.Want)
	case *kind.MultipleOf:
		return "must be a multiple of " + ratString(k.Want)
	case *kind.MinLength:
		if k.Want == 1 {
			return "must not be empty"
		}
		return fmt.Sprintf("must be at least %d characters long", k.Want)
	case *kind.MaxLength:
		return fmt.Sprintf("must be at most %s long", plural(k.Want, "character"))
	case *kind.Pattern:
		return "must match the pattern " + k.Want
	case *kind.MinItems:
		return fmt.Sprintf("must have at least %s", plural(k.Want, "item"))
	case *kind.MaxItems:
		return fmt.Sprintf("must have at most %s", plural(k.Want, "item"))
	case *kind.UniqueItems:
		return fmt.Sprintf("must not repeat items (#%d and #%d are equal)", k.Duplicates[0], k.Duplicates[1])
	case *kind.MinProperties:
		return fmt.Sprintf("must have at least %s", plural(k.Want, "property"))
	case *kind.MaxProperties:
		return fmt.Sprintf("must have at most %s", plural(k.Want, "property"))
	case *kind.Contains:
		return "must contain a matching item"
	case *kind.MinContains:
		return fmt.Sprintf("must contain at least %s", plural(k.Want, "matching item"))
	case *kind.MaxContains:
		return fmt.Sprintf("must contain at most %s", plural(k.Want, "matching item"))
	case *kind.PropertyNames:
		return fmt.Sprintf("property name %q is not allowed", k.Property)
	case *kind.AdditionalItems:
		return "has more items than allowed"
	case *kind.FalseSchema:
		return "is not allowed"
	case *kind.Not:
		return "must not match the given schema"
	case *kind.InvalidJsonValue:
		return fmt.Sprintf("is not a JSON value (%T)", k.Value)
	}
	// A kind added by a later library version: its own wording, through the
	// only exported way to render one. It may quote the value; acceptable for a
	// case that should not happen.
	s := (&jsonschema.ValidationError{ErrorKind: k}).Error()
	if i := strings.Index(s, ": "); i >= 0 {
		s = s[i+2:]
	}
	return s
}

// formatMessage explains a failed format. The library's own error text often
// quotes the value (time.Parse does), so only our geopoint reasons are kept.
func formatMessage(k *kind.Format) string {
	if k.Want == FormatGeopoint && k.Err != nil {
		return "must be a geopoint: " + k.Err.Error()
	}
	hint := ""
	switch k.Want {
	case "date":
		hint = " (YYYY-MM-DD)"
	case "date-time":
		hint = " (RFC 3339, for example 2024-05-14T09:30:00Z)"
	case "time":
		hint = " (HH:MM:SS with a time zone, for example 09:30:00+03:00)"
	case "uuid":
		hint = " (8-4-4-4-12 hex digits)"
	case "email":
		hint = " address"
	}
	return "must be a valid " + k.Want + hint
}

// plural writes n and noun, with the noun in the plural unless n is 1.
func plural(n int, noun string) string {
	if n == 1 {
		return "1 " + noun
	}
	if strings.HasSuffix(noun, "y") {
		return fmt.Sprintf("%d %sies", n, strings.TrimSuffix(noun, "y"))
	}
	return fmt.Sprintf("%d %ss", n, noun)
}

func orList(words []string) string {
	switch len(words) {
	case 0:
		return "nothing"
	case 1:
		return words[0]
	}
	return strings.Join(words[:len(words)-1], ", ") + " or " + words[len(words)-1]
}

func valueList(vals []any) string {
	parts := make([]string, len(vals))
	for i, v := range vals {
		parts[i] = jsonValue(v)
	}
	return strings.Join(parts, ", ")
}

// jsonValue renders a schema constant (never a submitted value) for a message.
func jsonValue(v any) string {
	b, err := AppendCanonical(nil, v)
	if err != nil {
		return fmt.Sprint(v)
	}
	const limit = 80
	if len(b) > limit {
		return string(b[:limit]) + "…"
	}
	return string(b)
}

func ratString(r *big.Rat) string {
	if r == nil {
		return "?"
	}
	if r.IsInt() {
		return r.Num().String()
	}
	f, _ := r.Float64()
	return strconv.FormatFloat(f, 'g', -1, 64)
}
