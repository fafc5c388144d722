package httpapi

import (
	"compress/gzip"
	"errors"
	"io"
	"mime"
	"net/http"
	"strconv"
	"strings"
	"time"

	"github.com/fieldsync/fieldsync/api"
	"github.com/fieldsync/fieldsync/internal/domain"
)

// decompressRequest caps every request body at s.maxBodyBytes and, for
// Content-Encoding gzip, decompresses it, capping the decompressed size: a gzip
// bomb (1 GiB of zeros fits in 1 MiB) stops at the limit with a 413 and never
// fills memory. Other encodings answer 415.
func (s *Server) decompressRequest(next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.Body == nil || r.Body == http.NoBody {
			next.ServeHTTP(w, r)
			return
		}
		// The raw body is capped too: a body sent as is must not exceed the limit,
		// and a compressed body larger than it is never worth reading. It must
		// also keep a pace (see pacedBody), or a slow client holds the
		// connection for ever.
		// Network time, not the injectable clock: deadlines are real.
		paced := &pacedBody{body: r.Body, rc: http.NewResponseController(w), start: time.Now(), grace: s.bodyGrace, rate: s.minBodyRate}
		limit := s.bodyLimit(r) // attachments have their own (attachments.go)
		raw := http.MaxBytesReader(w, paced, limit)
		enc := strings.ToLower(strings.TrimSpace(r.Header.Get("Content-Encoding")))
		switch enc {
		case "", "identity":
			r.Body = raw
		case "gzip", "x-gzip":
			r.Body = &gzipBody{raw: raw, limit: limit}
			// Handlers see what they read: the decompressed JSON.
			r.Header.Del("Content-Encoding")
			r.Header.Del("Content-Length")
			r.ContentLength = -1
		default:
			s.adapt(func(w http.ResponseWriter, r *http.Request) error {
				return &domain.Error{
					Kind:   domain.KindUnsupportedType,
					Code:   api.CodeUnsupportedEncoding,
					Title:  "Content-Encoding is not supported",
					Detail: "Content-Encoding " + strconv.Quote(enc) + " is not supported; send gzip or no encoding",
				}
			}).ServeHTTP(w, r)
			return
		}
		next.ServeHTTP(w, r)
	})
}

// gzipBody decompresses lazily: the gzip header is read on the first Read, so a
// route that ignores its body never pays for it, and a corrupt header is reported
// where the handler reads (as bad_gzip, through the error table).
type gzipBody struct {
	raw   io.ReadCloser
	limit int64
	zr    *gzip.Reader
	n     int64 // decompressed bytes handed out
	err   error
}

// badGzipError marks a failure of the gzip stream, so the error table can tell it
// from a JSON decoding failure (both can surface as io.ErrUnexpectedEOF).
type badGzipError struct{ err error }

func (e *badGzipError) Error() string { return "gzip: " + e.err.Error() }
func (e *badGzipError) Unwrap() error { return e.err }

func isBadGzip(err error) bool {
	var e *badGzipError
	return errors.As(err, &e)
}

func isBodyTooLarge(err error) bool {
	var e *http.MaxBytesError
	return errors.As(err, &e)
}

func (b *gzipBody) Read(p []byte) (int, error) {
	if b.err != nil {
		return 0, b.err
	}
	if b.zr == nil {
		zr, err := gzip.NewReader(b.raw)
		if err != nil {
			b.err = b.wrap(err)
			if errors.Is(err, io.EOF) {
				// An empty body is an empty body, compressed or not.
				b.err = io.EOF
			}
			return 0, b.err
		}
		b.zr = zr
	}
	// Read at most one byte past the limit: enough to know it was exceeded.
	if rest := b.limit + 1 - b.n; int64(len(p)) > rest {
		p = p[:rest]
	}
	n, err := b.zr.Read(p)
	b.n += int64(n)
	if b.n > b.limit {
		b.err = &http.MaxBytesError{Limit: b.limit}
		return n - int(b.n-b.limit), b.err
	}
	if err != nil && err != io.EOF {
		err = b.wrap(err)
		b.err = err
	}
	return n, err
}

// wrap keeps a body-limit error as it is and marks anything else as bad gzip.
func (b *gzipBody) wrap(err error) error {
	if isBodyTooLarge(err) {
		return err
	}
	return &badGzipError{err: err}
}

func (b *gzipBody) Close() error { return b.raw.Close() }

// gzipMinSize is the smallest answer worth compressing: below it the gzip
// framing (about 20 bytes) and the CPU eat most of the gain.
const gzipMinSize = 512

// gzipWriters compress at BestSpeed: a profile of pulls of survey records
// (internal/e2e BenchmarkPull) showed the default level taking ~13 µs of the
// ~31 µs of server CPU per record, and CPU is what limits a 2-core server.
//
// They are kept in a free list that survives garbage collections, unlike a
// sync.Pool: a writer is ~1 MB to set up, and pulls allocate enough for a GC
// every few pages, which emptied the pool so that most answers made a new one.
var gzipWriters = newFreeList(4, func() *gzip.Writer {
	w, _ := gzip.NewWriterLevel(io.Discard, gzip.BestSpeed)
	return w
})

// compressResponse gzips answers for clients that accept it. It buffers the
// first gzipMinSize bytes to decide, so small answers (most problem documents)
// go out plain and keep their Content-Length.
func (s *Server) compressResponse(next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		// Every answer may differ by Accept-Encoding, so caches must key on it.
		w.Header().Add("Vary", "Accept-Encoding")
		if r.Method == http.MethodHead || !acceptsGzip(r.Header.Get("Accept-Encoding")) {
			next.ServeHTTP(w, r)
			return
		}
		gw := &gzipWriter{ResponseWriter: w}
		next.ServeHTTP(gw, r)
		// Not deferred: after a panic the buffered part of the answer must be
		// dropped, not flushed ahead of the panic layer's 500.
		gw.finish()
	})
}

// acceptsGzip reads an Accept-Encoding header (RFC 9110 §12.5.3): gzip is
// acceptable when listed, or covered by "*", with a q-value above 0.
func acceptsGzip(header string) bool {
	gzipQ, starQ := -1.0, -1.0
	for _, part := range strings.Split(header, ",") {
		name, params, _ := strings.Cut(part, ";")
		q := 1.0
		for _, p := range strings.Split(params, ";") {
			k, v, ok := strings.Cut(strings.TrimSpace(p), "=")
			if ok && strings.EqualFold(strings.TrimSpace(k), "q") {
				if f, err := strconv.ParseFloat(strings.TrimSpace(v), 64); err == nil {
					q = f
				}
			}
		}
		switch strings.ToLower(strings.TrimSpace(name)) {
		case "gzip", "x-gzip":
			gzipQ = q
		case "*":
			starQ = q
		}
	}
	if gzipQ >= 0 {
		return gzipQ > 0
	}
	return starQ > 0
}

// compressible reports whether an answer of this Content-Type shrinks under
// gzip. Photos, zips and XLSX files are compressed already.
func compressible(contentType string) bool {
	mt, _, err := mime.ParseMediaType(contentType)
	if err != nil {
		return false
	}
	switch {
	case strings.HasPrefix(mt, "text/"),
		mt == "application/json", strings.HasSuffix(mt, "+json"),
		mt == "application/x-ndjson", mt == "application/xml", strings.HasSuffix(mt, "+xml"),
		mt == "application/yaml", mt == "application/javascript", mt == "image/svg+xml":
		return true
	}
	return false
}

// gzipWriter holds back the status and the first bytes of an answer until it
// knows whether to compress.
type gzipWriter struct {
	http.ResponseWriter
	status  int
	buf     []byte
	decided bool
	zw      *gzip.Writer // nil when the answer goes out plain
}

func (g *gzipWriter) WriteHeader(code int) {
	if g.decided || g.status != 0 {
		return
	}
	if code < 200 {
		// Informational answers (103 Early Hints) pass at once.
		g.ResponseWriter.WriteHeader(code)
		return
	}
	g.status = code
	h := g.Header()
	if code == http.StatusNoContent || code == http.StatusNotModified || code == http.StatusPartialContent ||
		h.Get("Content-Encoding") != "" || h.Get("Content-Range") != "" {
		g.decide(false)
	}
}

func (g *gzipWriter) Write(p []byte) (int, error) {
	if g.status == 0 {
		g.WriteHeader(http.StatusOK)
	}
	if !g.decided && len(g.buf) == 0 && len(p) >= gzipMinSize && g.Header().Get("Content-Type") != "" {
		// A large first write (a whole encoded page) decides at once, without
		// a copy into buf; only sniffing a missing Content-Type needs buf.
		g.decide(true)
	}
	if g.decided {
		if g.zw != nil {
			return g.zw.Write(p)
		}
		return g.ResponseWriter.Write(p)
	}
	g.buf = append(g.buf, p...)
	if len(g.buf) >= gzipMinSize {
		g.decide(true)
		if err := g.flushBuf(); err != nil {
			return 0, err
		}
	}
	return len(p), nil
}

// decide fixes the encoding and writes the held-back status line.
func (g *gzipWriter) decide(large bool) {
	if g.decided {
		return
	}
	g.decided = true
	h := g.Header()
	if h.Get("Content-Type") == "" && len(g.buf) > 0 {
		// Sniff from the plain bytes now: net/http would sniff the compressed ones.
		h.Set("Content-Type", http.DetectContentType(g.buf))
	}
	if large && h.Get("Content-Encoding") == "" && compressible(h.Get("Content-Type")) {
		h.Set("Content-Encoding", "gzip")
		h.Del("Content-Length")
		zw := gzipWriters.get()
		zw.Reset(g.ResponseWriter)
		g.zw = zw
	}
	if g.status == 0 {
		g.status = http.StatusOK
	}
	g.ResponseWriter.WriteHeader(g.status)
}

func (g *gzipWriter) flushBuf() error {
	if len(g.buf) == 0 {
		return nil
	}
	buf := g.buf
	g.buf = nil
	var err error
	if g.zw != nil {
		_, err = g.zw.Write(buf)
	} else {
		_, err = g.ResponseWriter.Write(buf)
	}
	return err
}

// Flush sends what is held back. A handler that flushes streams, so its answer
// is compressed even before it reaches gzipMinSize.
func (g *gzipWriter) Flush() {
	if g.status == 0 {
		g.WriteHeader(http.StatusOK)
	}
	g.decide(true)
	_ = g.flushBuf()
	if g.zw != nil {
		_ = g.zw.Flush()
	}
	_ = http.NewResponseController(g.ResponseWriter).Flush()
}

// Unwrap lets http.ResponseController reach the connection.
func (g *gzipWriter) Unwrap() http.ResponseWriter { return g.ResponseWriter }

// finish ends the answer after the handler returned.
func (g *gzipWriter) finish() {
	if g.status == 0 && len(g.buf) == 0 {
		// The handler wrote nothing; net/http sends its default 200.
		return
	}
	g.decide(len(g.buf) >= gzipMinSize)
	_ = g.flushBuf()
	if g.zw != nil {
		_ = g.zw.Close()
		g.zw.Reset(io.Discard)
		gzipWriters.put(g.zw)
		g.zw = nil
	}
}
