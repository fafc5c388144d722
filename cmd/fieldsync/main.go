// Command fieldsync is the sync server: it serves the v1 protocol to tablets, the
// fsctl command-line client and analysts' scripts, on an embedded SQLite store by
// default or on MongoDB.
//
// Usage:
//
//	fieldsync [flags]              run the server
//	fieldsync keys rotate [flags]  make a new token signing key; older keys keep
//	                               verifying the tokens they signed until those expire
//	fieldsync keys rotate-secret -new-secret-key-file FILE [flags]
//	                               re-seal the signing keys in the store under a new
//	                               secret key (README: "Secrets and backups")
//	fieldsync backup [flags] FILE  copy the SQLite store and the data directory
//	                               while the server runs (README: Operations)
//	fieldsync restore [flags] FILE put a backup back, with the server stopped
//	fieldsync migrate -to URI      copy the SQLite store to MongoDB
package main

import (
	"context"
	"crypto/tls"
	"errors"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"net/http/pprof"
	"os"
	"os/signal"
	"runtime"
	"strings"
	"syscall"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"
	"golang.org/x/net/netutil"

	"github.com/fieldsync/fieldsync/internal/console"
	"github.com/fieldsync/fieldsync/internal/domain"
	"github.com/fieldsync/fieldsync/internal/forms"
	"github.com/fieldsync/fieldsync/internal/httpapi"
	"github.com/fieldsync/fieldsync/internal/identity"
	"github.com/fieldsync/fieldsync/internal/media"
	"github.com/fieldsync/fieldsync/internal/records"
)

func main() {
	os.Exit(run(context.Background(), os.Args[1:], os.Getenv, os.Stderr))
}

// keysUsage is the help of fieldsync keys.
const keysUsage = `Usage: fieldsync keys rotate [flags]
       fieldsync keys rotate-secret -new-secret-key-file FILE [flags]

  rotate          make a new key to sign tokens with, in the store, so every
                  instance uses it; tokens signed by older keys stay valid
                  until they expire.
  rotate-secret   re-seal every signing key in the store under the secret key
                  in FILE (base64 of 32 random bytes, mode 0600). Stop every
                  instance first, and start them again with the new secret;
                  tokens stay valid. The current secret is the one the server
                  flags give (FIELDSYNC_SECRET_KEY, FIELDSYNC_SECRET_KEY_FILE or
                  secret-key in the data directory).

  Both take the server's flags (the store to open); see fieldsync -h.
`

// run is main without the process around it, so tests can call it.
func run(ctx context.Context, args []string, getenv func(string) string, stderr io.Writer) int {
	ctx, stop := signal.NotifyContext(ctx, os.Interrupt, syscall.SIGTERM)
	defer stop()

	if len(args) >= 1 {
		if cmd, ok := fileCommands[args[0]]; ok {
			return runFileCommand(ctx, args[0], cmd, args[1:], getenv, stderr)
		}
	}
	if len(args) >= 1 && args[0] == "migrate" {
		return runMigrate(ctx, args[1:], getenv, stderr)
	}
	if len(args) >= 1 && args[0] == "keys" && (len(args) < 2 || (args[1] != "rotate" && args[1] != "rotate-secret")) {
		// "keys" alone, or with a word it does not know: say what it takes.
		fmt.Fprint(stderr, keysUsage)
		if len(args) >= 2 && args[1] != "-h" && args[1] != "-help" && args[1] != "--help" {
			fmt.Fprintf(stderr, "fieldsync keys: unknown command %q\n", args[1])
			return 2
		}
		return 0
	}
	rotate := len(args) >= 2 && args[0] == "keys" && args[1] == "rotate"
	rotateSecret := len(args) >= 2 && args[0] == "keys" && args[1] == "rotate-secret"
	var extra func(*flag.FlagSet)
	var newSecretFile string
	if rotateSecret {
		extra = func(fs *flag.FlagSet) {
			fs.StringVar(&newSecretFile, "new-secret-key-file", "", "file with the new secret key (fieldsync keys rotate-secret)")
		}
	}
	if rotate || rotateSecret {
		args = args[2:]
	}
	cfg, err := parseConfig(args, getenv, stderr, extra)
	if errors.Is(err, flagHelp) {
		return 0
	}
	if err != nil {
		fmt.Fprintln(stderr, "fieldsync:", err)
		return 2
	}
	m := NewMain(cfg, stderr)
	switch {
	case rotate:
		err = m.RotateKeys(ctx)
	case rotateSecret:
		err = m.RotateSecret(ctx, newSecretFile)
	default:
		err = m.Run(ctx)
	}
	if cerr := m.Close(); err == nil {
		err = cerr
	}
	if err != nil {
		m.Logger.Error("fieldsync stopped", "error", err.Error())
		return 1
	}
	return 0
}

// fileCommand is a command that takes the server's flags and one argument: a
// file (fieldsync backup FILE, fieldsync restore FILE).
type fileCommand struct {
	usage string
	run   func(m *Main, ctx context.Context, file string) error
}

// fileCommands are the commands runFileCommand runs.
var fileCommands = map[string]fileCommand{
	"backup":  {usage: backupUsage, run: (*Main).Backup},
	"restore": {usage: backupUsage, run: (*Main).Restore},
}

// runFileCommand runs the command name with args (flags, then the file).
func runFileCommand(ctx context.Context, name string, cmd fileCommand, args []string, getenv func(string) string, stderr io.Writer) int {
	for _, a := range args {
		if a == "-h" || a == "-help" || a == "--help" {
			fmt.Fprint(stderr, cmd.usage)
			return 0
		}
	}
	cfg, rest, err := parseConfigArgs(args, getenv, io.Discard, nil)
	if err == nil && len(rest) != 1 {
		err = fmt.Errorf("give one FILE after the flags (got %d arguments)", len(rest))
	}
	if err != nil {
		fmt.Fprint(stderr, cmd.usage)
		fmt.Fprintf(stderr, "fieldsync %s: %v\n", name, err)
		return 2
	}
	m := NewMain(cfg, stderr)
	err = cmd.run(m, ctx, rest[0])
	if cerr := m.Close(); err == nil {
		err = cerr
	}
	if err != nil {
		fmt.Fprintf(stderr, "fieldsync %s: %v\n", name, err)
		return 1
	}
	return 0
}

// runMigrate runs fieldsync migrate -to URI [flags].
func runMigrate(ctx context.Context, args []string, getenv func(string) string, stderr io.Writer) int {
	var to string
	cfg, err := parseConfig(args, getenv, io.Discard, func(fs *flag.FlagSet) {
		fs.StringVar(&to, "to", "", "the MongoDB URI to copy the store to")
	})
	if errors.Is(err, flagHelp) {
		fmt.Fprint(stderr, migrateUsage)
		return 0
	}
	if err == nil && to == "" {
		err = errors.New("-to mongodb://… is required")
	}
	if err != nil {
		fmt.Fprint(stderr, migrateUsage)
		fmt.Fprintln(stderr, "fieldsync migrate:", err)
		return 2
	}
	m := NewMain(cfg, stderr)
	if err := m.Migrate(ctx, to); err != nil {
		fmt.Fprintln(stderr, "fieldsync migrate:", err)
		return 1
	}
	return 0
}

// Main is the running program: its configuration, store and HTTP server.
type Main struct {
	Config Config
	Logger *slog.Logger
	Store  domain.Store
	Server *http.Server

	// Listener is set once Run listens; tests read its address.
	Listener net.Listener
	// MetricsListener is set once Run listens on Config.MetricsAddr.
	MetricsListener net.Listener
	// RedirectListener is set once Run listens on Config.RedirectAddr.
	RedirectListener net.Listener
	// Ready is closed once Run serves requests.
	Ready chan struct{}
	// Out receives what a command says to the person who ran it (fieldsync
	// keys rotate), apart from the log.
	Out io.Writer

	// unlock releases the data directory's lock (lockDataDir), taken while a
	// SQLite store is open.
	unlock func()
}

// NewMain makes a Main that logs to w.
func NewMain(cfg Config, w io.Writer) *Main {
	return &Main{Config: cfg, Logger: newLogger(w, cfg.LogLevel), Ready: make(chan struct{}), Out: os.Stdout}
}

// OpenStore opens the store the configuration names (see storeBackends);
// observe, when set, times its operations.
func (m *Main) OpenStore(ctx context.Context, observe func(op string, took time.Duration)) (domain.Store, error) {
	b, err := backendFor(m.Config.Store)
	if err != nil {
		return nil, err
	}
	if storeKind(m.Config.Store) == "sqlite" && m.unlock == nil {
		unlock, err := lockDataDir(m.Config.DataDir, false)
		if errors.Is(err, errDataDirInUse) {
			return nil, fmt.Errorf("the data directory %s is being restored (fieldsync restore): start again once it is done", m.Config.DataDir)
		}
		if err != nil {
			return nil, err
		}
		m.unlock = unlock
	}
	return b.open(ctx, storeParams{Setting: m.Config.Store, DataDir: m.Config.DataDir, Logger: m.Logger, Observe: observe})
}

// Run opens the store, bootstraps it, serves until ctx ends (SIGINT/SIGTERM), then
// lets in-flight requests finish. The store is closed by Close.
func (m *Main) Run(ctx context.Context) error {
	reg := prometheus.NewRegistry()
	reg.MustRegister(collectors.NewGoCollector(), collectors.NewProcessCollector(collectors.ProcessCollectorOpts{}))
	observe, err := httpapi.StoreMetrics(reg)
	if err != nil {
		return err
	}
	if m.Store, err = m.OpenStore(ctx, observe); err != nil {
		return fmt.Errorf("open store: %w", err)
	}

	ids, err := m.openIdentity(ctx)
	if err != nil {
		return fmt.Errorf("identity: %w", err)
	}
	password, file, err := m.adminPassword(ctx)
	if err != nil {
		return fmt.Errorf("bootstrap: %w", err)
	}
	bootstrap := ids.Bootstrap
	if file != "" {
		bootstrap = ids.BootstrapGeneratedPassword
	}
	if _, err := bootstrap(ctx, password); err != nil {
		return fmt.Errorf("bootstrap: %w", err)
	}
	if file != "" {
		// Where the password is, never the password: logs are shipped.
		m.Logger.Warn("user admin has a generated password, in a file readable by this user only: sign in as admin, change the password, then delete the file",
			"username", "admin", "password_file", file)
	}

	fs := forms.NewService(m.formsConfig())
	recs := records.New(records.Config{Store: m.Store, Forms: records.FormsOf(fs), Logger: m.Logger})
	med := media.New(media.Config{Store: m.Store, Records: recs, MaxBytes: m.Config.MaxAttachmentBytes,
		UploadExpiry: m.Config.UploadExpiry, Logger: m.Logger})
	// Expired uploads and files no record names are removed in the
	// background, on every instance (each removal is conditional).
	sweepCtx, stopSweep := context.WithCancel(context.Background())
	defer stopSweep()
	go med.Run(sweepCtx, mediaSweepInterval)
	proxies, err := httpapi.ParseTrustedProxies(m.Config.TrustedProxies)
	if err != nil {
		return fmt.Errorf("trusted-proxies: %w", err)
	}
	h, err := httpapi.New(httpapi.Config{
		Store:            m.Store,
		Logger:           m.Logger,
		MaxBodyBytes:     m.Config.MaxBodyBytes,
		MinBodyRate:      m.Config.MinBodyRate,
		MetricsElsewhere: m.Config.MetricsAddr != "",
		Registry:         reg,
		Authenticator:    ids,
		Identity:         ids,
		Forms:            fs,
		Records:          recs,
		Media:            med,
		TrustedProxies:   proxies,
		PublicURL:        m.Config.PublicURL,
		// Collect's files go to the media service (httpapi's default).
	})
	if err != nil {
		return err
	}
	// The web console (issue 17), at / beside the API, on the same services.
	if _, err := console.Mount(console.Config{API: h, Identity: ids, Store: m.Store, Forms: fs, Records: recs, Media: med, Logger: m.Logger, MapTiles: m.consoleMapTiles()}); err != nil {
		return fmt.Errorf("console: %w", err)
	}
	tlsCfg, redirect, err := m.tlsConfig()
	if err != nil {
		return fmt.Errorf("tls: %w", err)
	}
	var handler http.Handler = h
	if tlsCfg != nil {
		handler = withHSTS(h)
	}
	ln, err := net.Listen("tcp", m.Config.Addr)
	if err != nil {
		return err
	}
	m.Listener = ln
	// Past the cap, clients wait in the kernel's accept queue instead of
	// each taking a goroutine and a file descriptor.
	ln = netutil.LimitListener(ln, m.Config.MaxConnections)
	if tlsCfg != nil {
		ln = tls.NewListener(ln, tlsCfg)
	}
	if m.Config.RedirectAddr != "" {
		rln, err := net.Listen("tcp", m.Config.RedirectAddr)
		if err != nil {
			ln.Close()
			return fmt.Errorf("http-redirect-addr: %w", err)
		}
		m.RedirectListener = rln
		rs := &http.Server{Handler: redirect, ReadHeaderTimeout: 10 * time.Second,
			ErrorLog: slog.NewLogLogger(m.Logger.Handler(), slog.LevelWarn)}
		go func() { _ = rs.Serve(rln) }()
		defer rs.Close()
		m.Logger.Info("redirecting plain HTTP to HTTPS", "addr", rln.Addr().String())
	}
	m.Server = &http.Server{
		Handler:           handler,
		ReadHeaderTimeout: 10 * time.Second,
		IdleTimeout:       120 * time.Second,
		ErrorLog:          slog.NewLogLogger(m.Logger.Handler(), slog.LevelWarn),
	}
	var metricsServer *http.Server
	if m.Config.MetricsAddr != "" {
		mln, err := net.Listen("tcp", m.Config.MetricsAddr)
		if err != nil {
			ln.Close()
			return fmt.Errorf("metrics address: %w", err)
		}
		m.MetricsListener = mln
		metricsServer = &http.Server{Handler: m.metricsHandler(h.MetricsHandler()), ReadHeaderTimeout: 10 * time.Second,
			ErrorLog: slog.NewLogLogger(m.Logger.Handler(), slog.LevelWarn)}
		go func() { _ = metricsServer.Serve(mln) }()
		defer metricsServer.Close()
		m.Logger.Info("metrics served apart", "addr", mln.Addr().String())
	}
	errc := make(chan error, 1)
	go func() { errc <- m.Server.Serve(ln) }()
	m.Logger.Info("fieldsync listening", "addr", ln.Addr().String(), "tls", tlsCfg != nil)
	close(m.Ready)

	select {
	case err := <-errc:
		return err
	case <-ctx.Done():
	}
	m.Logger.Info("shutting down: waiting for in-flight requests", "timeout", m.Config.ShutdownTimeout.String())
	sctx, cancel := context.WithTimeout(context.Background(), m.Config.ShutdownTimeout)
	defer cancel()
	if err := m.Server.Shutdown(sctx); err != nil {
		return fmt.Errorf("shutdown: %w", err)
	}
	if err := <-errc; err != nil && !errors.Is(err, http.ErrServerClosed) {
		return err
	}
	return nil
}

// mediaSweepInterval is how often expired uploads and unreferenced files
// are looked for.
const mediaSweepInterval = time.Hour

// RotateKeys makes a new signing key in the store (fieldsync keys rotate).
func (m *Main) RotateKeys(ctx context.Context) error {
	st, err := m.OpenStore(ctx, nil)
	if err != nil {
		return fmt.Errorf("open store: %w", err)
	}
	m.Store = st
	ids, err := m.openIdentity(ctx)
	if err != nil {
		return err
	}
	kid, err := ids.RotateKeys(ctx)
	if err != nil {
		return err
	}
	m.Logger.Info("signing key rotated", "kid", kid)
	fmt.Fprintf(m.Out, "New signing key %s made; it signs every token from now on. Tokens signed by the older keys stay valid until they expire.\n", kid)
	return nil
}

// formsConfig is the forms service's part of the configuration.
func (m *Main) formsConfig() forms.ServiceConfig {
	return forms.ServiceConfig{Store: m.Store, NoFastPath: m.Config.ValidationFastPath == "off", Audit: m.Store, Logger: m.Logger}
}

func (m *Main) identityConfig() identity.Config {
	iss := "fieldsync"
	if m.Config.PublicURL != "" {
		iss = strings.TrimRight(m.Config.PublicURL, "/")
	}
	grace := m.Config.RefreshReuseGrace
	if grace == 0 {
		grace = identity.NoRefreshReuseGrace // 0 is "off" here, "the default" there
	}
	return identity.Config{
		Store:             m.Store,
		Logger:            m.Logger,
		Issuer:            iss,
		AccessTTL:         m.Config.AccessTTL,
		RefreshTTL:        m.Config.RefreshTTL,
		DeviceRefreshTTL:  m.Config.DeviceRefreshTTL,
		EnrollmentTTL:     m.Config.EnrollmentTTL,
		RefreshReuseGrace: grace,
		KeyFile:           m.Config.KeyFile,
	}
}

// Close closes the store after the server stopped.
func (m *Main) Close() error {
	var err error
	if m.Store != nil {
		err = m.Store.Close()
		m.Store = nil
	}
	if m.unlock != nil {
		m.unlock()
		m.unlock = nil
	}
	return err
}

// metricsHandler is what the metrics address serves: GET /metrics and, with
// FIELDSYNC_PPROF=on, Go's profiles under /debug/pprof/. Mutex and block
// profiling are switched on with them (at rates that cost little), since lock
// waits are what a profile of a busy store shows first.
func (m *Main) metricsHandler(metrics http.Handler) http.Handler {
	if m.Config.Pprof != "on" {
		return metrics
	}
	runtime.SetMutexProfileFraction(100)
	runtime.SetBlockProfileRate(int(100 * time.Microsecond))
	mux := http.NewServeMux()
	mux.Handle("/metrics", metrics)
	mux.HandleFunc("/debug/pprof/", pprof.Index)
	mux.HandleFunc("/debug/pprof/cmdline", pprof.Cmdline)
	mux.HandleFunc("/debug/pprof/profile", pprof.Profile)
	mux.HandleFunc("/debug/pprof/symbol", pprof.Symbol)
	mux.HandleFunc("/debug/pprof/trace", pprof.Trace)
	return mux
}
