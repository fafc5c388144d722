package export

import (
	"bufio"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"iter"
	"time"

	"github.com/fieldsync/fieldsync/internal/domain"
)

// The formats of protocol.md §4.
const (
	FormatCSV     = "csv"
	FormatCSVZip  = "csv.zip"
	FormatXLSX    = "xlsx"
	FormatNDJSON  = "ndjson"
	FormatGeoJSON = "geojson"
)

// Formats lists every format, in the order the documentation gives them.
var Formats = []string{FormatCSV, FormatCSVZip, FormatXLSX, FormatNDJSON, FormatGeoJSON}

// ContentType is the media type of a format's answer.
func ContentType(format string) string {
	switch format {
	case FormatCSV:
		return "text/csv; charset=utf-8"
	case FormatCSVZip:
		return "application/zip"
	case FormatXLSX:
		return "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet"
	case FormatNDJSON:
		return "application/x-ndjson"
	case FormatGeoJSON:
		return "application/geo+json"
	}
	return "application/octet-stream"
}

// Extension is the file name extension of a format.
func Extension(format string) string { return format }

// AttachmentSource opens the stored bytes of a record's attachment. It is the
// hook through which csv.zip holds attachments (attachments=true); the media
// service provides it.
type AttachmentSource interface {
	// OpenAttachment returns the attachment's bytes, or domain.ErrNotFound
	// when the server does not hold them (yet).
	OpenAttachment(ctx context.Context, rec domain.Record, a domain.Attachment) (io.ReadCloser, error)
}

// Options adjust an export.
type Options struct {
	Format string
	// Labels writes choice labels instead of codes.
	Labels bool
	// BOM starts each csv file with the UTF-8 byte order mark, which Excel
	// needs to read it as UTF-8.
	BOM bool
	// Attachments, when set, adds each record's stored attachments to a
	// csv.zip, as entries "attachments/<record id>/<name>".
	Attachments AttachmentSource
	// TempDir holds the temporary files of csv.zip and xlsx ("" is the
	// system's).
	TempDir string
	// Progress, when set, is called after every ProgressEvery records
	// with the count so far: the HTTP layer moves the write deadline on.
	Progress func(records int64)
}

// ProgressEvery is how many records pass between calls of Options.Progress.
const ProgressEvery = 1000

// Write writes the records as one dataset in opt.Format, streaming: each
// record is written (or, for csv.zip and the repeat groups of xlsx, spooled
// to a temporary file) as the iterator yields it, so memory holds one record
// whatever the count.
// It stops at the iterator's first error, or the writer's, and returns it
// with the number of records written.
func Write(ctx context.Context, w io.Writer, m *Model, records iter.Seq2[domain.Record, error], opt Options) (int64, error) {
	var wr writer
	switch opt.Format {
	case FormatCSV:
		wr = newCSVWriter(w, m, opt)
	case FormatCSVZip:
		wr = newZipWriter(ctx, w, m, opt)
	case FormatXLSX:
		x, err := newXLSXWriter(w, m, opt)
		if err != nil {
			return 0, err
		}
		wr = x
	case FormatNDJSON:
		wr = &ndjsonWriter{bw: bufio.NewWriterSize(w, 64<<10)}
	case FormatGeoJSON:
		wr = newGeoJSONWriter(w, m, opt)
	default:
		return 0, fmt.Errorf("export: unknown format %q", opt.Format)
	}
	return run(wr, records, opt)
}

// run feeds the records to a format's writer, and finishes it.
func run(wr writer, records iter.Seq2[domain.Record, error], opt Options) (int64, error) {
	defer wr.close()
	var n int64
	for rec, err := range records {
		if err != nil {
			return n, err
		}
		if err := wr.record(&rec); err != nil {
			return n, err
		}
		n++
		if opt.Progress != nil && n%ProgressEvery == 0 {
			opt.Progress(n)
		}
	}
	return n, wr.finish()
}

// writer is one format's writer.
type writer interface {
	record(rec *domain.Record) error
	// finish writes what follows the last record.
	finish() error
	// close releases temporary files; called after finish or a failure.
	close()
}

// ndjsonRecord is a line of ndjson: the record with its data as stored, for
// scripts that want the answers as JSON rather than as columns.
type ndjsonRecord struct {
	ID               string          `json:"id"`
	Form             string          `json:"form"`
	FormVersion      string          `json:"form_version"`
	Rev              string          `json:"rev"`
	CreatedBy        string          `json:"created_by"`
	DeviceID         string          `json:"device_id,omitempty"`
	ClientModifiedAt time.Time       `json:"client_modified_at"`
	CreatedAt        time.Time       `json:"created_at"`
	UpdatedAt        time.Time       `json:"updated_at"`
	ReviewState      string          `json:"review_state"`
	HasConflicts     bool            `json:"has_conflicts"`
	Data             json.RawMessage `json:"data"`
}

type ndjsonWriter struct {
	bw *bufio.Writer
}

func (w *ndjsonWriter) record(rec *domain.Record) error {
	data := rec.Data
	if len(data) == 0 {
		data = json.RawMessage("null")
	}
	b, err := json.Marshal(ndjsonRecord{ID: rec.ID, Form: rec.FormID, FormVersion: rec.FormVersion, Rev: rec.Rev,
		CreatedBy: rec.CreatedBy, DeviceID: rec.DeviceID, ClientModifiedAt: rec.ClientModifiedAt, CreatedAt: rec.CreatedAt,
		UpdatedAt: rec.UpdatedAt, ReviewState: rec.ReviewState, HasConflicts: len(rec.Conflicts) > 0, Data: data})
	if err != nil {
		return err
	}
	if _, err := w.bw.Write(b); err != nil {
		return err
	}
	return w.bw.WriteByte('\n')
}

func (w *ndjsonWriter) finish() error { return w.bw.Flush() }
func (w *ndjsonWriter) close()        {}
