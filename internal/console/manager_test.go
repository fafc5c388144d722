package console_test

import (
	"context"
	"fmt"
	"net/http"
	"net/url"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/fieldsync/fieldsync/api"
	"github.com/fieldsync/fieldsync/internal/console/consoletest"
	"github.com/fieldsync/fieldsync/internal/domain"
)

// screenshotsEnv names a directory to write the README's screenshots to
// (FIELDSYNC_SCREENSHOTS=../../docs/screenshots go test -run TestBrowserManager
// ./internal/console/); unset, they go to the test's temporary directory.
const screenshotsEnv = "FIELDSYNC_SCREENSHOTS"

func shot(t *testing.T, b *consoletest.Browser, name string) {
	t.Helper()
	dir := os.Getenv(screenshotsEnv)
	if dir == "" {
		dir = t.TempDir()
	}
	b.Screenshot(filepath.Join(dir, name+".png"))
}

// TestBrowserManager is a manager's day in the console: the admin creates a
// project and a user; the manager adds the user as a member and changes the
// role, registers a tablet and sees its enrolment QR code; the tablet
// enrols with the code shown and syncs, and the device list shows its last
// sync; the manager revokes it, and its token stops working; the admin
// filters the audit log for these events and pages through it.
func TestBrowserManager(t *testing.T) {
	env := consoletest.Start(t)
	ctx := context.Background()
	b := env.NewBrowser(t)

	// The admin: a project from the home page, a user from the users page.
	b.SignIn("admin", consoletest.AdminPassword)
	b.Fill("#project-id", "safety")
	b.Fill("#project-title", "Community safety survey")
	b.Submit("#create-project-submit")
	if got := b.Text(".flash"); got != "✔ Project created." {
		t.Errorf("after creating the project: %q", got)
	}
	b.Visit("/users")
	b.Fill("#user-username", "mia")
	b.Fill("#user-display-name", "Mia Okello")
	b.Fill("#user-password", password)
	b.Submit("#add-user-submit")
	b.Fill("#user-username", "omar")
	b.Fill("#user-display-name", "Omar Deng")
	b.Fill("#user-password", password)
	b.Submit("#add-user-submit")
	if got := b.Text(`#users tr[data-username="omar"]`); !strings.Contains(got, "enabled") {
		t.Errorf("users table: %q", got)
	}
	b.CheckAccessible()
	shot(t, b, "users")
	b.Visit("/projects/safety/members")
	b.Fill("#member-username", "mia")
	b.Fill("#member-role", "manager")
	b.Submit("#add-member-submit")
	b.Submit("#signout")

	// The manager.
	b.SignIn("mia", password)
	b.Visit("/projects/safety")
	b.Submit(`header nav a[href="/projects/safety/members"]`)
	b.Fill("#member-username", "nobody")
	b.Submit("#add-member-submit")
	if got := b.Text("#form-error"); !strings.Contains(got, "User not found") {
		t.Errorf("adding an unknown user: %q", got)
	}
	b.Fill("#member-username", "omar")
	b.Fill("#member-role", "analyst")
	b.Submit("#add-member-submit")
	if got := b.Text(".flash"); got != "✔ Member saved." {
		t.Errorf("after adding a member: %q", got)
	}
	if m, err := env.Store.GetMembership(ctx, "safety", "omar"); err != nil || m.Role != domain.RoleAnalyst {
		t.Errorf("omar's membership: %+v %v", m, err)
	}
	b.Fill("#role-omar", "enumerator")
	b.Submit(`tr[data-username="omar"] button.secondary`)
	if m, _ := env.Store.GetMembership(ctx, "safety", "omar"); m.Role != domain.RoleEnumerator {
		t.Errorf("omar's role after the change: %s", m.Role)
	}
	b.CheckAccessible()
	shot(t, b, "members")

	b.Submit(`header nav a[href="/projects/safety/devices"]`)
	b.Fill("#device-name", "Tablet 07 (team north)")
	b.Submit("#add-device-submit")
	code := b.Text("#enrolment-code")
	if code == "" {
		t.Fatal("no enrolment code shown")
	}
	// The QR code is drawn: the CSP lets its data: URL in.
	if w, _ := b.Eval(`document.querySelector("#enrolment-qr").naturalWidth`).(float64); w < 100 {
		t.Errorf("the QR code image did not load (naturalWidth %v)", w)
	}
	b.CheckAccessible()
	shot(t, b, "enrolment")

	// The tablet enrols with the code shown, and pulls.
	tablet, err := api.NewClient(env.URL)
	if err != nil {
		t.Fatal(err)
	}
	pair, err := tablet.Enroll(ctx, code, map[string]string{"model": "test"})
	if err != nil {
		t.Fatalf("enrol with the code the console showed: %v", err)
	}
	if err := tablet.Do(ctx, http.MethodGet, "/v1/projects/safety/sync/pull", nil, nil); err != nil {
		t.Fatalf("pull: %v", err)
	}
	b.Submit("#back-to-devices")
	row := `#devices tbody tr`
	if got := b.Text(row + " .state"); !strings.Contains(got, "active") {
		t.Errorf("device state after enrolment: %q", got)
	}
	if got := b.Text(row + " .last-sync"); !strings.Contains(got, "UTC") {
		t.Errorf("last sync after a pull: %q", got)
	}
	b.CheckAccessible()
	shot(t, b, "devices")

	// An ODK Collect key for the same device, as Collect's settings QR code.
	b.Submit(row + " button.collect")
	server := b.Text("#collect-server")
	if w, _ := b.Eval(`document.querySelector("#collect-qr").naturalWidth`).(float64); w < 100 || !strings.Contains(server, "/v1/key/") {
		t.Errorf("Collect page: QR width %v, server %q", w, server)
	}
	b.CheckAccessible()
	if resp, err := http.Get(server + "/formList"); err != nil || resp.StatusCode != http.StatusOK {
		t.Errorf("the key's formList: %v %v", resp, err)
	} else {
		resp.Body.Close()
	}
	b.Visit("/projects/safety/devices")

	b.Submit(row + " a.revoke")
	b.CheckAccessible()
	b.Submit("#revoke-confirm")
	if got := b.Text(row + " .state"); !strings.Contains(got, "revoked") {
		t.Errorf("device state after revocation: %q", got)
	}
	if _, err := env.Identity.Authenticate(ctx, pair.AccessToken); err == nil {
		t.Error("the revoked tablet's token still works")
	}
	b.Submit("#signout")

	// The admin reads the audit log: many role changes, to page through.
	for i := range 55 {
		env.AddUser(t, fmt.Sprintf("enum%02d", i), password, "safety", domain.RoleEnumerator)
	}
	b.SignIn("admin", consoletest.AdminPassword)
	b.Visit("/audit")
	b.Fill("#audit-type", "device_revoked")
	b.Submit("#audit-apply")
	if got := b.Text("#audit tbody"); !strings.Contains(got, "mia") || strings.Count(got, "device_revoked") != 1 {
		t.Errorf("audit log filtered by device_revoked: %q", got)
	}
	b.CheckAccessible()
	b.Visit("/audit?actor=mia")
	shot(t, b, "audit")
	got := b.Text("#audit tbody")
	for _, typ := range []string{"role_set", "device_created", "device_revoked"} {
		if !strings.Contains(got, typ) {
			t.Errorf("mia's events lack %s: %q", typ, got)
		}
	}
	if strings.Contains(got, "user_created") {
		t.Errorf("mia's events show the admin's: %q", got)
	}
	b.Visit("/audit?type=role_set")
	first, _ := b.Eval(`document.querySelectorAll("#audit tbody tr").length`).(float64)
	b.Submit("#audit-next")
	second, _ := b.Eval(`document.querySelectorAll("#audit tbody tr").length`).(float64)
	if first != 50 || second < 5 || !strings.Contains(b.Path(), "type=role_set") {
		t.Errorf("paging: %v rows then %v at %s", first, second, b.Path())
	}
	b.Visit("/audit?since=yesterday")
	if got := b.Text("#form-error"); !strings.Contains(got, "since") {
		t.Errorf("a bad date: %q", got)
	}
	b.Visit("/")
	shot(t, b, "home")
}

// TestManagerPagesRefuseOthers: an analyst of the project gets the 403
// page for the members page and cannot add a member by posting the form.
func TestManagerPagesRefuseOthers(t *testing.T) {
	env := consoletest.Start(t)
	env.CreateProject(t, "safety", "Safety")
	env.AddUser(t, "ana", password, "safety", domain.RoleAnalyst)
	env.AddUser(t, "omar", password, "", "")
	c := env.SignIn(t, "ana", password)
	resp, body := c.Get("/projects/safety/members")
	if resp.StatusCode != http.StatusForbidden || strings.Contains(body, "members") && strings.Contains(body, `id="members"`) {
		t.Errorf("analyst on the members page: %d", resp.StatusCode)
	}
	resp, _ = c.PostForm("/projects/safety/members", url.Values{"username": {"omar"}, "role": {"manager"}})
	if resp.StatusCode != http.StatusForbidden {
		t.Errorf("analyst adding a member: %d", resp.StatusCode)
	}
	if _, err := env.Store.GetMembership(context.Background(), "safety", "omar"); err == nil {
		t.Error("the analyst's form added a member")
	}
}
