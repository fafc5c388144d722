package console_test

import (
	"strings"
	"testing"
)

// TestBrowserArabic: in Chromium, an analyst whose browser asks for English
// picks Arabic in the language selector at the foot of the page; the same
// page comes back in Arabic and mirrored (the header's brand and the table's
// first column on the right, the navigation laid out right to left), while
// codes and the map stay left to right. The choice holds on the next pages.
func TestBrowserArabic(t *testing.T) {
	env := startAnalystEnv(t)
	env.seed(t)
	b := env.NewBrowser(t)
	b.SignIn("alice", analystPassword)
	b.Visit("/projects/safety/data/forms/household")
	if got := b.Eval(`document.documentElement.lang`); got != "en" {
		t.Fatalf("before choosing: lang %v", got)
	}
	b.Fill("#language", "ar")
	b.Submit("#language-submit")
	if got := b.Path(); got != "/projects/safety/data/forms/household" {
		t.Errorf("after choosing, at %s", got)
	}
	check := func(what, expr string) {
		t.Helper()
		if got := b.Eval(expr); got != true {
			t.Errorf("%s on %s: %s is %v", what, b.Path(), expr, got)
		}
	}
	check("html", `document.documentElement.lang === "ar" && document.documentElement.dir === "rtl"`)
	check("nav direction", `getComputedStyle(document.querySelector("header nav ul")).direction === "rtl"`)
	// Mirrored: the brand starts the header on the right, the navigation's
	// first link is right of its second, the table's first column right of
	// its last, and the page's text is right-aligned.
	check("brand on the right", `document.querySelector(".brand").getBoundingClientRect().right > innerWidth - 100`)
	check("nav right to left", `(() => { const a = document.querySelectorAll("header nav a"); return a.length > 1 && a[0].getBoundingClientRect().left > a[1].getBoundingClientRect().left })()`)
	check("table mirrored", `(() => { const th = document.querySelectorAll("#submissions thead th"); return th[0].getBoundingClientRect().left > th[th.length-1].getBoundingClientRect().left })()`)
	check("heading on the right", `(() => { const r = document.querySelector("h1").getBoundingClientRect(); const m = document.querySelector("main").getBoundingClientRect(); return m.right - r.right < 40 })()`)
	if got := b.Text("h1"); got != "عمليات الإرسال" {
		t.Errorf("title %q", got)
	}
	if got := b.Text("#sort-note"); !strings.Contains(got, "الأقدم أولًا") {
		t.Errorf("sort note %q", got)
	}
	b.CheckAccessible()
	shot(t, b, "analyst-submissions-ar")

	// Codes read left to right inside Arabic text; the map keeps west left.
	b.Visit("/projects/safety/data/records/" + recordID(1))
	check("record in Arabic", `document.documentElement.dir === "rtl"`)
	check("codes ltr", `[...document.querySelectorAll("code")].every(c => getComputedStyle(c).direction === "ltr")`)
	check("answers mirrored", `(() => { const dt = document.querySelector("dl.answers dt"), dd = document.querySelector("dl.answers dd"); return dt.getBoundingClientRect().left > dd.getBoundingClientRect().left })()`)
	b.CheckAccessible()
	b.Visit("/projects/safety/data/forms/household/map")
	check("map ltr", `getComputedStyle(document.querySelector("#map")).direction === "ltr"`)
	b.CheckAccessible()
}
