package i18n

import (
	"encoding/json"
	"io/fs"
	"path"
	"reflect"
	"regexp"
	"sort"
	"strconv"
	"strings"
	"testing"
	"unicode"
	"unicode/utf8"
)

// translations are the embedded catalogues besides English, with what their
// _meta.json must say.
var translations = []struct{ code, dir, name string }{
	{"fr", "ltr", "Français"},
	{"ar", "rtl", "العربية"},
}

// readFiles returns the embedded catalogue of code, file by file (base name
// to key to text).
func readFiles(t *testing.T, code string) map[string]map[string]string {
	t.Helper()
	paths, err := fs.Glob(files, code+"/*.json")
	if err != nil || len(paths) == 0 {
		t.Fatalf("no catalogue files for %s: %v", code, err)
	}
	out := map[string]map[string]string{}
	for _, p := range paths {
		raw, err := fs.ReadFile(files, p)
		if err != nil {
			t.Fatal(err)
		}
		var m map[string]string
		if err := json.Unmarshal(raw, &m); err != nil {
			t.Fatalf("%s: %v", p, err)
		}
		out[path.Base(p)] = m
	}
	return out
}

// TestTranslationsComplete: every English file has its translation in each
// language, with exactly the English keys (none missing, so no page falls
// back to English; none extra, so a key renamed in English is not left
// behind), in the file of the same area. Plural variants ("key#one") are the
// exception: each language has those its own grammar needs, of keys English
// has.
func TestTranslationsComplete(t *testing.T) {
	en := readFiles(t, Fallback)
	for _, tr := range translations {
		got := readFiles(t, tr.code)
		for file, enMsgs := range en {
			msgs, ok := got[file]
			if !ok {
				t.Errorf("%s/%s is missing", tr.code, file)
				continue
			}
			for k := range enMsgs {
				if strings.Contains(k, "#") {
					continue
				}
				if _, ok := msgs[k]; !ok {
					t.Errorf("%s/%s lacks %q (English: %q)", tr.code, file, k, enMsgs[k])
				}
			}
			for k := range msgs {
				base, _, _ := strings.Cut(k, "#")
				if _, ok := enMsgs[base]; !ok {
					t.Errorf("%s/%s has %q, which en/%s lacks", tr.code, file, k, file)
				}
			}
		}
		for file := range got {
			if _, ok := en[file]; !ok {
				t.Errorf("%s/%s has no English counterpart", tr.code, file)
			}
		}
	}
}

// verbRE matches one fmt verb: %%, or % with an optional explicit argument
// index, flags, width, precision and the verb letter.
var verbRE = regexp.MustCompile(`%(?:%|(\[\d+\])?[-+# 0]*(?:\d+|\*)?(?:\.(?:\d+|\*)?)?([a-zA-Z]))`)

// verbs returns, for a format, the verb letter each argument (1-based) is
// formatted with, following fmt's rule for explicit indexes: %[n]v uses
// argument n, and the verb after it argument n+1. A malformed verb or an
// argument formatted twice with different letters is reported in bad.
func verbs(format string) (args map[int]string, bad string) {
	args = map[int]string{}
	next := 1
	for _, m := range verbRE.FindAllStringSubmatch(format, -1) {
		if m[0] == "%%" {
			continue
		}
		if m[1] != "" {
			n, _ := strconv.Atoi(m[1][1 : len(m[1])-1])
			next = n
		}
		if prev, ok := args[next]; ok && prev != m[2] {
			bad = "argument " + strconv.Itoa(next) + " formatted as %" + prev + " and %" + m[2]
		}
		args[next] = m[2]
		next++
	}
	// A % that is no verb (a typo such as "% d") would print %!.
	if strings.Count(format, "%") != 2*strings.Count(format, "%%")+len(verbRE.FindAllString(strings.ReplaceAll(format, "%%", ""), -1)) {
		bad = "a % that is not a verb"
	}
	return args, bad
}

func TestVerbs(t *testing.T) {
	for _, tc := range []struct {
		format string
		want   map[int]string
	}{
		{"%s in %s", map[int]string{1: "s", 2: "s"}},
		{"%[2]s من %[1]s", map[int]string{1: "s", 2: "s"}},
		{"%d%% at %g, %g", map[int]string{1: "d", 2: "g", 3: "g"}},
		{"%[3]d then %s", map[int]string{3: "d", 4: "s"}},
	} {
		if got, bad := verbs(tc.format); !reflect.DeepEqual(got, tc.want) || bad != "" {
			t.Errorf("verbs(%q) = %v %q, want %v", tc.format, got, bad, tc.want)
		}
	}
	if _, bad := verbs("at 100 %"); bad == "" {
		t.Error(`"at 100 %" passed`)
	}
}

// keepAsIs are the names and notations a translation keeps as they are: a
// translation of an English text that has one has it as often.
var keepAsIs = []string{"fieldsync", "ODK Collect", "Collect", "OData", "CSV", "XLSX", "GeoJSON", "Excel", "JSON", "UTC",
	"QR", "URL", "device:<id>", "<", ">", "&", "a-z", "A-Z", "0-9", "KiB", "ui"}

// TestTranslationsKeepVerbsAndNames: each translation formats the same
// arguments with the same verbs as the English (in any order, with explicit
// indexes where a language needs another order), and keeps the product
// names, placeholders and HTML-significant characters.
func TestTranslationsKeepVerbsAndNames(t *testing.T) {
	en := readFiles(t, Fallback)
	for _, tr := range translations {
		got := readFiles(t, tr.code)
		for file, enMsgs := range en {
			for k, text := range got[file] {
				// A plural variant has its English base's verbs and names.
				base, _, _ := strings.Cut(k, "#")
				enText, ok := enMsgs[base]
				if !ok || strings.HasPrefix(k, "_") {
					continue
				}
				want, bad := verbs(enText)
				if bad != "" {
					t.Errorf("en %s: %s", k, bad)
				}
				have, bad := verbs(text)
				if bad != "" {
					t.Errorf("%s %s: %s: %q", tr.code, k, bad, text)
				}
				if !reflect.DeepEqual(have, want) {
					t.Errorf("%s %s: verbs %v, English %v: %q", tr.code, k, have, want, text)
				}
				for _, name := range keepAsIs {
					// KiB is a unit each language writes its own way.
					if name == "KiB" || name == "ui" && tr.code == "ar" {
						continue
					}
					if n := countName(enText, name); n > 0 && countName(text, name) < n {
						t.Errorf("%s %s: %q appears %d times in the English, %d in %q", tr.code, k, name, n, countName(text, name), text)
					}
				}
				if strings.TrimSpace(text) == "" {
					t.Errorf("%s %s is empty", tr.code, k)
				}
			}
		}
	}
}

// countName counts name in text where it is not part of a longer word ("ui"
// in "Required" is not the name ui).
func countName(text, name string) int {
	n := 0
	for i := 0; ; {
		j := strings.Index(text[i:], name)
		if j < 0 {
			return n
		}
		start, end := i+j, i+j+len(name)
		before, _ := utf8.DecodeLastRuneInString(text[:start])
		after, _ := utf8.DecodeRuneInString(text[end:])
		if !unicode.IsLetter(before) && !unicode.IsLetter(after) || !unicode.IsLetter(rune(name[0])) {
			n++
		}
		i = end
	}
}

// TestArabicIsArabic: every Arabic text with letters has Arabic letters (an
// English text copied over would not), save the product name used as a
// title; a symbol alone (an arrow) has none to have.
func TestArabicIsArabic(t *testing.T) {
	for file, msgs := range readFiles(t, "ar") {
		keys := make([]string, 0, len(msgs))
		for k := range msgs {
			keys = append(keys, k)
		}
		sort.Strings(keys)
		for _, k := range keys {
			if strings.HasPrefix(k, "_") || k == "designer.openrosa.title" || !strings.ContainsFunc(msgs[k], unicode.IsLetter) {
				continue
			}
			if !strings.ContainsFunc(msgs[k], func(r rune) bool { return unicode.Is(unicode.Arabic, r) }) {
				t.Errorf("ar/%s %s has no Arabic: %q", file, k, msgs[k])
			}
		}
	}
}

// TestTranslationsMeta: each language has its own name and direction, and
// the catalogue loads them.
func TestTranslationsMeta(t *testing.T) {
	c, err := Default()
	if err != nil {
		t.Fatal(err)
	}
	for _, tr := range translations {
		l := c.Lang(tr.code)
		if l.Code != tr.code || l.Dir != tr.dir || l.Name != tr.name {
			t.Errorf("%s: code %q dir %q name %q, want %q %q", tr.code, l.Code, l.Dir, l.Name, tr.dir, tr.name)
		}
		if got := c.Match(tr.code + "-XX, en;q=0.5").Code; got != tr.code {
			t.Errorf("Accept-Language %s-XX matched %s", tr.code, got)
		}
	}
	if en := c.Lang(Fallback); en.Dir != "ltr" || en.Name != "English" {
		t.Errorf("en: %+v", en)
	}
}

// TestPluralVariantsKeepVerbs: each English plural variant formats the same
// arguments with the same verbs as its key's other form.
func TestPluralVariantsKeepVerbs(t *testing.T) {
	for file, msgs := range readFiles(t, Fallback) {
		for k, text := range msgs {
			base, _, ok := strings.Cut(k, "#")
			if !ok {
				continue
			}
			want, _ := verbs(msgs[base])
			if have, _ := verbs(text); !reflect.DeepEqual(have, want) {
				t.Errorf("en/%s %s: verbs %v, its other form %v", file, k, have, want)
			}
		}
	}
}
