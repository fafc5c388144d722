package main

import (
	"crypto/tls"
	"errors"
	"net"
	"net/http"
	"path/filepath"
	"strings"

	"golang.org/x/crypto/acme/autocert"
)

// acmeCacheDir is the directory, in the data directory, where the ACME client
// keeps its account key and certificates (FIELDSYNC_ACME_DOMAIN).
const acmeCacheDir = "acme"

// hstsValue is the Strict-Transport-Security header sent over TLS: a year,
// so that a tablet that once reached the server over HTTPS never again sends
// a token in clear text, even when a captive portal or a hostile network
// offers plain HTTP.
const hstsValue = "max-age=31536000"

// tlsOn reports whether the server serves HTTPS.
func (c Config) tlsOn() bool { return c.TLSCert != "" || c.ACMEDomain != "" }

// validateTLS checks the TLS settings against each other.
func (c Config) validateTLS() error {
	var errs []error
	if (c.TLSCert == "") != (c.TLSKey == "") {
		errs = append(errs, errors.New("tls-cert and tls-key go together: give both or neither"))
	}
	if c.ACMEDomain != "" && c.TLSCert != "" {
		errs = append(errs, errors.New("acme-domain and tls-cert are both set: give one (a certificate of your own, or one obtained automatically)"))
	}
	if c.ACMEDomain != "" && (strings.ContainsAny(c.ACMEDomain, "/: ") || !strings.Contains(c.ACMEDomain, ".")) {
		errs = append(errs, errors.New("acme-domain: give the server's DNS name alone, like sync.example.org"))
	}
	if c.RedirectAddr != "" && !c.tlsOn() {
		errs = append(errs, errors.New("http-redirect-addr redirects to HTTPS: set tls-cert and tls-key, or acme-domain"))
	}
	return errors.Join(errs...)
}

// tlsConfig returns the TLS configuration of the API listener, nil when TLS
// is off, and the handler of the plain-HTTP redirect listener (which, with
// ACME, also answers the CA's HTTP-01 challenges).
func (m *Main) tlsConfig() (*tls.Config, http.Handler, error) {
	c := m.Config
	if !c.tlsOn() {
		return nil, nil, nil
	}
	redirect := http.Handler(http.HandlerFunc(m.redirectToHTTPS))
	var cfg *tls.Config
	if c.ACMEDomain != "" {
		mgr := &autocert.Manager{
			Prompt:     autocert.AcceptTOS,
			HostPolicy: autocert.HostWhitelist(c.ACMEDomain),
			// In the data directory, so a restart does not ask the CA again
			// (it limits how often it issues for one name).
			Cache: autocert.DirCache(filepath.Join(c.DataDir, acmeCacheDir)),
			Email: c.ACMEEmail,
		}
		cfg = mgr.TLSConfig() // answers the TLS-ALPN-01 challenge on the API port
		redirect = mgr.HTTPHandler(redirect)
	} else {
		cert, err := tls.LoadX509KeyPair(c.TLSCert, c.TLSKey)
		if err != nil {
			return nil, nil, err
		}
		cfg = &tls.Config{Certificates: []tls.Certificate{cert}, NextProtos: []string{"h2", "http/1.1"}}
	}
	// TLS 1.0 and 1.1 are broken and retired (RFC 8996); every Android since
	// 5 speaks 1.2.
	cfg.MinVersion = tls.VersionTLS12
	return cfg, redirect, nil
}

// redirectToHTTPS answers a plain-HTTP request with a permanent redirect to
// the same URL over HTTPS, on the API listener's port.
func (m *Main) redirectToHTTPS(w http.ResponseWriter, r *http.Request) {
	if pub := strings.TrimRight(m.Config.PublicURL, "/"); strings.HasPrefix(pub, "https://") {
		http.Redirect(w, r, pub+r.URL.RequestURI(), http.StatusPermanentRedirect)
		return
	}
	host := r.Host
	if h, _, err := net.SplitHostPort(host); err == nil {
		host = h
	}
	if m.Listener != nil {
		if _, port, err := net.SplitHostPort(m.Listener.Addr().String()); err == nil && port != "443" {
			host = net.JoinHostPort(host, port)
		}
	}
	// 308 keeps the method and body: a tablet's POST is redirected as a POST.
	http.Redirect(w, r, "https://"+host+r.URL.RequestURI(), http.StatusPermanentRedirect)
}

// withHSTS adds Strict-Transport-Security to every answer of h.
func withHSTS(h http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Strict-Transport-Security", hstsValue)
		h.ServeHTTP(w, r)
	})
}
