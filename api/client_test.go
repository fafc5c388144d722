package api

import (
	"context"
	"net/http"
	"net/http/httptest"
	"testing"
	"time"
)

func TestClientNonProblemError(t *testing.T) {
	// A proxy in front of the server answers with HTML; the client still
	// returns a *Problem the caller can switch on.
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "text/html")
		w.Header().Set("Retry-After", "30")
		w.WriteHeader(http.StatusBadGateway)
		_, _ = w.Write([]byte("<html>bad gateway</html>"))
	}))
	defer srv.Close()
	c, err := NewClient(srv.URL + "/prefix/")
	if err != nil {
		t.Fatal(err)
	}
	err = c.Do(context.Background(), http.MethodGet, "/healthz", nil, nil)
	p, ok := err.(*Problem)
	if !ok || p.Status != 502 || p.Code != "http_502" || p.Title != "Bad Gateway" || p.RetryAfter != 30*time.Second {
		t.Fatalf("Do: %v (%+v)", err, p)
	}
}

func TestClientPathAndHeaders(t *testing.T) {
	var got *http.Request
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		got = r
		w.WriteHeader(http.StatusNoContent)
	}))
	defer srv.Close()
	c, err := NewClient(srv.URL+"/base", WithToken("t1"))
	if err != nil {
		t.Fatal(err)
	}
	c.SetToken("t2")
	var out struct{}
	if err := c.Do(context.Background(), http.MethodPost, "v1/x?since=3", RefreshRequest{RefreshToken: "r"}, &out); err != nil {
		t.Fatal(err)
	}
	if got.URL.Path != "/base/v1/x" || got.URL.RawQuery != "since=3" {
		t.Errorf("URL %s", got.URL)
	}
	if got.Header.Get("Authorization") != "Bearer t2" || got.Header.Get("Content-Type") != "application/json" {
		t.Errorf("headers %v", got.Header)
	}
	if _, err := NewClient("ftp://x"); err == nil {
		t.Error("NewClient accepted an ftp URL")
	}
}

func TestParseRetryAfter(t *testing.T) {
	now := time.Date(2026, 1, 2, 3, 4, 5, 0, time.UTC)
	for in, want := range map[string]time.Duration{
		"":                              0,
		"7":                             7 * time.Second,
		"-1":                            0,
		"soon":                          0,
		"Fri, 02 Jan 2026 03:04:15 GMT": 10 * time.Second,
	} {
		if got := parseRetryAfter(in, now); got != want {
			t.Errorf("parseRetryAfter(%q) = %v, want %v", in, got, want)
		}
	}
}
