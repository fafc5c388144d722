package console

import (
	"bytes"
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"html/template"
	"io/fs"
	"net/http"
	"path"
	"strings"
	"time"

	"github.com/fieldsync/fieldsync/internal/console/i18n"
	"github.com/fieldsync/fieldsync/internal/domain"
	"github.com/fieldsync/fieldsync/internal/httpapi"
)

// View is what every page template receives: the layout's data and the
// page's own (Data).
type View struct {
	// Lang is the catalogue of the page's language (its Code and Dir go on the
	// html element).
	Lang *i18n.Lang
	// Title is the page title, already translated.
	Title string
	// User is the signed-in username ("" on a public page); Admin its flag.
	User  string
	Admin bool
	// Project and Role are the current project and the user's role in it
	// (empty outside a project page).
	Project string
	Role    domain.Role
	// CSRF is the token every POST form carries ({{template "csrf" $}}).
	CSRF string
	// Nav is the navigation the user may follow.
	Nav []NavLink
	// Flash is a one-line message after an action (already translated).
	Flash string
	// Error is a form's refusal by the service (see formFailed), shown above
	// the page; Findings are its details.
	Error    string
	Findings []domain.Finding
	// Data is the page's own data.
	Data any
	// Languages are the console's languages, for the language selector;
	// Here is the page to come back to after choosing one ("" after a POST,
	// whose URL a GET cannot repeat: the selector then goes home).
	Languages []*i18n.Lang
	Here      string
}

// NavLink is a NavItem resolved for one request.
type NavLink struct {
	Label   string
	Href    string
	Current bool
}

// loadAssets parses the templates: templates/layout.tmpl and
// templates/partials/*.tmpl form the base, and every other
// templates/<area>/<name>.tmpl is a page named "<area>/<name>", which defines
// "content".
func (c *Console) loadAssets() error {
	funcs := template.FuncMap{
		// T is replaced per request by the page language's (see render).
		"T":     func(key string, args ...any) string { return key },
		"TN":    func(key string, n int, args ...any) string { return key },
		"asset": func(name string) string { return "/static/" + name + "?v=" + c.assetVersion },
		"time":  formatTime,
	}
	h := sha256.New()
	_ = fs.WalkDir(assets, "static", func(p string, d fs.DirEntry, err error) error {
		if err == nil && !d.IsDir() {
			b, _ := fs.ReadFile(assets, p)
			h.Write(b)
		}
		return nil
	})
	c.assetVersion = hex.EncodeToString(h.Sum(nil))[:12]

	base, err := template.New("layout.tmpl").Funcs(funcs).ParseFS(assets, "templates/layout.tmpl", "templates/partials/*.tmpl")
	if err != nil {
		return err
	}
	c.pages = map[string]*template.Template{}
	err = fs.WalkDir(assets, "templates", func(p string, d fs.DirEntry, err error) error {
		if err != nil || d.IsDir() || !strings.HasSuffix(p, ".tmpl") {
			return err
		}
		dir := path.Dir(p)
		if dir == "templates" || dir == "templates/partials" {
			return nil
		}
		t, err := base.Clone()
		if err != nil {
			return err
		}
		if _, err := t.ParseFS(assets, p); err != nil {
			return err
		}
		c.pages[strings.TrimSuffix(strings.TrimPrefix(p, "templates/"), ".tmpl")] = t
		return nil
	})
	return err
}

// render writes page (a name like "manager/members") with status, titled by
// the catalogue key title, with data as View.Data. The page is executed
// into a buffer first, so a template error is an error page, not half a page.
func (c *Console) render(w http.ResponseWriter, r *http.Request, status int, page, title string, data any) {
	pc := pageFrom(r.Context())
	lang := pc.lang
	if lang == nil {
		lang = c.langFor(r)
	}
	v := View{Lang: lang, Title: lang.T(title), Project: pc.project, Role: pc.role, Data: data, Languages: c.languages()}
	if r.Method == http.MethodGet {
		v.Here = r.URL.RequestURI()
	}
	if pc.sess != nil {
		v.User, v.Admin = pc.sess.p.Username, pc.sess.p.Admin
		v.CSRF = pc.sess.csrf
		v.Nav = c.navFor(r, pc)
	} else {
		v.CSRF = c.csrfToken(w, r)
	}
	if msg := r.URL.Query().Get("msg"); msg != "" && lang.Has("flash."+msg) {
		v.Flash = lang.T("flash." + msg)
	}
	if pc.formError != nil {
		v.Error, v.Findings = pc.formError.Title, pc.formError.Findings
		if pc.formError.Detail != "" {
			v.Error += ": " + pc.formError.Detail
		}
		status = pc.formStatus
	}
	t, ok := c.pages[page]
	if !ok {
		c.log.Error("console: no such page template", "page", page)
		http.Error(w, "internal error", http.StatusInternalServerError)
		return
	}
	t, err := t.Clone()
	if err == nil {
		funcs := template.FuncMap{"T": lang.T, "TN": lang.N}
		if lang.Dir == "rtl" {
			funcs["time"] = isolatedTime
		}
		t.Funcs(funcs)
		var buf bytes.Buffer
		if err = t.Execute(&buf, v); err == nil {
			w.Header().Set("Content-Type", "text/html; charset=utf-8")
			w.WriteHeader(status)
			_, _ = w.Write(buf.Bytes())
			return
		}
	}
	c.log.Error("console: rendering a page failed", "page", page, "error", err)
	http.Error(w, "internal error", http.StatusInternalServerError)
}

// navFor resolves the navigation for the user of pc: each link whose mirrored
// API rule lets the user in (project links only inside a project).
func (c *Console) navFor(r *http.Request, pc *pageCtx) []NavLink {
	var out []NavLink
	for _, n := range c.nav {
		inProject := strings.Contains(n.Path, "{project}")
		if inProject && pc.project == "" {
			continue
		}
		m, p, _ := strings.Cut(n.Mirror, " ")
		rule, ok := c.cfg.API.RuleOf(m, p)
		if !ok {
			continue
		}
		if _, err := c.cfg.API.Authorize(r.Context(), pc.sess.p, rule, pc.project); err != nil {
			continue
		}
		href := strings.ReplaceAll(n.Path, "{project}", pc.project)
		out = append(out, NavLink{Label: n.Label, Href: href, Current: r.URL.Path == href})
	}
	return out
}

// isolatedTime is formatTime for a right-to-left page: the time between
// Unicode's left-to-right isolate marks (U+2066, U+2069), so that
// "2026-03-01 08:00 UTC" reads as written inside Arabic text, in a table
// cell, or as an argument of a message, instead of being reordered by the
// text around it.
func isolatedTime(t any) string {
	if s := formatTime(t); s != "" {
		return "\u2066" + s + "\u2069"
	}
	return ""
}

// formatTime shows a time in UTC to the minute, unambiguous in any language.
func formatTime(t any) string {
	switch v := t.(type) {
	case time.Time:
		if v.IsZero() {
			return ""
		}
		return v.UTC().Format("2006-01-02 15:04 UTC")
	case *time.Time:
		if v == nil {
			return ""
		}
		return formatTime(*v)
	}
	return fmt.Sprint(t)
}

// formFailed shows a service's refusal of what a form sent (a 400, 409 or
// 422, or a 404 of a thing the form named: an unknown user, device, member)
// above the page reshow renders, with the refusal's status, so the user can
// correct the form. Any other error (403, 404 project_not_found, a failure)
// is returned, for the error page.
func (c *Console) formFailed(w http.ResponseWriter, r *http.Request, err error, reshow handlerFunc) error {
	p, _, internal := httpapi.ProblemFor(err)
	if internal || p.Code == "forbidden" || p.Code == "project_not_found" {
		return err
	}
	switch p.Status {
	case http.StatusBadRequest, http.StatusNotFound, http.StatusConflict, http.StatusUnprocessableEntity:
	default:
		return err
	}
	e := &domain.Error{Title: p.Title, Detail: p.Detail}
	if de, ok := domain.AsError(err); ok {
		e.Findings = de.Findings
	}
	pc := pageFrom(r.Context())
	pc.formError, pc.formStatus = e, p.Status
	return reshow(w, r)
}
