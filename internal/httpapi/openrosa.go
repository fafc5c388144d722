package httpapi

import (
	"bytes"
	"context"
	"encoding/xml"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"mime"
	"net/http"
	"net/url"
	"strconv"
	"strings"
	"time"

	"github.com/fieldsync/fieldsync/api"
	"github.com/fieldsync/fieldsync/internal/domain"
	"github.com/fieldsync/fieldsync/internal/identity"
	"github.com/fieldsync/fieldsync/internal/openrosa"
	"github.com/fieldsync/fieldsync/internal/openrosa/bridge"
	"github.com/fieldsync/fieldsync/internal/records"
)

// The OpenRosa bridge (openrosa.md, issue 14): ODK Collect's door onto the
// same services as the JSON API.
//
// Routes are registered per base URL with registerOpenRosaRoutes(base, auth):
// base is a path template holding {project}, auth finds who calls from the
// request. Two bases: the device-key door
// /v1/key/{device_key}/projects/{project}/openrosa (openRosaKeyAuth), and the
// HTTP Basic door /v1/projects/{project}/openrosa (openRosaBasicAuth), for
// a Collect set up with a server URL, a username and a password. Everything
// after authentication (the project role check, the handlers, the XML
// answers) is shared.

// openRosaAuth finds the caller of an OpenRosa request. An *openRosaError is
// answered as it is (403 for a bad key, 401 with a challenge for Basic); any
// other error is a failure to check (503).
type openRosaAuth func(w http.ResponseWriter, r *http.Request) (domain.Principal, error)

// openRosaError is an error answered with its status and message.
type openRosaError struct {
	status int
	msg    string
}

func (e *openRosaError) Error() string { return e.msg }

// openRosaBasicBase is the base URL of the HTTP Basic door.
const openRosaBasicBase = "/v1/projects/{project}/openrosa"

// openRosaBasicAuth authenticates a request to the Basic door: a user's
// username and password (identity's VerifyPassword through
// authenticateBasic: throttled, audited and cached like the OData feed's),
// only over HTTPS or from loopback. Collect first asks without credentials
// and answers the 401's Basic challenge; every refusal is an
// OpenRosaResponse whose message the enumerator reads.
func (s *Server) openRosaBasicAuth(w http.ResponseWriter, r *http.Request) (domain.Principal, error) {
	if !s.basicTransportOK(r) {
		return domain.Principal{}, &openRosaError{status: http.StatusForbidden,
			msg: "This server takes usernames and passwords over https:// only. Change the server address in Collect's settings to the https:// one."}
	}
	scheme, _, _ := strings.Cut(r.Header.Get("Authorization"), " ")
	if !strings.EqualFold(scheme, "Basic") {
		w.Header().Set("WWW-Authenticate", basicChallenge)
		return domain.Principal{}, &openRosaError{status: http.StatusUnauthorized, msg: "Sign in with your fieldsync username and password."}
	}
	p, err := s.authenticateBasic(w, r)
	if e, ok := domain.AsError(err); ok && e.Kind == domain.KindUnauthorized {
		w.Header().Set("WWW-Authenticate", basicChallenge)
		return domain.Principal{}, &openRosaError{status: http.StatusUnauthorized, msg: "Wrong username or password (or the account is disabled)."}
	}
	return p, err
}

// openRosaKeyBase is the base URL of the device-key door.
const openRosaKeyBase = "/v1/key/{device_key}/projects/{project}/openrosa"

// registerOpenRosaRoutes adds the bridge's routes under base.
func (s *Server) registerOpenRosaRoutes(base string, auth openRosaAuth) {
	if s.bridge == nil {
		return
	}
	s.handleOpenRosa(http.MethodGet, base+"/formList", auth, s.handleFormList)
	s.handleOpenRosa(http.MethodGet, base+"/forms/{form}/versions/{version}.xml", auth, s.handleXFormDownload)
	s.handleOpenRosa(http.MethodGet, base+"/forms/{form}/versions/{version}/manifest", auth, s.handleManifest)
	s.handleOpenRosa(http.MethodHead, base+"/submission", auth, s.handleSubmissionProbe)
	s.handleOpenRosa(http.MethodGet, base+"/submission", auth, s.handleSubmissionProbe)
	s.handleOpenRosa(http.MethodPost, base+"/submission", auth, s.handleSubmission)
}

// registerOpenRosaKeyRoutes adds the bridge under the device-key base, and
// the route that makes a device's key.
func (s *Server) registerOpenRosaKeyRoutes() {
	if s.identity != nil {
		s.handle(http.MethodPost, "/v1/projects/{project}/devices/{device_id}/openrosa-key", ProjectRoles(domain.RoleManager), s.handleCreateOpenRosaKey)
	}
	s.registerOpenRosaRoutes(openRosaKeyBase, s.openRosaKeyAuth)
	if s.identity != nil {
		s.registerOpenRosaRoutes(openRosaBasicBase, s.openRosaBasicAuth)
	}
}

// openRosaKeyAuth authenticates the key in the path. A bad key answers 403,
// not 401, so Collect does not ask for a password it does not have.
func (s *Server) openRosaKeyAuth(w http.ResponseWriter, r *http.Request) (domain.Principal, error) {
	p, err := s.identity.AuthenticateOpenRosaKey(r.Context(), pathVar(r, "device_key"))
	if errors.Is(err, identity.ErrBadOpenRosaKey) {
		return domain.Principal{}, &openRosaError{status: http.StatusForbidden,
			msg: "This server address holds a key that is not valid (replaced, or its device was revoked). Ask your manager for a new QR code."}
	}
	return p, err
}

// openRosaHandler is a bridge handler: it runs after authentication, with the
// caller's role in the project.
type openRosaHandler func(w http.ResponseWriter, r *http.Request, c records.Caller) error

// handleOpenRosa registers one bridge route. Its rule is Public for the
// bearer-token layer: the credential is the key in the path (or Basic), which
// auth checks here, and every refusal is an OpenRosaResponse, not a problem.
func (s *Server) handleOpenRosa(method, path string, auth openRosaAuth, h openRosaHandler) {
	label := identity.MaskOpenRosaKey(strings.Replace(path, "{device_key}", "***", 1))
	s.handle(method, path, Public, func(w http.ResponseWriter, r *http.Request) error {
		info := infoFrom(r.Context())
		info.route = label // logs and metrics never see a key
		setOpenRosaHeaders(w, s.openRosaAcceptLength(), s.now())
		err := func() error {
			p, err := auth(w, r)
			if err != nil {
				return err
			}
			info.subject = p.Subject
			project := pathVar(r, "project")
			info.project = project
			role, err := s.projectRole(r.Context(), p, project)
			var de *domain.Error
			if errors.As(err, &de) && de.Kind == domain.KindNotFound {
				// A key of another project, or a user who is not a member.
				return &openRosaError{status: http.StatusForbidden, msg: "You may not use this project."}
			}
			if err != nil {
				return err
			}
			if role != domain.RoleManager && role != domain.RoleEnumerator {
				return &openRosaError{status: http.StatusForbidden, msg: fmt.Sprintf("Collecting data in project %s needs the enumerator or manager role; you are %s.", project, role)}
			}
			ctx := context.WithValue(r.Context(), principalKey{}, p)
			ctx = context.WithValue(ctx, roleKey{}, role)
			return h(w, r.WithContext(ctx), records.Caller{Principal: p, Role: role})
		}()
		if err != nil {
			s.writeOpenRosaError(w, r, err)
		}
		return nil
	})
}

// openRosaAcceptLength is X-OpenRosa-Accept-Content-Length: what a POST may
// carry, with room for the multipart framing and the XML, so that Collect
// splits its files before the server's body cap refuses them.
func (s *Server) openRosaAcceptLength() int64 {
	return s.maxBodyBytes - s.maxBodyBytes/8
}

func setOpenRosaHeaders(w http.ResponseWriter, accept int64, now time.Time) {
	h := w.Header()
	h.Set("X-OpenRosa-Version", "1.0")
	h.Set("X-OpenRosa-Accept-Content-Length", strconv.FormatInt(accept, 10))
	h.Set("Date", now.UTC().Format(http.TimeFormat))
	h.Set("Content-Type", "text/xml; charset=utf-8")
}

// writeOpenRosaError answers err as an OpenRosaResponse: the one place where
// errors are not problem documents, because Collect shows the first message.
func (s *Server) writeOpenRosaError(w http.ResponseWriter, r *http.Request, err error) {
	status, msg := http.StatusInternalServerError, internalTitle
	var oe *openRosaError
	if errors.As(err, &oe) {
		status, msg = oe.status, oe.msg
	} else {
		p, retry, internal := problemFor(err)
		status, msg = p.Status, p.Title
		if p.Detail != "" {
			msg += ": " + p.Detail
		}
		if internal {
			s.logger.LogAttrs(r.Context(), slog.LevelError, "internal error",
				slog.String("request_id", RequestIDFrom(r.Context())), slog.String("method", r.Method),
				slog.String("route", infoFrom(r.Context()).route), slog.String("error", identity.MaskOpenRosaKey(err.Error())))
		}
		if retry > 0 {
			w.Header().Set("Retry-After", strconv.Itoa(int((retry+time.Second-1)/time.Second)))
		}
	}
	writeOpenRosaMessage(w, status, "error", msg)
}

// writeOpenRosaMessage answers an OpenRosaResponse with one message.
func writeOpenRosaMessage(w http.ResponseWriter, status int, nature, msg string) {
	var b bytes.Buffer
	b.WriteString(`<?xml version="1.0" encoding="UTF-8"?>` + "\n")
	b.WriteString(`<OpenRosaResponse xmlns="http://openrosa.org/http/response"><message nature="`)
	_ = xml.EscapeText(&b, []byte(nature))
	b.WriteString(`">`)
	_ = xml.EscapeText(&b, []byte(msg))
	b.WriteString("</message></OpenRosaResponse>\n")
	writeXML(w, status, b.Bytes())
}

func writeXML(w http.ResponseWriter, status int, body []byte) {
	w.Header().Set("Content-Type", "text/xml; charset=utf-8")
	w.Header().Set("Content-Length", strconv.Itoa(len(body)))
	w.Header().Set("X-Content-Type-Options", "nosniff")
	w.WriteHeader(status)
	_, _ = w.Write(body)
}

// baseURL is the absolute URL of the request's OpenRosa base (without a
// trailing slash): FIELDSYNC_PUBLIC_URL when set, else the request's scheme
// and Host. Collect takes every URL but formList and submission from the XML,
// so they must be absolute.
func (s *Server) baseURL(r *http.Request) string {
	if s.publicURL != "" {
		return strings.TrimRight(s.publicURL, "/")
	}
	scheme := "http"
	if r.TLS != nil {
		scheme = "https"
	}
	return scheme + "://" + r.Host
}

// requestBase is the OpenRosa base of r: its path up to "/openrosa".
func (s *Server) requestBase(r *http.Request) string {
	p := r.URL.EscapedPath()
	if i := strings.Index(p, "/openrosa/"); i >= 0 {
		p = p[:i+len("/openrosa")]
	}
	return s.baseURL(r) + p
}

// handleFormList is GET {base}/formList (OpenRosa Form List API).
func (s *Server) handleFormList(w http.ResponseWriter, r *http.Request, c records.Caller) error {
	list, err := s.bridge.FormList(r.Context(), pathVar(r, "project"), r.URL.Query().Get("formID"))
	if err != nil {
		return err
	}
	base := s.requestBase(r)
	var b bytes.Buffer
	b.WriteString(`<?xml version="1.0" encoding="UTF-8"?>` + "\n")
	b.WriteString(`<xforms xmlns="http://openrosa.org/xforms/xformsList">` + "\n")
	for _, f := range list {
		el := func(name, v string) {
			b.WriteString("    <" + name + ">")
			_ = xml.EscapeText(&b, []byte(v))
			b.WriteString("</" + name + ">\n")
		}
		b.WriteString("  <xform>\n")
		el("formID", f.FormID)
		el("name", f.Name)
		el("version", f.Version)
		el("hash", "md5:"+f.MD5)
		el("downloadUrl", base+"/forms/"+url.PathEscape(f.FormID)+"/versions/"+url.PathEscape(f.Version)+".xml")
		b.WriteString("  </xform>\n")
	}
	b.WriteString("</xforms>\n")
	writeXML(w, http.StatusOK, b.Bytes())
	return nil
}

// handleXFormDownload is GET {base}/forms/{form}/versions/{version}.xml: the
// XForm made at publish, byte-identical forever, its md5 as ETag.
func (s *Server) handleXFormDownload(w http.ResponseWriter, r *http.Request, c records.Caller) error {
	x, md5, err := s.bridge.XForm(r.Context(), pathVar(r, "project"), pathVar(r, "form"), pathVar(r, "version"))
	if errors.Is(err, domain.ErrNotFound) {
		return &openRosaError{status: http.StatusNotFound, msg: "No such published form version, or ODK Collect cannot fill it in."}
	}
	if err != nil {
		return err
	}
	etag := `"md5:` + md5 + `"`
	w.Header().Set("ETag", etag)
	w.Header().Set("Cache-Control", cacheImmutable)
	if noneMatch(r.Header.Values("If-None-Match"), etag) {
		w.Header().Del("Content-Type")
		w.WriteHeader(http.StatusNotModified)
		return nil
	}
	writeXML(w, http.StatusOK, x)
	return nil
}

// handleManifest is GET {base}/forms/{form}/versions/{version}/manifest.
// Forms have no media files yet, so the manifest is empty and the form list
// names none; the route exists so a manifest URL never answers 404.
func (s *Server) handleManifest(w http.ResponseWriter, r *http.Request, c records.Caller) error {
	if _, _, err := s.bridge.XForm(r.Context(), pathVar(r, "project"), pathVar(r, "form"), pathVar(r, "version")); errors.Is(err, domain.ErrNotFound) {
		return &openRosaError{status: http.StatusNotFound, msg: "No such published form version."}
	} else if err != nil {
		return err
	}
	writeXML(w, http.StatusOK, []byte(`<?xml version="1.0" encoding="UTF-8"?>`+"\n"+`<manifest xmlns="http://openrosa.org/xforms/xformsManifest"></manifest>`+"\n"))
	return nil
}

// handleSubmissionProbe is HEAD (and GET) {base}/submission: Collect asks it
// before every upload and needs 204 (any other 2xx aborts).
func (s *Server) handleSubmissionProbe(w http.ResponseWriter, r *http.Request, c records.Caller) error {
	w.Header().Del("Content-Type")
	w.WriteHeader(http.StatusNoContent)
	return nil
}

// Parts of a submission.
const (
	partXML        = "xml_submission_file"
	partIncomplete = "*isIncomplete*"
)

// handleSubmission is POST {base}/submission: multipart/form-data with the
// instance and its files (openrosa.md §4). 201 or 202 mean Collect stops
// sending it; a 202 is kept in quarantine with its reason.
func (s *Server) handleSubmission(w http.ResponseWriter, r *http.Request, c records.Caller) error {
	mt, _, err := mime.ParseMediaType(r.Header.Get("Content-Type"))
	if err != nil || mt != "multipart/form-data" {
		return &openRosaError{status: http.StatusBadRequest, msg: "A submission is multipart/form-data with an xml_submission_file part."}
	}
	mr, err := r.MultipartReader()
	if err != nil {
		return &openRosaError{status: http.StatusBadRequest, msg: "The multipart body cannot be read: " + err.Error()}
	}
	var up bridge.Upload
	for {
		part, err := mr.NextPart()
		if errors.Is(err, io.EOF) {
			break
		}
		if err != nil {
			return submissionReadError(err)
		}
		data, err := io.ReadAll(part)
		if err != nil {
			return submissionReadError(err)
		}
		name := part.FormName()
		switch {
		case name == partXML:
			if up.XML != nil {
				return &openRosaError{status: http.StatusBadRequest, msg: "The submission has two xml_submission_file parts."}
			}
			up.XML = data
		case name == partIncomplete:
			up.Incomplete = strings.EqualFold(strings.TrimSpace(string(data)), "yes")
		default:
			fname := part.FileName()
			if fname == "" {
				fname = name
			}
			up.Files = append(up.Files, bridge.File{Name: fname, ContentType: part.Header.Get("Content-Type"), Data: data})
		}
	}
	if len(up.Files) > 0 && s.openRosaFiles == nil {
		return &openRosaError{status: http.StatusServiceUnavailable, msg: "This server keeps no files yet; the submission stays on the tablet."}
	}
	out, err := s.bridge.Submit(r.Context(), c, pathVar(r, "project"), up)
	if err != nil {
		return err
	}
	nature := "submit_success"
	if out.HTTPStatus >= 300 {
		nature = "error"
	}
	writeOpenRosaMessage(w, out.HTTPStatus, nature, out.Message)
	return nil
}

// submissionReadError is a body that could not be read: too large (413), cut
// off or not multipart (400), or the server's trouble.
func submissionReadError(err error) error {
	if isBodyTooLarge(err) {
		return &openRosaError{status: http.StatusRequestEntityTooLarge, msg: "The submission is too large: send fewer files at once."}
	}
	p, _, internal := problemFor(err)
	if !internal && p.Status != http.StatusBadRequest {
		return err
	}
	return &openRosaError{status: http.StatusBadRequest, msg: "The multipart body cannot be read: " + err.Error()}
}

// handleCreateOpenRosaKey is POST /v1/projects/{project}/devices/{device_id}/openrosa-key:
// a fresh key for ODK Collect (the earlier one stops working), shown once as
// the server URL and the Collect settings QR payload.
func (s *Server) handleCreateOpenRosaKey(w http.ResponseWriter, r *http.Request) error {
	p, _ := PrincipalFrom(r.Context())
	out, err := s.CreateOpenRosaKey(r, p, pathVar(r, "project"), pathVar(r, "device_id"))
	if err != nil {
		return err
	}
	return writeJSON(w, http.StatusCreated, out)
}

// CreateOpenRosaKey makes a device's fresh ODK Collect key as p (the
// identity service checks p and audits it) and returns the server URL that
// holds it and the Collect settings QR payload; r gives the server's base
// URL. The API route above and the web console's device page both call it.
func (s *Server) CreateOpenRosaKey(r *http.Request, p domain.Principal, project, deviceID string) (api.OpenRosaKeyResponse, error) {
	base := s.baseURL(r)
	// The URL is made with a placeholder first, so the audit event never
	// sees the key.
	template := base + "/v1/key/{key}/projects/" + url.PathEscape(project) + "/openrosa"
	key, d, err := s.identity.CreateOpenRosaKey(r.Context(), p, project, deviceID, template)
	if err != nil {
		return api.OpenRosaKeyResponse{}, err
	}
	serverURL := strings.Replace(template, "{key}", key, 1)
	name := project
	if pr, err := s.store.GetProject(r.Context(), project); err == nil && pr.Title != "" {
		name = pr.Title
	}
	qr, err := openrosa.SettingsPayload(serverURL, name+" ("+d.Name+")")
	if err != nil {
		return api.OpenRosaKeyResponse{}, err
	}
	return api.OpenRosaKeyResponse{DeviceID: d.ID, ServerURL: serverURL, QR: qr}, nil
}

// openRosaInfo is the openrosa member of a publish answer.
func openRosaInfo(fv domain.FormVersion) *api.OpenRosaInfo {
	meta, err := openrosa.ParseMeta(fv.OpenRosa)
	if err != nil || len(fv.XForm) == 0 {
		return nil
	}
	info := &api.OpenRosaInfo{Warnings: meta.Warnings, Reasons: meta.Reasons}
	if info.Warnings == nil {
		info.Warnings = []string{}
	}
	if info.Reasons == nil {
		info.Reasons = []string{}
	}
	return info
}
