package identity

import (
	"context"
	"fmt"
	"go/ast"
	"go/parser"
	"go/token"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/fieldsync/fieldsync/internal/domain"
)

// TestAuditTrail runs a small day of security events, then checks they are
// recorded, filterable and pageable, and that no secret reached the audit log or
// the service log.
func TestAuditTrail(t *testing.T) {
	eachStore(t, func(t *testing.T, be backend) {
		ctx := context.Background()
		e := newEnv(t, be)
		start := e.clock.Now()
		var secrets []string
		e.project("p1")
		pair, alice := e.user("alice", "p1", domain.RoleManager)
		secrets = append(secrets, "alice-password-123", pair.AccessToken, pair.RefreshToken, adminPassword)

		// Failed logins, one with a password typed into the username field.
		const typedPassword = "my-secret-typed-as-username"
		for _, tt := range []struct{ user, pw string }{{"alice", "wrong-guess-1"}, {typedPassword, "x"}, {"ghost", "guess-guess-2"}} {
			_, err := e.svc.Login(ctx, tt.user, tt.pw, "203.0.113.9")
			wantErr(t, err, domain.KindUnauthorized, "invalid_credentials")
			secrets = append(secrets, tt.pw)
		}
		secrets = append(secrets, typedPassword)
		e.clock.Advance(time.Minute)

		d, code, err := e.svc.CreateDevice(ctx, alice, "p1", "Tablet A")
		wantNoErr(t, err)
		secrets = append(secrets, code, canonicalCode(code))
		dpair, _, err := e.svc.Enroll(ctx, code, map[string]string{"app": "1.2"}, "198.51.100.3")
		wantNoErr(t, err)
		secrets = append(secrets, dpair.AccessToken, dpair.RefreshToken)
		_, _, err = e.svc.Enroll(ctx, code, nil, "198.51.100.3") // used
		wantErr(t, err, domain.KindUnauthorized, "invalid_enrollment_code")
		// The tablet loses the answer of a refresh and retries: a grace reuse.
		lost, err := e.svc.Refresh(ctx, dpair.RefreshToken, "198.51.100.3")
		wantNoErr(t, err)
		dnext, err := e.svc.Refresh(ctx, dpair.RefreshToken, "198.51.100.3")
		wantNoErr(t, err)
		secrets = append(secrets, lost.AccessToken, lost.RefreshToken, dnext.AccessToken, dnext.RefreshToken)
		next, err := e.svc.Refresh(ctx, pair.RefreshToken, "")
		wantNoErr(t, err)
		secrets = append(secrets, next.AccessToken, next.RefreshToken)
		// next is used, so pair coming back is no lost answer: a replay.
		next, err = e.svc.Refresh(ctx, next.RefreshToken, "")
		wantNoErr(t, err)
		secrets = append(secrets, next.AccessToken, next.RefreshToken)
		e.clock.Advance(time.Second)
		_, err = e.svc.Refresh(ctx, pair.RefreshToken, "203.0.113.66") // replay
		wantErr(t, err, domain.KindUnauthorized, "invalid_grant")
		wantNoErr(t, e.svc.RevokeDevice(ctx, alice, "p1", d.ID))
		_, err = e.svc.RotateKeys(ctx)
		wantNoErr(t, err)

		all := e.audits(domain.AuditFilter{})
		counts := map[string]int{}
		for _, ev := range all {
			counts[ev.Type]++
			blob := fmt.Sprintf("%+v", ev)
			for _, s := range secrets {
				if strings.Contains(blob, s) {
					t.Fatalf("audit event %s holds a secret: %s", ev.Type, blob)
				}
			}
			if ev.Time.Before(start) {
				t.Fatalf("event %s dated %v, before the test began", ev.Type, ev.Time)
			}
		}
		want := map[string]int{
			AuditAdminBootstrap: 1, AuditLogin: 2, AuditLoginFailed: 3, AuditProjectCreated: 1, AuditUserCreated: 1,
			AuditRoleSet: 1, AuditDeviceCreated: 1, AuditDeviceEnrolled: 1, AuditEnrollFailed: 1,
			AuditFamilyRevoked: 2, AuditDeviceRevoked: 1, AuditKeysRotated: 1, AuditRefreshReused: 1,
		}
		for typ, n := range want {
			if counts[typ] != n {
				t.Errorf("%d %s events, want %d (all: %v)", counts[typ], typ, n, counts)
			}
		}

		tests := []struct {
			name   string
			filter domain.AuditFilter
			check  func(t *testing.T, ev []domain.AuditEvent)
		}{
			{name: "by type", filter: domain.AuditFilter{Type: AuditLoginFailed}, check: func(t *testing.T, ev []domain.AuditEvent) {
				reasons := map[string]string{}
				for _, x := range ev {
					reasons[x.Detail["reason"]] = x.Subject
					if x.RemoteAddr != "203.0.113.9" {
						t.Errorf("remote address %q", x.RemoteAddr)
					}
				}
				// The known user is named; unknown names are not recorded at all.
				if len(ev) != 3 || reasons["bad_password"] != "alice" || reasons["unknown_user"] != "" {
					t.Fatalf("login_failed events = %+v", ev)
				}
			}},
			{name: "by project", filter: domain.AuditFilter{ProjectID: "p1"}, check: func(t *testing.T, ev []domain.AuditEvent) {
				for _, x := range ev {
					if x.ProjectID != "p1" {
						t.Fatalf("event of project %q", x.ProjectID)
					}
				}
				if len(ev) != 7 { // project_created, role_set, device_created, device_enrolled, refresh_reused, device_revoked, family_revoked
					t.Fatalf("%d events of p1: %+v", len(ev), ev)
				}
			}},
			{name: "by actor", filter: domain.AuditFilter{Actor: "alice"}, check: func(t *testing.T, ev []domain.AuditEvent) {
				if len(ev) != 4 { // login, device_created, device_revoked, family_revoked(device)
					t.Fatalf("%d events by alice: %+v", len(ev), ev)
				}
			}},
			{name: "by time", filter: domain.AuditFilter{Since: start.Add(time.Minute)}, check: func(t *testing.T, ev []domain.AuditEvent) {
				for _, x := range ev {
					if x.Time.Before(start.Add(time.Minute)) {
						t.Fatalf("event at %v", x.Time)
					}
				}
				if len(ev) == 0 || len(ev) == len(all) {
					t.Fatalf("%d events since +1m of %d", len(ev), len(all))
				}
			}},
			{name: "replay", filter: domain.AuditFilter{Type: AuditFamilyRevoked, Actor: ""}, check: func(t *testing.T, ev []domain.AuditEvent) {
				reasons := map[string]bool{}
				for _, x := range ev {
					reasons[x.Detail["reason"]] = true
				}
				if !reasons["replay"] || !reasons["device_revoked"] {
					t.Fatalf("family_revoked reasons = %v", reasons)
				}
			}},
		}
		for _, tt := range tests {
			t.Run(tt.name, func(t *testing.T) { tt.check(t, e.audits(tt.filter)) })
		}

		t.Run("paging newest first", func(t *testing.T) {
			var paged []domain.AuditEvent
			cursor := ""
			for {
				page, next, err := e.svc.ListAudit(ctx, e.admin, domain.AuditFilter{}, cursor, 3)
				wantNoErr(t, err)
				if len(page) > 3 {
					t.Fatalf("page of %d", len(page))
				}
				paged = append(paged, page...)
				if next == "" {
					break
				}
				cursor = next
			}
			if len(paged) != len(all) {
				t.Fatalf("paged %d events, listed %d", len(paged), len(all))
			}
			for i := 1; i < len(paged); i++ {
				if paged[i].ID >= paged[i-1].ID {
					t.Fatalf("not newest first at %d: %s then %s", i, paged[i-1].ID, paged[i].ID)
				}
			}
		})

		t.Run("admins only", func(t *testing.T) {
			_, _, err := e.svc.ListAudit(ctx, alice, domain.AuditFilter{}, "", 10)
			wantErr(t, err, domain.KindForbidden, "forbidden")
		})

		t.Run("no secret in the log", func(t *testing.T) {
			logs := e.logs.String()
			if !strings.Contains(logs, "refresh token replayed") {
				t.Fatalf("the replay was not logged: %s", logs)
			}
			for _, s := range secrets {
				if strings.Contains(logs, s) {
					t.Fatalf("the log holds a secret (%d chars)", len(s))
				}
			}
		})
	})
}

// TestAuditUnknownType: a type no event has is refused with the list of the
// types, instead of an empty list that reads as "it never happened".
func TestAuditUnknownType(t *testing.T) {
	eachStore(t, func(t *testing.T, be backend) {
		e := newEnv(t, be)
		_, _, err := e.svc.ListAudit(context.Background(), e.admin, domain.AuditFilter{Type: "logins"}, "", 10)
		wantErr(t, err, domain.KindBadRequest, "invalid_type")
		if !strings.Contains(err.Error(), "login_failed") {
			t.Errorf("the refusal does not list the types: %v", err)
		}
		for _, typ := range AuditTypes {
			if _, _, err := e.svc.ListAudit(context.Background(), e.admin, domain.AuditFilter{Type: typ}, "", 10); err != nil {
				t.Errorf("type %s: %v", typ, err)
			}
		}
	})
}

// TestAuditTypesComplete: every Audit* constant of the package is a listed
// type, so a new event type cannot be written yet refused as a filter.
func TestAuditTypesComplete(t *testing.T) {
	fset := token.NewFileSet()
	files, err := filepath.Glob("*.go")
	if err != nil {
		t.Fatal(err)
	}
	for _, name := range files {
		if strings.HasSuffix(name, "_test.go") {
			continue
		}
		f, err := parser.ParseFile(fset, name, nil, 0)
		if err != nil {
			t.Fatal(err)
		}
		for _, d := range f.Decls {
			g, ok := d.(*ast.GenDecl)
			if !ok || g.Tok != token.CONST {
				continue
			}
			for _, spec := range g.Specs {
				vs := spec.(*ast.ValueSpec)
				for i, id := range vs.Names {
					lit, ok := valueAt(vs, i).(*ast.BasicLit)
					if !strings.HasPrefix(id.Name, "Audit") || !ok || lit.Kind != token.STRING {
						continue
					}
					if typ, _ := strconv.Unquote(lit.Value); !slices.Contains(AuditTypes, typ) {
						t.Errorf("%s (%s) is not in AuditTypes", id.Name, typ)
					}
				}
			}
		}
	}
}

func valueAt(vs *ast.ValueSpec, i int) ast.Expr {
	if i < len(vs.Values) {
		return vs.Values[i]
	}
	return nil
}
