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
package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"os"
	"os/signal"
	"path/filepath"
	"strings"
	"syscall"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"
	"golang.org/x/net/netutil"

	"github.com/fieldsync/fieldsync/internal/domain"
	"github.com/fieldsync/fieldsync/internal/forms"
	"github.com/fieldsync/fieldsync/internal/httpapi"
	"github.com/fieldsync/fieldsync/internal/identity"
	"github.com/fieldsync/fieldsync/internal/openrosa/bridge"
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
	// Ready is closed once Run serves requests.
	Ready chan struct{}
	// Out receives what a command says to the person who ran it (fieldsync
	// keys rotate), apart from the log.
	Out io.Writer
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
	if _, err := ids.Bootstrap(ctx, password); err != nil {
		return fmt.Errorf("bootstrap: %w", err)
	}
	if file != "" {
		// Where the password is, never the password: logs are shipped.
		m.Logger.Warn("user admin has a generated password, in a file readable by this user only: sign in as admin, change the password, then delete the file",
			"username", "admin", "password_file", file)
	}

	fs := forms.NewService(m.formsConfig())
	recs := records.New(records.Config{Store: m.Store, Forms: records.FormsOf(fs), Logger: m.Logger})
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
		TrustedProxies:   proxies,
		PublicURL:        m.Config.PublicURL,
		// TODO(lead, issue 14): internal/media's store once merged.
		OpenRosaFiles: bridge.DirSink{Dir: filepath.Join(m.Config.DataDir, "openrosa-files")},
	})
	if err != nil {
		return err
	}
	ln, err := net.Listen("tcp", m.Config.Addr)
	if err != nil {
		return err
	}
	m.Listener = ln
	// Past the cap, clients wait in the kernel's accept queue instead of
	// each taking a goroutine and a file descriptor.
	ln = netutil.LimitListener(ln, m.Config.MaxConnections)
	m.Server = &http.Server{
		Handler:           h,
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
		metricsServer = &http.Server{Handler: h.MetricsHandler(), ReadHeaderTimeout: 10 * time.Second,
			ErrorLog: slog.NewLogLogger(m.Logger.Handler(), slog.LevelWarn)}
		go func() { _ = metricsServer.Serve(mln) }()
		defer metricsServer.Close()
		m.Logger.Info("metrics served apart", "addr", mln.Addr().String())
	}
	errc := make(chan error, 1)
	go func() { errc <- m.Server.Serve(ln) }()
	m.Logger.Info("fieldsync listening", "addr", ln.Addr().String())
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
	return forms.ServiceConfig{Store: m.Store, NoFastPath: m.Config.ValidationFastPath == "off"}
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
	if m.Store == nil {
		return nil
	}
	return m.Store.Close()
}
