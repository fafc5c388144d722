package httpapi

import (
	"context"
	"errors"
	"log/slog"
	"math"
	"net/http"
	"strconv"
	"time"

	"github.com/fieldsync/fieldsync/api"
	"github.com/fieldsync/fieldsync/internal/domain"
)

// kindMethodNotAllowed is an HTTP-layer kind the domain has no word for: only the
// router answers 405. Far from the domain's iota so a new domain Kind cannot
// collide with it.
const kindMethodNotAllowed domain.Kind = 1000

// kindStatus maps every Kind to its HTTP status: the one table of statuses.
var kindStatus = map[domain.Kind]int{
	domain.KindInternal:             http.StatusInternalServerError,
	domain.KindBadRequest:           http.StatusBadRequest,
	domain.KindUnauthorized:         http.StatusUnauthorized,
	domain.KindForbidden:            http.StatusForbidden,
	domain.KindNotFound:             http.StatusNotFound,
	kindMethodNotAllowed:            http.StatusMethodNotAllowed,
	kindRequestTimeout:              http.StatusRequestTimeout,
	domain.KindConflict:             http.StatusConflict,
	domain.KindPrecondition:         http.StatusPreconditionFailed,
	domain.KindTooLarge:             http.StatusRequestEntityTooLarge,
	domain.KindUnsupportedType:      http.StatusUnsupportedMediaType,
	domain.KindInvalid:              http.StatusUnprocessableEntity,
	domain.KindPreconditionRequired: http.StatusPreconditionRequired,
	domain.KindTooManyRequests:      http.StatusTooManyRequests,
	domain.KindUnavailable:          http.StatusServiceUnavailable,
}

// defaultRetryAfter is what a 429 or 503 advises when the error names no delay:
// long enough for a store to fail over, short enough for a tablet on a brief
// signal window.
const defaultRetryAfter = 5 * time.Second

// sentinelErrors gives the answer for each store sentinel and each failure of the
// HTTP plumbing (body limits, gzip) that reaches a handler as a plain error. A
// handler that wants a more specific answer wraps the sentinel in a
// *domain.Error, which the table consults first.
var sentinelErrors = []struct {
	match func(error) bool
	err   domain.Error
}{
	{isErr(domain.ErrNotFound), domain.Error{Kind: domain.KindNotFound, Code: api.CodeNotFound, Title: "Not found"}},
	{isErr(domain.ErrExists), domain.Error{Kind: domain.KindConflict, Code: api.CodeAlreadyExists, Title: "Already exists"}},
	// ErrStale is 409 by default; routes with If-Match turn it into 412 themselves.
	{isErr(domain.ErrStale), domain.Error{Kind: domain.KindConflict, Code: api.CodeConflict, Title: "Conflict with the current state"}},
	{isErr(domain.ErrUnavailable), domain.Error{Kind: domain.KindUnavailable, Code: api.CodeStoreUnavailable, Title: "The store does not answer; try again later"}},
	// A deadline that passed on the server side means overload, not a bug.
	{isErr(context.DeadlineExceeded), domain.Error{Kind: domain.KindUnavailable, Code: api.CodeStoreUnavailable, Title: "The server did not answer in time; try again later"}},
	{isBodyTooLarge, domain.Error{Kind: domain.KindTooLarge, Code: api.CodeBodyTooLarge, Title: "Request body is too large"}},
	{isBadGzip, domain.Error{Kind: domain.KindBadRequest, Code: api.CodeBadGzip, Title: "Request body is not valid gzip"}},
}

func isErr(target error) func(error) bool {
	return func(err error) bool { return errors.Is(err, target) }
}

// internalTitle is the only thing a client learns of an unexpected failure.
const internalTitle = "Internal server error"

// problemFor maps err to the problem document and status to answer, and reports
// whether err is an unexpected failure that must be logged with its detail.
func problemFor(err error) (p api.Problem, retryAfter time.Duration, internal bool) {
	e, ok := domain.AsError(err)
	if !ok {
		for _, se := range sentinelErrors {
			if se.match(err) {
				c := se.err
				e, ok = &c, true
				break
			}
		}
	}
	status, known := 0, false
	if ok {
		status, known = kindStatus[e.Kind]
	}
	if !ok || !known || status == http.StatusInternalServerError {
		return api.Problem{
			Type:   "about:blank",
			Title:  internalTitle,
			Status: http.StatusInternalServerError,
			Code:   api.CodeInternalError,
		}, 0, true
	}
	p = api.Problem{
		Type:   "about:blank",
		Title:  e.Title,
		Status: status,
		Code:   e.Code,
		Detail: e.Detail,
	}
	if p.Title == "" {
		p.Title = http.StatusText(status)
	}
	if len(e.Findings) > 0 || status == http.StatusUnprocessableEntity {
		p.Errors = make([]api.Finding, 0, len(e.Findings))
		for _, f := range e.Findings {
			p.Errors = append(p.Errors, api.Finding(f))
		}
	}
	if status == http.StatusServiceUnavailable || status == http.StatusTooManyRequests {
		retryAfter = e.RetryAfter
		if retryAfter <= 0 {
			retryAfter = defaultRetryAfter
		}
	}
	return p, retryAfter, false
}

// adapt turns a handlerFunc into an http.Handler: the single place where a
// returned error becomes a problem document.
func (s *Server) adapt(h handlerFunc) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		tw := &trackingWriter{ResponseWriter: w}
		if err := h(tw, r); err != nil {
			s.writeError(tw, r, err)
		}
	})
}

// writeError answers err as a problem document, or only logs it when the handler
// had already started its answer (a stream that failed half-way: the client
// sees a truncated body, which the handler's framing must make detectable).
func (s *Server) writeError(w *trackingWriter, r *http.Request, err error) {
	ctx := r.Context()
	info := infoFrom(ctx)
	if (ctx.Err() != nil && errors.Is(err, context.Canceled)) || isClientGone(err) {
		// The client went away (on 2G, often mid-body); nobody reads the
		// answer, and it is no server fault.
		s.logger.LogAttrs(ctx, slog.LevelInfo, "client closed request",
			slog.String("request_id", info.requestID), slog.String("route", info.route))
		if !w.wrote {
			w.WriteHeader(statusClientClosed)
		}
		return
	}
	p, retryAfter, internal := problemFor(err)
	if internal {
		s.logger.LogAttrs(ctx, slog.LevelError, "internal error",
			slog.String("request_id", info.requestID),
			slog.String("method", r.Method),
			slog.String("route", info.route),
			slog.String("error", err.Error()))
	}
	if p.Status == http.StatusServiceUnavailable {
		// The operator must learn why (store down, disk full): the client
		// only gets the code.
		s.logger.LogAttrs(ctx, slog.LevelWarn, "store unavailable",
			slog.String("request_id", info.requestID), slog.String("route", info.route),
			slog.String("code", p.Code), slog.String("error", err.Error()))
	}
	if w.wrote {
		if !internal {
			s.logger.LogAttrs(ctx, slog.LevelWarn, "error after the answer started",
				slog.String("request_id", info.requestID), slog.String("route", info.route),
				slog.String("code", p.Code))
		}
		return
	}
	if retryAfter > 0 {
		w.Header().Set("Retry-After", strconv.Itoa(int(math.Ceil(retryAfter.Seconds()))))
	}
	if p.Status == http.StatusUnauthorized && w.Header().Get("WWW-Authenticate") == "" {
		w.Header().Set("WWW-Authenticate", "Bearer")
	}
	s.writeProblem(w, r, p)
}

// writeProblem writes p with the request id filled in.
func (s *Server) writeProblem(w http.ResponseWriter, r *http.Request, p api.Problem) {
	p.RequestID = infoFrom(r.Context()).requestID
	// A problem document is the answer to this request only; a cache must not
	// hand it to the next client, who may be allowed what this one was not.
	w.Header().Set("Cache-Control", "no-store")
	if err := writeBody(w, p.Status, api.ProblemContentType, p); err != nil {
		// Only an unencodable problem gets here, which would be a bug in this file.
		s.logger.LogAttrs(r.Context(), slog.LevelError, "encoding problem document",
			slog.String("request_id", p.RequestID), slog.String("error", err.Error()))
		http.Error(w, internalTitle, http.StatusInternalServerError)
	}
}

// statusClientClosed is nginx's code for a request the client abandoned, used
// in logs and metrics only: nobody receives it.
const statusClientClosed = 499

// trackingWriter notes whether the handler started its answer, so the adapter
// knows whether a problem document can still be written.
type trackingWriter struct {
	http.ResponseWriter
	wrote bool
}

func (w *trackingWriter) WriteHeader(code int) {
	if code >= 200 {
		w.wrote = true
	}
	w.ResponseWriter.WriteHeader(code)
}

func (w *trackingWriter) Write(p []byte) (int, error) {
	w.wrote = true
	return w.ResponseWriter.Write(p)
}

// Flush lets streaming handlers flush through the adapter.
func (w *trackingWriter) Flush() {
	w.wrote = true
	http.NewResponseController(w.ResponseWriter).Flush()
}

// Unwrap lets http.ResponseController reach the connection (deadlines for long
// uploads).
func (w *trackingWriter) Unwrap() http.ResponseWriter { return w.ResponseWriter }
