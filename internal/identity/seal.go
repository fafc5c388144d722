package identity

import (
	"bytes"
	"context"
	"crypto/ed25519"
	"crypto/hkdf"
	"crypto/rand"
	"crypto/sha256"
	"encoding/base64"
	"errors"
	"fmt"
	"os"
	"strings"

	"golang.org/x/crypto/chacha20poly1305"

	"github.com/fieldsync/fieldsync/internal/domain"
)

// The signing keys' seeds are kept in the store sealed with a secret key the
// store does not hold (Config.SecretKey), so that a copy of the database alone
// (a backup, a dump, a stolen disk) cannot mint tokens. The seal is
// XChaCha20-Poly1305 under a key derived from the secret with HKDF-SHA256; its
// additional data is the key's algorithm and kid, so a sealed seed moved to
// another row does not open. Stored bytes are
//
//	"fsk1" | 24-byte random nonce | ciphertext of the 32-byte seed | 16-byte tag
//
// 76 bytes: never the 32 of a bare seed, which stores written before sealing hold.

// SecretKeySize is the size of the secret that seals the signing keys.
const SecretKeySize = 32

// sealMagic starts every sealed seed and names the format's version.
const sealMagic = "fsk1"

// sealedSize is the length of a sealed seed.
const sealedSize = len(sealMagic) + chacha20poly1305.NonceSizeX + ed25519.SeedSize + chacha20poly1305.Overhead

// ErrWrongSecret is in the chain of New's error when a signing key of the store
// cannot be unsealed: the secret key is not the one it was sealed with, or none
// is configured. The server then refuses to start; it never makes a new key in
// its place, which would log every client out and hide the mistake.
var ErrWrongSecret = errors.New("the signing keys in the store cannot be unsealed with this secret key")

// ParseSecretKey decodes a secret key given as text: standard base64 of 32
// bytes, as `openssl rand -base64 32` prints (surrounding spaces and newlines
// are ignored). Anything else is refused, including 32 bytes with fewer than 16
// distinct values, which no random generator gives in practice but a typed
// pattern or a zeroed buffer does.
func ParseSecretKey(text string) ([]byte, error) {
	text = strings.TrimSpace(text)
	b, err := base64.StdEncoding.DecodeString(text)
	if err != nil || len(b) != SecretKeySize {
		return nil, fmt.Errorf("a secret key must be %d random bytes in standard base64 (44 characters; make one with: openssl rand -base64 32)", SecretKeySize)
	}
	distinct := map[byte]bool{}
	for _, c := range b {
		distinct[c] = true
	}
	if len(distinct) < 16 {
		return nil, errors.New("the secret key is not random (too few distinct bytes); make one with: openssl rand -base64 32")
	}
	return b, nil
}

// ReadSecretKeyFile reads a secret key from a file holding its base64 text. A
// file that users other than its owner may read (or write) is refused: the
// secret is what keeps a copy of the database from minting tokens.
func ReadSecretKeyFile(path string) ([]byte, error) {
	fi, err := os.Stat(path)
	if err != nil {
		return nil, fmt.Errorf("secret key file: %w", err)
	}
	if !fi.Mode().IsRegular() {
		return nil, fmt.Errorf("secret key file %s: not a regular file", path)
	}
	if perm := fi.Mode().Perm(); perm&0o077 != 0 {
		return nil, fmt.Errorf("secret key file %s: mode %04o lets other users read it; run: chmod 600 %s", path, perm, path)
	}
	text, err := os.ReadFile(path)
	if err != nil {
		return nil, fmt.Errorf("secret key file: %w", err)
	}
	key, err := ParseSecretKey(string(text))
	if err != nil {
		return nil, fmt.Errorf("secret key file %s: %w", path, err)
	}
	return key, nil
}

// NewSecretKey returns a new random secret key as text (ParseSecretKey's form).
func NewSecretKey() (string, error) {
	b := make([]byte, SecretKeySize)
	if _, err := rand.Read(b); err != nil {
		return "", err
	}
	return base64.StdEncoding.EncodeToString(b), nil
}

// sealer seals and opens signing-key seeds under one secret key.
type sealer struct {
	aead interface {
		Seal(dst, nonce, plaintext, additionalData []byte) []byte
		Open(dst, nonce, ciphertext, additionalData []byte) ([]byte, error)
	}
}

// newSealer derives the sealing key from secret. The derivation keeps the
// secret usable for other purposes later without one use weakening another.
func newSealer(secret []byte) (*sealer, error) {
	if len(secret) != SecretKeySize {
		return nil, fmt.Errorf("identity: the secret key must be %d bytes, not %d", SecretKeySize, len(secret))
	}
	k, err := hkdf.Key(sha256.New, secret, nil, "fieldsync signing-key seal v1", chacha20poly1305.KeySize)
	if err != nil {
		return nil, err
	}
	aead, err := chacha20poly1305.NewX(k)
	if err != nil {
		return nil, err
	}
	return &sealer{aead: aead}, nil
}

// sealAD binds a sealed seed to its row.
func sealAD(alg, kid string) []byte { return []byte(sealMagic + "\x00" + alg + "\x00" + kid) }

// isSealed reports whether stored key bytes are a sealed seed.
func isSealed(b []byte) bool { return len(b) == sealedSize && bytes.HasPrefix(b, []byte(sealMagic)) }

// seal returns the stored form of seed for key kid.
func (s *sealer) seal(alg, kid string, seed []byte) ([]byte, error) {
	out := make([]byte, len(sealMagic)+chacha20poly1305.NonceSizeX, sealedSize)
	copy(out, sealMagic)
	nonce := out[len(sealMagic):]
	if _, err := rand.Read(nonce); err != nil {
		return nil, err
	}
	return s.aead.Seal(out, nonce, seed, sealAD(alg, kid)), nil
}

// open returns the seed of a sealed key, or ErrWrongSecret.
func (s *sealer) open(alg, kid string, sealed []byte) ([]byte, error) {
	if !isSealed(sealed) {
		return nil, errors.New("not a sealed key")
	}
	nonce := sealed[len(sealMagic) : len(sealMagic)+chacha20poly1305.NonceSizeX]
	seed, err := s.aead.Open(nil, nonce, sealed[len(nonce)+len(sealMagic):], sealAD(alg, kid))
	if err != nil {
		return nil, ErrWrongSecret
	}
	return seed, nil
}

// seedOf returns the seed of a stored key: opened with sl when sealed (sl nil:
// ErrWrongSecret, there is nothing to open it with), as is when bare.
func seedOf(sl *sealer, k domain.SigningKey) (seed []byte, sealed bool, err error) {
	switch {
	case isSealed(k.PrivateKey):
		if sl == nil {
			return nil, true, fmt.Errorf("%w: key %s is sealed and no secret key is configured", ErrWrongSecret, k.ID)
		}
		seed, err := sl.open(k.Algorithm, k.ID, k.PrivateKey)
		if err != nil {
			return nil, true, fmt.Errorf("%w: key %s was sealed with another secret key", ErrWrongSecret, k.ID)
		}
		return seed, true, nil
	case len(k.PrivateKey) == ed25519.SeedSize:
		return k.PrivateKey, false, nil
	default:
		return nil, false, fmt.Errorf("key %s: %d bytes are neither a seed nor a sealed seed", k.ID, len(k.PrivateKey))
	}
}

// RotateSecret re-seals every signing key of st under newSecret. Each key is
// opened with newSecret (already re-sealed: a run that stopped half-way can be
// run again), else with oldSecret, else taken as is when stored bare (nil
// oldSecret: only bare keys are expected). Each write is a compare-and-swap,
// so a concurrent sealing is never overwritten; a key that changed meanwhile
// is read again. It returns how many keys it re-sealed, and fails, naming the
// key, when one opens with neither secret.
//
// Instances running with oldSecret keep the keys they have already unsealed in
// memory, but cannot open keys made after the re-sealing; README's procedure
// (stop, rotate, restart with the new secret) avoids that window.
func RotateSecret(ctx context.Context, st domain.KeyStore, oldSecret, newSecret []byte) (int, error) {
	next, err := newSealer(newSecret)
	if err != nil {
		return 0, err
	}
	var prev *sealer
	if oldSecret != nil {
		if prev, err = newSealer(oldSecret); err != nil {
			return 0, err
		}
		if bytes.Equal(oldSecret, newSecret) {
			return 0, errors.New("identity: the new secret key is the current one")
		}
	}
	n := 0
	for attempt := 0; ; attempt++ {
		keys, err := st.ListSigningKeys(ctx)
		if err != nil {
			return n, storeErr("list signing keys", err)
		}
		// A pass that found nothing to do ends the run; one that did something
		// is followed by another, which also catches a key made meanwhile.
		did := false
		for _, k := range keys {
			if _, err := next.open(k.Algorithm, k.ID, k.PrivateKey); err == nil {
				continue // sealed under the new secret already
			}
			seed, _, err := seedOf(prev, k)
			if err != nil {
				return n, fmt.Errorf("identity: %w (neither the current nor the new secret opens it)", err)
			}
			sealed, err := next.seal(k.Algorithm, k.ID, seed)
			if err != nil {
				return n, err
			}
			switch err := st.ReplaceSigningKeyMaterial(ctx, k.ID, k.PrivateKey, sealed); {
			case err == nil:
				n++
			case errors.Is(err, domain.ErrStale) || errors.Is(err, domain.ErrNotFound):
				// sealed or removed meanwhile: the next pass looks again
			default:
				return n, storeErr("replace signing key", err)
			}
			did = true
		}
		if !did {
			return n, nil
		}
		if attempt >= 10 {
			return n, errors.New("identity: the signing keys kept changing while they were re-sealed; stop every instance and run again")
		}
	}
}
