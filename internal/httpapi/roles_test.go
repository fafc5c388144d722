package httpapi

import (
	"encoding/json"
	"io"
	"net/http"
	"net/http/httptest"
	"regexp"
	"slices"
	"sort"
	"strings"
	"testing"

	"github.com/fieldsync/fieldsync/api"
)

// The callers of the role table: no token, the admin, one member of project
// "safety" per role, a user who manages another project only, and a tablet
// enrolled in "safety".
const (
	roleNone       = "no token"
	roleAdmin      = "admin"
	roleManager    = "manager"
	roleDesigner   = "designer"
	roleAnalyst    = "analyst"
	roleEnumerator = "enumerator"
	roleOutsider   = "outsider"
	roleDevice     = "device"
)

var allCallers = []string{roleNone, roleAdmin, roleManager, roleDesigner, roleAnalyst, roleEnumerator, roleOutsider, roleDevice}

// roleTable says, for every route, which callers get past authorization. It is
// written out by hand on purpose, from protocol.md, and not derived from the
// rules in the code: it is the second opinion the rules are checked against.
// A route without a row fails TestRoleTable, so a new route cannot ship without
// someone deciding who may call it.
var roleTable = map[string][]string{
	// Operations (protocol.md §5).
	"GET /healthz": allCallers,
	"GET /readyz":  allCallers,
	"GET /metrics": allCallers,

	// Identity (§1). Login, refresh, logout and enrollment prove who the caller
	// is with the body itself.
	"POST /v1/auth/token":               allCallers,
	"POST /v1/auth/refresh":             allCallers,
	"POST /v1/auth/revoke":              allCallers,
	"POST /v1/devices/enroll":           allCallers,
	"POST /v1/users":                    {roleAdmin},
	"POST /v1/users/{username}/revoke":  {roleAdmin},
	"POST /v1/users/{username}/disable": {roleAdmin},
	"POST /v1/users/{username}/enable":  {roleAdmin},
	"GET /v1/audit":                     {roleAdmin},

	// Administration (§1): users change their own password (a tablet has none).
	"POST /v1/auth/password":             {roleAdmin, roleManager, roleDesigner, roleAnalyst, roleEnumerator, roleOutsider},
	"GET /v1/users":                      {roleAdmin},
	"PATCH /v1/users/{username}":         {roleAdmin},
	"POST /v1/users/{username}/password": {roleAdmin},

	// Projects, members and devices (§1, §2).
	"POST /v1/projects":                                 {roleAdmin},
	"GET /v1/projects":                                  {roleAdmin, roleManager, roleDesigner, roleAnalyst, roleEnumerator, roleOutsider, roleDevice},
	"GET /v1/projects/{project}/members":                {roleAdmin, roleManager},
	"PUT /v1/projects/{project}/members/{username}":     {roleAdmin, roleManager},
	"DELETE /v1/projects/{project}/members/{username}":  {roleAdmin, roleManager},
	"GET /v1/projects/{project}/devices":                {roleAdmin, roleManager},
	"POST /v1/projects/{project}/devices":               {roleAdmin, roleManager},
	"DELETE /v1/projects/{project}/devices/{device_id}": {roleAdmin, roleManager},

	// Form definitions (§2): designers write, every member reads.
	"GET /v1/projects/{project}/forms":                                    {roleAdmin, roleManager, roleDesigner, roleAnalyst, roleEnumerator, roleDevice},
	"GET /v1/projects/{project}/forms/{form}/versions/{version}":          {roleAdmin, roleManager, roleDesigner, roleAnalyst, roleEnumerator, roleDevice},
	"PUT /v1/projects/{project}/forms/{form}/versions/{version}":          {roleAdmin, roleManager, roleDesigner},
	"POST /v1/projects/{project}/forms/{form}/versions/{version}/publish": {roleAdmin, roleManager, roleDesigner},
	"POST /v1/projects/{project}/forms/{form}/close":                      {roleAdmin, roleManager, roleDesigner},
	"POST /v1/projects/{project}/forms/{form}/reopen":                     {roleAdmin, roleManager, roleDesigner},

	// Sync and records (§3).
	"POST /v1/projects/{project}/sync/push":            {roleAdmin, roleManager, roleEnumerator, roleDevice},
	"GET /v1/projects/{project}/sync/pull":             {roleAdmin, roleManager, roleAnalyst, roleEnumerator, roleDevice},
	"GET /v1/projects/{project}/records/{id}":          {roleAdmin, roleManager, roleAnalyst, roleEnumerator, roleDevice},
	"PUT /v1/projects/{project}/records/{id}":          {roleAdmin, roleManager, roleAnalyst},
	"PATCH /v1/projects/{project}/records/{id}":        {roleAdmin, roleManager, roleAnalyst},
	"POST /v1/projects/{project}/records/{id}/resolve": {roleAdmin, roleManager, roleAnalyst},
	// Quarantine (§3): designers see it (a schema too strict shows there) but
	// do not apply or dismiss what is not theirs.
	"GET /v1/projects/{project}/quarantine":               {roleAdmin, roleManager, roleAnalyst, roleDesigner},
	"POST /v1/projects/{project}/quarantine/{id}/reapply": {roleAdmin, roleManager, roleAnalyst},
	"POST /v1/projects/{project}/quarantine/{id}/dismiss": {roleAdmin, roleManager, roleAnalyst},
	"GET /v1/projects/{project}/forms/{form}/records":     {roleAdmin, roleManager, roleAnalyst},

	// Review threads (§3): analysts and managers.
	"GET /v1/projects/{project}/records/{id}/comments":  {roleAdmin, roleManager, roleAnalyst},
	"POST /v1/projects/{project}/records/{id}/comments": {roleAdmin, roleManager, roleAnalyst},

	// Datasets (§4): analysts and managers export.
	"GET /v1/projects/{project}/forms/{form}/export": {roleAdmin, roleManager, roleAnalyst},

	// The OData feed (issue 12): read and export all records, as the export.
	"GET /v1/projects/{project}/forms/{form}/odata":           {roleAdmin, roleManager, roleAnalyst},
	"GET /v1/projects/{project}/forms/{form}/odata/$metadata": {roleAdmin, roleManager, roleAnalyst},
	"GET /v1/projects/{project}/forms/{form}/odata/{set}":     {roleAdmin, roleManager, roleAnalyst},

	// Attachments (§3, issue 13): who pushes a record uploads its files, who
	// reads it reads them.
	"PUT /v1/projects/{project}/records/{id}/attachments/{name}":     {roleAdmin, roleManager, roleEnumerator, roleDevice},
	"PATCH /v1/projects/{project}/records/{id}/attachments/{name}":   {roleAdmin, roleManager, roleEnumerator, roleDevice},
	"HEAD /v1/projects/{project}/records/{id}/attachments/{name}":    {roleAdmin, roleManager, roleEnumerator, roleDevice},
	"OPTIONS /v1/projects/{project}/records/{id}/attachments/{name}": {roleAdmin, roleManager, roleEnumerator, roleDevice},
	"GET /v1/projects/{project}/records/{id}/attachments/{name}":     {roleAdmin, roleManager, roleAnalyst, roleEnumerator, roleDevice},

	// The OpenRosa bridge (openrosa.md, issue 14). Managers make a device's
	// key. The bridge routes ignore bearer tokens: the key in the path is the
	// credential (every caller here "gets past" the bearer layer and meets the
	// key check, which refuses the probe's key with an OpenRosaResponse 403;
	// openrosa_test.go checks keys, revocation and roles).
	"POST /v1/projects/{project}/devices/{device_id}/openrosa-key":                                  {roleAdmin, roleManager},
	"GET /v1/key/{device_key}/projects/{project}/openrosa/formList":                                 allCallers,
	"GET /v1/key/{device_key}/projects/{project}/openrosa/forms/{form}/versions/{version}.xml":      allCallers,
	"GET /v1/key/{device_key}/projects/{project}/openrosa/forms/{form}/versions/{version}/manifest": allCallers,
	"HEAD /v1/key/{device_key}/projects/{project}/openrosa/submission":                              allCallers,
	"GET /v1/key/{device_key}/projects/{project}/openrosa/submission":                               allCallers,
	"POST /v1/key/{device_key}/projects/{project}/openrosa/submission":                              allCallers,
	// The HTTP Basic door: bearer tokens do not open it either (Collect
	// sends a username and password); every probe meets its 401 challenge,
	// an OpenRosaResponse. openrosa_basic_test.go checks roles and passwords.
	"GET /v1/projects/{project}/openrosa/formList":                                 allCallers,
	"GET /v1/projects/{project}/openrosa/forms/{form}/versions/{version}.xml":      allCallers,
	"GET /v1/projects/{project}/openrosa/forms/{form}/versions/{version}/manifest": allCallers,
	"HEAD /v1/projects/{project}/openrosa/submission":                              allCallers,
	"GET /v1/projects/{project}/openrosa/submission":                               allCallers,
	"POST /v1/projects/{project}/openrosa/submission":                              allCallers,
}

// probeVars fills the path variables of a route template. Every value names
// something that does not exist (but the project), so no probe changes
// anything: no member's role, no device, no user is touched.
var probeVars = map[string]string{
	"project":   "safety",
	"username":  "nobody-here",
	"device_id": "no-such-device",
	"id":        "00000000-0000-4000-8000-000000000000",
	"form":      "no-such-form",
	"version":   "1",
	"name":      "probe.jpg",
	"set":       "Submissions",
}

// probeBody is what every probe with a body sends: valid JSON with a field no
// route knows, which the handlers refuse (400) before they act. The answer to
// an allowed caller does not matter, only that it is not an authorization
// refusal.
const probeBody = `{"role_table_probe":true}`

// TestRoleTable sends every route (srv.Routes(), so routes added later are
// covered) as each caller with real tokens from the real identity service, and
// checks that exactly the callers of the route's row get past authorization.
// Refused means: 401 unauthorized with a challenge without a token, 404
// project_not_found for a caller outside the route's project, 403 forbidden
// otherwise. Allowed means any other answer (the handler may well refuse the
// probe with a 400 or 404 of its own).
func TestRoleTable(t *testing.T) {
	ts := newTestServer(t)
	tokens := roleTableCallers(t, ts)
	sp := loadSpec(t)

	routes := ts.srv.Routes()
	seen := map[string]bool{}
	vars := regexp.MustCompile(`\{([^}]+)\}`)
	for _, ri := range routes {
		key := ri.Method + " " + ri.Path
		seen[key] = true
		allowed, ok := roleTable[key]
		if !ok {
			t.Errorf("route %s has no row in the role table: add one", key)
			continue
		}
		path := vars.ReplaceAllStringFunc(ri.Path, func(v string) string {
			if val, ok := probeVars[v[1:len(v)-1]]; ok {
				return val
			}
			return "x1"
		})
		projectRoute := strings.Contains(ri.Path, "{project}")
		t.Run(key, func(t *testing.T) {
			t.Parallel() // no probe changes anything another one reads
			for _, who := range allCallers {
				var body any
				if ri.Method == http.MethodPost || ri.Method == http.MethodPut || ri.Method == http.MethodPatch {
					body = probeBody
				}
				req := ts.newRequest(t, ri.Method, path, body)
				if body != nil {
					req.Header.Set("Content-Type", "application/json")
				}
				if tok := tokens[who]; tok != "" {
					req.Header.Set("Authorization", "Bearer "+tok)
				}
				// Routes in openapi.yaml are checked against it; a route not
				// described yet is TestOpenAPIRoutesMatchRouter's to report.
				var resp *http.Response
				var raw []byte
				if ri.Method == http.MethodHead {
					// A HEAD answer carries no body on the wire; served in
					// process, the problem document the server wrote is kept.
					rec := httptest.NewRecorder()
					ts.srv.ServeHTTP(rec, req)
					resp, raw = rec.Result(), rec.Body.Bytes()
				} else if _, _, err := sp.router.FindRoute(validationRequest(t, req)); err == nil {
					resp, raw = ts.do(t, req)
				} else {
					resp, raw = sendRaw(t, req)
				}
				code := problemCode(raw)
				denied := (resp.StatusCode == http.StatusUnauthorized && code == api.CodeUnauthorized) ||
					(resp.StatusCode == http.StatusForbidden && code == api.CodeForbidden) ||
					(resp.StatusCode == http.StatusNotFound && code == api.CodeProjectNotFound)

				if slices.Contains(allowed, who) {
					if denied {
						t.Errorf("%s as %s: refused (%d %s), but the role table allows it", key, who, resp.StatusCode, code)
					}
					if resp.StatusCode >= 500 {
						t.Logf("%s as %s: the probe got %d %s", key, who, resp.StatusCode, raw)
					}
					continue
				}
				wantStatus, wantCode := http.StatusForbidden, api.CodeForbidden
				switch {
				case who == roleNone:
					wantStatus, wantCode = http.StatusUnauthorized, api.CodeUnauthorized
				case who == roleOutsider && projectRoute:
					wantStatus, wantCode = http.StatusNotFound, api.CodeProjectNotFound
				}
				if resp.StatusCode != wantStatus || code != wantCode {
					t.Errorf("%s as %s: %d %s, want the refusal %d %s: %s", key, who, resp.StatusCode, code, wantStatus, wantCode, truncate(raw))
				}
				if wantStatus == http.StatusUnauthorized && !strings.HasPrefix(resp.Header.Get("WWW-Authenticate"), "Bearer") {
					t.Errorf("%s as %s: 401 without a Bearer challenge", key, who)
				}
				// A 403 says what the route needs and what the caller is, so a
				// user knows which role to ask for.
				if wantStatus == http.StatusForbidden {
					detail := problemDetail(raw)
					if !strings.HasPrefix(detail, "this route needs ") {
						t.Errorf("%s as %s: 403 detail %q does not say what the route needs", key, who, detail)
					}
					if projectRoute && who != roleDevice && !strings.Contains(detail, "in project safety; you are "+who) {
						t.Errorf("%s as %s: 403 detail %q does not name the project and the caller's role", key, who, detail)
					}
				}
			}
		})
	}

	var stale []string
	for key := range roleTable {
		if !seen[key] {
			stale = append(stale, key)
		}
	}
	sort.Strings(stale)
	for _, key := range stale {
		t.Errorf("the role table has a row for %s, which is not routed: remove or fix it", key)
	}
}

// roleTableCallers sets up project "safety" with one member per role, an
// outsider who manages project "elsewhere", and an enrolled tablet of "safety",
// all through the HTTP API, and returns each caller's access token.
func roleTableCallers(t *testing.T, ts *testServer) map[string]string {
	t.Helper()
	admin := ts.adminToken(t)
	for _, id := range []string{"safety", "elsewhere"} {
		ts.want(t, http.StatusCreated, http.MethodPost, "/v1/projects", admin, api.CreateProjectRequest{ID: id, Title: id}, nil)
	}
	tokens := map[string]string{roleNone: "", roleAdmin: admin}
	for _, who := range []string{roleManager, roleDesigner, roleAnalyst, roleEnumerator} {
		tokens[who] = ts.addUser(t, admin, who+"-user", "safety", who)
	}
	tokens[roleOutsider] = ts.addUser(t, admin, "outsider-user", "elsewhere", api.RoleManager)

	var dev api.CreateDeviceResponse
	ts.want(t, http.StatusCreated, http.MethodPost, "/v1/projects/safety/devices", tokens[roleManager], api.CreateDeviceRequest{Name: "probe tablet"}, &dev)
	var pair api.TokenResponse
	ts.want(t, http.StatusOK, http.MethodPost, "/v1/devices/enroll", "", api.EnrollRequest{EnrollmentCode: dev.EnrollmentCode}, &pair)
	tokens[roleDevice] = pair.AccessToken
	return tokens
}

// sendRaw sends req without checking it against openapi.yaml.
func sendRaw(t *testing.T, req *http.Request) (*http.Response, []byte) {
	t.Helper()
	resp, err := rawClient.Do(req)
	if err != nil {
		t.Fatalf("%s %s: %v", req.Method, req.URL.Path, err)
	}
	defer resp.Body.Close()
	raw, err := io.ReadAll(resp.Body)
	if err != nil {
		t.Fatal(err)
	}
	return resp, decodeBody(t, resp.Header, raw)
}

// problemCode is the code of a problem document, or "" for any other body.
func problemCode(body []byte) string {
	var p api.Problem
	if json.Unmarshal(body, &p) != nil {
		return ""
	}
	return p.Code
}

// problemDetail returns the detail of a problem document ("" if none).
func problemDetail(body []byte) string {
	var p struct {
		Detail string `json:"detail"`
	}
	_ = json.Unmarshal(body, &p)
	return p.Detail
}
