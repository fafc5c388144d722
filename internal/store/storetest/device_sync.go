package storetest

import (
	"context"
	"testing"
	"time"

	"github.com/fieldsync/fieldsync/internal/domain"
)

// deviceSync checks the administration additions: the last sync time of a
// device (TouchDevice, DeviceLastSeen) and signing a user's other sessions out
// (RevokeSubjectFamiliesExcept).
func (s suite) deviceSync(t *testing.T) {
	s.run(t, "TouchDevice", func(t *testing.T, ctx context.Context, st domain.Store) {
		for _, d := range []domain.Device{testDevice("d1", "juba", 0), testDevice("d2", "juba", 1), testDevice("d3", "wau", 2)} {
			noErr(t, st.CreateDevice(ctx, d), "CreateDevice")
		}
		got, err := st.DeviceLastSeen(ctx, "juba")
		noErr(t, err, "DeviceLastSeen before any sync")
		if len(got) != 0 {
			t.Errorf("DeviceLastSeen before any sync = %v, want none", got)
		}
		noErr(t, st.TouchDevice(ctx, "d1", at(10)), "TouchDevice")
		noErr(t, st.TouchDevice(ctx, "d3", at(11)), "TouchDevice")
		// A later touch moves it forward, an earlier one (a slow instance) does not
		// move it back.
		noErr(t, st.TouchDevice(ctx, "d1", at(20)), "TouchDevice later")
		noErr(t, st.TouchDevice(ctx, "d1", at(15)), "TouchDevice earlier")
		got, err = st.DeviceLastSeen(ctx, "juba")
		noErr(t, err, "DeviceLastSeen")
		same(t, "last seen of juba", got, map[string]time.Time{"d1": at(20)})
		isErr(t, st.TouchDevice(ctx, "nope", at(1)), domain.ErrNotFound, "TouchDevice of an unknown device")
		// The other device fields are untouched.
		d, err := st.GetDevice(ctx, "d1")
		noErr(t, err, "GetDevice")
		same(t, "device after touches", d, testDevice("d1", "juba", 0))
	})
	s.run(t, "RevokeSubjectFamiliesExcept", func(t *testing.T, ctx context.Context, st domain.Store) {
		for _, f := range []domain.TokenFamily{
			{ID: "f1", Subject: "amina", CreatedAt: at(0)}, {ID: "f2", Subject: "amina", CreatedAt: at(1)},
			{ID: "f3", Subject: "amina", CreatedAt: at(2)}, {ID: "f4", Subject: "bob", CreatedAt: at(3)},
		} {
			noErr(t, st.CreateTokenFamily(ctx, f), "CreateTokenFamily")
		}
		noErr(t, st.RevokeTokenFamily(ctx, "f3", at(5)), "RevokeTokenFamily")
		n, err := st.RevokeSubjectFamiliesExcept(ctx, "amina", "f2", at(10))
		noErr(t, err, "RevokeSubjectFamiliesExcept")
		if n != 1 {
			t.Errorf("RevokeSubjectFamiliesExcept revoked %d, want 1 (f3 was revoked before)", n)
		}
		want := map[string]*time.Time{"f1": ptr(at(10)), "f2": nil, "f3": ptr(at(5)), "f4": nil}
		for id, w := range want {
			f, err := st.GetTokenFamily(ctx, id)
			noErr(t, err, "GetTokenFamily")
			same(t, "revoked_at of "+id, f.RevokedAt, w)
		}
	})
}
