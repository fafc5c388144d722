// Package media is the attachment service (issue 13, protocol.md §3
// "Attachments"): the photos, recordings and signatures that records name.
//
// A pushed item declares its files (name, sha256, size, content_type); the
// bytes come afterwards, whole (Put) or over links that drop, resumed where
// they stopped (Status and Append, the tus 1.0 core semantics the HTTP layer
// speaks). Bytes are checked against the declaration before they count:
// the sha256 and size must match, or nothing is kept. Storage is the store's
// (domain.AttachmentStore): content-addressed, so identical bytes are held
// once, and a partial upload lives in the shared store, so a resume may land
// on another server instance.
//
// Authorization is the record's: whoever may see a record may read its files
// (Open), and whoever may push it — an enumerator who sees it, a manager —
// may upload them. Other doors (OpenRosa) call Put with their caller.
package media

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"mime"
	"net/http"
	"strings"
	"time"

	"github.com/google/uuid"

	"github.com/fieldsync/fieldsync/internal/domain"
	"github.com/fieldsync/fieldsync/internal/records"
)

// Defaults of Config.
const (
	// DefaultMaxBytes is the largest attachment taken (FIELDSYNC_MAX_ATTACHMENT_BYTES).
	DefaultMaxBytes = 50 << 20
	// DefaultUploadExpiry is how long an unfinished upload is kept after its
	// last bytes arrived (FIELDSYNC_UPLOAD_EXPIRY): a tablet may be out of
	// coverage for days.
	DefaultUploadExpiry = 7 * 24 * time.Hour
	// DefaultCollectGrace is how old a file no record names must be before it
	// is collected: longer than the moment between storing a file and linking
	// it to its record.
	DefaultCollectGrace = time.Hour
)

// Error codes of the service, beside the records service's record_not_found.
const (
	CodeNotDeclared         = "attachment_not_declared"
	CodeTooLarge            = "attachment_too_large"
	CodeMismatch            = "attachment_mismatch"
	CodeOffsetMismatch      = "offset_mismatch"
	CodeContentTypeMismatch = "content_type_mismatch"
	CodeNotFound            = "attachment_not_found"
	CodeForbidden           = "forbidden"
)

// Config wires a Service.
type Config struct {
	Store   domain.AttachmentStore
	Records *records.Service
	// MaxBytes is the largest file accepted; 0 means DefaultMaxBytes.
	MaxBytes int64
	// UploadExpiry: 0 means DefaultUploadExpiry.
	UploadExpiry time.Duration
	// CollectGrace: 0 means DefaultCollectGrace.
	CollectGrace time.Duration
	Now          func() time.Time
	Logger       *slog.Logger
}

// Service is the attachment service.
type Service struct {
	store   domain.AttachmentStore
	records *records.Service
	max     int64
	expiry  time.Duration
	grace   time.Duration
	now     func() time.Time
	log     *slog.Logger
}

// New makes a Service.
func New(cfg Config) *Service {
	s := &Service{store: cfg.Store, records: cfg.Records, max: cfg.MaxBytes, expiry: cfg.UploadExpiry,
		grace: cfg.CollectGrace, now: cfg.Now, log: cfg.Logger}
	if s.max <= 0 {
		s.max = DefaultMaxBytes
	}
	if s.expiry <= 0 {
		s.expiry = DefaultUploadExpiry
	}
	if s.grace <= 0 {
		s.grace = DefaultCollectGrace
	}
	if s.now == nil {
		s.now = time.Now
	}
	if s.log == nil {
		s.log = slog.Default()
	}
	return s
}

// MaxBytes is the largest file the service takes.
func (s *Service) MaxBytes() int64 { return s.max }

func (s *Service) clock() time.Time { return s.now().UTC().Truncate(time.Millisecond) }

// Progress is the state of one declared file's upload.
type Progress struct {
	// Offset is how many bytes the server holds; Length the declared size.
	Offset, Length int64
	// Complete: the file is stored and linked to its record.
	Complete bool
	// Created: this call completed it (201), rather than finding it held.
	Created bool
	// Attachment is the declaration.
	Attachment domain.Attachment
}

// mayUpload: the roles that push (the push route's rule).
func mayUpload(c records.Caller) bool {
	return c.Principal.Admin || c.Role == domain.RoleEnumerator || c.Role == domain.RoleManager
}

// declared returns the record (if the caller may see it) and its declaration
// of name.
func (s *Service) declared(ctx context.Context, c records.Caller, projectID, recordID, name string, upload bool) (domain.Record, domain.Attachment, error) {
	if upload && !mayUpload(c) {
		return domain.Record{}, domain.Attachment{}, domain.Errorf(domain.KindForbidden, CodeForbidden, "Only those who push a record upload its files")
	}
	rec, _, err := s.records.Get(ctx, c, projectID, recordID, false)
	if err != nil {
		return rec, domain.Attachment{}, err
	}
	for _, a := range rec.Attachments {
		if a.Name == name {
			if upload && a.Size > s.max {
				return rec, a, &domain.Error{Kind: domain.KindTooLarge, Code: CodeTooLarge, Title: "The file is larger than the server takes",
					Detail: fmt.Sprintf("%q is declared with %d bytes; at most %d are taken", name, a.Size, s.max)}
			}
			return rec, a, nil
		}
	}
	return rec, domain.Attachment{}, &domain.Error{Kind: domain.KindConflict, Code: CodeNotDeclared, Title: "The record does not declare this file",
		Detail: fmt.Sprintf("record %s declares no attachment %q; push the record with it in attachments first", recordID, name)}
}

// uploadID names the resumable upload of one declaration: a new declaration
// of the name (other bytes) is another upload.
func uploadID(projectID, recordID string, a domain.Attachment) string {
	h := sha256.Sum256([]byte(fmt.Sprintf("%s\x00%s\x00%s\x00%s\x00%d", projectID, recordID, a.Name, a.SHA256, a.Size)))
	return "tus-" + hex.EncodeToString(h[:16])
}

// linked reports whether the record holds the declared bytes.
func (s *Service) linked(ctx context.Context, projectID, recordID string, a domain.Attachment) (bool, error) {
	_, held, err := s.heldFile(ctx, projectID, recordID, a)
	return held, err
}

// heldFile returns the sha256 of the file the record holds for a, by the
// rule of records' present: the declared bytes, or, for a declaration
// without a hash (a Collect file sent in a later part), whichever file was
// linked under its name.
func (s *Service) heldFile(ctx context.Context, projectID, recordID string, a domain.Attachment) (sha string, held bool, err error) {
	l, err := s.store.GetAttachmentLink(ctx, projectID, recordID, a.Name)
	switch {
	case errors.Is(err, domain.ErrNotFound):
		return "", false, nil
	case err != nil:
		return "", false, err
	}
	return l.SHA256, a.SHA256 == "" || l.SHA256 == a.SHA256, nil
}

// Status is the progress of a declared file's upload (tus HEAD). An upload
// whose bytes all arrived but were not stored yet (the server stopped in
// between) is stored now.
func (s *Service) Status(ctx context.Context, c records.Caller, projectID, recordID, name string) (Progress, error) {
	_, a, err := s.declared(ctx, c, projectID, recordID, name, true)
	if err != nil {
		return Progress{}, err
	}
	p := Progress{Length: a.Size, Attachment: a}
	held, err := s.linked(ctx, projectID, recordID, a)
	if err != nil || held {
		p.Offset, p.Complete = a.Size, held
		return p, err
	}
	id := uploadID(projectID, recordID, a)
	if p.Offset, err = s.store.UploadOffset(ctx, id); err != nil {
		return p, err
	}
	if p.Offset == a.Size && a.Size > 0 {
		return s.finish(ctx, c, projectID, recordID, id, a, p)
	}
	return p, nil
}

// Append adds body at offset to the upload of a declared file (tus PATCH),
// and stores the file once its last byte arrived. The bytes that arrived
// before the body broke off are kept; the error then says why it stopped and
// the progress where. An offset other than what the server holds answers
// 409 offset_mismatch, with the server's offset in the progress.
func (s *Service) Append(ctx context.Context, c records.Caller, projectID, recordID, name string, offset int64, body io.Reader) (Progress, error) {
	_, a, err := s.declared(ctx, c, projectID, recordID, name, true)
	if err != nil {
		return Progress{}, err
	}
	p := Progress{Length: a.Size, Attachment: a}
	held, err := s.linked(ctx, projectID, recordID, a)
	if err != nil {
		return p, err
	}
	if held {
		p.Offset, p.Complete = a.Size, true
		if offset != a.Size {
			return p, offsetMismatch(offset, a.Size)
		}
		return p, nil
	}
	return s.append(ctx, c, projectID, recordID, uploadID(projectID, recordID, a), a, offset, body, p)
}

// Put stores a whole file (PUT), checked against the declaration. It is the
// call for other doors too: "the bytes of record X's attachment N".
// Progress.Created is false when the record already held those bytes.
func (s *Service) Put(ctx context.Context, c records.Caller, projectID, recordID, name string, body io.Reader) (Progress, error) {
	_, a, err := s.declared(ctx, c, projectID, recordID, name, true)
	if err != nil {
		return Progress{}, err
	}
	p := Progress{Length: a.Size, Attachment: a}
	held, err := s.linked(ctx, projectID, recordID, a)
	if err != nil || held {
		p.Offset, p.Complete = a.Size, held
		return p, err
	}
	// A whole-file upload of its own: it never mixes with a resumable one,
	// and an interrupted one is dropped at once.
	id := "put-" + uuid.NewString()
	p, err = s.append(ctx, c, projectID, recordID, id, a, 0, body, p)
	if err != nil || !p.Complete {
		s.dropUpload(id)
	}
	if err == nil && !p.Complete {
		return p, mismatch(a, &domain.MismatchError{SHA256: "", Size: p.Offset}, false)
	}
	return p, err
}

func (s *Service) dropUpload(id string) {
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	if err := s.store.DeleteUpload(ctx, id); err != nil {
		s.log.Warn("media: drop an upload", "upload", id, "err", err)
	}
}

func (s *Service) append(ctx context.Context, c records.Caller, projectID, recordID, id string, a domain.Attachment, offset int64, body io.Reader, p Progress) (Progress, error) {
	if offset < 0 || offset > a.Size {
		cur, err := s.store.UploadOffset(ctx, id)
		if err != nil {
			return p, err
		}
		p.Offset = cur
		return p, offsetMismatch(offset, cur)
	}
	lim := &limitReader{r: body, left: a.Size - offset}
	var sniff *sniffReader
	var r io.Reader = lim
	if offset == 0 {
		sniff = &sniffReader{r: lim}
		r = sniff
	}
	// Detached from the request: the bytes that arrived before a client
	// dropped are written all the same, so that its next try resumes after them.
	off, err := s.store.AppendUpload(context.WithoutCancel(ctx), id, offset, r, s.clock())
	p.Offset = off
	switch {
	case errors.Is(err, domain.ErrStale):
		return p, offsetMismatch(offset, off)
	case lim.over:
		s.dropUpload(id)
		p.Offset = 0
		return p, mismatch(a, &domain.MismatchError{Size: -1}, true)
	case sniff != nil && !contentTypeFits(a.ContentType, sniff.head):
		s.dropUpload(id)
		p.Offset = 0
		return p, &domain.Error{Kind: domain.KindUnsupportedType, Code: CodeContentTypeMismatch, Title: "The bytes are not of the declared content type",
			Detail: fmt.Sprintf("%q is declared as %s, but its bytes are %s", a.Name, a.ContentType, http.DetectContentType(sniff.head))}
	case err != nil:
		return p, err
	}
	if off < a.Size {
		return p, nil
	}
	return s.finish(ctx, c, projectID, recordID, id, a, p)
}

// finish stores a complete upload and links it to its record.
func (s *Service) finish(ctx context.Context, c records.Caller, projectID, recordID, id string, a domain.Attachment, p Progress) (Progress, error) {
	ctx = context.WithoutCancel(ctx)
	now := s.clock()
	err := s.store.CommitUpload(ctx, id, a.SHA256, a.Size, now)
	var me *domain.MismatchError
	switch {
	case errors.As(err, &me):
		p.Offset = 0
		return p, mismatch(a, me, false)
	case errors.Is(err, domain.ErrNotFound) || errors.Is(err, domain.ErrStale):
		// Another request finished this upload meanwhile: the file is stored,
		// or the other request reports why not.
		if held, lerr := s.linked(ctx, projectID, recordID, a); lerr == nil && held {
			p.Offset, p.Complete = a.Size, true
			return p, nil
		}
		if b, oerr := s.store.OpenBlob(ctx, a.SHA256); oerr == nil {
			b.Close()
			break
		}
		cur, _ := s.store.UploadOffset(ctx, id)
		p.Offset = cur
		return p, offsetMismatch(a.Size, cur)
	case err != nil:
		return p, err
	}
	err = s.store.PutAttachmentLink(ctx, domain.AttachmentLink{ProjectID: projectID, RecordID: recordID, Name: a.Name,
		SHA256: a.SHA256, Size: a.Size, ContentType: a.ContentType, CreatedAt: now})
	if errors.Is(err, domain.ErrNotFound) {
		// Collected in the instant between: rare, and the client sends again.
		p.Offset = 0
		return p, &domain.Error{Kind: domain.KindUnavailable, Code: "store_unavailable", Title: "The file was not stored; send it again", RetryAfter: time.Second, Err: err}
	}
	if err != nil {
		return p, err
	}
	p.Offset, p.Complete, p.Created = a.Size, true, true
	return p, nil
}

func offsetMismatch(sent, held int64) error {
	return &domain.Error{Kind: domain.KindConflict, Code: CodeOffsetMismatch, Title: "Upload-Offset is not the server's offset",
		Detail: fmt.Sprintf("the request starts at byte %d; the server holds %d bytes of this file: ask with HEAD and resume from there", sent, held)}
}

// mismatch is the 409 of bytes that are not the declared file: what was
// expected and what arrived. over: more bytes came than declared.
func mismatch(a domain.Attachment, me *domain.MismatchError, over bool) error {
	arrived := fmt.Sprintf("%d bytes with sha256 %s", me.Size, me.SHA256)
	size := fmt.Sprint(me.Size)
	if over {
		arrived, size = fmt.Sprintf("more than %d bytes", a.Size), fmt.Sprintf("more than %d", a.Size)
	} else if me.SHA256 == "" {
		arrived = fmt.Sprintf("%d bytes (the body ended early)", me.Size)
	}
	f := []domain.Finding{{Path: "/size", Keyword: "mismatch", Message: fmt.Sprintf("expected %d, received %s", a.Size, size)}}
	if me.SHA256 != "" {
		f = append(f, domain.Finding{Path: "/sha256", Keyword: "mismatch", Message: fmt.Sprintf("expected %s, received %s", a.SHA256, me.SHA256)})
	}
	return &domain.Error{Kind: domain.KindConflict, Code: CodeMismatch, Title: "The bytes are not the declared file; nothing was kept",
		Detail: fmt.Sprintf("%q was declared as %d bytes with sha256 %s; %s arrived", a.Name, a.Size, a.SHA256, arrived), Findings: f}
}

// limitReader passes at most left bytes, and notes when more came.
type limitReader struct {
	r    io.Reader
	left int64
	over bool
}

var errTooMany = errors.New("more bytes than declared")

func (l *limitReader) Read(p []byte) (int, error) {
	if l.left <= 0 {
		var one [1]byte
		n, err := l.r.Read(one[:])
		if n > 0 {
			l.over = true
			return 0, errTooMany
		}
		return 0, err
	}
	if int64(len(p)) > l.left {
		p = p[:l.left]
	}
	n, err := l.r.Read(p)
	l.left -= int64(n)
	return n, err
}

// sniffReader keeps the first bytes that pass, for content sniffing.
type sniffReader struct {
	r    io.Reader
	head []byte
}

func (s *sniffReader) Read(p []byte) (int, error) {
	n, err := s.r.Read(p)
	if k := min(n, 512-len(s.head)); k > 0 {
		s.head = append(s.head, p[:k]...)
	}
	return n, err
}

// family is the kind of media a type is, for the sniffing check: audio and
// video share containers (an .m4a sniffs as video/mp4), so they are one.
func family(t string) string {
	switch {
	case strings.HasPrefix(t, "image/"):
		return "image"
	case strings.HasPrefix(t, "audio/"), strings.HasPrefix(t, "video/"), t == "application/ogg":
		return "audio-video"
	case t == "application/pdf":
		return "pdf"
	}
	return ""
}

// contentTypeFits checks a declared content type against the sniffed type
// of the first bytes, where the sniffer is certain (a binary signature of
// an image, audio/video container or PDF). Text, unknown bytes and other
// declared types are not checked.
func contentTypeFits(declared string, head []byte) bool {
	if declared == "" || len(head) == 0 {
		return true
	}
	want, _, err := mime.ParseMediaType(declared)
	if err != nil {
		return true
	}
	got, _, _ := mime.ParseMediaType(http.DetectContentType(head))
	fw, fg := family(want), family(got)
	return fw == "" || fg == "" || fw == fg
}

// File is one attachment of a record, for those who read records in bulk
// (the csv.zip export): the declaration and whether its bytes are held.
type File struct {
	domain.Attachment
	RecordID string
	Present  bool
}

// RecordFiles lists the files rec declares, each marked present when its
// bytes are held. The caller has already decided that it may read rec
// (exports run under an analyst's authority); open a present one with
// OpenFile. It costs one store read.
func (s *Service) RecordFiles(ctx context.Context, rec domain.Record) ([]File, error) {
	if len(rec.Attachments) == 0 {
		return nil, nil
	}
	pres, err := s.records.Presence(ctx, rec.ProjectID, []domain.Record{rec})
	if err != nil {
		return nil, err
	}
	out := make([]File, len(rec.Attachments))
	for i, a := range rec.Attachments {
		out[i] = File{Attachment: a, RecordID: rec.ID, Present: pres[rec.ID][a.Name]}
	}
	return out, nil
}

// OpenFile opens the bytes of a present File; ErrNotFound when they are not
// held. Close the blob when done.
func (s *Service) OpenFile(ctx context.Context, f File) (domain.Blob, error) {
	return s.store.OpenBlob(ctx, f.SHA256)
}

// Open opens a record's file for a caller who may see the record: the
// declaration and the bytes. A declared file not uploaded yet answers 404
// attachment_not_found.
func (s *Service) Open(ctx context.Context, c records.Caller, projectID, recordID, name string) (domain.Attachment, domain.Blob, error) {
	_, a, err := s.declared(ctx, c, projectID, recordID, name, false)
	if err != nil {
		var de *domain.Error
		if errors.As(err, &de) && de.Code == CodeNotDeclared {
			err = notHeld(name)
		}
		return a, nil, err
	}
	sha, held, err := s.heldFile(ctx, projectID, recordID, a)
	if err != nil {
		return a, nil, err
	}
	if !held {
		return a, nil, notHeld(name)
	}
	b, err := s.store.OpenBlob(ctx, sha)
	if errors.Is(err, domain.ErrNotFound) {
		return a, nil, notHeld(name)
	}
	return a, b, err
}

func notHeld(name string) error {
	return &domain.Error{Kind: domain.KindNotFound, Code: CodeNotFound, Title: "The server does not hold this file",
		Detail: fmt.Sprintf("no bytes of %q were uploaded for this record yet", name)}
}

// Sweep removes the uploads left unfinished for longer than the expiry and
// the files no record names any more.
func (s *Service) Sweep(ctx context.Context) (expired, collected int, err error) {
	now := s.clock()
	if expired, err = s.store.ExpireUploads(ctx, now.Add(-s.expiry)); err != nil {
		return expired, 0, err
	}
	collected, err = s.store.CollectBlobs(ctx, now.Add(-s.grace))
	return expired, collected, err
}

// Run sweeps every interval until ctx ends. Every instance may run it: each
// removal is conditional in the store.
func (s *Service) Run(ctx context.Context, every time.Duration) {
	t := time.NewTicker(every)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-t.C:
			exp, col, err := s.Sweep(ctx)
			switch {
			case err != nil && ctx.Err() == nil:
				s.log.Warn("media: sweep", "err", err)
			case exp+col > 0:
				s.log.Info("media: swept", "expired_uploads", exp, "collected_files", col)
			}
		}
	}
}

// OpenAttachment opens the bytes a record holds under a's name, for the
// csv.zip export (export.AttachmentSource): ErrNotFound when the record holds
// no such file yet, or holds other bytes than a declares (the declaration
// moved on and the new file has not arrived). The caller has already decided
// that it may read rec.
func (s *Service) OpenAttachment(ctx context.Context, rec domain.Record, a domain.Attachment) (io.ReadCloser, error) {
	sha, held, err := s.heldFile(ctx, rec.ProjectID, rec.ID, a)
	if err != nil {
		return nil, err
	}
	if !held {
		return nil, domain.ErrNotFound
	}
	return s.store.OpenBlob(ctx, sha)
}

// PutAttachment stores a file that arrived through another door than the
// attachment routes (an ODK Collect submission's part: bridge.AttachmentSink)
// and links it to the record under a.Name. The caller has authorised the
// sender and computed a.SHA256 and a.Size from the bytes; they are checked
// again as the bytes are stored (nothing is kept on a mismatch). Storing the
// same file again is not an error.
func (s *Service) PutAttachment(ctx context.Context, projectID, recordID string, a domain.Attachment, body io.Reader) error {
	if held, err := s.linked(ctx, projectID, recordID, a); err != nil || held {
		return err
	}
	id := "door-" + uuid.NewString()
	defer s.dropUpload(id)
	now := s.now().UTC()
	if _, err := s.store.AppendUpload(ctx, id, 0, body, now); err != nil {
		return err
	}
	if err := s.store.CommitUpload(ctx, id, a.SHA256, a.Size, now); err != nil {
		return err
	}
	return s.store.PutAttachmentLink(ctx, domain.AttachmentLink{ProjectID: projectID, RecordID: recordID, Name: a.Name,
		SHA256: a.SHA256, Size: a.Size, ContentType: a.ContentType, CreatedAt: now})
}
