package httpapi

import (
	"fmt"
	"time"

	"github.com/prometheus/client_golang/prometheus"
)

// StoreMetrics returns the observer that the stores call after each operation
// (sqlite.Config.Observe, mongo.Config.Observe); it records the time in the
// histogram fieldsync_store_operation_duration_seconds{op} of reg. The stores
// name their own operations: SQLite by the Store method whose transaction ran
// ("WriteRecords"), MongoDB by the command the driver sent and its collection
// ("findAndModify records"). So nothing here has to follow the store contract
// as it grows. It lives in the HTTP layer because that is where the registry
// is served; main makes it before opening the store.
//
// Calling it twice with the same registry shares one histogram. It fails only
// if reg holds another metric of that name: a wiring bug.
func StoreMetrics(reg prometheus.Registerer) (func(op string, took time.Duration), error) {
	h := prometheus.NewHistogramVec(prometheus.HistogramOpts{
		Name: "fieldsync_store_operation_duration_seconds",
		Help: "Time taken by store operations: SQLite transactions by Store method, MongoDB commands by command and collection.",
		// From a cached SQLite read to a slow MongoDB write batch.
		Buckets: []float64{.0005, .001, .0025, .005, .01, .025, .05, .1, .25, .5, 1, 2.5, 5, 10},
	}, []string{"op"})
	h, err := register(reg, h)
	if err != nil {
		return nil, fmt.Errorf("httpapi: store metrics: %w", err)
	}
	return func(op string, took time.Duration) {
		h.WithLabelValues(op).Observe(took.Seconds())
	}, nil
}
