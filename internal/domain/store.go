package domain

import (
	"context"
	"io"
	"time"
)

// Store is the whole storage contract. Both backends implement it, and the
// conformance suite (internal/store/storetest) checks that they behave alike.
//
// Errors: every method returns ErrUnavailable when the store does not answer, and
// the sentinels its comment names; no method returns a driver error that is not
// wrapped around one of the sentinels or an unexpected internal failure.
type Store interface {
	UserStore
	ProjectStore
	DeviceStore
	TokenStore
	KeyStore
	SettingStore
	FormStore
	RecordStore
	QuarantineStore
	QuarantineDecisionStore
	AuditStore
	ReviewStore
	// DatasetStore is the datasets' record query (dataset.go).
	DatasetStore
	AttachmentStore
	OpenRosaStore // the OpenRosa bridge (issue 14)

	// Ping checks that the store answers.
	Ping(ctx context.Context) error
	// Close releases the store. Every write acknowledged before Close is durable.
	Close() error
}

// UserStore keeps users.
type UserStore interface {
	// CreateUser stores a new user. Returns ErrExists if the username is taken.
	CreateUser(ctx context.Context, u User) error
	// GetUser returns ErrNotFound for an unknown username.
	GetUser(ctx context.Context, username string) (User, error)
	// UpdateUser replaces a user's mutable fields (everything but Username and
	// CreatedAt). Returns ErrNotFound for an unknown username.
	UpdateUser(ctx context.Context, u User) error
	// ListUsers returns every user ordered by username.
	ListUsers(ctx context.Context) ([]User, error)
}

// MembershipFilter selects memberships; empty fields match everything.
type MembershipFilter struct {
	ProjectID string
	Username  string
}

// ProjectStore keeps projects and memberships.
type ProjectStore interface {
	// CreateProject returns ErrExists if the id is taken.
	CreateProject(ctx context.Context, p Project) error
	// GetProject returns ErrNotFound for an unknown id.
	GetProject(ctx context.Context, id string) (Project, error)
	// ListProjects returns every project ordered by id.
	ListProjects(ctx context.Context) ([]Project, error)
	// PutMembership creates or replaces the role of a user in a project.
	PutMembership(ctx context.Context, m Membership) error
	// GetMembership returns ErrNotFound when the user is not a member.
	GetMembership(ctx context.Context, projectID, username string) (Membership, error)
	// ListMemberships returns the matching memberships ordered by project, username.
	ListMemberships(ctx context.Context, f MembershipFilter) ([]Membership, error)
	// DeleteMembership returns ErrNotFound when the user is not a member.
	DeleteMembership(ctx context.Context, projectID, username string) error
}

// DeviceStore keeps enrolled tablets.
type DeviceStore interface {
	// CreateDevice returns ErrExists if the id is taken.
	CreateDevice(ctx context.Context, d Device) error
	// GetDevice returns ErrNotFound for an unknown id.
	GetDevice(ctx context.Context, id string) (Device, error)
	// ListDevices returns a project's devices ordered by creation time.
	ListDevices(ctx context.Context, projectID string) ([]Device, error)
	// EnrollDevice uses an enrollment code, atomically: exactly one caller wins.
	// It sets EnrolledAt and Info and returns the device. Returns ErrNotFound for
	// an unknown hash, and ErrStale when the code was already used, has expired at
	// now, or the device is revoked.
	EnrollDevice(ctx context.Context, enrollmentHash string, info map[string]string, now time.Time) (Device, error)
	// RevokeDevice sets RevokedAt (kept from the first revocation). Returns
	// ErrNotFound for an unknown id.
	RevokeDevice(ctx context.Context, id string, at time.Time) error
	// TouchDevice records that the device synced at at: its last sync time
	// becomes at unless it already holds a later one. Returns ErrNotFound for an
	// unknown id.
	TouchDevice(ctx context.Context, id string, at time.Time) error
	// DeviceLastSeen returns the last sync time of each of a project's devices
	// that ever synced, keyed by device id.
	DeviceLastSeen(ctx context.Context, projectID string) (map[string]time.Time, error)
}

// TokenStore keeps refresh-token families and tokens.
type TokenStore interface {
	// CreateTokenFamily returns ErrExists if the id is taken.
	CreateTokenFamily(ctx context.Context, f TokenFamily) error
	// GetTokenFamily returns ErrNotFound for an unknown id.
	GetTokenFamily(ctx context.Context, id string) (TokenFamily, error)
	// RevokeTokenFamily sets RevokedAt (kept from the first revocation). Returns
	// ErrNotFound for an unknown id.
	RevokeTokenFamily(ctx context.Context, id string, at time.Time) error
	// RevokeSubjectFamilies revokes every family of a subject and returns how many
	// were not revoked before.
	RevokeSubjectFamilies(ctx context.Context, subject string, at time.Time) (int, error)
	// RevokeSubjectFamiliesExcept revokes every family of a subject but keepID
	// (a user signing its other sessions out) and returns how many were not
	// revoked before.
	RevokeSubjectFamiliesExcept(ctx context.Context, subject, keepID string, at time.Time) (int, error)
	// CreateRefreshToken returns ErrExists if the hash is taken, or if t has a
	// Parent and another token has the same one (a token has at most one child).
	CreateRefreshToken(ctx context.Context, t RefreshToken) error
	// SpendRefreshToken marks a token spent, atomically: exactly one caller wins.
	// Returns ErrNotFound for an unknown hash, and the stored token with ErrStale
	// when it was already spent (a replay, or a retry the caller may forgive).
	SpendRefreshToken(ctx context.Context, hash string, at time.Time) (RefreshToken, error)
	// GetRefreshToken returns the token of hash, spent or not, so that a caller
	// can look before it spends (an expired token is refused unspent). Returns
	// ErrNotFound for an unknown hash. SpentAt may lag a spend still in flight;
	// SpendRefreshToken has the last word.
	GetRefreshToken(ctx context.Context, hash string) (RefreshToken, error)
	// GetRefreshTokenByParent returns the token whose Parent is parentHash (the
	// one issued by refreshing that token), spent or not. Returns ErrNotFound
	// when there is none, and for parentHash "".
	GetRefreshTokenByParent(ctx context.Context, parentHash string) (RefreshToken, error)
}

// KeyStore keeps JWT signing keys, shared by every server instance.
type KeyStore interface {
	// CreateSigningKey returns ErrExists if the id is taken.
	CreateSigningKey(ctx context.Context, k SigningKey) error
	// ListSigningKeys returns every key, newest first.
	ListSigningKeys(ctx context.Context) ([]SigningKey, error)
	// RetireSigningKeys sets RetiredAt on every key but keepID that has none.
	RetireSigningKeys(ctx context.Context, keepID string, at time.Time) error
	// ReplaceSigningKeyMaterial sets the PrivateKey of key id to next if it is
	// still prev (sealing a key, or re-sealing it under a new secret). Returns
	// ErrNotFound for an unknown id and ErrStale when PrivateKey is not prev.
	ReplaceSigningKeyMaterial(ctx context.Context, id string, prev, next []byte) error
}

// SettingStore keeps small server-wide values (bootstrap markers and the like).
type SettingStore interface {
	// GetSetting returns ErrNotFound for an unknown key.
	GetSetting(ctx context.Context, key string) (string, error)
	// PutSettingIfAbsent stores value under key unless the key exists, atomically,
	// and returns the value stored afterwards and whether this call stored it.
	PutSettingIfAbsent(ctx context.Context, key, value string) (stored string, created bool, err error)
}

// FormStore keeps forms and their versions.
type FormStore interface {
	// PutFormVersion creates or replaces a draft version, creating the form (open)
	// if it does not exist yet. created reports a new version. Returns ErrStale if
	// that version is published (published versions are immutable).
	PutFormVersion(ctx context.Context, v FormVersion) (created bool, err error)
	// GetFormVersion returns ErrNotFound for an unknown form or version.
	GetFormVersion(ctx context.Context, projectID, formID, version string) (FormVersion, error)
	// PublishFormVersion publishes a draft, sets it as the form's current version
	// and returns it. Publishing a published version returns it unchanged.
	// Returns ErrNotFound for an unknown form or version.
	PublishFormVersion(ctx context.Context, projectID, formID, version string, at time.Time) (FormVersion, error)
	// CloseForm sets the form's state to closed (kept from the first close).
	// Returns ErrNotFound for an unknown form.
	CloseForm(ctx context.Context, projectID, formID string, at time.Time) error
	// ReopenForm sets a closed form's state to open again and clears ClosedAt
	// (reopening an open form changes nothing). Returns ErrNotFound for an
	// unknown form.
	ReopenForm(ctx context.Context, projectID, formID string, at time.Time) error
	// GetForm returns a form with its versions (without definitions), ordered by
	// creation. Returns ErrNotFound for an unknown form.
	GetForm(ctx context.Context, projectID, formID string) (Form, error)
	// ListForms returns a project's forms ordered by id, each with its versions.
	ListForms(ctx context.Context, projectID string) ([]Form, error)
}

// RecordStore keeps records, their revision history and the changes feed.
//
// The changes feed: every successful write gives the record a new Seq, larger than
// any Seq the project's feed has handed out. A reader that pages with Changes
// until More is false has seen every write that was acknowledged before its first
// call, and no later page ever holds a position below a cursor already returned:
// each backend documents why that holds with several writers at once.
type RecordStore interface {
	// GetRecord returns ErrNotFound for an unknown id.
	GetRecord(ctx context.Context, projectID, id string) (Record, error)
	// GetRecords returns the records that exist among ids, keyed by id.
	GetRecords(ctx context.Context, projectID string, ids []string) (map[string]Record, error)
	// WriteRecords applies conditional writes, each on its own: results[i] is nil
	// when writes[i] was applied, ErrExists when a create found the record, ErrStale
	// when the record's rev is not ExpectRev, ErrNotFound when an update found no
	// record. A non-nil err means the batch failed as a whole (for example
	// ErrUnavailable): any subset of it may have been applied, none is acknowledged,
	// and the caller may retry (revisions are deterministic, so a retry is safe).
	// The store sets Seq on every applied write.
	WriteRecords(ctx context.Context, writes []RecordWrite) (results []error, err error)
	// GetRevision returns one stored revision, ErrNotFound if unknown.
	GetRevision(ctx context.Context, projectID, recordID, rev string) (Revision, error)
	// ListRevisions returns a record's stored revisions, oldest first.
	ListRevisions(ctx context.Context, projectID, recordID string) ([]Revision, error)
	// Changes returns one page of the project's changes feed in commit order, each
	// record in its current state, at most once per page.
	Changes(ctx context.Context, q ChangesQuery) (ChangesPage, error)
}

// QuarantineStore keeps the pushed items that could not become records.
type QuarantineStore interface {
	// PutQuarantine stores an item keyed by (ProjectID, ID). A new item is stored
	// with Attempts 1 and FirstSeen = LastSeen = item.LastSeen; an existing one gets
	// Attempts+1, the new LastSeen, Errors and Reason, and loses ResolvedAt.
	// Returns the stored item, its Reason QuarantineRejected when stored empty.
	PutQuarantine(ctx context.Context, item QuarantineItem) (QuarantineItem, error)
	// ListQuarantine returns the items that match f in the order they were
	// first seen, after the opaque cursor (""=start), and the cursor of the next
	// page ("" when none). A cursor the store did not make answers an *Error of
	// KindBadRequest.
	ListQuarantine(ctx context.Context, projectID string, f QuarantineFilter, cursor string, limit int) (items []QuarantineItem, next string, err error)
	// ResolveQuarantine marks every open rejected item of the given records
	// resolved (called when records with those ids were stored; a forbidden
	// item stays: its edit was not applied by someone else's write; a
	// dismissed item stays dismissed).
	ResolveQuarantine(ctx context.Context, projectID string, recordIDs []string, at time.Time) error
}

// QuarantineDecisionStore keeps what people decide about quarantine entries:
// re-applying one (at most one re-apply of an entry at a time, on any number of
// server instances) and dismissing one. PutQuarantine of an item pushed again
// keeps these decisions: a dismissed item stays dismissed, and LastReapply
// and a claim stay.
type QuarantineDecisionStore interface {
	// GetQuarantine returns one item. Returns ErrNotFound for an unknown id.
	GetQuarantine(ctx context.Context, projectID, id string) (QuarantineItem, error)
	// ClaimQuarantine marks an open item as being re-applied under claim (a
	// token unique to the caller) since at, atomically: of callers racing for
	// one item exactly one wins. A claim made before staleBefore has lapsed
	// (its server died mid-way) and may be taken over. Returns the claimed
	// item; ErrNotFound for an unknown id; ErrStale when the item is not open,
	// or holds a claim made at or after staleBefore.
	ClaimQuarantine(ctx context.Context, projectID, id, claim string, at, staleBefore time.Time) (QuarantineItem, error)
	// SettleQuarantine records the outcome of the re-apply made under claim
	// and lifts the claim: LastReapply becomes r; an applied r resolves the
	// item (ResolvedAt r.At unless already resolved, ResolvedBy r.By), a
	// refused one replaces its Errors with r.Errors and leaves it open.
	// Returns the item; ErrNotFound for an unknown id; ErrStale when the item
	// does not hold claim (it lapsed and was taken over).
	SettleQuarantine(ctx context.Context, projectID, id, claim string, r QuarantineReapply) (QuarantineItem, error)
	// DismissQuarantine marks an open item dismissed, atomically. Returns the
	// item; ErrNotFound for an unknown id; ErrStale when the item is not open,
	// or holds a claim made at or after staleBefore (a re-apply is under way).
	DismissQuarantine(ctx context.Context, projectID, id string, d QuarantineDismissal, staleBefore time.Time) (QuarantineItem, error)
}

// AuditStore keeps the append-only security log.
type AuditStore interface {
	// AppendAudit stores an event, assigns its ID and returns it.
	AppendAudit(ctx context.Context, e AuditEvent) (AuditEvent, error)
	// ListAudit returns matching events newest first, after the opaque cursor
	// (""=start), and the cursor of the next page ("" when none).
	ListAudit(ctx context.Context, f AuditFilter, cursor string, limit int) (events []AuditEvent, next string, err error)
}

// ReviewStore keeps the review threads of records (comments and review-state
// changes), apart from the records: a thread grows without making the record,
// which every pull carries, any larger.
type ReviewStore interface {
	// AppendReview stores an entry, assigns its ID and returns it.
	AppendReview(ctx context.Context, e ReviewEntry) (ReviewEntry, error)
	// ListReviews returns a record's entries oldest first, at most limit, after
	// the opaque cursor (""=start), and the cursor of the next page ("" when
	// none). A cursor the store did not make answers an *Error of
	// KindBadRequest.
	ListReviews(ctx context.Context, projectID, recordID, cursor string, limit int) (entries []ReviewEntry, next string, err error)
}

// AttachmentStore keeps the bytes of attachments (issue 13, protocol.md §3
// "Attachments"): partial uploads, content-addressed blobs (identical bytes
// are stored once) and the links that say which record holds which file.
// A partial upload is named by an id its caller chooses; its bytes are never
// visible as a blob before CommitUpload checked them.
type AttachmentStore interface {
	// UploadOffset returns how many bytes the partial upload id holds (0 when
	// it does not exist).
	UploadOffset(ctx context.Context, id string) (int64, error)
	// AppendUpload appends the bytes of r to the partial upload id (creating
	// it) if it holds offset bytes now, and returns the offset after. The bytes
	// read before r failed are kept (the offset reached is returned with r's
	// error), so that a dropped connection loses nothing. Returns ErrStale with
	// the current offset, keeping nothing of r, when the upload holds another
	// offset or another append to it is under way. now is the upload's last
	// activity, for ExpireUploads.
	AppendUpload(ctx context.Context, id string, offset int64, r io.Reader, now time.Time) (int64, error)
	// CommitUpload makes the bytes of upload id the blob sha256 if they are
	// size bytes long and hash to it, and removes the upload whatever the
	// outcome. A blob already held is kept as it is (the upload's bytes are
	// dropped). Returns a *MismatchError when the bytes differ (nothing is
	// kept) and ErrNotFound for an unknown upload.
	CommitUpload(ctx context.Context, id, sha256 string, size int64, now time.Time) error
	// DeleteUpload removes a partial upload; an unknown id is not an error.
	DeleteUpload(ctx context.Context, id string) error
	// ExpireUploads removes the partial uploads whose last activity was
	// before before, and returns how many.
	ExpireUploads(ctx context.Context, before time.Time) (int, error)
	// OpenBlob opens the bytes of sha256. Returns ErrNotFound when not held.
	OpenBlob(ctx context.Context, sha256 string) (Blob, error)
	// PutAttachmentLink creates or replaces the link of (ProjectID, RecordID,
	// Name). Returns ErrNotFound when the blob it names is not held (collected
	// in between): the caller uploads again.
	PutAttachmentLink(ctx context.Context, l AttachmentLink) error
	// GetAttachmentLink returns ErrNotFound when the record holds no file of
	// that name.
	GetAttachmentLink(ctx context.Context, projectID, recordID, name string) (AttachmentLink, error)
	// ListAttachmentLinks returns the links of the given records, keyed by
	// record id, each list ordered by name.
	ListAttachmentLinks(ctx context.Context, projectID string, recordIDs []string) (map[string][]AttachmentLink, error)
	// CollectBlobs removes the blobs that no link names and that were stored
	// (or last committed again) before before, and returns how many. The grace
	// keeps a blob just committed, whose link is being written.
	CollectBlobs(ctx context.Context, before time.Time) (int, error)
}
