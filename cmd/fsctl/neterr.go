package main

import (
	"bytes"
	"context"
	"crypto/tls"
	"crypto/x509"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/url"
	"strings"
	"syscall"
	"time"
)

// A failed exchange with the server is told as one sentence saying what went
// wrong and what to check, not as Go's chain of wrapped errors ("Get
// \"https://…\": dial tcp …: connect: connection refused"): the people who run
// fsctl are admins and analysts, not Go programmers.

// errPlainHTTPToTLS is the answer of an HTTPS server to a plain HTTP request.
var errPlainHTTPToTLS = errors.New("the server speaks HTTPS on this port")

// schemeCheck is a transport that recognises the 400 an HTTPS server answers
// to plain HTTP (Go's "Client sent an HTTP request to an HTTPS server", nginx's
// "The plain HTTP request was sent to HTTPS port"): without it, that answer
// reads as a "400 Bad Request" from fieldsync.
type schemeCheck struct{ base http.RoundTripper }

// RoundTrip sends req and returns errPlainHTTPToTLS for that 400.
func (t schemeCheck) RoundTrip(req *http.Request) (*http.Response, error) {
	resp, err := t.base.RoundTrip(req)
	if err != nil || req.URL.Scheme != "http" || resp.StatusCode != http.StatusBadRequest ||
		strings.Contains(resp.Header.Get("Content-Type"), "json") {
		return resp, err
	}
	head := make([]byte, 512)
	n, _ := io.ReadFull(resp.Body, head)
	head = head[:n]
	if bytes.Contains(head, []byte("HTTP request to an HTTPS server")) || bytes.Contains(head, []byte("plain HTTP request was sent to HTTPS port")) {
		resp.Body.Close()
		return nil, errPlainHTTPToTLS
	}
	resp.Body = struct {
		io.Reader
		io.Closer
	}{io.MultiReader(bytes.NewReader(head), resp.Body), resp.Body}
	return resp, nil
}

// explainNetError words a failed exchange with the server as one sentence with
// what to check; ok is false when err is not a network failure (a problem
// document, a local error).
func (e *env) explainNetError(err error) (msg string, ok bool) {
	var ue *url.Error
	if !errors.As(err, &ue) {
		// A body cut short is read after the exchange, outside url.Error.
		if errors.Is(err, io.ErrUnexpectedEOF) {
			return "the connection to the server broke before the whole answer came: is a proxy or firewall in the way? Try again", true
		}
		return "", false
	}
	server, host := ue.URL, ue.URL
	if u, perr := url.Parse(ue.URL); perr == nil {
		server, host = u.Scheme+"://"+u.Host, u.Hostname()
	}
	var (
		dnsErr   *net.DNSError
		nameErr  x509.HostnameError
		authErr  x509.UnknownAuthorityError
		validErr x509.CertificateInvalidError
		recErr   tls.RecordHeaderError
		netErr   net.Error
	)
	switch {
	case errors.Is(err, errPlainHTTPToTLS):
		return fmt.Sprintf("%s answers in HTTPS, not plain HTTP: use https://%s", server, strings.TrimPrefix(server, "http://")), true
	case errors.Is(err, http.ErrSchemeMismatch), errors.As(err, &recErr):
		return fmt.Sprintf("%s does not speak HTTPS on that port (it answered in plain HTTP): is the port right? Use http:// only for a server on this machine", server), true
	case errors.As(err, &nameErr):
		return fmt.Sprintf("the TLS certificate of %s is not made for the name %s (%s): is the address right? Use the name the certificate was made for", server, host, certNames(nameErr.Certificate)), true
	case errors.As(err, &authErr):
		return fmt.Sprintf("the TLS certificate of %s is signed by an authority this computer does not trust (a self-signed certificate?): is the address right? If it is your own authority, name its certificate in SSL_CERT_FILE", server), true
	case errors.As(err, &validErr) && validErr.Reason == x509.Expired:
		return fmt.Sprintf("the TLS certificate of %s has expired (or the clock of this computer is wrong: it says %s): renew the server's certificate", server, e.clock().UTC().Format(time.RFC3339)), true
	case errors.As(err, &validErr):
		return fmt.Sprintf("the TLS certificate of %s is not valid (%v): check the server's certificate", server, validErr), true
	case errors.As(err, &dnsErr):
		return fmt.Sprintf("cannot find the server %s: its name does not resolve (DNS). Is the address right? Is this computer online?", host), true
	case errors.Is(err, syscall.ECONNREFUSED):
		return fmt.Sprintf("cannot reach fieldsync at %s: the connection was refused. Is fieldsync running at %s? Is the address right?", server, server), true
	case errors.As(err, &netErr) && netErr.Timeout(), errors.Is(err, context.DeadlineExceeded):
		return fmt.Sprintf("%s did not answer within %s: is the server overloaded or the network slow? Check the address, or give more time with fsctl --timeout", server, e.requestTimeout()), true
	case errors.Is(err, syscall.ECONNRESET), errors.Is(err, io.EOF), errors.Is(err, io.ErrUnexpectedEOF):
		return fmt.Sprintf("the connection to %s broke before the answer came: is a proxy or firewall in the way? Try again", server), true
	case errors.Is(err, context.Canceled):
		return "interrupted", true
	default:
		return fmt.Sprintf("cannot talk to %s: %v", server, ue.Err), true
	}
}

// permanentNetError reports whether err is a network failure that trying again
// cannot mend: a name that does not resolve, a certificate, the wrong scheme.
func permanentNetError(err error) bool {
	var (
		dnsErr  *net.DNSError
		certErr *tls.CertificateVerificationError
		recErr  tls.RecordHeaderError
	)
	return errors.Is(err, errPlainHTTPToTLS) || errors.Is(err, http.ErrSchemeMismatch) || errors.As(err, &recErr) || errors.As(err, &certErr) ||
		(errors.As(err, &dnsErr) && dnsErr.IsNotFound)
}

// certNames lists the names a certificate is made for.
func certNames(c *x509.Certificate) string {
	if c == nil {
		return "unknown names"
	}
	var names []string
	names = append(names, c.DNSNames...)
	for _, ip := range c.IPAddresses {
		names = append(names, ip.String())
	}
	if len(names) == 0 && c.Subject.CommonName != "" {
		names = append(names, c.Subject.CommonName)
	}
	return "it is for " + strings.Join(names, ", ")
}
