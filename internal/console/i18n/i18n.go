// Package i18n holds the console's interface text: one catalogue per
// language, each a directory of JSON files (en/core.json, en/manager.json,
// ...), so that each area of the console keeps its strings in a file of its
// own and a translation is a new directory, not a code change.
//
// A catalogue file is a flat JSON object of message key to text. Keys are
// dotted and start with the area ("manager.members.title"). Text may hold
// fmt verbs (%s, %d) for the arguments the template passes.
//
// A text that counts something ("%d attempts") may have plural variants: the
// key followed by "#" and a CLDR plural category of the language ("#one",
// and in Arabic also "#zero", "#two", "#few", "#many"), chosen by Lang.N
// for the count (golang.org/x/text/feature/plural holds the rules). The key
// itself is the "other" form, and what a language without variants shows; a
// translation may instead word the text so that it holds for any number
// ("attempts: %d"). The key "_dir"
// (in a file named _meta.json) gives the writing direction of the language,
// "ltr" (the default) or "rtl", and "_name" its own name ("Français").
package i18n

import (
	"embed"
	"encoding/json"
	"fmt"
	"io/fs"
	"maps"
	"path"
	"slices"
	"sort"
	"strings"

	"golang.org/x/text/feature/plural"
	"golang.org/x/text/language"
)

//go:embed */*.json
var files embed.FS

// Fallback is the language whose catalogue is complete: every other one falls
// back to it, key by key.
const Fallback = "en"

// Lang is one language's catalogue.
type Lang struct {
	// Code is the BCP 47 primary tag ("en", "fr", "ar").
	Code string
	// Dir is "ltr" or "rtl", for the html element's dir attribute.
	Dir string
	// Name is the language's name in itself.
	Name     string
	msgs     map[string]string
	fallback *Lang
	tag      language.Tag // for the plural rules
}

// pluralForms names the CLDR plural categories a variant key may end with
// (after "#"); the key without one is the "other" form.
var pluralForms = map[plural.Form]string{
	plural.Zero: "zero", plural.One: "one", plural.Two: "two", plural.Few: "few", plural.Many: "many",
}

// N is T for a text that counts n: the variant of key for n's plural
// category in this language ("key#one" for 1 in English), if the catalogue
// has it, else key itself. A key this catalogue lacks is looked up, variants
// and all, in the fallback.
func (l *Lang) N(key string, n int, args ...any) string {
	if _, ok := l.msgs[key]; !ok && l.fallback != nil {
		return l.fallback.N(key, n, args...)
	}
	if n < 0 {
		n = -n
	}
	if form, ok := pluralForms[plural.Cardinal.MatchPlural(l.tag, n, 0, 0, 0, 0)]; ok {
		if _, ok := l.msgs[key+"#"+form]; ok {
			key += "#" + form
		}
	}
	return l.T(key, args...)
}

// Has reports whether key is in this catalogue or its fallback.
func (l *Lang) Has(key string) bool {
	if _, ok := l.msgs[key]; ok {
		return true
	}
	return l.fallback != nil && l.fallback.Has(key)
}

// T returns the text of key, formatted with args when there are any. A
// missing key shows as "[key]", visible on the page, and TestCatalogueComplete
// fails for every key a template names that the English catalogue lacks.
func (l *Lang) T(key string, args ...any) string {
	msg, ok := l.msgs[key]
	if !ok && l.fallback != nil {
		return l.fallback.T(key, args...)
	}
	if !ok {
		return "[" + key + "]"
	}
	if len(args) == 0 {
		return msg
	}
	return fmt.Sprintf(msg, args...)
}

// Keys returns the catalogue's own keys, sorted.
func (l *Lang) Keys() []string {
	out := make([]string, 0, len(l.msgs))
	for k := range l.msgs {
		out = append(out, k)
	}
	sort.Strings(out)
	return out
}

// Catalogue is every language the console speaks.
type Catalogue struct {
	langs map[string]*Lang
	codes []string
}

// Default loads the embedded catalogues.
func Default() (*Catalogue, error) { return Load(files) }

// Load reads catalogues from fsys: one directory per language, each holding
// JSON files. A key defined twice in one language is an error, so two areas
// cannot silently take each other's strings.
func Load(fsys fs.FS) (*Catalogue, error) {
	c := &Catalogue{langs: map[string]*Lang{}}
	paths, err := fs.Glob(fsys, "*/*.json")
	if err != nil {
		return nil, err
	}
	for _, p := range paths {
		code := path.Dir(p)
		l := c.langs[code]
		if l == nil {
			l = &Lang{Code: code, Dir: "ltr", Name: code, msgs: map[string]string{}, tag: language.Make(code)}
			c.langs[code] = l
			c.codes = append(c.codes, code)
		}
		raw, err := fs.ReadFile(fsys, p)
		if err != nil {
			return nil, err
		}
		var m map[string]string
		if err := json.Unmarshal(raw, &m); err != nil {
			return nil, fmt.Errorf("i18n: %s: %w", p, err)
		}
		for k, v := range m {
			switch k {
			case "_dir":
				if v != "ltr" && v != "rtl" {
					return nil, fmt.Errorf("i18n: %s: _dir must be ltr or rtl", p)
				}
				l.Dir = v
				continue
			case "_name":
				l.Name = v
				continue
			}
			if _, dup := l.msgs[k]; dup {
				return nil, fmt.Errorf("i18n: %s: key %q defined twice in %s", p, k, code)
			}
			l.msgs[k] = v
		}
	}
	for code, l := range c.langs {
		for k := range l.msgs {
			base, form, ok := strings.Cut(k, "#")
			if !ok {
				continue
			}
			if !slices.Contains(slices.Collect(maps.Values(pluralForms)), form) {
				return nil, fmt.Errorf("i18n: %s: key %q: %q is not a plural category (zero, one, two, few or many)", code, k, form)
			}
			if _, ok := l.msgs[base]; !ok {
				return nil, fmt.Errorf("i18n: %s: key %q is a plural variant of %q, which %s lacks", code, k, base, code)
			}
		}
	}
	fb := c.langs[Fallback]
	if fb == nil {
		return nil, fmt.Errorf("i18n: no %q catalogue", Fallback)
	}
	for _, l := range c.langs {
		if l != fb {
			l.fallback = fb
		}
	}
	sort.Strings(c.codes)
	return c, nil
}

// Codes lists the languages, sorted.
func (c *Catalogue) Codes() []string { return append([]string(nil), c.codes...) }

// Lang returns the catalogue of code, or the fallback's.
func (c *Catalogue) Lang(code string) *Lang {
	if l := c.langs[code]; l != nil {
		return l
	}
	return c.langs[Fallback]
}

// Match picks the language for an Accept-Language header: the first listed
// (by q-value, then order) whose primary tag has a catalogue, else the
// fallback.
func (c *Catalogue) Match(acceptLanguage string) *Lang {
	type cand struct {
		code string
		q    float64
		i    int
	}
	var cands []cand
	for i, part := range strings.Split(acceptLanguage, ",") {
		tag, params, _ := strings.Cut(strings.TrimSpace(part), ";")
		q := 1.0
		if v, ok := strings.CutPrefix(strings.TrimSpace(params), "q="); ok {
			if _, err := fmt.Sscanf(v, "%g", &q); err != nil {
				q = 0
			}
		}
		primary, _, _ := strings.Cut(strings.ToLower(strings.TrimSpace(tag)), "-")
		if primary != "" && q > 0 {
			cands = append(cands, cand{primary, q, i})
		}
	}
	sort.SliceStable(cands, func(a, b int) bool { return cands[a].q > cands[b].q })
	for _, cd := range cands {
		if l := c.langs[cd.code]; l != nil {
			return l
		}
	}
	return c.langs[Fallback]
}
