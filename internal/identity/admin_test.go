package identity

import (
	"context"
	"strconv"
	"testing"
	"time"

	"github.com/fieldsync/fieldsync/internal/domain"
)

// TestLastAdminKeepsFlag: whatever the caller, the last enabled admin keeps
// its flag. A caller that is an admin is itself another admin, so the case
// arises when admins remove each other at once; here the caller is an admin
// principal whose user no longer is one (its token was issued before).
func TestLastAdminKeepsFlag(t *testing.T) {
	eachStore(t, func(t *testing.T, be backend) {
		e := newEnv(t, be)
		ctx := context.Background()
		ghost := domain.Principal{Subject: "ghost", Username: "ghost", Admin: true}
		no := false
		_, err := e.svc.UpdateUser(ctx, ghost, AdminUsername, nil, &no)
		wantErr(t, err, domain.KindConflict, "last_admin")
		u, err := e.store.GetUser(ctx, AdminUsername)
		wantNoErr(t, err)
		if !u.Admin {
			t.Fatal("the last admin lost its flag")
		}
		// A disabled admin does not count: it cannot log in to help.
		e.user("bob", "", "")
		yes := true
		_, err = e.svc.UpdateUser(ctx, e.admin, "bob", nil, &yes)
		wantNoErr(t, err)
		wantNoErr(t, e.svc.SetUserDisabled(ctx, e.admin, "bob", true))
		_, err = e.svc.UpdateUser(ctx, ghost, AdminUsername, nil, &no)
		wantErr(t, err, domain.KindConflict, "last_admin")
	})
}

// TestChangePasswordThrottled: a stolen access token is no way around the
// login throttle to guess the password.
func TestChangePasswordThrottled(t *testing.T) {
	eachStore(t, func(t *testing.T, be backend) {
		e := newEnv(t, be)
		ctx := context.Background()
		pair, bob := e.user("bob", "", "")
		var err error
		for i := 0; i < 20; i++ {
			err = e.svc.ChangePassword(ctx, bob, pair.AccessToken, "guess-number-"+strconv.Itoa(i), "new-password-123", false, "203.0.113.9:4000")
			if de, ok := domain.AsError(err); ok && de.Code == "too_many_attempts" {
				break
			}
			wantErr(t, err, domain.KindInvalid, "wrong_password")
		}
		wantErr(t, err, domain.KindTooManyRequests, "too_many_attempts")
		// A device has no password.
		e.project("juba")
		_, _, dev := e.device("juba")
		wantErr(t, e.svc.ChangePassword(ctx, dev, "", "x", "y", false, ""), domain.KindForbidden, "forbidden")
	})
}

// TestDeviceSyncedThrottle: the store is written once per SyncSeenInterval per
// device, and users are not recorded at all.
func TestDeviceSyncedThrottle(t *testing.T) {
	eachStore(t, func(t *testing.T, be backend) {
		e := newEnv(t, be)
		ctx := context.Background()
		e.project("juba")
		_, d, dev := e.device("juba")
		e.svc.DeviceSynced(ctx, e.admin) // a user: nothing to record
		first := e.clock.Now().UTC().Truncate(time.Millisecond)
		e.svc.DeviceSynced(ctx, dev)
		e.clock.Advance(SyncSeenInterval - time.Second)
		e.svc.DeviceSynced(ctx, dev)
		seen, err := e.store.DeviceLastSeen(ctx, "juba")
		wantNoErr(t, err)
		if got := seen[d.ID]; !got.Equal(first) || len(seen) != 1 {
			t.Fatalf("last seen = %v, want %v only", seen, first)
		}
		e.clock.Advance(time.Second)
		e.svc.DeviceSynced(ctx, dev)
		seen, err = e.store.DeviceLastSeen(ctx, "juba")
		wantNoErr(t, err)
		if got, want := seen[d.ID], first.Add(SyncSeenInterval); !got.Equal(want) {
			t.Fatalf("last seen = %v, want %v", got, want)
		}
	})
}
