package httpapi

import (
	"encoding/base64"
	"log/slog"
	"net/http"
	"strings"

	"github.com/fieldsync/fieldsync/internal/domain"
)

// basicChallenge is the challenge of routes that take HTTP Basic.
const basicChallenge = `Basic realm="fieldsync"`

// WithBasic returns the rule that also accepts HTTP Basic credentials (a
// user's username and password), for clients that can send nothing else:
// Power BI's and Excel's OData connector. Bearer tokens still work. Basic is
// accepted only over HTTPS (the connection's TLS, or a trusted proxy's
// X-Forwarded-Proto or Forwarded proto) or from the loopback interface, so a
// password never crosses a network in the clear; see authenticateBasic.
func (r Rule) WithBasic() Rule {
	r.basic = true
	return r
}

// authenticateBasic authenticates a request to a WithBasic route: Basic
// credentials through identity's VerifyPassword (throttled and audited like
// a login, cached briefly), anything else through authenticate.
//
// Answers: wrong credentials 401 invalid_credentials with the Basic
// challenge; Basic over plain HTTP from anywhere but loopback 403
// https_required, before the password is looked at; no credentials 401 with
// a Bearer challenge and, where Basic would be accepted, a Basic one.
func (s *Server) authenticateBasic(w http.ResponseWriter, r *http.Request) (domain.Principal, error) {
	scheme, cred, _ := strings.Cut(r.Header.Get("Authorization"), " ")
	if !strings.EqualFold(scheme, "Basic") {
		p, err := s.authenticate(w, r)
		if err != nil && r.Header.Get("Authorization") == "" && s.basicTransportOK(r) {
			w.Header().Add("WWW-Authenticate", basicChallenge)
		}
		return p, err
	}
	if !s.basicTransportOK(r) {
		s.logger.LogAttrs(r.Context(), slog.LevelWarn, "basic credentials refused over plain HTTP",
			slog.String("request_id", RequestIDFrom(r.Context())), slog.String("client", s.clientIP(r)))
		return domain.Principal{}, &domain.Error{Kind: domain.KindForbidden, Code: "https_required",
			Title:  "Username and password are accepted only over HTTPS",
			Detail: "use the server's https:// address (they were sent unencrypted: consider changing the password), or an access token"}
	}
	raw, err := base64.StdEncoding.DecodeString(strings.TrimSpace(cred))
	user, password, ok := strings.Cut(string(raw), ":")
	if err != nil || !ok || s.identity == nil {
		w.Header().Set("WWW-Authenticate", basicChallenge)
		return domain.Principal{}, &domain.Error{Kind: domain.KindUnauthorized, Code: "invalid_credentials",
			Title: "Invalid username or password", Detail: "send Authorization: Basic with base64(username:password)"}
	}
	p, err := s.identity.VerifyPassword(r.Context(), user, password, s.clientIP(r))
	if err != nil {
		if e, ok := domain.AsError(err); ok && e.Kind == domain.KindUnauthorized {
			w.Header().Set("WWW-Authenticate", basicChallenge)
		}
		return domain.Principal{}, err
	}
	return p, nil
}

// basicTransportOK reports whether r may carry a password: over TLS, through
// a trusted proxy that says the client used https, or straight from the
// loopback interface (a request with no forwarding header). A loopback peer
// that forwards for someone else does not count: its clients are not local;
// and only a trusted proxy is believed when it says https.
func (s *Server) basicTransportOK(r *http.Request) bool {
	if r.TLS != nil {
		return true
	}
	peer, ok := parseHop(r.RemoteAddr)
	if !ok {
		return false
	}
	forwarded := false
	for _, h := range []string{"X-Forwarded-For", "Forwarded", "X-Forwarded-Proto", "X-Real-Ip"} {
		if _, ok := r.Header[h]; ok {
			forwarded = true
		}
	}
	switch {
	case forwarded && s.trustedProxy(peer):
		return forwardedHTTPS(r)
	case forwarded:
		return false
	}
	return peer.IsLoopback()
}

// forwardedHTTPS reports whether the forwarding headers say the client
// connection was https: every proto that X-Forwarded-Proto and Forwarded
// name is https, and there is at least one.
func forwardedHTTPS(r *http.Request) bool {
	var protos []string
	for _, l := range r.Header.Values("X-Forwarded-Proto") {
		for _, p := range strings.Split(l, ",") {
			protos = append(protos, strings.TrimSpace(p))
		}
	}
	for _, l := range r.Header.Values("Forwarded") {
		for _, elem := range strings.Split(l, ",") {
			for _, pair := range strings.Split(elem, ";") {
				k, v, ok := strings.Cut(strings.TrimSpace(pair), "=")
				if ok && strings.EqualFold(strings.TrimSpace(k), "proto") {
					protos = append(protos, strings.Trim(strings.TrimSpace(v), `"`))
				}
			}
		}
	}
	if len(protos) == 0 {
		return false
	}
	for _, p := range protos {
		if !strings.EqualFold(p, "https") {
			return false
		}
	}
	return true
}
