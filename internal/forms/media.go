package forms

import (
	"encoding/json"
	"fmt"
	"mime"
	"strconv"
	"strings"

	"github.com/santhosh-tekuri/jsonschema/v6"

	"github.com/fieldsync/fieldsync/internal/domain"
)

// Answers that name files (issue 13). A string property with
// "contentMediaType" holds the name of one of the record's attachments: a
// photo, a recording, a signature. The schema library treats the keyword as
// an annotation (content assertions are off), so validation — the library's
// and the fast path alike — never looks at it; MediaFindings checks these
// answers against the item's declared attachments as a step of its own, after
// validation, and costs nothing for a form without such a property.

// MediaFamilies are the media types an answer may name, as a family
// ("image/*") or as one type of a family ("image/jpeg").
var MediaFamilies = []string{"image/*", "audio/*", "video/*", "application/pdf"}

// validMediaType reports whether a contentMediaType is one the server takes.
func validMediaType(mt string) bool {
	t, _, err := mime.ParseMediaType(mt)
	if err != nil || t != strings.ToLower(mt) {
		return false
	}
	major, minor, ok := strings.Cut(t, "/")
	switch {
	case !ok || minor == "":
		return false
	case major == "image" || major == "audio" || major == "video":
		return true
	default:
		return t == "application/pdf"
	}
}

// MediaTypeMatches reports whether a file declared with contentType may be
// the answer to a property with contentMediaType want ("image/*" takes any
// image, "image/jpeg" only JPEG). Parameters are ignored.
func MediaTypeMatches(want, contentType string) bool {
	got, _, err := mime.ParseMediaType(contentType)
	if err != nil {
		return false
	}
	if major, ok := strings.CutSuffix(want, "/*"); ok {
		return strings.HasPrefix(got, major+"/")
	}
	return got == want
}

// mediaField is one place in a record's data that holds a file name: the
// path of property names, "*" standing for any array index.
type mediaField struct {
	path      []string
	mediaType string
}

// maxMediaPath bounds the paths followed through a recursive schema: records
// nest at most MaxDepth deep, and real forms keep files a few levels down.
const maxMediaPath = 16

// mediaFields lists the properties with contentMediaType reachable from the
// root through properties, items and in-place subschemas, and refuses the
// contentMediaType values the server does not take.
func mediaFields(root *jsonschema.Schema, doc any) ([]mediaField, []domain.Finding) {
	var out []mediaField
	var bad []domain.Finding
	seenBad := map[string]bool{}
	type visit struct {
		s    *jsonschema.Schema
		path string
	}
	seen := map[visit]bool{}
	var walk func(s *jsonschema.Schema, path []string)
	walk = func(s *jsonschema.Schema, path []string) {
		if s == nil || len(path) > maxMediaPath {
			return
		}
		k := visit{s, strings.Join(path, "\x00")}
		if seen[k] {
			return
		}
		seen[k] = true
		if ptr, ok := definitionPointer(s.Location); ok {
			raw, _ := lookupPointer(doc, strings.TrimPrefix(ptr, "/schema"))
			obj, _ := raw.(map[string]any)
			if v, has := obj["contentMediaType"]; has {
				mt, _ := v.(string)
				switch {
				case validMediaType(mt):
					out = append(out, mediaField{path: append([]string(nil), path...), mediaType: mt})
				case !seenBad[ptr]:
					seenBad[ptr] = true
					bad = append(bad, domain.Finding{Path: ptr + "/contentMediaType", Keyword: "contentMediaType",
						Message: fmt.Sprintf("%s is not a media type an answer can name; use one of %s, or one type of those families (image/jpeg)",
							strconv.Quote(fmt.Sprint(v)), strings.Join(MediaFamilies, ", "))})
				}
			}
		}
		walk(s.Ref, path)
		for _, x := range s.AllOf {
			walk(x, path)
		}
		for _, x := range s.AnyOf {
			walk(x, path)
		}
		for _, x := range s.OneOf {
			walk(x, path)
		}
		walk(s.Then, path)
		walk(s.Else, path)
		for name, x := range s.Properties {
			walk(x, append(path, name))
		}
		if x, ok := s.AdditionalProperties.(*jsonschema.Schema); ok {
			walk(x, append(path, "*"))
		}
		walk(s.Items2020, append(path, "*"))
		for _, x := range s.PrefixItems {
			walk(x, append(path, "*"))
		}
	}
	walk(root, nil)
	return out, sortFindings(bad)
}

// MediaFindings checks the answers of data (a record's data, canonical JSON,
// already valid against the schema) that name files: each must name one of
// declared, and the declared content type must fit the property's
// contentMediaType. Paths are JSON pointers into the data. An empty string
// names no file.
func (d *Definition) MediaFindings(data []byte, declared []domain.Attachment) []domain.Finding {
	if len(d.media) == 0 {
		return nil
	}
	var v any
	if err := json.Unmarshal(data, &v); err != nil {
		return nil // validated data always decodes
	}
	var out []domain.Finding
	seen := map[string]bool{}
	for _, f := range d.media {
		eachAt(v, f.path, "", func(ptr string, val any) {
			name, ok := val.(string)
			if !ok || name == "" || seen[ptr] {
				return
			}
			seen[ptr] = true
			var att *domain.Attachment
			for i := range declared {
				if declared[i].Name == name {
					att = &declared[i]
					break
				}
			}
			switch {
			case att == nil:
				out = append(out, domain.Finding{Path: ptr, Keyword: "attachment",
					Message: fmt.Sprintf("names the file %q, which the item does not declare in attachments", name)})
			case att.ContentType != "" && !MediaTypeMatches(f.mediaType, att.ContentType):
				out = append(out, domain.Finding{Path: ptr, Keyword: "contentMediaType",
					Message: fmt.Sprintf("names the file %q, declared as %s; this question takes %s", name, att.ContentType, f.mediaType)})
			}
		})
	}
	return sortFindings(out)
}

// eachAt calls fn with every value of v at path ("*": every array item or
// object member).
func eachAt(v any, path []string, ptr string, fn func(ptr string, v any)) {
	if len(path) == 0 {
		fn(ptr, v)
		return
	}
	switch x := v.(type) {
	case map[string]any:
		if path[0] == "*" {
			for k, e := range x {
				eachAt(e, path[1:], ptr+"/"+escapePointer(k), fn)
			}
		} else if e, ok := x[path[0]]; ok {
			eachAt(e, path[1:], ptr+"/"+escapePointer(path[0]), fn)
		}
	case []any:
		if path[0] == "*" {
			for i, e := range x {
				eachAt(e, path[1:], ptr+"/"+strconv.Itoa(i), fn)
			}
		}
	}
}
