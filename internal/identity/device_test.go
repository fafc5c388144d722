package identity

import (
	"context"
	"fmt"
	"regexp"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/fieldsync/fieldsync/internal/domain"
)

func TestEnrollmentCode(t *testing.T) {
	re := regexp.MustCompile(`^[0-9A-HJKMNP-TV-Z]{5}(-[0-9A-HJKMNP-TV-Z]{5}){3}$`)
	seen := map[string]bool{}
	for i := 0; i < 200; i++ {
		c, err := newEnrollmentCode()
		wantNoErr(t, err)
		if !re.MatchString(c) || seen[c] {
			t.Fatalf("code %q: bad form or repeated", c)
		}
		seen[c] = true
	}
	tests := []struct{ name, in, want string }{
		{"display form", "7KQ2M-XR4PD-9VBTC-H3NWA", "7KQ2MXR4PD9VBTCH3NWA"},
		{"lower case, spaces", " 7kq2m xr4pd 9vbtc h3nwa ", "7KQ2MXR4PD9VBTCH3NWA"},
		{"confusables", "OIL00-00000-00000-00000", "01100000000000000000"},
		{"U is not a symbol", "UKQ2M-XR4PD-9VBTC-H3NWA", ""},
		{"too short", "7KQ2M-XR4PD-9VBTC-H3NW", ""},
		{"too long", "7KQ2M-XR4PD-9VBTC-H3NWAA", ""},
		{"non-ASCII", "7KQ2M-XR4PD-9VBTC-H3NWÄ", ""},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if got := canonicalCode(tt.in); got != tt.want {
				t.Fatalf("canonicalCode(%q) = %q, want %q", tt.in, got, tt.want)
			}
		})
	}
}

func TestEnroll(t *testing.T) {
	eachStore(t, func(t *testing.T, be backend) {
		ctx := context.Background()
		e := newEnv(t, be)
		e.project("p1")
		e.project("p2")
		_, mgr := e.user("mgr", "p1", domain.RoleManager)
		_, ana := e.user("ana", "p1", domain.RoleAnalyst)

		t.Run("create device authorization", func(t *testing.T) {
			tests := []struct {
				name, project, devName string
				actor                  domain.Principal
				kind                   domain.Kind
				code                   string
			}{
				{name: "manager", project: "p1", devName: "Tablet 1", actor: mgr},
				{name: "admin", project: "p2", devName: "Tablet 2", actor: e.admin},
				{name: "analyst", project: "p1", devName: "Tablet 3", actor: ana, kind: domain.KindForbidden, code: "forbidden"},
				{name: "other project", project: "p2", devName: "Tablet 3", actor: mgr, kind: domain.KindNotFound, code: "project_not_found"},
				{name: "empty name", project: "p1", devName: "", actor: mgr, kind: domain.KindInvalid, code: "invalid_device_name"},
			}
			for _, tt := range tests {
				t.Run(tt.name, func(t *testing.T) {
					d, code, err := e.svc.CreateDevice(ctx, tt.actor, tt.project, tt.devName)
					if tt.code != "" {
						wantErr(t, err, tt.kind, tt.code)
						return
					}
					wantNoErr(t, err)
					if code == "" || d.EnrollmentHash != "" || !d.EnrollmentExpiresAt.Equal(e.clock.Now().Add(DefaultEnrollmentTTL)) {
						t.Fatalf("device = %+v", d)
					}
					stored, err := e.store.GetDevice(ctx, d.ID)
					wantNoErr(t, err)
					if stored.EnrollmentHash != hashSecret(canonicalCode(code)) || strings.Contains(fmt.Sprint(stored), code) {
						t.Fatal("the code is not stored as its hash")
					}
				})
			}
		})

		t.Run("single use", func(t *testing.T) {
			d, code, err := e.svc.CreateDevice(ctx, mgr, "p1", "Tablet 4")
			wantNoErr(t, err)
			// A bad device_info is refused before the code is used up.
			big := map[string]string{}
			for i := 0; i < 40; i++ {
				big[fmt.Sprint(i)] = "x"
			}
			_, _, err = e.svc.Enroll(ctx, code, big, "")
			wantErr(t, err, domain.KindInvalid, "invalid_device_info")

			// Typed in lower case without dashes: still the code.
			pair, got, err := e.svc.Enroll(ctx, strings.ToLower(strings.ReplaceAll(code, "-", "")), map[string]string{"model": "X"}, "198.51.100.1")
			wantNoErr(t, err)
			if got.ID != d.ID || got.EnrolledAt == nil || got.Info["model"] != "X" {
				t.Fatalf("enrolled device = %+v", got)
			}
			p, err := e.svc.Authenticate(ctx, pair.AccessToken)
			wantNoErr(t, err)
			if !p.IsDevice() || p.DeviceID != d.ID || p.DeviceProject != "p1" || p.Subject != "device:"+d.ID || p.Admin {
				t.Fatalf("principal = %+v", p)
			}
			if role, ok, _ := e.svc.RoleIn(ctx, p, "p1"); role != domain.RoleEnumerator || !ok {
				t.Fatalf("RoleIn = %q %v", role, ok)
			}
			_, _, err = e.svc.Enroll(ctx, code, nil, "198.51.100.1")
			wantErr(t, err, domain.KindUnauthorized, "invalid_enrollment_code")
		})

		t.Run("concurrent use: one winner", func(t *testing.T) {
			_, code, err := e.svc.CreateDevice(ctx, mgr, "p1", "Tablet 5")
			wantNoErr(t, err)
			_, b := e.instance()
			var wg sync.WaitGroup
			errs := make([]error, 6)
			for i := range errs {
				svc := e.svc
				if i%2 == 1 {
					svc = b
				}
				wg.Go(func() { _, _, errs[i] = svc.Enroll(ctx, code, nil, "") })
			}
			wg.Wait()
			wins := 0
			for _, err := range errs {
				if err == nil {
					wins++
				} else {
					wantErr(t, err, domain.KindUnauthorized, "invalid_enrollment_code")
				}
			}
			if wins != 1 {
				t.Fatalf("%d enrollments won, want 1", wins)
			}
		})

		t.Run("same answer for unknown, used, expired, revoked", func(t *testing.T) {
			_, expired, err := e.svc.CreateDevice(ctx, mgr, "p1", "Tablet 6")
			wantNoErr(t, err)
			d7, revoked, err := e.svc.CreateDevice(ctx, mgr, "p1", "Tablet 7")
			wantNoErr(t, err)
			wantNoErr(t, e.svc.RevokeDevice(ctx, mgr, "p1", d7.ID))
			e.clock.Advance(DefaultEnrollmentTTL)
			_, used, err := e.svc.CreateDevice(ctx, mgr, "p1", "Tablet 8")
			wantNoErr(t, err)
			_, _, err = e.svc.Enroll(ctx, used, nil, "")
			wantNoErr(t, err)
			for name, code := range map[string]string{
				"unknown": "00000-00000-00000-00000", "garbage": "hello", "used": used, "expired": expired, "revoked": revoked,
			} {
				t.Run(name, func(t *testing.T) {
					_, _, err := e.svc.Enroll(ctx, code, nil, "")
					de := wantErr(t, err, domain.KindUnauthorized, "invalid_enrollment_code")
					if strings.Contains(de.Error(), code) {
						t.Fatal("the error text holds the code")
					}
				})
			}
		})
	})
}

// TestDeviceRefreshSlides: a device that refreshes at least every
// DeviceRefreshTTL never has to re-enroll; one that stays away longer does.
func TestDeviceRefreshSlides(t *testing.T) {
	eachStore(t, func(t *testing.T, be backend) {
		ctx := context.Background()
		e := newEnv(t, be)
		e.project("p1")
		pair, d, _ := e.device("p1")
		var err error
		for i := 0; i < 3; i++ {
			e.clock.Advance(100 * 24 * time.Hour) // months offline; 300 days in all > 180
			pair, err = e.svc.Refresh(ctx, pair.RefreshToken, "")
			wantNoErr(t, err)
			p, err := e.svc.Authenticate(ctx, pair.AccessToken)
			wantNoErr(t, err)
			if p.DeviceID != d.ID {
				t.Fatalf("principal = %+v", p)
			}
		}
		e.clock.Advance(DefaultDeviceRefreshTTL + time.Second)
		_, err = e.svc.Refresh(ctx, pair.RefreshToken, "")
		wantErr(t, err, domain.KindUnauthorized, "invalid_grant")
	})
}

func TestRevokeDevice(t *testing.T) {
	eachStore(t, func(t *testing.T, be backend) {
		ctx := context.Background()
		e := newEnv(t, be)
		e.project("p1")
		e.project("p2")
		_, mgr := e.user("mgr", "p1", domain.RoleManager)
		pair, d, _ := e.device("p1")
		_, d2, _ := e.device("p2")

		tests := []struct {
			name, project, device string
			actor                 domain.Principal
			kind                  domain.Kind
			code                  string
		}{
			{name: "device of another project", project: "p1", device: d2.ID, actor: mgr, kind: domain.KindNotFound, code: "device_not_found"},
			{name: "unknown device", project: "p1", device: "nope", actor: mgr, kind: domain.KindNotFound, code: "device_not_found"},
			{name: "project not visible", project: "p2", device: d2.ID, actor: mgr, kind: domain.KindNotFound, code: "project_not_found"},
			{name: "ok", project: "p1", device: d.ID, actor: mgr},
			{name: "again", project: "p1", device: d.ID, actor: mgr},
		}
		for _, tt := range tests {
			t.Run(tt.name, func(t *testing.T) {
				err := e.svc.RevokeDevice(ctx, tt.actor, tt.project, tt.device)
				if tt.code != "" {
					wantErr(t, err, tt.kind, tt.code)
					return
				}
				wantNoErr(t, err)
			})
		}
		_, err := e.svc.Authenticate(ctx, pair.AccessToken)
		wantErr(t, err, domain.KindUnauthorized, "invalid_token")
		_, err = e.svc.Refresh(ctx, pair.RefreshToken, "")
		wantErr(t, err, domain.KindUnauthorized, "invalid_grant")
		if ev := e.audits(domain.AuditFilter{Type: AuditDeviceRevoked, ProjectID: "p1"}); len(ev) != 1 || ev[0].Actor != "mgr" {
			t.Fatalf("device_revoked events = %+v", ev)
		}
		ev := e.audits(domain.AuditFilter{Type: AuditFamilyRevoked, ProjectID: "p1"})
		if len(ev) != 1 || ev[0].Detail["reason"] != "device_revoked" || ev[0].Subject != "device:"+d.ID {
			t.Fatalf("family_revoked events = %+v", ev)
		}
	})
}
