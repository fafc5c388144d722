package httpapi

import (
	"encoding/json"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/fieldsync/fieldsync/api"
	"github.com/fieldsync/fieldsync/internal/identity"
)

// wantProblem sends a request and fails unless it answers status with code;
// it returns the problem.
func (ts *testServer) wantProblem(t testing.TB, status int, code, method, path, token string, body any) api.Problem {
	t.Helper()
	resp, raw := ts.call(t, method, path, token, body)
	var p api.Problem
	_ = json.Unmarshal(raw, &p)
	if resp.StatusCode != status || p.Code != code {
		t.Fatalf("%s %s: %d %s, want %d %s: %s", method, path, resp.StatusCode, p.Code, status, code, raw)
	}
	return p
}

// auditTypes returns how many events of typ the audit log holds about subject.
func (ts *testServer) auditCount(t testing.TB, admin, typ, subject string) int {
	t.Helper()
	var l api.AuditList
	ts.want(t, http.StatusOK, http.MethodGet, "/v1/audit?type="+typ, admin, nil, &l)
	n := 0
	for _, e := range l.Events {
		if e.Subject == subject {
			n++
		}
	}
	return n
}

func TestChangeOwnPassword(t *testing.T) {
	ts := newTestServer(t)
	admin := ts.adminToken(t)
	ts.addUser(t, admin, "bob", "", "")
	old := "pw-of-bob-1234"
	here := ts.login(t, "bob", old)  // the session that changes the password
	other := ts.login(t, "bob", old) // a session on another machine

	ts.wantProblem(t, http.StatusUnprocessableEntity, "wrong_password", http.MethodPost, "/v1/auth/password", here.AccessToken,
		api.ChangePasswordRequest{CurrentPassword: "not-the-password", NewPassword: "a-brand-new-one-99"})
	p := ts.wantProblem(t, http.StatusUnprocessableEntity, "weak_password", http.MethodPost, "/v1/auth/password", here.AccessToken,
		api.ChangePasswordRequest{CurrentPassword: old, NewPassword: "short"})
	if !strings.Contains(p.Detail, "at least 10") && !strings.Contains(p.Detail, "10 to 1024") {
		t.Errorf("weak_password detail %q does not state the minimum length", p.Detail)
	}
	if !strings.Contains(p.Detail, "username") {
		t.Errorf("weak_password detail %q does not state the whole rule", p.Detail)
	}

	ts.want(t, http.StatusNoContent, http.MethodPost, "/v1/auth/password", here.AccessToken,
		api.ChangePasswordRequest{CurrentPassword: old, NewPassword: "a-brand-new-one-99", RevokeOtherSessions: true}, nil)

	// The old password no longer logs in, the new one does.
	ts.wantProblem(t, http.StatusUnauthorized, "invalid_credentials", http.MethodPost, "/v1/auth/token", "",
		api.TokenRequest{Username: "bob", Password: old})
	ts.login(t, "bob", "a-brand-new-one-99")
	// The other session is signed out; this one goes on.
	ts.wantProblem(t, http.StatusUnauthorized, "invalid_grant", http.MethodPost, "/v1/auth/refresh", "",
		api.RefreshRequest{RefreshToken: other.RefreshToken})
	ts.want(t, http.StatusOK, http.MethodGet, "/v1/projects", here.AccessToken, nil, nil)
	ts.want(t, http.StatusOK, http.MethodPost, "/v1/auth/refresh", "", api.RefreshRequest{RefreshToken: here.RefreshToken}, nil)

	if n := ts.auditCount(t, admin, identity.AuditPasswordChanged, "bob"); n != 1 {
		t.Errorf("password_changed events of bob: %d, want 1", n)
	}
}

func TestResetPasswordEndsSessions(t *testing.T) {
	ts := newTestServer(t)
	admin := ts.adminToken(t)
	ts.addUser(t, admin, "bob", "", "")
	bob := ts.login(t, "bob", "pw-of-bob-1234")

	p := ts.wantProblem(t, http.StatusUnprocessableEntity, "weak_password", http.MethodPost, "/v1/users/bob/password", admin,
		api.ResetPasswordRequest{NewPassword: "bob"})
	if !strings.Contains(p.Detail, "10") {
		t.Errorf("weak_password detail %q does not state the minimum length", p.Detail)
	}
	ts.wantProblem(t, http.StatusNotFound, "user_not_found", http.MethodPost, "/v1/users/nobody/password", admin,
		api.ResetPasswordRequest{NewPassword: "a-long-enough-one"})
	ts.want(t, http.StatusNoContent, http.MethodPost, "/v1/users/bob/password", admin,
		api.ResetPasswordRequest{NewPassword: "reset-by-admin-42"}, nil)

	resp, _ := ts.call(t, http.MethodGet, "/v1/projects", bob.AccessToken, nil)
	wantChallenge(t, resp)
	ts.wantProblem(t, http.StatusUnauthorized, "invalid_grant", http.MethodPost, "/v1/auth/refresh", "",
		api.RefreshRequest{RefreshToken: bob.RefreshToken})
	ts.login(t, "bob", "reset-by-admin-42")
	if n := ts.auditCount(t, admin, identity.AuditPasswordReset, "bob"); n != 1 {
		t.Errorf("password_reset events of bob: %d, want 1", n)
	}
}

func TestAdminFlag(t *testing.T) {
	ts := newTestServer(t)
	admin := ts.adminToken(t)
	bob := ts.addUser(t, admin, "bob", "", "")
	yes, no := true, false

	ts.wantProblem(t, http.StatusUnprocessableEntity, "cannot_change_own_admin", http.MethodPatch, "/v1/users/admin", admin,
		api.UpdateUserRequest{Admin: &no})
	ts.wantProblem(t, http.StatusForbidden, "forbidden", http.MethodGet, "/v1/users", bob, nil)

	var u api.UserEntry
	name := "Bob the Admin"
	ts.want(t, http.StatusOK, http.MethodPatch, "/v1/users/bob", admin, api.UpdateUserRequest{Admin: &yes, DisplayName: &name}, &u)
	if !u.Admin || u.DisplayName != name {
		t.Errorf("after PATCH: %+v", u)
	}
	// The flag applies to bob's token at once, without a new login.
	ts.want(t, http.StatusOK, http.MethodGet, "/v1/users", bob, nil, nil)
	// Bob removes the first admin's flag; bob is then the last admin.
	ts.want(t, http.StatusOK, http.MethodPatch, "/v1/users/admin", bob, api.UpdateUserRequest{Admin: &no}, &u)
	if u.Admin {
		t.Errorf("admin still admin: %+v", u)
	}
	ts.wantProblem(t, http.StatusForbidden, "forbidden", http.MethodGet, "/v1/users", admin, nil)
	ts.wantProblem(t, http.StatusUnprocessableEntity, "cannot_change_own_admin", http.MethodPatch, "/v1/users/bob", bob,
		api.UpdateUserRequest{Admin: &no})
	if n := ts.auditCount(t, bob, identity.AuditAdminGranted, "bob"); n != 1 {
		t.Errorf("admin_granted events of bob: %d, want 1", n)
	}
	if n := ts.auditCount(t, bob, identity.AuditAdminRevoked, "admin"); n != 1 {
		t.Errorf("admin_revoked events of admin: %d, want 1", n)
	}
}

func TestListUsersPaged(t *testing.T) {
	ts := newTestServer(t)
	admin := ts.adminToken(t)
	for _, u := range []string{"carol", "bob", "dave"} {
		ts.addUser(t, admin, u, "", "")
	}
	var got []string
	cursor := ""
	for pages := 0; ; pages++ {
		var l api.UserList
		path := "/v1/users?limit=3"
		if cursor != "" {
			path += "&cursor=" + cursor
		}
		ts.want(t, http.StatusOK, http.MethodGet, path, admin, nil, &l)
		for _, u := range l.Items {
			got = append(got, u.Username)
			if u.Username == "bob" && (u.DisplayName != "BOB" || u.Admin || u.Disabled || u.CreatedAt.IsZero()) {
				t.Errorf("bob listed as %+v", u)
			}
		}
		if l.Next == "" {
			break
		}
		cursor = l.Next
	}
	if strings.Join(got, ",") != "admin,bob,carol,dave" {
		t.Errorf("users = %v", got)
	}
	ts.wantProblem(t, http.StatusBadRequest, "invalid_limit", http.MethodGet, "/v1/users?limit=0", admin, nil)
}

func TestMembersListAndRemove(t *testing.T) {
	ts := newTestServer(t)
	admin := ts.adminToken(t)
	ts.want(t, http.StatusCreated, http.MethodPost, "/v1/projects", admin, api.CreateProjectRequest{ID: "juba", Title: "Juba"}, nil)
	manager := ts.addUser(t, admin, "mona", "juba", api.RoleManager)
	analyst := ts.addUser(t, admin, "ali", "juba", api.RoleAnalyst)
	ts.addUser(t, admin, "eve", "juba", api.RoleEnumerator)

	var l api.ProjectMemberList
	ts.want(t, http.StatusOK, http.MethodGet, "/v1/projects/juba/members", manager, nil, &l)
	want := []api.ProjectMember{{Username: "ali", DisplayName: "ALI", Role: "analyst"}, {Username: "eve", DisplayName: "EVE", Role: "enumerator"},
		{Username: "mona", DisplayName: "MONA", Role: "manager"}}
	if len(l.Items) != len(want) || l.Next != "" {
		t.Fatalf("members = %+v", l)
	}
	for i := range want {
		if l.Items[i] != want[i] {
			t.Errorf("member %d = %+v, want %+v", i, l.Items[i], want[i])
		}
	}

	// A 403 says which role the route needs and what the caller is.
	p := ts.wantProblem(t, http.StatusForbidden, "forbidden", http.MethodGet, "/v1/projects/juba/members", analyst, nil)
	if p.Detail != "this route needs the manager role in project juba; you are analyst" {
		t.Errorf("403 detail = %q", p.Detail)
	}

	// The analyst reads records of the project until removed, and not a moment after.
	ts.want(t, http.StatusOK, http.MethodGet, "/v1/projects/juba/quarantine", analyst, nil, nil)
	ts.want(t, http.StatusNoContent, http.MethodDelete, "/v1/projects/juba/members/ali", manager, nil, nil)
	ts.wantProblem(t, http.StatusNotFound, "project_not_found", http.MethodGet, "/v1/projects/juba/quarantine", analyst, nil)
	ts.wantProblem(t, http.StatusNotFound, "member_not_found", http.MethodDelete, "/v1/projects/juba/members/ali", manager, nil)
	var ev api.AuditList
	ts.want(t, http.StatusOK, http.MethodGet, "/v1/audit?type=member_removed", admin, nil, &ev)
	if len(ev.Events) != 1 || ev.Events[0].Subject != "ali" || ev.Events[0].Actor != "mona" || ev.Events[0].Project != "juba" ||
		ev.Events[0].Detail["role"] != "analyst" {
		t.Errorf("member_removed events = %+v", ev.Events)
	}
}

func TestDeviceListStatesAndLastSync(t *testing.T) {
	clock := newIdentityClock()
	ts := newTestServer(t, withIdentity(func(c *identity.Config) { c.Now = clock.Now }))
	admin := ts.adminToken(t)
	ts.want(t, http.StatusCreated, http.MethodPost, "/v1/projects", admin, api.CreateProjectRequest{ID: "juba", Title: "Juba"}, nil)
	manager := ts.addUser(t, admin, "mona", "juba", api.RoleManager)

	mk := func(name string) api.CreateDeviceResponse {
		var d api.CreateDeviceResponse
		ts.want(t, http.StatusCreated, http.MethodPost, "/v1/projects/juba/devices", manager, api.CreateDeviceRequest{Name: name}, &d)
		clock.Advance(time.Second) // creation order
		return d
	}
	pending, synced, revoked := mk("pending tablet"), mk("synced tablet"), mk("revoked tablet")
	var pair api.TokenResponse
	ts.want(t, http.StatusOK, http.MethodPost, "/v1/devices/enroll", "",
		api.EnrollRequest{EnrollmentCode: synced.EnrollmentCode, DeviceInfo: map[string]string{"model": "T1"}}, &pair)
	ts.want(t, http.StatusNoContent, http.MethodDelete, "/v1/projects/juba/devices/"+revoked.DeviceID, manager, nil, nil)

	list := func() map[string]api.ProjectDevice {
		t.Helper()
		var l api.ProjectDeviceList
		ts.want(t, http.StatusOK, http.MethodGet, "/v1/projects/juba/devices", manager, nil, &l)
		out := map[string]api.ProjectDevice{}
		for _, d := range l.Items {
			out[d.DeviceID] = d
		}
		if len(l.Items) != 3 || l.Items[0].Name != "pending tablet" {
			t.Fatalf("devices = %+v", l.Items)
		}
		return out
	}
	ds := list()
	if d := ds[pending.DeviceID]; d.State != api.DeviceStatePending || d.LastSeenAt != nil {
		t.Errorf("pending device listed as %+v", d)
	}
	if d := ds[synced.DeviceID]; d.State != api.DeviceStateActive || d.EnrolledAt == nil || d.DeviceInfo["model"] != "T1" || d.LastSeenAt != nil {
		t.Errorf("enrolled device before any sync listed as %+v", d)
	}
	if d := ds[revoked.DeviceID]; d.State != api.DeviceStateRevoked || d.RevokedAt == nil {
		t.Errorf("revoked device listed as %+v", d)
	}

	// A pull records the sync time; another within the minute does not write
	// again; one after the minute does.
	first := clock.Now()
	ts.want(t, http.StatusOK, http.MethodGet, "/v1/projects/juba/sync/pull", pair.AccessToken, nil, nil)
	if d := list()[synced.DeviceID]; d.LastSeenAt == nil || !d.LastSeenAt.Equal(first) {
		t.Fatalf("after a pull, last_seen_at = %v, want %v", d.LastSeenAt, first)
	}
	clock.Advance(30 * time.Second)
	ts.want(t, http.StatusOK, http.MethodPost, "/v1/projects/juba/sync/push", pair.AccessToken, api.PushRequest{Submissions: []api.Submission{}}, nil)
	if d := list()[synced.DeviceID]; !d.LastSeenAt.Equal(first) {
		t.Errorf("a push 30 s later wrote last_seen_at %v; the throttle keeps %v", d.LastSeenAt, first)
	}
	clock.Advance(31 * time.Second)
	ts.want(t, http.StatusOK, http.MethodPost, "/v1/projects/juba/sync/push", pair.AccessToken, api.PushRequest{Submissions: []api.Submission{}}, nil)
	if d := list()[synced.DeviceID]; !d.LastSeenAt.Equal(clock.Now()) {
		t.Errorf("a push 61 s later: last_seen_at %v, want %v", d.LastSeenAt, clock.Now())
	}
}
