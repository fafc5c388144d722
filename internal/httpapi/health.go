package httpapi

import (
	"context"
	"log/slog"
	"net/http"

	"github.com/prometheus/client_golang/prometheus/promhttp"

	"github.com/fieldsync/fieldsync/api"
	"github.com/fieldsync/fieldsync/internal/domain"
)

// registerOpsRoutes adds the operational routes of protocol.md §5.
func (s *Server) registerOpsRoutes() {
	s.handle(http.MethodGet, "/healthz", Public, s.handleHealthz)
	s.handle(http.MethodGet, "/readyz", Public, s.handleReadyz)

	if s.metricsElsewhere {
		return
	}
	// compressResponse compresses, as for every other route.
	metrics := s.metricsHandler(true)
	s.handle(http.MethodGet, "/metrics", Public, func(w http.ResponseWriter, r *http.Request) error {
		metrics.ServeHTTP(w, r)
		return nil
	})
}

// MetricsHandler serves the server's metrics on an address of their own
// (FIELDSYNC_METRICS_ADDR; Config.MetricsElsewhere), so that they need not be
// reachable where the API is public.
func (s *Server) MetricsHandler() http.Handler {
	mux := http.NewServeMux()
	mux.Handle("GET /metrics", s.metricsHandler(false))
	return mux
}

func (s *Server) metricsHandler(disableCompression bool) http.Handler {
	return promhttp.HandlerFor(s.registry, promhttp.HandlerOpts{
		ErrorLog:           slogPrintln{s.logger},
		DisableCompression: disableCompression,
		// Keep serving what can be gathered: a broken collector must not blind
		// the operator to everything else.
		ErrorHandling: promhttp.ContinueOnError,
	})
}

// handleHealthz answers that the process is up. It touches nothing else, so a
// liveness probe never restarts a server because its store is slow.
func (s *Server) handleHealthz(w http.ResponseWriter, r *http.Request) error {
	return writeJSON(w, http.StatusOK, api.Health{Status: api.HealthOK})
}

// handleReadyz answers whether the store answers, within s.readyTimeout.
func (s *Server) handleReadyz(w http.ResponseWriter, r *http.Request) error {
	ctx, cancel := context.WithTimeout(r.Context(), s.readyTimeout)
	defer cancel()
	if err := s.store.Ping(ctx); err != nil {
		// Whatever the store says, the answer is "not ready": the detail is for
		// the log, and a load balancer only needs the 503.
		s.logger.LogAttrs(r.Context(), slog.LevelWarn, "store not ready",
			slog.String("request_id", RequestIDFrom(r.Context())), slog.String("error", err.Error()))
		return &domain.Error{Kind: domain.KindUnavailable, Code: api.CodeStoreUnavailable,
			Title: "The store does not answer; try again later", Err: err}
	}
	return writeJSON(w, http.StatusOK, api.Health{Status: api.HealthReady})
}

// slogPrintln adapts slog to promhttp's Logger.
type slogPrintln struct{ l *slog.Logger }

func (p slogPrintln) Println(v ...any) {
	p.l.Error("serving metrics", slog.Any("error", v))
}
