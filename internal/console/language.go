package console

import (
	"net/http"
	"slices"

	"github.com/fieldsync/fieldsync/internal/console/i18n"
	"github.com/fieldsync/fieldsync/internal/domain"
)

// The interface language is the browser's (Accept-Language) unless the user
// chose one with the language selector at the foot of every page: an office
// computer set up in English, a manager whose browser asks for English but
// who reads Arabic better. The choice is a cookie, not a user setting, so it
// works before signing in (the sign-in page has the selector too) and
// belongs to the browser it was made on.

// langCookie holds the chosen language's code.
const langCookie = "fs_lang"

// langCookieAge keeps the choice a year.
const langCookieAge = 365 * 24 * 60 * 60

// registerLanguageRoutes registers the language selector's action. It is
// public, like sign-out: a preference of the browser, which the sign-in page
// offers too; the CSRF check of every POST still applies.
func (c *Console) registerLanguageRoutes() {
	c.handle(http.MethodPost, "/language", MirrorPublic, c.setLanguage)
}

// langFor is the language of r: the chosen one (the cookie), if the
// catalogue has it, else the best of Accept-Language.
func (c *Console) langFor(r *http.Request) *i18n.Lang {
	if code := c.readCookie(r, langCookie); code != "" && slices.Contains(c.cat.Codes(), code) {
		return c.cat.Lang(code)
	}
	return c.cat.Match(r.Header.Get("Accept-Language"))
}

// setLanguage keeps the language chosen (form field lang, a catalogue code)
// and goes back to the page it was chosen on (next).
func (c *Console) setLanguage(w http.ResponseWriter, r *http.Request) error {
	code := r.PostFormValue("lang")
	if !slices.Contains(c.cat.Codes(), code) {
		return &domain.Error{Kind: domain.KindBadRequest, Code: "bad_language",
			Title: "No such language", Detail: "lang must be one of the console's languages"}
	}
	c.setCookie(w, r, langCookie, code, langCookieAge)
	http.Redirect(w, r, safeNext(r.PostFormValue("next")), http.StatusSeeOther)
	return nil
}

// languages lists the catalogues for the selector, each named in itself.
func (c *Console) languages() []*i18n.Lang {
	var out []*i18n.Lang
	for _, code := range c.cat.Codes() {
		out = append(out, c.cat.Lang(code))
	}
	return out
}
