package console

import (
	"errors"
	"io/fs"
	"net/http"
	"sort"
	"strconv"
	"time"

	"github.com/fieldsync/fieldsync/internal/domain"
)

// registerCoreRoutes registers sign-in, sign-out, the home page, the project
// page and the static files.
func (c *Console) registerCoreRoutes() {
	c.handle(http.MethodGet, "/signin", MirrorPublic, c.signInPage)
	c.handle(http.MethodPost, "/signin", MirrorPublic, c.signIn)
	// Public, so that signing out of a session that already ended (revoked,
	// expired) still clears the cookies instead of asking to sign in first.
	c.handle(http.MethodPost, "/signout", MirrorPublic, c.signOut)
	c.handle(http.MethodGet, "/", MirrorSignedIn, c.home)
	// The project page mirrors the forms list, the one read every member has.
	c.handle(http.MethodGet, "/projects/{project}", "GET /v1/projects/{project}/forms", c.projectPage)
	static, _ := fs.Sub(assets, "static")
	files := http.StripPrefix("/static/", http.FileServerFS(static))
	c.handleAsset("/static/{file}", http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		// The URL carries the files' hash (asset), so a browser on a slow
		// link may keep them a day without asking.
		w.Header().Set("Cache-Control", "public, max-age=86400")
		files.ServeHTTP(w, r)
	}))
	c.addNav(NavItem{Label: "nav.home", Path: "/", Mirror: MirrorSignedIn})
}

// signInView is the data of core/signin.
type signInView struct {
	Next     string
	Username string
	// Error is a catalogue key ("" for none).
	Error string
	// RetryAfter is the throttle's delay, in seconds.
	RetryAfter int
}

func (c *Console) signInPage(w http.ResponseWriter, r *http.Request) error {
	if pageFrom(r.Context()).sess != nil {
		http.Redirect(w, r, safeNext(r.URL.Query().Get("next")), http.StatusSeeOther)
		return nil
	}
	c.render(w, r, http.StatusOK, "core/signin", "core.signin.title", signInView{Next: safeNext(r.URL.Query().Get("next"))})
	return nil
}

// signIn checks the password with identity.Login, so the console has the
// API's login throttle and audit.
func (c *Console) signIn(w http.ResponseWriter, r *http.Request) error {
	v := signInView{Next: safeNext(r.PostFormValue("next")), Username: r.PostFormValue("username")}
	pair, err := c.cfg.Identity.Login(r.Context(), v.Username, r.PostFormValue("password"), c.cfg.API.ClientIP(r))
	if err != nil {
		var de *domain.Error
		switch {
		case isInvalidCredentials(err):
			v.Error = "core.signin.invalid"
			c.render(w, r, http.StatusUnauthorized, "core/signin", "core.signin.title", v)
			return nil
		case errors.As(err, &de) && de.Kind == domain.KindTooManyRequests:
			v.Error = "core.signin.throttled"
			v.RetryAfter = int((de.RetryAfter + time.Second - 1) / time.Second)
			w.Header().Set("Retry-After", strconv.Itoa(v.RetryAfter))
			c.render(w, r, http.StatusTooManyRequests, "core/signin", "core.signin.title", v)
			return nil
		}
		return err
	}
	c.startSession(w, r, pair)
	http.Redirect(w, r, v.Next, http.StatusSeeOther)
	return nil
}

func (c *Console) signOut(w http.ResponseWriter, r *http.Request) error {
	if err := c.endSession(w, r); err != nil {
		return err
	}
	http.Redirect(w, r, "/signin?msg=signed_out", http.StatusSeeOther)
	return nil
}

// homeView is the data of core/home.
type homeView struct {
	Projects []projectRow
}

type projectRow struct {
	ID, Title string
	// Role is the user's role ("" for an admin who is not a member).
	Role domain.Role
}

// home lists the projects the user belongs to (all of them for an admin), as
// GET /v1/projects does.
func (c *Console) home(w http.ResponseWriter, r *http.Request) error {
	p := principal(r)
	projects, err := c.cfg.Identity.ListProjects(r.Context(), p)
	if err != nil {
		return err
	}
	var v homeView
	for _, pr := range projects {
		role, _, err := c.cfg.Identity.RoleIn(r.Context(), p, pr.ID)
		if err != nil {
			return err
		}
		v.Projects = append(v.Projects, projectRow{ID: pr.ID, Title: pr.Title, Role: role})
	}
	sort.Slice(v.Projects, func(i, j int) bool { return v.Projects[i].ID < v.Projects[j].ID })
	c.render(w, r, http.StatusOK, "core/home", "core.home.title", v)
	return nil
}

// projectView is the data of core/project.
type projectView struct {
	ID, Title string
}

// projectPage is a project's start page: its title and the links the user's
// role opens (the navigation).
func (c *Console) projectPage(w http.ResponseWriter, r *http.Request) error {
	id := pageFrom(r.Context()).project
	pr, err := c.cfg.Store.GetProject(r.Context(), id)
	if err != nil {
		return err
	}
	c.render(w, r, http.StatusOK, "core/project", "core.project.title", projectView{ID: pr.ID, Title: pr.Title})
	return nil
}
