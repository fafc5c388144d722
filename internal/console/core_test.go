package console_test

import (
	"net/http"
	"net/http/httptest"
	"net/url"
	"strings"
	"testing"

	"github.com/chromedp/chromedp"

	"github.com/fieldsync/fieldsync/internal/console"
	"github.com/fieldsync/fieldsync/internal/console/consoletest"
	"github.com/fieldsync/fieldsync/internal/domain"
	"github.com/fieldsync/fieldsync/internal/httpapi"
)

const password = "correct-horse-battery"

// TestBrowserSignInAndOut: a manager signs in, sees the home page with the
// project and the role, opens the project (the nav shows), and signs out;
// the back button's page then asks to sign in again. A user without a role
// sees no project and no project's data.
func TestBrowserSignInAndOut(t *testing.T) {
	env := consoletest.Start(t)
	env.CreateProject(t, "safety", "Community safety survey")
	env.AddUser(t, "mia", password, "safety", domain.RoleManager)
	env.AddUser(t, "nora", password, "", "")
	b := env.NewBrowser(t)

	b.Visit("/")
	if p := b.Path(); !strings.HasPrefix(p, "/signin") {
		t.Fatalf("/ without a session is %s, want the sign-in page", p)
	}
	b.CheckAccessible()
	b.Fill("#username", "mia")
	b.Fill("#password", "wrong password!")
	b.Submit("#signin")
	if got := b.Text("#signin-error"); !strings.Contains(got, "Wrong username or password") {
		t.Errorf("wrong password: %q", got)
	}
	// By keyboard only: the username has the focus; type, Tab, type, Enter.
	b.Visit("/signin")
	if got := b.Focused(); got != "username" {
		t.Errorf("the sign-in page's focus is on %q, want the username", got)
	}
	b.Key("mia\t" + password)
	b.Do("mark the page", chromedp.Evaluate[chromedp.Void](`document.documentElement.dataset.old = "1"`))
	b.Key("\r")
	b.Do("wait for the next page", chromedp.WaitNotPresent(chromedp.CSS(`html[data-old]`)), chromedp.WaitReady(chromedp.CSS("main")))
	if got := b.Text("#whoami"); got != "Signed in as mia" {
		t.Errorf("header: %q", got)
	}
	b.CheckAccessible()
	// The first Tab stop skips the navigation.
	b.Key("\t")
	if got := b.Focused(); got != "A Skip to content" {
		t.Errorf("the first Tab stop is %q, want the skip link", got)
	}
	if got := b.Text("#whoami"); got != "Signed in as mia" {
		t.Errorf("header: %q", got)
	}
	if got := b.Text("#projects tbody"); !strings.Contains(got, "safety") || !strings.Contains(got, "manager") {
		t.Errorf("home page projects: %q", got)
	}
	b.Submit(`#projects a[href="/projects/safety"]`)
	if got := b.Text("#current-role"); got != "manager in safety" {
		t.Errorf("role in header: %q", got)
	}
	b.CheckAccessible()

	b.Submit("#signout")
	if got := b.Text(".flash"); !strings.Contains(got, "signed out") {
		t.Errorf("after sign-out: %q", got)
	}
	b.Visit("/projects/safety")
	if p := b.Path(); !strings.HasPrefix(p, "/signin?next=") {
		t.Errorf("after sign-out, /projects/safety is %s, want the sign-in page", p)
	}

	// Nora has no role: no project listed, and the project's page refuses
	// her as the API does (404 project_not_found: she is told nothing).
	b.SignIn("nora", password)
	if !b.Exists("#no-projects") || b.Exists("#projects") {
		t.Error("a user without a role sees projects")
	}
	b.Visit("/projects/safety")
	if got := b.Eval(`document.querySelector("#error").dataset.code`); got != "project_not_found" {
		t.Errorf("nora on /projects/safety: %v", got)
	}
	if strings.Contains(b.Text("main"), "Community safety survey") {
		t.Error("nora sees the project's title")
	}
}

// TestSignOutRevokesSession: after sign-out, the old session cookie (a copy
// kept by someone) opens nothing: the token family is revoked in the
// identity service, not only the cookie cleared.
func TestSignOutRevokesSession(t *testing.T) {
	env := consoletest.Start(t)
	env.CreateProject(t, "safety", "Safety")
	env.AddUser(t, "mia", password, "safety", domain.RoleManager)
	c := env.SignIn(t, "mia", password)
	u, _ := url.Parse(env.URL)
	saved := c.HTTP.Jar.Cookies(u)

	if resp, _ := c.Get("/projects/safety"); resp.StatusCode != http.StatusOK {
		t.Fatalf("signed in: %d", resp.StatusCode)
	}
	resp, _ := c.PostForm("/signout", nil)
	if resp.StatusCode != http.StatusSeeOther {
		t.Fatalf("sign out: %d", resp.StatusCode)
	}
	thief := env.NewClient(t)
	thief.HTTP.Jar.SetCookies(u, saved)
	resp, _ = thief.Get("/projects/safety")
	if resp.StatusCode != http.StatusSeeOther || !strings.HasPrefix(resp.Header.Get("Location"), "/signin") {
		t.Errorf("the saved cookie after sign-out: %d %s, want a redirect to sign in", resp.StatusCode, resp.Header.Get("Location"))
	}
}

// TestDisabledUserLosesSession: an admin disabling a user ends the user's
// console session (the identity service's checks apply).
func TestDisabledUserLosesSession(t *testing.T) {
	env := consoletest.Start(t)
	env.CreateProject(t, "safety", "Safety")
	env.AddUser(t, "mia", password, "safety", domain.RoleManager)
	c := env.SignIn(t, "mia", password)
	if err := env.Identity.SetUserDisabled(t.Context(), env.Admin, "mia", true); err != nil {
		t.Fatal(err)
	}
	resp, _ := c.Get("/projects/safety")
	if resp.StatusCode != http.StatusSeeOther {
		t.Errorf("disabled user's page: %d, want a redirect to sign in", resp.StatusCode)
	}
}

// TestCSRF: a POST without the form token, with another token, or from
// another origin is refused with 403 and changes nothing.
func TestCSRF(t *testing.T) {
	env := consoletest.Start(t)
	env.CreateProject(t, "safety", "Safety")
	env.AddUser(t, "mia", password, "safety", domain.RoleManager)
	c := env.SignIn(t, "mia", password)

	for name, form := range map[string]url.Values{
		"no token":    {"csrf_token": {""}},
		"wrong token": {"csrf_token": {"AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA"}},
	} {
		resp, body := c.Do(http.MethodPost, "/signout", form)
		if resp.StatusCode != http.StatusForbidden || !strings.Contains(body, `data-code="csrf_failed"`) {
			t.Errorf("%s: %d", name, resp.StatusCode)
		}
	}
	// The right token from another site.
	req, _ := http.NewRequest(http.MethodPost, env.URL+"/signout", strings.NewReader(url.Values{"csrf_token": {c.CSRF()}}.Encode()))
	req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	req.Header.Set("Origin", "https://evil.example")
	req.Header.Set("Sec-Fetch-Site", "cross-site")
	resp, err := c.HTTP.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusForbidden {
		t.Errorf("cross-site POST: %d", resp.StatusCode)
	}
	// Still signed in: nothing was done.
	if resp, _ := c.Get("/projects/safety"); resp.StatusCode != http.StatusOK {
		t.Errorf("after refused sign-outs: %d", resp.StatusCode)
	}
}

// TestSecurityHeadersAndCookies: every page carries the strict CSP and no
// framing; the session cookie is HttpOnly, SameSite=Lax, and Secure with the
// __Host- prefix outside loopback.
func TestSecurityHeadersAndCookies(t *testing.T) {
	env := consoletest.Start(t)
	env.AddUser(t, "mia", password, "", "")
	c := env.NewClient(t)
	for _, path := range []string{"/signin", "/", "/no-such-page", "/static/console.css"} {
		resp, _ := c.Get(path)
		if got := resp.Header.Get("Content-Security-Policy"); got != console.ContentSecurityPolicy {
			t.Errorf("%s: CSP %q", path, got)
		}
		if resp.Header.Get("X-Frame-Options") != "DENY" || resp.Header.Get("X-Content-Type-Options") != "nosniff" {
			t.Errorf("%s: headers %v", path, resp.Header)
		}
	}
	if !strings.Contains(console.ContentSecurityPolicy, "script-src 'self'") || strings.Contains(console.ContentSecurityPolicy, "unsafe-inline") {
		t.Error("the CSP allows inline scripts")
	}

	// An https public URL makes the cookies Secure even when a proxy sends
	// Host: localhost.
	envTLS := consoletest.Start(t, func(c *httpapi.Config) { c.PublicURL = "https://sync.example.org" })
	envTLS.AddUser(t, "mia", password, "", "")

	// Sign in through a request to a public host name (behind a TLS proxy).
	for _, tc := range []struct {
		env    *consoletest.Env
		host   string
		secure bool
	}{{env, "127.0.0.1:8080", false}, {env, "localhost", false}, {env, "fieldsync.example.org", true}, {envTLS, "localhost:8080", true}} {
		env := tc.env
		rec := httptest.NewRecorder()
		req := httptest.NewRequest(http.MethodGet, "/signin", nil)
		req.Host = tc.host
		env.API.ServeHTTP(rec, req)
		csrf := cookieNamed(rec.Result().Cookies(), "fs_csrf")
		if csrf == nil {
			t.Fatalf("%s: no csrf cookie: %v", tc.host, rec.Result().Cookies())
		}
		form := url.Values{"username": {"mia"}, "password": {password}, "csrf_token": {csrf.Value}}
		req = httptest.NewRequest(http.MethodPost, "/signin", strings.NewReader(form.Encode()))
		req.Host = tc.host
		req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
		req.AddCookie(&http.Cookie{Name: csrf.Name, Value: csrf.Value})
		rec = httptest.NewRecorder()
		env.API.ServeHTTP(rec, req)
		if rec.Code != http.StatusSeeOther {
			t.Fatalf("%s: sign in: %d %s", tc.host, rec.Code, rec.Body)
		}
		sess := cookieNamed(rec.Result().Cookies(), "fs_session")
		if sess == nil {
			t.Fatalf("%s: no session cookie", tc.host)
		}
		if !sess.HttpOnly || sess.SameSite != http.SameSiteLaxMode || sess.Path != "/" || sess.Secure != tc.secure ||
			strings.HasPrefix(sess.Name, "__Host-") != tc.secure {
			t.Errorf("%s: session cookie %+v", tc.host, sess)
		}
	}
}

// cookieNamed finds a cookie by its name without the __Host- prefix.
func cookieNamed(cs []*http.Cookie, name string) *http.Cookie {
	for _, c := range cs {
		if strings.TrimPrefix(c.Name, "__Host-") == name && c.MaxAge >= 0 {
			return c
		}
	}
	return nil
}

// TestSignInNextStaysOnSite: the page to return to after sign-in is a path
// of this site, never another one.
func TestSignInNextStaysOnSite(t *testing.T) {
	env := consoletest.Start(t)
	env.AddUser(t, "mia", password, "", "")
	for next, want := range map[string]string{
		"/projects/x":          "/projects/x",
		"//evil.example/":      "/",
		"https://evil.example": "/",
		`/\evil.example`:       "/",
	} {
		c := env.NewClient(t)
		resp, _ := c.PostForm("/signin", url.Values{"username": {"mia"}, "password": {password}, "next": {next}})
		if got := resp.Header.Get("Location"); got != want {
			t.Errorf("next %q: redirect to %q, want %q", next, got, want)
		}
	}
}

// TestNotFoundAndMethod: an unknown page is the 404 error page, a known page
// with another method the 405 one, both HTML with the security headers; an
// unknown API path keeps the API's problem document.
func TestNotFoundAndMethod(t *testing.T) {
	env := consoletest.Start(t)
	c := env.NewClient(t)
	resp, body := c.Get("/no-such-page")
	if resp.StatusCode != http.StatusNotFound || !strings.Contains(body, `id="error"`) {
		t.Errorf("unknown page: %d", resp.StatusCode)
	}
	resp, body = c.Do(http.MethodPut, "/signin", nil)
	if resp.StatusCode != http.StatusMethodNotAllowed || !strings.Contains(body, `data-code="method_not_allowed"`) {
		t.Errorf("PUT /signin: %d", resp.StatusCode)
	}
	if resp, _ := c.Get("/healthz"); resp.StatusCode != http.StatusOK {
		t.Errorf("/healthz with the console mounted: %d", resp.StatusCode)
	}
	resp, _ = c.Get("/v1/no-such-route")
	if resp.StatusCode != http.StatusNotFound || resp.Header.Get("Content-Type") != "application/problem+json" {
		t.Errorf("unknown API path: %d %s", resp.StatusCode, resp.Header.Get("Content-Type"))
	}
}
