package httpapi

import (
	"bufio"
	"encoding/json"
	"fmt"
	"net"
	"net/http"
	"strings"
	"testing"
	"time"

	dto "github.com/prometheus/client_model/go"

	"github.com/fieldsync/fieldsync/api"
)

// rawRequest opens a connection to ts and sends a POST /v1/auth/token (a
// route that reads its body before anything else) announcing length bytes of
// body, of which it sends only sent.
func rawRequest(t *testing.T, ts *testServer, length int, sent string) net.Conn {
	t.Helper()
	conn, err := net.Dial("tcp", ts.Listener.Addr().String())
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { conn.Close() })
	fmt.Fprintf(conn, "POST /v1/auth/token HTTP/1.1\r\nHost: test\r\nContent-Type: application/json\r\nContent-Length: %d\r\n\r\n%s", length, sent)
	return conn
}

// TestStalledBodyIsCut: a client that starts a body and stops sending is
// answered 408 body_too_slow once its grace is spent, instead of holding the
// connection for ever.
func TestStalledBodyIsCut(t *testing.T) {
	ts := newTestServer(t, withConfig(func(c *Config) { c.MinBodyRate = 1000; c.BodyGrace = 100 * time.Millisecond }))
	conn := rawRequest(t, ts, 100000, `{"username": "ana", "pass`)
	// A bound on the test, not a measurement: the server must answer by itself.
	_ = conn.SetReadDeadline(time.Now().Add(time.Minute))
	resp, err := http.ReadResponse(bufio.NewReader(conn), nil)
	if err != nil {
		t.Fatalf("no answer to a stalled body: %v", err)
	}
	defer resp.Body.Close()
	var p api.Problem
	if err := json.NewDecoder(resp.Body).Decode(&p); err != nil {
		t.Fatal(err)
	}
	if resp.StatusCode != http.StatusRequestTimeout || p.Code != api.CodeBodyTooSlow || !strings.Contains(p.Detail, "1000 bytes per second") {
		t.Errorf("%d %+v, want 408 %s", resp.StatusCode, p, api.CodeBodyTooSlow)
	}
	if strings.Contains(ts.logs.String(), "internal error") {
		t.Errorf("a slow client was logged as an internal error:\n%s", ts.logs.String())
	}
}

// TestHangUpMidBodyIsNotAServerError: a tablet whose link drops in the middle
// of a push is the everyday case on 2G; it is logged as a client that went
// away, not as an internal error, and not counted as a 500.
func TestHangUpMidBodyIsNotAServerError(t *testing.T) {
	ts := newTestServer(t)
	conn := rawRequest(t, ts, 1000, `{"username": "ana", "pass`)
	conn.Close()
	ts.logs.waitFor(t, "client closed request")
	if strings.Contains(ts.logs.String(), "internal error") {
		t.Errorf("a hang-up was logged as an internal error:\n%s", ts.logs.String())
	}
	mfs, err := ts.reg.Gather()
	if err != nil {
		t.Fatal(err)
	}
	for _, mf := range mfs {
		if mf.GetName() != "fieldsync_http_requests_total" {
			continue
		}
		for _, m := range mf.GetMetric() {
			if label(m, "status") == "500" {
				t.Errorf("a hang-up was counted as a 500: %v", m)
			}
		}
	}
}

func label(m *dto.Metric, name string) string {
	for _, l := range m.GetLabel() {
		if l.GetName() == name {
			return l.GetValue()
		}
	}
	return ""
}
