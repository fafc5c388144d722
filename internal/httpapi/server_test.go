package httpapi

import (
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"regexp"
	"strings"
	"testing"

	"github.com/fieldsync/fieldsync/api"
	"github.com/fieldsync/fieldsync/internal/domain"
)

// secretDetail is an internal error's text that must never reach a client.
const secretDetail = "pq: password authentication failed for user fieldsync at 10.0.0.7"

// testRoutes registers the test-only routes: handlers that fail in each way the
// adapter must handle, and routes for each authorization rule.
func testRoutes(s *Server) {
	type echo struct {
		Name  string `json:"name"`
		Count int    `json:"count"`
		Tags  []string
	}
	s.handle(http.MethodPost, "/_test/echo", Public, func(w http.ResponseWriter, r *http.Request) error {
		var in echo
		if err := decodeJSON(r, &in); err != nil {
			return err
		}
		return writeJSON(w, http.StatusOK, in)
	})
	s.handle(http.MethodGet, "/_test/panic", Public, func(w http.ResponseWriter, r *http.Request) error {
		panic("boom: " + secretDetail)
	})
	s.handle(http.MethodGet, "/_test/internal", Public, func(w http.ResponseWriter, r *http.Request) error {
		return fmt.Errorf("loading things: %s", secretDetail)
	})
	s.handle(http.MethodGet, "/_test/domain-internal", Public, func(w http.ResponseWriter, r *http.Request) error {
		return &domain.Error{Kind: domain.KindInternal, Code: "oops", Title: secretDetail}
	})
	s.handle(http.MethodGet, "/_test/unencodable", Public, func(w http.ResponseWriter, r *http.Request) error {
		return writeJSON(w, http.StatusOK, map[string]any{"f": func() {}})
	})
	s.handle(http.MethodGet, "/_test/invalid", Public, func(w http.ResponseWriter, r *http.Request) error {
		return domain.Invalid("invalid_form", "The form is not valid", []domain.Finding{{Path: "/schema/type", Keyword: "const", Message: `must be "object"`}})
	})
	s.handle(http.MethodGet, "/_test/sentinel/{which}", Public, func(w http.ResponseWriter, r *http.Request) error {
		return fmt.Errorf("store: %w", map[string]error{
			"notfound": domain.ErrNotFound, "exists": domain.ErrExists,
			"stale": domain.ErrStale, "unavailable": domain.ErrUnavailable,
		}[pathVar(r, "which")])
	})
	s.handle(http.MethodGet, "/_test/big", Public, func(w http.ResponseWriter, r *http.Request) error {
		return writeJSON(w, http.StatusOK, map[string]string{"text": strings.Repeat("fieldsync ", 500)})
	})
	s.handle(http.MethodGet, "/_test/nocontent", Public, func(w http.ResponseWriter, r *http.Request) error {
		w.WriteHeader(http.StatusNoContent)
		return nil
	})
	ok := func(w http.ResponseWriter, r *http.Request) error {
		p, _ := PrincipalFrom(r.Context())
		role, _ := RoleFrom(r.Context())
		return writeJSON(w, http.StatusOK, map[string]string{"subject": p.Subject, "role": string(role)})
	}
	s.handle(http.MethodGet, "/_test/private", Authenticated, ok)
	s.handle(http.MethodGet, "/_test/admin", Admin, ok)
	s.handle(http.MethodGet, "/_test/projects/{project}/manage", ProjectRoles(domain.RoleManager), ok)
	s.handle(http.MethodGet, "/_test/projects/{project}/records", ProjectRoles(domain.RoleAnalyst, domain.RoleEnumerator), ok)
}

// problemOf decodes a problem answer and checks what every problem carries.
func problemOf(t *testing.T, resp *http.Response, body []byte, status int, code string) api.Problem {
	t.Helper()
	if resp.StatusCode != status {
		t.Fatalf("status %d, want %d; body %s", resp.StatusCode, status, body)
	}
	if ct := resp.Header.Get("Content-Type"); ct != api.ProblemContentType {
		t.Errorf("Content-Type %q, want %q", ct, api.ProblemContentType)
	}
	var p api.Problem
	if err := json.Unmarshal(body, &p); err != nil {
		t.Fatalf("problem body %s: %v", body, err)
	}
	if p.Code != code || p.Status != status || p.Type != "about:blank" || p.Title == "" {
		t.Errorf("problem %+v, want code %q status %d", p, code, status)
	}
	if p.RequestID == "" || p.RequestID != resp.Header.Get("X-Request-Id") {
		t.Errorf("problem request_id %q, header %q", p.RequestID, resp.Header.Get("X-Request-Id"))
	}
	return p
}

func TestHealthz(t *testing.T) {
	ts := newTestServer(t)
	resp, body := ts.get(t, "/healthz")
	if resp.StatusCode != http.StatusOK || strings.TrimSpace(string(body)) != `{"status":"ok"}` {
		t.Fatalf("GET /healthz: %d %s", resp.StatusCode, body)
	}
}

func TestReadyz(t *testing.T) {
	ts := newTestServer(t)
	resp, body := ts.get(t, "/readyz")
	if resp.StatusCode != http.StatusOK || strings.TrimSpace(string(body)) != `{"status":"ready"}` {
		t.Fatalf("GET /readyz: %d %s", resp.StatusCode, body)
	}

	if err := ts.store.Close(); err != nil {
		t.Fatal(err)
	}
	resp, body = ts.get(t, "/readyz")
	problemOf(t, resp, body, http.StatusServiceUnavailable, api.CodeStoreUnavailable)
	if got := resp.Header.Get("Retry-After"); got != "5" {
		t.Errorf("Retry-After %q, want 5", got)
	}
	// The process is still alive: liveness must not follow the store.
	if resp, _ := ts.get(t, "/healthz"); resp.StatusCode != http.StatusOK {
		t.Errorf("GET /healthz with the store closed: %d", resp.StatusCode)
	}
}

func TestMetricsUseRouteTemplates(t *testing.T) {
	ts := newTestServer(t, withRoutes(testRoutes))
	ts.get(t, "/healthz")
	ts.get(t, "/_test/sentinel/notfound")
	ts.get(t, "/_test/sentinel/exists")
	ts.get(t, "/no/such/path/3f0c5c1e")
	ts.get(t, "/readyz")

	resp, body := ts.get(t, "/metrics")
	if resp.StatusCode != http.StatusOK || !strings.HasPrefix(resp.Header.Get("Content-Type"), "text/plain") {
		t.Fatalf("GET /metrics: %d %s", resp.StatusCode, resp.Header.Get("Content-Type"))
	}
	text := string(body)
	for _, want := range []string{
		`fieldsync_http_requests_total{method="GET",route="/healthz",status="200"} 1`,
		`fieldsync_http_requests_total{method="GET",route="/_test/sentinel/{which}",status="404"} 1`,
		`fieldsync_http_requests_total{method="GET",route="/_test/sentinel/{which}",status="409"} 1`,
		`fieldsync_http_requests_total{method="GET",route="unmatched",status="404"} 1`,
		`fieldsync_http_request_duration_seconds_count{method="GET",route="/healthz"} 1`,
		`fieldsync_store_operation_duration_seconds_count{op="Ping"} 1`,
	} {
		if !strings.Contains(text, want) {
			t.Errorf("/metrics lacks %s", want)
		}
	}
	for _, raw := range []string{"/no/such/path", "3f0c5c1e", "sentinel/notfound"} {
		if strings.Contains(text, raw) {
			t.Errorf("/metrics holds a raw path %q: labels must be route templates", raw)
		}
	}
}

func TestDefaultRegistry(t *testing.T) {
	// Without a Registry each server makes its own, with the Go and process
	// collectors, so many servers can live in one process.
	ts := newTestServer(t, withConfig(func(c *Config) { c.Registry = nil }))
	newTestServer(t, withConfig(func(c *Config) { c.Registry = nil }))
	_, body := ts.get(t, "/metrics")
	if !strings.Contains(string(body), "go_goroutines") {
		t.Error("/metrics lacks the Go collector")
	}
}

func TestNotFound(t *testing.T) {
	ts := newTestServer(t)
	for _, path := range []string{"/", "/nope", "/v1/projects/x/nope", "/healthz/"} {
		resp, body := ts.get(t, path)
		problemOf(t, resp, body, http.StatusNotFound, api.CodeNotFound)
	}
}

func TestMethodNotAllowed(t *testing.T) {
	ts := newTestServer(t, withRoutes(func(s *Server) {
		noop := func(w http.ResponseWriter, r *http.Request) error { return nil }
		s.handle(http.MethodPut, "/_test/things/{id}", Public, noop)
		s.handle(http.MethodDelete, "/_test/things/{id}", Public, noop)
	}))
	for _, tc := range []struct {
		name, method, path, allow string
	}{
		{"spec route", http.MethodPost, "/healthz", "GET"},
		{"head is not get", http.MethodHead, "/metrics", "GET"},
		{"several methods", http.MethodGet, "/_test/things/7", "DELETE, PUT"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			resp, body := ts.do(t, ts.newRequest(t, tc.method, tc.path, nil))
			if resp.StatusCode != http.StatusMethodNotAllowed {
				t.Fatalf("status %d", resp.StatusCode)
			}
			if got := resp.Header.Get("Allow"); got != tc.allow {
				t.Errorf("Allow %q, want %q", got, tc.allow)
			}
			if tc.method != http.MethodHead {
				problemOf(t, resp, body, http.StatusMethodNotAllowed, api.CodeMethodNotAllowed)
			}
		})
	}
}

func TestRequestID(t *testing.T) {
	ts := newTestServer(t)
	generated := regexp.MustCompile(`^[0-9a-f]{8}-[0-9a-f]{4}-7[0-9a-f]{3}-[0-9a-f]{4}-[0-9a-f]{12}$`)
	for _, tc := range []struct {
		name, in string
		keep     bool
	}{
		{"none", "", false},
		{"sane", "lb-42.abc_DEF", true},
		{"64 chars", strings.Repeat("a", 64), true},
		{"65 chars", strings.Repeat("a", 65), false},
		{"log injection", "x\" level=ERROR msg=forged", false},
		{"unicode", "ид", false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			req := ts.newRequest(t, http.MethodGet, "/healthz", nil)
			if tc.in != "" {
				req.Header.Set("X-Request-Id", tc.in)
			}
			resp, _ := ts.do(t, req)
			got := resp.Header.Get("X-Request-Id")
			if tc.keep && got != tc.in {
				t.Errorf("X-Request-Id %q, want the incoming %q", got, tc.in)
			}
			if !tc.keep && !generated.MatchString(got) {
				t.Errorf("X-Request-Id %q, want a generated UUIDv7", got)
			}
			if !strings.Contains(ts.logs.String(), `"request_id":"`+got+`"`) {
				t.Errorf("access log lacks request_id %s", got)
			}
		})
	}
}

func TestPanicBecomesProblem(t *testing.T) {
	ts := newTestServer(t, withRoutes(testRoutes))
	resp, body := ts.get(t, "/_test/panic")
	p := problemOf(t, resp, body, http.StatusInternalServerError, api.CodeInternalError)
	if p.Title != internalTitle || p.Detail != "" {
		t.Errorf("panic answer %+v: want the fixed title and no detail", p)
	}
	for _, leak := range []string{"boom", "goroutine", ".go:", secretDetail} {
		if strings.Contains(string(body), leak) {
			t.Errorf("panic answer leaks %q: %s", leak, body)
		}
	}
	logs := ts.logs.String()
	if !strings.Contains(logs, `"msg":"panic"`) || !strings.Contains(logs, "goroutine") || !strings.Contains(logs, "boom") {
		t.Errorf("the panic and its stack are not logged:\n%s", logs)
	}
	// The log and metrics layers, which sit inside the panic layer, saw a 500.
	if !strings.Contains(logs, `"route":"/_test/panic","status":500`) {
		t.Errorf("access log does not record the panic as a 500:\n%s", logs)
	}
	_, metrics := ts.get(t, "/metrics")
	if !strings.Contains(string(metrics), `fieldsync_http_requests_total{method="GET",route="/_test/panic",status="500"} 1`) {
		t.Error("metrics do not count the panic as a 500")
	}
}

func TestInternalErrorSaysNothing(t *testing.T) {
	ts := newTestServer(t, withRoutes(testRoutes))
	for _, path := range []string{"/_test/internal", "/_test/domain-internal", "/_test/unencodable"} {
		t.Run(path, func(t *testing.T) {
			resp, body := ts.get(t, path)
			p := problemOf(t, resp, body, http.StatusInternalServerError, api.CodeInternalError)
			if p.Title != internalTitle || p.Detail != "" || len(p.Errors) != 0 {
				t.Errorf("internal answer %+v: want the fixed title only", p)
			}
			if strings.Contains(string(body), "password") || strings.Contains(string(body), "10.0.0.7") || strings.Contains(string(body), "func()") {
				t.Errorf("internal answer leaks the error: %s", body)
			}
		})
	}
	logs := ts.logs.String()
	if !strings.Contains(logs, secretDetail) || !strings.Contains(logs, `"msg":"internal error"`) {
		t.Errorf("the internal error is not logged with its detail:\n%s", logs)
	}
}

func TestErrorTable(t *testing.T) {
	ts := newTestServer(t, withRoutes(testRoutes))
	for _, tc := range []struct {
		path   string
		status int
		code   string
	}{
		{"/_test/sentinel/notfound", 404, api.CodeNotFound},
		{"/_test/sentinel/exists", 409, api.CodeAlreadyExists},
		{"/_test/sentinel/stale", 409, api.CodeConflict},
		{"/_test/sentinel/unavailable", 503, api.CodeStoreUnavailable},
		{"/_test/invalid", 422, "invalid_form"},
	} {
		t.Run(tc.path, func(t *testing.T) {
			resp, body := ts.get(t, tc.path)
			p := problemOf(t, resp, body, tc.status, tc.code)
			if tc.status == 503 && resp.Header.Get("Retry-After") != "5" {
				t.Errorf("Retry-After %q", resp.Header.Get("Retry-After"))
			}
			if tc.status == 422 && (len(p.Errors) != 1 || p.Errors[0].Path != "/schema/type") {
				t.Errorf("422 errors %+v", p.Errors)
			}
		})
	}
}

func TestProblemForEveryKind(t *testing.T) {
	// Every domain Kind has a status; a new Kind without one would answer 500.
	for k := domain.KindInternal; k <= domain.KindUnavailable; k++ {
		if _, ok := kindStatus[k]; !ok {
			t.Errorf("Kind %d has no status in kindStatus", k)
		}
	}
	p, retry, internal := problemFor(&domain.Error{Kind: domain.KindTooManyRequests, Code: "slow_down", Title: "Slow down"})
	if internal || p.Status != 429 || retry != defaultRetryAfter {
		t.Errorf("429: %+v %v %v", p, retry, internal)
	}
	_, _, internal = problemFor(errors.New("x"))
	if !internal {
		t.Error("a plain error must be internal")
	}
}

func TestAccessLogKeepsSecretsOut(t *testing.T) {
	ts := newTestServer(t, withRoutes(testRoutes))
	req := ts.newRequest(t, http.MethodPost, "/_test/echo?access_token=qs-secret-token", `{"name":"answer-secret","count":1}`)
	req.Header.Set("Authorization", "Bearer header-secret-token")
	req.Header.Set("Content-Type", "application/json")
	resp, _ := ts.do(t, req)
	if resp.StatusCode != http.StatusOK {
		t.Fatalf("status %d", resp.StatusCode)
	}
	ts.get(t, "/_test/private", "Authorization", "Bearer header-secret-token")
	logs := ts.logs.String()
	for _, secret := range []string{"qs-secret-token", "header-secret-token", "answer-secret", "access_token"} {
		if strings.Contains(logs, secret) {
			t.Errorf("the log holds %q:\n%s", secret, logs)
		}
	}
	for _, want := range []string{`"method":"POST"`, `"route":"/_test/echo"`, `"status":200`, `"bytes":`, `"duration_ms":`, `"remote_addr":"127.0.0.1"`} {
		if !strings.Contains(logs, want) {
			t.Errorf("the access log lacks %s:\n%s", want, logs)
		}
	}
}

func TestHandleRefusesBadRegistrations(t *testing.T) {
	ts := newTestServer(t)
	noop := func(w http.ResponseWriter, r *http.Request) error { return nil }
	for name, f := range map[string]func(){
		"no rule":      func() { ts.srv.handle(http.MethodGet, "/_test/x", Rule{}, noop) },
		"project rule": func() { ts.srv.handle(http.MethodGet, "/_test/y", ProjectRoles(domain.RoleAnalyst), noop) },
		"twice":        func() { ts.srv.handle(http.MethodGet, "/healthz", Public, noop) },
		"unknown role": func() { ProjectRoles("owner") },
	} {
		t.Run(name, func(t *testing.T) {
			defer func() {
				if recover() == nil {
					t.Error("no panic")
				}
			}()
			f()
		})
	}
}

func TestRoutesListsRules(t *testing.T) {
	ts := newTestServer(t)
	// Every route has a rule (roles_test.go checks each against every role);
	// here: the listing is sorted and names the rules.
	want := map[string]string{
		"GET /healthz":                          "public",
		"GET /metrics":                          "public",
		"GET /readyz":                           "public",
		"POST /v1/projects/{project}/sync/push": "project:manager,enumerator",
	}
	got := ts.srv.Routes()
	byKey := map[string]string{}
	for i, ri := range got {
		byKey[ri.Method+" "+ri.Path] = ri.Rule
		if i > 0 && (got[i-1].Path > ri.Path || (got[i-1].Path == ri.Path && got[i-1].Method > ri.Method)) {
			t.Errorf("Routes() not sorted at %v", ri)
		}
	}
	for k, rule := range want {
		if byKey[k] != rule {
			t.Errorf("route %s has rule %q, want %q", k, byKey[k], rule)
		}
	}
	if s := ProjectRoles(domain.RoleAnalyst, domain.RoleManager).String(); s != "project:manager,analyst" {
		t.Errorf("rule name %q", s)
	}
}
