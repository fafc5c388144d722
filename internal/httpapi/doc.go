// Package httpapi is the HTTP layer of fieldsync: routing (gorilla/mux), the
// middleware every request passes, authorization rules, problem documents and
// the operational routes. Domain logic lives in the services; this package
// decodes, checks who may call, calls the service or store, and encodes.
//
// # Adding a route
//
// Register it in one of the register* functions called by New, through
// s.handle, with the rule that says who may call it:
//
//	s.handle(http.MethodPost, "/v1/projects/{project}/devices", ProjectRoles(domain.RoleManager), s.handleCreateDevice)
//
// Rules are Public, Authenticated, Admin and ProjectRoles(roles...). Routes
// lists every route with its rule, so one table test can check them all, and
// openapi_test.go fails until the route is described in openapi.yaml.
//
// # Handlers return errors
//
// A handler has the shape func(w http.ResponseWriter, r *http.Request) error. It
// writes its success answer with writeJSON (or writes the body itself) and
// returns nil, or returns an error and writes nothing. One adapter (s.adapt)
// turns the error into an RFC 9457 problem document through one table
// (problemFor): a *domain.Error gives its Kind's status and its Code, Title,
// Detail and Findings; the store sentinels give 404 not_found, 409
// already_exists, 409 conflict and 503 store_unavailable; anything else is
// logged with its text and answered as a plain 500 internal_error that says
// nothing about it. When a handler wants another answer for a sentinel (412 for
// a stale If-Match, a "form_not_found" code), it wraps it:
//
//	return &domain.Error{Kind: domain.KindNotFound, Code: "form_not_found", Title: "Form not found", Err: err}
//
// # Middleware, outermost first
//
//  1. requestID: accepts a sane X-Request-Id or makes one, echoes it, and puts it
//     (with a per-request record the later layers fill) into the context, so
//     every log line of the request can carry it.
//  2. recoverPanic: a panic anywhere below becomes a logged stack and a 500
//     problem; the stack never reaches the client. If the answer had already
//     started, the connection is aborted so the client cannot take a cut-off
//     body for a complete one.
//  3. accessLog: one slog line per request: method, route template, status,
//     bytes, duration, request id, remote address. Never bodies, query strings,
//     Authorization headers or anything else a client sent.
//  4. metrics: fieldsync_http_requests_total and
//     fieldsync_http_request_duration_seconds, labelled by route template.
//     Layers 3 and 4 sit inside 2 but still see a panic as a 500: they note
//     that the handler did not return.
//  5. decompressRequest: Content-Encoding gzip bodies are decompressed, and the
//     body is capped at Config.MaxBodyBytes after decompression (413 beyond).
//  6. compressResponse: answers are gzipped when the client accepts it and the
//     body is big enough and of a compressible type.
//
// Then the router, and per route (s.handle): the authorization rule, then the
// handler through the error adapter.
package httpapi
