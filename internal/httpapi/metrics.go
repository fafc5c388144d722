package httpapi

import (
	"errors"
	"strconv"
	"time"

	"github.com/prometheus/client_golang/prometheus"
)

// durationBuckets reach a minute: a push of 16 MiB over a 2G link takes that
// long, and the default buckets (up to 10 s) would lump all of it together.
var durationBuckets = []float64{.005, .01, .025, .05, .1, .25, .5, 1, 2.5, 5, 10, 30, 60}

// httpMetrics are the request metrics. Labels are the route template, never the
// raw path, so record ids and scanners' random paths cannot grow the series.
type httpMetrics struct {
	requests *prometheus.CounterVec
	duration *prometheus.HistogramVec
	// pushWaiting is the items of pushes waiting for their turn (see
	// pushItemsInFlight): above zero for long, the server is saturated.
	pushWaiting prometheus.Gauge
}

func newHTTPMetrics(reg prometheus.Registerer) (*httpMetrics, error) {
	m := &httpMetrics{
		requests: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "fieldsync_http_requests_total",
			Help: "HTTP requests answered, by route template, method and status.",
		}, []string{"route", "method", "status"}),
		duration: prometheus.NewHistogramVec(prometheus.HistogramOpts{
			Name:    "fieldsync_http_request_duration_seconds",
			Help:    "Time to answer HTTP requests, by route template and method.",
			Buckets: durationBuckets,
		}, []string{"route", "method"}),
		pushWaiting: prometheus.NewGauge(prometheus.GaugeOpts{
			Name: "fieldsync_push_items_waiting",
			Help: "Items of pushes that wait, their bodies read, for their turn to be validated and written (the server works on at most 1,000 pushed items at once).",
		}),
	}
	var err error
	if m.requests, err = register(reg, m.requests); err != nil {
		return nil, err
	}
	if m.duration, err = register(reg, m.duration); err != nil {
		return nil, err
	}
	if m.pushWaiting, err = register(reg, m.pushWaiting); err != nil {
		return nil, err
	}
	return m, nil
}

// register registers c, or returns the collector already registered under the
// same description: two servers in one process may share a registry.
func register[C prometheus.Collector](reg prometheus.Registerer, c C) (C, error) {
	if err := reg.Register(c); err != nil {
		var are prometheus.AlreadyRegisteredError
		if errors.As(err, &are) {
			if existing, ok := are.ExistingCollector.(C); ok {
				return existing, nil
			}
		}
		return c, err
	}
	return c, nil
}

func (m *httpMetrics) observe(route, method string, status int, d time.Duration) {
	m.requests.WithLabelValues(route, method, strconv.Itoa(status)).Inc()
	m.duration.WithLabelValues(route, method).Observe(d.Seconds())
}
