// Package bridge is the OpenRosa door onto the same services as the JSON
// API (openrosa.md): it lists the forms ODK Collect may fetch, serves their
// XForms, and turns a submitted instance into a pushed item of the records
// service, so that it ends as a record, a revision, a conflict entry or a
// quarantine entry exactly like a JSON push. It holds no rule of its own about
// who may do what, what is valid or how conflicts resolve; it only knows XML.
package bridge

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/base64"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"mime"
	"path"
	"strings"
	"time"
	"unicode/utf8"

	"github.com/google/uuid"

	"github.com/fieldsync/fieldsync/internal/domain"
	"github.com/fieldsync/fieldsync/internal/forms"
	"github.com/fieldsync/fieldsync/internal/openrosa"
	"github.com/fieldsync/fieldsync/internal/records"
	"github.com/fieldsync/fieldsync/internal/syncer"
)

// Store is what the bridge needs of the storage contract.
type Store interface {
	domain.OpenRosaStore
	GetFormVersion(ctx context.Context, projectID, formID, version string) (domain.FormVersion, error)
	PutQuarantine(ctx context.Context, item domain.QuarantineItem) (domain.QuarantineItem, error)
}

// AttachmentSink keeps the files that come with a submission (photos,
// recordings), before the submission is pushed, so that no file a tablet sent
// is lost whatever becomes of its record.
//
// TODO(lead, issue 14): wire to internal/media once it is merged: its blob
// store should implement this (keeping the bytes and the record's attachment
// metadata), replacing DirSink. Until then DirSink holds the files on the
// server's disk, by project, record and sha256, and every quarantine entry of
// a submission lists its files' names, sizes and sha256.
type AttachmentSink interface {
	// PutAttachment stores one file of record recordID. a.SHA256 and a.Size
	// are computed by the caller from the bytes in body. Storing the same file
	// again is not an error.
	PutAttachment(ctx context.Context, projectID, recordID string, a domain.Attachment, body io.Reader) error
}

// Config wires a Bridge.
type Config struct {
	Store   Store
	Forms   *forms.Service
	Records *records.Service
	Files   AttachmentSink
	Logger  *slog.Logger
	Now     func() time.Time
}

// Bridge is the OpenRosa bridge.
type Bridge struct {
	cfg Config
}

// New makes a Bridge.
func New(cfg Config) *Bridge {
	if cfg.Logger == nil {
		cfg.Logger = slog.Default()
	}
	if cfg.Now == nil {
		cfg.Now = time.Now
	}
	return &Bridge{cfg: cfg}
}

// ListedForm is one entry of the form list.
type ListedForm struct {
	FormID  string
	Name    string
	Version string
	MD5     string
}

// FormList returns the open forms of a project whose current version Collect
// can fill in (no openrosa reasons), optionally only formID.
func (b *Bridge) FormList(ctx context.Context, projectID, formID string) ([]ListedForm, error) {
	list, err := b.cfg.Forms.List(ctx, projectID, true)
	if err != nil {
		return nil, err
	}
	var out []ListedForm
	for _, f := range list {
		if f.State != domain.FormOpen || f.CurrentVersion == "" || (formID != "" && f.ID != formID) {
			continue
		}
		fv, meta, err := b.version(ctx, projectID, f.ID, f.CurrentVersion)
		if errors.Is(err, openrosa.ErrGenerate) {
			// One form the generator fails on must not hide the others.
			b.cfg.Logger.ErrorContext(ctx, "openrosa: no XForm for a published version", "project", projectID, "form", f.ID, "version", f.CurrentVersion, "err", err)
			continue
		}
		if err != nil {
			return nil, err
		}
		if len(meta.Reasons) > 0 {
			continue
		}
		out = append(out, ListedForm{FormID: f.ID, Name: f.Title, Version: fv.Version, MD5: fv.XFormMD5})
	}
	return out, nil
}

// version returns a published version with its XForm (made now for a version
// published before the bridge) and its generator metadata.
func (b *Bridge) version(ctx context.Context, projectID, formID, version string) (domain.FormVersion, openrosa.Meta, error) {
	fv, err := b.cfg.Store.GetFormVersion(ctx, projectID, formID, version)
	if err != nil {
		return domain.FormVersion{}, openrosa.Meta{}, err
	}
	if fv.State != domain.VersionPublished {
		return domain.FormVersion{}, openrosa.Meta{}, domain.ErrNotFound
	}
	if fv, err = b.cfg.Forms.EnsureXForm(ctx, fv); err != nil {
		return domain.FormVersion{}, openrosa.Meta{}, err
	}
	meta, err := openrosa.ParseMeta(fv.OpenRosa)
	if err != nil {
		return domain.FormVersion{}, openrosa.Meta{}, fmt.Errorf("bridge: stored openrosa metadata of %s/%s/%s: %w", projectID, formID, version, err)
	}
	return fv, meta, nil
}

// XForm returns a published version's XForm and its md5 (hex). Returns
// domain.ErrNotFound for an unknown or draft version and for a version Collect
// cannot fill in.
func (b *Bridge) XForm(ctx context.Context, projectID, formID, version string) ([]byte, string, error) {
	fv, meta, err := b.version(ctx, projectID, formID, version)
	if errors.Is(err, openrosa.ErrGenerate) {
		return nil, "", domain.ErrNotFound
	}
	if err != nil {
		return nil, "", err
	}
	if len(meta.Reasons) > 0 || len(fv.XForm) == 0 {
		return nil, "", domain.ErrNotFound
	}
	return fv.XForm, fv.XFormMD5, nil
}

// File is one file part of a submission.
type File struct {
	Name        string
	ContentType string
	Data        []byte
}

// Upload is one POST of a submission.
type Upload struct {
	XML   []byte
	Files []File
	// Incomplete is the *isIncomplete* part: more POSTs of the same XML
	// bring more files.
	Incomplete bool
}

// Outcome is what the bridge answers a submission.
type Outcome struct {
	// HTTPStatus is 201 (stored, or already held), 202 (kept in quarantine),
	// 400 (not an instance), 403 (forbidden).
	HTTPStatus int
	Message    string
	Status     string // the push status, when the submission was pushed
	RecordID   string
}

// envelope is what a quarantine entry of a submission holds: the XML as sent
// (as text, or base64 when it is not UTF-8), the files' metadata, and what
// could be read of it.
type envelope struct {
	OpenRosaXML       string              `json:"openrosa_xml,omitempty"`
	OpenRosaXMLBase64 string              `json:"openrosa_xml_base64,omitempty"`
	Files             []domain.Attachment `json:"files,omitempty"`
	Form              string              `json:"form,omitempty"`
	FormVersion       string              `json:"form_version,omitempty"`
	InstanceID        string              `json:"instance_id,omitempty"`
	DeprecatedID      string              `json:"deprecated_id,omitempty"`
	Data              json.RawMessage     `json:"data,omitempty"`
}

func (b *Bridge) envelope(u Upload, files []domain.Attachment) envelope {
	var e envelope
	if utf8.Valid(u.XML) {
		e.OpenRosaXML = string(u.XML)
	} else {
		e.OpenRosaXMLBase64 = base64.StdEncoding.EncodeToString(u.XML)
	}
	e.Files = files
	return e
}

// Submit takes one POST of a submission (openrosa.md §4).
func (b *Bridge) Submit(ctx context.Context, c records.Caller, projectID string, u Upload) (Outcome, error) {
	if len(u.XML) == 0 {
		return Outcome{HTTPStatus: 400, Message: "The submission has no xml_submission_file part."}, nil
	}
	inst, perr := openrosa.ParseInstance(u.XML)
	recordID := ""
	if perr == nil && inst.InstanceID != "" {
		recordID = inst.InstanceID
		if inst.DeprecatedID != "" {
			// An edit's files belong to the record it edits.
			if base, err := b.cfg.Store.GetOpenRosaInstance(ctx, projectID, inst.DeprecatedID); err == nil {
				recordID = base.RecordID
			}
		}
	}
	// The files first: whatever becomes of the instance, they are kept.
	atts, err := b.keepFiles(ctx, projectID, recordIDOr(recordID, u.XML), u.Files)
	if err != nil {
		return Outcome{}, err
	}
	env := b.envelope(u, atts)
	if perr != nil {
		// Collect keeps a submission answered 400; the server keeps it too,
		// so a person can find it and learn why.
		if err := b.quarantine(ctx, c, projectID, env, "", domain.Finding{Path: "/openrosa_xml", Keyword: "xml", Message: perr.Error()}); err != nil {
			return Outcome{}, err
		}
		return Outcome{HTTPStatus: 400, Message: "The submission is not a readable XML instance: " + perr.Error()}, nil
	}
	env.Form, env.FormVersion, env.InstanceID, env.DeprecatedID = inst.FormID, inst.Version, inst.InstanceID, inst.DeprecatedID
	reject := func(keyword, msg string) (Outcome, error) {
		if err := b.quarantine(ctx, c, projectID, env, recordID, domain.Finding{Path: "/openrosa_xml", Keyword: keyword, Message: msg}); err != nil {
			return Outcome{}, err
		}
		return Outcome{HTTPStatus: 202, Status: records.StatusRejected, Message: msg, RecordID: recordID}, nil
	}
	if inst.InstanceID == "" {
		return reject("required", "The submission has no meta/instanceID: it was kept for review.")
	}
	_, meta, err := b.version(ctx, projectID, inst.FormID, inst.Version)
	switch {
	case errors.Is(err, domain.ErrNotFound) || errors.Is(err, openrosa.ErrGenerate):
		return reject("unknown_form", fmt.Sprintf("Form %q version %q is not published in this project: the submission was kept for review.", inst.FormID, inst.Version))
	case err != nil:
		return Outcome{}, err
	}
	dec := meta.Decode(inst)
	env.Data = dec.Data
	sum := sha256.Sum256(u.XML)
	xmlHash := hex.EncodeToString(sum[:])

	held, err := b.cfg.Store.GetOpenRosaInstance(ctx, projectID, inst.InstanceID)
	switch {
	case err == nil && held.XMLHash == xmlHash:
		// A resend, or the next part of a split submission: its files are
		// kept above; the record is as it was.
		return Outcome{HTTPStatus: 201, Status: records.StatusUnchanged, RecordID: held.RecordID, Message: "Already received."}, nil
	case err == nil:
		return reject("instance_id_reused", fmt.Sprintf("Another submission with instance id %s was received before, with other answers: this one was kept for review.", inst.InstanceID))
	case !errors.Is(err, domain.ErrNotFound):
		return Outcome{}, err
	}

	sub := records.Submission{ID: inst.InstanceID, Form: inst.FormID, FormVersion: inst.Version, ClientModifiedAt: inst.TimeEnd, Data: dec.Data}
	if inst.DeprecatedID != "" {
		base, err := b.cfg.Store.GetOpenRosaInstance(ctx, projectID, inst.DeprecatedID)
		switch {
		case errors.Is(err, domain.ErrNotFound):
			return reject("unknown_deprecated_id", fmt.Sprintf("This edit replaces instance %s, which the server never stored: it was kept for review.", inst.DeprecatedID))
		case err != nil:
			return Outcome{}, err
		}
		sub.ID, sub.BaseRev = base.RecordID, &base.Rev
	}
	sub.Attachments = declaredFiles(dec.Files, atts)
	sub.LaterFiles = true // files named by the XML may come in a later part
	env.Files = atts
	raw, err := json.Marshal(env)
	if err != nil {
		return Outcome{}, err
	}
	results, err := b.cfg.Records.PushRaw(ctx, c, projectID, []json.RawMessage{raw}, func(json.RawMessage) (records.Submission, []domain.Finding) {
		s := sub
		s.Raw = raw
		if len(dec.Findings) > 0 {
			return s, dec.Findings
		}
		return s, nil
	})
	if err != nil {
		return Outcome{}, err
	}
	res := results[0]
	out := Outcome{Status: res.Status, RecordID: sub.ID}
	switch res.Status {
	case records.StatusCreated, records.StatusUpdated, records.StatusMerged, records.StatusUnchanged, records.StatusConflict:
		parent := ""
		if sub.BaseRev != nil {
			parent = *sub.BaseRev
		}
		rev, err := syncer.NewRev(parent, dec.Data, false)
		if err != nil {
			return Outcome{}, err
		}
		if _, _, err := b.cfg.Store.PutOpenRosaInstance(ctx, domain.OpenRosaInstance{ProjectID: projectID, InstanceID: inst.InstanceID,
			RecordID: sub.ID, Rev: rev, XMLHash: xmlHash, CreatedAt: b.cfg.Now().UTC().Truncate(time.Millisecond)}); err != nil {
			return Outcome{}, err
		}
		out.HTTPStatus = 201
		switch res.Status {
		case records.StatusConflict:
			out.Message = "Received. It clashes with another edit of this record and awaits review."
		case records.StatusMerged:
			out.Message = "Received and merged with other edits of this record."
		default:
			out.Message = "Received."
		}
	case records.StatusForbidden:
		out.HTTPStatus = 403
		out.Message = "This record belongs to someone else: the edit was kept for a manager."
	default:
		out.HTTPStatus = 202
		out.Message = "Kept for review: " + firstMessage(res.Errors)
	}
	return out, nil
}

func firstMessage(f []domain.Finding) string {
	if len(f) == 0 {
		return "the submission was not accepted."
	}
	m := f[0].Message
	if f[0].Path != "" {
		m = f[0].Path + ": " + m
	}
	return m
}

// recordIDOr names the folder of files whose instance is unreadable: by the
// XML's hash, so resends land together.
func recordIDOr(id string, xml []byte) string {
	if _, err := uuid.Parse(id); err == nil && len(id) == 36 {
		return strings.ToLower(id)
	}
	sum := sha256.Sum256(xml)
	return "unread-" + hex.EncodeToString(sum[:8])
}

// keepFiles hands every file part to the sink and returns their metadata.
func (b *Bridge) keepFiles(ctx context.Context, projectID, recordID string, files []File) ([]domain.Attachment, error) {
	var out []domain.Attachment
	for _, f := range files {
		sum := sha256.Sum256(f.Data)
		a := domain.Attachment{Name: f.Name, SHA256: hex.EncodeToString(sum[:]), Size: int64(len(f.Data)), ContentType: contentType(f)}
		if b.cfg.Files == nil {
			return nil, errors.New("bridge: no attachment sink configured")
		}
		if err := b.cfg.Files.PutAttachment(ctx, projectID, recordID, a, bytes.NewReader(f.Data)); err != nil {
			return nil, err
		}
		out = append(out, a)
	}
	return out, nil
}

func contentType(f File) string {
	if mt, _, err := mime.ParseMediaType(f.ContentType); err == nil && mt != "application/octet-stream" {
		return mt
	}
	if t := mime.TypeByExtension(path.Ext(f.Name)); t != "" {
		mt, _, _ := mime.ParseMediaType(t)
		return mt
	}
	return "application/octet-stream"
}

// declaredFiles are the record's attachments: every binary answer, with the
// size and hash of its part when the part came in this POST (a later part of a
// split submission comes with the same XML and goes to the sink only).
func declaredFiles(names []string, parts []domain.Attachment) []domain.Attachment {
	byName := map[string]domain.Attachment{}
	for _, a := range parts {
		byName[a.Name] = a
	}
	var out []domain.Attachment
	seen := map[string]bool{}
	for _, n := range names {
		if n == "" || seen[n] {
			continue
		}
		seen[n] = true
		if a, ok := byName[n]; ok {
			out = append(out, a)
		} else {
			out = append(out, domain.Attachment{Name: n})
		}
	}
	return out
}

// quarantine keeps a submission that cannot be pushed.
func (b *Bridge) quarantine(ctx context.Context, c records.Caller, projectID string, env envelope, recordID string, f domain.Finding) error {
	raw, err := json.Marshal(env)
	if err != nil {
		return err
	}
	sum := sha256.Sum256(raw)
	_, err = b.cfg.Store.PutQuarantine(ctx, domain.QuarantineItem{
		ProjectID: projectID, ID: hex.EncodeToString(sum[:]), RecordID: recordID,
		FormID: env.Form, FormVersion: env.FormVersion, Submission: raw,
		Errors: []domain.Finding{f}, SubmittedBy: c.Principal.Subject, DeviceID: c.Principal.DeviceID,
		LastSeen: b.cfg.Now().UTC().Truncate(time.Millisecond), Reason: domain.QuarantineRejected,
	})
	return err
}
