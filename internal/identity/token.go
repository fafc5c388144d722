package identity

import (
	"bytes"
	"context"
	"crypto/ed25519"
	"crypto/rand"
	"crypto/sha256"
	"crypto/x509"
	"encoding/base64"
	"encoding/pem"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"sync"
	"time"

	"github.com/golang-jwt/jwt/v5"
	"github.com/google/uuid"

	"github.com/fieldsync/fieldsync/internal/domain"
)

// maxTokenLength bounds what Authenticate parses; our tokens are ~500 bytes.
const maxTokenLength = 4096

// unknownKidReloadEvery rate-limits the key reload that an unknown kid triggers, so
// a stream of forged kids costs the store at most one query per interval.
const unknownKidReloadEvery = 5 * time.Second

// keyReloadRetry is how soon a failed key reload is tried again.
const keyReloadRetry = 5 * time.Second

// accessClaims are the claims of an access token. sid (the token family) is not in
// protocol.md's list: it lets a revoked family (logout, replay) stop its access
// tokens too, not only its refresh tokens.
type accessClaims struct {
	jwt.RegisteredClaims
	Admin   bool   `json:"adm,omitempty"`
	Device  string `json:"dev,omitempty"`
	Project string `json:"prj,omitempty"`
	Session string `json:"sid,omitempty"`
}

// signingKey is one decoded key of the ring.
type signingKey struct {
	id        string
	priv      ed25519.PrivateKey
	pub       ed25519.PublicKey
	createdAt time.Time
	retiredAt *time.Time
	// stored is the key's bytes in the store, so a reload that finds them
	// unchanged does not open them again.
	stored []byte
}

// keyRing caches the store's signing keys. The newest unretired key signs; every
// key verifies until AccessTTL after its retirement (plus one reload interval,
// because an instance that has not yet seen the rotation keeps signing with the
// old key until its next reload, plus the clock leeway).
type keyRing struct {
	s *Service

	// fileKey is the key of Config.KeyFile; when set it always signs.
	fileKey *signingKey
	// sealer seals new keys and opens stored ones (Config.SecretKey); nil when
	// no secret is configured: keys are then stored bare, and a sealed one
	// refuses the start.
	sealer *sealer

	mu       sync.RWMutex
	keys     map[string]*signingKey
	signer   *signingKey
	nextLoad time.Time // periodic reload due
	lastMiss time.Time // last reload caused by an unknown kid
}

var (
	errUnknownKid = errors.New("unknown kid")
	errRetiredKid = errors.New("kid retired too long ago")
	errNoKid      = errors.New("no kid header")
)

// init loads the keys, seals the ones stored bare when a secret is configured
// (stores written before sealing), and creates the first key on an empty store.
// A key that cannot be opened fails it (ErrWrongSecret): a copy of the database
// given another secret, or none, does not start. Two instances starting at once
// may both create a key; both keys are valid and the newest signs once each
// instance has reloaded, so that race is harmless. They may both seal a bare
// key too: the store's compare-and-swap keeps one sealing, the other reloads.
func (r *keyRing) init(ctx context.Context) error {
	r.mu.Lock()
	defer r.mu.Unlock()
	bare, err := r.loadStrictLocked(ctx)
	if err != nil {
		return err
	}
	if len(bare) > 0 && r.sealer != nil {
		for _, k := range bare {
			sealed, err := r.sealer.seal(k.Algorithm, k.ID, k.PrivateKey)
			if err != nil {
				return err
			}
			switch err := r.s.store.ReplaceSigningKeyMaterial(ctx, k.ID, k.PrivateKey, sealed); {
			case err == nil:
				r.s.log.Info("identity: signing key sealed with the secret key", "kid", k.ID)
			case errors.Is(err, domain.ErrStale) || errors.Is(err, domain.ErrNotFound):
				// Another instance sealed it first; the reload below checks
				// that its seal opens with our secret.
			default:
				return storeErr("seal signing key", err)
			}
		}
		if _, err := r.loadStrictLocked(ctx); err != nil {
			return err
		}
	}
	if r.signer != nil || r.fileKey != nil {
		return nil
	}
	if _, err := r.createLocked(ctx); err != nil {
		return err
	}
	if r.signer == nil {
		return errors.New("identity: no usable signing key after creating one")
	}
	return nil
}

// loadStrictLocked is loadLocked at start: a key that cannot be opened fails
// it. It returns the keys stored bare.
func (r *keyRing) loadStrictLocked(ctx context.Context) ([]domain.SigningKey, error) {
	var bare []domain.SigningKey
	var failed error
	err := r.loadWith(ctx, func(k domain.SigningKey, err error, sealed bool) {
		switch {
		case errors.Is(err, ErrWrongSecret):
			if failed == nil {
				failed = err
			}
		case err != nil:
			r.s.log.Warn("identity: ignoring a signing key that is not an Ed25519 seed", "kid", k.ID, "err", err)
		}
		if err == nil && !sealed {
			bare = append(bare, k)
		}
	})
	if err == nil {
		err = failed
	}
	if err != nil {
		return nil, err
	}
	return bare, nil
}

// loadLocked replaces the cache with the store's keys. A key that cannot be
// opened (another instance re-sealed it under a new secret while this one
// runs) keeps the seed this instance opened before, if any, and is logged and
// left out otherwise: verification must not stop for one unreadable key.
func (r *keyRing) loadLocked(ctx context.Context) error {
	return r.loadWith(ctx, func(k domain.SigningKey, err error, _ bool) {
		switch {
		case errors.Is(err, ErrWrongSecret):
			r.s.log.Error("identity: a signing key in the store cannot be opened; restart this instance with the secret key the others use",
				"kid", k.ID, "err", err)
		case err != nil:
			r.s.log.Warn("identity: ignoring a signing key that is not an Ed25519 seed", "kid", k.ID, "err", err)
		}
	})
}

// loadWith replaces the cache with the store's keys, telling seen about each
// key it opened or could not open.
func (r *keyRing) loadWith(ctx context.Context, seen func(k domain.SigningKey, err error, sealed bool)) error {
	now := r.s.now()
	list, err := r.s.store.ListSigningKeys(ctx)
	if err != nil {
		r.nextLoad = now.Add(keyReloadRetry)
		return storeErr("list signing keys", err)
	}
	keys := make(map[string]*signingKey, len(list))
	var signer *signingKey
	for _, k := range list {
		if k.Algorithm != jwt.SigningMethodEdDSA.Alg() {
			r.s.log.Warn("identity: ignoring a signing key that is not Ed25519", "kid", k.ID, "alg", k.Algorithm)
			continue
		}
		// A seed never changes, only how it is stored and the row's times (a
		// retirement): a known key whose bytes are unchanged is not opened again.
		old := r.keys[k.ID]
		var priv ed25519.PrivateKey
		if old != nil && bytes.Equal(old.stored, k.PrivateKey) {
			priv = old.priv
			seen(k, nil, isSealed(k.PrivateKey))
		} else {
			seed, sealed, err := seedOf(r.sealer, k)
			seen(k, err, sealed)
			switch {
			case err == nil:
				priv = ed25519.NewKeyFromSeed(seed)
			case old != nil:
				priv = old.priv
			default:
				continue
			}
		}
		sk := &signingKey{id: k.ID, priv: priv, pub: priv.Public().(ed25519.PublicKey), stored: k.PrivateKey,
			createdAt: k.CreatedAt, retiredAt: k.RetiredAt}
		keys[k.ID] = sk
		if sk.retiredAt == nil && (signer == nil || sk.createdAt.After(signer.createdAt) ||
			(sk.createdAt.Equal(signer.createdAt) && sk.id > signer.id)) {
			signer = sk
		}
	}
	if r.fileKey != nil {
		keys[r.fileKey.id], signer = r.fileKey, r.fileKey
	}
	r.keys, r.signer = keys, signer
	r.nextLoad = now.Add(r.s.cfg.RevocationCheckInterval)
	return nil
}

// createLocked stores a new key and reloads the ring.
func (r *keyRing) createLocked(ctx context.Context) (string, error) {
	seed := make([]byte, ed25519.SeedSize)
	if _, err := rand.Read(seed); err != nil {
		return "", err
	}
	k := domain.SigningKey{ID: uuid.NewString(), Algorithm: jwt.SigningMethodEdDSA.Alg(), PrivateKey: seed, CreatedAt: r.s.now()}
	if r.sealer != nil {
		var err error
		if k.PrivateKey, err = r.sealer.seal(k.Algorithm, k.ID, seed); err != nil {
			return "", err
		}
	}
	if err := r.s.store.CreateSigningKey(ctx, k); err != nil {
		return "", storeErr("create signing key", err)
	}
	return k.ID, r.loadLocked(ctx)
}

// maybeReload reloads when the periodic interval has passed. A failed reload is
// logged and the old keys stay in use: verification must not stop because the store
// hiccupped.
func (r *keyRing) maybeReload(ctx context.Context) {
	r.mu.RLock()
	due := !r.s.now().Before(r.nextLoad)
	r.mu.RUnlock()
	if !due {
		return
	}
	r.mu.Lock()
	defer r.mu.Unlock()
	if r.s.now().Before(r.nextLoad) { // another goroutine did it
		return
	}
	if err := r.loadLocked(ctx); err != nil {
		r.s.log.Error("identity: reloading signing keys failed", "err", err)
	}
}

// current returns the key that signs now.
func (r *keyRing) current(ctx context.Context) (*signingKey, error) {
	r.maybeReload(ctx)
	r.mu.RLock()
	k := r.signer
	r.mu.RUnlock()
	if k != nil {
		return k, nil
	}
	// Every key is retired: two instances rotated at once and each retired the
	// other's new key. Heal by making a fresh one.
	r.mu.Lock()
	defer r.mu.Unlock()
	if r.signer == nil {
		if _, err := r.createLocked(ctx); err != nil {
			return nil, err
		}
		if r.signer == nil {
			return nil, errors.New("identity: no usable signing key")
		}
	}
	return r.signer, nil
}

// verifier returns the public key of kid, reloading the ring once (rate-limited)
// when the kid is unknown, since another instance may have rotated.
func (r *keyRing) verifier(ctx context.Context, kid string) (ed25519.PublicKey, error) {
	r.maybeReload(ctx)
	r.mu.RLock()
	k := r.keys[kid]
	r.mu.RUnlock()
	if k == nil {
		r.mu.Lock()
		now := r.s.now()
		if k = r.keys[kid]; k == nil && (r.lastMiss.IsZero() || now.Sub(r.lastMiss) >= unknownKidReloadEvery) {
			r.lastMiss = now
			if err := r.loadLocked(ctx); err != nil {
				r.s.log.Error("identity: reloading signing keys failed", "err", err)
			}
			k = r.keys[kid]
		}
		r.mu.Unlock()
		if k == nil {
			return nil, errUnknownKid
		}
	}
	if k.retiredAt != nil {
		limit := k.retiredAt.Add(r.s.cfg.AccessTTL + r.s.cfg.RevocationCheckInterval + clockLeeway)
		if r.s.now().After(limit) {
			return nil, errRetiredKid
		}
	}
	return k.pub, nil
}

// RotateKeys makes a new signing key, which signs from now on, retires the older
// ones, and returns the new kid. Retired keys still verify the tokens they signed
// until those expire. Other instances pick the new key up within
// RevocationCheckInterval (or at once, when a token with the new kid reaches them).
// The caller decides who may rotate (an admin endpoint, a command in main). With a
// Config.KeyFile it refuses: the file is the key.
func (s *Service) RotateKeys(ctx context.Context) (string, error) {
	r := s.keys
	if r.fileKey != nil {
		return "", errors.New("identity: the signing key comes from a key file; rotate by replacing the file on every instance")
	}
	r.mu.Lock()
	id, err := r.createLocked(ctx)
	if err == nil {
		if err = s.store.RetireSigningKeys(ctx, id, s.now()); err != nil {
			err = storeErr("retire signing keys", err)
		} else {
			err = r.loadLocked(ctx)
		}
	}
	r.mu.Unlock()
	if err != nil {
		return "", err
	}
	s.audit(ctx, domain.AuditEvent{Type: AuditKeysRotated, Subject: id})
	s.log.Info("identity: signing keys rotated", "kid", id)
	return id, nil
}

// readKeyFile loads Config.KeyFile. Its kid is derived from the public key, so
// every instance given the same file names it alike, and a new file a new kid.
func readKeyFile(path string, log *slog.Logger) (*signingKey, error) {
	fi, err := os.Stat(path)
	if err != nil {
		return nil, fmt.Errorf("identity: key file: %w", err)
	}
	if fi.Mode().Perm()&0o077 != 0 {
		log.Warn("identity: the key file is readable by other users; chmod 600 it", "path", path)
	}
	data, err := os.ReadFile(path)
	if err != nil {
		return nil, fmt.Errorf("identity: key file: %w", err)
	}
	block, _ := pem.Decode(data)
	if block == nil || block.Type != "PRIVATE KEY" {
		return nil, fmt.Errorf("identity: key file %s: want a PEM \"PRIVATE KEY\" block (openssl genpkey -algorithm ed25519)", path)
	}
	parsed, err := x509.ParsePKCS8PrivateKey(block.Bytes)
	if err != nil {
		return nil, fmt.Errorf("identity: key file %s: %w", path, err)
	}
	priv, ok := parsed.(ed25519.PrivateKey)
	if !ok {
		return nil, fmt.Errorf("identity: key file %s: not an Ed25519 key", path)
	}
	pub := priv.Public().(ed25519.PublicKey)
	sum := sha256.Sum256(pub)
	return &signingKey{id: "file-" + base64.RawURLEncoding.EncodeToString(sum[:12]), priv: priv, pub: pub}, nil
}

// tokenSubject is what an access token is issued for.
type tokenSubject struct {
	subject   string // username or device:<id>
	admin     bool
	deviceID  string
	projectID string // a device's project
	familyID  string
	// validAfter is the user's TokensValidAfter: a token must carry a later iat.
	validAfter time.Time
}

// issueAccess signs an access token for sub.
func (s *Service) issueAccess(ctx context.Context, sub tokenSubject) (string, error) {
	key, err := s.keys.current(ctx)
	if err != nil {
		return "", err
	}
	now := s.now()
	iat := now
	// iat has whole seconds and a token is refused when iat is not after the second
	// of TokensValidAfter (see allowUser). A token issued in the very second of a
	// revocation would be refused, so it is dated to the next second, well inside
	// the leeway, instead.
	if !sub.validAfter.IsZero() && now.Unix() <= sub.validAfter.Unix() {
		iat = time.Unix(sub.validAfter.Unix()+1, 0)
	}
	claims := accessClaims{
		RegisteredClaims: jwt.RegisteredClaims{
			Issuer:    s.cfg.Issuer,
			Subject:   sub.subject,
			Audience:  jwt.ClaimStrings{s.cfg.Audience},
			ExpiresAt: jwt.NewNumericDate(now.Add(s.cfg.AccessTTL)),
			NotBefore: jwt.NewNumericDate(iat),
			IssuedAt:  jwt.NewNumericDate(iat),
			ID:        uuid.NewString(),
		},
		Admin:   sub.admin,
		Device:  sub.deviceID,
		Project: sub.projectID,
		Session: sub.familyID,
	}
	t := jwt.NewWithClaims(jwt.SigningMethodEdDSA, claims)
	t.Header["kid"] = key.id
	signed, err := t.SignedString(key.priv)
	if err != nil {
		return "", fmt.Errorf("identity: signing an access token: %w", err)
	}
	return signed, nil
}

// Authenticate checks an access token and returns its principal. It accepts only
// EdDSA tokens signed by a key of the store with the configured iss and aud, a
// required exp, nbf and iat not in the future (beyond a 10 s leeway), a jti, and
// then checks that the subject is still allowed: the user exists, is not disabled,
// and the token was issued after its TokensValidAfter; the device is not revoked;
// the token family is not revoked. Those answers are cached for at most
// RevocationCheckInterval.
//
// Every token failure is the same 401 invalid_token; the reason is only in the
// error's cause, for the log. Store failures are returned as such (503).
func (s *Service) Authenticate(ctx context.Context, token string) (domain.Principal, error) {
	if token == "" || len(token) > maxTokenLength {
		return domain.Principal{}, errInvalidToken(errors.New("empty or oversized token"))
	}
	claims, err := s.verifyAccess(ctx, token)
	if err != nil {
		return domain.Principal{}, err
	}
	if claims.ID == "" || claims.Subject == "" || claims.IssuedAt == nil || claims.Session == "" {
		return domain.Principal{}, errInvalidToken(errors.New("missing jti, sub, iat or sid"))
	}
	p := domain.Principal{Subject: claims.Subject, TokenID: claims.ID}
	if claims.Device != "" {
		if claims.Subject != domain.DeviceSubject(claims.Device) || claims.Project == "" || claims.Admin {
			return domain.Principal{}, errInvalidToken(errors.New("inconsistent device claims"))
		}
		if err := s.allowDevice(ctx, claims.Device, claims.Project); err != nil {
			return domain.Principal{}, err
		}
		p.DeviceID, p.DeviceProject = claims.Device, claims.Project
	} else {
		if !usernameRE.MatchString(claims.Subject) || claims.Project != "" {
			return domain.Principal{}, errInvalidToken(errors.New("inconsistent user claims"))
		}
		admin, err := s.allowUser(ctx, claims.Subject, claims.IssuedAt.Time)
		if err != nil {
			return domain.Principal{}, err
		}
		p.Username, p.Admin = claims.Subject, admin
	}
	if err := s.allowFamily(ctx, claims.Session, claims.Subject); err != nil {
		return domain.Principal{}, err
	}
	return p, nil
}

// verifyAccess checks token's signature and registered claims (issuer,
// audience, expiry, not-before) and returns its claims. A token verified
// before is answered from s.verified (tokencache.go) until it expires, after
// checking that its key still verifies; what follows in Authenticate (the
// subject and the family) is checked on every call either way.
func (s *Service) verifyAccess(ctx context.Context, token string) (accessClaims, error) {
	key := sha256.Sum256([]byte(token))
	now := s.now()
	if v, ok := s.verified.get(key, now); ok {
		if _, err := s.keys.verifier(ctx, v.kid); err != nil {
			return accessClaims{}, errInvalidToken(err)
		}
		return v.claims, nil
	}
	if s.onTokenVerify != nil {
		s.onTokenVerify()
	}
	var claims accessClaims
	var kid string
	_, err := s.parser.ParseWithClaims(token, &claims, func(t *jwt.Token) (any, error) {
		// WithValidMethods already refused anything else; this keeps the key type
		// tied to the algorithm even if the options change.
		if _, ok := t.Method.(*jwt.SigningMethodEd25519); !ok {
			return nil, fmt.Errorf("unexpected method %v", t.Header["alg"])
		}
		var ok bool
		kid, ok = t.Header["kid"].(string)
		if !ok || kid == "" {
			return nil, errNoKid
		}
		return s.keys.verifier(ctx, kid)
	})
	if err != nil {
		return accessClaims{}, errInvalidToken(err)
	}
	// WithExpirationRequired: a verified token has an expiry.
	s.verified.put(key, verifiedToken{claims: claims, kid: kid, until: claims.ExpiresAt.Add(clockLeeway)}, now)
	return claims, nil
}
