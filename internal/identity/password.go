package identity

import (
	"context"
	"crypto/rand"
	"crypto/subtle"
	"encoding/base64"
	"errors"
	"fmt"
	"strconv"
	"strings"
	"unicode"
	"unicode/utf8"

	"golang.org/x/crypto/argon2"

	"github.com/fieldsync/fieldsync/internal/domain"
)

// Password policy (NIST SP 800-63B: length, not composition rules).
const (
	// MinPasswordLength is the least number of characters of a password.
	MinPasswordLength = 10
	// MaxPasswordLength is the most characters of a password; it bounds the work
	// a login can ask of the server.
	MaxPasswordLength = 1024
)

// argonParams are the argon2id cost parameters of a password hash.
type argonParams struct {
	memoryKiB uint32
	time      uint32
	threads   uint8
	saltLen   int
	keyLen    int
}

// defaultArgonParams follow OWASP's first argon2id configuration (m=19 MiB, t=2,
// p=1). Why not more: the server may run on 2 cores, and a morning of tablets
// logging in at once is a burst of hashes. Measured on a 2-core AMD EPYC: m=19 MiB
// t=2 p=1 takes ~41 ms per hash (m=46 MiB t=1: ~52 ms; m=64 MiB t=3: ~200 ms). With
// HashConcurrency = GOMAXPROCS = 2 that is ~50 logins/s at 38 MiB of hashing memory,
// while an offline guess still costs 19 MiB and 2 passes. p=1 because parallel lanes
// would only steal the other core from concurrent logins.
var defaultArgonParams = argonParams{memoryKiB: 19 * 1024, time: 2, threads: 1, saltLen: 16, keyLen: 32}

// Bounds accepted when decoding a stored hash, so a corrupt or hostile row cannot
// make a login allocate gigabytes or spin for minutes.
const (
	maxArgonMemoryKiB = 1 << 20 // 1 GiB
	maxArgonTime      = 64
)

var b64 = base64.RawStdEncoding // PHC strings use standard base64 without padding

// PasswordRule is the password policy in one sentence, for error details and
// prompts: a client that is refused a password can tell its user what to type.
var PasswordRule = fmt.Sprintf("a password must be %d to %d characters long, must not be the username, "+
	"and must not be only white space", MinPasswordLength, MaxPasswordLength)

// checkPassword applies the password policy. The finding says what this password
// breaks; the detail states the whole rule.
func checkPassword(password, username string) error {
	return checkPasswordAt(password, username, "/password")
}

// checkPasswordAt is checkPassword with the JSON pointer of the password field
// (new_password for a change or a reset).
func checkPasswordAt(password, username, path string) error {
	weak := func(msg string) error {
		return &domain.Error{Kind: domain.KindInvalid, Code: "weak_password", Title: "The password is not acceptable",
			Detail: PasswordRule, Findings: []domain.Finding{{Path: path, Message: msg}}}
	}
	if !utf8.ValidString(password) {
		return weak("must be valid UTF-8")
	}
	n := utf8.RuneCountInString(password)
	switch {
	case n < MinPasswordLength:
		return weak(fmt.Sprintf("must be at least %d characters long", MinPasswordLength))
	case n > MaxPasswordLength:
		return weak(fmt.Sprintf("must be at most %d characters long", MaxPasswordLength))
	case username != "" && strings.EqualFold(password, username):
		return weak("must not be the username")
	case strings.TrimFunc(password, unicode.IsSpace) == "":
		return weak("must not be only white space")
	}
	return nil
}

// acquireHash waits for a hashing slot: argon2id holds its memory for the whole
// computation, so the number running at once is what bounds memory.
func (s *Service) acquireHash(ctx context.Context) (release func(), err error) {
	select {
	case s.hashSem <- struct{}{}:
		return func() { <-s.hashSem }, nil
	case <-ctx.Done():
		return nil, ctx.Err()
	}
}

// hashPassword returns the PHC-style encoding
// $argon2id$v=19$m=<KiB>,t=<passes>,p=<lanes>$<salt>$<hash> with a fresh random salt.
func (s *Service) hashPassword(ctx context.Context, password string) (string, error) {
	p := s.params
	salt := make([]byte, p.saltLen)
	if _, err := rand.Read(salt); err != nil {
		return "", err
	}
	release, err := s.acquireHash(ctx)
	if err != nil {
		return "", err
	}
	key := argon2.IDKey([]byte(password), salt, p.time, p.memoryKiB, p.threads, uint32(p.keyLen))
	release()
	return fmt.Sprintf("$argon2id$v=%d$m=%d,t=%d,p=%d$%s$%s",
		argon2.Version, p.memoryKiB, p.time, p.threads, b64.EncodeToString(salt), b64.EncodeToString(key)), nil
}

// verifyPassword reports whether password matches the encoded hash, comparing in
// constant time. A hash that does not decode never matches (and is reported as an
// error, for the log).
func (s *Service) verifyPassword(ctx context.Context, password, encoded string) (bool, error) {
	p, salt, want, err := decodeHash(encoded)
	if err != nil {
		return false, err
	}
	release, err := s.acquireHash(ctx)
	if err != nil {
		return false, err
	}
	if s.onVerify != nil {
		s.onVerify()
	}
	got := argon2.IDKey([]byte(password), salt, p.time, p.memoryKiB, p.threads, uint32(len(want)))
	release()
	return subtle.ConstantTimeCompare(got, want) == 1, nil
}

var errBadHash = errors.New("identity: stored password hash does not decode")

// decodeHash parses a hash written by hashPassword.
func decodeHash(encoded string) (argonParams, []byte, []byte, error) {
	var p argonParams
	parts := strings.Split(encoded, "$")
	// "", "argon2id", "v=19", "m=..,t=..,p=..", salt, hash
	if len(parts) != 6 || parts[0] != "" || parts[1] != "argon2id" || parts[2] != "v="+strconv.Itoa(argon2.Version) {
		return p, nil, nil, errBadHash
	}
	var m, t, l uint64
	for _, kv := range strings.Split(parts[3], ",") {
		k, v, ok := strings.Cut(kv, "=")
		if !ok {
			return p, nil, nil, errBadHash
		}
		n, err := strconv.ParseUint(v, 10, 32)
		if err != nil {
			return p, nil, nil, errBadHash
		}
		switch k {
		case "m":
			m = n
		case "t":
			t = n
		case "p":
			l = n
		default:
			return p, nil, nil, errBadHash
		}
	}
	if m < 8 || m > maxArgonMemoryKiB || t < 1 || t > maxArgonTime || l < 1 || l > 255 || m < 8*l {
		return p, nil, nil, errBadHash
	}
	salt, err := b64.DecodeString(parts[4])
	if err != nil || len(salt) < 8 {
		return p, nil, nil, errBadHash
	}
	key, err := b64.DecodeString(parts[5])
	if err != nil || len(key) < 16 || len(key) > 64 {
		return p, nil, nil, errBadHash
	}
	p = argonParams{memoryKiB: uint32(m), time: uint32(t), threads: uint8(l), saltLen: len(salt), keyLen: len(key)}
	return p, salt, key, nil
}

// randomPassword returns 144 random bits as 24 URL-safe characters: printable in a
// log line, easy to paste, and far above the policy.
func randomPassword() (string, error) {
	b := make([]byte, 18)
	if _, err := rand.Read(b); err != nil {
		return "", err
	}
	return base64.RawURLEncoding.EncodeToString(b), nil
}
