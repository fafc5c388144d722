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
