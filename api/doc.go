// Package api is the public Go form of the fieldsync v1 protocol
// (design/protocol.md): the wire types of every request and response body, the
// status words and codes as constants, and a small HTTP client.
//
// The server (internal/httpapi) and the command-line client (cmd/fsctl) use these
// same types, so a field renamed here is renamed on both sides of the wire; the
// JSON names are the contract and change only with protocol.md.
//
// Conventions: times are time.Time and travel as RFC 3339 in UTC; form answers
// and form definitions are json.RawMessage because the server stores and returns
// them as the client wrote them; optional request fields that must distinguish
// "absent" from "empty" are pointers.
package api
