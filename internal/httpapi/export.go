package httpapi

import (
	"errors"
	"fmt"
	"log/slog"
	"net/http"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/fieldsync/fieldsync/api"
	"github.com/fieldsync/fieldsync/internal/audit"
	"github.com/fieldsync/fieldsync/internal/domain"
	"github.com/fieldsync/fieldsync/internal/export"
)

// UntilHeader is the answer header of an export that gives the receive-time
// bound it applied: the until parameter, or the time of the request when none
// was given. An incremental pull passes it as since next time (fsctl export
// --since-last): since is inclusive and until exclusive, so the windows
// neither overlap nor leave a gap.
const UntilHeader = api.ExportUntilHeader

// exportWriteWindow is how long one write of an export may block before the
// connection is cut: the deadline moves on with every write, so no timeout
// cuts a long export that keeps moving, and a client that stopped reading
// does not hold the query for ever.
const exportWriteWindow = 2 * time.Minute

// registerExportRoutes adds the dataset export of protocol.md §4 (issue 12).
func (s *Server) registerExportRoutes() {
	if s.records == nil || s.forms == nil {
		return
	}
	s.handle(http.MethodGet, "/v1/projects/{project}/forms/{form}/export", ProjectRoles(domain.RoleAnalyst), s.handleExport)
}

// handleExport is GET /v1/projects/{project}/forms/{form}/export?format=…: the
// form's records (tombstones left out) as one streamed dataset. The store is
// read a page at a time while rows are written, so memory stays flat; a
// client that goes away cancels the request's context, which stops the
// query at its next page. A failure after the first byte aborts the
// connection, so a truncated file never looks complete.
func (s *Server) handleExport(w http.ResponseWriter, r *http.Request) error {
	q, err := parseRecordQuery(r, "format", "labels", "bom", "attachments")
	if err != nil {
		return err
	}
	vals := r.URL.Query()
	opt := export.Options{Format: vals.Get("format")}
	if opt.Format == "" {
		opt.Format = export.FormatCSV
	}
	if !slices.Contains(export.Formats, opt.Format) {
		return &domain.Error{Kind: domain.KindBadRequest, Code: "invalid_query", Title: "Unknown export format",
			Detail: fmt.Sprintf("format=%q: use one of %s", opt.Format, strings.Join(export.Formats, ", "))}
	}
	var attachments bool
	for name, dst := range map[string]*bool{"labels": &opt.Labels, "bom": &opt.BOM, "attachments": &attachments} {
		switch vals.Get(name) {
		case "", "false":
		case "true":
			*dst = true
		default:
			return &domain.Error{Kind: domain.KindBadRequest, Code: "invalid_query", Title: name + " must be true or false"}
		}
	}
	if attachments {
		if opt.Format != export.FormatCSVZip {
			return &domain.Error{Kind: domain.KindBadRequest, Code: "invalid_query", Title: "attachments=true needs format=csv.zip"}
		}
		if s.exportAttachments == nil {
			return &domain.Error{Kind: domain.KindBadRequest, Code: "attachments_unavailable", Title: "This server does not export attachments"}
		}
		opt.Attachments = s.exportAttachments
	}
	ctx := r.Context()
	if err := s.records.CheckQuery(ctx, q); err != nil {
		return err
	}
	if q.Until.IsZero() {
		// After the check: a since later than now is an empty export, not
		// a since after until the client never gave.
		q.Until = s.now().UTC().Truncate(time.Millisecond)
	}
	model, err := s.exportModel(r, q)
	if err != nil {
		return err
	}

	h := w.Header()
	h.Set("Content-Type", export.ContentType(opt.Format))
	h.Set("Content-Disposition", fmt.Sprintf(`attachment; filename="%s.%s"`, q.FormID, export.Extension(opt.Format)))
	h.Set("Cache-Control", "no-store")
	h.Set("X-Content-Type-Options", "nosniff")
	h.Set(UntilHeader, q.Until.Format(time.RFC3339Nano))
	// The count is known at the end only: a trailer, for fsctl's summary.
	h.Set("Trailer", api.ExportRecordsHeader)

	dw := &deadlineWriter{w: w, rc: http.NewResponseController(w)}
	// The moved deadline would outlive the export on a kept-alive
	// connection (net/http sets one per request only with a WriteTimeout):
	// clear it when the export ends.
	defer func() { _ = dw.rc.SetWriteDeadline(time.Time{}) }()
	if opt.Format == export.FormatXLSX || opt.Format == export.FormatCSVZip {
		// Their bytes may come late (a csv.zip's repeat tables and an xlsx's
		// repeat sheets are spooled to temporary files and copied in at the
		// end): send the status and headers now, so the client knows the
		// export is under way.
		w.WriteHeader(http.StatusOK)
		if err := dw.rc.Flush(); err == nil {
			dw.started = true // a later failure aborts the connection
		}
	}
	n, err := export.Write(ctx, dw, model, s.records.Records(ctx, q), opt)
	p, _ := PrincipalFrom(ctx)
	detail := map[string]string{"format": opt.Format, "records": strconv.FormatInt(n, 10)}
	if err != nil {
		detail["failed"] = "true"
	}
	audit.Append(ctx, s.store, s.logger, s.now, domain.AuditEvent{Type: audit.DatasetExported, Actor: p.Subject,
		ProjectID: q.ProjectID, Subject: q.FormID, RemoteAddr: s.clientIP(r), Detail: detail})
	if err == nil {
		w.Header().Set(api.ExportRecordsHeader, strconv.FormatInt(n, 10))
	}
	if err == nil || ctx.Err() != nil || !dw.started {
		// Nothing sent yet (or nobody listens): the adapter answers, without
		// the headers of a file that will not come.
		if err != nil && !dw.started {
			for _, k := range []string{"Content-Type", "Content-Disposition", "Trailer", UntilHeader} {
				h.Del(k)
			}
		}
		return err
	}
	info := infoFrom(ctx)
	s.logger.LogAttrs(ctx, slog.LevelError, "export failed after the answer started",
		slog.String("request_id", info.requestID), slog.String("error", err.Error()), slog.Int64("records", n))
	panic(http.ErrAbortHandler)
}

// exportModel builds the column model of the form from its published
// versions (those the query names, when it names some), in publication order.
func (s *Server) exportModel(r *http.Request, q domain.RecordQuery) (*export.Model, error) {
	ctx := r.Context()
	form, err := s.store.GetForm(ctx, q.ProjectID, q.FormID)
	if err != nil {
		if errors.Is(err, domain.ErrNotFound) {
			return nil, &domain.Error{Kind: domain.KindNotFound, Code: "form_not_found", Title: "No such form in this project"}
		}
		return nil, err
	}
	var versions []export.Version
	for _, v := range form.Versions {
		if v.State != domain.VersionPublished || (len(q.Versions) > 0 && !slices.Contains(q.Versions, v.Version)) {
			continue
		}
		fv, err := s.store.GetFormVersion(ctx, q.ProjectID, q.FormID, v.Version)
		if err != nil {
			return nil, err
		}
		versions = append(versions, export.Version{Version: fv.Version, Definition: fv.Definition})
	}
	return export.Build(q.FormID, versions)
}

// deadlineWriter moves the connection's write deadline on as an export
// writes, and counts what it wrote.
type deadlineWriter struct {
	w        http.ResponseWriter
	rc       *http.ResponseController
	n        int64
	started  bool // the status line is sent
	extended time.Time
}

func (d *deadlineWriter) Write(p []byte) (int, error) {
	// Network time, not the injectable clock: deadlines are real.
	if now := time.Now(); now.Sub(d.extended) > time.Second {
		// ErrNotSupported (a writer that cannot reach the connection) leaves
		// the server's own timeouts, of which fieldsync sets no write one.
		_ = d.rc.SetWriteDeadline(now.Add(exportWriteWindow))
		d.extended = now
	}
	d.started = true
	n, err := d.w.Write(p)
	d.n += int64(n)
	return n, err
}
