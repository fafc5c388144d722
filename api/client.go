package api

import (
	"bytes"
	"compress/gzip"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"mime"
	"net/http"
	"net/url"
	"strconv"
	"strings"
	"sync"
	"time"

	jsonv2 "github.com/go-json-experiment/json"
)

// Client speaks the v1 protocol to one server. It is safe for concurrent use;
// typed methods for each route are added next to the routes they call.
type Client struct {
	base      *url.URL
	hc        *http.Client
	userAgent string
	// gzipMin is the smallest JSON request body sent gzip-compressed; 0 sends
	// every body plain.
	gzipMin int

	mu    sync.RWMutex
	token string
}

// Option configures a Client.
type Option func(*Client)

// WithHTTPClient makes the Client send its requests through hc (timeouts,
// proxies, test transports).
func WithHTTPClient(hc *http.Client) Option { return func(c *Client) { c.hc = hc } }

// WithToken sets the access token sent as "Authorization: Bearer".
func WithToken(token string) Option { return func(c *Client) { c.token = token } }

// WithUserAgent sets the User-Agent header.
func WithUserAgent(ua string) Option { return func(c *Client) { c.userAgent = ua } }

// WithGzipRequests sends JSON request bodies of at least minSize bytes
// gzip-compressed: on a 2G link a push of many submissions shrinks several fold.
func WithGzipRequests(minSize int) Option {
	return func(c *Client) {
		if minSize < 1 {
			minSize = 1
		}
		c.gzipMin = minSize
	}
}

// NewClient returns a Client for the server at baseURL (for example
// "https://sync.example.org"; a path prefix is kept).
func NewClient(baseURL string, opts ...Option) (*Client, error) {
	u, err := url.Parse(baseURL)
	if err != nil {
		return nil, fmt.Errorf("api: base URL: %w", err)
	}
	if u.Scheme != "http" && u.Scheme != "https" {
		return nil, fmt.Errorf("api: base URL %q: scheme must be http or https", baseURL)
	}
	u.Path = strings.TrimSuffix(u.Path, "/")
	u.RawQuery, u.Fragment = "", ""
	c := &Client{base: u, hc: http.DefaultClient, userAgent: "fieldsync-api-client"}
	for _, o := range opts {
		o(c)
	}
	return c, nil
}

// SetToken replaces the access token, for example after a refresh.
func (c *Client) SetToken(token string) {
	c.mu.Lock()
	c.token = token
	c.mu.Unlock()
}

// Token returns the current access token.
func (c *Client) Token() string {
	c.mu.RLock()
	defer c.mu.RUnlock()
	return c.token
}

// Health calls GET /healthz and returns nil when the server process is up.
func (c *Client) Health(ctx context.Context) error {
	var h Health
	return c.Do(ctx, http.MethodGet, "/healthz", nil, &h)
}

// Ready calls GET /readyz and returns nil when the server's store answers; a
// *Problem with Status 503 (and RetryAfter) otherwise.
func (c *Client) Ready(ctx context.Context) error {
	var h Health
	return c.Do(ctx, http.MethodGet, "/readyz", nil, &h)
}

// Do sends one request and decodes the answer.
//
// path is relative to the base URL and may carry a query ("/v1/x?since=3"). in
// is the body: nil for none, []byte or json.RawMessage sent as JSON as is, an
// io.Reader streamed as is without a Content-Type (attachments), anything else
// encoded as JSON. out receives a 2xx body: nil discards it, *[]byte takes the
// raw bytes, anything else is decoded from JSON by json/v2 (member names
// match exactly, duplicate names and invalid UTF-8 are errors).
//
// Every answer outside 2xx is returned as a *Problem: the server's problem
// document when it sent one, otherwise one made from the status line (a proxy's
// 502, say), with Code "http_<status>".
func (c *Client) Do(ctx context.Context, method, path string, in, out any) error {
	_, _, err := c.Exchange(ctx, method, path, nil, in, out)
	return err
}

// Exchange is Do for routes whose answer also lies in its status and headers
// (201 or 200, ETag): it adds header to the request and returns the answer's
// status and headers. When header holds If-None-Match, a 304 Not Modified is
// not an error: it returns 304 and leaves out untouched.
func (c *Client) Exchange(ctx context.Context, method, path string, header http.Header, in, out any) (int, http.Header, error) {
	req, err := c.newRequest(ctx, method, path, in)
	if err != nil {
		return 0, nil, err
	}
	for k, vs := range header {
		req.Header[http.CanonicalHeaderKey(k)] = vs
	}
	resp, err := c.hc.Do(req)
	if err != nil {
		return 0, nil, err
	}
	defer resp.Body.Close()

	if resp.StatusCode == http.StatusNotModified && req.Header.Get("If-None-Match") != "" {
		return resp.StatusCode, resp.Header, nil
	}
	if resp.StatusCode < 200 || resp.StatusCode > 299 {
		return resp.StatusCode, resp.Header, readProblem(resp)
	}
	switch o := out.(type) {
	case nil:
		_, err = io.Copy(io.Discard, resp.Body)
	case *[]byte:
		*o, err = io.ReadAll(resp.Body)
	default:
		if resp.StatusCode == http.StatusNoContent {
			break
		}
		// json/v2 (go-json-experiment, the mirror of Go's encoding/json/v2)
		// decodes a page of 1000 records in about a third of encoding/json's
		// CPU, which keeps a pull within ~20% of the hand-written page decoder
		// it replaced (issue 9 has the figures).
		if err = jsonv2.UnmarshalRead(resp.Body, out); err != nil {
			err = fmt.Errorf("api: %s %s: decoding answer: %w", method, path, err)
		}
	}
	return resp.StatusCode, resp.Header, err
}

func (c *Client) newRequest(ctx context.Context, method, path string, in any) (*http.Request, error) {
	rel, err := url.Parse(path)
	if err != nil {
		return nil, fmt.Errorf("api: path %q: %w", path, err)
	}
	u := *c.base
	u.Path = c.base.Path + "/" + strings.TrimPrefix(rel.Path, "/")
	u.RawQuery = rel.RawQuery

	var body []byte
	var reader io.Reader
	isJSON := true
	switch v := in.(type) {
	case nil:
	case []byte:
		body = v
	case json.RawMessage:
		body = v
	case io.Reader:
		reader, isJSON = v, false
	default:
		if body, err = json.Marshal(v); err != nil {
			return nil, fmt.Errorf("api: encoding request body: %w", err)
		}
	}
	gzipped := false
	if body != nil && c.gzipMin > 0 && len(body) >= c.gzipMin {
		var buf bytes.Buffer
		zw := gzip.NewWriter(&buf)
		if _, err := zw.Write(body); err != nil {
			return nil, err
		}
		if err := zw.Close(); err != nil {
			return nil, err
		}
		body, gzipped = buf.Bytes(), true
	}
	if body != nil {
		// A bytes.Reader lets net/http set Content-Length and GetBody, so a
		// request is retried safely after a dropped connection.
		reader = bytes.NewReader(body)
	}
	req, err := http.NewRequestWithContext(ctx, method, u.String(), reader)
	if err != nil {
		return nil, err
	}
	if body != nil && isJSON {
		req.Header.Set("Content-Type", "application/json")
	}
	if gzipped {
		req.Header.Set("Content-Encoding", "gzip")
	}
	req.Header.Set("Accept", "application/json, "+ProblemContentType)
	if c.userAgent != "" {
		req.Header.Set("User-Agent", c.userAgent)
	}
	if tok := c.Token(); tok != "" {
		req.Header.Set("Authorization", "Bearer "+tok)
	}
	return req, nil
}

// maxProblemBytes bounds what is read of an error body: a problem document is
// small, and a misbehaving proxy's HTML page is not worth more.
const maxProblemBytes = 64 << 10

// readProblem turns a non-2xx answer into a *Problem.
func readProblem(resp *http.Response) *Problem {
	p := &Problem{}
	data, _ := io.ReadAll(io.LimitReader(resp.Body, maxProblemBytes))
	mt, _, _ := mime.ParseMediaType(resp.Header.Get("Content-Type"))
	if mt != ProblemContentType || json.Unmarshal(data, p) != nil {
		p = &Problem{}
	}
	if p.Status == 0 {
		p.Status = resp.StatusCode
	}
	if p.Type == "" {
		p.Type = "about:blank"
	}
	if p.Title == "" {
		p.Title = http.StatusText(resp.StatusCode)
	}
	if p.Code == "" {
		p.Code = "http_" + strconv.Itoa(resp.StatusCode)
	}
	if p.RequestID == "" {
		p.RequestID = resp.Header.Get("X-Request-Id")
	}
	p.RetryAfter = parseRetryAfter(resp.Header.Get("Retry-After"), time.Now())
	return p
}

// parseRetryAfter reads delay-seconds or an HTTP date (RFC 9110 §10.2.3).
func parseRetryAfter(v string, now time.Time) time.Duration {
	if v == "" {
		return 0
	}
	if s, err := strconv.Atoi(v); err == nil && s >= 0 {
		return time.Duration(s) * time.Second
	}
	if t, err := http.ParseTime(v); err == nil {
		if d := t.Sub(now); d > 0 {
			return d
		}
	}
	return 0
}

// IsCode reports whether err is a *Problem with the given code.
func IsCode(err error, code string) bool {
	var p *Problem
	return errors.As(err, &p) && p.Code == code
}
