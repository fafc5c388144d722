package main

import (
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"io"
	"log"
	"math/big"
	"net"
	"net/http"
	"net/http/httptest"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"
)

// TestFsctlNetworkErrors: a server that cannot be reached, or not safely, is
// told in one sentence with what to check, against real listeners on
// loopback.
func TestFsctlNetworkErrors(t *testing.T) {
	ok := http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) { w.WriteHeader(http.StatusOK) })

	closed := freeAddr(t) // nothing listens there
	silent := silentListener(t)
	tlsSrv := httptest.NewUnstartedServer(ok)
	tlsSrv.Config.ErrorLog = log.New(io.Discard, "", 0) // the handshakes fail on purpose
	tlsSrv.StartTLS()
	t.Cleanup(tlsSrv.Close)
	tlsAddr := tlsSrv.Listener.Addr().String()
	_, tlsPort, _ := net.SplitHostPort(tlsAddr)
	plain := httptest.NewServer(ok)
	t.Cleanup(plain.Close)
	expired, expiredClient := expiredTLSServer(t, ok)

	for _, tc := range []struct {
		name   string
		client *http.Client
		args   []string
		want   string
	}{
		{"server down", nil, []string{"health", "--server", "http://" + closed},
			"cannot reach fieldsync at http://" + closed + ": the connection was refused. Is fieldsync running at http://" + closed + "? Is the address right?"},
		{"DNS", nil, []string{"health", "--server", "https://fieldsync.invalid"},
			"cannot find the server fieldsync.invalid: its name does not resolve (DNS). Is the address right? Is this computer online?"},
		{"timeout", nil, []string{"--timeout", "200ms", "health", "--server", "http://" + silent},
			"http://" + silent + " did not answer within 200ms: is the server overloaded or the network slow? Check the address, or give more time with fsctl --timeout"},
		{"timeout after the command", nil, []string{"health", "--server", "http://" + silent, "--timeout", "150ms"},
			"http://" + silent + " did not answer within 150ms: "},
		{"unknown authority", nil, []string{"health", "--server", tlsSrv.URL},
			"the TLS certificate of " + tlsSrv.URL + " is signed by an authority this computer does not trust (a self-signed certificate?)"},
		{"name mismatch", tlsSrv.Client(), []string{"health", "--server", "https://localhost:" + tlsPort},
			"the TLS certificate of https://localhost:" + tlsPort + " is not made for the name localhost (it is for example.com, "},
		{"expired", expiredClient, []string{"health", "--server", expired},
			"the TLS certificate of " + expired + " has expired (or the clock of this computer is wrong: it says "},
		{"http to an https port", nil, []string{"health", "--server", "http://" + tlsAddr},
			"http://" + tlsAddr + " answers in HTTPS, not plain HTTP: use https://" + tlsAddr},
		{"https to an http port", nil, []string{"health", "--server", strings.Replace(plain.URL, "http:", "https:", 1)},
			strings.Replace(plain.URL, "http:", "https:", 1) + " does not speak HTTPS on that port (it answered in plain HTTP): is the port right?"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			c := &cli{t: t, env: map[string]string{"FSCTL_CONFIG": filepath.Join(t.TempDir(), "fsctl.json")}, httpClient: tc.client}
			code, out, errOut := c.run("", tc.args...)
			if code != exitError || out != "" {
				t.Errorf("exit %d, stdout %q; want exit 1 and nothing on stdout", code, out)
			}
			if !strings.HasPrefix(errOut, "fsctl: "+tc.want) || strings.Count(errOut, "\n") != 1 {
				t.Errorf("stderr:\n%s\nwant one line starting with:\nfsctl: %s", errOut, tc.want)
			}
			for _, chain := range []string{"dial tcp", `Get "`, "x509:", "tls:", "Client.Timeout"} {
				if strings.Contains(errOut, chain) {
					t.Errorf("stderr shows Go's error chain (%q): %s", chain, errOut)
				}
			}
		})
	}
}

// TestFsctlNetworkErrorLoggedIn: a command of a logged-in user says the same
// as health does, and does not try a refused connection's server forever.
func TestFsctlNetworkErrorLoggedIn(t *testing.T) {
	c, _ := newSyncCLI(t)
	path := c.env["FSCTL_CONFIG"]
	cfg := readConfig(t, path)
	closed := freeAddr(t)
	cfg.Server = "http://" + closed
	writeConfig(t, path, cfg)
	code, _, errOut := c.run("", "pull", "--project", "north")
	if code != exitError || !strings.HasSuffix(errOut, "fsctl: cannot reach fieldsync at http://"+closed+": the connection was refused. Is fieldsync running at http://"+closed+"? Is the address right?\n") {
		t.Errorf("pull from a server that is down: exit %d\n%s", code, errOut)
	}
}

// freeAddr is a loopback address where nothing listens.
func freeAddr(t *testing.T) string {
	t.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := l.Addr().String()
	l.Close()
	return addr
}

// silentListener accepts connections and never answers.
func silentListener(t *testing.T) string {
	t.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	var mu sync.Mutex
	var conns []net.Conn
	go func() {
		for {
			c, err := l.Accept()
			if err != nil {
				return
			}
			mu.Lock()
			conns = append(conns, c)
			mu.Unlock()
		}
	}()
	t.Cleanup(func() {
		l.Close()
		mu.Lock()
		defer mu.Unlock()
		for _, c := range conns {
			c.Close()
		}
	})
	return l.Addr().String()
}

// expiredTLSServer serves h with a certificate for 127.0.0.1 that expired an
// hour ago, and returns its URL and a client that trusts that certificate.
func expiredTLSServer(t *testing.T, h http.Handler) (string, *http.Client) {
	t.Helper()
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	tmpl := &x509.Certificate{
		SerialNumber:          big.NewInt(1),
		Subject:               pkix.Name{CommonName: "fieldsync test"},
		IPAddresses:           []net.IP{net.ParseIP("127.0.0.1")},
		NotBefore:             time.Now().Add(-48 * time.Hour),
		NotAfter:              time.Now().Add(-time.Hour),
		KeyUsage:              x509.KeyUsageDigitalSignature | x509.KeyUsageCertSign,
		ExtKeyUsage:           []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth},
		BasicConstraintsValid: true,
		IsCA:                  true,
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &key.PublicKey, key)
	if err != nil {
		t.Fatal(err)
	}
	cert, err := x509.ParseCertificate(der)
	if err != nil {
		t.Fatal(err)
	}
	srv := httptest.NewUnstartedServer(h)
	srv.Config.ErrorLog = log.New(io.Discard, "", 0)
	srv.TLS = &tls.Config{Certificates: []tls.Certificate{{Certificate: [][]byte{der}, PrivateKey: key}}}
	srv.StartTLS()
	t.Cleanup(srv.Close)
	pool := x509.NewCertPool()
	pool.AddCert(cert)
	return srv.URL, &http.Client{Transport: &http.Transport{TLSClientConfig: &tls.Config{RootCAs: pool}}}
}
