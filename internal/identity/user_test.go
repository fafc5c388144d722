package identity

import (
	"context"
	"strings"
	"sync"
	"testing"

	"github.com/fieldsync/fieldsync/internal/domain"
)

func TestBootstrap(t *testing.T) {
	eachStore(t, func(t *testing.T, be backend) {
		ctx := context.Background()
		tests := []struct {
			name          string
			password      string
			wantGenerated bool
			wantCode      string
		}{
			{name: "given password", password: "a-good-admin-password"},
			{name: "generated password", password: "", wantGenerated: true},
			{name: "weak given password", password: "short", wantCode: "weak_password"},
		}
		for _, tt := range tests {
			t.Run(tt.name, func(t *testing.T) {
				e := bareEnv(t, be)
				st, svc := e.instance()
				gen, err := svc.Bootstrap(ctx, tt.password)
				if tt.wantCode != "" {
					wantErr(t, err, domain.KindInvalid, tt.wantCode)
					if _, err := st.GetSetting(ctx, BootstrapSetting); err == nil {
						t.Fatal("a refused bootstrap set the marker")
					}
					return
				}
				wantNoErr(t, err)
				if (gen != "") != tt.wantGenerated {
					t.Fatalf("generated password = %q, want generated %v", gen, tt.wantGenerated)
				}
				pw := tt.password
				if tt.wantGenerated {
					pw = gen
					if err := checkPassword(gen, AdminUsername); err != nil {
						t.Fatalf("generated password fails the policy: %v", err)
					}
				}
				_, p := e.login(svc, "admin", pw)
				if !p.Admin || p.Username != "admin" {
					t.Fatalf("principal = %+v, want admin", p)
				}
				if strings.Contains(e.logs.String(), pw) {
					t.Fatal("the admin password reached the log")
				}

				// Never again: not on a second call, not after admin is disabled.
				again, err := svc.Bootstrap(ctx, "another-admin-password")
				if err != nil || again != "" {
					t.Fatalf("second Bootstrap = %q, %v; want \"\", nil", again, err)
				}
				u, err := st.GetUser(ctx, "admin")
				wantNoErr(t, err)
				u.Disabled = true
				wantNoErr(t, st.UpdateUser(ctx, u))
				again, err = svc.Bootstrap(ctx, "")
				if err != nil || again != "" {
					t.Fatalf("Bootstrap after disabling admin = %q, %v; want \"\", nil", again, err)
				}
				if u, _ := st.GetUser(ctx, "admin"); !u.Disabled {
					t.Fatal("Bootstrap re-enabled or re-created admin")
				}
			})
		}
	})
}

// TestBootstrapConcurrent starts several instances on one database at once:
// exactly one creates admin and hands out a password.
func TestBootstrapConcurrent(t *testing.T) {
	eachStore(t, func(t *testing.T, be backend) {
		ctx := context.Background()
		e := bareEnv(t, be)
		const instances = 4
		svcs := make([]*Service, instances)
		stores := make([]domain.Store, instances)
		for i := range svcs {
			stores[i], svcs[i] = e.instance()
		}
		var wg sync.WaitGroup
		passwords := make([]string, instances)
		errs := make([]error, instances)
		for i, svc := range svcs {
			wg.Go(func() { passwords[i], errs[i] = svc.Bootstrap(ctx, "") })
		}
		wg.Wait()
		var got []string
		for i := range svcs {
			wantNoErr(t, errs[i])
			if passwords[i] != "" {
				got = append(got, passwords[i])
			}
		}
		if len(got) != 1 {
			t.Fatalf("%d instances returned a generated password, want exactly 1", len(got))
		}
		users, err := stores[0].ListUsers(ctx)
		wantNoErr(t, err)
		if len(users) != 1 || users[0].Username != "admin" || !users[0].Admin {
			t.Fatalf("users = %+v, want exactly one admin", users)
		}
		e.login(svcs[3], "admin", got[0])
		events, _, err := stores[0].ListAudit(ctx, domain.AuditFilter{Type: AuditAdminBootstrap}, "", 10)
		wantNoErr(t, err)
		if len(events) != 1 {
			t.Fatalf("%d bootstrap audit events, want 1", len(events))
		}
	})
}

func TestCreateUser(t *testing.T) {
	eachStore(t, func(t *testing.T, be backend) {
		ctx := context.Background()
		e := newEnv(t, be)
		e.project("p1")
		_, member := e.user("manager1", "p1", domain.RoleManager)
		_, _, dev := e.device("p1")
		tests := []struct {
			name        string
			actor       domain.Principal
			username    string
			password    string
			displayName string
			kind        domain.Kind
			code        string
		}{
			{name: "ok", actor: e.admin, username: "amina.k", password: "long enough password", displayName: "Amina K."},
			{name: "exists", actor: e.admin, username: "amina.k", password: "long enough password", kind: domain.KindConflict, code: "user_exists"},
			{name: "not admin", actor: member, username: "bob", password: "long enough password", kind: domain.KindForbidden, code: "forbidden"},
			{name: "device", actor: dev, username: "bob", password: "long enough password", kind: domain.KindForbidden, code: "forbidden"},
			{name: "upper case", actor: e.admin, username: "Bob", password: "long enough password", kind: domain.KindInvalid, code: "invalid_username"},
			{name: "one char", actor: e.admin, username: "b", password: "long enough password", kind: domain.KindInvalid, code: "invalid_username"},
			{name: "leading dot", actor: e.admin, username: ".bob", password: "long enough password", kind: domain.KindInvalid, code: "invalid_username"},
			{name: "colon", actor: e.admin, username: "device:x", password: "long enough password", kind: domain.KindInvalid, code: "invalid_username"},
			{name: "65 chars", actor: e.admin, username: strings.Repeat("b", 65), password: "long enough password", kind: domain.KindInvalid, code: "invalid_username"},
			{name: "64 chars", actor: e.admin, username: strings.Repeat("b", 64), password: "long enough password"},
			{name: "short password", actor: e.admin, username: "carol", password: "123456789", kind: domain.KindInvalid, code: "weak_password"},
			{name: "control char in name", actor: e.admin, username: "carol", password: "long enough password", displayName: "a\x00b", kind: domain.KindInvalid, code: "invalid_display_name"},
		}
		for _, tt := range tests {
			t.Run(tt.name, func(t *testing.T) {
				u, err := e.svc.CreateUser(ctx, tt.actor, tt.username, tt.password, tt.displayName)
				if tt.code != "" {
					wantErr(t, err, tt.kind, tt.code)
					return
				}
				wantNoErr(t, err)
				if u.PasswordHash != "" || u.Admin {
					t.Fatalf("CreateUser returned %+v, want no hash and no admin", u)
				}
				e.login(e.svc, tt.username, tt.password)
			})
		}
		// manager1 (the helper) and the two "ok" rows.
		if ev := e.audits(domain.AuditFilter{Type: AuditUserCreated, Actor: "admin"}); len(ev) != 3 {
			t.Fatalf("%d user_created events, want 3", len(ev))
		}
	})
}

func TestPasswordPolicy(t *testing.T) {
	tests := []struct {
		name     string
		password string
		username string
		ok       bool
	}{
		{name: "10 characters", password: "abcdefghij", ok: true},
		{name: "9 characters", password: "abcdefghi"},
		{name: "9 multibyte runes (18 bytes)", password: "ééééééééé"},
		{name: "10 multibyte runes", password: "éééééééééé", ok: true},
		{name: "1024 characters", password: strings.Repeat("x", 1024), ok: true},
		{name: "1025 characters", password: strings.Repeat("x", 1025)},
		{name: "the username", password: "longusername", username: "LongUserName"},
		{name: "only spaces", password: strings.Repeat(" ", 12)},
		{name: "invalid UTF-8", password: "abcdefghij\xff"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			err := checkPassword(tt.password, tt.username)
			if tt.ok {
				wantNoErr(t, err)
				return
			}
			de := wantErr(t, err, domain.KindInvalid, "weak_password")
			if len(de.Findings) != 1 || de.Findings[0].Path != "/password" {
				t.Fatalf("findings = %+v", de.Findings)
			}
			if strings.TrimSpace(tt.password) != "" && strings.Contains(de.Error(), tt.password) {
				t.Fatal("the error text holds the password")
			}
		})
	}
}

func TestUserRevokeAndDisable(t *testing.T) {
	eachStore(t, func(t *testing.T, be backend) {
		ctx := context.Background()
		e := newEnv(t, be)
		pair, alice := e.user("alice", "", "")
		_, bob := e.user("bob", "", "")

		// A user may sign itself out everywhere, not someone else.
		wantErr(t, e.svc.RevokeUser(ctx, bob, "alice"), domain.KindForbidden, "forbidden")
		wantErr(t, e.svc.RevokeUser(ctx, e.admin, "nobody"), domain.KindNotFound, "user_not_found")
		wantNoErr(t, e.svc.RevokeUser(ctx, alice, "alice"))
		_, err := e.svc.Authenticate(ctx, pair.AccessToken)
		wantErr(t, err, domain.KindUnauthorized, "invalid_token")
		_, err = e.svc.Refresh(ctx, pair.RefreshToken, "")
		wantErr(t, err, domain.KindUnauthorized, "invalid_grant")
		// Logging in again at the same instant works: the new token is dated past the
		// revocation, and the new session can be refreshed.
		again, _ := e.login(e.svc, "alice", "alice-password-123")
		_, err = e.svc.Refresh(ctx, again.RefreshToken, "")
		wantNoErr(t, err)

		// Disabling: no login, no refresh, no access; re-enabling allows a new login.
		pair, _ = e.login(e.svc, "bob", "bob-password-123")
		wantErr(t, e.svc.SetUserDisabled(ctx, bob, "alice", true), domain.KindForbidden, "forbidden")
		wantErr(t, e.svc.SetUserDisabled(ctx, e.admin, "admin", true), domain.KindInvalid, "cannot_disable_self")
		wantNoErr(t, e.svc.SetUserDisabled(ctx, e.admin, "bob", true))
		_, err = e.svc.Authenticate(ctx, pair.AccessToken)
		wantErr(t, err, domain.KindUnauthorized, "invalid_token")
		_, err = e.svc.Login(ctx, "bob", "bob-password-123", "")
		wantErr(t, err, domain.KindUnauthorized, "invalid_credentials")
		wantNoErr(t, e.svc.SetUserDisabled(ctx, e.admin, "bob", false))
		_, err = e.svc.Refresh(ctx, pair.RefreshToken, "")
		wantErr(t, err, domain.KindUnauthorized, "invalid_grant") // the old session stays dead
		e.login(e.svc, "bob", "bob-password-123")

		ev := e.audits(domain.AuditFilter{Type: AuditFamilyRevoked})
		reasons := map[string]bool{}
		for _, x := range ev {
			reasons[x.Detail["reason"]] = true
		}
		if !reasons["user_revoked"] || !reasons["user_disabled"] {
			t.Fatalf("family_revoked reasons = %v", reasons)
		}
	})
}

func TestProjectsAndMembers(t *testing.T) {
	eachStore(t, func(t *testing.T, be backend) {
		ctx := context.Background()
		e := newEnv(t, be)
		e.project("p1")
		e.project("p2")
		_, mgr := e.user("mgr", "p1", domain.RoleManager)
		_, analyst := e.user("ana", "p1", domain.RoleAnalyst)
		_, outsider := e.user("out", "p2", domain.RoleEnumerator)
		_, _, dev := e.device("p1")

		t.Run("create project", func(t *testing.T) {
			tests := []struct {
				name, id, title string
				actor           domain.Principal
				kind            domain.Kind
				code            string
			}{
				{name: "ok", id: "p-3_x", title: "Three", actor: e.admin},
				{name: "exists", id: "p1", title: "Again", actor: e.admin, kind: domain.KindConflict, code: "project_exists"},
				{name: "manager is not admin", id: "p4", title: "Four", actor: mgr, kind: domain.KindForbidden, code: "forbidden"},
				{name: "bad id", id: "P4", title: "Four", actor: e.admin, kind: domain.KindInvalid, code: "invalid_project_id"},
				{name: "id with dot", id: "p.4", title: "Four", actor: e.admin, kind: domain.KindInvalid, code: "invalid_project_id"},
				{name: "empty title", id: "p4", title: " ", actor: e.admin, kind: domain.KindInvalid, code: "invalid_title"},
			}
			for _, tt := range tests {
				t.Run(tt.name, func(t *testing.T) {
					_, err := e.svc.CreateProject(ctx, tt.actor, tt.id, tt.title)
					if tt.code == "" {
						wantNoErr(t, err)
						return
					}
					wantErr(t, err, tt.kind, tt.code)
				})
			}
		})

		t.Run("set member", func(t *testing.T) {
			tests := []struct {
				name, project, username string
				role                    domain.Role
				actor                   domain.Principal
				kind                    domain.Kind
				code                    string
			}{
				{name: "manager sets a role", project: "p1", username: "out", role: domain.RoleDesigner, actor: mgr},
				{name: "admin sets a role", project: "p2", username: "ana", role: domain.RoleAnalyst, actor: e.admin},
				{name: "invalid role", project: "p1", username: "out", role: "owner", actor: mgr, kind: domain.KindInvalid, code: "invalid_role"},
				{name: "unknown user", project: "p1", username: "ghost", role: domain.RoleAnalyst, actor: mgr, kind: domain.KindNotFound, code: "user_not_found"},
				{name: "analyst is not manager", project: "p1", username: "out", role: domain.RoleAnalyst, actor: analyst, kind: domain.KindForbidden, code: "forbidden"},
				{name: "project invisible to actor", project: "p2", username: "ana", role: domain.RoleAnalyst, actor: mgr, kind: domain.KindNotFound, code: "project_not_found"},
				{name: "unknown project", project: "nope", username: "ana", role: domain.RoleAnalyst, actor: e.admin, kind: domain.KindNotFound, code: "project_not_found"},
				{name: "device", project: "p1", username: "out", role: domain.RoleAnalyst, actor: dev, kind: domain.KindForbidden, code: "forbidden"},
			}
			for _, tt := range tests {
				t.Run(tt.name, func(t *testing.T) {
					m, err := e.svc.SetMember(ctx, tt.actor, tt.project, tt.username, tt.role)
					if tt.code != "" {
						wantErr(t, err, tt.kind, tt.code)
						return
					}
					wantNoErr(t, err)
					if m.Role != tt.role {
						t.Fatalf("membership = %+v", m)
					}
				})
			}
		})

		t.Run("list and role", func(t *testing.T) {
			ids := func(p domain.Principal) string {
				ps, err := e.svc.ListProjects(ctx, p)
				wantNoErr(t, err)
				var out []string
				for _, x := range ps {
					out = append(out, x.ID)
				}
				return strings.Join(out, ",")
			}
			for _, tt := range []struct {
				name  string
				p     domain.Principal
				want  string
				role  domain.Role
				found bool
			}{
				{name: "admin", p: e.admin, want: "p-3_x,p1,p2", role: domain.RoleManager, found: true},
				{name: "manager", p: mgr, want: "p1", role: domain.RoleManager, found: true},
				{name: "member of both", p: outsider, want: "p1,p2", role: domain.RoleDesigner, found: true},
				{name: "analyst", p: analyst, want: "p1,p2", role: domain.RoleAnalyst, found: true},
				{name: "device", p: dev, want: "p1", role: domain.RoleEnumerator, found: true},
			} {
				t.Run(tt.name, func(t *testing.T) {
					if got := ids(tt.p); got != tt.want {
						t.Fatalf("ListProjects = %s, want %s", got, tt.want)
					}
					role, ok, err := e.svc.RoleIn(ctx, tt.p, "p1")
					wantNoErr(t, err)
					if role != tt.role || ok != tt.found {
						t.Fatalf("RoleIn(p1) = %q %v, want %q %v", role, ok, tt.role, tt.found)
					}
				})
			}
			if _, ok, _ := e.svc.RoleIn(ctx, dev, "p2"); ok {
				t.Fatal("a device has a role in another project")
			}
			if _, ok, _ := e.svc.RoleIn(ctx, e.admin, "nope"); ok {
				t.Fatal("admin has a role in a project that does not exist")
			}
		})
	})
}
