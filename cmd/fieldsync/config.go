package main

import (
	"errors"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"strconv"
	"strings"
	"time"

	"github.com/fieldsync/fieldsync/internal/console"
	"github.com/fieldsync/fieldsync/internal/httpapi"
	"github.com/fieldsync/fieldsync/internal/identity"
)

// Config is every setting of the server. Each has an environment variable and a
// flag; a flag beats the variable, the variable beats the default.
type Config struct {
	Addr string
	// MetricsAddr, when set, is where GET /metrics is served instead of Addr.
	MetricsAddr   string
	DataDir       string
	Store         string
	AdminPassword string
	LogLevel      string
	PublicURL     string
	KeyFile       string
	// SecretKey and SecretKeyFile give the secret that seals the signing keys
	// in the store (identity.Config.SecretKey): its base64 text, or a file
	// holding it. At most one; neither on SQLite means a file generated in the
	// data directory (see secretKey).
	SecretKey        string
	SecretKeyFile    string
	AccessTTL        time.Duration
	RefreshTTL       time.Duration
	DeviceRefreshTTL time.Duration
	EnrollmentTTL    time.Duration
	// RefreshReuseGrace is identity.Config.RefreshReuseGrace, except that 0 turns
	// the grace off (identityConfig translates).
	RefreshReuseGrace time.Duration
	ShutdownTimeout   time.Duration
	MaxBodyBytes      int64
	// MinBodyRate is httpapi.Config.MinBodyRate (bytes per second).
	MinBodyRate int64
	// MaxConnections caps the connections served at once; more wait to be
	// accepted.
	MaxConnections int
	// ValidationFastPath is "on" or "off" (forms.ServiceConfig.NoFastPath).
	ValidationFastPath string
	// Pprof is "on" or "off": with "on", Go's profiles (net/http/pprof) are
	// served under /debug/pprof/ on MetricsAddr, never on the API's address.
	Pprof string
	// TrustedProxies is a comma-separated list of IPs and CIDR prefixes of the
	// reverse proxies whose X-Forwarded-For / Forwarded header is believed
	// (httpapi.ParseTrustedProxies); empty believes none.
	TrustedProxies string
	// MaxAttachmentBytes is media.Config.MaxBytes; UploadExpiry is
	// media.Config.UploadExpiry (issue 13).
	MaxAttachmentBytes int64
	UploadExpiry       time.Duration
	// TLSCert and TLSKey are PEM files of the certificate (chain) and its key;
	// with them the API is served over HTTPS only (see tlsConfig).
	TLSCert, TLSKey string
	// ACMEDomain, instead, has certificates for that name obtained and renewed
	// automatically (Let's Encrypt), cached in the data directory.
	ACMEDomain string
	// ACMEEmail is the contact the CA warns about certificate problems.
	ACMEEmail string
	// RedirectAddr, with TLS on, is where plain HTTP is answered with a
	// redirect to HTTPS (and, with ACMEDomain, the CA's challenges).
	RedirectAddr string
	// MapTiles is the XYZ tile URL template of the console's map and
	// MapTilesAttribution the provider's credit (console.MapTiles); empty
	// draws the map without tiles, offline.
	MapTiles            string
	MapTilesAttribution string
}

// flagHelp is returned for -h: print usage and exit 0.
var flagHelp = flag.ErrHelp

// setting describes one configuration entry; the README's table is written from
// the same list.
type setting struct {
	env, flag, def, help string
	bind                 func(fs *flag.FlagSet, name, def, help string)
}

func settings(c *Config) []setting {
	str := func(p *string) func(*flag.FlagSet, string, string, string) {
		return func(fs *flag.FlagSet, name, def, help string) { fs.StringVar(p, name, def, help) }
	}
	dur := func(p *time.Duration) func(*flag.FlagSet, string, string, string) {
		return func(fs *flag.FlagSet, name, def, help string) {
			d, _ := time.ParseDuration(def)
			fs.DurationVar(p, name, d, help)
		}
	}
	return []setting{
		{"FIELDSYNC_ADDR", "addr", ":8080", "address to listen on", str(&c.Addr)},
		{"FIELDSYNC_METRICS_ADDR", "metrics-addr", "", "address to serve GET /metrics on instead of the API's (for example 127.0.0.1:9090, so the metrics are not public)", str(&c.MetricsAddr)},
		{"FIELDSYNC_DATA_DIR", "data-dir", "./data", "directory of the embedded SQLite store and other local files", str(&c.DataDir)},
		{"FIELDSYNC_STORE", "store", "sqlite", `"sqlite" (embedded, the default) or a mongodb:// or mongodb+srv:// URI`, str(&c.Store)},
		{"FIELDSYNC_ADMIN_PASSWORD", "admin-password", "", "password of the admin user created on first start (if empty: generated and written to admin-password in the data directory, never logged)", str(&c.AdminPassword)},
		{"FIELDSYNC_LOG_LEVEL", "log-level", "info", "debug, info, warn or error", str(&c.LogLevel)},
		{"FIELDSYNC_PUBLIC_URL", "public-url", "", "the URL clients reach this server at (used as token issuer and in links)", str(&c.PublicURL)},
		{"FIELDSYNC_KEY_FILE", "key-file", "", "PEM file with an Ed25519 private key for signing tokens (default: a key generated at first start and kept in the store, sealed with the secret key)", str(&c.KeyFile)},
		{"FIELDSYNC_SECRET_KEY", "secret-key", "", "secret that seals the token signing keys in the store, so a copy of the database alone cannot mint tokens: 32 random bytes in base64 (openssl rand -base64 32); every instance on one store needs the same (default with SQLite: generated into secret-key in the data directory; required with MongoDB)", str(&c.SecretKey)},
		{"FIELDSYNC_SECRET_KEY_FILE", "secret-key-file", "", "file holding the secret key (base64, as for FIELDSYNC_SECRET_KEY), readable by its owner only (chmod 600)", str(&c.SecretKeyFile)},
		{"FIELDSYNC_ACCESS_TOKEN_TTL", "access-token-ttl", "15m", "lifetime of access tokens", dur(&c.AccessTTL)},
		{"FIELDSYNC_REFRESH_TOKEN_TTL", "refresh-token-ttl", "720h", "lifetime of users' refresh tokens", dur(&c.RefreshTTL)},
		{"FIELDSYNC_DEVICE_REFRESH_TOKEN_TTL", "device-refresh-token-ttl", "4320h", "lifetime of devices' refresh tokens, extended at every refresh", dur(&c.DeviceRefreshTTL)},
		{"FIELDSYNC_ENROLLMENT_TTL", "enrollment-ttl", "168h", "how long a device enrollment code stays valid", dur(&c.EnrollmentTTL)},
		{"FIELDSYNC_REFRESH_REUSE_GRACE", "refresh-reuse-grace", "2m", "how long after a refresh a client that lost the answer may retry with the spent refresh token, if it has not used the new one (0 turns it off: every reuse revokes the session)", dur(&c.RefreshReuseGrace)},
		{"FIELDSYNC_SHUTDOWN_TIMEOUT", "shutdown-timeout", "30s", "how long in-flight requests may take to finish on SIGINT/SIGTERM", dur(&c.ShutdownTimeout)},
		{"FIELDSYNC_MAX_BODY_BYTES", "max-body-bytes", "16777216", "largest request body accepted, after decompression", func(fs *flag.FlagSet, name, def, help string) {
			var n int64
			fmt.Sscan(def, &n)
			fs.Int64Var(&c.MaxBodyBytes, name, n, help)
		}},
		{"FIELDSYNC_MIN_BODY_RATE", "min-body-rate", "512", "slowest average pace, in bytes per second, at which a request body may arrive after its first 30 seconds; slower bodies are cut with 408 (keep it below your worst 2G links' rate)", func(fs *flag.FlagSet, name, def, help string) {
			var n int64
			fmt.Sscan(def, &n)
			fs.Int64Var(&c.MinBodyRate, name, n, help)
		}},
		{"FIELDSYNC_MAX_CONNECTIONS", "max-connections", "2048", "most connections served at once; further clients wait to be accepted (bounds what slow or idle clients can hold)", func(fs *flag.FlagSet, name, def, help string) {
			var n int
			fmt.Sscan(def, &n)
			fs.IntVar(&c.MaxConnections, name, n, help)
		}},
		{"FIELDSYNC_TRUSTED_PROXIES", "trusted-proxies", "", "comma-separated IPs and CIDR prefixes of reverse proxies whose X-Forwarded-For or Forwarded header names the client (default: none; the client is the connection's peer)", str(&c.TrustedProxies)},
		{"FIELDSYNC_MAX_ATTACHMENT_BYTES", "max-attachment-bytes", "52428800", "largest attachment (photo, audio, video, PDF) accepted, in bytes; uploads have this limit instead of max-body-bytes", func(fs *flag.FlagSet, name, def, help string) {
			var n int64
			fmt.Sscan(def, &n)
			fs.Int64Var(&c.MaxAttachmentBytes, name, n, help)
		}},
		{"FIELDSYNC_UPLOAD_EXPIRY", "upload-expiry", "168h", "how long an unfinished attachment upload is kept after its last bytes arrived (a tablet may be out of coverage for days)", dur(&c.UploadExpiry)},
		{"FIELDSYNC_TLS_CERT", "tls-cert", "", "PEM file of the TLS certificate (with its chain): the API is then served over HTTPS only (TLS 1.2 and later, with HSTS)", str(&c.TLSCert)},
		{"FIELDSYNC_TLS_KEY", "tls-key", "", "PEM file of the TLS certificate's private key", str(&c.TLSKey)},
		{"FIELDSYNC_ACME_DOMAIN", "acme-domain", "", "DNS name to obtain and renew a certificate for automatically from Let's Encrypt (the server must be reachable on port 443 under that name); instead of tls-cert and tls-key", str(&c.ACMEDomain)},
		{"FIELDSYNC_ACME_EMAIL", "acme-email", "", "contact address given to Let's Encrypt, which warns it of certificate problems (with acme-domain)", str(&c.ACMEEmail)},
		{"FIELDSYNC_HTTP_REDIRECT_ADDR", "http-redirect-addr", "", "with TLS on: address to answer plain HTTP on, with a redirect to HTTPS (for example :80)", str(&c.RedirectAddr)},
		{"FIELDSYNC_PPROF", "pprof", "off", `"on" serves Go's CPU, heap, allocation, mutex and block profiles under /debug/pprof/ on metrics-addr (which must be set, so profiles are never public)`, str(&c.Pprof)},
		{"FIELDSYNC_MAP_TILES", "map-tiles", "", "XYZ tile URL template for the web console's map, such as https://tile.example.org/{z}/{x}/{y}.png (https, or http for a tile server on this machine); analysts' browsers then fetch tiles from that host, without a referrer (default: the map is drawn without tiles and works offline)", str(&c.MapTiles)},
		{"FIELDSYNC_MAP_TILES_ATTRIBUTION", "map-tiles-attribution", "", "the credit the tile provider requires, shown under the map (such as \"© OpenStreetMap contributors\"); required with map-tiles", str(&c.MapTilesAttribution)},
		{"FIELDSYNC_VALIDATION_FAST_PATH", "validation-fast-path", "on", `"off" validates every record with the JSON Schema library alone: same verdicts, slower pushes (a way around a suspected fast-path bug)`, str(&c.ValidationFastPath)},
	}
}

// ParseConfig reads the environment (through getenv) and then the flags in args.
func ParseConfig(args []string, getenv func(string) string, stderr io.Writer) (Config, error) {
	return parseConfig(args, getenv, stderr, nil)
}

// parseConfig is ParseConfig with the flags of a command (fieldsync keys
// rotate-secret) added by extra.
func parseConfig(args []string, getenv func(string) string, stderr io.Writer, extra func(fs *flag.FlagSet)) (Config, error) {
	c, rest, err := parseConfigArgs(args, getenv, stderr, extra)
	if err == nil && len(rest) > 0 {
		return c, fmt.Errorf("unexpected argument %q", rest[0])
	}
	return c, err
}

// parseConfigArgs is parseConfig for a command that takes arguments after its
// flags (fieldsync backup FILE): it returns them.
func parseConfigArgs(args []string, getenv func(string) string, stderr io.Writer, extra func(fs *flag.FlagSet)) (Config, []string, error) {
	var c Config
	fs := flag.NewFlagSet("fieldsync", flag.ContinueOnError)
	fs.SetOutput(stderr)
	if extra != nil {
		extra(fs)
	}
	for _, s := range settings(&c) {
		def := s.def
		if v := getenv(s.env); v != "" {
			def = v
		}
		s.bind(fs, s.flag, def, s.help+" ($"+s.env+")")
	}
	fs.Usage = func() {
		fmt.Fprintf(stderr, "Usage: fieldsync [flags]\n       fieldsync keys rotate [flags]\n       fieldsync keys rotate-secret -new-secret-key-file FILE [flags]\n       fieldsync backup [flags] FILE\n       fieldsync restore [flags] FILE\n       fieldsync migrate [flags] -to mongodb://…\n\nEvery flag can also be set by its environment variable.\n\n")
		fs.PrintDefaults()
	}
	// Durations and numbers given in the environment become flag defaults, and
	// an unparsable default would silently become 0: check them. (A setting is
	// a duration or a number when its own default is one.)
	for _, s := range settings(&c) {
		v := getenv(s.env)
		if v == "" {
			continue
		}
		if _, err := time.ParseDuration(s.def); err == nil {
			if _, err := time.ParseDuration(v); err != nil {
				return c, nil, fmt.Errorf("%s: %q is not a duration (like 15m or 720h)", s.env, v)
			}
		} else if _, err := strconv.ParseInt(s.def, 10, 64); err == nil {
			if _, err := strconv.ParseInt(v, 10, 64); err != nil {
				return c, nil, fmt.Errorf("%s: %q is not a whole number", s.env, v)
			}
		}
	}
	if err := fs.Parse(args); err != nil {
		if errors.Is(err, flag.ErrHelp) {
			return c, nil, flagHelp
		}
		return c, nil, err
	}
	return c, fs.Args(), c.Validate()
}

// Validate checks the settings that have a closed set of values.
func (c Config) Validate() error {
	var errs []error
	if _, err := parseLevel(c.LogLevel); err != nil {
		errs = append(errs, err)
	}
	if c.ValidationFastPath != "on" && c.ValidationFastPath != "off" {
		errs = append(errs, fmt.Errorf("validation-fast-path: %q is neither on nor off", c.ValidationFastPath))
	}
	switch {
	case c.Pprof != "on" && c.Pprof != "off":
		errs = append(errs, fmt.Errorf("pprof: %q is neither on nor off", c.Pprof))
	case c.Pprof == "on" && c.MetricsAddr == "":
		errs = append(errs, errors.New("pprof: on needs metrics-addr, so the profiles are not served where the API is public"))
	}
	if _, err := backendFor(c.Store); err != nil {
		errs = append(errs, err)
	}
	for name, d := range map[string]time.Duration{"access-token-ttl": c.AccessTTL, "refresh-token-ttl": c.RefreshTTL, "device-refresh-token-ttl": c.DeviceRefreshTTL, "enrollment-ttl": c.EnrollmentTTL} {
		if d <= 0 {
			errs = append(errs, fmt.Errorf("%s must be positive", name))
		}
	}
	if c.RefreshReuseGrace < 0 || c.RefreshReuseGrace > identity.MaxRefreshReuseGrace {
		errs = append(errs, fmt.Errorf("refresh-reuse-grace must be between 0 and %s", identity.MaxRefreshReuseGrace))
	}
	if c.ShutdownTimeout < 0 {
		errs = append(errs, errors.New("shutdown-timeout cannot be negative"))
	}
	if err := c.validateTLS(); err != nil {
		errs = append(errs, err)
	}
	if _, err := httpapi.ParseTrustedProxies(c.TrustedProxies); err != nil {
		errs = append(errs, fmt.Errorf("trusted-proxies: %w", err))
	}
	if c.MaxBodyBytes < 1<<20 {
		errs = append(errs, errors.New("max-body-bytes must be at least 1048576"))
	}
	if c.MinBodyRate < 1 {
		errs = append(errs, errors.New("min-body-rate must be at least 1 (byte per second)"))
	}
	if c.MaxConnections < 16 {
		errs = append(errs, errors.New("max-connections must be at least 16"))
	}
	if err := c.validateMapTiles(); err != nil {
		errs = append(errs, err)
	}
	switch {
	case c.SecretKey != "" && c.SecretKeyFile != "":
		errs = append(errs, errors.New("secret-key and secret-key-file are both set: give one"))
	case c.SecretKey != "":
		if _, err := identity.ParseSecretKey(c.SecretKey); err != nil {
			errs = append(errs, fmt.Errorf("secret-key: %w", err))
		}
	case c.SecretKeyFile == "" && strings.HasPrefix(storeKind(c.Store), "mongodb"):
		// A file generated per instance would differ between the instances
		// sharing the database: each would seal with its own secret.
		errs = append(errs, errors.New("a MongoDB store needs FIELDSYNC_SECRET_KEY or FIELDSYNC_SECRET_KEY_FILE, the same on every instance "+
			"(it seals the token signing keys in the database); make one with: (umask 077; openssl rand -base64 32 > secret-key), "+
			"keep it apart from database backups, and set FIELDSYNC_SECRET_KEY_FILE=/path/to/secret-key"))
	}
	return errors.Join(errs...)
}

// validateMapTiles checks the console's tile layer at start-up: a template
// the map page can use and name in its CSP (console.TileOrigin), and the
// credit tile providers require with it.
func (c Config) validateMapTiles() error {
	switch {
	case c.MapTiles != "":
		if _, err := console.TileOrigin(c.MapTiles); err != nil {
			return fmt.Errorf("map-tiles: %w", err)
		}
		if strings.TrimSpace(c.MapTilesAttribution) == "" {
			return errors.New("map-tiles needs map-tiles-attribution: the credit text the tile provider requires (for OpenStreetMap's tiles, \"© OpenStreetMap contributors\"), shown under the map")
		}
	case c.MapTilesAttribution != "":
		return errors.New("map-tiles-attribution is set but map-tiles is not: set both, or neither")
	}
	return nil
}

// consoleMapTiles is the console's tile layer from the settings.
func (m *Main) consoleMapTiles() console.MapTiles {
	return console.MapTiles{URL: m.Config.MapTiles, Attribution: strings.TrimSpace(m.Config.MapTilesAttribution)}
}

func parseLevel(s string) (slog.Level, error) {
	var l slog.Level
	if err := l.UnmarshalText([]byte(s)); err != nil {
		return l, fmt.Errorf("log-level: %q is not one of debug, info, warn, error", s)
	}
	return l, nil
}

// redactURI hides the password of a connection URI so it can be logged.
func redactURI(s string) string {
	at := strings.LastIndex(s, "@")
	scheme := strings.Index(s, "://")
	if at < 0 || scheme < 0 || at < scheme {
		return s
	}
	userinfo := s[scheme+3 : at]
	if i := strings.Index(userinfo, ":"); i >= 0 {
		return s[:scheme+3] + userinfo[:i] + ":xxxxx" + s[at:]
	}
	return s
}

// newLogger makes the JSON logger of the server.
func newLogger(w io.Writer, level string) *slog.Logger {
	l, _ := parseLevel(level)
	return slog.New(slog.NewJSONHandler(w, &slog.HandlerOptions{Level: l}))
}
