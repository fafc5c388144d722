package httpapi

import (
	"mime"
	"net/http"
	"strconv"
	"strings"
	"time"

	"github.com/fieldsync/fieldsync/api"
	"github.com/fieldsync/fieldsync/internal/domain"
	"github.com/fieldsync/fieldsync/internal/media"
)

// Attachments (issue 13, protocol.md §3 "Attachments"): one path per file of
// a record, which takes a whole file (PUT), resumes one over links that drop
// (tus 1.0 core: OPTIONS, HEAD, PATCH; the upload URL is known to the client
// beforehand, and the declared size is its Upload-Length) and serves it (GET,
// with ETag and Range).

// attachmentPath is the route of one file of a record.
const attachmentPath = "/v1/projects/{project}/records/{id}/attachments/{name}"

// tusVersion is the one tus protocol version served.
const tusVersion = "1.0.0"

// tusContentType is the body type of a tus PATCH.
const tusContentType = "application/offset+octet-stream"

// registerAttachmentRoutes adds the attachment routes: uploads for those who
// push records, downloads for those who read them.
func (s *Server) registerAttachmentRoutes() {
	if s.media == nil || s.records == nil {
		return
	}
	upload := ProjectRoles(domain.RoleEnumerator)
	read := ProjectRoles(domain.RoleAnalyst, domain.RoleEnumerator)
	s.handle(http.MethodPut, attachmentPath, upload, s.handlePutAttachment)
	s.handle(http.MethodOptions, attachmentPath, upload, s.handleTusOptions)
	s.handle(http.MethodHead, attachmentPath, upload, s.handleTusHead)
	s.handle(http.MethodPatch, attachmentPath, upload, s.handleTusPatch)
	s.handle(http.MethodGet, attachmentPath, read, s.handleGetAttachment)
}

// isAttachmentUpload reports whether r sends the bytes of an attachment: its
// body limit is the attachment limit, not the JSON one.
func isAttachmentUpload(r *http.Request) bool {
	if r.Method != http.MethodPut && r.Method != http.MethodPatch {
		return false
	}
	parts := strings.Split(strings.Trim(r.URL.Path, "/"), "/")
	return len(parts) == 7 && parts[0] == "v1" && parts[1] == "projects" && parts[3] == "records" && parts[5] == "attachments"
}

// bodyLimit is the largest body r may send, after decompression.
func (s *Server) bodyLimit(r *http.Request) int64 {
	if s.media != nil && isAttachmentUpload(r) {
		// One byte over the largest file, so a body longer than its
		// declaration is told apart from one that fits.
		return s.media.MaxBytes() + 1
	}
	return s.maxBodyBytes
}

// tusHeaders sets what every answer on an attachment path carries, and
// refuses a tus version other than 1.0.0 (412, as tus asks). A request
// without Tus-Resumable (a plain PUT or GET, curl) is served as well.
func tusHeaders(w http.ResponseWriter, r *http.Request) error {
	w.Header().Set("Tus-Resumable", tusVersion)
	if v := r.Header.Get("Tus-Resumable"); v != "" && v != tusVersion && r.Method != http.MethodOptions {
		w.Header().Set("Tus-Version", tusVersion)
		return &domain.Error{Kind: domain.KindPrecondition, Code: "tus_version", Title: "Only tus 1.0.0 is served",
			Detail: "Tus-Resumable " + strconv.Quote(v) + " is not supported"}
	}
	return nil
}

// handleTusOptions answers tus discovery: the version and the largest file.
func (s *Server) handleTusOptions(w http.ResponseWriter, r *http.Request) error {
	_ = tusHeaders(w, r)
	h := w.Header()
	h.Set("Tus-Version", tusVersion)
	h.Set("Tus-Max-Size", strconv.FormatInt(s.media.MaxBytes(), 10))
	w.WriteHeader(http.StatusNoContent)
	return nil
}

func (s *Server) progressHeaders(w http.ResponseWriter, p media.Progress) {
	h := w.Header()
	h.Set("Upload-Offset", strconv.FormatInt(p.Offset, 10))
	h.Set("Upload-Length", strconv.FormatInt(p.Length, 10))
	h.Set("Cache-Control", "no-store")
}

// handleTusHead is tus HEAD: how many bytes of the file the server holds.
func (s *Server) handleTusHead(w http.ResponseWriter, r *http.Request) error {
	if err := tusHeaders(w, r); err != nil {
		return err
	}
	p, err := s.media.Status(r.Context(), caller(r), pathVar(r, "project"), pathVar(r, "id"), pathVar(r, "name"))
	if err != nil {
		return err
	}
	s.progressHeaders(w, p)
	w.WriteHeader(http.StatusOK)
	return nil
}

// handleTusPatch is tus PATCH: bytes appended at Upload-Offset. The file is
// stored when its last byte arrives.
func (s *Server) handleTusPatch(w http.ResponseWriter, r *http.Request) error {
	if err := tusHeaders(w, r); err != nil {
		return err
	}
	if mt, _, err := mime.ParseMediaType(r.Header.Get("Content-Type")); err != nil || mt != tusContentType {
		return &domain.Error{Kind: domain.KindUnsupportedType, Code: api.CodeUnsupportedMediaType,
			Title: "A PATCH body must be " + tusContentType}
	}
	offset, err := strconv.ParseInt(r.Header.Get("Upload-Offset"), 10, 64)
	if err != nil || offset < 0 {
		return &domain.Error{Kind: domain.KindBadRequest, Code: "bad_upload_offset", Title: "Upload-Offset must be a whole number of bytes"}
	}
	// Upload-Length is the declared size, which HEAD gives: a PATCH's own
	// (tus's deferred length) is not needed, and the declaration rules.
	p, err := s.media.Append(r.Context(), caller(r), pathVar(r, "project"), pathVar(r, "id"), pathVar(r, "name"), offset, r.Body)
	if p.Length > 0 || p.Offset > 0 {
		s.progressHeaders(w, p)
	}
	if err != nil {
		return err
	}
	w.WriteHeader(http.StatusNoContent)
	return nil
}

// handlePutAttachment is PUT: the whole file. 201 when stored now, 200 when
// the record already held those bytes.
func (s *Server) handlePutAttachment(w http.ResponseWriter, r *http.Request) error {
	if err := tusHeaders(w, r); err != nil {
		return err
	}
	p, err := s.media.Put(r.Context(), caller(r), pathVar(r, "project"), pathVar(r, "id"), pathVar(r, "name"), r.Body)
	if err != nil {
		return err
	}
	status := http.StatusOK
	if p.Created {
		status = http.StatusCreated
	}
	w.Header().Set("ETag", quoteETag(p.Attachment.SHA256))
	return writeJSON(w, status, api.AttachedFile{Attachment: api.Attachment(p.Attachment), Present: true})
}

// handleGetAttachment is GET: the bytes, with ETag (the sha256), Range and
// If-None-Match (http.ServeContent), typed as declared.
func (s *Server) handleGetAttachment(w http.ResponseWriter, r *http.Request) error {
	if err := tusHeaders(w, r); err != nil {
		return err
	}
	a, blob, err := s.media.Open(r.Context(), caller(r), pathVar(r, "project"), pathVar(r, "id"), pathVar(r, "name"))
	if err != nil {
		return err
	}
	defer blob.Close()
	h := w.Header()
	h.Set("ETag", quoteETag(a.SHA256))
	ct := "application/octet-stream"
	if t, _, err := mime.ParseMediaType(a.ContentType); err == nil && a.ContentType != "" {
		ct = t
	}
	h.Set("Content-Type", ct)
	h.Set("X-Content-Type-Options", "nosniff")
	// Downloaded, never shown inline: the bytes come from a tablet.
	h.Set("Content-Disposition", mime.FormatMediaType("attachment", map[string]string{"filename": a.Name}))
	h.Set("Cache-Control", "private, no-cache")
	// If-None-Match with or without quotes (protocol.md): ServeContent wants them.
	if inm := r.Header.Get("If-None-Match"); inm != "" && !strings.Contains(inm, `"`) && inm != "*" {
		r.Header.Set("If-None-Match", quoteETag(unquoteETag(inm)))
	}
	http.ServeContent(w, r, "", time.Time{}, blob)
	return nil
}

// attachmentPresence fills Present on the attachments of an api.Record.
func attachmentPresence(out *api.Record, present map[string]bool) {
	for i := range out.Attachments {
		out.Attachments[i].Present = present[out.Attachments[i].Name]
	}
}
