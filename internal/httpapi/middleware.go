package httpapi

import (
	"context"
	"fmt"
	"log/slog"
	"net/http"
	"runtime/debug"
	"time"

	"github.com/google/uuid"

	"github.com/fieldsync/fieldsync/api"
)

// requestInfo is the per-request record the middleware layers share. The
// outer layers (log, metrics) cannot see the request the router hands to a
// route, so the route records its template here instead.
type requestInfo struct {
	requestID string
	route     string // the route template, routeLabelUnmatched, or "" before routing
	rec       *recorder
	subject   string // who called, once authenticated: a username or device:<id>
	project   string // the project of a project route
}

type infoKey struct{}

// infoFrom returns the request's record; a zero record outside the middleware
// (a handler called directly), so callers need no nil checks.
func infoFrom(ctx context.Context) *requestInfo {
	if info, ok := ctx.Value(infoKey{}).(*requestInfo); ok {
		return info
	}
	return &requestInfo{}
}

// RequestIDFrom returns the request id of the request ctx belongs to, for log
// lines written by services.
func RequestIDFrom(ctx context.Context) string { return infoFrom(ctx).requestID }

// maxRequestIDLen bounds an accepted X-Request-Id: it lands in every log line.
const maxRequestIDLen = 64

// validRequestID accepts what a proxy or client may reasonably send, and nothing
// that could forge a log line or smuggle a header.
func validRequestID(id string) bool {
	if id == "" || len(id) > maxRequestIDLen {
		return false
	}
	for i := 0; i < len(id); i++ {
		c := id[i]
		switch {
		case 'a' <= c && c <= 'z', 'A' <= c && c <= 'Z', '0' <= c && c <= '9', c == '.', c == '_', c == '-':
		default:
			return false
		}
	}
	return true
}

// requestID is the outermost layer: it names the request (keeping a sane incoming
// X-Request-Id, so one id follows a request through a proxy and the server),
// echoes the id before anything else can answer, and wraps the writer in the
// recorder the log, metrics and panic layers read.
//
// It also marks every answer Cache-Control: no-store. Answers carry survey
// data, tokens, or names of people and places; none is worth a copy in a
// browser's, proxy's or CDN's cache, where it would outlive the session.
func (s *Server) requestID(next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		id := r.Header.Get("X-Request-Id")
		if !validRequestID(id) {
			// Version 7 sorts by time, which keeps ids of one incident together.
			u, err := uuid.NewV7()
			if err != nil {
				u = uuid.New()
			}
			id = u.String()
		}
		w.Header().Set("X-Request-Id", id)
		w.Header().Set("Cache-Control", "no-store")
		rec := &recorder{ResponseWriter: w}
		info := &requestInfo{requestID: id, rec: rec}
		next.ServeHTTP(rec, r.WithContext(context.WithValue(r.Context(), infoKey{}, info)))
	})
}

// recoverPanic turns a panic below it into a logged stack and a 500 problem.
func (s *Server) recoverPanic(next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		defer func() {
			v := recover()
			if v == nil {
				return
			}
			if v == http.ErrAbortHandler {
				// net/http's way to abort a response on purpose: pass it on.
				panic(v)
			}
			info := infoFrom(r.Context())
			s.logger.LogAttrs(r.Context(), slog.LevelError, "panic",
				slog.String("request_id", info.requestID),
				slog.String("method", r.Method),
				slog.String("route", info.route),
				slog.String("panic", fmt.Sprint(v)),
				slog.String("stack", string(debug.Stack())))
			if info.rec != nil && info.rec.wroteHeader {
				// Part of the answer is on the wire: abort the connection so the
				// client sees a failure, not a complete-looking truncated body.
				panic(http.ErrAbortHandler)
			}
			// Headers a handler set before panicking (an ETag, a Content-Length)
			// describe an answer that will not come.
			h := w.Header()
			for k := range h {
				if k != "X-Request-Id" && k != "Vary" {
					delete(h, k)
				}
			}
			s.writeProblem(w, r, api.Problem{
				Type:   "about:blank",
				Title:  internalTitle,
				Status: http.StatusInternalServerError,
				Code:   api.CodeInternalError,
			})
		}()
		next.ServeHTTP(w, r)
	})
}

// accessLog writes one line per request. It logs only what the server decided
// (route template, status, sizes, timing): no bodies, no query string (a
// misplaced token there would end up in the log), no headers.
func (s *Server) accessLog(next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		start := time.Now()
		returned := false
		defer func() {
			info := infoFrom(r.Context())
			status := info.rec.statusOr(returned)
			level := slog.LevelInfo
			if status >= 500 && status != statusClientClosed {
				level = slog.LevelWarn
			}
			s.logger.LogAttrs(r.Context(), level, "http request",
				slog.String("method", methodLabel(r.Method)),
				slog.String("route", routeLabel(info.route)),
				slog.Int("status", status),
				slog.Int64("bytes", info.rec.bytes),
				slog.Float64("duration_ms", float64(time.Since(start).Microseconds())/1000),
				slog.String("request_id", info.requestID),
				slog.String("remote_addr", s.clientIP(r)),
				slog.String("subject", info.subject),
				slog.String("project", info.project))
		}()
		next.ServeHTTP(w, r)
		returned = true
	})
}

// metricsMiddleware counts and times every request by route template.
func (s *Server) metricsMiddleware(next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		start := time.Now()
		returned := false
		defer func() {
			info := infoFrom(r.Context())
			s.metrics.observe(routeLabel(info.route), methodLabel(r.Method), info.rec.statusOr(returned), time.Since(start))
		}()
		next.ServeHTTP(w, r)
		returned = true
	})
}

func routeLabel(route string) string {
	if route == "" {
		return routeLabelUnmatched
	}
	return route
}

// methodLabel bounds the method label: a client may send any token as a method.
func methodLabel(m string) string {
	switch m {
	case http.MethodGet, http.MethodHead, http.MethodPost, http.MethodPut, http.MethodPatch,
		http.MethodDelete, http.MethodOptions:
		return m
	}
	return "OTHER"
}

// recorder notes the status and the bytes that reached the client.
type recorder struct {
	http.ResponseWriter
	status      int
	wroteHeader bool
	bytes       int64
}

func (r *recorder) WriteHeader(code int) {
	if r.wroteHeader {
		return
	}
	if code >= 200 {
		r.status, r.wroteHeader = code, true
	}
	r.ResponseWriter.WriteHeader(code)
}

func (r *recorder) Write(p []byte) (int, error) {
	if !r.wroteHeader {
		r.WriteHeader(http.StatusOK)
	}
	n, err := r.ResponseWriter.Write(p)
	r.bytes += int64(n)
	return n, err
}

// Flush passes a streaming handler's flush to the connection.
func (r *recorder) Flush() {
	if !r.wroteHeader {
		r.WriteHeader(http.StatusOK)
	}
	_ = http.NewResponseController(r.ResponseWriter).Flush()
}

// Unwrap lets http.ResponseController reach the connection.
func (r *recorder) Unwrap() http.ResponseWriter { return r.ResponseWriter }

// statusOr returns the status to log: 500 for a handler that panicked (the panic
// layer answers 500 after the log and metrics layers have unwound), 200 for a
// handler that returned without writing (net/http sends 200 then).
func (r *recorder) statusOr(returned bool) int {
	switch {
	case r == nil:
		return 0
	case !returned && (!r.wroteHeader || r.status < 500):
		return http.StatusInternalServerError
	case !r.wroteHeader:
		return http.StatusOK
	}
	return r.status
}
