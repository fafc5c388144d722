package console_test

import (
	"strings"
	"testing"

	"github.com/chromedp/chromedp"

	"github.com/fieldsync/fieldsync/internal/console/consoletest"
)

// designerShot saves a screenshot of the page as name.png in the directory
// FIELDSYNC_SCREENSHOTS names (FIELDSYNC_SCREENSHOTS=../../docs/screenshots
// go test -run TestBrowserDesigner ./internal/console/ renews the README's),
// else in the test's temporary directory.
func designerShot(t *testing.T, b *consoletest.Browser, name string) {
	t.Helper()
	shot(t, b, name)
}

// designerValue is the value of the control of a CSS selector once the page
// has loaded in full: Browser.Submit returns as soon as the new page has a
// main element, which on a loaded machine can be before the parser reaches
// the textarea further down.
func designerValue(t *testing.T, b *consoletest.Browser, sel string) string {
	t.Helper()
	b.Do("wait for the page to load", chromedp.Poll[chromedp.Void](`document.readyState === "complete"`))
	v, err := chromedp.Run(b.Ctx, chromedp.Value(chromedp.CSS(sel)))
	if err != nil {
		t.Fatalf("browser: value of %s: %v", sel, err)
	}
	return v
}

// TestBrowserDesigner is a designer's work in a real browser: paste a
// definition with an error and see the finding beside its pointer with the
// text kept, fix it, preview, publish, upload a second version from the
// first, compare the two, close the form. Then an analyst sees the forms
// with no designer action.
func TestBrowserDesigner(t *testing.T) {
	env := designerEnv(t)
	b := env.NewBrowser(t)
	b.SignIn("dana", designerPassword)
	b.Visit("/projects/safety")
	b.Submit(`a[href="/projects/safety/forms"]`)
	b.Submit("#upload-link")

	b.Fill("#form-id", "perception")
	b.Fill("#version", "1")
	// A leading newline too: the text comes back exactly as pasted.
	b.Fill("#definition", "\n"+designerBroken)
	b.Submit("#upload")
	if got := b.Text("#findings tbody tr th"); got != "/schema/properties/name/type" {
		t.Errorf("finding's pointer = %q", got)
	}
	if got := b.Text("#findings tbody tr td"); !strings.Contains(got, "must match at least one of the allowed forms") {
		t.Errorf("finding's message = %q", got)
	}
	if got := designerValue(t, b, "#definition"); got != "\n"+designerBroken {
		t.Errorf("textarea after the refusal = %q, want the pasted text", got)
	}
	b.CheckAccessible()
	designerShot(t, b, "designer-upload")

	b.Fill("#definition", designerV1)
	b.Submit("#upload")
	if got := b.Text(".flash"); !strings.Contains(got, "The draft is saved") {
		t.Errorf("flash after upload = %q", got)
	}
	if got := b.Text("#questions tbody tr:nth-child(3)"); !strings.Contains(got, "Gender") || !strings.Contains(got, "Woman") {
		t.Errorf("third question = %q, want Gender with the label Woman", got)
	}
	b.CheckAccessible()

	b.Submit("#publish")
	if got := b.Text("#version-state"); !strings.Contains(got, "published") {
		t.Errorf("state after publish = %q", got)
	}
	if got := b.Text("#openrosa-warnings"); !strings.Contains(got, "/age: multipleOf") {
		t.Errorf("OpenRosa warnings after publish = %q", got)
	}
	designerShot(t, b, "designer-preview")

	// A second version, started from the first.
	b.Submit("#edit-as-new")
	if got := designerValue(t, b, "#definition"); !strings.Contains(got, `"Safety perception"`) {
		t.Errorf("new version not prefilled from version 1: %.80q", got)
	}
	b.Fill("#version", "2")
	b.Fill("#definition", designerV2)
	b.Submit("#upload")

	b.Visit("/projects/safety/forms")
	b.CheckAccessible()
	designerShot(t, b, "designer-forms")
	b.Submit("#compare-perception")
	if got := b.Text("#changes"); !strings.Contains(got, "Phone") || !strings.Contains(got, "Respondent name") || !strings.Contains(got, "whole number → number") {
		t.Errorf("comparison = %q", got)
	}
	b.CheckAccessible()
	designerShot(t, b, "designer-compare")

	b.Visit("/projects/safety/forms")
	b.Submit("#close-perception")
	if got := b.Text("#form-perception .state"); !strings.Contains(got, "closed") {
		t.Errorf("state after close = %q", got)
	}

	b.Submit("#signout")
	b.SignIn("ana", designerPassword)
	b.Visit("/projects/safety/forms")
	if !b.Exists("#form-perception") {
		t.Error("the analyst does not see the form")
	}
	for _, sel := range []string{"#upload-link", "main form[method=post] button", "#new-version-perception"} {
		if b.Exists(sel) {
			t.Errorf("the analyst sees a designer action (%s)", sel)
		}
	}
}
