package mongo

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"slices"
	"time"

	"go.mongodb.org/mongo-driver/v2/bson"
	mongodrv "go.mongodb.org/mongo-driver/v2/mongo"
	"go.mongodb.org/mongo-driver/v2/mongo/options"

	"github.com/fieldsync/fieldsync/internal/domain"
)

// recordDoc is the current state of a record in the records collection, keyed by
// "<project>/<record id>". The pending fields belong to the write protocol (see
// the package comment) and are empty between writes.
type recordDoc struct {
	ID               string          `bson:"_id"`
	ProjectID        string          `bson:"project_id"`
	RecordID         string          `bson:"record_id"`
	FormID           string          `bson:"form_id"`
	FormVersion      string          `bson:"form_version"`
	Rev              string          `bson:"rev"`
	Deleted          bool            `bson:"deleted"`
	Data             bson.RawValue   `bson:"data,omitempty"`
	DataJSON         string          `bson:"data_json,omitempty"`
	CreatedBy        string          `bson:"created_by"`
	DeviceID         string          `bson:"device_id"`
	ClientModifiedAt *time.Time      `bson:"client_modified_at,omitempty"`
	CreatedAt        *time.Time      `bson:"created_at,omitempty"`
	UpdatedAt        *time.Time      `bson:"updated_at,omitempty"`
	ReviewState      string          `bson:"review_state"`
	ReviewComment    string          `bson:"review_comment,omitempty"`
	Conflicts        bson.RawValue   `bson:"conflicts,omitempty"`
	ConflictsJSON    string          `bson:"conflicts_json,omitempty"`
	AssignedTo       []string        `bson:"assigned_to,omitempty"`
	Shared           bool            `bson:"shared"`
	Attachments      []attachmentDoc `bson:"attachments,omitempty"`
	Seq              int64           `bson:"seq"`
	Version          int64           `bson:"version"`

	// WriteID is the token of the write that produced this state. It outlives
	// the pending marker: a write's completion raises seq only while the record
	// still holds that write's state, so the change at the record's seq always
	// announces (carries the visibility of) its current state.
	WriteID string `bson:"write_id,omitempty"`
	// Pending is the token of the write whose completion (feed entry, history)
	// is still due; it equals WriteID while set.
	Pending string `bson:"pending,omitempty"`
	// PendingAt is when that write began (writer's clock); the sweep completes
	// writes pending for longer than Config.PendingGrace that no reader met.
	PendingAt *time.Time `bson:"pending_at,omitempty"`
	// PendingRevs are the revisions of the pending write: they join the
	// history (the revisions collection) when the write is completed.
	PendingRevs []revisionDoc `bson:"pending_revs,omitempty"`
}

// protocolFields are the recordDoc fields a record write does not take from the
// caller's Record: the store maintains them.
var protocolFields = []string{"seq", "version", "write_id", "pending", "pending_at", "pending_revs"}

// attachmentDoc is the metadata of one attachment of a record.
type attachmentDoc struct {
	Name        string `bson:"name"`
	SHA256      string `bson:"sha256"`
	Size        int64  `bson:"size"`
	ContentType string `bson:"content_type,omitempty"`
}

// revisionDoc is one entry of a record's history, keyed by
// "<project>/<record id>/<rev>" (revisions are content-addressed: the same edit
// of the same parent has the same rev, so inserting it twice is a no-op). A
// revision document is inserted only when its write is completed, after the
// write's change is in the feed: the sync service takes "my revision is in the
// history" to mean "my edit was processed", so a revision whose write failed
// its condition, or is not in the feed yet, must not be there.
type revisionDoc struct {
	ID               string        `bson:"_id"`
	ProjectID        string        `bson:"project_id"`
	RecordID         string        `bson:"record_id"`
	Rev              string        `bson:"rev"`
	Parent           string        `bson:"parent"`
	Deleted          bool          `bson:"deleted"`
	Data             bson.RawValue `bson:"data,omitempty"`
	DataJSON         string        `bson:"data_json,omitempty"`
	FormVersion      string        `bson:"form_version"`
	ClientModifiedAt *time.Time    `bson:"client_modified_at,omitempty"`
	CreatedBy        string        `bson:"created_by"`
	DeviceID         string        `bson:"device_id"`
	CreatedAt        *time.Time    `bson:"created_at,omitempty"`
	Stored           int64         `bson:"stored"`
}

// toRecordDoc converts a record for storage. Conflicts go through their JSON form,
// the same encoding the SQLite store keeps, so both stores read them back alike.
func toRecordDoc(r domain.Record) (recordDoc, error) {
	d := recordDoc{
		ID: key(r.ProjectID, r.ID), ProjectID: r.ProjectID, RecordID: r.ID, FormID: r.FormID,
		FormVersion: r.FormVersion, Rev: r.Rev, Deleted: r.Deleted, CreatedBy: r.CreatedBy, DeviceID: r.DeviceID,
		ClientModifiedAt: timePtr(r.ClientModifiedAt), CreatedAt: timePtr(r.CreatedAt), UpdatedAt: timePtr(r.UpdatedAt),
		ReviewState: r.ReviewState, ReviewComment: r.ReviewComment, Shared: r.Shared,
		Seq: r.Seq, Version: r.Version,
	}
	var err error
	if d.Data, d.DataJSON, err = encodeJSON(r.Data); err != nil {
		return recordDoc{}, err
	}
	if len(r.Conflicts) > 0 {
		b, err := json.Marshal(r.Conflicts)
		if err != nil {
			return recordDoc{}, fmt.Errorf("mongo: encode conflicts: %w", err)
		}
		if d.Conflicts, d.ConflictsJSON, err = encodeJSON(b); err != nil {
			return recordDoc{}, err
		}
	}
	if len(r.AssignedTo) > 0 {
		d.AssignedTo = r.AssignedTo
	}
	for _, a := range r.Attachments {
		d.Attachments = append(d.Attachments, attachmentDoc(a))
	}
	return d, nil
}

func (d recordDoc) record() (domain.Record, error) {
	r := domain.Record{
		ProjectID: d.ProjectID, ID: d.RecordID, FormID: d.FormID, FormVersion: d.FormVersion, Rev: d.Rev,
		Deleted: d.Deleted, CreatedBy: d.CreatedBy, DeviceID: d.DeviceID,
		ClientModifiedAt: timeVal(d.ClientModifiedAt), CreatedAt: timeVal(d.CreatedAt), UpdatedAt: timeVal(d.UpdatedAt),
		ReviewState: d.ReviewState, ReviewComment: d.ReviewComment, AssignedTo: d.AssignedTo, Shared: d.Shared,
		Seq: d.Seq, Version: d.Version,
	}
	var err error
	if r.Data, err = decodeJSON(d.Data, d.DataJSON); err != nil {
		return domain.Record{}, err
	}
	if b, err := decodeJSON(d.Conflicts, d.ConflictsJSON); err != nil {
		return domain.Record{}, err
	} else if len(b) > 0 {
		if err := json.Unmarshal(b, &r.Conflicts); err != nil {
			return domain.Record{}, fmt.Errorf("mongo: decode conflicts: %w", err)
		}
	}
	for _, a := range d.Attachments {
		r.Attachments = append(r.Attachments, domain.Attachment(a))
	}
	return r, nil
}

func toRevisionDoc(projectID, recordID string, v domain.Revision, stored int64) (revisionDoc, error) {
	d := revisionDoc{
		ID: key(projectID, recordID, v.Rev), ProjectID: projectID, RecordID: recordID, Rev: v.Rev,
		Parent: v.Parent, Deleted: v.Deleted, FormVersion: v.FormVersion,
		ClientModifiedAt: timePtr(v.ClientModifiedAt), CreatedBy: v.CreatedBy, DeviceID: v.DeviceID,
		CreatedAt: timePtr(v.CreatedAt), Stored: stored,
	}
	var err error
	if d.Data, d.DataJSON, err = encodeJSON(v.Data); err != nil {
		return revisionDoc{}, err
	}
	return d, nil
}

func (d revisionDoc) revision() (domain.Revision, error) {
	data, err := decodeJSON(d.Data, d.DataJSON)
	if err != nil {
		return domain.Revision{}, err
	}
	return domain.Revision{ProjectID: d.ProjectID, RecordID: d.RecordID, Rev: d.Rev, Parent: d.Parent,
		Deleted: d.Deleted, Data: data, FormVersion: d.FormVersion, ClientModifiedAt: timeVal(d.ClientModifiedAt),
		CreatedBy: d.CreatedBy, DeviceID: d.DeviceID, CreatedAt: timeVal(d.CreatedAt)}, nil
}

// recordFilter selects one record by its _id and, for sharded clusters, the
// shard key's project_id.
func recordFilter(projectID, id string) bson.D {
	return bson.D{{Key: "_id", Value: key(projectID, id)}, {Key: "project_id", Value: projectID}}
}

// GetRecord returns ErrNotFound for an unknown id. A record whose write is
// pending is settled first (see settle).
func (s *Store) GetRecord(ctx context.Context, projectID, id string) (domain.Record, error) {
	d, err := findOne[recordDoc](ctx, s.records, recordFilter(projectID, id))
	if err != nil {
		return domain.Record{}, err
	}
	docs, err := s.settle(ctx, []recordDoc{d})
	if err != nil {
		return domain.Record{}, err
	}
	return docs[0].record()
}

// GetRecords returns the records that exist among ids, keyed by id. Records
// whose writes are pending are settled first (see settle).
func (s *Store) GetRecords(ctx context.Context, projectID string, ids []string) (map[string]domain.Record, error) {
	docs, err := s.recordDocs(ctx, projectID, ids)
	if err != nil {
		return nil, err
	}
	if docs, err = s.settle(ctx, docs); err != nil {
		return nil, err
	}
	out := make(map[string]domain.Record, len(docs))
	for _, d := range docs {
		r, err := d.record()
		if err != nil {
			return nil, err
		}
		out[r.ID] = r
	}
	return out, nil
}

// recordDocs reads the records with the given ids, in chunks that keep each
// query small.
func (s *Store) recordDocs(ctx context.Context, projectID string, ids []string) ([]recordDoc, error) {
	var out []recordDoc
	for chunk := range slices.Chunk(ids, 500) {
		keys := make([]string, len(chunk))
		for i, id := range chunk {
			keys[i] = key(projectID, id)
		}
		docs, err := findAll[recordDoc](ctx, s.records, bson.D{{Key: "project_id", Value: projectID},
			{Key: "_id", Value: bson.D{{Key: "$in", Value: keys}}}})
		if err != nil {
			return nil, err
		}
		out = append(out, docs...)
	}
	return out, nil
}

// settle completes the pending writes among docs (read from the records
// collection) and returns docs as completed: a pending write must never count
// as settled, since the sync service acknowledges a resend whose rev it finds
// on the record ("unchanged") and a tablet then expects the record in the feed.
// Completing is what the writer would have done after (b): append a change,
// then complete (history, seq, marker). Several readers and the writer may
// complete one write at once: a record twice in the feed is harmless.
func (s *Store) settle(ctx context.Context, docs []recordDoc) ([]recordDoc, error) {
	var due []applied
	var at []int
	for i, d := range docs {
		if d.Pending != "" {
			due = append(due, applied{projectID: d.ProjectID, recordID: d.RecordID, token: d.Pending,
				revs: d.PendingRevs, entry: entryOf(d)})
			at = append(at, i)
		}
	}
	if len(due) == 0 {
		return docs, nil
	}
	seqs, err := s.appendAll(ctx, due)
	if err != nil {
		return nil, err
	}
	if err := s.complete(ctx, due, seqs); err != nil {
		return nil, err
	}
	for k, i := range at {
		d := &docs[i]
		d.Seq = max(d.Seq, seqs[k])
		d.Pending, d.PendingAt, d.PendingRevs = "", nil, nil
	}
	return docs, nil
}

// applied is a write that changed its record and whose completion (feed entry,
// history, seq, cleared marker) is still due.
type applied struct {
	index     int // into the batch
	projectID string
	recordID  string
	token     string        // the write's id (pending marker)
	revs      []revisionDoc // the write's revisions
	entry     entry         // the change that announces the write
}

// WriteRecords applies the batch item by item, in order, each with the
// single-document steps of the package comment: (b) apply the conditional
// write, marking the record pending, (c) append a feed entry, then (d) complete
// it (history, seq, marker). The batch is acknowledged (returns) only after (c)
// for every applied item. When it fails part-way, the applied items are
// complete or pending, and the first reader to meet a pending one (or the
// sweep) completes it.
func (s *Store) WriteRecords(ctx context.Context, writes []domain.RecordWrite) ([]error, error) {
	results := make([]error, len(writes))
	if len(writes) == 0 {
		return results, nil
	}
	now := ms(time.Now())
	var done []applied
	for i, w := range writes {
		res, a, version, err := s.applyWrite(ctx, w, now)
		if err != nil {
			return nil, fmt.Errorf("write record %q: %w", w.Record.ID, err)
		}
		results[i] = res
		if res == nil {
			a.index = i
			done = append(done, a)
			writes[i].Record.Version = version
		}
	}
	if len(done) == 0 {
		return results, nil
	}
	if s.afterApply != nil {
		if err := s.afterApply(); err != nil {
			return nil, err
		}
	}
	seqs, err := s.appendAll(ctx, done)
	if err != nil {
		return nil, err
	}
	// The writes are durable and in the feed: they are acknowledged whatever
	// happens next. A failure to complete them is left to readers and the sweep.
	if err := s.complete(ctx, done, seqs); err != nil {
		s.log.Warn("mongo: records written, completing them failed; readers or the sweep will", "err", err)
	}
	for k, a := range done {
		writes[a.index].Record.Seq = seqs[k]
	}
	return results, nil
}

// appendAll runs step (c) for writes of any projects and returns their
// positions in order.
func (s *Store) appendAll(ctx context.Context, done []applied) ([]int64, error) {
	byProject := map[string][]int{}
	for k, a := range done {
		byProject[a.projectID] = append(byProject[a.projectID], k)
	}
	seqs := make([]int64, len(done))
	for projectID, ks := range byProject {
		entries := make([]entry, len(ks))
		for j, k := range ks {
			entries[j] = done[k].entry
		}
		got, err := s.appendChanges(ctx, projectID, entries)
		if err != nil {
			return nil, err
		}
		for j, k := range ks {
			seqs[k] = got[j]
		}
	}
	return seqs, nil
}

// applyAttempts bounds how often applyWrite completes another write it finds
// pending on its record and tries again.
const applyAttempts = 5

// applyWrite runs step (b) for one write: a create inserts the record, an update
// is one findOneAndUpdate conditional on the expected rev (and version) and on
// no pending write, so of several concurrent writers based on the same state
// exactly one applies, and a record carries at most one pending write. A write
// that finds the record pending completes that write first (as a reader would)
// and tries again. It returns the item's result, the write to complete and the
// record's new version, or err when the batch must fail.
func (s *Store) applyWrite(ctx context.Context, w domain.RecordWrite, now time.Time) (result error, a applied, version int64, err error) {
	r := w.Record
	doc, err := toRecordDoc(r)
	if err != nil {
		return nil, applied{}, 0, err
	}
	a = applied{projectID: r.ProjectID, recordID: r.ID, token: randomHex(12)}
	for _, v := range w.Revisions {
		// A revision belongs to the record it is written with.
		d, err := toRevisionDoc(r.ProjectID, r.ID, v, s.tick())
		if err != nil {
			return nil, applied{}, 0, err
		}
		a.revs = append(a.revs, d)
	}
	if w.ExpectRev == "" {
		doc.Seq, doc.Version = 0, 1
		doc.WriteID, doc.Pending, doc.PendingAt, doc.PendingRevs = a.token, a.token, &now, a.revs
		if _, err := s.records.InsertOne(ctx, doc); err != nil {
			if isDup(err) {
				return domain.ErrExists, applied{}, 0, nil
			}
			return nil, applied{}, 0, translate(err)
		}
		a.entry = entryOf(doc)
		return nil, a, 1, nil
	}

	update, err := setUnset(doc, protocolFields...)
	if err != nil {
		return nil, applied{}, 0, err
	}
	marker := bson.D{{Key: "write_id", Value: a.token}, {Key: "pending", Value: a.token}, {Key: "pending_at", Value: now}}
	if len(a.revs) > 0 {
		marker = append(marker, bson.E{Key: "pending_revs", Value: a.revs})
	}
	for i, e := range update {
		if e.Key == "$set" {
			update[i].Value = append(e.Value.(bson.D), marker...)
		}
	}
	update = append(update, bson.E{Key: "$inc", Value: bson.D{{Key: "version", Value: int64(1)}}})
	filter := append(recordFilter(r.ProjectID, r.ID), bson.E{Key: "rev", Value: w.ExpectRev},
		bson.E{Key: "pending", Value: bson.D{{Key: "$exists", Value: false}}})
	if w.ExpectVersion != 0 {
		filter = append(filter, bson.E{Key: "version", Value: w.ExpectVersion})
	}
	for range applyAttempts {
		var after recordDoc
		// No projection: FerretDB v1 does not implement findAndModify's "fields".
		err = s.records.FindOneAndUpdate(ctx, filter, update, options.FindOneAndUpdate().
			SetReturnDocument(options.After)).Decode(&after)
		if err == nil {
			a.entry = entryOf(after) // after.Seq is the seq before: seq is not updated here
			return nil, a, after.Version, nil
		}
		if !errors.Is(err, mongodrv.ErrNoDocuments) {
			return nil, applied{}, 0, translate(err)
		}
		cur, err := findOne[recordDoc](ctx, s.records, recordFilter(r.ProjectID, r.ID))
		if errors.Is(err, domain.ErrNotFound) {
			return domain.ErrNotFound, applied{}, 0, nil
		}
		if err != nil {
			return nil, applied{}, 0, err
		}
		if cur.Rev != w.ExpectRev || (w.ExpectVersion != 0 && cur.Version != w.ExpectVersion) {
			return domain.ErrStale, applied{}, 0, nil
		}
		if _, err := s.settle(ctx, []recordDoc{cur}); err != nil {
			return nil, applied{}, 0, err
		}
	}
	// The record kept changing under us: as good as stale.
	return domain.ErrStale, applied{}, 0, nil
}

// complete is step (d): it inserts the writes' revisions into the history
// (a revision already held is left alone), then records each write's feed
// position on its record and clears the record's pending marker, both only if
// the record still holds that write's state (write_id): seq only grows ($max),
// and the change at a record's seq announces its current state. An
// interruption leaves the marker, so a reader or the sweep completes again.
func (s *Store) complete(ctx context.Context, done []applied, seqs []int64) error {
	var revs []any
	for _, a := range done {
		for _, r := range a.revs {
			revs = append(revs, r)
		}
	}
	if len(revs) > 0 {
		if _, err := s.revisions.InsertMany(ctx, revs, options.InsertMany().SetOrdered(false)); err != nil {
			if _, onlyDups := dupIndexes(err); !onlyDups {
				return translate(err)
			}
		}
	}
	models := make([]mongodrv.WriteModel, len(done))
	for k, a := range done {
		models[k] = mongodrv.NewUpdateOneModel().
			SetFilter(append(recordFilter(a.projectID, a.recordID), bson.E{Key: "write_id", Value: a.token})).
			SetUpdate(bson.D{
				{Key: "$max", Value: bson.D{{Key: "seq", Value: seqs[k]}}},
				{Key: "$unset", Value: bson.D{{Key: "pending", Value: ""}, {Key: "pending_at", Value: ""}, {Key: "pending_revs", Value: ""}}},
			})
	}
	_, err := s.records.BulkWrite(ctx, models, options.BulkWrite().SetOrdered(false))
	return translate(err)
}

// GetRevision returns one revision of the record's history, ErrNotFound if
// unknown. The history holds the revisions of completed writes only (see
// revisionDoc).
func (s *Store) GetRevision(ctx context.Context, projectID, recordID, rev string) (domain.Revision, error) {
	d, err := findOne[revisionDoc](ctx, s.revisions,
		bson.D{{Key: "_id", Value: key(projectID, recordID, rev)}, {Key: "project_id", Value: projectID}, {Key: "record_id", Value: recordID}})
	if err != nil {
		return domain.Revision{}, err
	}
	return d.revision()
}

// ListRevisions returns a record's history, oldest first (by CreatedAt, then in
// the order they were stored).
func (s *Store) ListRevisions(ctx context.Context, projectID, recordID string) ([]domain.Revision, error) {
	docs, err := findAll[revisionDoc](ctx, s.revisions,
		bson.D{{Key: "project_id", Value: projectID}, {Key: "record_id", Value: recordID}},
		options.Find().SetSort(bson.D{{Key: "created_at", Value: 1}, {Key: "stored", Value: 1}, {Key: "_id", Value: 1}}))
	if err != nil {
		return nil, err
	}
	var out []domain.Revision
	for _, d := range docs {
		v, err := d.revision()
		if err != nil {
			return nil, err
		}
		out = append(out, v)
	}
	return out, nil
}
