// Package console is the web console (issue 17): server-rendered HTML pages
// for managers, designers and analysts, served by the fieldsync binary at /
// beside the API (/v1). It is a door onto the same services as the API
// (architecture.md, "Growing the house"): every page is authorized by the
// Rule of the API route it mirrors, through the API server's own check, and
// every action calls the same service method as that route, so the same
// checks and audit events apply.
//
// README-dev.md says how to add a page.
package console

import (
	"context"
	"embed"
	"errors"
	"fmt"
	"html/template"
	"log/slog"
	"net/http"
	"strings"
	"time"

	"github.com/gorilla/mux"

	"github.com/fieldsync/fieldsync/internal/console/i18n"
	"github.com/fieldsync/fieldsync/internal/domain"
	"github.com/fieldsync/fieldsync/internal/forms"
	"github.com/fieldsync/fieldsync/internal/httpapi"
	"github.com/fieldsync/fieldsync/internal/identity"
	"github.com/fieldsync/fieldsync/internal/media"
	"github.com/fieldsync/fieldsync/internal/records"
)

//go:embed templates static
var assets embed.FS

// Config holds what the console needs; main wires it with the same services
// it gives the API.
type Config struct {
	// API is the API server the console is mounted on; its route rules
	// authorize the console's pages. Required.
	API *httpapi.Server
	// Identity signs users in and out and manages projects, members,
	// devices, users and the audit log. Required.
	Identity *identity.Service
	// Store is the store the services share (read-only lookups the API also
	// does directly, such as a project's title). Required.
	Store domain.Store
	// Forms, Records and Media are the other services (nil leaves their
	// pages without data).
	Forms   *forms.Service
	Records *records.Service
	Media   *media.Service
	// MapTiles is the tile layer of the analysts' map (FIELDSYNC_MAP_TILES);
	// the zero value draws the map without tiles, offline. New refuses a
	// URL TileOrigin refuses.
	MapTiles MapTiles
	// Catalogue is the interface text; nil means the embedded catalogues
	// (i18n.Default). Tests give their own to check a language.
	Catalogue *i18n.Catalogue
	// Logger receives internal errors; nil means slog.Default().
	Logger *slog.Logger
	// Now is the clock; nil means time.Now.
	Now func() time.Time
}

// Console serves the web console. It implements http.Handler.
type Console struct {
	cfg     Config
	log     *slog.Logger
	router  *mux.Router
	cat     *i18n.Catalogue
	pages   map[string]*template.Template
	routes  []RouteInfo
	nav     []NavItem
	csrf    *http.CrossOriginProtection
	handler http.Handler
	// tiles is Config.MapTiles; tileOrigin its URL's origin, which the map
	// page's CSP lets images in from ("" without tiles).
	tiles      MapTiles
	tileOrigin string
	// assetVersion is a hash of the static files, put into their URLs so a
	// browser may cache them for long and still gets new ones on upgrade.
	assetVersion string
}

// RouteInfo describes one console route and the API route it mirrors.
type RouteInfo struct {
	Method string
	Path   string
	// Mirror is the API route whose rule guards the page ("GET
	// /v1/projects/{project}/members"), or MirrorPublic / MirrorSignedIn.
	Mirror string
}

// Special values of RouteInfo.Mirror.
const (
	// MirrorPublic pages need no session (sign-in, static files).
	MirrorPublic = "public"
	// MirrorSignedIn pages need a session and no role, like the API's
	// Authenticated rule (the home page lists the caller's own projects, as
	// GET /v1/projects does).
	MirrorSignedIn = "GET /v1/projects"
)

// New builds the console and registers its routes.
func New(cfg Config) (*Console, error) {
	if cfg.API == nil || cfg.Identity == nil || cfg.Store == nil {
		return nil, errors.New("console: Config.API, Identity and Store are required")
	}
	if cfg.Logger == nil {
		cfg.Logger = slog.Default()
	}
	if cfg.Now == nil {
		cfg.Now = time.Now
	}
	cat := cfg.Catalogue
	if cat == nil {
		var err error
		if cat, err = i18n.Default(); err != nil {
			return nil, err
		}
	}
	c := &Console{cfg: cfg, log: cfg.Logger, router: mux.NewRouter(), cat: cat, csrf: http.NewCrossOriginProtection(), tiles: cfg.MapTiles}
	if cfg.MapTiles.URL != "" {
		origin, err := TileOrigin(cfg.MapTiles.URL)
		if err != nil {
			return nil, fmt.Errorf("console: map tiles: %w", err)
		}
		c.tileOrigin = origin
	}
	if err := c.loadAssets(); err != nil {
		return nil, err
	}
	c.router.NotFoundHandler = c.adapt(MirrorPublic, func(w http.ResponseWriter, r *http.Request) error {
		return &domain.Error{Kind: domain.KindNotFound, Code: "not_found", Title: "No such page"}
	})
	// Not through adapt: a wrong method does nothing, so it needs no CSRF
	// check or session; and the domain has no kind for 405.
	c.router.MethodNotAllowedHandler = http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		c.render(w, r, http.StatusMethodNotAllowed, "core/error", "core.error.title",
			errorView{Status: http.StatusMethodNotAllowed, Code: "method_not_allowed", Title: "Method not allowed"})
	})
	c.registerRoutes()
	c.handler = c.securityHeaders(c.router)
	return c, nil
}

// Mount builds the console and mounts it on its API server, which then serves
// it at every path outside the API's.
func Mount(cfg Config) (*Console, error) {
	c, err := New(cfg)
	if err != nil {
		return nil, err
	}
	cfg.API.MountConsole(c)
	return c, nil
}

// registerRoutes is the one place every area's routes are registered from;
// each area has its own function in its own file, so the people building them
// do not edit the same lines.
func (c *Console) registerRoutes() {
	c.registerCoreRoutes()     // core.go: sign-in, sign-out, home, project, static
	c.registerManagerRoutes()  // manager_*.go
	c.registerDesignerRoutes() // designer_*.go
	c.registerAnalystRoutes()  // analyst_*.go
	c.registerLanguageRoutes() // language.go: the language selector
}

// ServeHTTP implements http.Handler.
func (c *Console) ServeHTTP(w http.ResponseWriter, r *http.Request) { c.handler.ServeHTTP(w, r) }

// Routes lists the console's routes in registration order.
func (c *Console) Routes() []RouteInfo { return append([]RouteInfo(nil), c.routes...) }

// handlerFunc is the shape of a page handler: it writes success itself and
// returns a failure for the adapter to render as an error page.
type handlerFunc func(w http.ResponseWriter, r *http.Request) error

// handle registers a page. mirror names the API route whose rule guards it
// ("METHOD /v1/..."), MirrorPublic or MirrorSignedIn; a mirror that is no API
// route panics, so a typo fails every test that builds a console. A page under
// {project} must mirror a project route, and the other way round, so the
// check runs on the right project.
func (c *Console) handle(method, path, mirror string, h handlerFunc) {
	if mirror != MirrorPublic {
		m, p, _ := strings.Cut(mirror, " ")
		rule, ok := c.cfg.API.RuleOf(m, p)
		if !ok {
			panic("console: " + method + " " + path + " mirrors " + mirror + ", which is not an API route")
		}
		if strings.HasPrefix(rule.String(), "project:") != strings.Contains(path, "{project}") {
			panic("console: " + method + " " + path + " and the API route it mirrors (" + mirror + ") disagree on {project}")
		}
	}
	for _, ri := range c.routes {
		if ri.Method == method && ri.Path == path {
			panic("console: route " + method + " " + path + " registered twice")
		}
	}
	c.router.Handle(path, c.adapt(mirror, h)).Methods(method)
	c.routes = append(c.routes, RouteInfo{Method: method, Path: path, Mirror: mirror})
}

// handleAsset registers a public GET route that needs no session and runs
// no page machinery (static files): the browser fetches them beside every
// page, and they must not check or refresh the session a second time.
func (c *Console) handleAsset(path string, h http.Handler) {
	c.router.Handle(path, h).Methods(http.MethodGet)
	c.routes = append(c.routes, RouteInfo{Method: http.MethodGet, Path: path, Mirror: MirrorPublic})
}

// NavItem is a link of the navigation. It is shown to a user whom the rule
// of its Mirror lets in (in the current project, for a project link).
type NavItem struct {
	// Label is the catalogue key of the link text.
	Label string
	// Path is the page ("/projects/{project}/members"); {project} is the
	// current project, and a project link shows only inside a project.
	Path string
	// Mirror is the API route whose rule decides who sees the link.
	Mirror string
}

// addNav adds a navigation link; areas call it from their register function.
func (c *Console) addNav(n NavItem) { c.nav = append(c.nav, n) }

// pageCtx is what the adapter learns about a request: the session (nil on a
// public page without one), the project of a project page and the caller's
// role there.
type pageCtx struct {
	sess    *session
	project string
	role    domain.Role
	lang    *i18n.Lang
	// formError and formStatus are set by formFailed.
	formError  *domain.Error
	formStatus int
}

type pageCtxKey struct{}

func pageFrom(ctx context.Context) *pageCtx {
	if p, ok := ctx.Value(pageCtxKey{}).(*pageCtx); ok {
		return p
	}
	return &pageCtx{}
}

// principal is the signed-in user of r (the zero Principal on a public page
// without a session).
func principal(r *http.Request) domain.Principal {
	if s := pageFrom(r.Context()).sess; s != nil {
		return s.p
	}
	return domain.Principal{}
}

// adapt wraps a page: the CSRF check of every POST, the session, the mirror's
// rule, then h; an error becomes an error page.
func (c *Console) adapt(mirror string, h handlerFunc) http.Handler {
	var rule httpapi.Rule
	if mirror != MirrorPublic {
		m, p, _ := strings.Cut(mirror, " ")
		rule, _ = c.cfg.API.RuleOf(m, p)
	}
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		pc := &pageCtx{lang: c.langFor(r)}
		r = r.WithContext(context.WithValue(r.Context(), pageCtxKey{}, pc))
		err := func() error {
			if r.Method != http.MethodGet && r.Method != http.MethodHead {
				// The API's cap on a body holds for forms too.
				r.Body = http.MaxBytesReader(w, r.Body, httpapi.DefaultMaxBodyBytes)
				if err := c.checkCSRF(r); err != nil {
					return err
				}
			}
			sess, err := c.loadSession(w, r)
			if err != nil {
				return err
			}
			pc.sess = sess
			if mirror == MirrorPublic {
				return h(w, r)
			}
			if sess == nil {
				target := "/signin"
				if r.Method == http.MethodGet {
					target += "?next=" + urlQueryEscape(r.URL.RequestURI())
				}
				http.Redirect(w, r, target, http.StatusSeeOther)
				return nil
			}
			pc.project = mux.Vars(r)["project"]
			role, err := c.cfg.API.Authorize(r.Context(), sess.p, rule, pc.project)
			pc.role = role
			if err != nil {
				return err
			}
			return h(w, r)
		}()
		if err != nil {
			c.renderError(w, r, err)
		}
	})
}

// securityHeaders sets the headers every console answer carries: a strict
// Content-Security-Policy (scripts, styles, images and form targets from this
// origin only; images also as data: URLs, for the enrolment QR code; no inline
// script or style), no framing, no sniffing, no referrer outside the site, and
// no caching of pages (they show personal and survey data; static files set
// their own).
func (c *Console) securityHeaders(next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		h := w.Header()
		h.Set("Content-Security-Policy", ContentSecurityPolicy)
		h.Set("X-Frame-Options", "DENY")
		h.Set("X-Content-Type-Options", "nosniff")
		h.Set("Referrer-Policy", "same-origin")
		h.Set("Cross-Origin-Opener-Policy", "same-origin")
		h.Set("Cache-Control", "no-store")
		next.ServeHTTP(w, r)
	})
}

// ContentSecurityPolicy is the policy of every console answer, except the
// map page when a tile layer is configured (ContentSecurityPolicyFor).
const ContentSecurityPolicy = cspHead + cspImg + cspTail

// The parts of the policy around its img-src.
const (
	cspHead = "default-src 'none'; script-src 'self'; style-src 'self'; "
	cspImg  = "img-src 'self' data:"
	cspTail = "; connect-src 'self'; form-action 'self'; frame-ancestors 'none'; base-uri 'none'"
)

// ContentSecurityPolicyFor is ContentSecurityPolicy with images also allowed
// from tileOrigin (an origin TileOrigin returned), and nothing else more; ""
// gives ContentSecurityPolicy itself.
func ContentSecurityPolicyFor(tileOrigin string) string {
	if tileOrigin == "" {
		return ContentSecurityPolicy
	}
	return cspHead + cspImg + " " + tileOrigin + cspTail
}

// renderError shows err as an error page with the API's status and code for
// it. An unexpected error is logged and shown as a plain internal error.
func (c *Console) renderError(w http.ResponseWriter, r *http.Request, err error) {
	p, retry, internal := httpapi.ProblemFor(err)
	if internal {
		c.log.LogAttrs(r.Context(), slog.LevelError, "console: internal error",
			slog.String("method", r.Method), slog.String("path", r.URL.Path), slog.String("error", err.Error()))
	}
	if retry > 0 {
		w.Header().Set("Retry-After", fmt.Sprint(int((retry+time.Second-1)/time.Second)))
	}
	c.render(w, r, p.Status, "core/error", "core.error.title", errorView{Status: p.Status, Code: p.Code, Title: p.Title, Detail: p.Detail})
}

// errorView is the data of core/error.
type errorView struct {
	Status int
	Code   string
	Title  string
	Detail string
}

// pathVar is a path variable of the page's route.
func pathVar(r *http.Request, name string) string { return mux.Vars(r)[name] }
