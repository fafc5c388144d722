package identity

import (
	"context"
	"crypto/ed25519"
	"crypto/rand"
	"crypto/rsa"
	"crypto/x509"
	"encoding/base64"
	"encoding/json"
	"encoding/pem"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/golang-jwt/jwt/v5"

	"github.com/fieldsync/fieldsync/internal/domain"
)

// claimsOf decodes a token's claims without verifying it.
func claimsOf(t testing.TB, token string) (accessClaims, map[string]any) {
	t.Helper()
	var c accessClaims
	tok, _, err := jwt.NewParser().ParseUnverified(token, &c)
	if err != nil {
		t.Fatalf("ParseUnverified: %v", err)
	}
	return c, tok.Header
}

// sign makes a token by hand.
func sign(t testing.TB, method jwt.SigningMethod, key any, kid string, claims jwt.Claims) string {
	t.Helper()
	tok := jwt.NewWithClaims(method, claims)
	if kid != "" {
		tok.Header["kid"] = kid
	}
	s, err := tok.SignedString(key)
	if err != nil {
		t.Fatalf("SignedString(%s): %v", method.Alg(), err)
	}
	return s
}

// TestAuthenticateAttacks feeds Authenticate tokens crafted by hand: each must be
// refused with the one answer invalid_token.
func TestAuthenticateAttacks(t *testing.T) {
	eachStore(t, func(t *testing.T, be backend) {
		ctx := context.Background()
		e := newEnv(t, be)
		pair, _ := e.user("alice", "", "")
		base, header := claimsOf(t, pair.AccessToken)
		kid := header["kid"].(string)
		key := e.svc.keys.signer
		if key == nil || key.id != kid {
			t.Fatalf("signer %v, token kid %s", key, kid)
		}
		now := e.clock.Now()
		_, otherPriv, _ := ed25519.GenerateKey(rand.Reader)
		rsaKey, err := rsa.GenerateKey(rand.Reader, 2048)
		wantNoErr(t, err)

		with := func(f func(c *accessClaims)) accessClaims {
			c := base
			c.Audience = append(jwt.ClaimStrings(nil), base.Audience...)
			f(&c)
			return c
		}
		tampered := func() string {
			parts := strings.Split(pair.AccessToken, ".")
			payload, err := base64.RawURLEncoding.DecodeString(parts[1])
			wantNoErr(t, err)
			var m map[string]any
			wantNoErr(t, json.Unmarshal(payload, &m))
			m["sub"], m["adm"] = "admin", true
			payload, _ = json.Marshal(m)
			parts[1] = base64.RawURLEncoding.EncodeToString(payload)
			return strings.Join(parts, ".")
		}

		tests := []struct {
			name  string
			token string
			ok    bool
		}{
			{name: "control: a valid token", token: sign(t, jwt.SigningMethodEdDSA, key.priv, kid, base), ok: true},
			{name: "alg none", token: sign(t, jwt.SigningMethodNone, jwt.UnsafeAllowNoneSignatureType, kid, base)},
			{name: "HS256 with the public key as secret", token: sign(t, jwt.SigningMethodHS256, []byte(key.pub), kid, base)},
			{name: "RS256", token: sign(t, jwt.SigningMethodRS256, rsaKey, kid, base)},
			{name: "EdDSA with another key under our kid", token: sign(t, jwt.SigningMethodEdDSA, otherPriv, kid, base)},
			{name: "wrong audience", token: sign(t, jwt.SigningMethodEdDSA, key.priv, kid, with(func(c *accessClaims) { c.Audience = jwt.ClaimStrings{"other"} }))},
			{name: "no audience", token: sign(t, jwt.SigningMethodEdDSA, key.priv, kid, with(func(c *accessClaims) { c.Audience = nil }))},
			{name: "wrong issuer", token: sign(t, jwt.SigningMethodEdDSA, key.priv, kid, with(func(c *accessClaims) { c.Issuer = "evil" }))},
			{name: "expired", token: sign(t, jwt.SigningMethodEdDSA, key.priv, kid, with(func(c *accessClaims) {
				c.ExpiresAt = jwt.NewNumericDate(now.Add(-time.Minute))
			}))},
			{name: "missing exp", token: sign(t, jwt.SigningMethodEdDSA, key.priv, kid, with(func(c *accessClaims) { c.ExpiresAt = nil }))},
			{name: "nbf in the future", token: sign(t, jwt.SigningMethodEdDSA, key.priv, kid, with(func(c *accessClaims) {
				c.NotBefore = jwt.NewNumericDate(now.Add(5 * time.Minute))
			}))},
			{name: "missing nbf", token: sign(t, jwt.SigningMethodEdDSA, key.priv, kid, with(func(c *accessClaims) { c.NotBefore = nil }))},
			{name: "iat in the future", token: sign(t, jwt.SigningMethodEdDSA, key.priv, kid, with(func(c *accessClaims) {
				c.IssuedAt = jwt.NewNumericDate(now.Add(5 * time.Minute))
			}))},
			{name: "missing iat", token: sign(t, jwt.SigningMethodEdDSA, key.priv, kid, with(func(c *accessClaims) { c.IssuedAt = nil }))},
			{name: "missing jti", token: sign(t, jwt.SigningMethodEdDSA, key.priv, kid, with(func(c *accessClaims) { c.ID = "" }))},
			{name: "missing sid", token: sign(t, jwt.SigningMethodEdDSA, key.priv, kid, with(func(c *accessClaims) { c.Session = "" }))},
			{name: "sid of another family", token: sign(t, jwt.SigningMethodEdDSA, key.priv, kid, with(func(c *accessClaims) { c.Session = "nope" }))},
			{name: "unknown user", token: sign(t, jwt.SigningMethodEdDSA, key.priv, kid, with(func(c *accessClaims) { c.Subject = "mallory" }))},
			{name: "user subject with device claim", token: sign(t, jwt.SigningMethodEdDSA, key.priv, kid, with(func(c *accessClaims) { c.Device = "x"; c.Project = "p" }))},
			{name: "tampered payload", token: tampered()},
			{name: "unknown kid", token: sign(t, jwt.SigningMethodEdDSA, key.priv, "no-such-kid", base)},
			{name: "no kid", token: sign(t, jwt.SigningMethodEdDSA, key.priv, "", base)},
			{name: "garbage", token: "not.a.token"},
			{name: "empty", token: ""},
			{name: "oversized", token: strings.Repeat("a", 5000)},
		}
		for _, tt := range tests {
			t.Run(tt.name, func(t *testing.T) {
				p, err := e.svc.Authenticate(ctx, tt.token)
				if tt.ok {
					wantNoErr(t, err)
					if p.Username != "alice" || p.Admin {
						t.Fatalf("principal = %+v", p)
					}
					return
				}
				de := wantErr(t, err, domain.KindUnauthorized, "invalid_token")
				if de.Detail != "" || de.Title != "The access token is not valid" {
					t.Fatalf("the error tells the client more than invalid_token: %+v", de)
				}
			})
		}
	})
}

func TestAccessTokenClaims(t *testing.T) {
	eachStore(t, func(t *testing.T, be backend) {
		e := newEnv(t, be)
		e.project("p1")
		pair, _ := e.user("alice", "", "")
		c, h := claimsOf(t, pair.AccessToken)
		if h["alg"] != "EdDSA" || h["kid"] == "" {
			t.Fatalf("header = %v", h)
		}
		now := e.clock.Now()
		if c.Issuer != "fieldsync" || len(c.Audience) != 1 || c.Audience[0] != "fieldsync" || c.Subject != "alice" ||
			c.ID == "" || c.Session == "" || !c.IssuedAt.Equal(now) || !c.NotBefore.Equal(now) ||
			!c.ExpiresAt.Equal(now.Add(DefaultAccessTTL)) || c.Admin || c.Device != "" {
			t.Fatalf("claims = %+v", c)
		}
		if pair.TokenType != "Bearer" || pair.ExpiresIn != 900 {
			t.Fatalf("pair = %s, type %q expires_in %d", pair, pair.TokenType, pair.ExpiresIn)
		}
		if strings.Contains(pair.String(), pair.AccessToken) {
			t.Fatal("TokenPair.String shows the token")
		}
		devPair, d, _ := e.device("p1")
		c, _ = claimsOf(t, devPair.AccessToken)
		if c.Subject != "device:"+d.ID || c.Device != d.ID || c.Project != "p1" {
			t.Fatalf("device claims = %+v", c)
		}
		adminPair, _ := e.login(e.svc, "admin", adminPassword)
		if c, _ = claimsOf(t, adminPair.AccessToken); !c.Admin {
			t.Fatal("admin token without adm")
		}
	})
}

// TestKeyRotation: tokens of a retired key verify until they expire; new tokens
// use the new kid; a second instance on the same store shares the key and picks up
// a rotation done by the first.
func TestKeyRotation(t *testing.T) {
	eachStore(t, func(t *testing.T, be backend) {
		ctx := context.Background()
		e := newEnv(t, be)
		_, b := e.instance()
		pair1, _ := e.user("alice", "", "")
		_, h := claimsOf(t, pair1.AccessToken)
		kid1 := h["kid"].(string)

		if _, err := b.Authenticate(ctx, pair1.AccessToken); err != nil {
			t.Fatalf("instance B refuses instance A's token: %v", err)
		}
		pairB, err := b.Login(ctx, "alice", "alice-password-123", "")
		wantNoErr(t, err)
		if _, h := claimsOf(t, pairB.AccessToken); h["kid"] != kid1 {
			t.Fatalf("instance B signs with %v, want the shared key %s", h["kid"], kid1)
		}

		rotated, err := e.svc.RotateKeys(ctx)
		wantNoErr(t, err)
		pair2, _ := e.login(e.svc, "alice", "alice-password-123")
		_, h = claimsOf(t, pair2.AccessToken)
		kid2 := h["kid"].(string)
		if kid2 == kid1 || kid2 != rotated {
			t.Fatalf("new tokens use kid %s; old %s, rotated %s", kid2, kid1, rotated)
		}
		for name, svc := range map[string]*Service{"A": e.svc, "B": b} {
			for tokName, tok := range map[string]string{"old-key token": pair1.AccessToken, "new-key token": pair2.AccessToken} {
				if _, err := svc.Authenticate(ctx, tok); err != nil {
					t.Fatalf("instance %s refuses the %s: %v", name, tokName, err)
				}
			}
		}
		// B saw the new kid and reloaded: it signs with the new key now.
		pairB, err = b.Login(ctx, "alice", "alice-password-123", "")
		wantNoErr(t, err)
		if _, h := claimsOf(t, pairB.AccessToken); h["kid"] != kid2 {
			t.Fatalf("instance B signs with %v after the rotation, want %s", h["kid"], kid2)
		}

		// A token of the retired key that claims a long life stops once the retired
		// key's window has passed.
		base, _ := claimsOf(t, pair1.AccessToken)
		base.ExpiresAt = jwt.NewNumericDate(e.clock.Now().Add(24 * time.Hour))
		var old *signingKey
		e.svc.keys.mu.RLock()
		old = e.svc.keys.keys[kid1]
		e.svc.keys.mu.RUnlock()
		long := sign(t, jwt.SigningMethodEdDSA, old.priv, kid1, base)
		if _, err := b.Authenticate(ctx, long); err != nil {
			t.Fatalf("retired key refused inside its window: %v", err)
		}
		e.clock.Advance(DefaultAccessTTL + DefaultRevocationCheckInterval + clockLeeway + time.Second)
		_, err = b.Authenticate(ctx, long)
		wantErr(t, err, domain.KindUnauthorized, "invalid_token")
		// The new key goes on verifying fresh tokens.
		pair3, _ := e.login(b, "alice", "alice-password-123")
		if _, h := claimsOf(t, pair3.AccessToken); h["kid"] != kid2 {
			t.Fatalf("kid = %v", h["kid"])
		}

		if ev := e.audits(domain.AuditFilter{Type: AuditKeysRotated}); len(ev) != 1 || ev[0].Subject != kid2 {
			t.Fatalf("keys_rotated events = %+v", ev)
		}
	})
}

// TestKeyRotationPeriodicReload: an instance that sees no token of the new key
// still stops signing with the retired one within RevocationCheckInterval.
func TestKeyRotationPeriodicReload(t *testing.T) {
	eachStore(t, func(t *testing.T, be backend) {
		ctx := context.Background()
		e := newEnv(t, be)
		_, b := e.instance()
		_, err := e.svc.RotateKeys(ctx)
		wantNoErr(t, err)
		e.clock.Advance(DefaultRevocationCheckInterval)
		e.user("alice", "", "")
		pair, err := b.Login(ctx, "alice", "alice-password-123", "")
		wantNoErr(t, err)
		_, h := claimsOf(t, pair.AccessToken)
		if h["kid"] != e.svc.keys.signer.id {
			t.Fatalf("instance B signs with %v, want the rotated key %s", h["kid"], e.svc.keys.signer.id)
		}
	})
}

// TestRevocationAcrossInstances: revoking a user or a device stops its access
// token at once on the instance that revoked, and within RevocationCheckInterval
// on another instance on the same store.
func TestRevocationAcrossInstances(t *testing.T) {
	eachStore(t, func(t *testing.T, be backend) {
		ctx := context.Background()
		tests := []struct {
			name   string
			setup  func(e *env) TokenPair
			revoke func(e *env) error
		}{
			{
				name:  "device revoked",
				setup: func(e *env) TokenPair { e.project("p1"); p, _, _ := e.device("p1"); return p },
				revoke: func(e *env) error {
					ds, err := e.store.ListDevices(ctx, "p1")
					if err != nil {
						return err
					}
					return e.svc.RevokeDevice(ctx, e.admin, "p1", ds[0].ID)
				},
			},
			{
				name:   "user revoked",
				setup:  func(e *env) TokenPair { p, _ := e.user("alice", "", ""); return p },
				revoke: func(e *env) error { return e.svc.RevokeUser(ctx, e.admin, "alice") },
			},
			{
				name:   "user disabled",
				setup:  func(e *env) TokenPair { p, _ := e.user("alice", "", ""); return p },
				revoke: func(e *env) error { return e.svc.SetUserDisabled(ctx, e.admin, "alice", true) },
			},
			{
				name:   "logout (family revoked)",
				setup:  func(e *env) TokenPair { p, _ := e.user("alice", "", ""); return p },
				revoke: func(e *env) error { return nil }, // done below with the pair
			},
		}
		for _, tt := range tests {
			t.Run(tt.name, func(t *testing.T) {
				e := newEnv(t, be)
				_, b := e.instance()
				pair := tt.setup(e)
				// B has checked the subject recently: its cache says "allowed".
				if _, err := b.Authenticate(ctx, pair.AccessToken); err != nil {
					t.Fatalf("B before revocation: %v", err)
				}
				if _, err := e.svc.Authenticate(ctx, pair.AccessToken); err != nil {
					t.Fatalf("A before revocation: %v", err)
				}
				e.clock.Advance(time.Second)
				wantNoErr(t, tt.revoke(e))
				if tt.name == "logout (family revoked)" {
					wantNoErr(t, e.svc.Revoke(ctx, pair.RefreshToken))
				}
				// At once on the instance that revoked.
				_, err := e.svc.Authenticate(ctx, pair.AccessToken)
				wantErr(t, err, domain.KindUnauthorized, "invalid_token")
				// The refresh token is dead everywhere at once (it is checked in the store).
				_, err = b.Refresh(ctx, pair.RefreshToken, "")
				wantErr(t, err, domain.KindUnauthorized, "invalid_grant")
				// Within the interval on the other instance.
				e.clock.Advance(61 * time.Second)
				_, err = b.Authenticate(ctx, pair.AccessToken)
				wantErr(t, err, domain.KindUnauthorized, "invalid_token")
			})
		}
	})
}

// TestRevocationCacheBound: B's cached "allowed" answer is used inside the
// interval (that is the point of the cache) and not after it.
func TestRevocationCacheBound(t *testing.T) {
	eachStore(t, func(t *testing.T, be backend) {
		ctx := context.Background()
		e := newEnv(t, be)
		_, b := e.instance()
		pair, _ := e.user("alice", "", "")
		if _, err := b.Authenticate(ctx, pair.AccessToken); err != nil {
			t.Fatal(err)
		}
		e.clock.Advance(time.Second)
		wantNoErr(t, e.svc.RevokeUser(ctx, e.admin, "alice"))
		e.clock.Advance(DefaultRevocationCheckInterval - 2*time.Second)
		if _, err := b.Authenticate(ctx, pair.AccessToken); err != nil {
			t.Fatalf("inside the interval B should still answer from its cache: %v", err)
		}
		e.clock.Advance(2 * time.Second)
		_, err := b.Authenticate(ctx, pair.AccessToken)
		wantErr(t, err, domain.KindUnauthorized, "invalid_token")
	})
}

func TestNewConfig(t *testing.T) {
	eachStore(t, func(t *testing.T, be backend) {
		e := newEnv(t, be)
		ctx := context.Background()
		if _, err := New(ctx, Config{}); err == nil {
			t.Fatal("New without a store succeeded")
		}
		if _, err := New(ctx, Config{Store: e.store, RevocationCheckInterval: 2 * time.Minute}); err == nil {
			t.Fatal("New accepted a revocation interval above 60 s")
		}
		cfg := e.svc.cfg
		if cfg.AccessTTL != 15*time.Minute || cfg.RefreshTTL != 30*24*time.Hour || cfg.DeviceRefreshTTL != 180*24*time.Hour ||
			cfg.EnrollmentTTL != 7*24*time.Hour || cfg.RevocationCheckInterval > time.Minute || cfg.Issuer != "fieldsync" ||
			cfg.Throttle.PairFailures != 3 || cfg.Throttle.AccountFailures != 10 || cfg.Throttle.AddrFailures != 20 ||
			cfg.Throttle.Window != 15*time.Minute || cfg.Throttle.PairMaxDelay != 15*time.Minute {
			t.Fatalf("defaults = %+v", cfg)
		}
	})
}

func writeKeyFile(t *testing.T, dir, name string, key any) string {
	t.Helper()
	der, err := x509.MarshalPKCS8PrivateKey(key)
	wantNoErr(t, err)
	path := filepath.Join(dir, name)
	wantNoErr(t, os.WriteFile(path, pem.EncodeToMemory(&pem.Block{Type: "PRIVATE KEY", Bytes: der}), 0o600))
	return path
}

// TestKeyFile: a key given as a file signs on every instance that has it, store
// keys still verify their tokens, and rotation is refused.
func TestKeyFile(t *testing.T) {
	eachStore(t, func(t *testing.T, be backend) {
		ctx := context.Background()
		dir := t.TempDir()
		_, edKey, _ := ed25519.GenerateKey(rand.Reader)
		rsaKey, err := rsa.GenerateKey(rand.Reader, 2048)
		wantNoErr(t, err)
		good := writeKeyFile(t, dir, "ed25519.pem", edKey)
		e := newEnv(t, be)
		before, _ := e.user("alice", "", "")

		useFile := func(c *Config) { c.KeyFile = good }
		_, a := e.instance(useFile)
		_, b := e.instance(useFile)
		pair, err := a.Login(ctx, "alice", "alice-password-123", "")
		wantNoErr(t, err)
		_, h := claimsOf(t, pair.AccessToken)
		if kid, _ := h["kid"].(string); !strings.HasPrefix(kid, "file-") {
			t.Fatalf("kid = %v, want the file key", h["kid"])
		}
		for name, tok := range map[string]string{"file-key token": pair.AccessToken, "store-key token": before.AccessToken} {
			if _, err := b.Authenticate(ctx, tok); err != nil {
				t.Fatalf("%s refused: %v", name, err)
			}
		}
		if _, err := a.RotateKeys(ctx); err == nil {
			t.Fatal("RotateKeys with a key file succeeded")
		}

		for _, tt := range []struct{ name, path string }{
			{"missing file", filepath.Join(dir, "nope.pem")},
			{"RSA key", writeKeyFile(t, dir, "rsa.pem", rsaKey)},
			{"not PEM", func() string { p := filepath.Join(dir, "junk"); os.WriteFile(p, []byte("junk"), 0o600); return p }()},
		} {
			t.Run(tt.name, func(t *testing.T) {
				cfg := Config{Store: e.store, KeyFile: tt.path, hashParams: &cheapParams}
				if _, err := New(ctx, cfg); err == nil {
					t.Fatal("New accepted the key file")
				}
			})
		}
	})
}
