package httpapi

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"net/url"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/fieldsync/fieldsync/api"
	"github.com/fieldsync/fieldsync/internal/identity"
)

// call sends one JSON request (body nil for none; a string or []byte as is;
// anything else encoded) with token as its bearer token ("" for none), through
// ts.do, so the exchange is validated against openapi.yaml.
func (ts *testServer) call(t testing.TB, method, path, token string, body any) (*http.Response, []byte) {
	t.Helper()
	switch body.(type) {
	case nil, string, []byte:
	default:
		b, err := json.Marshal(body)
		if err != nil {
			t.Fatal(err)
		}
		body = b
	}
	req := ts.newRequest(t, method, path, body)
	if body != nil {
		req.Header.Set("Content-Type", "application/json")
	}
	if token != "" {
		req.Header.Set("Authorization", "Bearer "+token)
	}
	return ts.do(t, req)
}

// want sends a request like call, fails unless it answers status, and decodes a
// JSON answer into out (when out is not nil).
func (ts *testServer) want(t testing.TB, status int, method, path, token string, body, out any) {
	t.Helper()
	resp, raw := ts.call(t, method, path, token, body)
	if resp.StatusCode != status {
		t.Fatalf("%s %s: status %d, want %d: %s", method, path, resp.StatusCode, status, raw)
	}
	if out != nil {
		if err := json.Unmarshal(raw, out); err != nil {
			t.Fatalf("%s %s: decoding %s: %v", method, path, raw, err)
		}
	}
}

// login logs in over HTTP and returns the pair.
func (ts *testServer) login(t testing.TB, username, password string) api.TokenResponse {
	t.Helper()
	var pair api.TokenResponse
	ts.want(t, http.StatusOK, http.MethodPost, "/v1/auth/token", "", api.TokenRequest{Username: username, Password: password}, &pair)
	if pair.AccessToken == "" || pair.RefreshToken == "" || pair.TokenType != api.TokenTypeBearer || pair.ExpiresIn <= 0 {
		t.Fatalf("login %s: pair %#v", username, pair)
	}
	return pair
}

// adminToken logs in as the bootstrapped admin.
func (ts *testServer) adminToken(t testing.TB) string {
	t.Helper()
	return ts.login(t, "admin", testAdminPassword).AccessToken
}

// addUser creates a user as admin and gives it a role in project (when role is
// not ""), and returns its access token.
func (ts *testServer) addUser(t testing.TB, admin, username, project, role string) string {
	t.Helper()
	password := "pw-of-" + username + "-1234"
	ts.want(t, http.StatusCreated, http.MethodPost, "/v1/users", admin,
		api.CreateUserRequest{Username: username, Password: password, DisplayName: strings.ToUpper(username)}, nil)
	if role != "" {
		ts.want(t, http.StatusOK, http.MethodPut, "/v1/projects/"+project+"/members/"+username, admin, api.PutMemberRequest{Role: role}, nil)
	}
	return ts.login(t, username, password).AccessToken
}

// wantChallenge fails unless a 401 carries a Bearer challenge.
func wantChallenge(t *testing.T, resp *http.Response) {
	t.Helper()
	if resp.StatusCode != http.StatusUnauthorized || !strings.HasPrefix(resp.Header.Get("WWW-Authenticate"), "Bearer") {
		t.Errorf("status %d, WWW-Authenticate %q; want 401 with a Bearer challenge", resp.StatusCode, resp.Header.Get("WWW-Authenticate"))
	}
}

// identityClock is a clock for the identity service that a test moves by hand.
type identityClock struct {
	mu sync.Mutex
	t  time.Time
}

func newIdentityClock() *identityClock {
	return &identityClock{t: time.Now().UTC().Truncate(time.Millisecond)}
}

func (c *identityClock) Now() time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.t
}

func (c *identityClock) Advance(d time.Duration) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.t = c.t.Add(d)
}

func TestLoginRefreshRotation(t *testing.T) {
	clock := newIdentityClock()
	ts := newTestServer(t, withIdentity(func(c *identity.Config) { c.Now = clock.Now }))

	resp, body := ts.call(t, http.MethodPost, "/v1/auth/token", "", api.TokenRequest{Username: "admin", Password: testAdminPassword})
	if resp.StatusCode != http.StatusOK {
		t.Fatalf("login: %d %s", resp.StatusCode, body)
	}
	if cc := resp.Header.Get("Cache-Control"); cc != "no-store" {
		t.Errorf("token answer Cache-Control %q, want no-store", cc)
	}
	var first api.TokenResponse
	if err := json.Unmarshal(body, &first); err != nil {
		t.Fatal(err)
	}
	if first.DeviceID != "" || first.Project != "" {
		t.Errorf("a user's pair names a device: %s", body)
	}
	ts.want(t, http.StatusOK, http.MethodGet, "/v1/projects", first.AccessToken, nil, nil)

	t.Run("bad credentials", func(t *testing.T) {
		for name, in := range map[string]any{
			"wrong password": api.TokenRequest{Username: "admin", Password: "not-the-password"},
			"unknown user":   api.TokenRequest{Username: "nobody", Password: "whatever-it-is"},
			"empty":          api.TokenRequest{},
		} {
			t.Run(name, func(t *testing.T) {
				resp, body := ts.call(t, http.MethodPost, "/v1/auth/token", "", in)
				problemOf(t, resp, body, http.StatusUnauthorized, "invalid_credentials")
				wantChallenge(t, resp)
			})
		}
		resp, body := ts.call(t, http.MethodPost, "/v1/auth/token", "", `{"username":"admin","pasword":"x"}`)
		problemOf(t, resp, body, http.StatusBadRequest, api.CodeBadJSON)
	})

	// Rotation: the refresh token is spent, a new pair comes back.
	var second api.TokenResponse
	ts.want(t, http.StatusOK, http.MethodPost, "/v1/auth/refresh", "", api.RefreshRequest{RefreshToken: first.RefreshToken}, &second)
	if second.RefreshToken == first.RefreshToken || second.AccessToken == first.AccessToken || second.AccessToken == "" {
		t.Fatal("refresh answered the same tokens")
	}
	ts.want(t, http.StatusOK, http.MethodGet, "/v1/projects", second.AccessToken, nil, nil)

	// Replay of the spent token, past the reuse grace: refused, and the whole
	// family dies with it, the newest refresh token and the access tokens
	// included.
	clock.Advance(identity.DefaultRefreshReuseGrace)
	resp, body = ts.call(t, http.MethodPost, "/v1/auth/refresh", "", api.RefreshRequest{RefreshToken: first.RefreshToken})
	problemOf(t, resp, body, http.StatusUnauthorized, "invalid_grant")
	wantChallenge(t, resp)
	resp, body = ts.call(t, http.MethodPost, "/v1/auth/refresh", "", api.RefreshRequest{RefreshToken: second.RefreshToken})
	problemOf(t, resp, body, http.StatusUnauthorized, "invalid_grant")
	resp, body = ts.call(t, http.MethodGet, "/v1/projects", second.AccessToken, nil)
	problemOf(t, resp, body, http.StatusUnauthorized, api.CodeUnauthorized)
	wantChallenge(t, resp)

	// The replay is in the audit log, without a known actor.
	admin := ts.adminToken(t)
	var audit api.AuditList
	ts.want(t, http.StatusOK, http.MethodGet, "/v1/audit?type=family_revoked", admin, nil, &audit)
	if len(audit.Events) != 1 || audit.Events[0].Detail["reason"] != "replay" || audit.Events[0].Subject != "admin" || audit.Events[0].Actor != "" {
		t.Errorf("family_revoked events %+v", audit.Events)
	}

	// Garbage is refused the same way.
	resp, body = ts.call(t, http.MethodPost, "/v1/auth/refresh", "", api.RefreshRequest{RefreshToken: "garbage"})
	problemOf(t, resp, body, http.StatusUnauthorized, "invalid_grant")
}

// TestRefreshLostAnswer: the answer of a refresh is lost on the way to the
// tablet, which retries with the same token within the reuse grace. It gets a
// new pair, the pair it never saw is dead, and the reuse is in the audit log.
func TestRefreshLostAnswer(t *testing.T) {
	clock := newIdentityClock()
	ts := newTestServer(t, withIdentity(func(c *identity.Config) { c.Now = clock.Now }))
	first := ts.login(t, "admin", testAdminPassword)

	var lost api.TokenResponse
	ts.want(t, http.StatusOK, http.MethodPost, "/v1/auth/refresh", "", api.RefreshRequest{RefreshToken: first.RefreshToken}, &lost)
	clock.Advance(30 * time.Second)
	var retry api.TokenResponse
	ts.want(t, http.StatusOK, http.MethodPost, "/v1/auth/refresh", "", api.RefreshRequest{RefreshToken: first.RefreshToken}, &retry)
	if retry.RefreshToken == lost.RefreshToken || retry.AccessToken == lost.AccessToken || retry.AccessToken == "" {
		t.Fatal("the retry answered the lost pair again")
	}
	ts.want(t, http.StatusOK, http.MethodGet, "/v1/projects", retry.AccessToken, nil, nil)

	var audit api.AuditList
	ts.want(t, http.StatusOK, http.MethodGet, "/v1/audit?type=refresh_reused", retry.AccessToken, nil, &audit)
	if len(audit.Events) != 1 || audit.Events[0].Subject != "admin" || audit.Events[0].Detail["spent_ms"] != "30000" {
		t.Errorf("refresh_reused events %+v", audit.Events)
	}

	// The retry's pair rotates as usual; the lost refresh token coming back is
	// a replay (its holder is not the client that retried) and ends the family.
	clock.Advance(time.Minute)
	var next api.TokenResponse
	ts.want(t, http.StatusOK, http.MethodPost, "/v1/auth/refresh", "", api.RefreshRequest{RefreshToken: retry.RefreshToken}, &next)
	resp, body := ts.call(t, http.MethodPost, "/v1/auth/refresh", "", api.RefreshRequest{RefreshToken: lost.RefreshToken})
	problemOf(t, resp, body, http.StatusUnauthorized, "invalid_grant")
	resp, body = ts.call(t, http.MethodPost, "/v1/auth/refresh", "", api.RefreshRequest{RefreshToken: next.RefreshToken})
	problemOf(t, resp, body, http.StatusUnauthorized, "invalid_grant")
}

func TestRevokeLogout(t *testing.T) {
	ts := newTestServer(t)
	pair := ts.login(t, "admin", testAdminPassword)
	other := ts.login(t, "admin", testAdminPassword)

	ts.want(t, http.StatusNoContent, http.MethodPost, "/v1/auth/revoke", "", api.RevokeRequest{RefreshToken: pair.RefreshToken}, nil)
	resp, body := ts.call(t, http.MethodPost, "/v1/auth/refresh", "", api.RefreshRequest{RefreshToken: pair.RefreshToken})
	problemOf(t, resp, body, http.StatusUnauthorized, "invalid_grant")
	// The session's access token stops at once on this instance.
	resp, body = ts.call(t, http.MethodGet, "/v1/projects", pair.AccessToken, nil)
	problemOf(t, resp, body, http.StatusUnauthorized, api.CodeUnauthorized)
	// Another session of the same user lives on.
	ts.want(t, http.StatusOK, http.MethodGet, "/v1/projects", other.AccessToken, nil, nil)

	// Revoking again, or revoking garbage, tells nothing.
	for _, tok := range []string{pair.RefreshToken, "garbage", ""} {
		ts.want(t, http.StatusNoContent, http.MethodPost, "/v1/auth/revoke", "", api.RevokeRequest{RefreshToken: tok}, nil)
	}
	var audit api.AuditList
	ts.want(t, http.StatusOK, http.MethodGet, "/v1/audit?type=family_revoked", other.AccessToken, nil, &audit)
	if len(audit.Events) != 1 || audit.Events[0].Detail["reason"] != "logout" || audit.Events[0].Actor != "admin" {
		t.Errorf("family_revoked events %+v", audit.Events)
	}
}

func TestLoginThrottle(t *testing.T) {
	ts := newTestServer(t, withIdentity(func(c *identity.Config) {
		c.Throttle = identity.ThrottleConfig{PairFailures: 2, PairDelay: time.Minute, AddrFailures: 3, Window: 10 * time.Minute}
	}))
	bad := api.TokenRequest{Username: "admin", Password: "not-the-password"}
	for range 2 {
		resp, body := ts.call(t, http.MethodPost, "/v1/auth/token", "", bad)
		problemOf(t, resp, body, http.StatusUnauthorized, "invalid_credentials")
	}
	// This address must wait before it tries admin again: even the right
	// password is not checked (admin never signed in from here).
	for _, in := range []api.TokenRequest{bad, {Username: "admin", Password: testAdminPassword}} {
		resp, body := ts.call(t, http.MethodPost, "/v1/auth/token", "", in)
		problemOf(t, resp, body, http.StatusTooManyRequests, "too_many_attempts")
		secs, err := strconv.Atoi(resp.Header.Get("Retry-After"))
		if err != nil || secs < 1 || secs > 600 {
			t.Errorf("Retry-After %q, want 1..600 seconds", resp.Header.Get("Retry-After"))
		}
	}
	// The typed client hands the delay on.
	_, err := ts.apiClient(t).Login(context.Background(), "admin", testAdminPassword)
	var p *api.Problem
	if !errors.As(err, &p) || p.Status != http.StatusTooManyRequests || p.RetryAfter < time.Second {
		t.Errorf("Login: %v (%+v)", err, p)
	}

	// Bad enrollment codes are counted apart, per address.
	for range 3 {
		resp, body := ts.call(t, http.MethodPost, "/v1/devices/enroll", "", api.EnrollRequest{EnrollmentCode: "AAAAA-BBBBB-CCCCC-DDDDD"})
		problemOf(t, resp, body, http.StatusUnauthorized, "invalid_enrollment_code")
		wantChallenge(t, resp)
	}
	resp, body := ts.call(t, http.MethodPost, "/v1/devices/enroll", "", api.EnrollRequest{EnrollmentCode: "AAAAA-BBBBB-CCCCC-DDDDD"})
	problemOf(t, resp, body, http.StatusTooManyRequests, "too_many_attempts")
	if resp.Header.Get("Retry-After") == "" {
		t.Error("429 without Retry-After")
	}
}

func TestCreateUser(t *testing.T) {
	ts := newTestServer(t)
	admin := ts.adminToken(t)

	resp, body := ts.call(t, http.MethodPost, "/v1/users", admin,
		api.CreateUserRequest{Username: "amina.k", Password: "a long enough password", DisplayName: "Amina K."})
	if resp.StatusCode != http.StatusCreated {
		t.Fatalf("create: %d %s", resp.StatusCode, body)
	}
	var got map[string]any
	if err := json.Unmarshal(body, &got); err != nil {
		t.Fatal(err)
	}
	for k := range got {
		switch k {
		case "username", "display_name", "admin", "created_at":
		default:
			t.Errorf("the user answer has field %q: %s", k, body)
		}
	}
	if got["username"] != "amina.k" || got["display_name"] != "Amina K." || got["admin"] != false {
		t.Errorf("user %s", body)
	}
	if strings.Contains(string(body), "argon2") || strings.Contains(string(body), "a long enough password") {
		t.Errorf("the answer shows the password or its hash: %s", body)
	}
	// The new user can log in and is no admin.
	user := ts.login(t, "amina.k", "a long enough password").AccessToken

	for _, tc := range []struct {
		name   string
		token  string
		in     any
		status int
		code   string
	}{
		{"exists", admin, api.CreateUserRequest{Username: "amina.k", Password: "another long password"}, 409, "user_exists"},
		{"weak password", admin, api.CreateUserRequest{Username: "bo", Password: "short"}, 422, "weak_password"},
		{"password is username", admin, api.CreateUserRequest{Username: "bobobobobobo", Password: "BOBOBOBOBOBO"}, 422, "weak_password"},
		{"bad username", admin, api.CreateUserRequest{Username: "Bad Name", Password: "a long enough password"}, 422, "invalid_username"},
		{"not admin", user, api.CreateUserRequest{Username: "eve", Password: "a long enough password"}, 403, api.CodeForbidden},
		{"no token", "", api.CreateUserRequest{Username: "eve", Password: "a long enough password"}, 401, api.CodeUnauthorized},
		{"unknown field", admin, `{"username":"eve","password":"a long enough password","admin":true}`, 400, api.CodeBadJSON},
	} {
		t.Run(tc.name, func(t *testing.T) {
			resp, body := ts.call(t, http.MethodPost, "/v1/users", tc.token, tc.in)
			p := problemOf(t, resp, body, tc.status, tc.code)
			if tc.status == 422 && (len(p.Errors) == 0 || p.Errors[0].Path == "") {
				t.Errorf("422 without findings: %s", body)
			}
		})
	}
}

func TestProjectsCreateAndList(t *testing.T) {
	ts := newTestServer(t)
	admin := ts.adminToken(t)

	var created api.Project
	ts.want(t, http.StatusCreated, http.MethodPost, "/v1/projects", admin, api.CreateProjectRequest{ID: "north", Title: "North district"}, &created)
	if created.ID != "north" || created.Title != "North district" || created.CreatedAt.IsZero() {
		t.Errorf("created %+v", created)
	}
	ts.want(t, http.StatusCreated, http.MethodPost, "/v1/projects", admin, api.CreateProjectRequest{ID: "south", Title: "South district"}, nil)

	resp, body := ts.call(t, http.MethodPost, "/v1/projects", admin, api.CreateProjectRequest{ID: "north", Title: "Again"})
	problemOf(t, resp, body, http.StatusConflict, "project_exists")
	resp, body = ts.call(t, http.MethodPost, "/v1/projects", admin, api.CreateProjectRequest{ID: "North District", Title: "x"})
	problemOf(t, resp, body, http.StatusUnprocessableEntity, "invalid_project_id")
	resp, body = ts.call(t, http.MethodPost, "/v1/projects", admin, api.CreateProjectRequest{ID: "east", Title: "  "})
	problemOf(t, resp, body, http.StatusUnprocessableEntity, "invalid_title")

	amina := ts.addUser(t, admin, "amina", "north", api.RoleEnumerator)
	loner := ts.addUser(t, admin, "loner", "", "")

	resp, body = ts.call(t, http.MethodPost, "/v1/projects", amina, api.CreateProjectRequest{ID: "mine", Title: "Mine"})
	problemOf(t, resp, body, http.StatusForbidden, api.CodeForbidden)

	list := func(token string) []api.Project {
		t.Helper()
		var l api.ProjectList
		ts.want(t, http.StatusOK, http.MethodGet, "/v1/projects", token, nil, &l)
		return l.Projects
	}
	if got := list(admin); len(got) != 2 || got[0].ID != "north" || got[1].ID != "south" || got[0].Role != api.RoleManager {
		t.Errorf("admin's projects %+v", got)
	}
	if got := list(amina); len(got) != 1 || got[0].ID != "north" || got[0].Role != api.RoleEnumerator {
		t.Errorf("amina's projects %+v", got)
	}
	// No membership: an empty list, not null.
	_, body = ts.call(t, http.MethodGet, "/v1/projects", loner, nil)
	if strings.TrimSpace(string(body)) != `{"projects":[]}` {
		t.Errorf("loner's projects %s", body)
	}
}

func TestSetMember(t *testing.T) {
	ts := newTestServer(t)
	admin := ts.adminToken(t)
	for _, id := range []string{"north", "south"} {
		ts.want(t, http.StatusCreated, http.MethodPost, "/v1/projects", admin, api.CreateProjectRequest{ID: id, Title: id}, nil)
	}
	mia := ts.addUser(t, admin, "mia", "north", api.RoleManager)
	ana := ts.addUser(t, admin, "ana", "north", api.RoleAnalyst)
	ts.addUser(t, admin, "eno", "", "")

	// A manager gives roles in its project.
	var m api.Member
	ts.want(t, http.StatusOK, http.MethodPut, "/v1/projects/north/members/eno", mia, api.PutMemberRequest{Role: api.RoleEnumerator}, &m)
	if m.Project != "north" || m.Username != "eno" || m.Role != api.RoleEnumerator || m.UpdatedAt.IsZero() {
		t.Errorf("member %+v", m)
	}
	// Replacing a role is the same call.
	ts.want(t, http.StatusOK, http.MethodPut, "/v1/projects/north/members/eno", mia, api.PutMemberRequest{Role: api.RoleDesigner}, &m)
	if m.Role != api.RoleDesigner {
		t.Errorf("member %+v", m)
	}

	for _, tc := range []struct {
		name, token, path, role string
		status                  int
		code                    string
	}{
		{"invalid role", mia, "/v1/projects/north/members/eno", "boss", 422, "invalid_role"},
		{"unknown user", mia, "/v1/projects/north/members/ghost", api.RoleAnalyst, 404, "user_not_found"},
		{"other project", mia, "/v1/projects/south/members/eno", api.RoleAnalyst, 404, api.CodeProjectNotFound},
		{"no such project", admin, "/v1/projects/west/members/eno", api.RoleAnalyst, 404, api.CodeProjectNotFound},
		{"analyst", ana, "/v1/projects/north/members/eno", api.RoleAnalyst, 403, api.CodeForbidden},
		{"no token", "", "/v1/projects/north/members/eno", api.RoleAnalyst, 401, api.CodeUnauthorized},
	} {
		t.Run(tc.name, func(t *testing.T) {
			resp, body := ts.call(t, http.MethodPut, tc.path, tc.token, api.PutMemberRequest{Role: tc.role})
			problemOf(t, resp, body, tc.status, tc.code)
		})
	}
}

func TestDeviceLifecycle(t *testing.T) {
	ts := newTestServer(t)
	admin := ts.adminToken(t)
	for _, id := range []string{"north", "south"} {
		ts.want(t, http.StatusCreated, http.MethodPost, "/v1/projects", admin, api.CreateProjectRequest{ID: id, Title: id}, nil)
	}
	mia := ts.addUser(t, admin, "mia", "north", api.RoleManager)

	resp, body := ts.call(t, http.MethodPost, "/v1/projects/north/devices", mia, api.CreateDeviceRequest{Name: "Tablet 07"})
	if resp.StatusCode != http.StatusCreated {
		t.Fatalf("create device: %d %s", resp.StatusCode, body)
	}
	if resp.Header.Get("Cache-Control") != "no-store" {
		t.Errorf("enrollment code answer Cache-Control %q", resp.Header.Get("Cache-Control"))
	}
	var dev api.CreateDeviceResponse
	if err := json.Unmarshal(body, &dev); err != nil {
		t.Fatal(err)
	}
	if dev.DeviceID == "" || len(dev.EnrollmentCode) != 23 || !dev.ExpiresAt.After(time.Now()) {
		t.Fatalf("device %s", body)
	}

	resp, body = ts.call(t, http.MethodPost, "/v1/projects/north/devices", mia, api.CreateDeviceRequest{Name: ""})
	problemOf(t, resp, body, http.StatusUnprocessableEntity, "invalid_device_name")
	resp, body = ts.call(t, http.MethodPost, "/v1/projects/south/devices", mia, api.CreateDeviceRequest{Name: "x"})
	problemOf(t, resp, body, http.StatusNotFound, api.CodeProjectNotFound)

	// Too much device_info is refused before the code is used up.
	info := map[string]string{}
	for i := range 40 {
		info["k"+strconv.Itoa(i)] = "v"
	}
	resp, body = ts.call(t, http.MethodPost, "/v1/devices/enroll", "", api.EnrollRequest{EnrollmentCode: dev.EnrollmentCode, DeviceInfo: info})
	problemOf(t, resp, body, http.StatusUnprocessableEntity, "invalid_device_info")

	// A code typed by hand: lower case, without dashes.
	typed := strings.ToLower(strings.ReplaceAll(dev.EnrollmentCode, "-", ""))
	var pair api.TokenResponse
	ts.want(t, http.StatusOK, http.MethodPost, "/v1/devices/enroll", "",
		api.EnrollRequest{EnrollmentCode: typed, DeviceInfo: map[string]string{"model": "Tab A8", "app": "collect 3.1"}}, &pair)
	if pair.DeviceID != dev.DeviceID || pair.Project != "north" || pair.AccessToken == "" || pair.RefreshToken == "" {
		t.Fatalf("enroll answered %#v (device %q project %q)", pair, pair.DeviceID, pair.Project)
	}

	// The device sees its project, as an enumerator, and nothing more.
	var l api.ProjectList
	ts.want(t, http.StatusOK, http.MethodGet, "/v1/projects", pair.AccessToken, nil, &l)
	if len(l.Projects) != 1 || l.Projects[0].ID != "north" || l.Projects[0].Role != api.RoleEnumerator {
		t.Errorf("device's projects %+v", l.Projects)
	}
	resp, body = ts.call(t, http.MethodPost, "/v1/projects/north/devices", pair.AccessToken, api.CreateDeviceRequest{Name: "self-made"})
	problemOf(t, resp, body, http.StatusForbidden, api.CodeForbidden)

	// The code is used up.
	resp, body = ts.call(t, http.MethodPost, "/v1/devices/enroll", "", api.EnrollRequest{EnrollmentCode: dev.EnrollmentCode})
	problemOf(t, resp, body, http.StatusUnauthorized, "invalid_enrollment_code")
	wantChallenge(t, resp)

	// A device refreshes like a user.
	var refreshed api.TokenResponse
	ts.want(t, http.StatusOK, http.MethodPost, "/v1/auth/refresh", "", api.RefreshRequest{RefreshToken: pair.RefreshToken}, &refreshed)

	// Revocation stops the device at once on this instance.
	resp, body = ts.call(t, http.MethodDelete, "/v1/projects/south/devices/"+dev.DeviceID, admin, nil)
	problemOf(t, resp, body, http.StatusNotFound, "device_not_found")
	ts.want(t, http.StatusNoContent, http.MethodDelete, "/v1/projects/north/devices/"+dev.DeviceID, mia, nil, nil)
	for _, tok := range []string{pair.AccessToken, refreshed.AccessToken} {
		resp, body = ts.call(t, http.MethodGet, "/v1/projects", tok, nil)
		problemOf(t, resp, body, http.StatusUnauthorized, api.CodeUnauthorized)
		wantChallenge(t, resp)
	}
	resp, body = ts.call(t, http.MethodPost, "/v1/auth/refresh", "", api.RefreshRequest{RefreshToken: refreshed.RefreshToken})
	problemOf(t, resp, body, http.StatusUnauthorized, "invalid_grant")

	// Revoking again succeeds; an unknown device is a 404.
	ts.want(t, http.StatusNoContent, http.MethodDelete, "/v1/projects/north/devices/"+dev.DeviceID, mia, nil, nil)
	resp, body = ts.call(t, http.MethodDelete, "/v1/projects/north/devices/no-such-device", mia, nil)
	problemOf(t, resp, body, http.StatusNotFound, "device_not_found")
}

func TestRevokeUser(t *testing.T) {
	clock := newIdentityClock()
	ts := newTestServer(t, withIdentity(func(c *identity.Config) { c.Now = clock.Now }))
	admin := ts.adminToken(t)
	amina := ts.addUser(t, admin, "amina", "", "")

	resp, body := ts.call(t, http.MethodPost, "/v1/users/amina/revoke", amina, nil)
	problemOf(t, resp, body, http.StatusForbidden, api.CodeForbidden)
	resp, body = ts.call(t, http.MethodPost, "/v1/users/ghost/revoke", admin, nil)
	problemOf(t, resp, body, http.StatusNotFound, "user_not_found")

	ts.want(t, http.StatusNoContent, http.MethodPost, "/v1/users/amina/revoke", admin, nil, nil)
	resp, body = ts.call(t, http.MethodGet, "/v1/projects", amina, nil)
	problemOf(t, resp, body, http.StatusUnauthorized, api.CodeUnauthorized)
	// Revoked is not disabled: amina may log in again, in the very second of
	// the revocation (the clock stands still): iat has whole seconds, and the
	// service dates the new token past the revocation's second.
	again := ts.login(t, "amina", "pw-of-amina-1234").AccessToken
	ts.want(t, http.StatusOK, http.MethodGet, "/v1/projects", again, nil, nil)
}

func TestDisableUser(t *testing.T) {
	clock := newIdentityClock()
	ts := newTestServer(t, withIdentity(func(c *identity.Config) { c.Now = clock.Now }))
	admin := ts.adminToken(t)
	amina := ts.addUser(t, admin, "amina", "", "")

	resp, body := ts.call(t, http.MethodPost, "/v1/users/amina/disable", amina, nil)
	problemOf(t, resp, body, http.StatusForbidden, api.CodeForbidden)
	resp, body = ts.call(t, http.MethodPost, "/v1/users/admin/disable", admin, nil)
	problemOf(t, resp, body, http.StatusUnprocessableEntity, "cannot_disable_self")
	resp, body = ts.call(t, http.MethodPost, "/v1/users/ghost/disable", admin, nil)
	problemOf(t, resp, body, http.StatusNotFound, "user_not_found")

	ts.want(t, http.StatusNoContent, http.MethodPost, "/v1/users/amina/disable", admin, nil, nil)
	ts.want(t, http.StatusNoContent, http.MethodPost, "/v1/users/amina/disable", admin, nil, nil)
	resp, body = ts.call(t, http.MethodGet, "/v1/projects", amina, nil)
	problemOf(t, resp, body, http.StatusUnauthorized, api.CodeUnauthorized)
	resp, body = ts.call(t, http.MethodPost, "/v1/auth/token", "", api.TokenRequest{Username: "amina", Password: "pw-of-amina-1234"})
	problemOf(t, resp, body, http.StatusUnauthorized, "invalid_credentials")

	ts.want(t, http.StatusNoContent, http.MethodPost, "/v1/users/amina/enable", admin, nil, nil)
	// A login in the same second as the disabling works (the clock stands still).
	again := ts.login(t, "amina", "pw-of-amina-1234").AccessToken
	ts.want(t, http.StatusOK, http.MethodGet, "/v1/projects", again, nil, nil)
	// The token from before the disabling stays dead.
	resp, body = ts.call(t, http.MethodGet, "/v1/projects", amina, nil)
	problemOf(t, resp, body, http.StatusUnauthorized, api.CodeUnauthorized)
}

func TestAuditListing(t *testing.T) {
	ts := newTestServer(t)
	start := time.Now().UTC().Add(-time.Second)
	admin := ts.adminToken(t)
	ts.want(t, http.StatusCreated, http.MethodPost, "/v1/projects", admin, api.CreateProjectRequest{ID: "north", Title: "North"}, nil)
	ts.want(t, http.StatusCreated, http.MethodPost, "/v1/projects", admin, api.CreateProjectRequest{ID: "south", Title: "South"}, nil)
	mia := ts.addUser(t, admin, "mia", "north", api.RoleManager)
	ts.want(t, http.StatusCreated, http.MethodPost, "/v1/projects/north/devices", mia, api.CreateDeviceRequest{Name: "t1"}, nil)
	resp, body := ts.call(t, http.MethodPost, "/v1/auth/token", "", api.TokenRequest{Username: "mia", Password: "wrong-password"})
	problemOf(t, resp, body, http.StatusUnauthorized, "invalid_credentials")

	list := func(query string) api.AuditList {
		t.Helper()
		var l api.AuditList
		ts.want(t, http.StatusOK, http.MethodGet, "/v1/audit"+query, admin, nil, &l)
		return l
	}
	all := list("?limit=1000")
	if len(all.Events) < 8 || all.Next != "" {
		t.Fatalf("%d events, next %q", len(all.Events), all.Next)
	}
	for i := 1; i < len(all.Events); i++ {
		if all.Events[i].ID >= all.Events[i-1].ID {
			t.Fatalf("not newest first: %s after %s", all.Events[i].ID, all.Events[i-1].ID)
		}
	}
	types := map[string]int{}
	for _, e := range all.Events {
		types[e.Type]++
	}
	for _, ty := range []string{"admin_bootstrapped", "login", "login_failed", "project_created", "user_created", "role_set", "device_created"} {
		if types[ty] == 0 {
			t.Errorf("no %s event in %v", ty, types)
		}
	}

	for _, tc := range []struct {
		query string
		check func(api.AuditEvent) bool
	}{
		{"?type=login", func(e api.AuditEvent) bool { return e.Type == "login" }},
		{"?actor=mia", func(e api.AuditEvent) bool { return e.Actor == "mia" }},
		{"?project=north", func(e api.AuditEvent) bool { return e.Project == "north" }},
		{"?type=login_failed&project=", func(e api.AuditEvent) bool {
			return e.Type == "login_failed" && e.Subject == "mia" && e.Detail["reason"] == "bad_password" && e.RemoteAddr != ""
		}},
	} {
		l := list(tc.query)
		if len(l.Events) == 0 {
			t.Errorf("%s: no events", tc.query)
		}
		for _, e := range l.Events {
			if !tc.check(e) {
				t.Errorf("%s: event %+v", tc.query, e)
			}
		}
	}
	if n := len(list("?project=south&type=project_created").Events); n != 1 {
		t.Errorf("project=south&type=project_created: %d events", n)
	}
	// Time range: since is inclusive, until exclusive.
	q := url.Values{"since": {start.Format(time.RFC3339Nano)}, "until": {time.Now().Add(time.Minute).UTC().Format(time.RFC3339)}}
	if n := len(list("?" + q.Encode()).Events); n != len(all.Events) {
		t.Errorf("since..until: %d events, want %d", n, len(all.Events))
	}
	if n := len(list("?since=" + url.QueryEscape(time.Now().Add(time.Hour).Format(time.RFC3339))).Events); n != 0 {
		t.Errorf("since the future: %d events", n)
	}
	if n := len(list("?until=" + url.QueryEscape(start.Add(-time.Hour).Format(time.RFC3339))).Events); n != 0 {
		t.Errorf("until the past: %d events", n)
	}

	// Paging: every event once, in order, and no next on the last page.
	var paged []api.AuditEvent
	cursor := ""
	for pages := 0; ; pages++ {
		if pages > len(all.Events) {
			t.Fatal("paging does not end")
		}
		l := list("?limit=3&cursor=" + url.QueryEscape(cursor))
		if len(l.Events) > 3 {
			t.Fatalf("a page of %d events", len(l.Events))
		}
		paged = append(paged, l.Events...)
		if l.Next == "" {
			break
		}
		cursor = l.Next
	}
	if len(paged) != len(all.Events) {
		t.Fatalf("paged %d events, want %d", len(paged), len(all.Events))
	}
	for i := range paged {
		if paged[i].ID != all.Events[i].ID {
			t.Fatalf("page order differs at %d", i)
		}
	}

	for _, tc := range []struct{ query, code string }{
		{"?limit=0", "invalid_limit"},
		{"?limit=1001", "invalid_limit"},
		{"?limit=ten", "invalid_limit"},
		{"?since=yesterday", "invalid_query"},
		{"?until=2026-13-01", "invalid_query"},
	} {
		resp, body := ts.call(t, http.MethodGet, "/v1/audit"+tc.query, admin, nil)
		problemOf(t, resp, body, http.StatusBadRequest, tc.code)
	}
	resp, body = ts.call(t, http.MethodGet, "/v1/audit?cursor=not-a-cursor", admin, nil)
	if resp.StatusCode != http.StatusBadRequest {
		t.Errorf("bad cursor: %d %s", resp.StatusCode, body)
	}
	resp, body = ts.call(t, http.MethodGet, "/v1/audit", mia, nil)
	problemOf(t, resp, body, http.StatusForbidden, api.CodeForbidden)
}

// TestIdentitySecretsNeverLogged runs every identity route with secrets in
// play, the failures included, and looks for each secret in the server's log
// (access log, service log, error log) and in the audit log.
func TestIdentitySecretsNeverLogged(t *testing.T) {
	ts := newTestServer(t)
	secrets := []string{testAdminPassword}

	adminPair := ts.login(t, "admin", testAdminPassword)
	admin := adminPair.AccessToken
	secrets = append(secrets, adminPair.AccessToken, adminPair.RefreshToken)

	const userPassword = "amina's secret passphrase"
	secrets = append(secrets, userPassword)
	ts.want(t, http.StatusCreated, http.MethodPost, "/v1/users", admin, api.CreateUserRequest{Username: "amina", Password: userPassword}, nil)
	// A weak password refused, and a password typed into the username field.
	const weak = "tiny-pw"
	const typedAsName = "my password typed as the name"
	secrets = append(secrets, weak, typedAsName)
	ts.call(t, http.MethodPost, "/v1/users", admin, api.CreateUserRequest{Username: "bob", Password: weak})
	ts.call(t, http.MethodPost, "/v1/auth/token", "", api.TokenRequest{Username: typedAsName, Password: userPassword})
	ts.call(t, http.MethodPost, "/v1/auth/token", "", api.TokenRequest{Username: "amina", Password: "wrong " + userPassword})
	secrets = append(secrets, "wrong "+userPassword)

	pair := ts.login(t, "amina", userPassword)
	secrets = append(secrets, pair.AccessToken, pair.RefreshToken)
	var next api.TokenResponse
	ts.want(t, http.StatusOK, http.MethodPost, "/v1/auth/refresh", "", api.RefreshRequest{RefreshToken: pair.RefreshToken}, &next)
	secrets = append(secrets, next.AccessToken, next.RefreshToken)
	// The retry of a lost answer (a grace reuse), then a replay of the pair it
	// killed, which revokes the family.
	var reused api.TokenResponse
	ts.want(t, http.StatusOK, http.MethodPost, "/v1/auth/refresh", "", api.RefreshRequest{RefreshToken: pair.RefreshToken}, &reused)
	secrets = append(secrets, reused.AccessToken, reused.RefreshToken)
	ts.call(t, http.MethodPost, "/v1/auth/refresh", "", api.RefreshRequest{RefreshToken: next.RefreshToken}) // replay
	ts.call(t, http.MethodGet, "/v1/projects", reused.AccessToken, nil)                                      // revoked token

	ts.want(t, http.StatusCreated, http.MethodPost, "/v1/projects", admin, api.CreateProjectRequest{ID: "north", Title: "North"}, nil)
	var dev api.CreateDeviceResponse
	ts.want(t, http.StatusCreated, http.MethodPost, "/v1/projects/north/devices", admin, api.CreateDeviceRequest{Name: "t1"}, &dev)
	var devPair api.TokenResponse
	ts.want(t, http.StatusOK, http.MethodPost, "/v1/devices/enroll", "", api.EnrollRequest{EnrollmentCode: dev.EnrollmentCode}, &devPair)
	ts.call(t, http.MethodPost, "/v1/devices/enroll", "", api.EnrollRequest{EnrollmentCode: dev.EnrollmentCode})
	secrets = append(secrets, dev.EnrollmentCode, strings.ReplaceAll(dev.EnrollmentCode, "-", ""), devPair.AccessToken, devPair.RefreshToken)
	ts.want(t, http.StatusNoContent, http.MethodPost, "/v1/auth/revoke", "", api.RevokeRequest{RefreshToken: devPair.RefreshToken}, nil)
	ts.call(t, http.MethodGet, "/v1/projects", "forged."+admin[10:], nil)

	var audit api.AuditList
	ts.want(t, http.StatusOK, http.MethodGet, "/v1/audit?limit=1000", admin, nil, &audit)
	auditJSON, _ := json.Marshal(audit)

	logs := ts.logs.String()
	if !strings.Contains(logs, `"route":"/v1/auth/token"`) || !strings.Contains(logs, "token rejected") {
		t.Fatalf("the log was not captured:\n%s", logs)
	}
	for _, s := range secrets {
		if s == "" {
			t.Fatal("an empty secret")
		}
		if strings.Contains(logs, s) {
			t.Errorf("the server log holds the secret %q", s)
		}
		if strings.Contains(string(auditJSON), s) {
			t.Errorf("the audit log holds the secret %q", s)
		}
	}
}

// TestClientIdentityMethods drives the typed api.Client methods against the
// real server; every exchange is checked against openapi.yaml.
func TestClientIdentityMethods(t *testing.T) {
	ts := newTestServer(t)
	ctx := context.Background()
	c := ts.apiClient(t)

	if _, err := c.Login(ctx, "admin", "wrong-password"); !api.IsCode(err, "invalid_credentials") {
		t.Fatalf("Login with a wrong password: %v", err)
	}
	pair, err := c.Login(ctx, "admin", testAdminPassword)
	if err != nil {
		t.Fatal(err)
	}
	if c.Token() != pair.AccessToken {
		t.Error("Login did not set the token")
	}
	if s := fmt.Sprint(pair) + fmt.Sprintf("%#v %+v", pair, pair); strings.Contains(s, pair.AccessToken) || strings.Contains(s, pair.RefreshToken) {
		t.Errorf("a printed TokenResponse shows its tokens: %s", s)
	}
	if pair, err = c.Refresh(ctx, pair.RefreshToken); err != nil || c.Token() != pair.AccessToken {
		t.Fatalf("Refresh: %v", err)
	}
	u, err := c.CreateUser(ctx, api.CreateUserRequest{Username: "mia", Password: "pw-of-mia-1234", DisplayName: "Mia"})
	if err != nil || u.Username != "mia" || u.Admin {
		t.Fatalf("CreateUser: %+v %v", u, err)
	}
	if p, err := c.CreateProject(ctx, "north", "North"); err != nil || p.ID != "north" {
		t.Fatalf("CreateProject: %+v %v", p, err)
	}
	if m, err := c.SetMember(ctx, "north", "mia", api.RoleManager); err != nil || m.Role != api.RoleManager {
		t.Fatalf("SetMember: %+v %v", m, err)
	}
	ps, err := c.ListProjects(ctx)
	if err != nil || len(ps) != 1 || ps[0].ID != "north" {
		t.Fatalf("ListProjects: %+v %v", ps, err)
	}
	dev, err := c.CreateDevice(ctx, "north", "Tablet 1")
	if err != nil || dev.EnrollmentCode == "" {
		t.Fatalf("CreateDevice: %+v %v", dev, err)
	}
	tablet := ts.apiClient(t)
	dp, err := tablet.Enroll(ctx, dev.EnrollmentCode, map[string]string{"model": "x"})
	if err != nil || dp.DeviceID != dev.DeviceID || dp.Project != "north" || tablet.Token() != dp.AccessToken {
		t.Fatalf("Enroll: %v %v", dp, err)
	}
	if ps, err := tablet.ListProjects(ctx); err != nil || len(ps) != 1 || ps[0].Role != api.RoleEnumerator {
		t.Fatalf("device ListProjects: %+v %v", ps, err)
	}
	if err := c.RevokeDevice(ctx, "north", dev.DeviceID); err != nil {
		t.Fatalf("RevokeDevice: %v", err)
	}
	if _, err := tablet.ListProjects(ctx); !api.IsCode(err, api.CodeUnauthorized) {
		t.Fatalf("revoked device ListProjects: %v", err)
	}
	if err := c.RevokeUser(ctx, "mia"); err != nil {
		t.Fatalf("RevokeUser: %v", err)
	}
	if err := c.DisableUser(ctx, "mia"); err != nil {
		t.Fatalf("DisableUser: %v", err)
	}
	if _, err := ts.apiClient(t).Login(ctx, "mia", "pw-of-mia-1234"); !api.IsCode(err, "invalid_credentials") {
		t.Fatalf("a disabled user logs in: %v", err)
	}
	if err := c.EnableUser(ctx, "mia"); err != nil {
		t.Fatalf("EnableUser: %v", err)
	}
	page, err := c.ListAudit(ctx, api.AuditQuery{Type: "device_revoked", Project: "north", Since: time.Now().Add(-time.Hour), Limit: 5})
	if err != nil || len(page.Events) != 1 || page.Events[0].Subject != "device:"+dev.DeviceID {
		t.Fatalf("ListAudit: %+v %v", page, err)
	}
	if err := c.Revoke(ctx, pair.RefreshToken); err != nil {
		t.Fatalf("Revoke: %v", err)
	}
	if _, err := c.ListProjects(ctx); !api.IsCode(err, api.CodeUnauthorized) {
		t.Fatalf("ListProjects after logout: %v", err)
	}
}

// TestRefreshRace: two threads of one tablet refresh the same token at once.
// Both get a pair, nothing is revoked or audited as theft, and the session goes
// on with the live one of the two refresh tokens (the test finds it in the
// store; a client keeps the answer that arrived last).
func TestRefreshRace(t *testing.T) {
	ts := newTestServer(t)
	admin := ts.adminToken(t)
	for round := range 5 {
		first := ts.login(t, "admin", testAdminPassword)
		var wg sync.WaitGroup
		pairs := make([]api.TokenResponse, 2)
		codes := make([]int, 2)
		for i := range 2 {
			wg.Go(func() {
				resp, body := ts.call(t, http.MethodPost, "/v1/auth/refresh", "", api.RefreshRequest{RefreshToken: first.RefreshToken})
				codes[i] = resp.StatusCode
				_ = json.Unmarshal(body, &pairs[i])
			})
		}
		wg.Wait()
		if codes[0] != http.StatusOK || codes[1] != http.StatusOK {
			t.Fatalf("round %d: answers %v, want both 200", round, codes)
		}
		live := ""
		for _, p := range pairs {
			sum := sha256.Sum256([]byte(p.RefreshToken))
			tok, err := ts.store.GetRefreshToken(context.Background(), hex.EncodeToString(sum[:]))
			if err != nil {
				t.Fatal(err)
			}
			if tok.SpentAt == nil {
				if live != "" {
					t.Fatal("two live refresh tokens")
				}
				live = p.RefreshToken
			}
		}
		if live == "" {
			t.Fatalf("round %d: no live refresh token", round)
		}
		ts.want(t, http.StatusOK, http.MethodPost, "/v1/auth/refresh", "", api.RefreshRequest{RefreshToken: live}, nil)
	}
	var audit api.AuditList
	ts.want(t, http.StatusOK, http.MethodGet, "/v1/audit?type=family_revoked", admin, nil, &audit)
	if len(audit.Events) != 0 {
		t.Fatalf("family_revoked events %+v", audit.Events)
	}
}
