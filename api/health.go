package api

// Health is the body of GET /healthz ({"status":"ok"}) and of a ready
// GET /readyz ({"status":"ready"}).
type Health struct {
	Status string `json:"status"`
}

// The status words of Health.
const (
	HealthOK    = "ok"
	HealthReady = "ready"
)
