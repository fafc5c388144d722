package console_test

import (
	"net/http"
	"net/url"
	"regexp"
	"slices"
	"sort"
	"strings"
	"testing"

	"github.com/fieldsync/fieldsync/internal/console"
	"github.com/fieldsync/fieldsync/internal/console/consoletest"
	"github.com/fieldsync/fieldsync/internal/domain"
)

// The callers of the console's role table, as in internal/httpapi's
// roles_test.go (the API's table, which this one extends to the console's
// routes). A device has no password and cannot sign in to the console.
const (
	roleNone       = "no session"
	roleAdmin      = "admin"
	roleManager    = "manager"
	roleDesigner   = "designer"
	roleAnalyst    = "analyst"
	roleEnumerator = "enumerator"
	roleOutsider   = "outsider"
)

var allCallers = []string{roleNone, roleAdmin, roleManager, roleDesigner, roleAnalyst, roleEnumerator, roleOutsider}

// members are everyone but the anonymous caller and the outsider.
var signedIn = []string{roleAdmin, roleManager, roleDesigner, roleAnalyst, roleEnumerator, roleOutsider}

// consoleRoleTable says, for every console route, which callers get past
// authorization; written by hand, as the API's roleTable, and checked against
// what the pages do. A route without a row fails TestConsoleRoleTable. A page
// gets the row of the API route it mirrors (the RouteInfo's Mirror).
var consoleRoleTable = map[string][]string{
	// Core (core.go). Public pages: every caller. They are probed without a
	// session only (a sign-out probe would end the prober's session).
	"GET /signin":        allCallers,
	"POST /signin":       allCallers,
	"POST /signout":      allCallers,
	"GET /static/{file}": allCallers,
	// The home page lists one's own projects, as GET /v1/projects.
	"GET /": signedIn,
	// Every member reads the project page, as GET /v1/projects/{project}/forms.
	"GET /projects/{project}": {roleAdmin, roleManager, roleDesigner, roleAnalyst, roleEnumerator},
	// Analysts' pages (analyst_*.go): the rows of the API routes they mirror
	// (analysts, and managers and admins, who pass every project rule; the
	// quarantine is read by designers too).
	"GET /projects/{project}/data":                        {roleAdmin, roleManager, roleAnalyst},
	"GET /projects/{project}/data/forms/{form}":           {roleAdmin, roleManager, roleAnalyst},
	"GET /projects/{project}/data/forms/{form}/export":    {roleAdmin, roleManager, roleAnalyst},
	"GET /projects/{project}/data/forms/{form}/map":       {roleAdmin, roleManager, roleAnalyst},
	"GET /projects/{project}/data/records/{id}":           {roleAdmin, roleManager, roleAnalyst},
	"POST /projects/{project}/data/records/{id}/review":   {roleAdmin, roleManager, roleAnalyst},
	"POST /projects/{project}/data/records/{id}/assign":   {roleAdmin, roleManager, roleAnalyst},
	"GET /projects/{project}/data/records/{id}/conflicts": {roleAdmin, roleManager, roleAnalyst},
	"POST /projects/{project}/data/records/{id}/resolve":  {roleAdmin, roleManager, roleAnalyst},
	// A record's file: the API's GET attachment rule, which lets the
	// enumerator who sent the record in too (the media service then checks
	// that the caller may see the record).
	"GET /projects/{project}/data/records/{id}/attachments/{name}": {roleAdmin, roleManager, roleAnalyst, roleEnumerator},
	"GET /projects/{project}/data/quarantine":                      {roleAdmin, roleManager, roleDesigner, roleAnalyst},
	"POST /projects/{project}/data/quarantine/{id}/reapply":        {roleAdmin, roleManager, roleAnalyst},
	"POST /projects/{project}/data/quarantine/{id}/dismiss":        {roleAdmin, roleManager, roleAnalyst},
}

// probeVars fills a route's path variables; every value but the project
// names nothing that exists, so no probe changes anything.
var probeVars = map[string]string{
	"project":   "safety",
	"username":  "nobody-here",
	"device_id": "no-such-device",
	"id":        "00000000-0000-4000-8000-000000000000",
	"form":      "no-such-form",
	"version":   "1",
	"file":      "console.css",
}

const probePassword = "probe-password-1234"

// TestConsoleRoleTable signs in as each caller (through the sign-in form,
// with the real identity service) and sends every console route
// (Console.Routes, so routes added later are covered). Refused means a
// redirect to /signin without a session, the 403 page (code forbidden)
// for a member with another role, the 404 page (code project_not_found) for
// a caller outside the project. Allowed means any other answer (a page may
// refuse the probe's empty form with a 400 or 422 of its own).
func TestConsoleRoleTable(t *testing.T) {
	env := consoletest.Start(t)
	env.CreateProject(t, "safety", "Safety survey")
	env.CreateProject(t, "elsewhere", "Another project")
	clients := map[string]*consoletest.Client{roleNone: env.NewClient(t)}
	clients[roleAdmin] = env.SignIn(t, "admin", consoletest.AdminPassword)
	for _, role := range []domain.Role{domain.RoleManager, domain.RoleDesigner, domain.RoleAnalyst, domain.RoleEnumerator} {
		env.AddUser(t, string(role)+"-user", probePassword, "safety", role)
		clients[string(role)] = env.SignIn(t, string(role)+"-user", probePassword)
	}
	env.AddUser(t, "outsider-user", probePassword, "elsewhere", domain.RoleManager)
	clients[roleOutsider] = env.SignIn(t, "outsider-user", probePassword)

	vars := regexp.MustCompile(`\{([^}]+)\}`)
	seen := map[string]bool{}
	for _, ri := range env.Console.Routes() {
		key := ri.Method + " " + ri.Path
		seen[key] = true
		allowed, ok := consoleRoleTable[key]
		if !ok {
			t.Errorf("console route %s has no row in consoleRoleTable: add one", key)
			continue
		}
		path := vars.ReplaceAllStringFunc(ri.Path, func(v string) string {
			if val, ok := probeVars[v[1:len(v)-1]]; ok {
				return val
			}
			return "x1"
		})
		callers := allCallers
		if ri.Mirror == console.MirrorPublic {
			callers = []string{roleNone}
		}
		for _, who := range callers {
			c := clients[who]
			var form url.Values
			if ri.Method != http.MethodGet && ri.Method != http.MethodHead {
				form = url.Values{"csrf_token": {c.CSRF()}}
			}
			resp, body := c.Do(ri.Method, path, form)
			code := pageCode(body)
			denied := (resp.StatusCode == http.StatusSeeOther && signInRedirect(resp.Header.Get("Location"))) ||
				(resp.StatusCode == http.StatusForbidden && code == "forbidden") ||
				(resp.StatusCode == http.StatusNotFound && code == "project_not_found")
			if slices.Contains(allowed, who) {
				if denied {
					t.Errorf("%s as %s: refused (%d %s), but the table allows it", key, who, resp.StatusCode, code)
				}
				if resp.StatusCode >= 500 {
					t.Errorf("%s as %s: %d", key, who, resp.StatusCode)
				}
				continue
			}
			if !denied {
				t.Errorf("%s as %s: %d %s, want a refusal", key, who, resp.StatusCode, code)
			}
			// A refused caller sees no data: the error page only.
			if resp.StatusCode != http.StatusSeeOther && !strings.Contains(body, `id="error"`) {
				t.Errorf("%s as %s: refusal without the error page", key, who)
			}
		}
	}
	var stale []string
	for key := range consoleRoleTable {
		if !seen[key] {
			stale = append(stale, key)
		}
	}
	sort.Strings(stale)
	for _, key := range stale {
		t.Errorf("consoleRoleTable has a row for %s, which is not a console route", key)
	}
}

var codeRE = regexp.MustCompile(`data-code="([^"]*)"`)

// pageCode is the error code an error page carries ("" for other pages).
func pageCode(body string) string {
	if m := codeRE.FindStringSubmatch(body); m != nil {
		return m[1]
	}
	return ""
}

// signInRedirect reports whether loc is the redirect of a page that needs a
// session: to the sign-in page, with the page to come back to (a GET) or
// without (a POST). Sign-out's own redirect carries a message instead.
func signInRedirect(loc string) bool {
	return loc == "/signin" || strings.HasPrefix(loc, "/signin?next=")
}
