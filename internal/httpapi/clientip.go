package httpapi

import (
	"fmt"
	"net"
	"net/http"
	"net/netip"
	"strings"
)

// ParseTrustedProxies parses a comma-separated list of IP addresses and CIDR
// prefixes (FIELDSYNC_TRUSTED_PROXIES): the reverse proxies whose forwarding
// headers the server believes. Blank entries are skipped; "" is no proxy.
func ParseTrustedProxies(s string) ([]netip.Prefix, error) {
	var out []netip.Prefix
	for _, f := range strings.Split(s, ",") {
		f = strings.TrimSpace(f)
		if f == "" {
			continue
		}
		if strings.Contains(f, "/") {
			p, err := netip.ParsePrefix(f)
			if err != nil {
				return nil, fmt.Errorf("trusted proxy %q is not an IP address or CIDR prefix", f)
			}
			out = append(out, unmapPrefix(p).Masked())
			continue
		}
		a, err := netip.ParseAddr(f)
		if err != nil || a.Zone() != "" {
			return nil, fmt.Errorf("trusted proxy %q is not an IP address or CIDR prefix", f)
		}
		a = a.Unmap()
		out = append(out, netip.PrefixFrom(a, a.BitLen()))
	}
	return out, nil
}

// unmapPrefix turns an IPv4-mapped IPv6 prefix (::ffff:10.0.0.0/104) into its
// IPv4 form, since addresses are compared unmapped.
func unmapPrefix(p netip.Prefix) netip.Prefix {
	if a := p.Addr(); a.Is4In6() && p.Bits() >= 96 {
		return netip.PrefixFrom(a.Unmap(), p.Bits()-96)
	}
	return p
}

// maxForwardedHops bounds how much of a forwarding chain is read.
const maxForwardedHops = 32

// clientIP is the client address of r, the one every use of "the client's
// address" goes through: the login and enrollment throttles, the audit log and
// the access log.
//
// It is the direct peer (r.RemoteAddr), unless that peer is a trusted proxy
// (Config.TrustedProxies). Then the forwarding chain is read from the right —
// X-Forwarded-For, or Forwarded (RFC 7239) — skipping trusted proxies, and the
// first address that is not one is the client: everything to its left was
// written by the client or by proxies we do not know, and may be forged. A hop
// that is not an address ("unknown", an obfuscated name, garbage) stops the
// walk at the trusted proxy that reported it.
//
// A proxy appends to one of the two headers and passes the other one through as
// the client sent it. Which one a deployment's proxy writes is not configured,
// so when a request carries both and they name different clients, one of them
// is forged and there is no telling which: the answer is then the nearest
// trusted proxy's own address. A forger only lumps itself in with that proxy
// (clients of ours send neither header), and cannot pose as another client.
func (s *Server) clientIP(r *http.Request) string {
	peer, ok := parseHop(r.RemoteAddr)
	if !ok {
		return hostOf(r.RemoteAddr)
	}
	if !s.trustedProxy(peer) {
		return peer.String()
	}
	xff, hasXFF := r.Header["X-Forwarded-For"]
	fwd, hasFwd := r.Header["Forwarded"]
	switch {
	case hasXFF && hasFwd:
		a := s.walkHops(splitXFF(xff), peer)
		b := s.walkHops(splitForwarded(fwd), peer)
		if a != b {
			return peer.String()
		}
		return a.String()
	case hasXFF:
		return s.walkHops(splitXFF(xff), peer).String()
	case hasFwd:
		return s.walkHops(splitForwarded(fwd), peer).String()
	}
	return peer.String()
}

// walkHops returns the right-most hop of chain (oldest first) that is not a
// trusted proxy; peer, trusted, is the hop right of the chain.
func (s *Server) walkHops(chain []string, peer netip.Addr) netip.Addr {
	last := peer
	for i := len(chain) - 1; i >= 0 && len(chain)-i <= maxForwardedHops; i-- {
		a, ok := parseHop(chain[i])
		if !ok {
			return last
		}
		if !s.trustedProxy(a) {
			return a
		}
		last = a
	}
	return last // every hop is a trusted proxy: the left-most one we read
}

func (s *Server) trustedProxy(a netip.Addr) bool {
	for _, p := range s.trustedProxies {
		if p.Contains(a) {
			return true
		}
	}
	return false
}

// parseHop reads one address of a chain or a RemoteAddr: "ip", "ip:port",
// "[ipv6]" or "[ipv6]:port", unmapped and without zone.
func parseHop(h string) (netip.Addr, bool) {
	h = strings.TrimSpace(h)
	if ap, err := netip.ParseAddrPort(h); err == nil {
		return ap.Addr().Unmap().WithZone(""), true
	}
	h = strings.TrimSuffix(strings.TrimPrefix(h, "["), "]")
	a, err := netip.ParseAddr(h)
	if err != nil {
		return netip.Addr{}, false
	}
	return a.Unmap().WithZone(""), true
}

// hostOf is RemoteAddr without its port, for a peer that is not an IP address
// (a Unix socket, a test's made-up address).
func hostOf(remote string) string {
	if h, _, err := net.SplitHostPort(remote); err == nil {
		return h
	}
	return remote
}

// splitXFF splits X-Forwarded-For lines into hops, oldest first.
func splitXFF(lines []string) []string {
	var hops []string
	for _, l := range lines {
		hops = append(hops, strings.Split(l, ",")...)
	}
	return hops
}

// splitForwarded returns the for= value of each element of Forwarded lines
// (RFC 7239 §4), oldest first; an element without for= is an unknown hop ("").
// Quoted strings may hold commas and semicolons, so the lines are scanned, not
// split.
func splitForwarded(lines []string) []string {
	var hops []string
	for _, l := range lines {
		var (
			hop     string
			inQuote bool
			start   int
		)
		pair := func(end int) {
			k, v, ok := strings.Cut(strings.TrimSpace(l[start:end]), "=")
			if ok && strings.EqualFold(strings.TrimSpace(k), "for") {
				v = strings.TrimSpace(v)
				if len(v) >= 2 && v[0] == '"' && v[len(v)-1] == '"' {
					v = strings.ReplaceAll(v[1:len(v)-1], `\`, "")
				}
				hop = v
			}
			start = end + 1
		}
		for i := 0; i < len(l); i++ {
			switch c := l[i]; {
			case c == '\\' && inQuote:
				i++
			case c == '"':
				inQuote = !inQuote
			case c == ';' && !inQuote:
				pair(i)
			case c == ',' && !inQuote:
				pair(i)
				hops = append(hops, hop)
				hop = ""
			}
		}
		pair(len(l))
		hops = append(hops, hop)
	}
	return hops
}
