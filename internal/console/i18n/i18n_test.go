package i18n

import (
	"testing"
	"testing/fstest"
)

func TestMatchAndRTL(t *testing.T) {
	c, err := Load(fstest.MapFS{
		"en/core.json":  {Data: []byte(`{"hello":"Hello %s","only.en":"English"}`)},
		"ar/_meta.json": {Data: []byte(`{"_dir":"rtl","_name":"العربية"}`)},
		"ar/core.json":  {Data: []byte(`{"hello":"مرحبا %s"}`)},
	})
	if err != nil {
		t.Fatal(err)
	}
	ar := c.Match("ar-SD, en;q=0.5")
	if ar.Code != "ar" || ar.Dir != "rtl" || ar.T("hello", "x") != "مرحبا x" {
		t.Errorf("ar: %+v %q", ar, ar.T("hello", "x"))
	}
	if got := ar.T("only.en"); got != "English" {
		t.Errorf("fallback: %q", got)
	}
	if got := c.Match("fr, en;q=0.1").Code; got != "en" {
		t.Errorf("unknown language: %s", got)
	}
	if got := c.Match("en;q=0.2, ar;q=0.9").Code; got != "ar" {
		t.Errorf("q order: %s", got)
	}
	if got := ar.T("missing"); got != "[missing]" {
		t.Errorf("missing: %q", got)
	}
}

func TestDuplicateKeyRefused(t *testing.T) {
	_, err := Load(fstest.MapFS{
		"en/a.json": {Data: []byte(`{"x":"1"}`)},
		"en/b.json": {Data: []byte(`{"x":"2"}`)},
	})
	if err == nil {
		t.Fatal("a key defined in two files was accepted")
	}
}

func TestDefaultLoads(t *testing.T) {
	if _, err := Default(); err != nil {
		t.Fatal(err)
	}
}

// TestPluralVariants: N picks the variant of the count's CLDR plural category
// in the page's language (French counts 0 as one, Arabic has six
// categories), the key itself when the language has no such variant, and the
// English text and rules for a key the language lacks. (A variant keeps the
// key's verbs, as the catalogue tests check: fmt has no way to drop one.)
func TestPluralVariants(t *testing.T) {
	c, err := Load(fstest.MapFS{
		"en/core.json": {Data: []byte(`{"n":"%d attempts","n#one":"%d attempt","only.en":"%d files","only.en#one":"%d file"}`)},
		"fr/core.json": {Data: []byte(`{"n":"%d tentatives","n#one":"%d tentative"}`)},
		"ar/core.json": {Data: []byte(`{"n":"%d محاولة","n#zero":"%d: لا محاولات","n#one":"محاولة واحدة (%d)","n#two":"محاولتان (%d)","n#few":"%d محاولات"}`)},
	})
	if err != nil {
		t.Fatal(err)
	}
	for _, tc := range []struct {
		lang string
		n    int
		want string
	}{
		{"en", 1, "1 attempt"}, {"en", 0, "0 attempts"}, {"en", 2, "2 attempts"}, {"en", 21, "21 attempts"},
		{"fr", 0, "0 tentative"}, {"fr", 1, "1 tentative"}, {"fr", 2, "2 tentatives"},
		{"ar", 0, "0: لا محاولات"}, {"ar", 1, "محاولة واحدة (1)"}, {"ar", 2, "محاولتان (2)"}, {"ar", 5, "5 محاولات"},
		{"ar", 103, "103 محاولات"}, {"ar", 11, "11 محاولة"}, {"ar", 100, "100 محاولة"},
		// The language lacks the key: English, with English's rules.
		{"fr", 1, "1 file"}, {"ar", 2, "2 files"},
	} {
		key := "n"
		if tc.want == "1 file" || tc.want == "2 files" {
			key = "only.en"
		}
		if got := c.Lang(tc.lang).N(key, tc.n, tc.n); got != tc.want {
			t.Errorf("%s N(%s, %d) = %q, want %q", tc.lang, key, tc.n, got, tc.want)
		}
	}

	for name, fsys := range map[string]fstest.MapFS{
		"not a category":   {"en/core.json": {Data: []byte(`{"n":"%d","n#plural":"%d"}`)}},
		"variant, no base": {"en/core.json": {Data: []byte(`{"n#one":"%d"}`)}},
	} {
		if _, err := Load(fsys); err == nil {
			t.Errorf("%s: loaded", name)
		}
	}
}
