package forms

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"sync"
	"sync/atomic"
	"time"

	"github.com/fieldsync/fieldsync/internal/audit"
	"github.com/fieldsync/fieldsync/internal/domain"
	"github.com/fieldsync/fieldsync/internal/openrosa"
)

// ServiceConfig wires a Service.
type ServiceConfig struct {
	Store domain.FormStore
	// Cache is shared by every request; nil makes a new one.
	Cache *Cache
	Now   func() time.Time
	// NoFastPath makes the definitions Lookup hands out validate every record
	// with the library alone, never the fast path (fast.go). The verdicts and
	// findings are the same either way; it is the operator's way around a
	// suspected fast-path bug without a new release, at the fast path's
	// speed-up (FIELDSYNC_VALIDATION_FAST_PATH=off).
	NoFastPath bool
	// Audit receives the form events (audit.FormPublished, FormClosed,
	// FormReopened); nil writes none, for tests that do not look at them.
	Audit audit.Appender
	// Logger reports an audit event that could not be written; nil means
	// slog.Default().
	Logger *slog.Logger
}

// Service publishes form definitions (protocol.md §2): drafts that can be
// replaced, published versions that never change, closing a form, and the form
// list. It also finds a published version's compiled schema for the sync
// service, compiling each version at most once per process.
type Service struct {
	store  domain.FormStore
	cache  *Cache
	now    func() time.Time
	noFast bool
	audit  audit.Appender
	log    *slog.Logger

	// published caches published versions by project/form/version: they are
	// immutable, so an entry is never stale. Push looks a version up per batch.
	published sync.Map // versionKey → domain.FormVersion (with Definition, for Cache.Get)

	// forms caches the forms Lookup reads, for at most FormStateTTL, so that
	// a push does not read its form (and all its versions) from the store for
	// its open/closed state. formGen counts this instance's changes of forms
	// (close, reopen, upload, publish): an entry read before the latest change
	// is not used, so here a change is seen at once; FormStateTTL bounds how
	// long another instance's change takes to be seen.
	forms   sync.Map // [2]string{project, form} → cachedForm
	formGen atomic.Uint64
}

// FormStateTTL bounds how long a form read by Lookup is reused: a form closed
// on another instance (another server on the same MongoDB database, another
// process on the same SQLite file) refuses new records there within this
// time; on the instance that closed it, at once. It is the same kind of
// window as a push that read the form just before the close and commits just
// after it, only longer; one second keeps it short for a person closing a
// form and takes the form read off almost every push under load.
const FormStateTTL = time.Second

type cachedForm struct {
	form  domain.Form
	gen   uint64
	until time.Time
}

// form returns the form, from s.forms when it was read less than FormStateTTL
// ago and not changed on this instance since.
func (s *Service) form(ctx context.Context, projectID, formID string) (domain.Form, error) {
	key := [2]string{projectID, formID}
	now := s.now()
	gen := s.formGen.Load()
	if v, ok := s.forms.Load(key); ok {
		if e := v.(cachedForm); e.gen == gen && now.Before(e.until) {
			return e.form, nil
		}
	}
	f, err := s.store.GetForm(ctx, projectID, formID)
	if err != nil {
		return domain.Form{}, err
	}
	s.forms.Store(key, cachedForm{form: f, gen: gen, until: now.Add(FormStateTTL)})
	return f, nil
}

// changed makes this instance's cached forms stale; called after every change
// of a form is stored, so that a Lookup that starts later reads it.
func (s *Service) changed() { s.formGen.Add(1) }

type versionKey struct{ project, form, version string }

// NewService makes a Service.
func NewService(cfg ServiceConfig) *Service {
	s := &Service{store: cfg.Store, cache: cfg.Cache, now: cfg.Now, noFast: cfg.NoFastPath, audit: cfg.Audit, log: cfg.Logger}
	if s.cache == nil {
		s.cache = NewCache()
	}
	if s.now == nil {
		s.now = time.Now
	}
	return s
}

func (s *Service) clock() time.Time { return s.now().UTC().Truncate(time.Millisecond) }

func checkIDs(formID, version string) error {
	var f []domain.Finding
	if !ValidFormID(formID) {
		f = append(f, domain.Finding{Path: "/form", Keyword: "pattern", Message: "a form id is 1 to 64 of a-z, 0-9, _ and -, starting with a letter or digit"})
	}
	if version != "" && !ValidVersion(version) {
		f = append(f, domain.Finding{Path: "/version", Keyword: "pattern", Message: "a version is 1 to 32 of A-Z, a-z, 0-9, ., _ and -, starting with a letter or digit"})
	}
	if f != nil {
		return domain.Invalid("invalid_id", "The form id or version is not valid", f)
	}
	return nil
}

func formNotFound(formID string) error {
	return &domain.Error{Kind: domain.KindNotFound, Code: "form_not_found", Title: "No such form in this project", Detail: fmt.Sprintf("form %q", formID)}
}

func versionNotFound(formID, version string) error {
	return &domain.Error{Kind: domain.KindNotFound, Code: "version_not_found", Title: "No such form version", Detail: fmt.Sprintf("form %q version %q", formID, version)}
}

func versionPublished(cause error) error {
	return &domain.Error{Kind: domain.KindConflict, Code: "version_published",
		Title: "This version is published and can no longer change", Detail: "upload the change as a new version", Err: cause}
}

// notFound tells an unknown form (form_not_found) from an unknown version of a
// known form (version_not_found). With publishedOnly a form without a
// published version is unknown, so an enumerator learns nothing of drafts.
func (s *Service) notFound(ctx context.Context, projectID, formID, version string, publishedOnly bool) error {
	f, err := s.store.GetForm(ctx, projectID, formID)
	switch {
	case errors.Is(err, domain.ErrNotFound):
		return formNotFound(formID)
	case err != nil:
		return err
	case publishedOnly && f.CurrentVersion == "":
		return formNotFound(formID)
	}
	return versionNotFound(formID, version)
}

// PutVersion checks, compiles and stores a draft. created is false when an
// existing draft was replaced. Returns invalid_id (422) for a malformed form id
// or version; version_published (409) when that version is published,
// whatever raw holds (published versions are immutable); otherwise the errors
// of ParseDefinition.
func (s *Service) PutVersion(ctx context.Context, projectID, formID, version string, raw []byte) (domain.FormVersion, bool, error) {
	if err := checkIDs(formID, version); err != nil {
		return domain.FormVersion{}, false, err
	}
	// A published version answers 409 whatever the body holds: the designer's
	// fix is a new version, not a repaired definition, and a broken upload
	// must not cost a schema compilation. The store checks again atomically.
	switch cur, err := s.store.GetFormVersion(ctx, projectID, formID, version); {
	case err == nil && cur.State == domain.VersionPublished:
		return domain.FormVersion{}, false, versionPublished(nil)
	case err != nil && !errors.Is(err, domain.ErrNotFound):
		return domain.FormVersion{}, false, err
	}
	def, err := ParseDefinition(raw)
	if err != nil {
		return domain.FormVersion{}, false, err
	}
	s.cache.Add(def)
	now := s.clock()
	fv := domain.FormVersion{
		ProjectID: projectID, FormID: formID, Version: version, State: domain.VersionDraft,
		Hash: def.Hash, Title: def.Title, Policy: def.Policy, Shared: def.Shared,
		Definition: def.Source, CreatedAt: now, UpdatedAt: now,
	}
	created, err := s.store.PutFormVersion(ctx, fv)
	s.changed()
	if errors.Is(err, domain.ErrStale) {
		return domain.FormVersion{}, false, versionPublished(err)
	}
	if err != nil {
		return domain.FormVersion{}, false, err
	}
	return fv, created, nil
}

// Publish makes a draft the form's current version. Publishing a published
// version answers it unchanged. Returns invalid_id (422), form_not_found or
// version_not_found (404).
func (s *Service) Publish(ctx context.Context, projectID, formID, version string) (domain.FormVersion, error) {
	if err := checkIDs(formID, version); err != nil {
		return domain.FormVersion{}, err
	}
	// Read first, so that only a publication is audited, not a repeat of one.
	before, err := s.store.GetFormVersion(ctx, projectID, formID, version)
	if err != nil && !errors.Is(err, domain.ErrNotFound) {
		return domain.FormVersion{}, err
	}
	fv, err := s.store.PublishFormVersion(ctx, projectID, formID, version, s.clock())
	s.changed()
	if errors.Is(err, domain.ErrNotFound) {
		return domain.FormVersion{}, s.notFound(ctx, projectID, formID, version, false)
	}
	if err != nil {
		return domain.FormVersion{}, err
	}
	if before.State != domain.VersionPublished {
		s.record(ctx, audit.FormPublished, projectID, formID, map[string]string{"version": version, "hash": fv.Hash})
	}
	// The XForm for ODK Collect is made once, here (openrosa.md §3). A form
	// the generator fails on is published all the same (the JSON protocol
	// needs no XForm); the bridge leaves it out of Collect's list.
	out, err := s.EnsureXForm(ctx, fv)
	if errors.Is(err, openrosa.ErrGenerate) {
		return fv, nil
	}
	return out, err
}

// Close stops new records of a form; edits of existing ones still sync. This
// instance refuses new records at once, others within FormStateTTL.
// Closing a closed form answers it unchanged. Returns invalid_id (422) or
// form_not_found (404).
func (s *Service) Close(ctx context.Context, projectID, formID string) (domain.Form, error) {
	if err := checkIDs(formID, ""); err != nil {
		return domain.Form{}, err
	}
	return s.setState(ctx, projectID, formID, domain.FormClosed)
}

// Reopen makes a closed form take new records again. Reopening an open form
// answers it unchanged. Returns invalid_id (422) or form_not_found (404).
func (s *Service) Reopen(ctx context.Context, projectID, formID string) (domain.Form, error) {
	if err := checkIDs(formID, ""); err != nil {
		return domain.Form{}, err
	}
	return s.setState(ctx, projectID, formID, domain.FormOpen)
}

// setState closes or reopens a form and audits the change (not a repeat).
func (s *Service) setState(ctx context.Context, projectID, formID, state string) (domain.Form, error) {
	before, err := s.store.GetForm(ctx, projectID, formID)
	if errors.Is(err, domain.ErrNotFound) {
		return domain.Form{}, formNotFound(formID)
	}
	if err != nil {
		return domain.Form{}, err
	}
	if state == domain.FormClosed {
		err = s.store.CloseForm(ctx, projectID, formID, s.clock())
	} else {
		err = s.store.ReopenForm(ctx, projectID, formID, s.clock())
	}
	s.changed()
	if errors.Is(err, domain.ErrNotFound) {
		return domain.Form{}, formNotFound(formID)
	}
	if err != nil {
		return domain.Form{}, err
	}
	if before.State != state {
		typ := audit.FormClosed
		if state == domain.FormOpen {
			typ = audit.FormReopened
		}
		s.record(ctx, typ, projectID, formID, nil)
	}
	return s.store.GetForm(ctx, projectID, formID)
}

// actorKey carries who acts in a context (WithActor).
type actorKey struct{}

// WithActor returns ctx carrying who calls the service (a username or
// device:<id>) and from where, for the audit events of what the call changes.
// Every door (the JSON API, a console) sets it from its authenticated caller;
// a call without one is audited with an empty actor. The caller travels in
// the context so that the service's methods keep one signature for every
// door and for the tests that only set up forms.
func WithActor(ctx context.Context, actor, remoteAddr string) context.Context {
	return context.WithValue(ctx, actorKey{}, [2]string{actor, remoteAddr})
}

// record appends a form event to the audit log, when the service has one.
func (s *Service) record(ctx context.Context, typ, projectID, formID string, detail map[string]string) {
	if s.audit == nil {
		return
	}
	who, _ := ctx.Value(actorKey{}).([2]string)
	audit.Append(ctx, s.audit, s.log, s.now, domain.AuditEvent{Type: typ, Actor: who[0], RemoteAddr: who[1],
		ProjectID: projectID, Subject: formID, Detail: detail})
}

// List returns the project's forms. With publishedOnly (enumerators) drafts are
// left out, and so are forms with no published version.
func (s *Service) List(ctx context.Context, projectID string, publishedOnly bool) ([]domain.Form, error) {
	all, err := s.store.ListForms(ctx, projectID)
	if err != nil || !publishedOnly {
		return all, err
	}
	out := all[:0:0]
	for _, f := range all {
		vs := f.Versions[:0:0]
		for _, v := range f.Versions {
			if v.State == domain.VersionPublished {
				vs = append(vs, v)
			}
		}
		if len(vs) > 0 {
			f.Versions = vs
			out = append(out, f)
		}
	}
	return out, nil
}

// Version returns one version with its definition. With publishedOnly a draft
// is not found. Returns invalid_id (422) for a malformed form id or version,
// form_not_found or version_not_found (404).
func (s *Service) Version(ctx context.Context, projectID, formID, version string, publishedOnly bool) (domain.FormVersion, error) {
	if err := checkIDs(formID, version); err != nil {
		return domain.FormVersion{}, err
	}
	fv, err := s.store.GetFormVersion(ctx, projectID, formID, version)
	if errors.Is(err, domain.ErrNotFound) || (err == nil && publishedOnly && fv.State != domain.VersionPublished) {
		return domain.FormVersion{}, s.notFound(ctx, projectID, formID, version, publishedOnly)
	}
	return fv, err
}

// Lookup returns a form (for its open/closed state: as changed on this
// instance, or on another at most FormStateTTL ago), one of its versions and
// the version's compiled schema. Returns domain.ErrNotFound for an unknown
// form or version.
func (s *Service) Lookup(ctx context.Context, projectID, formID, version string) (domain.Form, domain.FormVersion, *Definition, error) {
	form, err := s.form(ctx, projectID, formID)
	if err != nil {
		return domain.Form{}, domain.FormVersion{}, nil, err
	}
	key := versionKey{projectID, formID, version}
	var fv domain.FormVersion
	if v, ok := s.published.Load(key); ok {
		fv = v.(domain.FormVersion)
	} else {
		fv, err = s.store.GetFormVersion(ctx, projectID, formID, version)
		if err != nil {
			return domain.Form{}, domain.FormVersion{}, nil, err
		}
		if fv.State == domain.VersionPublished {
			s.published.Store(key, fv)
		}
	}
	def, err := s.cache.Get(fv.Hash, fv.Definition)
	if err != nil {
		return domain.Form{}, domain.FormVersion{}, nil, fmt.Errorf("compile stored form %s/%s/%s: %w", projectID, formID, version, err)
	}
	if s.noFast && def.fast != nil {
		// A copy: the cached definition may be shared with other services.
		slow := *def
		slow.fast = nil
		def = &slow
	}
	return form, fv, def, nil
}
