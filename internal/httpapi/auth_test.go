package httpapi

import (
	"context"
	"encoding/json"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/fieldsync/fieldsync/api"
	"github.com/fieldsync/fieldsync/internal/domain"
)

func TestAuthWithoutAuthenticator(t *testing.T) {
	// No Authenticator configured: every non-public route answers 401.
	ts := newTestServer(t, withRoutes(testRoutes))
	for _, tc := range []struct {
		name, header, challenge string
	}{
		{"no token", "", `Bearer realm="fieldsync"`},
		{"other scheme", "Basic YWRtaW46YWRtaW4=", `Bearer realm="fieldsync"`},
		{"empty bearer", "Bearer ", `Bearer realm="fieldsync"`},
		{"a token", "Bearer abc.def.ghi", `Bearer realm="fieldsync", error="invalid_token"`},
	} {
		t.Run(tc.name, func(t *testing.T) {
			req := ts.newRequest(t, http.MethodGet, "/_test/private", nil)
			if tc.header != "" {
				req.Header.Set("Authorization", tc.header)
			}
			resp, body := ts.do(t, req)
			problemOf(t, resp, body, http.StatusUnauthorized, api.CodeUnauthorized)
			if got := resp.Header.Get("WWW-Authenticate"); got != tc.challenge {
				t.Errorf("WWW-Authenticate %q, want %q", got, tc.challenge)
			}
		})
	}
}

func TestAuthRules(t *testing.T) {
	auth := staticAuth{
		"admin":      {Subject: "root", Username: "root", Admin: true},
		"manager":    {Subject: "mia", Username: "mia"},
		"analyst":    {Subject: "ana", Username: "ana"},
		"designer":   {Subject: "dee", Username: "dee"},
		"enumerator": {Subject: "eno", Username: "eno"},
		"outsider":   {Subject: "out", Username: "out"},
		"device":     {Subject: domain.DeviceSubject("tab1"), DeviceID: "tab1", DeviceProject: "safety"},
		"otherdev":   {Subject: domain.DeviceSubject("tab2"), DeviceID: "tab2", DeviceProject: "elsewhere"},
	}
	ts := newTestServer(t, withRoutes(testRoutes), withConfig(func(c *Config) { c.Authenticator = auth }))

	ctx := context.Background()
	now := time.Now().UTC().Truncate(time.Millisecond)
	for _, p := range []string{"safety", "elsewhere"} {
		if err := ts.store.CreateProject(ctx, domain.Project{ID: p, Title: p, CreatedBy: "root", CreatedAt: now}); err != nil {
			t.Fatal(err)
		}
	}
	for _, u := range []string{"root", "mia", "ana", "dee", "eno", "out"} {
		if err := ts.store.CreateUser(ctx, domain.User{Username: u, PasswordHash: "x", Admin: u == "root", CreatedAt: now, UpdatedAt: now}); err != nil {
			t.Fatal(err)
		}
	}
	for u, r := range map[string]domain.Role{"mia": domain.RoleManager, "ana": domain.RoleAnalyst, "dee": domain.RoleDesigner, "eno": domain.RoleEnumerator} {
		if err := ts.store.PutMembership(ctx, domain.Membership{ProjectID: "safety", Username: u, Role: r, UpdatedAt: now}); err != nil {
			t.Fatal(err)
		}
	}
	// The outsider manages another project: that gives nothing in "safety".
	if err := ts.store.PutMembership(ctx, domain.Membership{ProjectID: "elsewhere", Username: "out", Role: domain.RoleManager, UpdatedAt: now}); err != nil {
		t.Fatal(err)
	}

	for _, tc := range []struct {
		token, path string
		status      int
		code, role  string
	}{
		{"manager", "/_test/private", 200, "", ""},
		{"device", "/_test/private", 200, "", ""},
		{"nope", "/_test/private", 401, api.CodeUnauthorized, ""},
		{"store-down", "/_test/private", 503, api.CodeStoreUnavailable, ""},

		{"admin", "/_test/admin", 200, "", ""},
		{"manager", "/_test/admin", 403, api.CodeForbidden, ""},
		{"device", "/_test/admin", 403, api.CodeForbidden, ""},

		{"manager", "/_test/projects/safety/manage", 200, "", "manager"},
		{"admin", "/_test/projects/safety/manage", 200, "", "manager"},
		{"analyst", "/_test/projects/safety/manage", 403, api.CodeForbidden, ""},
		{"device", "/_test/projects/safety/manage", 403, api.CodeForbidden, ""},
		{"outsider", "/_test/projects/safety/manage", 404, api.CodeProjectNotFound, ""},

		{"manager", "/_test/projects/safety/records", 200, "", "manager"},
		{"analyst", "/_test/projects/safety/records", 200, "", "analyst"},
		{"enumerator", "/_test/projects/safety/records", 200, "", "enumerator"},
		{"device", "/_test/projects/safety/records", 200, "", "enumerator"},
		{"designer", "/_test/projects/safety/records", 403, api.CodeForbidden, ""},
		{"outsider", "/_test/projects/safety/records", 404, api.CodeProjectNotFound, ""},
		{"otherdev", "/_test/projects/safety/records", 404, api.CodeProjectNotFound, ""},
		{"admin", "/_test/projects/elsewhere/records", 200, "", "manager"},

		// A project that does not exist looks exactly like one the caller is not in.
		{"manager", "/_test/projects/ghost/records", 404, api.CodeProjectNotFound, ""},
		{"admin", "/_test/projects/ghost/records", 404, api.CodeProjectNotFound, ""},
		{"device", "/_test/projects/ghost/records", 404, api.CodeProjectNotFound, ""},
		{"admin", "/_test/projects/NOT_AN_ID/records", 404, api.CodeProjectNotFound, ""},
		{"nope", "/_test/projects/safety/records", 401, api.CodeUnauthorized, ""},
	} {
		t.Run(tc.token+" "+tc.path, func(t *testing.T) {
			resp, body := ts.get(t, tc.path, "Authorization", "Bearer "+tc.token)
			if tc.status != 200 {
				problemOf(t, resp, body, tc.status, tc.code)
				if tc.status == 401 && !strings.Contains(resp.Header.Get("WWW-Authenticate"), `error="invalid_token"`) {
					t.Errorf("WWW-Authenticate %q", resp.Header.Get("WWW-Authenticate"))
				}
				return
			}
			if resp.StatusCode != 200 {
				t.Fatalf("status %d: %s", resp.StatusCode, body)
			}
			var got map[string]string
			if err := json.Unmarshal(body, &got); err != nil {
				t.Fatal(err)
			}
			if got["subject"] != auth[tc.token].Subject || got["role"] != tc.role {
				t.Errorf("principal %q role %q, want %q %q", got["subject"], got["role"], auth[tc.token].Subject, tc.role)
			}
		})
	}

	// The 404 for a stranger and for a missing project are the same bytes but
	// for the request id: nothing tells them apart.
	_, a := ts.get(t, "/_test/projects/safety/records", "Authorization", "Bearer outsider", "X-Request-Id", "same")
	_, b := ts.get(t, "/_test/projects/ghost/records", "Authorization", "Bearer outsider", "X-Request-Id", "same")
	if string(a) != string(b) {
		t.Errorf("stranger and missing project answer differently:\n%s\n%s", a, b)
	}
}
