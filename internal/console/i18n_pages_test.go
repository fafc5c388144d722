package console_test

import (
	"html"
	"io"
	"net/http"
	"net/url"
	"regexp"
	"strings"
	"testing"
	"unicode"
	"unicode/utf8"

	"github.com/fieldsync/fieldsync/internal/console/consoletest"
	"github.com/fieldsync/fieldsync/internal/console/i18n"
)

// getAs fetches path with c's cookies and the Accept-Language of a browser
// set to accept.
func getAs(t *testing.T, env *consoletest.Env, c *consoletest.Client, path, accept string) (int, string) {
	t.Helper()
	req, err := http.NewRequest(http.MethodGet, env.URL+path, nil)
	if err != nil {
		t.Fatal(err)
	}
	req.Header.Set("Accept-Language", accept)
	resp, err := c.HTTP.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return resp.StatusCode, string(b)
}

var (
	titleRE      = regexp.MustCompile(`<title>([^<]*) · fieldsync</title>`)
	missingKeyRE = regexp.MustCompile(`\[(?:layout|nav|flash|role|core|manager|designer|analyst)\.[a-z0-9_.]+\]`)
	htmlOpenRE   = regexp.MustCompile(`<html lang="([^"]*)" dir="([^"]*)">`)
	tagRE        = regexp.MustCompile(`<[^>]*>`)
)

// englishLeft lists the English interface texts that show on a page
// translated into lang: texts of the English catalogue whose translation
// differs, long enough not to be a word both languages share.
func englishLeft(en, lang *i18n.Lang, page string) []string {
	// The text a reader sees and hears: element content and attributes
	// (aria-label, alt, title) all count, so keep the whole page but drop
	// tag names by replacing tags with their attribute values only.
	text := html.UnescapeString(tagRE.ReplaceAllStringFunc(page, func(tag string) string {
		var vals []string
		for _, m := range regexp.MustCompile(`(?:aria-label|alt|title|placeholder)="([^"]*)"`).FindAllStringSubmatch(tag, -1) {
			vals = append(vals, m[1])
		}
		return " " + strings.Join(vals, " ") + " "
	}))
	own := map[string]bool{}
	for _, k := range lang.Keys() {
		own[k] = true
	}
	var left []string
	for _, k := range en.Keys() {
		e := en.T(k)
		// A key the language lacks falls back to English: that counts.
		if len(e) < 8 || strings.Contains(e, "%") || own[k] && e == lang.T(k) {
			continue
		}
		if containsWords(text, e) {
			left = append(left, k+": "+e)
		}
	}
	return left
}

// containsWords reports whether s is in text as words of their own, not as
// the end of a code ("disabled" in the audit event type "user.disabled").
func containsWords(text, s string) bool {
	for i := 0; ; {
		j := strings.Index(text[i:], s)
		if j < 0 {
			return false
		}
		start, end := i+j, i+j+len(s)
		before, _ := utf8.DecodeLastRuneInString(text[:start])
		after, _ := utf8.DecodeRuneInString(text[end:])
		if !wordRune(before) && !wordRune(after) {
			return true
		}
		i = end
	}
}

func wordRune(r rune) bool { return unicode.IsLetter(r) || unicode.IsDigit(r) || r == '.' || r == '_' }

// TestTranslatedPages: through the real router, a French browser gets the
// pages of every area in French (lang="fr", the French title, no English
// interface text, no missing-key marker), and an Arabic browser the same
// pages in Arabic, right to left.
func TestTranslatedPages(t *testing.T) {
	env := startAnalystEnv(t)
	env.seed(t)
	cat, err := i18n.Default()
	if err != nil {
		t.Fatal(err)
	}
	admin := env.SignIn(t, "admin", consoletest.AdminPassword)
	anonymous := env.NewClient(t)
	rec := recordID(1)
	pages := []struct {
		client *consoletest.Client
		path   string
		status int
		title  string
	}{
		// Core.
		{anonymous, "/signin", http.StatusOK, "core.signin.title"},
		{admin, "/", http.StatusOK, "core.home.title"},
		{admin, "/projects/safety", http.StatusOK, "core.project.title"},
		{admin, "/projects/nowhere", http.StatusNotFound, "core.error.title"},
		// Managers.
		{admin, "/projects/safety/members", http.StatusOK, "manager.members.title"},
		{admin, "/projects/safety/devices", http.StatusOK, "manager.devices.title"},
		{admin, "/projects/safety/devices/" + env.tablets[0].id + "/revoke", http.StatusOK, "manager.revoke.title"},
		{admin, "/users", http.StatusOK, "manager.users.title"},
		{admin, "/audit", http.StatusOK, "manager.audit.title"},
		// Designers.
		{admin, "/projects/safety/forms", http.StatusOK, "designer.forms.title"},
		{admin, "/projects/safety/forms/upload", http.StatusOK, "designer.upload.title"},
		{admin, "/projects/safety/forms/household/versions/1", http.StatusOK, "designer.version.title"},
		{admin, "/projects/safety/forms/household/compare", http.StatusOK, "designer.compare.title"},
		// Analysts.
		{admin, "/projects/safety/data", http.StatusOK, "analyst.index.title"},
		{admin, "/projects/safety/data/forms/household", http.StatusOK, "analyst.submissions.title"},
		{admin, "/projects/safety/data/records/" + rec, http.StatusOK, "analyst.record.title"},
		{admin, "/projects/safety/data/records/" + rec + "/conflicts", http.StatusOK, "analyst.conflicts.title"},
		{admin, "/projects/safety/data/quarantine", http.StatusOK, "analyst.quarantine.title"},
		{admin, "/projects/safety/data/forms/household/map", http.StatusOK, "analyst.map.title"},
	}
	en := cat.Lang("en")
	for _, browser := range []struct{ accept, lang, dir string }{
		{"fr-FR,fr;q=0.9,en-US;q=0.8,en;q=0.7", "fr", "ltr"},
		{"ar-SD,ar;q=0.9,en;q=0.5", "ar", "rtl"},
	} {
		lang := cat.Lang(browser.lang)
		for _, p := range pages {
			status, body := getAs(t, env.Env, p.client, p.path, browser.accept)
			if status != p.status {
				t.Errorf("%s %s: %d, want %d", browser.lang, p.path, status, p.status)
				continue
			}
			if m := htmlOpenRE.FindStringSubmatch(body); m == nil || m[1] != browser.lang || m[2] != browser.dir {
				t.Errorf("%s %s: html element %v, want lang=%q dir=%q", browser.lang, p.path, m, browser.lang, browser.dir)
			}
			if m := titleRE.FindStringSubmatch(body); m == nil || html.UnescapeString(m[1]) != lang.T(p.title) {
				t.Errorf("%s %s: title %v, want %q", browser.lang, p.path, m, lang.T(p.title))
			}
			if m := missingKeyRE.FindAllString(body, -1); m != nil {
				t.Errorf("%s %s: missing keys %v", browser.lang, p.path, m)
			}
			if left := englishLeft(en, lang, body); left != nil {
				t.Errorf("%s %s: English text on the page: %q", browser.lang, p.path, left)
			}
		}
	}
	// The English browser still gets English.
	if _, body := getAs(t, env.Env, admin, "/projects/safety/data", "en-GB,en;q=0.9"); !strings.Contains(body, `<html lang="en" dir="ltr">`) {
		t.Errorf("English browser: %.200s", body)
	}
}

// TestLanguageChoice: the language selector at the foot of each page keeps
// the choice in a cookie, over what the browser asks for, and comes back to
// the page it was made on; an unknown language is refused and changes
// nothing.
func TestLanguageChoice(t *testing.T) {
	env := startAnalystEnv(t)
	c := env.SignIn(t, "alice", analystPassword)
	const englishBrowser = "en-US,en;q=0.9"

	_, body := getAs(t, env.Env, c, "/projects/safety/data", englishBrowser)
	for _, want := range []string{`<form method="post" action="/language" id="language-form">`, `<input type="hidden" name="next" value="/projects/safety/data">`,
		`<option value="ar" lang="ar" dir="rtl">العربية</option>`, `<option value="en" lang="en" dir="ltr" selected>English</option>`, `<option value="fr" lang="fr" dir="ltr">Français</option>`} {
		if !strings.Contains(body, want) {
			t.Errorf("the selector lacks %s", want)
		}
	}

	resp, _ := c.PostForm("/language", url.Values{"lang": {"ar"}, "next": {"/projects/safety/data"}})
	if resp.StatusCode != http.StatusSeeOther || resp.Header.Get("Location") != "/projects/safety/data" {
		t.Fatalf("choosing Arabic: %d %s", resp.StatusCode, resp.Header.Get("Location"))
	}
	_, body = getAs(t, env.Env, c, "/projects/safety/data", englishBrowser)
	if !strings.Contains(body, `<html lang="ar" dir="rtl">`) || !strings.Contains(body, `<option value="ar" lang="ar" dir="rtl" selected>`) {
		t.Errorf("after choosing Arabic: %.300s", body)
	}

	// An unknown language, a missing one, an outside next: refused or kept home.
	for _, form := range []url.Values{{"lang": {"xx"}}, {}} {
		resp, body = c.PostForm("/language", form)
		if resp.StatusCode != http.StatusBadRequest || pageCode(body) != "bad_language" {
			t.Errorf("lang %v: %d %s", form, resp.StatusCode, pageCode(body))
		}
	}
	if _, body = getAs(t, env.Env, c, "/", englishBrowser); !strings.Contains(body, `<html lang="ar" dir="rtl">`) {
		t.Errorf("a refused choice changed the language: %.200s", body)
	}
	resp, _ = c.PostForm("/language", url.Values{"lang": {"fr"}, "next": {"//evil.example/"}})
	if resp.StatusCode != http.StatusSeeOther || resp.Header.Get("Location") != "/" {
		t.Errorf("outside next: %d %s", resp.StatusCode, resp.Header.Get("Location"))
	}
	if _, body = getAs(t, env.Env, c, "/", englishBrowser); !strings.Contains(body, `<html lang="fr" dir="ltr">`) {
		t.Errorf("after choosing French: %.200s", body)
	}

	// Without the CSRF token the choice is refused.
	resp, _ = c.Do(http.MethodPost, "/language", url.Values{"lang": {"en"}})
	if resp.StatusCode != http.StatusForbidden {
		t.Errorf("without CSRF token: %d", resp.StatusCode)
	}

	// Before signing in too: the sign-in page has the selector.
	anon := env.NewClient(t)
	resp, _ = anon.PostForm("/language", url.Values{"lang": {"ar"}, "next": {"/signin"}})
	if resp.StatusCode != http.StatusSeeOther {
		t.Fatalf("choosing before signing in: %d", resp.StatusCode)
	}
	if _, body = getAs(t, env.Env, anon, "/signin", englishBrowser); !strings.Contains(body, "<title>تسجيل الدخول") {
		t.Errorf("sign-in page after choosing Arabic: %.300s", body)
	}
}

// TestTranslatedProblems: on a French or Arabic page, an error the page
// knows is explained in the page's language, with the API's own English
// text kept below it (marked lang="en"); an English page shows the API's
// text alone, and a code without a translation shows the API's text.
func TestTranslatedProblems(t *testing.T) {
	env := startAnalystEnv(t)
	alice := env.SignIn(t, "alice", analystPassword)
	for _, tc := range []struct {
		accept, want string
	}{
		{"fr", "Ce projet n'existe pas, ou vous n'en êtes pas membre."},
		{"ar", "هذا المشروع غير موجود، أو أنك لست عضوًا فيه."},
	} {
		status, body := getAs(t, env.Env, alice, "/projects/nowhere", tc.accept)
		if status != http.StatusNotFound || !strings.Contains(body, `<p id="problem">`+html.EscapeString(tc.want)+`</p>`) ||
			!strings.Contains(body, `<p class="muted" lang="en" dir="ltr" id="problem-en">Project not found`) {
			t.Errorf("%s: %d, want the translated problem and the English one below it:\n%s", tc.accept, status, body)
		}
	}
	_, body := getAs(t, env.Env, alice, "/projects/nowhere", "en")
	if !strings.Contains(body, `<p id="problem">Project not found`) || strings.Contains(body, `id="problem-en"`) {
		t.Errorf("en: want the API's text alone:\n%s", body)
	}
	// A bad filter value: its code's translation, the API's details below.
	_, body = getAs(t, env.Env, alice, "/projects/safety/data/forms/household?review_state=maybe", "fr")
	if !strings.Contains(body, html.EscapeString("Un filtre de cette page n'est pas valide")) || !strings.Contains(body, "Unknown review state") {
		t.Errorf("fr invalid_query: %s", body)
	}
	// A code without a translation keeps the API's text.
	_, body = getAs(t, env.Env, alice, "/projects/safety/data/forms/household?order=sideways", "fr")
	if !strings.Contains(body, `data-code="invalid_order"`) || !strings.Contains(body, `<p id="problem">Unknown order`) {
		t.Errorf("fr invalid_order: %s", body)
	}
}
