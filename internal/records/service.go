package records

import (
	"bytes"
	"cmp"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"runtime"
	"sync"
	"sync/atomic"
	"time"

	"github.com/google/uuid"

	"github.com/fieldsync/fieldsync/internal/audit"
	"github.com/fieldsync/fieldsync/internal/domain"
	"github.com/fieldsync/fieldsync/internal/forms"
	"github.com/fieldsync/fieldsync/internal/syncer"
)

// Push statuses of protocol.md §3.
const (
	StatusCreated   = "created"
	StatusUpdated   = "updated"
	StatusUnchanged = "unchanged"
	StatusMerged    = "merged"
	StatusConflict  = "conflict"
	StatusRejected  = "rejected"
	StatusForbidden = "forbidden"
)

// Limits of one push.
const (
	MaxPushItems = 1000
	MaxPullLimit = 1000
	// DefaultPullLimit is the page size when the client names none.
	DefaultPullLimit = 100
	// maxAttempts bounds the retries of an item whose record moved on between
	// reading and writing it (a concurrent writer on another instance).
	maxAttempts = 8
)

// Validator checks a record's data against a compiled form schema.
type Validator interface {
	// ValidateJSON returns every finding (JSON pointers relative to the data);
	// none when the data is valid.
	ValidateJSON(data []byte) []domain.Finding
}

// FormVersion is what a push needs of one form version.
type FormVersion struct {
	Form      domain.Form
	Version   domain.FormVersion
	Validator Validator
}

// Forms finds form versions and their compiled schemas.
type Forms interface {
	// LookupVersion returns the form, the version and its compiled schema.
	// Returns domain.ErrNotFound for an unknown form or version.
	LookupVersion(ctx context.Context, projectID, formID, version string) (FormVersion, error)
}

// Store is what the sync service needs of the storage contract: the records
// with their history and changes feed, the quarantine of rejected items, and
// the forms (only to tell a pull of an unknown form). Both backends' full
// domain.Store satisfies it; a narrow interface says what the service
// touches, and lets a test wrap just these methods.
type Store interface {
	domain.RecordStore
	domain.QuarantineStore
	// The decisions on quarantine entries (re-apply, dismiss) and the audit
	// log they are written to (issue 11).
	domain.QuarantineDecisionStore
	audit.Appender
	// DatasetStore pages through one form's records (dataset.go).
	domain.DatasetStore
	// GetForm is domain.FormStore's: ErrNotFound for an unknown form.
	GetForm(ctx context.Context, projectID, formID string) (domain.Form, error)
	// GetMembership and GetDevice check assignees (ErrNotFound for none).
	GetMembership(ctx context.Context, projectID, username string) (domain.Membership, error)
	GetDevice(ctx context.Context, id string) (domain.Device, error)
	// ListDevices names the tablets of the records a page shows a person.
	ListDevices(ctx context.Context, projectID string) ([]domain.Device, error)
	// ReviewStore keeps the review threads (comments, review-state changes).
	domain.ReviewStore
	// AppendAudit is domain.AuditStore's: data events (corrections,
	// resolutions, reviews, deletions) go to the audit log.
	AppendAudit(ctx context.Context, e domain.AuditEvent) (domain.AuditEvent, error)
	// ListAttachmentLinks is domain.AttachmentStore's: which declared files
	// are held (missing_attachments, present).
	ListAttachmentLinks(ctx context.Context, projectID string, recordIDs []string) (map[string][]domain.AttachmentLink, error)
}

// Every backend's store is a records Store.
var _ Store = domain.Store(nil)

// Config wires a Service.
type Config struct {
	Store  Store
	Forms  Forms
	Logger *slog.Logger
	Now    func() time.Time
	// ValidationBudget bounds the time one push spends validating its items;
	// the items not validated by then are rejected (and quarantined) with a
	// finding that asks for them again. 0 means DefaultValidationBudget.
	ValidationBudget time.Duration
}

// DefaultValidationBudget is Config.ValidationBudget when unset. A push of a
// thousand ordinary interviews validates in a fraction of a second; only a
// form built to be slow, or items built to be slow against it, come near.
const DefaultValidationBudget = 10 * time.Second

// Service is the sync service.
type Service struct {
	store   Store
	forms   Forms
	log     *slog.Logger
	now     func() time.Time
	workers int
	locks   recordLocks
	budget  time.Duration
}

// New makes a Service.
func New(cfg Config) *Service {
	s := &Service{store: cfg.Store, forms: cfg.Forms, log: cfg.Logger, now: cfg.Now, workers: runtime.GOMAXPROCS(0), budget: cfg.ValidationBudget}
	if s.budget <= 0 {
		s.budget = DefaultValidationBudget
	}
	if s.log == nil {
		s.log = slog.Default()
	}
	if s.now == nil {
		s.now = time.Now
	}
	return s
}

func (s *Service) clock() time.Time { return s.now().UTC().Truncate(time.Millisecond) }

// Caller is who pushes or pulls and in which role.
type Caller struct {
	Principal domain.Principal
	Role      domain.Role // the caller's role in the project ("" for a global admin who is not a member)
	// RemoteAddr is the client's address, for the audit log ("" when unknown).
	RemoteAddr string
}

// subjects are the names a record can carry in created_by or assigned_to for
// this caller; nil when the caller sees every record of the project.
func (c Caller) subjects() []string {
	if c.Role != domain.RoleEnumerator || c.Principal.Admin {
		return nil
	}
	return []string{c.Principal.Subject}
}

// canSee reports whether the caller may see (and so write) the record.
func (c Caller) canSee(r domain.Record) bool {
	subs := c.subjects()
	if subs == nil || r.Shared {
		return true
	}
	for _, sub := range subs {
		if r.CreatedBy == sub {
			return true
		}
		for _, a := range r.AssignedTo {
			if a == sub {
				return true
			}
		}
	}
	return false
}

// Submission is one pushed item.
type Submission struct {
	ID          string
	Form        string
	FormVersion string
	// BaseRev is the revision the edit was made from; nil (or "") for a new
	// record. A BaseRev naming a record the server does not hold creates the
	// record, with BaseRev as the parent of its first revision: the device's
	// record was lost here (a restored backup) or its creation never arrived,
	// and keeping the device's lineage lets its next edits apply as updates.
	BaseRev *string
	// ClientModifiedAt is when the device saved the edit; the zero time (the
	// client sent none) counts as the time of the push.
	ClientModifiedAt time.Time
	Deleted          bool
	Data             json.RawMessage
	Attachments      []domain.Attachment
	// LaterFiles lets declarations leave sha256 and size out: the files of
	// an ODK Collect submission that come in a later part of a split upload
	// (*isIncomplete*), which the bridge stores and links as they arrive.
	// The JSON protocol never sets it.
	LaterFiles bool
	// Raw is the item as the client sent it, kept in quarantine when rejected.
	Raw json.RawMessage
}

// Result is the outcome of one pushed item.
type Result struct {
	ID                 string
	Status             string
	Rev                string
	Errors             []domain.Finding // rejected, forbidden, or a conflict whose merge the form refused
	Current            *domain.Record   // for merged and conflict
	MissingAttachments []string
}

// item is a submission on its way through a push.
type item struct {
	idx        int
	raw        json.RawMessage // the item as sent, when decode is set
	decode     Decoder         // decodes raw into sub in the pipeline; nil when sub is decoded
	sub        Submission
	canonical  []byte // canonical data
	rev        string // the revision of the edit: NewRev(base, canonical, deleted)
	fv         *FormVersion
	res        Result
	done       bool
	quarantine bool
	reason     string // of the quarantine entry: domain.QuarantineRejected when ""
	applied    bool   // its write was stored
	tombstone  bool   // the write stored a new revision that is a tombstone
	// flaggedFrom is the review state the write replaced when it flagged the
	// record (flagClock), with flagNote saying why; "" when it did not.
	flaggedFrom, flagNote string
}

// Push applies an outbox. One item's failure never fails the others: each ends
// created, updated, unchanged, merged, conflict (kept on the record), rejected
// (kept in quarantine) or forbidden. A non-nil error means the store failed and
// nothing of the batch is acknowledged; a retry of the same batch is safe.
func (s *Service) Push(ctx context.Context, c Caller, projectID string, subs []Submission) ([]Result, error) {
	if len(subs) > MaxPushItems {
		return nil, tooManyItems(len(subs))
	}
	items := make([]*item, len(subs))
	for i := range subs {
		items[i] = &item{idx: i, sub: subs[i], res: Result{ID: subs[i].ID}}
	}
	return s.push(ctx, c, projectID, items)
}

// Decoder decodes one pushed item as the client sent it. An item that cannot
// be decoded comes back with findings, and with whatever of its id, form and
// version could be read, so that its quarantine entry is findable.
type Decoder func(raw json.RawMessage) (Submission, []domain.Finding)

// PushRaw is Push for items still as the client sent them: decode turns each
// into a Submission inside the push's pipeline, on every core and while the
// store writes the items before it, instead of before the push begins.
func (s *Service) PushRaw(ctx context.Context, c Caller, projectID string, raws []json.RawMessage, decode Decoder) ([]Result, error) {
	if len(raws) > MaxPushItems {
		return nil, tooManyItems(len(raws))
	}
	items := make([]*item, len(raws))
	for i, raw := range raws {
		items[i] = &item{idx: i, raw: raw, decode: decode}
	}
	return s.push(ctx, c, projectID, items)
}

func tooManyItems(n int) error {
	return &domain.Error{Kind: domain.KindTooLarge, Code: "too_many_items",
		Title: fmt.Sprintf("A push holds at most %d items", MaxPushItems), Detail: fmt.Sprintf("this one holds %d; send the rest in another push", n)}
}

// rejectUndecodable rejects an item that could not be decoded, with findings.
func (it *item) rejectUndecodable(f []domain.Finding) {
	// Keep the record id findable in quarantine in its one spelling.
	if u, err := uuid.Parse(it.sub.ID); err == nil && len(it.sub.ID) == 36 {
		it.sub.ID = u.String()
	}
	it.res.ID = it.sub.ID
	it.reject(f...)
}

func (s *Service) push(ctx context.Context, c Caller, projectID string, items []*item) ([]Result, error) {
	now := s.clock()
	if err := s.applyItems(ctx, c, projectID, items, now); err != nil {
		return nil, err
	}
	if err := s.keepRejected(ctx, c, projectID, items, now); err != nil {
		return nil, err
	}
	out := make([]Result, len(items))
	for i, it := range items {
		out[i] = it.res
	}
	return out, nil
}

// applyItems is a push without its last step: it applies the items and
// resolves the quarantine entries of the records it wrote, and leaves the
// items it refused to the caller (a push keeps them in the quarantine; a
// re-apply settles the entry it came from).
func (s *Service) applyItems(ctx context.Context, c Caller, projectID string, items []*item, now time.Time) error {
	if err := s.apply(ctx, c, projectID, items, now); err != nil {
		return err
	}
	// Quarantine entries of the records this push wrote are resolved before the
	// items it rejected are kept: a batch that stores record X and also holds a
	// bad item for X must leave that bad item listed, not resolve it at once.
	var written []string
	for _, it := range items {
		switch it.res.Status {
		case StatusCreated, StatusUpdated, StatusMerged, StatusConflict:
			written = append(written, it.sub.ID)
		}
	}
	if len(written) > 0 {
		if err := s.store.ResolveQuarantine(ctx, projectID, written, now); err != nil {
			return err
		}
	}
	s.pushAudited(ctx, c, projectID, items, now)
	return s.fillMissing(ctx, projectID, items)
}

// reject marks an item rejected with findings; it goes to quarantine.
func (it *item) reject(findings ...domain.Finding) {
	it.res.Status = StatusRejected
	it.res.Errors = capFindings(findings)
	it.done = true
	it.quarantine = true
}

// formCache looks up each form version a push names once, for every worker.
type formCache struct {
	s         *Service
	projectID string
	// deadline ends the push's validation budget (real time, not the
	// injectable clock: it bounds CPU).
	deadline time.Time
	mu       sync.Mutex
	fvs      map[[2]string]*FormVersion // nil value: not known in the project
}

// lookup returns the form version, nil when the project does not know it, or
// the store's failure.
func (fc *formCache) lookup(ctx context.Context, form, version string) (*FormVersion, error) {
	fc.mu.Lock()
	defer fc.mu.Unlock()
	k := [2]string{form, version}
	if fv, seen := fc.fvs[k]; seen {
		return fv, nil
	}
	fv, err := fc.s.forms.LookupVersion(ctx, fc.projectID, form, version)
	switch {
	case err == nil:
		fc.fvs[k] = &fv
		return &fv, nil
	case errors.Is(err, domain.ErrNotFound):
		fc.fvs[k] = nil
		return nil, nil
	default:
		return nil, err
	}
}

// prepare decodes an item (when it came raw), checks its shape and form,
// canonicalises and validates its data, and hashes its revision; an item
// that fails is rejected. The error is the store's failure (looking up the
// form), which fails the push.
func (fc *formCache) prepare(ctx context.Context, it *item, now time.Time) error {
	if it.decode != nil {
		sub, f := it.decode(it.raw)
		it.sub, it.res.ID = sub, sub.ID
		if f != nil {
			it.rejectUndecodable(f)
			return nil
		}
	}
	sub := &it.sub
	if sub.ClientModifiedAt.IsZero() {
		// Without the device's clock the push's arrival is the best
		// estimate of when the edit was made.
		sub.ClientModifiedAt = now
	}
	if f := checkShape(sub); f != nil {
		it.reject(f...)
		return nil
	}
	fv, err := fc.lookup(ctx, sub.Form, sub.FormVersion)
	switch {
	case err != nil:
		return err
	case fv == nil:
		it.reject(domain.Finding{Path: "/form_version", Keyword: "unknown_form", Message: fmt.Sprintf("form %q version %q is not known in this project", sub.Form, sub.FormVersion)})
		return nil
	case fv.Version.State != domain.VersionPublished:
		it.reject(domain.Finding{Path: "/form_version", Keyword: "unpublished", Message: fmt.Sprintf("form %q version %q is not published", sub.Form, sub.FormVersion)})
		return nil
	}
	it.fv = fv
	if time.Now().After(fc.deadline) {
		// Kept, not dropped: the device, or an analyst from the quarantine,
		// sends it again.
		it.reject(domain.Finding{Path: "/data", Keyword: "timeout",
			Message: fmt.Sprintf("not validated: this push used up its %s of validation time; send the item again, in a smaller push", fc.s.budget)})
		return nil
	}
	validate(it)
	return nil
}

// firstChunk and chunkGrowth cut a push into store batches that grow
// geometrically (64, 256, then the rest of a 1000-item push). The store writes
// one chunk while the cores validate the next, and validating an item takes a
// fraction of the time the store takes to write it, so each chunk may be a few
// times larger than the one before and still be ready when the store is: the
// store waits only for the first small chunk, and a push costs three commits,
// not one per small chunk.
const (
	firstChunk  = 64
	chunkGrowth = 4
)

// apply prepares the items (decodes, checks and validates them: prepare) on
// every core and writes them chunk by chunk, in order, each chunk as
// soon as it is prepared. Items naming the same record apply in order: an
// earlier chunk commits before a later one, and inside a chunk the k-th
// occurrence of an id goes in round k, after the earlier rounds committed.
func (s *Service) apply(ctx context.Context, c Caller, projectID string, items []*item, now time.Time) error {
	var chunks []*chunk
	size := firstChunk
	for lo := 0; lo < len(items); lo, size = lo+size, size*chunkGrowth {
		ch := &chunk{items: items[lo:min(lo+size, len(items))], ready: make(chan struct{})}
		ch.pending.Store(int64(len(ch.items)))
		chunks = append(chunks, ch)
	}
	type job struct {
		it *item
		ch *chunk
	}
	jobs := make(chan job, len(items))
	for _, ch := range chunks {
		for _, it := range ch.items {
			jobs <- job{it, ch}
		}
	}
	close(jobs)
	fc := &formCache{s: s, projectID: projectID, fvs: map[[2]string]*FormVersion{}, deadline: time.Now().Add(s.budget)}
	var (
		stop    atomic.Bool // set when the writer gives up: skip the rest
		failMu  sync.Mutex
		failure error // a store failure in prepare
		wg      sync.WaitGroup
	)
	// Every core prepares, and a worker yields after each item: the writer
	// (this goroutine) must get a core the moment a chunk is ready. Without
	// the yield, Go's scheduler would leave it waiting until it preempts a
	// worker, about 10 ms later.
	for range s.workers {
		wg.Go(func() {
			for j := range jobs {
				if !stop.Load() {
					if err := fc.prepare(ctx, j.it, now); err != nil {
						failMu.Lock()
						failure = cmp.Or(failure, err)
						failMu.Unlock()
						stop.Store(true)
					}
				}
				if j.ch.pending.Add(-1) == 0 {
					close(j.ch.ready)
				}
				runtime.Gosched()
			}
		})
	}
	defer func() {
		stop.Store(true)
		wg.Wait()
	}()
	// The records of each chunk are read as soon as it is prepared, while the
	// store still writes the chunk before (SQLite readers do not wait for its
	// writer). A record that changes in between (an earlier chunk of this
	// push, another instance) makes the conditional write fail, and applyRound
	// reads it again.
	for _, ch := range chunks {
		ch.ahead = s.readAhead(ctx, projectID, ch)
	}
	for _, ch := range chunks {
		select {
		case <-ch.ready:
		case <-ctx.Done():
			return ctx.Err()
		}
		ahead := <-ch.ahead
		if stop.Load() {
			failMu.Lock()
			err := failure
			failMu.Unlock()
			if err != nil {
				return err
			}
		}
		for r, round := range rounds(ch.items) {
			var known map[string]domain.Record
			if r == 0 && ahead.err == nil {
				known = ahead.records
			}
			if err := s.applyRound(ctx, c, projectID, round, known, now); err != nil {
				return err
			}
		}
	}
	return nil
}

// readAhead is the current state of the records that items name, read in the
// background.
type readAhead struct {
	records map[string]domain.Record
	err     error // the round then reads for itself
}

// chunk is a run of a push's items that the store writes in one batch.
type chunk struct {
	items   []*item
	pending atomic.Int64  // items still being prepared
	ready   chan struct{} // closed when every item is prepared
	ahead   <-chan readAhead
}

// readAhead reads, once the chunk is prepared, the records its live items
// name; the channel yields them once.
func (s *Service) readAhead(ctx context.Context, projectID string, ch *chunk) <-chan readAhead {
	out := make(chan readAhead, 1)
	go func() {
		<-ch.ready
		ids := make([]string, 0, len(ch.items))
		for _, it := range ch.items {
			if !it.done {
				ids = append(ids, it.sub.ID)
			}
		}
		recs, err := s.store.GetRecords(ctx, projectID, ids)
		out <- readAhead{recs, err}
	}()
	return out
}

// validate canonicalises and validates an item's data and hashes its
// revision; it rejects the item when the data does not fit.
func validate(it *item) {
	data := it.sub.Data
	if it.sub.Deleted {
		// A tombstone needs no data: absent and null both mean {}.
		if t := bytes.TrimSpace(data); len(t) == 0 || string(t) == "null" {
			data = json.RawMessage("{}")
		}
	}
	if f := dataTooLarge(data); f != nil {
		// Before canonicalising: a large item costs nothing more than its bytes.
		it.reject(f...)
		return
	}
	canon, err := syncer.Canonical(data)
	if err != nil {
		it.reject(domain.Finding{Path: "/data", Keyword: "json", Message: err.Error()})
		return
	}
	if len(canon) == 0 || canon[0] != '{' {
		it.reject(domain.Finding{Path: "/data", Keyword: "type", Message: "data must be a JSON object"})
		return
	}
	// A tombstone is not checked against the schema: deleting a record must
	// work even when its last data no longer fits a newer version.
	if f := tooManyValues(canon); f != nil {
		it.reject(f...)
		return
	}
	if !it.sub.Deleted {
		if f := it.fv.Validator.ValidateJSON(canon); len(f) > 0 {
			it.reject(dataFindings(f)...)
			return
		}
		it.canonical = canon
		if !checkMedia(it) {
			return
		}
	}
	parent := ""
	if it.sub.BaseRev != nil {
		parent = *it.sub.BaseRev
	}
	rev, err := syncer.NewRevCanonical(parent, canon, it.sub.Deleted)
	if err != nil {
		it.reject(domain.Finding{Path: "/base_rev", Keyword: "format", Message: err.Error()})
		return
	}
	it.canonical, it.rev = canon, rev
}

// checkShape checks what the protocol requires of every item.
func checkShape(sub *Submission) []domain.Finding {
	var f []domain.Finding
	if u, err := uuid.Parse(sub.ID); err != nil || len(sub.ID) != 36 {
		f = append(f, domain.Finding{Path: "/id", Keyword: "format", Message: "id must be a UUID made by the client (like 3f0c5c1e-9a7b-4c1d-8e2f-0a1b2c3d4e5f)"})
	} else {
		sub.ID = u.String() // lower case: one record per UUID whatever the case
	}
	if sub.Form == "" {
		f = append(f, domain.Finding{Path: "/form", Keyword: "required", Message: "form is required"})
	}
	if sub.FormVersion == "" {
		f = append(f, domain.Finding{Path: "/form_version", Keyword: "required", Message: "form_version is required"})
	}
	if !sub.Deleted && len(sub.Data) == 0 {
		f = append(f, domain.Finding{Path: "/data", Keyword: "required", Message: "data is required"})
	}
	f = append(f, checkAttachments(sub.Attachments, sub.LaterFiles)...)
	if sub.BaseRev != nil && *sub.BaseRev == "" {
		// Some collectors send "" for "no base": it means null.
		sub.BaseRev = nil
	}
	if sub.BaseRev != nil {
		if _, _, err := syncer.ParseRev(*sub.BaseRev); err != nil {
			f = append(f, domain.Finding{Path: "/base_rev", Keyword: "format", Message: "base_rev must be null or a revision like 2-9c1f…"})
		}
	}
	return f
}

// rounds groups the live items so that each round names a record at most once,
// keeping the order of the items that name the same record.
func rounds(items []*item) [][]*item {
	var out [][]*item
	seen := map[string]int{}
	for _, it := range items {
		if it.done {
			continue
		}
		k := seen[it.sub.ID]
		seen[it.sub.ID] = k + 1
		if k == len(out) {
			out = append(out, nil)
		}
		out[k] = append(out[k], it)
	}
	return out
}

// quarantineID identifies a distinct rejected item: the same item pushed again is
// one entry with more attempts, not a new entry.
func quarantineID(raw []byte) string {
	canon := raw
	// An item too large to keep whole is hashed as sent: canonicalising
	// megabytes would cost more than a second entry for a resend with other
	// spacing.
	if len(raw) <= MaxQuarantinedBytes {
		if c, err := syncer.Canonical(raw); err == nil {
			canon = c
		}
	}
	h := sha256.Sum256(canon)
	return hex.EncodeToString(h[:16])
}

// keepRejected stores every rejected item in the project's quarantine.
func (s *Service) keepRejected(ctx context.Context, c Caller, projectID string, items []*item, now time.Time) error {
	for _, it := range items {
		if !it.quarantine {
			continue
		}
		raw := it.sub.Raw
		if len(raw) == 0 {
			raw = wireOf(it.sub) // as a client would have sent it, so a re-apply reads it back
		}
		_, err := s.store.PutQuarantine(ctx, domain.QuarantineItem{
			ProjectID:   projectID,
			ID:          quarantineID(raw),
			RecordID:    it.sub.ID,
			FormID:      it.sub.Form,
			FormVersion: it.sub.FormVersion,
			Submission:  quarantinedBody(raw),
			Errors:      it.res.Errors,
			SubmittedBy: c.Principal.Subject,
			DeviceID:    c.Principal.DeviceID,
			LastSeen:    now,
			Reason:      it.reason,
		})
		if err != nil {
			return err
		}
	}
	return nil
}

// FormsOf adapts the forms service to what a push needs.
func FormsOf(fs *forms.Service) Forms { return formsAdapter{fs} }

type formsAdapter struct{ fs *forms.Service }

func (a formsAdapter) LookupVersion(ctx context.Context, projectID, formID, version string) (FormVersion, error) {
	f, v, def, err := a.fs.Lookup(ctx, projectID, formID, version)
	if err != nil {
		return FormVersion{}, err
	}
	return FormVersion{Form: f, Version: v, Validator: def}, nil
}
