package httpapi

import (
	"context"
	"errors"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/fieldsync/fieldsync/api"
)

func TestClient(t *testing.T) {
	ts := newTestServer(t, withRoutes(testRoutes))
	ctx := context.Background()
	c := ts.apiClient(t)

	if err := c.Health(ctx); err != nil {
		t.Errorf("Health: %v", err)
	}
	if err := c.Ready(ctx); err != nil {
		t.Errorf("Ready: %v", err)
	}

	t.Run("problem", func(t *testing.T) {
		err := c.Do(ctx, http.MethodGet, "/v1/nothing-here", nil, nil)
		var p *api.Problem
		if !errors.As(err, &p) || p.Status != 404 || p.Code != api.CodeNotFound || p.RequestID == "" {
			t.Fatalf("Do: %v (%+v)", err, p)
		}
		if !api.IsCode(err, api.CodeNotFound) {
			t.Error("IsCode")
		}
	})

	t.Run("json round trip, gzipped request", func(t *testing.T) {
		gz := ts.apiClient(t, api.WithGzipRequests(1))
		var out struct {
			Name  string `json:"name"`
			Count int    `json:"count"`
		}
		in := map[string]any{"name": strings.Repeat("é", 300), "count": 9}
		if err := gz.Do(ctx, http.MethodPost, "/_test/echo", in, &out); err != nil {
			t.Fatal(err)
		}
		if out.Count != 9 || out.Name != in["name"] {
			t.Errorf("echo %+v", out)
		}
	})

	t.Run("bearer token", func(t *testing.T) {
		c := ts.apiClient(t, api.WithToken("abc"))
		err := c.Do(ctx, http.MethodGet, "/_test/private", nil, nil)
		if !api.IsCode(err, api.CodeUnauthorized) {
			t.Errorf("Do: %v", err)
		}
		if strings.Contains(err.Error(), "abc") {
			t.Errorf("the error shows the token: %v", err)
		}
	})

	t.Run("not ready", func(t *testing.T) {
		ts := newTestServer(t)
		c := ts.apiClient(t)
		_ = ts.store.Close()
		err := c.Ready(ctx)
		var p *api.Problem
		if !errors.As(err, &p) || p.Status != 503 || p.Code != api.CodeStoreUnavailable || p.RetryAfter != 5*time.Second {
			t.Errorf("Ready: %v (%+v)", err, p)
		}
	})
}
