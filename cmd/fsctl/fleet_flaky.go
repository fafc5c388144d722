package main

import (
	"context"
	"errors"
	"io"
	"math/rand/v2"
	"net"
	"net/http"
	"net/http/httptrace"
	"sync"
	"sync/atomic"
)

// flakyTransport is the link of a tablet on a bad 2G connection: it cuts a
// share of requests for real, by closing the TCP connection under the HTTP
// client, either in the middle of the request body (the server reads a short
// body) or once the server's answer has arrived, before the client reads any
// of it (the server did the work; the answer is lost). The second is the
// case the server's idempotency is for: the tablet retries a batch the
// server already applied.
//
// It wraps a shared *http.Transport whose connections it dials (dial), so
// the fleet's connections are pooled as usual; a cut connection is simply
// not returned to the pool.
type flakyTransport struct {
	base http.RoundTripper
	p    float64 // share of requests cut

	midBody, beforeAnswer atomic.Int64 // cuts made, by kind

	mu  sync.Mutex
	rng *rand.Rand
}

// errFlakyCut is what a cut request's body reader answers after the cut.
var errFlakyCut = errors.New("fsctl load: connection cut by --flaky")

func (t *flakyTransport) roll() (cut, midBody bool) {
	t.mu.Lock()
	defer t.mu.Unlock()
	if t.rng.Float64() >= t.p {
		return false, false
	}
	return true, t.rng.IntN(2) == 0
}

// RoundTrip sends req, cutting its connection when the dice say so.
func (t *flakyTransport) RoundTrip(req *http.Request) (*http.Response, error) {
	cut, midBody := t.roll()
	if !cut {
		return t.base.RoundTrip(req)
	}
	if req.Body == nil || req.ContentLength < 2 {
		midBody = false // nothing to cut in the middle of
	}
	c := &cutConn{}
	first := true
	trace := &httptrace.ClientTrace{
		GotConn: func(info httptrace.GotConnInfo) {
			// Only the first connection of the request is cut: net/http
			// replays a GET whose reused connection broke on another one,
			// and cutting each of those would close the whole pool.
			if !first {
				return
			}
			first = false
			c.set(info.Conn)
			if !midBody {
				conn := info.Conn
				if tc, ok := conn.(interface{ NetConn() net.Conn }); ok {
					conn = tc.NetConn() // under TLS
				}
				if fc, ok := conn.(*flakyConn); ok {
					fc.cutAnswer.Store(true)
					fc.onCut = func() { t.beforeAnswer.Add(1) }
				}
			}
		},
	}
	req = req.WithContext(httptrace.WithClientTrace(req.Context(), trace))
	if midBody {
		body := req.Body
		req.Body = &flakyBody{r: body, left: req.ContentLength / 2, cut: func() {
			t.midBody.Add(1)
			c.cut()
		}}
		// The transport must not replay a cut body by itself: the tablet's
		// retry is what is being tested.
		req.GetBody = nil
	}
	// When the cut races with the read of the answer's first bytes, the
	// error comes from reading the body instead.
	return t.base.RoundTrip(req)
}

// dial is the DialContext of the wrapped transport: its connections can
// lose an answer (flakyConn).
func (t *flakyTransport) dial(dial func(ctx context.Context, network, addr string) (net.Conn, error)) func(ctx context.Context, network, addr string) (net.Conn, error) {
	return func(ctx context.Context, network, addr string) (net.Conn, error) {
		conn, err := dial(ctx, network, addr)
		if err != nil {
			return nil, err
		}
		return &flakyConn{Conn: conn}, nil
	}
}

// flakyConn is a connection whose next answer can be lost: once cutAnswer
// is set (for the request now on it), the first bytes that arrive are
// dropped and the connection is closed, as when a 2G link goes down while
// the server answers.
type flakyConn struct {
	net.Conn
	cutAnswer atomic.Bool
	onCut     func() // set with cutAnswer, read after it
}

func (c *flakyConn) Read(p []byte) (int, error) {
	n, err := c.Conn.Read(p)
	if n > 0 && c.cutAnswer.CompareAndSwap(true, false) {
		c.onCut()
		_ = c.Conn.Close()
		return 0, errFlakyCut
	}
	return n, err
}

// cutConn holds the connection a request got, to close it.
type cutConn struct {
	mu   sync.Mutex
	conn net.Conn
}

func (c *cutConn) set(conn net.Conn) {
	c.mu.Lock()
	c.conn = conn
	c.mu.Unlock()
}

func (c *cutConn) cut() {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.conn != nil {
		_ = c.conn.Close()
	}
}

// flakyBody reads left bytes of r, then cuts the connection and fails.
type flakyBody struct {
	r    io.ReadCloser
	left int64
	cut  func()
	done bool
}

func (b *flakyBody) Read(p []byte) (int, error) {
	if b.left <= 0 {
		if !b.done {
			b.done = true
			b.cut()
		}
		return 0, errFlakyCut
	}
	if int64(len(p)) > b.left {
		p = p[:b.left]
	}
	n, err := b.r.Read(p)
	b.left -= int64(n)
	return n, err
}

func (b *flakyBody) Close() error { return b.r.Close() }
