package main

import (
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/pem"
	"io"
	"math/big"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

// testCert writes a self-signed certificate for 127.0.0.1 and its key to dir
// and returns their paths and a pool that trusts it.
func testCert(t *testing.T, dir string) (certFile, keyFile string, pool *x509.CertPool) {
	t.Helper()
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	tmpl := &x509.Certificate{
		SerialNumber: big.NewInt(1),
		Subject:      pkix.Name{CommonName: "fieldsync test"},
		NotBefore:    time.Now().Add(-time.Hour),
		NotAfter:     time.Now().Add(time.Hour),
		IPAddresses:  []net.IP{net.ParseIP("127.0.0.1")},
		KeyUsage:     x509.KeyUsageDigitalSignature,
		ExtKeyUsage:  []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth},
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &key.PublicKey, key)
	if err != nil {
		t.Fatal(err)
	}
	kb, err := x509.MarshalECPrivateKey(key)
	if err != nil {
		t.Fatal(err)
	}
	certFile, keyFile = filepath.Join(dir, "cert.pem"), filepath.Join(dir, "key.pem")
	if err := os.WriteFile(certFile, pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: der}), 0o600); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(keyFile, pem.EncodeToMemory(&pem.Block{Type: "EC PRIVATE KEY", Bytes: kb}), 0o600); err != nil {
		t.Fatal(err)
	}
	cert, _ := x509.ParseCertificate(der)
	pool = x509.NewCertPool()
	pool.AddCert(cert)
	return certFile, keyFile, pool
}

// TestTLS: with a certificate the API answers over HTTPS with HSTS, refuses
// TLS 1.1 and plain HTTP on its port, and the redirect listener sends plain
// HTTP to the same URL over HTTPS, keeping the method (308).
func TestTLS(t *testing.T) {
	certFile, keyFile, pool := testCert(t, t.TempDir())
	s, err := startMain(t, "-data-dir", t.TempDir(), "-admin-password", testPassword,
		"-tls-cert", certFile, "-tls-key", keyFile, "-http-redirect-addr", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := s.m.Listener.Addr().String()
	client := func(maxVersion uint16) *http.Client {
		return &http.Client{
			Transport: &http.Transport{TLSClientConfig: &tls.Config{RootCAs: pool, MaxVersion: maxVersion}},
			CheckRedirect: func(*http.Request, []*http.Request) error {
				return http.ErrUseLastResponse
			},
		}
	}
	resp, err := client(0).Get("https://" + addr + "/healthz")
	if err != nil {
		t.Fatalf("GET /healthz over HTTPS: %v", err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusOK || resp.Header.Get("Strict-Transport-Security") != hstsValue {
		t.Errorf("HTTPS: %d, HSTS %q", resp.StatusCode, resp.Header.Get("Strict-Transport-Security"))
	}
	if resp.TLS == nil || resp.TLS.Version < tls.VersionTLS12 {
		t.Errorf("TLS state %+v", resp.TLS)
	}

	if _, err := client(tls.VersionTLS11).Get("https://" + addr + "/healthz"); err == nil {
		t.Error("a TLS 1.1 client was served")
	} else if !strings.Contains(err.Error(), "version") {
		t.Logf("TLS 1.1 refused with: %v", err)
	}

	// Plain HTTP on the TLS port is no answer a client could use.
	if resp, err := http.Get("http://" + addr + "/healthz"); err == nil {
		resp.Body.Close()
		if resp.StatusCode == http.StatusOK {
			t.Error("plain HTTP was served on the TLS port")
		}
	}

	raddr := s.m.RedirectListener.Addr().String()
	req, _ := http.NewRequest(http.MethodPost, "http://"+raddr+"/v1/auth/token?x=1", strings.NewReader("{}"))
	resp, err = client(0).Do(req)
	if err != nil {
		t.Fatal(err)
	}
	io.Copy(io.Discard, resp.Body)
	resp.Body.Close()
	_, port, _ := net.SplitHostPort(addr)
	want := "https://127.0.0.1:" + port + "/v1/auth/token?x=1"
	if resp.StatusCode != http.StatusPermanentRedirect || resp.Header.Get("Location") != want {
		t.Errorf("redirect: %d to %q, want 308 to %q", resp.StatusCode, resp.Header.Get("Location"), want)
	}
}

// TestTLSConfigValidation: the TLS settings that cannot work together are
// refused at start, with the reason.
func TestTLSConfigValidation(t *testing.T) {
	for _, tc := range []struct {
		args []string
		want string
	}{
		{[]string{"-tls-cert", "c.pem"}, "give both or neither"},
		{[]string{"-tls-cert", "c.pem", "-tls-key", "k.pem", "-acme-domain", "sync.example.org"}, "give one"},
		{[]string{"-acme-domain", "https://sync.example.org/"}, "DNS name alone"},
		{[]string{"-http-redirect-addr", ":80"}, "redirects to HTTPS"},
	} {
		_, err := ParseConfig(tc.args, env(nil), io.Discard)
		if err == nil || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("%v: %v, want an error saying %q", tc.args, err, tc.want)
		}
	}
	if _, err := ParseConfig([]string{"-acme-domain", "sync.example.org", "-http-redirect-addr", ":80"}, env(nil), io.Discard); err != nil {
		t.Errorf("ACME with a redirect: %v", err)
	}
}
