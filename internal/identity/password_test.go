package identity

import (
	"context"
	"regexp"
	"strings"
	"sync/atomic"
	"testing"

	"github.com/fieldsync/fieldsync/internal/domain"
)

// TestPasswordHashDefaults hashes with the production parameters once. It runs
// on SQLite only: what it checks is argon2id, which the store has no part in,
// and each production-strength hash costs ~20 MiB and tens of milliseconds
// (far more under the race detector).
func TestPasswordHashDefaults(t *testing.T) {
	ctx := context.Background()
	e := newEnv(t, backends[0])
	_, svc := e.instance(func(c *Config) { c.hashParams = nil })
	if svc.params != defaultArgonParams {
		t.Fatalf("params = %+v, want the defaults", svc.params)
	}
	h, err := svc.hashPassword(ctx, "correct horse battery staple")
	wantNoErr(t, err)
	re := regexp.MustCompile(`^\$argon2id\$v=19\$m=19456,t=2,p=1\$[A-Za-z0-9+/]{22}\$[A-Za-z0-9+/]{43}$`)
	if !re.MatchString(h) {
		t.Fatalf("hash %q does not have the PHC form with the default parameters", h)
	}
	for _, tt := range []struct {
		name     string
		password string
		want     bool
	}{
		{name: "right password", password: "correct horse battery staple", want: true},
		{name: "wrong password", password: "correct horse battery stapler"},
		{name: "empty", password: ""},
	} {
		t.Run(tt.name, func(t *testing.T) {
			ok, err := svc.verifyPassword(ctx, tt.password, h)
			wantNoErr(t, err)
			if ok != tt.want {
				t.Fatalf("verify = %v, want %v", ok, tt.want)
			}
		})
	}
}

func TestPasswordHashRoundTrip(t *testing.T) {
	eachStore(t, func(t *testing.T, be backend) {
		ctx := context.Background()
		e := newEnv(t, be)
		h1, err := e.svc.hashPassword(ctx, "same password here")
		wantNoErr(t, err)
		h2, err := e.svc.hashPassword(ctx, "same password here")
		wantNoErr(t, err)
		if h1 == h2 {
			t.Fatal("two hashes of one password are equal: the salt is not random")
		}
		for _, h := range []string{h1, h2} {
			if ok, err := e.svc.verifyPassword(ctx, "same password here", h); err != nil || !ok {
				t.Fatalf("verify(%q) = %v, %v", h, ok, err)
			}
			if ok, _ := e.svc.verifyPassword(ctx, "same password herE", h); ok {
				t.Fatal("a wrong password verified")
			}
		}
	})
}

func TestDecodeHashRejects(t *testing.T) {
	good := "$argon2id$v=19$m=64,t=1,p=1$c2FsdHNhbHRzYWx0c2FsdA$aGFzaGhhc2hoYXNoaGFzaGhhc2hoYXNoaGFzaGhhc2g"
	if _, _, _, err := decodeHash(good); err != nil {
		t.Fatalf("good hash refused: %v", err)
	}
	tests := []struct{ name, hash string }{
		{"empty", ""},
		{"bcrypt", "$2a$10$abcdefghijklmnopqrstuuv3ZlXC6R9N9yZ5Fh7gK8u1qUvGJp0a"},
		{"argon2i", strings.Replace(good, "argon2id", "argon2i", 1)},
		{"other version", strings.Replace(good, "v=19", "v=16", 1)},
		{"huge memory", strings.Replace(good, "m=64", "m=4194304", 1)},
		{"huge time", strings.Replace(good, "t=1", "t=100000", 1)},
		{"zero lanes", strings.Replace(good, "p=1", "p=0", 1)},
		{"unknown param", strings.Replace(good, "p=1", "p=1,x=2", 1)},
		{"bad salt", strings.Replace(good, "c2FsdHNhbHRzYWx0c2FsdA", "!!!", 1)},
		{"short hash", strings.Replace(good, "aGFzaGhhc2hoYXNoaGFzaGhhc2hoYXNoaGFzaGhhc2g", "aGFzaA", 1)},
		{"missing part", "$argon2id$v=19$m=64,t=1,p=1$c2FsdHNhbHRzYWx0c2FsdA"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if _, _, _, err := decodeHash(tt.hash); err == nil {
				t.Fatal("accepted")
			}
		})
	}
}

// TestLoginTimingParity argues timing parity by counting argon2id verifications:
// every failed login, whatever the reason, runs exactly one, as a success does.
// The other costs (one user lookup, one audit write) are the same on every path.
func TestLoginTimingParity(t *testing.T) {
	eachStore(t, func(t *testing.T, be backend) {
		ctx := context.Background()
		e := newEnv(t, be)
		e.user("alice", "", "")
		e.user("dora", "", "")
		wantNoErr(t, e.svc.SetUserDisabled(ctx, e.admin, "dora", true))
		var calls atomic.Int64
		e.svc.onVerify = func() { calls.Add(1) }
		tests := []struct {
			name, username, password string
			wantErr                  bool
		}{
			{name: "success", username: "alice", password: "alice-password-123"},
			{name: "wrong password", username: "alice", password: "not-the-password", wantErr: true},
			{name: "unknown user", username: "mallory", password: "whatever-password", wantErr: true},
			{name: "username that cannot exist", username: "Not A Username!", password: "whatever-password", wantErr: true},
			{name: "disabled user, right password", username: "dora", password: "dora-password-123", wantErr: true},
		}
		for i, tt := range tests {
			t.Run(tt.name, func(t *testing.T) {
				calls.Store(0)
				_, err := e.svc.Login(ctx, tt.username, tt.password, "203.0.113."+string(rune('1'+i)))
				if tt.wantErr {
					wantErr(t, err, domain.KindUnauthorized, "invalid_credentials")
				} else {
					wantNoErr(t, err)
				}
				if n := calls.Load(); n != 1 {
					t.Fatalf("%d argon2id verifications, want 1", n)
				}
			})
		}
		if e.svc.dummyHash == "" || !strings.HasPrefix(e.svc.dummyHash, "$argon2id$") {
			t.Fatalf("dummy hash = %q", e.svc.dummyHash)
		}
	})
}

func TestAddressKey(t *testing.T) {
	for _, tt := range []struct{ in, want string }{
		{"192.0.2.1:1234", "192.0.2.1"},
		{"192.0.2.1", "192.0.2.1"},
		{"[::ffff:192.0.2.1]:80", "192.0.2.1"},
		{"[2001:db8::1]:80", "2001:db8::/64"},
		{"2001:db8:0:0:1::1", "2001:db8::/64"},
		{"[fe80::1%eth0]:80", "fe80::/64"},
		{"", ""},
	} {
		if got := addressKey(tt.in); got != tt.want {
			t.Errorf("addressKey(%q) = %q, want %q", tt.in, got, tt.want)
		}
	}
}

// BenchmarkHashPassword measures the production argon2id parameters.
func BenchmarkHashPassword(b *testing.B) {
	s := &Service{params: defaultArgonParams, hashSem: make(chan struct{}, 1)}
	ctx := context.Background()
	for b.Loop() {
		if _, err := s.hashPassword(ctx, "correct horse battery staple"); err != nil {
			b.Fatal(err)
		}
	}
}
