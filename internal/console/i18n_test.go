package console_test

import (
	"encoding/json"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"testing/fstest"

	"github.com/fieldsync/fieldsync/internal/console"
	"github.com/fieldsync/fieldsync/internal/console/consoletest"
	"github.com/fieldsync/fieldsync/internal/console/i18n"
)

// TestRightToLeftLanguage: a language whose catalogue says rtl is served
// with dir="rtl" and its own text, to a browser that asks for it; the
// others keep English.
func TestRightToLeftLanguage(t *testing.T) {
	env := consoletest.Start(t)
	fsys := fstest.MapFS{
		"ar/_meta.json": {Data: []byte(`{"_dir":"rtl","_name":"العربية"}`)},
		"ar/core.json":  {Data: []byte(`{"core.signin.title":"تسجيل الدخول"}`)},
	}
	// English from the real catalogue files, so the page has every string.
	real, err := i18n.Default()
	if err != nil {
		t.Fatal(err)
	}
	en := real.Lang("en")
	var b strings.Builder
	b.WriteString("{")
	for i, k := range en.Keys() {
		if i > 0 {
			b.WriteString(",")
		}
		b.WriteString(quote(k) + ":" + quote(en.T(k)))
	}
	b.WriteString("}")
	fsys["en/all.json"] = &fstest.MapFile{Data: []byte(b.String())}
	cat, err := i18n.Load(fsys)
	if err != nil {
		t.Fatal(err)
	}
	con, err := console.New(console.Config{API: env.API, Identity: env.Identity, Store: env.Store, Catalogue: cat})
	if err != nil {
		t.Fatal(err)
	}
	for _, tc := range []struct{ accept, want, title string }{
		{"ar-SD,ar;q=0.9,en;q=0.5", `<html lang="ar" dir="rtl">`, "تسجيل الدخول"},
		{"fr-FR,en;q=0.5", `<html lang="en" dir="ltr">`, "Sign in"},
	} {
		req, _ := http.NewRequest(http.MethodGet, "/signin", nil)
		req.Header.Set("Accept-Language", tc.accept)
		rec := newRecorder()
		con.ServeHTTP(rec, req)
		body := rec.Body.String()
		if !strings.Contains(body, tc.want) || !strings.Contains(body, "<title>"+tc.title) {
			t.Errorf("%s: %s", tc.accept, body[:min(len(body), 300)])
		}
	}
}

func quote(s string) string {
	b, _ := json.Marshal(s)
	return string(b)
}

func newRecorder() *httptest.ResponseRecorder { return httptest.NewRecorder() }
