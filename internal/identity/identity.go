// Package identity is the identity and access service of fieldsync (protocol.md §1):
// users and their passwords, projects and roles, enrolled devices, access tokens
// (EdDSA JWTs) and rotating refresh tokens, login throttling and the security audit
// log. The HTTP layer turns requests into calls of *Service and its errors
// (*domain.Error or store sentinels) into problem documents.
//
// Every piece of shared state lives in the store (users, token families, signing
// keys, the bootstrap marker), so any number of instances can run on one store. Three
// things are per instance and in memory only, each for a stated reason:
//
//   - the login throttle and the sources each account signed in from recently
//     (a store round trip per failed login would let an attacker turn a password
//     spray into store load; with N instances an attacker gets at most N times
//     the stated budget, and an owner's known source is known on the instances
//     it signed in through);
//   - the signing-key cache, reloaded every RevocationCheckInterval and whenever an
//     unknown kid arrives (rate-limited), so a rotation done elsewhere is picked up;
//   - the revocation cache ("is this user / device / token family still allowed"),
//     whose entries live at most RevocationCheckInterval, so revoking a subject on
//     one instance stops its access tokens on every other instance within that
//     interval, and at once on the instance that did it.
//
// Secrets (passwords, refresh tokens, access tokens, enrollment codes) never reach a
// log line, an audit event or an error text.
package identity

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"runtime"
	"time"

	"github.com/fieldsync/fieldsync/internal/domain"
	"github.com/golang-jwt/jwt/v5"
)

// Defaults of Config.
const (
	// DefaultIssuer is the iss of access tokens.
	DefaultIssuer = "fieldsync"
	// DefaultAudience is the aud of access tokens.
	DefaultAudience = "fieldsync"
	// DefaultAccessTTL is short: an access token cannot be recalled, only its
	// subject can be refused.
	DefaultAccessTTL = 15 * time.Minute
	// DefaultRefreshTTL is the life of a user's login session.
	DefaultRefreshTTL = 30 * 24 * time.Hour
	// DefaultDeviceRefreshTTL is long because a tablet may be offline for months.
	DefaultDeviceRefreshTTL = 180 * 24 * time.Hour
	// DefaultEnrollmentTTL leaves a week to hand a code to a field team.
	DefaultEnrollmentTTL = 7 * 24 * time.Hour
	// DefaultRevocationCheckInterval trades one store read per subject per
	// interval against how long a revocation takes to reach other instances.
	DefaultRevocationCheckInterval = 30 * time.Second
	// MaxRevocationCheckInterval bounds how long a revoked user or device may keep
	// using an access token on an instance that did not do the revocation.
	MaxRevocationCheckInterval = 60 * time.Second
	// DefaultRefreshReuseGrace covers a tablet on 2G that retries a refresh whose
	// answer was lost: it times out, perhaps backs off once, and sends the same
	// token again, usually within a minute.
	DefaultRefreshReuseGrace = 2 * time.Minute
	// MaxRefreshReuseGrace bounds the grace: within it, a copy of a token that was
	// just spent can take the session over while the legitimate client has not
	// used its new token yet (the theft is still detected when that client comes
	// back, see Refresh).
	MaxRefreshReuseGrace = 10 * time.Minute
	// NoRefreshReuseGrace, as Config.RefreshReuseGrace, turns the grace off: every
	// spent token presented again is a replay.
	NoRefreshReuseGrace time.Duration = -1
)

// clockLeeway is the clock skew tolerated between instances when checking exp, nbf
// and iat. Small on purpose: it also lengthens every token's life by that much.
const clockLeeway = 10 * time.Second

// Store is the part of the store contract the identity service uses: the
// people, places and keys of access, and the audit log. Both backends'
// stores satisfy it; the records and forms of a project are not its concern.
type Store interface {
	domain.UserStore
	domain.ProjectStore
	domain.DeviceStore
	domain.TokenStore
	domain.KeyStore
	domain.SettingStore
	domain.AuditStore
}

// Config configures a Service. Zero fields take the defaults named beside them.
type Config struct {
	// Store holds everything shared between instances; required.
	Store Store
	// Now is the clock (time.Now); tests pass a controllable one.
	Now func() time.Time
	// Issuer and Audience are the iss and aud of access tokens ("fieldsync").
	Issuer   string
	Audience string
	// AccessTTL is the lifetime of an access token (15 min).
	AccessTTL time.Duration
	// RefreshTTL is the lifetime of a user's login session (30 days); it does not
	// slide: refreshing keeps the expiry of the login.
	RefreshTTL time.Duration
	// DeviceRefreshTTL is the lifetime of a device's refresh token (180 days). It
	// slides: every refresh gives the new token now+DeviceRefreshTTL, because a
	// tablet may stay offline for months and must not need re-enrollment after.
	DeviceRefreshTTL time.Duration
	// EnrollmentTTL is how long an enrollment code may be used (7 days).
	EnrollmentTTL time.Duration
	// RefreshReuseGrace is how long after a refresh token was spent the client
	// may present it again and still get a pair, provided the pair it was first
	// given has not been used: the answer of a refresh is lost when a 2G link
	// drops, and the client retries with the token it still holds (2 min, at most
	// MaxRefreshReuseGrace; NoRefreshReuseGrace or any negative value turns it
	// off). The exact rule is Refresh's.
	RefreshReuseGrace time.Duration
	// RevocationCheckInterval is how stale a cached "is this user / device still
	// allowed" answer, and the signing-key cache, may be (30 s, at most 60 s).
	RevocationCheckInterval time.Duration
	// KeyFile, when set, names a PEM file (PKCS#8, "PRIVATE KEY") with the Ed25519
	// key that signs access tokens, instead of keys generated into the store. Every
	// instance must be given the same file. Keys in the store still verify the
	// tokens they signed, so switching to a file logs nobody out; RotateKeys then
	// refuses (rotate by replacing the file on every instance).
	KeyFile string
	// SecretKey (SecretKeySize bytes, see ParseSecretKey) seals the signing
	// keys in the store, so that a copy of the database alone cannot mint
	// tokens. Every instance on one store must be given the same. Keys stored
	// bare (before sealing) are sealed by New; a key that does not open with it
	// makes New fail with ErrWrongSecret. Without it keys are stored bare, and a
	// store whose keys are sealed refuses (the server always gives one; tests
	// and embedders may leave it out). RotateSecret changes it.
	SecretKey []byte
	// Logger receives operational events (never secrets); nil discards them.
	Logger *slog.Logger
	// Throttle configures login throttling.
	Throttle ThrottleConfig
	// HashConcurrency bounds how many argon2id computations run at once
	// (GOMAXPROCS). Each holds passwordMemoryKiB of memory, so a login burst queues
	// instead of exhausting memory.
	HashConcurrency int

	// hashParams replaces the argon2id parameters; only tests set it, to keep the
	// race-detector build fast.
	hashParams *argonParams
}

// ThrottleConfig configures the in-memory, per-instance throttles of failed
// logins (see loginGuard for the design and its arithmetic) and of failed
// enrollments. Zero fields take the defaults named beside them. Sources are
// client addresses; IPv6 addresses count per /64, the smallest block a client
// holds.
type ThrottleConfig struct {
	// PairFailures is how many failed logins one (username, source) pair may
	// have before each further attempt of the pair waits (3).
	PairFailures int
	// PairDelay is the first wait of a pair, doubled at every further failure
	// (1 s), up to PairMaxDelay (15 min).
	PairDelay    time.Duration
	PairMaxDelay time.Duration
	// AccountFailures is the ceiling of a username for failures from sources
	// that have not signed in to it recently (10), refilled by one every
	// AccountInterval (15 min). It slows, it never locks: known sources pass.
	AccountFailures int
	AccountInterval time.Duration
	// AddrFailures is the ceiling of a source for failed logins across usernames
	// (password spraying; 20), refilled by one every AddrInterval (1 min); known
	// sources of the username tried pass. Failed enrollments are counted apart:
	// AddrFailures per source in Window.
	AddrFailures int
	AddrInterval time.Duration
	// Window is the sliding window of failed enrollments (15 min).
	Window time.Duration
	// KnownSourceTTL is how long a source that signed in to a username
	// successfully keeps its own budget, untouched by failures from elsewhere
	// (30 days).
	KnownSourceTTL time.Duration
	// MaxKeys bounds the memory of each table (100 000 keys).
	MaxKeys int
}

// Service is the identity and access service. It is safe for concurrent use.
type Service struct {
	store  Store
	cfg    Config
	log    *slog.Logger
	params argonParams
	// dummyHash is verified when a login names an unknown user, so that answer
	// takes as long as a wrong password.
	dummyHash string
	hashSem   chan struct{}
	// onVerify is called before every argon2id computation of a verification;
	// tests count them.
	onVerify func()
	// afterSpend is called by Refresh once it has spent the presented token and
	// before it stores the successor; tests widen that window with it.
	afterSpend func()
	// onAwaitSuccessor is called when a refresh starts waiting for the successor
	// of a token that a simultaneous refresh has just spent.
	onAwaitSuccessor func()

	loginGuard     *loginGuard
	enrollThrottle *throttle
	syncSeen       syncSeen // admin.go: throttles TouchDevice per device

	keys   *keyRing
	allow  *allowCache
	parser *jwt.Parser
	// verified remembers verified access tokens (tokencache.go).
	verified *tokenCache
	// onTokenVerify is called before each signature verification of an access
	// token; tests count them.
	onTokenVerify func()
	basic         *basicCache // basic.go: verified Basic credentials
}

// New checks cfg, fills its defaults, and makes sure the store holds a signing key
// (creating the first one at first start).
func New(ctx context.Context, cfg Config) (*Service, error) {
	if cfg.Store == nil {
		return nil, errors.New("identity: Config.Store is nil")
	}
	if cfg.Now == nil {
		cfg.Now = time.Now
	}
	if cfg.Issuer == "" {
		cfg.Issuer = DefaultIssuer
	}
	if cfg.Audience == "" {
		cfg.Audience = DefaultAudience
	}
	setDefault(&cfg.AccessTTL, DefaultAccessTTL)
	setDefault(&cfg.RefreshTTL, DefaultRefreshTTL)
	setDefault(&cfg.DeviceRefreshTTL, DefaultDeviceRefreshTTL)
	setDefault(&cfg.EnrollmentTTL, DefaultEnrollmentTTL)
	setDefault(&cfg.RevocationCheckInterval, DefaultRevocationCheckInterval)
	setDefault(&cfg.RefreshReuseGrace, DefaultRefreshReuseGrace)
	if cfg.RefreshReuseGrace < 0 {
		cfg.RefreshReuseGrace = 0 // off; from here on 0 means off
	}
	if cfg.RefreshReuseGrace > MaxRefreshReuseGrace {
		return nil, fmt.Errorf("identity: RefreshReuseGrace %s exceeds %s", cfg.RefreshReuseGrace, MaxRefreshReuseGrace)
	}
	if cfg.RevocationCheckInterval > MaxRevocationCheckInterval {
		return nil, fmt.Errorf("identity: RevocationCheckInterval %s exceeds %s", cfg.RevocationCheckInterval, MaxRevocationCheckInterval)
	}
	for name, d := range map[string]time.Duration{
		"AccessTTL": cfg.AccessTTL, "RefreshTTL": cfg.RefreshTTL,
		"DeviceRefreshTTL": cfg.DeviceRefreshTTL, "EnrollmentTTL": cfg.EnrollmentTTL,
		"RevocationCheckInterval": cfg.RevocationCheckInterval,
	} {
		if d < 0 {
			return nil, fmt.Errorf("identity: %s is negative", name)
		}
	}
	if cfg.Logger == nil {
		cfg.Logger = slog.New(slog.DiscardHandler)
	}
	th := &cfg.Throttle
	for _, d := range []struct {
		p   *int
		def int
	}{{&th.PairFailures, 3}, {&th.AccountFailures, 10}, {&th.AddrFailures, 20}, {&th.MaxKeys, 100_000}} {
		if *d.p <= 0 {
			*d.p = d.def
		}
	}
	setDefault(&th.PairDelay, time.Second)
	setDefault(&th.PairMaxDelay, 15*time.Minute)
	setDefault(&th.AccountInterval, 15*time.Minute)
	setDefault(&th.AddrInterval, time.Minute)
	setDefault(&th.Window, 15*time.Minute)
	setDefault(&th.KnownSourceTTL, 30*24*time.Hour)
	for name, d := range map[string]time.Duration{"PairDelay": th.PairDelay, "PairMaxDelay": th.PairMaxDelay,
		"AccountInterval": th.AccountInterval, "AddrInterval": th.AddrInterval, "Window": th.Window,
		"KnownSourceTTL": th.KnownSourceTTL} {
		if d < 0 {
			return nil, fmt.Errorf("identity: Throttle.%s is negative", name)
		}
	}
	th.PairMaxDelay = max(th.PairMaxDelay, th.PairDelay)
	if cfg.HashConcurrency <= 0 {
		cfg.HashConcurrency = runtime.GOMAXPROCS(0)
	}

	var err error
	s := &Service{
		store:          cfg.Store,
		cfg:            cfg,
		log:            cfg.Logger,
		params:         defaultArgonParams,
		hashSem:        make(chan struct{}, cfg.HashConcurrency),
		loginGuard:     newLoginGuard(cfg.Throttle),
		enrollThrottle: newThrottle(cfg.Throttle.AddrFailures, cfg.Throttle.Window, cfg.Throttle.MaxKeys),
		allow:          newAllowCache(),
		verified:       newTokenCache(),
		basic:          newBasicCache(),
	}
	if cfg.hashParams != nil {
		s.params = *cfg.hashParams
	}
	s.keys = &keyRing{s: s, keys: map[string]*signingKey{}}
	if cfg.SecretKey != nil {
		if s.keys.sealer, err = newSealer(cfg.SecretKey); err != nil {
			return nil, err
		}
	}
	if cfg.KeyFile != "" {
		if s.keys.fileKey, err = readKeyFile(cfg.KeyFile, cfg.Logger); err != nil {
			return nil, err
		}
	}
	s.parser = jwt.NewParser(
		jwt.WithValidMethods([]string{jwt.SigningMethodEdDSA.Alg()}),
		jwt.WithIssuer(cfg.Issuer),
		jwt.WithAudience(cfg.Audience),
		jwt.WithExpirationRequired(),
		jwt.WithNotBeforeRequired(),
		jwt.WithIssuedAt(),
		jwt.WithLeeway(clockLeeway),
		jwt.WithTimeFunc(s.now),
		jwt.WithStrictDecoding(),
	)

	// The dummy hash is made of a random password with the current parameters, so
	// verifying against it costs what verifying a real user's password costs.
	var dummy string
	if dummy, err = randomPassword(); err != nil {
		return nil, err
	}
	if s.dummyHash, err = s.hashPassword(ctx, dummy); err != nil {
		return nil, err
	}
	if err := s.keys.init(ctx); err != nil {
		return nil, err
	}
	return s, nil
}

func setDefault(d *time.Duration, def time.Duration) {
	if *d == 0 {
		*d = def
	}
}

// now is the service clock in UTC, truncated to milliseconds because the stores
// keep milliseconds (domain/doc.go): a time read back equals the time written.
func (s *Service) now() time.Time {
	return s.cfg.Now().UTC().Truncate(time.Millisecond)
}

// TokenPair is the answer of a login, a refresh or an enrollment
// (POST /v1/auth/token, /v1/auth/refresh, /v1/devices/enroll).
type TokenPair struct {
	AccessToken  string `json:"access_token"`
	TokenType    string `json:"token_type"` // always "Bearer"
	ExpiresIn    int64  `json:"expires_in"` // seconds until the access token expires
	RefreshToken string `json:"refresh_token"`
}

// String redacts the tokens, so that a TokenPair printed by mistake leaks nothing.
func (p TokenPair) String() string { return "TokenPair{[redacted]}" }

// GoString redacts the tokens for %#v.
func (p TokenPair) GoString() string { return p.String() }

// LogValue redacts the tokens in slog output.
func (p TokenPair) LogValue() slog.Value { return slog.StringValue(p.String()) }

// Error constructors. The codes are the stable machine words of the protocol; none of
// them carries input that could hold a secret.

func errInvalidToken(cause error) error {
	return &domain.Error{Kind: domain.KindUnauthorized, Code: "invalid_token",
		Title: "The access token is not valid", Err: cause}
}

func errInvalidCredentials() error {
	return domain.Errorf(domain.KindUnauthorized, "invalid_credentials", "Invalid username or password")
}

func errInvalidGrant() error {
	return domain.Errorf(domain.KindUnauthorized, "invalid_grant", "The refresh token is not valid")
}

func errInvalidEnrollmentCode() error {
	return domain.Errorf(domain.KindUnauthorized, "invalid_enrollment_code",
		"The enrollment code is not valid, was already used, or has expired")
}

func errTooManyAttempts(retry time.Duration) error {
	return &domain.Error{Kind: domain.KindTooManyRequests, Code: "too_many_attempts",
		Title: "Too many failed attempts; try again later", RetryAfter: retry}
}

// errRefreshInProgress answers a refresh whose token a simultaneous refresh has
// spent while that one has not finished: retrying in a moment is answered.
func errRefreshInProgress() error {
	return &domain.Error{Kind: domain.KindUnavailable, Code: "refresh_in_progress",
		Title: "A simultaneous refresh of this token is still running; retry shortly", RetryAfter: time.Second}
}

func errForbidden() error {
	return domain.Errorf(domain.KindForbidden, "forbidden", "You are not allowed to do this")
}

func errProjectNotFound() error {
	return domain.Errorf(domain.KindNotFound, "project_not_found", "Project not found")
}

func errUserNotFound() error {
	return domain.Errorf(domain.KindNotFound, "user_not_found", "User not found")
}

func errDeviceNotFound() error {
	return domain.Errorf(domain.KindNotFound, "device_not_found", "Device not found")
}

func invalid(code, title, path, message string) error {
	return domain.Invalid(code, title, []domain.Finding{{Path: path, Message: message}})
}

// storeErr passes a store failure on, tagged with the operation for the log; the
// sentinel stays in the chain so the HTTP layer can answer 503 for ErrUnavailable.
func storeErr(op string, err error) error {
	return fmt.Errorf("identity: %s: %w", op, err)
}
