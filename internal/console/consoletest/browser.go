package consoletest

import (
	"context"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/chromedp/chromedp"
)

// ChromiumPath is Debian's Chromium (package chromium), which .ci/run installs.
const ChromiumPath = "/usr/bin/chromium"

// RequireChromiumEnv, when set to a non-empty value, makes a missing Chromium
// fail browser tests instead of skipping them (CI sets it).
const RequireChromiumEnv = "FIELDSYNC_REQUIRE_CHROMIUM"

// browserTimeout bounds one browser test; a test that waits on a page that
// never comes fails with the deadline, not a hang.
const browserTimeout = 2 * time.Minute

// Browser is a headless Chromium tab on an Env.
type Browser struct {
	t   testing.TB
	env *Env
	// Ctx is the chromedp context of the tab, for actions the helpers lack:
	// chromedp.Run(b.Ctx, ...).
	Ctx context.Context
}

// chromium finds the browser, or skips (fails under RequireChromiumEnv).
func chromium(t testing.TB) string {
	t.Helper()
	path := ChromiumPath
	if _, err := os.Stat(path); err != nil {
		if p, err := exec.LookPath("chromium"); err == nil {
			path = p
		} else {
			if os.Getenv(RequireChromiumEnv) != "" {
				t.Fatalf("%s is set but Chromium is not installed (apt-get install chromium)", RequireChromiumEnv)
			}
			t.Skip("Chromium is not installed (apt-get install chromium); browser test skipped")
		}
	}
	return path
}

// NewBrowser starts a fresh headless Chromium (its own profile directory)
// with a 1366×768 window, and stops it when the test ends.
func (e *Env) NewBrowser(t testing.TB) *Browser {
	t.Helper()
	exe := chromium(t)
	opts := []chromedp.ExecAllocatorOption{
		chromedp.ExecPath(exe),
		chromedp.Headless,
		chromedp.NoSandbox,
		chromedp.DisableGPU,
		chromedp.NoFirstRun,
		chromedp.NoDefaultBrowserCheck,
		chromedp.Flag("disable-quic", true),
		chromedp.Flag("disable-background-networking", true),
		chromedp.Flag("disable-component-update", true),
		chromedp.Flag("disable-sync", true),
		chromedp.Flag("disable-extensions", true),
		chromedp.Flag("disable-dev-shm-usage", true),
		chromedp.UserDataDir(filepath.Join(t.TempDir(), "chromium")),
		chromedp.WindowSize(1366, 768),
	}
	actx, cancelAlloc := chromedp.NewExecAllocator(context.Background(), opts...)
	ctx, cancelCtx := chromedp.NewContext(actx, chromedp.WithErrorf(t.Logf))
	t.Cleanup(func() {
		cancelCtx()
		cancelAlloc()
	})
	// The first action starts the browser; it must run without a deadline,
	// which would stop the browser (chromedp.Run's doc). The deadline bounds
	// the test's actions after it.
	if err := chromedp.Do(ctx); err != nil {
		t.Fatalf("starting Chromium: %v", err)
	}
	tctx, cancelTimeout := context.WithTimeout(ctx, browserTimeout)
	t.Cleanup(cancelTimeout)
	return &Browser{t: t, env: e, Ctx: tctx}
}

// Do runs chromedp actions in order, failing the test on error.
func (b *Browser) Do(what string, actions ...chromedp.Action[chromedp.Void]) {
	b.t.Helper()
	if err := chromedp.Do(b.Ctx, actions...); err != nil {
		b.t.Fatalf("browser: %s: %v", what, err)
	}
}

// Eval evaluates a JavaScript expression in the page and returns its value
// as JSON decodes it (string, float64, bool, ...).
func (b *Browser) Eval(expr string) any {
	b.t.Helper()
	v, err := chromedp.Run(b.Ctx, chromedp.Evaluate[any](expr))
	if err != nil {
		b.t.Fatalf("browser: eval %s: %v", expr, err)
	}
	return v
}

// Visit opens path and waits for the page's main element.
func (b *Browser) Visit(path string) {
	b.t.Helper()
	b.Do("visit "+path, chromedp.Navigate(b.env.URL+path), chromedp.WaitReady(chromedp.CSS("main")))
}

// SignIn signs in through the sign-in form and waits for the next page.
func (b *Browser) SignIn(username, password string) {
	b.t.Helper()
	b.Visit("/signin")
	b.Fill("#username", username)
	b.Fill("#password", password)
	b.Submit("#signin")
}

// Click clicks the element of a CSS selector (a link, a checkbox) and waits
// for a main element (the page it leads to, or the same one).
func (b *Browser) Click(sel string) {
	b.t.Helper()
	b.Do("click "+sel, chromedp.Click(chromedp.CSS(sel), chromedp.NodeVisible), chromedp.WaitReady(chromedp.CSS("main")))
}

// Submit clicks a button that sends a form, or a link, and waits until the
// page it was on is replaced by the answer. Use it for every click that
// loads a page.
func (b *Browser) Submit(sel string) {
	b.t.Helper()
	b.Do("mark the page", chromedp.Func(func(ctx context.Context, t *chromedp.Target) error {
		_, err := chromedp.Evaluate[any](`document.documentElement.dataset.old = "1"`)(ctx, t)
		return err
	}))
	b.Do("submit "+sel,
		chromedp.Click(chromedp.CSS(sel), chromedp.NodeVisible),
		chromedp.WaitNotPresent(chromedp.CSS(`html[data-old]`)),
		chromedp.WaitReady(chromedp.CSS("main")),
		// The answer fully loaded (its stylesheet too), so the DOM the
		// next step reads is the one that stays.
		chromedp.Poll[chromedp.Void](`document.readyState === "complete" && !document.documentElement.dataset.old`))
}

// Fill replaces the value of an input, textarea or select.
func (b *Browser) Fill(sel, value string) {
	b.t.Helper()
	b.Do("fill "+sel, chromedp.SetValue(chromedp.CSS(sel), value))
}

// Text returns the visible text of the first element of a selector, waiting
// for it to be visible.
func (b *Browser) Text(sel string) string {
	b.t.Helper()
	var (
		s   string
		err error
	)
	// A node found while Chromium was still swapping documents can be gone
	// by the time its text is asked for ("No node with given id found"):
	// the query is then run again on the document that stayed.
	for range 5 {
		if s, err = chromedp.Run(b.Ctx, chromedp.Text(chromedp.CSS(sel), chromedp.NodeVisible)); err == nil {
			break
		}
		if !strings.Contains(err.Error(), "No node with given id") && !strings.Contains(err.Error(), "Could not find node") {
			break
		}
	}
	if err != nil {
		b.t.Fatalf("browser: text of %s: %v", sel, err)
	}
	return strings.TrimSpace(s)
}

// Exists reports whether the page has an element of the selector now.
func (b *Browser) Exists(sel string) bool {
	b.t.Helper()
	n, _ := b.Eval(`document.querySelectorAll(` + jsString(sel) + `).length`).(float64)
	return n > 0
}

// Path returns the current page's path and query.
func (b *Browser) Path() string {
	b.t.Helper()
	s, _ := b.Eval(`location.pathname + location.search`).(string)
	return s
}

// Screenshot saves a PNG of the whole page to path (directories created).
func (b *Browser) Screenshot(path string) {
	b.t.Helper()
	png, err := chromedp.Run(b.Ctx, chromedp.FullScreenshot(100))
	if err != nil {
		b.t.Fatalf("browser: screenshot: %v", err)
	}
	if err := os.MkdirAll(filepath.Dir(path), 0o755); err != nil {
		b.t.Fatal(err)
	}
	if err := os.WriteFile(path, png, 0o644); err != nil {
		b.t.Fatal(err)
	}
}

// jsString quotes s as a JavaScript string literal.
func jsString(s string) string {
	var sb strings.Builder
	sb.WriteByte('"')
	for _, r := range s {
		switch r {
		case '"', '\\':
			sb.WriteByte('\\')
			sb.WriteRune(r)
		case '\n':
			sb.WriteString(`\n`)
		default:
			sb.WriteRune(r)
		}
	}
	sb.WriteByte('"')
	return sb.String()
}

// CheckAccessible fails the test for what the page does that a keyboard or
// screen-reader user could not use: a form control (not hidden) without a
// label (label for=, a wrapping label, aria-label or aria-labelledby), a
// button or link without text, an image without alt, a table without
// header cells, or an element taken out of the tab order by a positive or
// negative tabindex (other than main, the skip link's target).
func (b *Browser) CheckAccessible() {
	b.t.Helper()
	problems, _ := b.Eval(`(() => {
  const out = [];
  const name = el => (el.getAttribute("aria-label") || "").trim() || (el.getAttribute("aria-labelledby") || "").trim();
  for (const el of document.querySelectorAll("input, select, textarea")) {
    if (el.type === "hidden") continue;
    const labelled = (el.id && document.querySelector('label[for="' + el.id + '"]')) || el.closest("label") || name(el);
    if (!labelled) out.push("control without a label: " + el.outerHTML.slice(0, 120));
  }
  for (const el of document.querySelectorAll("button, a[href]")) {
    if (!el.textContent.trim() && !name(el) && !el.querySelector("img[alt]:not([alt=''])")) out.push("button or link without text: " + el.outerHTML.slice(0, 120));
  }
  for (const el of document.querySelectorAll("img")) {
    if (!el.hasAttribute("alt")) out.push("image without alt: " + el.outerHTML.slice(0, 120));
  }
  for (const el of document.querySelectorAll("table")) {
    if (!el.querySelector("th")) out.push("table without header cells");
  }
  for (const el of document.querySelectorAll("[tabindex]")) {
    if (el.tagName !== "MAIN" && el.getAttribute("tabindex") !== "0") out.push("tabindex " + el.getAttribute("tabindex") + " on " + el.tagName);
  }
  return out.join("\n");
})()`).(string)
	if problems != "" {
		b.t.Errorf("accessibility problems on %s:\n%s", b.Path(), problems)
	}
}

// Key types keys into whatever has the focus ("\t" is Tab, "\r" Enter), as
// a keyboard user would.
func (b *Browser) Key(keys string) {
	b.t.Helper()
	b.Do("keys", chromedp.KeyEvent(keys))
}

// Focused describes the element with the keyboard focus: its id, or its
// tag and text.
func (b *Browser) Focused() string {
	b.t.Helper()
	s, _ := b.Eval(`(() => { const e = document.activeElement; return e ? (e.id || (e.tagName + " " + e.textContent.trim())) : ""; })()`).(string)
	return s
}
