package httpapi

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"io"
	"mime"
	"net/http"
	"strconv"
	"strings"

	"github.com/fieldsync/fieldsync/api"
	"github.com/fieldsync/fieldsync/internal/domain"
	"github.com/fieldsync/fieldsync/internal/forms"
)

// registerFormRoutes adds the form-definition routes of protocol.md §2.
// Designers (and managers) upload, publish and close; every member reads, and
// enumerators (devices included) see published versions only.
func (s *Server) registerFormRoutes() {
	if s.forms == nil {
		return
	}
	designer := ProjectRoles(domain.RoleDesigner)
	member := ProjectRoles(domain.RoleDesigner, domain.RoleAnalyst, domain.RoleEnumerator)
	s.handle(http.MethodGet, "/v1/projects/{project}/forms", member, s.handleListForms)
	s.handle(http.MethodPost, "/v1/projects/{project}/forms/{form}/close", designer, s.handleCloseForm)
	s.handle(http.MethodPost, "/v1/projects/{project}/forms/{form}/reopen", designer, s.handleReopenForm)
	s.handle(http.MethodPut, "/v1/projects/{project}/forms/{form}/versions/{version}", designer, s.handlePutFormVersion)
	s.handle(http.MethodGet, "/v1/projects/{project}/forms/{form}/versions/{version}", member, s.handleGetFormVersion)
	s.handle(http.MethodPost, "/v1/projects/{project}/forms/{form}/versions/{version}/publish", designer, s.handlePublishFormVersion)
}

// publishedOnly reports whether the caller may see published versions only:
// enumerators, and devices, which act as enumerators.
func publishedOnly(r *http.Request) bool {
	role, _ := RoleFrom(r.Context())
	p, _ := PrincipalFrom(r.Context())
	return role == domain.RoleEnumerator || p.IsDevice()
}

// handlePutFormVersion is PUT /v1/projects/{project}/forms/{form}/versions/{version}:
// 201 for a new draft, 200 for a replaced one, 409 once published.
//
// The body is the definition itself, read raw rather than through decodeJSON:
// it is not a protocol envelope (unknown members are the meta-schema's
// business, and answered with findings), and its bytes are what is stored and
// served. Only the first MaxDefinitionSize+1 bytes are read, so an oversized
// upload costs a megabyte, not the 16 MiB body cap.
func (s *Server) handlePutFormVersion(w http.ResponseWriter, r *http.Request) error {
	if err := requireJSONContentType(r); err != nil {
		return err
	}
	raw, err := readDefinition(r)
	if err != nil {
		return err
	}
	fv, created, err := s.forms.PutVersion(r.Context(), pathVar(r, "project"), pathVar(r, "form"), pathVar(r, "version"), raw)
	if err != nil {
		return err
	}
	status := http.StatusOK
	if created {
		status = http.StatusCreated
	}
	w.Header().Set("ETag", quoteETag(fv.Hash))
	return writeJSON(w, status, versionEntry(fv, true))
}

// handlePublishFormVersion is POST .../versions/{version}/publish.
func (s *Server) handlePublishFormVersion(w http.ResponseWriter, r *http.Request) error {
	fv, err := s.forms.Publish(s.formsActor(r), pathVar(r, "project"), pathVar(r, "form"), pathVar(r, "version"))
	if err != nil {
		return err
	}
	e := versionEntry(fv, true)
	e.OpenRosa = openRosaInfo(fv)
	return writeJSON(w, http.StatusOK, e)
}

// handleCloseForm is POST /v1/projects/{project}/forms/{form}/close: the form
// takes no new records from now on; edits of existing ones still sync.
func (s *Server) handleCloseForm(w http.ResponseWriter, r *http.Request) error {
	f, err := s.forms.Close(s.formsActor(r), pathVar(r, "project"), pathVar(r, "form"))
	if err != nil {
		return err
	}
	return writeJSON(w, http.StatusOK, formEntry(f))
}

// handleReopenForm is POST /v1/projects/{project}/forms/{form}/reopen: a
// closed form takes new records again.
func (s *Server) handleReopenForm(w http.ResponseWriter, r *http.Request) error {
	f, err := s.forms.Reopen(s.formsActor(r), pathVar(r, "project"), pathVar(r, "form"))
	if err != nil {
		return err
	}
	return writeJSON(w, http.StatusOK, formEntry(f))
}

// formsActor is the request's context carrying the caller, for the audit
// events of the forms service.
func (s *Server) formsActor(r *http.Request) context.Context {
	p, _ := PrincipalFrom(r.Context())
	return forms.WithActor(r.Context(), p.Subject, s.clientIP(r))
}

// handleListForms is GET /v1/projects/{project}/forms. Its ETag is the hash
// of the answer as this caller sees it: an enumerator's does not change when a
// designer uploads a draft, so tablets polling the list on a 2G link get 304s
// until something they can use is published.
func (s *Server) handleListForms(w http.ResponseWriter, r *http.Request) error {
	list, err := s.forms.List(r.Context(), pathVar(r, "project"), publishedOnly(r))
	if err != nil {
		return err
	}
	out := api.FormList{Forms: make([]api.FormListEntry, len(list))}
	for i, f := range list {
		out.Forms[i] = formEntry(f)
	}
	var buf bytes.Buffer
	if err := json.NewEncoder(&buf).Encode(out); err != nil {
		return fmt.Errorf("encoding form list: %w", err)
	}
	sum := sha256.Sum256(buf.Bytes())
	return writeCacheable(w, r, quoteETag(hex.EncodeToString(sum[:])), cacheRevalidate, buf.Bytes())
}

// handleGetFormVersion is GET .../versions/{version}: the definition exactly as
// stored, with its content hash as ETag.
func (s *Server) handleGetFormVersion(w http.ResponseWriter, r *http.Request) error {
	fv, err := s.forms.Version(r.Context(), pathVar(r, "project"), pathVar(r, "form"), pathVar(r, "version"), publishedOnly(r))
	if err != nil {
		return err
	}
	cache := cacheRevalidate
	if fv.State == domain.VersionPublished {
		cache = cacheImmutable
	}
	return writeCacheable(w, r, quoteETag(fv.Hash), cache, fv.Definition)
}

// Cache-Control of the readable form routes. Both are private: the answers
// depend on the caller's role. A draft and the form list change, so a cache
// revalidates them with If-None-Match each time; a published version never
// changes.
const (
	cacheRevalidate = "private, no-cache"
	cacheImmutable  = "private, max-age=31536000, immutable"
)

// writeCacheable answers body (JSON, already encoded) with its ETag, or 304
// Not Modified without a body when If-None-Match names that ETag.
func writeCacheable(w http.ResponseWriter, r *http.Request, etag, cacheControl string, body []byte) error {
	h := w.Header()
	h.Set("ETag", etag)
	h.Set("Cache-Control", cacheControl)
	if noneMatch(r.Header.Values("If-None-Match"), etag) {
		w.WriteHeader(http.StatusNotModified)
		return nil
	}
	h.Set("Content-Type", "application/json")
	h.Set("Content-Length", strconv.Itoa(len(body)))
	h.Set("X-Content-Type-Options", "nosniff")
	w.WriteHeader(http.StatusOK)
	if _, err := w.Write(body); err != nil {
		return fmt.Errorf("writing answer: %w", err)
	}
	return nil
}

// noneMatch reports whether If-None-Match headers name etag: "*" (the resource
// exists, which it does when we get here), or a comma-separated list of ETags,
// each with or without quotes and W/ (protocol.md; If-None-Match compares
// weakly, RFC 9110 §13.1.2).
func noneMatch(headers []string, etag string) bool {
	want := unquoteETag(etag)
	for _, h := range headers {
		for _, v := range strings.Split(h, ",") {
			v = strings.TrimSpace(v)
			if v == "*" || (v != "" && unquoteETag(v) == want) {
				return true
			}
		}
	}
	return false
}

// requireJSONContentType answers 415 when a Content-Type other than
// application/json is set; like decodeJSON it accepts none, as curl and
// scripts often send none.
func requireJSONContentType(r *http.Request) error {
	ct := r.Header.Get("Content-Type")
	if ct == "" {
		return nil
	}
	if mt, _, err := mime.ParseMediaType(ct); err == nil && mt == "application/json" {
		return nil
	}
	return &domain.Error{
		Kind:   domain.KindUnsupportedType,
		Code:   api.CodeUnsupportedMediaType,
		Title:  "Request body must be application/json",
		Detail: "Content-Type " + strconv.Quote(ct) + " is not supported",
	}
}

// readDefinition reads an uploaded definition, at most forms.MaxDefinitionSize
// bytes (after decompression; the server-wide body cap applies as well).
func readDefinition(r *http.Request) ([]byte, error) {
	if r.Body == nil {
		return nil, badJSON("request body is empty")
	}
	raw, err := io.ReadAll(io.LimitReader(r.Body, forms.MaxDefinitionSize+1))
	if err != nil {
		// Body limits and gzip failures map through the error table.
		return nil, fmt.Errorf("reading request body: %w", err)
	}
	if len(raw) > forms.MaxDefinitionSize {
		return nil, &domain.Error{Kind: domain.KindTooLarge, Code: "definition_too_large",
			Title:  "The form definition is too large",
			Detail: fmt.Sprintf("more than %d bytes; at most %d are accepted", forms.MaxDefinitionSize, forms.MaxDefinitionSize)}
	}
	if len(bytes.TrimSpace(raw)) == 0 {
		return nil, badJSON("request body is empty")
	}
	return raw, nil
}

// versionEntry is the wire form of a version: in the form list (without the
// title), and as the answer of a PUT or publish (with it).
func versionEntry(v domain.FormVersion, withTitle bool) api.FormVersionEntry {
	e := api.FormVersionEntry{Version: v.Version, State: v.State, Hash: v.Hash, PublishedAt: v.PublishedAt}
	if withTitle {
		e.Title = v.Title
	}
	return e
}

// formEntry is the wire form of a form with the versions given (the service
// has already left out what the caller may not see).
func formEntry(f domain.Form) api.FormListEntry {
	e := api.FormListEntry{ID: f.ID, Title: f.Title, State: f.State, CurrentVersion: f.CurrentVersion,
		Versions: make([]api.FormVersionEntry, len(f.Versions))}
	for i, v := range f.Versions {
		e.Versions[i] = versionEntry(v, false)
	}
	return e
}
