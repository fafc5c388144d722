package console

// Console sessions are identity sessions: signing in is identity.Login (its
// throttle and audit), and the session cookie holds the token pair Login
// answers. Each request checks the access token with identity.Authenticate
// and, once it has expired, spends the refresh token with identity.Refresh,
// exactly as a tablet does. So everything that ends an API session ends a
// console session, on every instance: sign-out (identity.Revoke), an admin's
// revoke or disable, a password change; and there is no table of console
// sessions to keep.
//
// CSRF: every POST must carry, in the form field csrfField, the random token
// of the csrf cookie (double submit; the cookie is HttpOnly, SameSite=Lax and,
// outside loopback, Secure with the __Host- prefix, so no other site or
// subdomain can set or read it), and must pass net/http's
// CrossOriginProtection (Sec-Fetch-Site / Origin must be this origin). The
// token is renewed at sign-in, so one planted before cannot be used after.

import (
	"context"
	"crypto/rand"
	"crypto/subtle"
	"encoding/base64"
	"net"
	"net/http"
	"net/url"
	"strings"

	"github.com/fieldsync/fieldsync/internal/domain"
	"github.com/fieldsync/fieldsync/internal/httpapi"
	"github.com/fieldsync/fieldsync/internal/identity"
)

// csrfField is the name of the hidden form field holding the CSRF token.
const csrfField = "csrf_token"

// session is a signed-in user.
type session struct {
	p       domain.Principal
	refresh string
	csrf    string
}

// secure reports whether cookies must be Secure: always, except on a plain
// HTTP request to a loopback address (a developer's machine, the tests),
// where a browser would drop a Secure cookie. Behind a TLS-terminating proxy
// the request is plain HTTP to a public name, so the cookies are Secure; and
// with an https public URL they are, whatever Host the proxy sends on.
func (c *Console) secure(r *http.Request) bool {
	if r.TLS != nil || strings.HasPrefix(c.cfg.API.BaseURL(r), "https://") {
		return true
	}
	host := r.Host
	if h, _, err := net.SplitHostPort(host); err == nil {
		host = h
	}
	if strings.EqualFold(host, "localhost") {
		return false
	}
	ip := net.ParseIP(host)
	return ip == nil || !ip.IsLoopback()
}

// cookieName prefixes name with __Host- on Secure cookies: the browser then
// refuses it unless it is Secure, host-only and for path /, so a sibling
// subdomain cannot plant one.
func (c *Console) cookieName(r *http.Request, name string) string {
	if c.secure(r) {
		return "__Host-" + name
	}
	return name
}

// Cookie names, before cookieName's prefix.
const (
	sessionCookie = "fs_session"
	csrfCookie    = "fs_csrf"
)

func (c *Console) setCookie(w http.ResponseWriter, r *http.Request, name, value string, maxAge int) {
	// No Max-Age: the cookie ends with the browser, which matters on a
	// shared office computer; the session itself ends at the identity
	// service's RefreshTTL at the latest.
	http.SetCookie(w, &http.Cookie{Name: c.cookieName(r, name), Value: value, Path: "/", MaxAge: maxAge,
		HttpOnly: true, Secure: c.secure(r), SameSite: http.SameSiteLaxMode})
}

func (c *Console) readCookie(r *http.Request, name string) string {
	ck, err := r.Cookie(c.cookieName(r, name))
	if err != nil {
		return ""
	}
	return ck.Value
}

// randomToken is 256 random bits, base64url.
func randomToken() string {
	b := make([]byte, 32)
	_, _ = rand.Read(b) // never fails (crypto/rand, Go 1.24+)
	return base64.RawURLEncoding.EncodeToString(b)
}

// csrfToken returns the request's CSRF token, setting a new csrf cookie when
// it has none.
func (c *Console) csrfToken(w http.ResponseWriter, r *http.Request) string {
	if t := c.readCookie(r, csrfCookie); len(t) == 43 {
		return t
	}
	t := randomToken()
	c.setCookie(w, r, csrfCookie, t, 0)
	// Later reads in this request see it too.
	r.AddCookie(&http.Cookie{Name: c.cookieName(r, csrfCookie), Value: t})
	return t
}

// errCSRF is the answer to a POST without a valid token or from another origin.
func errCSRF() error {
	return &domain.Error{Kind: domain.KindForbidden, Code: "csrf_failed",
		Title: "This form has expired or came from another site", Detail: "reload the page and send the form again"}
}

// checkCSRF refuses a state-changing request from another origin or without
// the token of the csrf cookie.
func (c *Console) checkCSRF(r *http.Request) error {
	if err := c.csrf.Check(r); err != nil {
		return errCSRF()
	}
	want := c.readCookie(r, csrfCookie)
	got := r.PostFormValue(csrfField)
	if want == "" || subtle.ConstantTimeCompare([]byte(want), []byte(got)) != 1 {
		return errCSRF()
	}
	return nil
}

// loadSession returns the signed-in user of r, or nil. An expired access
// token is refreshed (and the cookie updated); a session the identity
// service refuses (signed out, revoked, disabled user, expired) is cleared.
// Only a failure to check (store down) is an error.
func (c *Console) loadSession(w http.ResponseWriter, r *http.Request) (*session, error) {
	raw := c.readCookie(r, sessionCookie)
	if raw == "" {
		return nil, nil
	}
	refresh, access, ok := strings.Cut(raw, "~")
	if !ok || refresh == "" || access == "" {
		c.clearSession(w, r)
		return nil, nil
	}
	ctx := r.Context()
	p, err := c.cfg.Identity.Authenticate(ctx, access)
	if err != nil && httpapi.Retryable(err) {
		return nil, err
	}
	if err != nil {
		pair, rerr := c.cfg.Identity.Refresh(ctx, refresh, c.cfg.API.ClientIP(r))
		if rerr != nil {
			if httpapi.Retryable(rerr) {
				return nil, rerr
			}
			c.clearSession(w, r)
			return nil, nil
		}
		refresh, access = pair.RefreshToken, pair.AccessToken
		c.setCookie(w, r, sessionCookie, refresh+"~"+access, 0)
		if p, err = c.cfg.Identity.Authenticate(ctx, access); err != nil {
			if httpapi.Retryable(err) {
				return nil, err
			}
			c.clearSession(w, r)
			return nil, nil
		}
	}
	if p.IsDevice() {
		// Only users sign in to the console.
		c.clearSession(w, r)
		return nil, nil
	}
	return &session{p: p, refresh: refresh, csrf: c.csrfToken(w, r)}, nil
}

// startSession signs the user in: it keeps the pair in the session cookie and
// renews the CSRF token.
func (c *Console) startSession(w http.ResponseWriter, r *http.Request, pair identity.TokenPair) {
	c.setCookie(w, r, sessionCookie, pair.RefreshToken+"~"+pair.AccessToken, 0)
	c.setCookie(w, r, csrfCookie, randomToken(), 0)
}

// endSession revokes the session's token family (every copy of the session
// ends, on every instance) and clears the cookies.
func (c *Console) endSession(w http.ResponseWriter, r *http.Request) error {
	raw := c.readCookie(r, sessionCookie)
	if refresh, _, ok := strings.Cut(raw, "~"); ok {
		if err := c.cfg.Identity.Revoke(context.WithoutCancel(r.Context()), refresh); err != nil {
			return err
		}
	}
	c.clearSession(w, r)
	c.setCookie(w, r, csrfCookie, "", -1)
	return nil
}

func (c *Console) clearSession(w http.ResponseWriter, r *http.Request) {
	c.setCookie(w, r, sessionCookie, "", -1)
}

// safeNext returns next if it is a path of this site ("/projects/x"), else
// "/": the sign-in page must not redirect anyone elsewhere.
func safeNext(next string) string {
	if !strings.HasPrefix(next, "/") || strings.HasPrefix(next, "//") || strings.HasPrefix(next, "/\\") {
		return "/"
	}
	u, err := url.Parse(next)
	if err != nil || u.Host != "" || u.Scheme != "" {
		return "/"
	}
	return next
}

func urlQueryEscape(s string) string { return url.QueryEscape(s) }

// isInvalidCredentials reports whether err is Login's refusal of the username
// and password (as opposed to the throttle or a failure).
func isInvalidCredentials(err error) bool {
	e, ok := domain.AsError(err)
	return ok && e.Code == "invalid_credentials"
}
