package httpapi

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"mime"
	"net/http"
	"reflect"
	"strconv"
	"strings"

	"github.com/go-json-experiment/json/jsontext"

	"github.com/fieldsync/fieldsync/api"
	"github.com/fieldsync/fieldsync/internal/domain"
)

// decodeJSON reads r's body into v and answers every way the body can be wrong
// as a *domain.Error the adapter turns into the right problem:
//
//   - 415 unsupported_media_type when Content-Type is set and is not
//     application/json (a missing Content-Type is accepted: curl and scripts
//     often omit it, and the body is parsed as JSON either way);
//   - 413 body_too_large past Config.MaxBodyBytes, after decompression;
//   - 400 bad_gzip for a corrupt gzip body;
//   - 400 bad_json with the byte offset: "unexpected end of input at byte 1841",
//     "field respondent.age: expected number, got string at byte 212",
//     "unknown field \"bse_rev\" at byte 40", trailing data, an empty body.
//
// Unknown fields are rejected. The protocol promises that nothing a client sent
// is dropped silently, and a misspelt optional field ("bse_rev") would otherwise
// be ignored without a word. Form answers are json.RawMessage and never checked
// this way, so the strictness bears only on the protocol's own envelopes; a
// field added to the protocol later is added to the server first.
//
// The whole body is read before parsing, so a body too large is a 413 even
// when its first bytes are already bad JSON.
func decodeJSON(r *http.Request, v any) error {
	data, err := readJSONBody(r)
	if err != nil {
		return err
	}
	return decodeJSONBytes(data, v)
}

// readJSONBody checks the Content-Type and reads the whole body, with the
// errors decodeJSON describes; an empty body is bad JSON.
func readJSONBody(r *http.Request) ([]byte, error) {
	if ct := r.Header.Get("Content-Type"); ct != "" {
		mt, _, err := mime.ParseMediaType(ct)
		if err != nil || mt != "application/json" {
			return nil, &domain.Error{
				Kind:   domain.KindUnsupportedType,
				Code:   api.CodeUnsupportedMediaType,
				Title:  "Request body must be application/json",
				Detail: "Content-Type " + strconv.Quote(ct) + " is not supported",
			}
		}
	}
	if r.Body == nil {
		return nil, badJSON("request body is empty")
	}
	data, err := io.ReadAll(r.Body)
	if err != nil {
		// Body limits and gzip failures map through the error table.
		return nil, fmt.Errorf("reading request body: %w", err)
	}
	if len(bytes.TrimSpace(data)) == 0 {
		return nil, badJSON("request body is empty")
	}
	return data, nil
}

// decodeJSONBytes decodes a body read by readJSONBody into v, strictly, with
// the bad_json errors decodeJSON describes. A member repeated in one object is
// refused too (see duplicateMember), except inside the members at the JSON
// pointers in skip, which their readers check.
func decodeJSONBytes(data []byte, v any, skip ...jsontext.Pointer) error {
	dec := json.NewDecoder(bytes.NewReader(data))
	dec.DisallowUnknownFields()
	if err := dec.Decode(v); err != nil {
		return badJSON(describeJSONError(err, dec, len(data)))
	}
	if dup := duplicateMember(data, skip...); dup != "" {
		return badJSON(dup)
	}
	if dec.More() {
		return badJSON(fmt.Sprintf("unexpected data after the JSON value at byte %d", dec.InputOffset()))
	}
	// More reports false for a lone "]" or "}"; a second Decode sees it.
	var extra json.RawMessage
	if err := dec.Decode(&extra); err != io.EOF {
		return badJSON(fmt.Sprintf("unexpected data after the JSON value at byte %d", dec.InputOffset()))
	}
	return nil
}

func badJSON(detail string) *domain.Error {
	return &domain.Error{Kind: domain.KindBadRequest, Code: api.CodeBadJSON, Title: "Request body is not valid JSON", Detail: detail}
}

// describeJSONError words an encoding/json error for a client, with the byte
// offset a developer needs to find the place in a 16 MiB push.
func describeJSONError(err error, dec *json.Decoder, size int) string {
	var syn *json.SyntaxError
	var typ *json.UnmarshalTypeError
	switch {
	case errors.Is(err, io.ErrUnexpectedEOF):
		return fmt.Sprintf("unexpected end of input at byte %d", size)
	case errors.As(err, &syn):
		if syn.Error() == "unexpected end of JSON input" {
			return fmt.Sprintf("unexpected end of input at byte %d", syn.Offset)
		}
		return fmt.Sprintf("%s at byte %d", syn.Error(), syn.Offset)
	case errors.As(err, &typ):
		field := typ.Field
		if field == "" {
			field = "(top level)"
		}
		return fmt.Sprintf("field %s: expected %s, got %s at byte %d", field, jsonKind(typ.Type), typ.Value, typ.Offset)
	}
	// encoding/json words an unknown field as `json: unknown field "x"`.
	msg := err.Error()
	msg = strings.TrimPrefix(msg, "json: ")
	return fmt.Sprintf("%s at byte %d", msg, dec.InputOffset())
}

// jsonKind names the JSON type a Go type decodes from.
func jsonKind(t reflect.Type) string {
	if t == nil {
		return "a value"
	}
	for t.Kind() == reflect.Pointer {
		t = t.Elem()
	}
	switch t.Kind() {
	case reflect.String:
		return "string"
	case reflect.Bool:
		return "boolean"
	case reflect.Int, reflect.Int8, reflect.Int16, reflect.Int32, reflect.Int64,
		reflect.Uint, reflect.Uint8, reflect.Uint16, reflect.Uint32, reflect.Uint64, reflect.Uintptr:
		return "integer"
	case reflect.Float32, reflect.Float64:
		return "number"
	case reflect.Slice, reflect.Array:
		return "array"
	case reflect.Struct, reflect.Map:
		return "object"
	}
	return t.String()
}

// writeJSON answers v as application/json with status. The body is encoded into
// a buffer before WriteHeader, so an encoding failure is returned (and becomes a
// clean 500) instead of a 200 with half a body.
func writeJSON(w http.ResponseWriter, status int, v any) error {
	return writeBody(w, status, "application/json", v)
}

func writeBody(w http.ResponseWriter, status int, contentType string, v any) error {
	var buf bytes.Buffer
	if err := json.NewEncoder(&buf).Encode(v); err != nil {
		return fmt.Errorf("encoding %T: %w", v, err)
	}
	return writeEncoded(w, status, contentType, buf.Bytes())
}

// writeEncoded sends body, already encoded, with its length.
func writeEncoded(w http.ResponseWriter, status int, contentType string, body []byte) error {
	h := w.Header()
	h.Set("Content-Type", contentType)
	h.Set("Content-Length", strconv.Itoa(len(body)))
	h.Set("X-Content-Type-Options", "nosniff")
	w.WriteHeader(status)
	if _, err := w.Write(body); err != nil {
		// The client is gone or the connection broke; the status is sent, so the
		// adapter can only log it.
		return fmt.Errorf("writing answer: %w", err)
	}
	return nil
}
