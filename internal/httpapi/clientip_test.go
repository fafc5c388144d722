package httpapi

import (
	"net/http"
	"net/http/httptest"
	"net/netip"
	"strings"
	"testing"

	"github.com/fieldsync/fieldsync/api"
	"github.com/fieldsync/fieldsync/internal/identity"
)

func TestParseTrustedProxies(t *testing.T) {
	got, err := ParseTrustedProxies(" 10.0.0.0/8, 192.0.2.7 ,,2001:db8::/32, ::ffff:198.51.100.0/120, 2001:db8::1")
	if err != nil {
		t.Fatal(err)
	}
	want := []string{"10.0.0.0/8", "192.0.2.7/32", "2001:db8::/32", "198.51.100.0/24", "2001:db8::1/128"}
	if len(got) != len(want) {
		t.Fatalf("got %v", got)
	}
	for i := range want {
		if got[i].String() != want[i] {
			t.Errorf("entry %d = %s, want %s", i, got[i], want[i])
		}
	}
	if p, err := ParseTrustedProxies(""); err != nil || p != nil {
		t.Errorf("empty: %v %v", p, err)
	}
	for _, bad := range []string{"10.0.0.0/33", "proxy.example", "10.0.0.1:80", "fe80::1%eth0", "10.0.0.0/8,nope"} {
		if _, err := ParseTrustedProxies(bad); err == nil {
			t.Errorf("%q accepted", bad)
		}
	}
}

func TestClientIP(t *testing.T) {
	proxies, err := ParseTrustedProxies("10.0.0.0/8, 2001:db8:ffff::/48")
	if err != nil {
		t.Fatal(err)
	}
	s := &Server{trustedProxies: proxies}
	tests := []struct {
		name, remote string
		xff, fwd     []string
		want         string
	}{
		{name: "direct client", remote: "198.51.100.7:5555", want: "198.51.100.7"},
		{name: "spoofed XFF from an untrusted peer is ignored", remote: "198.51.100.7:5555",
			xff: []string{"192.0.2.1"}, want: "198.51.100.7"},
		{name: "spoofed Forwarded from an untrusted peer is ignored", remote: "198.51.100.7:5555",
			fwd: []string{"for=192.0.2.1"}, want: "198.51.100.7"},
		{name: "trusted proxy, XFF", remote: "10.1.2.3:40000", xff: []string{"203.0.113.9"}, want: "203.0.113.9"},
		{name: "right-most untrusted wins over a forged left part", remote: "10.1.2.3:40000",
			xff: []string{"192.0.2.1, 203.0.113.9"}, want: "203.0.113.9"},
		{name: "chain of trusted proxies", remote: "10.1.2.3:40000",
			xff: []string{"192.0.2.1, 203.0.113.9, 10.9.9.9", "10.8.8.8"}, want: "203.0.113.9"},
		{name: "only trusted hops: the left-most", remote: "10.1.2.3:40000", xff: []string{"10.5.5.5"}, want: "10.5.5.5"},
		{name: "garbage hop stops at the proxy that wrote it", remote: "10.1.2.3:40000",
			xff: []string{"203.0.113.9, unknown"}, want: "10.1.2.3"},
		{name: "XFF with a port", remote: "10.1.2.3:40000", xff: []string{"203.0.113.9:1234"}, want: "203.0.113.9"},
		{name: "trusted proxy, no header", remote: "10.1.2.3:40000", want: "10.1.2.3"},
		{name: "Forwarded, RFC 7239 forms", remote: "[2001:db8:ffff::2]:443",
			fwd: []string{`for=192.0.2.43, for="[2001:db8:cafe::17]:4711";proto=https;by="x,y"`}, want: "2001:db8:cafe::17"},
		{name: "Forwarded, quoted IPv4 with port", remote: "10.1.2.3:40000",
			fwd: []string{`For="203.0.113.9:80";proto=http`}, want: "203.0.113.9"},
		{name: "Forwarded, obfuscated", remote: "10.1.2.3:40000", fwd: []string{"for=_hidden"}, want: "10.1.2.3"},
		{name: "both headers agree", remote: "10.1.2.3:40000",
			xff: []string{"203.0.113.9"}, fwd: []string{"for=203.0.113.9"}, want: "203.0.113.9"},
		{name: "both headers disagree: the proxy", remote: "10.1.2.3:40000",
			xff: []string{"203.0.113.9"}, fwd: []string{"for=192.0.2.1"}, want: "10.1.2.3"},
		{name: "mapped IPv4 peer", remote: "[::ffff:10.1.2.3]:40000", xff: []string{"203.0.113.9"}, want: "203.0.113.9"},
		{name: "not an IP peer", remote: "@unix", want: "@unix"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			r := httptest.NewRequest(http.MethodGet, "/", nil)
			r.RemoteAddr = tt.remote
			for _, v := range tt.xff {
				r.Header.Add("X-Forwarded-For", v)
			}
			for _, v := range tt.fwd {
				r.Header.Add("Forwarded", v)
			}
			if got := s.clientIP(r); got != tt.want {
				t.Errorf("clientIP = %q, want %q", got, tt.want)
			}
		})
	}
	// Without trusted proxies, no header is ever believed.
	r := httptest.NewRequest(http.MethodGet, "/", nil)
	r.RemoteAddr = "10.1.2.3:1"
	r.Header.Set("X-Forwarded-For", "203.0.113.9")
	if got := (&Server{}).clientIP(r); got != "10.1.2.3" {
		t.Errorf("no trusted proxies: %q", got)
	}
}

// loginFrom posts a login with an X-Forwarded-For header ("" for none).
func (ts *testServer) loginFrom(t testing.TB, xff, username, password string) (*http.Response, []byte) {
	t.Helper()
	req := ts.newRequest(t, http.MethodPost, "/v1/auth/token", `{"username":"`+username+`","password":"`+password+`"}`)
	req.Header.Set("Content-Type", "application/json")
	if xff != "" {
		req.Header.Set("X-Forwarded-For", xff)
	}
	return ts.do(t, req)
}

// TestClientIPThrottleAndAudit: behind a trusted proxy (the test client's
// loopback address), the forwarded client is the one throttled, audited and
// logged, so one client's failures do not slow the others behind the proxy;
// from an untrusted peer the header is ignored.
func TestClientIPThrottleAndAudit(t *testing.T) {
	throttle := func(c *identity.Config) {
		c.Throttle = identity.ThrottleConfig{PairFailures: 1, AddrFailures: 2}
	}
	t.Run("trusted proxy", func(t *testing.T) {
		ts := newTestServer(t, withIdentity(throttle), withConfig(func(c *Config) {
			c.TrustedProxies = []netip.Prefix{netip.MustParsePrefix("127.0.0.0/8"), netip.MustParsePrefix("::1/128")}
		}))
		// The attacker behind the proxy spends its budget...
		for i, want := range []int{401, 401, 429} {
			resp, body := ts.loginFrom(t, "192.0.2.1, 203.0.113.66", "user"+string(rune('a'+i)), "wrong-password")
			if resp.StatusCode != want {
				t.Fatalf("attempt %d: %d %s", i, resp.StatusCode, body)
			}
		}
		// ...and another client behind the same proxy is not slowed.
		resp, body := ts.loginFrom(t, "198.51.100.20", "admin", testAdminPassword)
		if resp.StatusCode != http.StatusOK {
			t.Fatalf("another client behind the proxy: %d %s", resp.StatusCode, body)
		}
		admin := ts.adminToken(t)
		var audit api.AuditList
		ts.want(t, http.StatusOK, http.MethodGet, "/v1/audit?type=login_failed", admin, nil, &audit)
		if len(audit.Events) == 0 {
			t.Fatal("no login_failed events")
		}
		for _, ev := range audit.Events {
			if ev.RemoteAddr != "203.0.113.66" {
				t.Errorf("login_failed from %q, want the forwarded client 203.0.113.66", ev.RemoteAddr)
			}
		}
		if !strings.Contains(ts.logs.String(), `"remote_addr":"203.0.113.66"`) {
			t.Error("the access log does not name the forwarded client")
		}
	})
	t.Run("untrusted peer", func(t *testing.T) {
		ts := newTestServer(t, withIdentity(throttle))
		// A forged header per attempt does not buy a fresh budget.
		for i, want := range []int{401, 401, 429} {
			resp, body := ts.loginFrom(t, "203.0.113."+string(rune('1'+i)), "user"+string(rune('a'+i)), "wrong-password")
			if resp.StatusCode != want {
				t.Fatalf("attempt %d: %d %s", i, resp.StatusCode, body)
			}
		}
		if strings.Contains(ts.logs.String(), `"remote_addr":"203.0.113.`) {
			t.Error("the access log believed a forged header")
		}
	})
}
