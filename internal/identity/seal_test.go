package identity

import (
	"bytes"
	"context"
	"crypto/ed25519"
	"encoding/base64"
	"errors"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"

	"github.com/golang-jwt/jwt/v5"

	"github.com/fieldsync/fieldsync/internal/domain"
)

// testSecret returns a random secret key.
func testSecret(t testing.TB) []byte {
	t.Helper()
	text, err := NewSecretKey()
	wantNoErr(t, err)
	b, err := ParseSecretKey(text)
	wantNoErr(t, err)
	return b
}

func withSecret(secret []byte) func(*Config) { return func(c *Config) { c.SecretKey = secret } }

// tryInstance is env.instance that returns New's error instead of failing.
func (e *env) tryInstance(opts ...func(*Config)) (*Service, error) {
	e.t.Helper()
	p := cheapParams
	cfg := Config{Store: e.open(), Now: e.clock.Now, hashParams: &p}
	for _, o := range opts {
		o(&cfg)
	}
	return New(context.Background(), cfg)
}

// storedKeys lists the signing keys as the store holds them.
func storedKeys(t testing.TB, st domain.Store) []domain.SigningKey {
	t.Helper()
	keys, err := st.ListSigningKeys(context.Background())
	wantNoErr(t, err)
	return keys
}

// seeds returns the seeds the service signs and verifies with.
func seeds(s *Service) [][]byte {
	s.keys.mu.RLock()
	defer s.keys.mu.RUnlock()
	var out [][]byte
	for _, k := range s.keys.keys {
		out = append(out, k.priv.Seed())
	}
	return out
}

// TestSealedKeyAtRest: with a secret key, what the store holds of a signing key
// is not its seed, and a copy of the database without the secret cannot mint a
// token: the stored bytes taken as a key sign tokens the server refuses, and a
// server given the copy with another secret, or none, refuses to start (and
// makes no key of its own).
func TestSealedKeyAtRest(t *testing.T) {
	eachStore(t, func(t *testing.T, be backend) {
		ctx := context.Background()
		secret := testSecret(t)
		e := newEnv(t, be, withSecret(secret))
		pair, _ := e.user("alice", "", "")
		keys := storedKeys(t, e.store)
		if len(keys) != 1 {
			t.Fatalf("%d keys stored", len(keys))
		}
		seed := seeds(e.svc)[0]
		if stored := keys[0].PrivateKey; bytes.Contains(stored, seed) || len(stored) == ed25519.SeedSize {
			t.Fatalf("the store holds the seed in the clear (%d bytes)", len(stored))
		}

		// An attacker with the database forges a token with what it holds.
		claims, h := claimsOf(t, pair.AccessToken)
		claims.Subject, claims.Admin = "admin", true
		forged := sign(t, jwt.SigningMethodEdDSA, ed25519.NewKeyFromSeed(keys[0].PrivateKey[len(keys[0].PrivateKey)-ed25519.SeedSize:]),
			h["kid"].(string), claims)
		_, err := e.svc.Authenticate(ctx, forged)
		wantErr(t, err, domain.KindUnauthorized, "invalid_token")

		// ... or starts a server on it.
		for name, opts := range map[string][]func(*Config){
			"another secret": {withSecret(testSecret(t))},
			"no secret":      nil,
		} {
			if _, err := e.tryInstance(opts...); !errors.Is(err, ErrWrongSecret) {
				t.Errorf("%s: New = %v, want ErrWrongSecret", name, err)
			}
		}
		if got := storedKeys(t, e.store); len(got) != 1 || !bytes.Equal(got[0].PrivateKey, keys[0].PrivateKey) {
			t.Fatalf("a refused start changed the keys: %d keys", len(got))
		}

		// The right secret opens it, on another instance, and its tokens verify.
		_, b := e.instance(withSecret(secret))
		if _, err := b.Authenticate(ctx, pair.AccessToken); err != nil {
			t.Fatalf("an instance with the secret refuses a token: %v", err)
		}
	})
}

// TestSealedRowsCannotBeSwapped: the seal is bound to its row, so a sealed
// seed copied to another key's row does not open.
func TestSealedRowsCannotBeSwapped(t *testing.T) {
	secret := testSecret(t)
	sl, err := newSealer(secret)
	wantNoErr(t, err)
	seed := bytes.Repeat([]byte{7}, ed25519.SeedSize)
	sealed, err := sl.seal("EdDSA", "k1", seed)
	wantNoErr(t, err)
	if got, err := sl.open("EdDSA", "k1", sealed); err != nil || !bytes.Equal(got, seed) {
		t.Fatalf("open = %v", err)
	}
	if _, err := sl.open("EdDSA", "k2", sealed); !errors.Is(err, ErrWrongSecret) {
		t.Fatalf("a seal moved to another kid opened: %v", err)
	}
}

// TestBareKeysGetSealed: a store written before sealing (seeds in the clear)
// keeps working when a secret is configured: its keys are sealed at start, the
// tokens they signed stay valid, and two instances starting at once on it both
// start and agree.
func TestBareKeysGetSealed(t *testing.T) {
	eachStore(t, func(t *testing.T, be backend) {
		ctx := context.Background()
		e := newEnv(t, be) // no secret: keys stored bare, as before
		pair, _ := e.user("alice", "", "")
		before := storedKeys(t, e.store)
		if len(before) != 1 || len(before[0].PrivateKey) != ed25519.SeedSize {
			t.Fatalf("the old store holds no bare seed: %+v", before)
		}

		secret := testSecret(t)
		var wg sync.WaitGroup
		svcs := make([]*Service, 3)
		errs := make([]error, 3)
		for i := range svcs {
			wg.Go(func() { svcs[i], errs[i] = e.tryInstance(withSecret(secret)) })
		}
		wg.Wait()
		for i, err := range errs {
			if err != nil {
				t.Fatalf("instance %d did not start: %v", i, err)
			}
		}
		after := storedKeys(t, e.store)
		if len(after) != 1 || after[0].ID != before[0].ID || !isSealed(after[0].PrivateKey) {
			t.Fatalf("keys after the sealing start: %+v", after)
		}
		for i, svc := range svcs {
			if _, err := svc.Authenticate(ctx, pair.AccessToken); err != nil {
				t.Fatalf("instance %d refuses a token of the bare key: %v", i, err)
			}
			if s := seeds(svc); len(s) != 1 || !bytes.Equal(s[0], before[0].PrivateKey) {
				t.Fatalf("instance %d holds another seed", i)
			}
		}
		// Once sealed, a start without the secret is refused.
		if _, err := e.tryInstance(); !errors.Is(err, ErrWrongSecret) {
			t.Fatalf("New without the secret on a sealed store = %v", err)
		}
		// An instance that started before the sealing goes on verifying.
		if _, err := e.svc.Authenticate(ctx, pair.AccessToken); err != nil {
			t.Fatal(err)
		}
	})
}

// TestRotateSecret: RotateSecret re-seals every key (a retired one too) under
// a new secret; tokens signed before stay valid on instances given the new
// secret; the old secret no longer opens the store; running it again does
// nothing; a secret that opens nothing is refused, naming the key.
func TestRotateSecret(t *testing.T) {
	eachStore(t, func(t *testing.T, be backend) {
		ctx := context.Background()
		oldSecret, newSecret := testSecret(t), testSecret(t)
		e := newEnv(t, be, withSecret(oldSecret))
		pair1, _ := e.user("alice", "", "")
		_, err := e.svc.RotateKeys(ctx)
		wantNoErr(t, err)
		pair2, _ := e.login(e.svc, "alice", "alice-password-123")

		n, err := RotateSecret(ctx, e.store, oldSecret, newSecret)
		wantNoErr(t, err)
		if n != 2 {
			t.Fatalf("re-sealed %d keys, want 2", n)
		}
		if n, err := RotateSecret(ctx, e.store, oldSecret, newSecret); err != nil || n != 0 {
			t.Fatalf("second run: %d, %v; want 0, nil", n, err)
		}
		_, b := e.instance(withSecret(newSecret))
		for name, tok := range map[string]string{"retired key's token": pair1.AccessToken, "current key's token": pair2.AccessToken} {
			if _, err := b.Authenticate(ctx, tok); err != nil {
				t.Fatalf("%s refused after the rotation: %v", name, err)
			}
		}
		if _, err := e.tryInstance(withSecret(oldSecret)); !errors.Is(err, ErrWrongSecret) {
			t.Fatalf("New with the old secret = %v, want ErrWrongSecret", err)
		}
		// The running instance of the old secret keeps the keys it opened.
		e.clock.Advance(DefaultRevocationCheckInterval)
		if _, err := e.svc.Authenticate(ctx, pair2.AccessToken); err != nil {
			t.Fatalf("the running instance refuses after the rotation: %v", err)
		}
		if _, err := RotateSecret(ctx, e.store, testSecret(t), testSecret(t)); err == nil || !strings.Contains(err.Error(), "neither") {
			t.Fatalf("RotateSecret with unrelated secrets = %v", err)
		}
		if _, err := RotateSecret(ctx, e.store, newSecret, newSecret); err == nil {
			t.Fatal("RotateSecret to the same secret succeeded")
		}
	})
}

// TestSecretKeyText: a secret key is 32 random bytes in base64; anything
// weaker, and a file other users may read, is refused.
func TestSecretKeyText(t *testing.T) {
	good, err := NewSecretKey()
	wantNoErr(t, err)
	if _, err := ParseSecretKey(" " + good + "\n"); err != nil {
		t.Fatalf("a generated key is refused: %v", err)
	}
	for name, text := range map[string]string{
		"empty":           "",
		"a password":      "correct horse battery staple",
		"16 bytes":        base64.StdEncoding.EncodeToString(bytes.Repeat([]byte{1, 2, 3, 4, 5, 6, 7, 8}, 2)),
		"zeros":           base64.StdEncoding.EncodeToString(make([]byte, 32)),
		"hex of 32 bytes": strings.Repeat("ab", 32),
	} {
		if _, err := ParseSecretKey(text); err == nil {
			t.Errorf("%s: accepted", name)
		}
	}

	dir := t.TempDir()
	path := filepath.Join(dir, "secret")
	wantNoErr(t, os.WriteFile(path, []byte(good+"\n"), 0o600))
	if _, err := ReadSecretKeyFile(path); err != nil {
		t.Fatalf("a 0600 file is refused: %v", err)
	}
	for _, mode := range []os.FileMode{0o640, 0o604, 0o660} {
		wantNoErr(t, os.Chmod(path, mode))
		_, err := ReadSecretKeyFile(path)
		if err == nil || !strings.Contains(err.Error(), "chmod 600") {
			t.Errorf("mode %o: %v, want a refusal that says chmod 600", mode, err)
		}
	}
}
