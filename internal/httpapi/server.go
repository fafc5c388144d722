package httpapi

import (
	"errors"
	"log/slog"
	"net/http"
	"net/netip"
	"sort"
	"strings"
	"time"

	"github.com/gorilla/mux"
	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"
	"golang.org/x/sync/semaphore"

	"github.com/fieldsync/fieldsync/internal/domain"
	"github.com/fieldsync/fieldsync/internal/export"
	"github.com/fieldsync/fieldsync/internal/forms"
	"github.com/fieldsync/fieldsync/internal/identity"
	"github.com/fieldsync/fieldsync/internal/media"
	"github.com/fieldsync/fieldsync/internal/openrosa/bridge"
	"github.com/fieldsync/fieldsync/internal/records"
)

// DefaultMaxBodyBytes is the largest request body accepted, measured after
// decompression: protocol.md caps a push at 16 MiB.
const DefaultMaxBodyBytes = 16 << 20

// DefaultReadyTimeout bounds the store ping of GET /readyz: a load balancer
// probing a hung store must get its 503 before its own probe times out.
const DefaultReadyTimeout = 2 * time.Second

// Registry is where a Server registers its metrics and what GET /metrics serves.
// *prometheus.Registry is one.
type Registry interface {
	prometheus.Registerer
	prometheus.Gatherer
}

// Config holds everything a Server needs; main wires it.
type Config struct {
	// Store is required.
	Store domain.Store
	// Logger receives the access log and the details of internal errors.
	// nil means slog.Default().
	Logger *slog.Logger
	// Now is the clock; nil means time.Now. Tests set it where time matters.
	Now func() time.Time
	// MaxBodyBytes caps every request body after decompression; 0 means
	// DefaultMaxBodyBytes.
	MaxBodyBytes int64
	// MinBodyRate is the average pace, in bytes per second, below which a
	// request body is cut with 408 body_too_slow once BodyGrace is spent (see
	// pacedBody); 0 means DefaultMinBodyRate.
	MinBodyRate int64
	// BodyGrace is the time a body may take before the pace counts; 0 means
	// DefaultBodyGrace.
	BodyGrace time.Duration
	// MetricsElsewhere leaves GET /metrics out of the API's routes: the
	// caller serves MetricsHandler on an address of its own.
	MetricsElsewhere bool
	// Registry receives the server's metrics and is served on GET /metrics.
	// nil means a fresh registry with the Go and process collectors, so tests can
	// build many servers in one process.
	Registry Registry
	// Authenticator checks bearer tokens. nil means no token is ever valid: every
	// route that is not Public answers 401.
	Authenticator Authenticator
	// ReadyTimeout bounds the store ping of GET /readyz; 0 means
	// DefaultReadyTimeout.
	ReadyTimeout time.Duration
	// Identity is the identity and access service (tokens, users, projects,
	// members, devices, audit).
	Identity *identity.Service
	// Forms is the form-definition service.
	Forms *forms.Service
	// Records is the sync service (push, pull, records, quarantine).
	Records *records.Service
	// Media is the attachment service (issue 13); nil leaves the
	// attachment routes out.
	Media *media.Service
	// TrustedProxies are the reverse proxies whose X-Forwarded-For or Forwarded
	// header names the client (see clientIP); nil trusts no header.
	TrustedProxies []netip.Prefix
	// ExportAttachments, when set, lets csv.zip exports hold the records'
	// attachments (attachments=true); the media service provides it.
	ExportAttachments export.AttachmentSource
	// PublicURL is FIELDSYNC_PUBLIC_URL: the URL clients reach the server at,
	// put into the OpenRosa server URLs; "" means the request's scheme and Host.
	PublicURL string
	// OpenRosaFiles keeps the files of OpenRosa submissions (bridge.DirSink,
	// or internal/media once wired); nil refuses submissions with files (503,
	// so the tablet keeps them).
	OpenRosaFiles bridge.AttachmentSink
}

// Server is the HTTP API. It implements http.Handler.
type Server struct {
	store        domain.Store
	logger       *slog.Logger
	now          func() time.Time
	maxBodyBytes int64
	minBodyRate  int64
	bodyGrace    time.Duration
	registry     Registry
	auth         Authenticator
	readyTimeout time.Duration
	// metricsElsewhere is Config.MetricsElsewhere.
	metricsElsewhere bool
	// pushSlots bounds the items pushes work on at once (pushItemsInFlight).
	pushSlots *semaphore.Weighted
	records   *records.Service
	identity  *identity.Service
	forms     *forms.Service
	media     *media.Service
	// trustedProxies is Config.TrustedProxies.
	trustedProxies []netip.Prefix
	// exportAttachments is Config.ExportAttachments.
	exportAttachments export.AttachmentSource
	// The OpenRosa bridge (openrosa.go): nil without forms and records.
	bridge        *bridge.Bridge
	publicURL     string
	openRosaFiles bridge.AttachmentSink

	router  *mux.Router
	handler http.Handler
	metrics *httpMetrics
	routes  []RouteInfo
	// rules[i] is the Rule of routes[i], for RuleOf (the web console, issue 17).
	rules []Rule
}

// RouteInfo describes one registered route: its method, its path template and
// the name of its authorization rule.
type RouteInfo struct {
	Method string
	Path   string
	Rule   string
}

// New builds a Server and registers every route.
func New(cfg Config) (*Server, error) {
	if cfg.Store == nil {
		return nil, errors.New("httpapi: Config.Store is required")
	}
	s := &Server{
		store:            cfg.Store,
		logger:           cfg.Logger,
		now:              cfg.Now,
		maxBodyBytes:     cfg.MaxBodyBytes,
		minBodyRate:      cfg.MinBodyRate,
		bodyGrace:        cfg.BodyGrace,
		registry:         cfg.Registry,
		auth:             cfg.Authenticator,
		readyTimeout:     cfg.ReadyTimeout,
		metricsElsewhere: cfg.MetricsElsewhere,
		pushSlots:        semaphore.NewWeighted(pushItemsInFlight),
		records:          cfg.Records,
		identity:         cfg.Identity,
		forms:            cfg.Forms,
		media:            cfg.Media,
		trustedProxies:   cfg.TrustedProxies,
		// Datasets (issue 12).
		exportAttachments: cfg.ExportAttachments,
		publicURL:         cfg.PublicURL,
		openRosaFiles:     cfg.OpenRosaFiles,
	}
	if s.exportAttachments == nil && cfg.Media != nil {
		// csv.zip with attachments=true holds the files the media service
		// keeps (issue 13).
		s.exportAttachments = cfg.Media
	}
	if s.openRosaFiles == nil && cfg.Media != nil {
		// Collect's photos and recordings are the records' attachments,
		// kept by the media service like those of the JSON protocol.
		s.openRosaFiles = cfg.Media
	}
	if s.logger == nil {
		s.logger = slog.Default()
	}
	if s.now == nil {
		s.now = time.Now
	}
	if s.maxBodyBytes <= 0 {
		s.maxBodyBytes = DefaultMaxBodyBytes
	}
	if s.minBodyRate <= 0 {
		s.minBodyRate = DefaultMinBodyRate
	}
	if s.bodyGrace <= 0 {
		s.bodyGrace = DefaultBodyGrace
	}
	if s.readyTimeout <= 0 {
		s.readyTimeout = DefaultReadyTimeout
	}
	if s.registry == nil {
		reg := prometheus.NewRegistry()
		reg.MustRegister(collectors.NewGoCollector(), collectors.NewProcessCollector(collectors.ProcessCollectorOpts{}))
		s.registry = reg
	}
	m, err := newHTTPMetrics(s.registry)
	if err != nil {
		return nil, err
	}
	s.metrics = m

	s.router = mux.NewRouter()
	s.router.NotFoundHandler = s.adapt(s.handleNotFound)
	s.router.MethodNotAllowedHandler = s.adapt(s.handleMethodNotAllowed)

	s.registerOpsRoutes()
	s.registerIdentityRoutes()
	s.registerFormRoutes()
	s.registerRecordRoutes()
	// Quarantine: listing, re-apply and dismissal (issue 11).
	s.registerQuarantineRoutes()
	// Datasets: the export (issue 12).
	s.registerExportRoutes()
	s.registerODataRoutes() // issue 12: the OData feed
	// Attachments (issue 13): photos, audio and other files of records.
	s.registerAttachmentRoutes()
	// The OpenRosa bridge for ODK Collect (issue 14).
	if s.forms != nil && s.records != nil && s.identity != nil {
		s.bridge = bridge.New(bridge.Config{Store: s.store, Forms: s.forms, Records: s.records, Files: s.openRosaFiles, Logger: s.logger, Now: s.now})
	}
	s.registerOpenRosaKeyRoutes()

	// The chain, outermost first; doc.go says why in this order.
	var h http.Handler = s.router
	h = s.compressResponse(h)
	h = s.decompressRequest(h)
	h = s.metricsMiddleware(h)
	h = s.accessLog(h)
	h = s.recoverPanic(h)
	h = s.requestID(h)
	s.handler = h
	return s, nil
}

// ServeHTTP implements http.Handler.
func (s *Server) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	s.handler.ServeHTTP(w, r)
}

// Routes lists every registered route with its rule, ordered by path and method.
func (s *Server) Routes() []RouteInfo {
	out := append([]RouteInfo(nil), s.routes...)
	sort.Slice(out, func(i, j int) bool {
		if out[i].Path != out[j].Path {
			return out[i].Path < out[j].Path
		}
		return out[i].Method < out[j].Method
	})
	return out
}

// handlerFunc is the shape of every handler: it answers success itself and
// returns any failure for the adapter to turn into a problem document.
type handlerFunc func(w http.ResponseWriter, r *http.Request) error

// handle registers one route: the only way routes are added, so that every route
// has a rule, a route-template label for logs and metrics, and the error adapter.
// It panics on a malformed registration (a programming error caught by any test
// that builds a Server).
func (s *Server) handle(method, path string, rule Rule, h handlerFunc) {
	if rule.kind == ruleInvalid {
		panic("httpapi: route " + method + " " + path + " has no rule")
	}
	if rule.kind == ruleProject && !strings.Contains(path, "{project}") {
		panic("httpapi: route " + method + " " + path + " has a project rule but no {project} variable")
	}
	for _, ri := range s.routes {
		if ri.Method == method && ri.Path == path {
			panic("httpapi: route " + method + " " + path + " registered twice")
		}
	}
	inner := s.adapt(s.authorize(rule, h))
	s.router.Handle(path, http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if info := infoFrom(r.Context()); info != nil {
			info.route = path
		}
		inner.ServeHTTP(w, r)
	})).Methods(method)
	s.routes = append(s.routes, RouteInfo{Method: method, Path: path, Rule: rule.String()})
	s.rules = append(s.rules, rule)
}

// pathVar returns a path variable of the matched route. One place, so that a
// switch to encoded paths (for attachment names with a slash) changes only here.
func pathVar(r *http.Request, name string) string {
	return mux.Vars(r)[name]
}

// routeLabelUnmatched labels requests no route matched, in logs and metrics,
// so a scanner probing random paths cannot grow the metric series.
const routeLabelUnmatched = "unmatched"

func (s *Server) handleNotFound(w http.ResponseWriter, r *http.Request) error {
	if info := infoFrom(r.Context()); info != nil {
		info.route = routeLabelUnmatched
	}
	return &domain.Error{Kind: domain.KindNotFound, Code: "not_found", Title: "No such resource"}
}

func (s *Server) handleMethodNotAllowed(w http.ResponseWriter, r *http.Request) error {
	methods, template := s.allowed(r)
	if info := infoFrom(r.Context()); info != nil {
		info.route = template
	}
	w.Header().Set("Allow", strings.Join(methods, ", "))
	return &domain.Error{
		Kind:   kindMethodNotAllowed,
		Code:   "method_not_allowed",
		Title:  "Method not allowed",
		Detail: r.Method + " is not allowed here; allowed: " + strings.Join(methods, ", "),
	}
}

// allowed returns the methods the router would accept for r's path, and the path
// template that matched, by trying each registered route with each of its methods.
func (s *Server) allowed(r *http.Request) (methods []string, template string) {
	template = routeLabelUnmatched
	seen := map[string]bool{}
	_ = s.router.Walk(func(route *mux.Route, _ *mux.Router, _ []*mux.Route) error {
		ms, err := route.GetMethods()
		if err != nil {
			return nil
		}
		for _, m := range ms {
			probe := r.WithContext(r.Context())
			probe.Method = m
			var match mux.RouteMatch
			if route.Match(probe, &match) && match.MatchErr == nil && !seen[m] {
				seen[m] = true
				methods = append(methods, m)
				if t, err := route.GetPathTemplate(); err == nil {
					template = t
				}
			}
		}
		return nil
	})
	sort.Strings(methods)
	return methods, template
}
