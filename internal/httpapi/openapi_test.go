package httpapi

import (
	"bytes"
	"compress/gzip"
	"context"
	"errors"
	"io"
	"net/http"
	"regexp"
	"sort"
	"strings"
	"sync"
	"testing"

	"github.com/getkin/kin-openapi/openapi3"
	"github.com/getkin/kin-openapi/openapi3filter"
	"github.com/getkin/kin-openapi/routers"
	"github.com/getkin/kin-openapi/routers/gorillamux"
	"github.com/gorilla/mux"
)

// specPath is the contract, at the module root.
const specPath = "../../openapi.yaml"

// testRoutePrefix marks test-only routes, which are not in the spec.
const testRoutePrefix = "/_test/"

type loadedSpec struct {
	doc    *openapi3.T
	router routers.Router
	err    error
}

var (
	specOnce sync.Once
	spec     loadedSpec
)

// loadSpec loads and validates openapi.yaml once per test binary.
//
// kin-openapi v0.153.0 reads OpenAPI 3.1 documents and, for them, validates
// values with its JSON Schema 2020-12 validator (openapi3filter turns it on when
// doc.IsOpenAPI31OrLater), so `const`, `examples` and type arrays work as in 3.1.
// Two limits shape the spec: a response's status must be listed (we set
// IncludeResponseStatus, so an undocumented status fails instead of passing),
// and only bodies of registered media types are decoded (application/json,
// application/problem+json and text/plain are).
func loadSpec(t testing.TB) loadedSpec {
	t.Helper()
	specOnce.Do(func() {
		ctx := context.Background()
		loader := openapi3.NewLoader()
		doc, err := loader.LoadFromFile(specPath)
		if err != nil {
			spec.err = err
			return
		}
		if !doc.IsOpenAPI31OrLater() {
			spec.err = errors.New("openapi.yaml must be OpenAPI 3.1")
			return
		}
		if err := doc.Validate(ctx); err != nil {
			spec.err = err
			return
		}
		spec.doc = doc
		spec.router, spec.err = gorillamux.NewRouter(doc)
	})
	if spec.err != nil {
		t.Fatalf("openapi.yaml: %v", spec.err)
	}
	return spec
}

// checkResponse validates one exchange against openapi.yaml:
//
//   - the request, when its route is in the spec: a request the spec calls
//     invalid must have been refused with a 4xx;
//   - the answer: its status must be listed for the operation, and its headers
//     and body must match (error answers included);
//   - an unknown path must answer the NotFound problem, a known path with another
//     method the MethodNotAllowed problem (with Allow);
//   - a test-only route (/_test/...) is not in the spec; its error answers are
//     still checked against the Problem response.
//
// It leaves resp.Body readable from the start.
func checkResponse(t testing.TB, req *http.Request, resp *http.Response) {
	t.Helper()
	sp := loadSpec(t)
	ctx := context.Background()

	raw, err := io.ReadAll(resp.Body)
	if err != nil {
		t.Fatalf("reading answer: %v", err)
	}
	resp.Body = io.NopCloser(bytes.NewReader(raw))
	body := decodeBody(t, resp.Header, raw)

	vreq := validationRequest(t, req)
	route, params, err := sp.router.FindRoute(vreq)
	if err != nil {
		var name string
		switch {
		case strings.HasPrefix(req.URL.Path, testRoutePrefix):
			if resp.StatusCode < 400 {
				return
			}
			name = "Problem"
		case errors.Is(err, routers.ErrMethodNotAllowed):
			name = "MethodNotAllowed"
		default:
			name = "NotFound"
		}
		checkAgainstComponent(t, sp, vreq, resp, body, name)
		return
	}

	opts := &openapi3filter.Options{
		AuthenticationFunc:    openapi3filter.NoopAuthenticationFunc,
		IncludeResponseStatus: true,
		MultiError:            true,
	}
	if req.GetBody == nil && req.Body != nil && req.Body != http.NoBody {
		// A streamed body the test cannot replay: validate the rest.
		opts.ExcludeRequestBody = true
	}
	in := &openapi3filter.RequestValidationInput{Request: vreq, PathParams: params, Route: route, Options: opts}
	if err := openapi3filter.ValidateRequest(ctx, in); err != nil && (resp.StatusCode < 400 || resp.StatusCode >= 500) {
		t.Errorf("%s %s: the spec refuses the request (%v) but the server answered %d", req.Method, req.URL.Path, err, resp.StatusCode)
	}
	out := &openapi3filter.ResponseValidationInput{
		RequestValidationInput: in,
		Status:                 resp.StatusCode,
		Header:                 resp.Header,
		Options:                opts,
	}
	out.SetBodyBytes(body)
	if err := openapi3filter.ValidateResponse(ctx, out); err != nil {
		t.Errorf("%s %s: answer %d does not match openapi.yaml: %v\nbody: %s", req.Method, req.URL.Path, resp.StatusCode, err, truncate(body))
	}
}

// checkAgainstComponent validates an answer outside any operation against one of
// components/responses, through a made-up operation that lists only it.
func checkAgainstComponent(t testing.TB, sp loadedSpec, vreq *http.Request, resp *http.Response, body []byte, name string) {
	t.Helper()
	ref := sp.doc.Components.Responses[name]
	if ref == nil {
		t.Fatalf("openapi.yaml has no components/responses/%s", name)
	}
	want := map[string]int{"NotFound": http.StatusNotFound, "MethodNotAllowed": http.StatusMethodNotAllowed}[name]
	if want != 0 && resp.StatusCode != want {
		t.Errorf("%s %s: not routed in the spec, so want %d, got %d", vreq.Method, vreq.URL.Path, want, resp.StatusCode)
		return
	}
	if resp.StatusCode < 400 {
		t.Errorf("%s %s: want an error answer, got %d", vreq.Method, vreq.URL.Path, resp.StatusCode)
		return
	}
	op := openapi3.NewOperation()
	op.Responses = openapi3.NewResponses(openapi3.WithStatus(resp.StatusCode, ref))
	route := &routers.Route{Spec: sp.doc, Path: vreq.URL.Path, Method: vreq.Method, Operation: op}
	in := &openapi3filter.RequestValidationInput{Request: vreq, Route: route}
	out := &openapi3filter.ResponseValidationInput{
		RequestValidationInput: in,
		Status:                 resp.StatusCode,
		Header:                 resp.Header,
		Options:                &openapi3filter.Options{IncludeResponseStatus: true, MultiError: true},
	}
	out.SetBodyBytes(body)
	if err := openapi3filter.ValidateResponse(context.Background(), out); err != nil {
		t.Errorf("%s %s: answer %d does not match components/responses/%s: %v\nbody: %s", vreq.Method, vreq.URL.Path, resp.StatusCode, name, err, truncate(body))
	}
}

// maxValidatedBody bounds what checkResponse decompresses of a request body: a
// test gzip bomb must not be inflated by the checker either.
const maxValidatedBody = 32 << 20

// validationRequest rebuilds the request as the server saw it: a fresh,
// decompressed body (when the test's request can replay it).
func validationRequest(t testing.TB, req *http.Request) *http.Request {
	t.Helper()
	v := req.Clone(context.Background())
	v.Body = http.NoBody
	if req.GetBody == nil {
		return v
	}
	b, err := req.GetBody()
	if err != nil {
		t.Fatalf("replaying the request body: %v", err)
	}
	data, err := io.ReadAll(b)
	if err != nil {
		t.Fatal(err)
	}
	if strings.EqualFold(req.Header.Get("Content-Encoding"), "gzip") {
		zr, err := gzip.NewReader(bytes.NewReader(data))
		if err != nil {
			// A corrupt body: the spec cannot say more than the server did.
			return v
		}
		plain, err := io.ReadAll(io.LimitReader(zr, maxValidatedBody+1))
		if err != nil || len(plain) > maxValidatedBody {
			return v
		}
		data = plain
		v.Header.Del("Content-Encoding")
	}
	v.Body = io.NopCloser(bytes.NewReader(data))
	v.GetBody = func() (io.ReadCloser, error) { return io.NopCloser(bytes.NewReader(data)), nil }
	v.ContentLength = int64(len(data))
	return v
}

func truncate(b []byte) string {
	if len(b) > 2000 {
		return string(b[:2000]) + "…"
	}
	return string(b)
}

// TestOpenAPIRoutesMatchRouter fails when a route the router registers is not in
// openapi.yaml, or an operation of openapi.yaml is not routed, or the two
// disagree on whether the route is public.
func TestOpenAPIRoutesMatchRouter(t *testing.T) {
	sp := loadSpec(t)
	srv := newTestServer(t).srv
	// The web console's catch-all (issue 17) is mounted as in production: it
	// has no path template, so it is neither in Routes nor walked below.
	srv.MountConsole(http.NotFoundHandler())

	routed := map[string]string{} // "GET /path" → rule
	for _, ri := range srv.Routes() {
		routed[ri.Method+" "+ri.Path] = ri.Rule
	}
	// Walk the mux router as well: Routes could miss a route added without
	// s.handle, and such a route would have no rule at all.
	_ = srv.router.Walk(func(route *mux.Route, _ *mux.Router, _ []*mux.Route) error {
		tpl, err := route.GetPathTemplate()
		if err != nil {
			return nil
		}
		ms, _ := route.GetMethods()
		for _, m := range ms {
			if _, ok := routed[m+" "+tpl]; !ok {
				t.Errorf("%s %s is routed without s.handle (no rule)", m, tpl)
			}
		}
		return nil
	})

	specced := map[string]bool{} // "GET /path" → public
	for path, item := range sp.doc.Paths.Map() {
		for method, op := range item.Operations() {
			public := op.Security != nil && len(*op.Security) == 0
			if op.Security == nil {
				public = len(sp.doc.Security) == 0
			}
			specced[strings.ToUpper(method)+" "+path] = public
		}
	}

	var missing, extra []string
	for k, rule := range routed {
		public, ok := specced[k]
		if !ok {
			missing = append(missing, k)
			continue
		}
		if public != (rule == Public.String()) {
			t.Errorf("%s: rule %q but openapi.yaml says public=%v", k, rule, public)
		}
	}
	for k := range specced {
		if _, ok := routed[k]; !ok {
			extra = append(extra, k)
		}
	}
	sort.Strings(missing)
	sort.Strings(extra)
	for _, k := range missing {
		t.Errorf("routed but not in openapi.yaml: %s", k)
	}
	for _, k := range extra {
		t.Errorf("in openapi.yaml but not routed: %s", k)
	}
}

// TestCheckResponseCatchesMismatch guards the checker itself: an answer that
// breaks the spec must fail it.
func TestCheckResponseCatchesMismatch(t *testing.T) {
	ts := newTestServer(t)
	req := ts.newRequest(t, http.MethodGet, "/healthz", nil)
	for name, resp := range map[string]*http.Response{
		"wrong body": {StatusCode: 200, Header: http.Header{"Content-Type": {"application/json"}, "X-Request-Id": {"a"}},
			Body: io.NopCloser(strings.NewReader(`{"status":"sleepy"}`))},
		"no request id": {StatusCode: 200, Header: http.Header{"Content-Type": {"application/json"}},
			Body: io.NopCloser(strings.NewReader(`{"status":"ok"}`))},
		"problem type not about:blank": {StatusCode: 500, Header: http.Header{"Content-Type": {"application/problem+json"}, "X-Request-Id": {"a"}},
			Body: io.NopCloser(strings.NewReader(`{"type":"https://example.org/x","title":"t","status":500,"code":"internal_error"}`))},
		"problem without code": {StatusCode: 500, Header: http.Header{"Content-Type": {"application/problem+json"}, "X-Request-Id": {"a"}},
			Body: io.NopCloser(strings.NewReader(`{"type":"about:blank","title":"t","status":500}`))},
		"error as plain json": {StatusCode: 500, Header: http.Header{"Content-Type": {"application/json"}, "X-Request-Id": {"a"}},
			Body: io.NopCloser(strings.NewReader(`{"type":"about:blank","title":"t","status":500,"code":"internal_error"}`))},
		"undocumented status": {StatusCode: 418, Header: http.Header{"Content-Type": {"application/problem+json"}, "X-Request-Id": {"a"}},
			Body: io.NopCloser(strings.NewReader(`{"type":"about:blank","title":"t","status":418,"code":"teapot"}`))},
	} {
		t.Run(name, func(t *testing.T) {
			ft := &fakeT{TB: t}
			checkResponse(ft, req, resp)
			if !ft.failed {
				t.Error("checkResponse accepted an answer that breaks openapi.yaml")
			}
		})
	}
}

// fakeT records failures instead of failing, to test a checker.
type fakeT struct {
	testing.TB
	failed bool
}

func (f *fakeT) Errorf(string, ...any) { f.failed = true }
func (f *fakeT) Fatalf(string, ...any) { f.failed = true }
func (f *fakeT) Helper()               {}

// TestEveryProtectedRouteNeedsToken walks Routes: every route that is not Public
// must answer 401 with a challenge when called without a token, whatever its
// path variables. New routes are covered without touching this test.
func TestEveryProtectedRouteNeedsToken(t *testing.T) {
	ts := newTestServer(t, withRoutes(testRoutes))
	vars := regexp.MustCompile(`\{[^}]+\}`)
	for _, ri := range ts.srv.Routes() {
		if ri.Rule == Public.String() {
			continue
		}
		path := vars.ReplaceAllString(ri.Path, "x1")
		t.Run(ri.Method+" "+ri.Path, func(t *testing.T) {
			resp, body := ts.do(t, ts.newRequest(t, ri.Method, path, nil))
			if resp.StatusCode != http.StatusUnauthorized || resp.Header.Get("WWW-Authenticate") == "" {
				t.Errorf("%s %s without a token: %d %s", ri.Method, path, resp.StatusCode, body)
			}
		})
	}
}
