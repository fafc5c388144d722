package httpapi

import (
	"bytes"
	"compress/gzip"
	"encoding/json"
	"io"
	"net/http"
	"strings"
	"testing"

	"github.com/fieldsync/fieldsync/api"
)

func gzipBytes(t testing.TB, data []byte) []byte {
	t.Helper()
	var buf bytes.Buffer
	zw := gzip.NewWriter(&buf)
	if _, err := zw.Write(data); err != nil {
		t.Fatal(err)
	}
	if err := zw.Close(); err != nil {
		t.Fatal(err)
	}
	return buf.Bytes()
}

func TestDecodeJSON(t *testing.T) {
	ts := newTestServer(t, withRoutes(testRoutes))
	long := `{"name":"` + strings.Repeat("x", 1822) + `","count":`
	for _, tc := range []struct {
		name, body, detail string
	}{
		{"truncated", long, "unexpected end of input at byte 1841"},
		{"syntax", `{"name": nope}`, "invalid character 'o' in literal null (expecting 'u') at byte 11"},
		{"wrong type", `{"name": 42}`, "field name: expected string, got number at byte 11"},
		{"wrong type nested", `{"count": "7"}`, "field count: expected integer, got string at byte 13"},
		{"array for object", `[1,2]`, "field (top level): expected object, got array at byte 1"},
		{"unknown field", `{"nmae": "x"}`, `unknown field "nmae" at byte 13`},
		{"repeated member", `{"name": "x", "count": 1, "name": "y"}`, `member "name" appears more than once in one object (/name, byte 32): send it once`},
		{"trailing data", `{"name": "x"} {"name": "y"}`, "unexpected data after the JSON value at byte 14"},
		{"trailing bracket", `{"name": "x"}]`, "unexpected data after the JSON value at byte 13"},
		{"empty", ``, "request body is empty"},
		{"blank", "  \n", "request body is empty"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			req := ts.newRequest(t, http.MethodPost, "/_test/echo", tc.body)
			req.Header.Set("Content-Type", "application/json")
			resp, body := ts.do(t, req)
			p := problemOf(t, resp, body, http.StatusBadRequest, api.CodeBadJSON)
			if p.Detail != tc.detail {
				t.Errorf("detail %q, want %q", p.Detail, tc.detail)
			}
		})
	}

	t.Run("valid, content type with charset", func(t *testing.T) {
		req := ts.newRequest(t, http.MethodPost, "/_test/echo", `{"name":"a","count":2}`)
		req.Header.Set("Content-Type", "application/json; charset=utf-8")
		resp, body := ts.do(t, req)
		if resp.StatusCode != 200 || !strings.Contains(string(body), `"name":"a","count":2`) {
			t.Errorf("%d %s", resp.StatusCode, body)
		}
	})
	t.Run("valid, no content type", func(t *testing.T) {
		resp, body := ts.do(t, ts.newRequest(t, http.MethodPost, "/_test/echo", `{"name":"a"}`))
		if resp.StatusCode != 200 {
			t.Errorf("%d %s", resp.StatusCode, body)
		}
	})
}

func TestUnsupportedMediaType(t *testing.T) {
	ts := newTestServer(t, withRoutes(testRoutes))
	for _, ct := range []string{"text/plain", "application/x-www-form-urlencoded", "application/jsonx", "nonsense;;"} {
		req := ts.newRequest(t, http.MethodPost, "/_test/echo", `{"name":"a"}`)
		req.Header.Set("Content-Type", ct)
		resp, body := ts.do(t, req)
		problemOf(t, resp, body, http.StatusUnsupportedMediaType, api.CodeUnsupportedMediaType)
	}
	req := ts.newRequest(t, http.MethodPost, "/_test/echo", `{"name":"a"}`)
	req.Header.Set("Content-Encoding", "br")
	resp, body := ts.do(t, req)
	problemOf(t, resp, body, http.StatusUnsupportedMediaType, api.CodeUnsupportedEncoding)
}

func TestBodyTooLarge(t *testing.T) {
	ts := newTestServer(t, withRoutes(testRoutes))
	// One byte over the default limit, streamed: a plain body.
	big := io.MultiReader(strings.NewReader(`{"name":"`), strings.NewReader(strings.Repeat("x", DefaultMaxBodyBytes)), strings.NewReader(`"}`))
	req := ts.newRequest(t, http.MethodPost, "/_test/echo", big)
	req.Header.Set("Content-Type", "application/json")
	resp, body := ts.do(t, req)
	problemOf(t, resp, body, http.StatusRequestEntityTooLarge, api.CodeBodyTooLarge)
}

// zeroBomb returns a gzip stream of n MiB of zeros without building it: one
// compressed MiB of zeros (about 1 KiB), repeated as concatenated gzip members,
// which a gzip reader reads as one stream.
func zeroBomb(t testing.TB, mib int) io.Reader {
	member := gzipBytes(t, make([]byte, 1<<20))
	readers := make([]io.Reader, mib)
	for i := range readers {
		readers[i] = bytes.NewReader(member)
	}
	return io.MultiReader(readers...)
}

func TestGzipBomb(t *testing.T) {
	ts := newTestServer(t, withRoutes(testRoutes))
	req := ts.newRequest(t, http.MethodPost, "/_test/echo", zeroBomb(t, 1024)) // 1 GiB inflated
	req.Header.Set("Content-Type", "application/json")
	req.Header.Set("Content-Encoding", "gzip")
	resp, body := ts.do(t, req)
	problemOf(t, resp, body, http.StatusRequestEntityTooLarge, api.CodeBodyTooLarge)
}

func TestGzipRequest(t *testing.T) {
	ts := newTestServer(t, withRoutes(testRoutes))

	t.Run("valid", func(t *testing.T) {
		req := ts.newRequest(t, http.MethodPost, "/_test/echo", gzipBytes(t, []byte(`{"name":"zipped","count":3}`)))
		req.Header.Set("Content-Type", "application/json")
		req.Header.Set("Content-Encoding", "gzip")
		resp, body := ts.do(t, req)
		if resp.StatusCode != 200 || !strings.Contains(string(body), `"name":"zipped"`) {
			t.Fatalf("%d %s", resp.StatusCode, body)
		}
	})
	t.Run("limit applies after decompression", func(t *testing.T) {
		ts := newTestServer(t, withRoutes(testRoutes), withConfig(func(c *Config) { c.MaxBodyBytes = 1000 }))
		payload := []byte(`{"name":"` + strings.Repeat("a", 1000) + `"}`)
		req := ts.newRequest(t, http.MethodPost, "/_test/echo", gzipBytes(t, payload)) // ~40 bytes on the wire
		req.Header.Set("Content-Encoding", "gzip")
		resp, body := ts.do(t, req)
		problemOf(t, resp, body, http.StatusRequestEntityTooLarge, api.CodeBodyTooLarge)
	})
	t.Run("corrupt header", func(t *testing.T) {
		req := ts.newRequest(t, http.MethodPost, "/_test/echo", `{"name":"not gzip"}`)
		req.Header.Set("Content-Encoding", "gzip")
		resp, body := ts.do(t, req)
		problemOf(t, resp, body, http.StatusBadRequest, api.CodeBadGzip)
	})
	t.Run("truncated stream", func(t *testing.T) {
		z := gzipBytes(t, []byte(`{"name":"`+strings.Repeat("b", 5000)+`"}`))
		req := ts.newRequest(t, http.MethodPost, "/_test/echo", z[:len(z)/2])
		req.Header.Set("Content-Encoding", "gzip")
		resp, body := ts.do(t, req)
		problemOf(t, resp, body, http.StatusBadRequest, api.CodeBadGzip)
	})
	t.Run("bad checksum", func(t *testing.T) {
		z := gzipBytes(t, []byte(`{"name":"c"}`))
		z[len(z)-8] ^= 0xff // the CRC-32 trailer
		req := ts.newRequest(t, http.MethodPost, "/_test/echo", z)
		req.Header.Set("Content-Encoding", "gzip")
		resp, body := ts.do(t, req)
		problemOf(t, resp, body, http.StatusBadRequest, api.CodeBadGzip)
	})
}

func TestGzipResponse(t *testing.T) {
	ts := newTestServer(t, withRoutes(testRoutes))

	t.Run("big answer, gzip accepted", func(t *testing.T) {
		resp, body := ts.get(t, "/_test/big", "Accept-Encoding", "br;q=1, gzip;q=0.8")
		if resp.Header.Get("Content-Encoding") != "gzip" {
			t.Fatalf("Content-Encoding %q, want gzip", resp.Header.Get("Content-Encoding"))
		}
		if !strings.Contains(resp.Header.Get("Vary"), "Accept-Encoding") {
			t.Error("no Vary: Accept-Encoding")
		}
		if resp.Header.Get("Content-Type") != "application/json" {
			t.Errorf("Content-Type %q", resp.Header.Get("Content-Type"))
		}
		raw, _ := io.ReadAll(resp.Body)
		if len(raw) >= len(body)/4 {
			t.Errorf("%d bytes compressed to %d", len(body), len(raw))
		}
		var v map[string]string
		if err := json.Unmarshal(body, &v); err != nil || !strings.HasPrefix(v["text"], "fieldsync ") {
			t.Errorf("decompressed body %q: %v", truncate(body), err)
		}
	})
	t.Run("metrics, gzip accepted", func(t *testing.T) {
		resp, body := ts.get(t, "/metrics", "Accept-Encoding", "gzip")
		if resp.Header.Get("Content-Encoding") != "gzip" || !strings.Contains(string(body), "fieldsync_http_requests_total") {
			t.Errorf("Content-Encoding %q", resp.Header.Get("Content-Encoding"))
		}
	})
	for _, tc := range []struct {
		name, path, accept string
	}{
		{"not accepted", "/_test/big", ""},
		{"refused with q=0", "/_test/big", "gzip;q=0, *"},
		{"identity only", "/_test/big", "identity"},
		{"small answer", "/healthz", "gzip"},
		{"no content", "/_test/nocontent", "gzip"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			resp, body := ts.get(t, tc.path, "Accept-Encoding", tc.accept)
			if ce := resp.Header.Get("Content-Encoding"); ce != "" {
				t.Errorf("Content-Encoding %q, want none", ce)
			}
			if resp.StatusCode == 200 && len(body) == 0 {
				t.Error("empty body")
			}
			if !strings.Contains(resp.Header.Get("Vary"), "Accept-Encoding") {
				t.Error("no Vary: Accept-Encoding")
			}
		})
	}
	t.Run("star accepts gzip", func(t *testing.T) {
		if !acceptsGzip("*") || acceptsGzip("*;q=0") || acceptsGzip("") || !acceptsGzip("deflate, GZIP") || !acceptsGzip("x-gzip") {
			t.Error("acceptsGzip")
		}
	})
}
