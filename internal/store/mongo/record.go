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

	// Pending is the token of the write whose feed entry is not appended yet.
	Pending string `bson:"pending,omitempty"`
	// PendingAt is when that write began (writer's clock); the sweep repairs
	// writes pending for longer than Config.PendingGrace.
	PendingAt *time.Time `bson:"pending_at,omitempty"`
	// PendingRevs are the _ids of the revisions written with pending writes, not
	// yet marked confirmed.
	PendingRevs []string `bson:"pending_revs,omitempty"`
}

// protocolFields are the recordDoc fields a record write does not take from the
// caller's Record: the store maintains them.
var protocolFields = []string{"seq", "version", "pending", "pending_at", "pending_revs"}

// attachmentDoc is the metadata of one attachment of a record.
type attachmentDoc struct {
	Name        string `bson:"name"`
	SHA256      string `bson:"sha256"`
	Size        int64  `bson:"size"`
	ContentType string `bson:"content_type,omitempty"`
}

// revisionDoc is one entry of a record's history, keyed by
// "<project>/<record id>/<rev>" (revisions are content-addressed: the same edit
// of the same parent has the same rev, so inserting it twice is a no-op).
//
// Confirmed is set once a write carrying the revision was applied. A revision is
// inserted before the record is touched, so the history holds a record's current
// rev at every moment; but the write may then fail (a stale base), and such a
// revision must not count as history: the sync service takes "my revision is in
// the history" to mean "my edit was already processed". Readers therefore see a
// revision only when it is confirmed or named by the record's PendingRevs (its
// write was applied and is being completed).
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
	Confirmed        bool          `bson:"confirmed"`
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

// GetRecord returns ErrNotFound for an unknown id.
func (s *Store) GetRecord(ctx context.Context, projectID, id string) (domain.Record, error) {
	d, err := findOne[recordDoc](ctx, s.records, bson.D{{Key: "_id", Value: key(projectID, id)}})
	if err != nil {
		return domain.Record{}, err
	}
	return d.record()
}

// GetRecords returns the records that exist among ids, keyed by id.
func (s *Store) GetRecords(ctx context.Context, projectID string, ids []string) (map[string]domain.Record, error) {
	docs, err := s.recordDocs(ctx, projectID, ids)
	if err != nil {
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
		docs, err := findAll[recordDoc](ctx, s.records, bson.D{{Key: "_id", Value: bson.D{{Key: "$in", Value: keys}}}})
		if err != nil {
			return nil, err
		}
		out = append(out, docs...)
	}
	return out, nil
}

// applied is a write of a WriteRecords batch that changed its record and whose
// completion (feed entry, confirmed revisions, cleared marker) is still due.
type applied struct {
	index     int // into the batch
	projectID string
	recordID  string
	token     string   // the write's pending marker
	revs      []string // revision _ids to confirm, its own and inherited ones
}

// WriteRecords applies the batch item by item, in order, each with the
// single-document steps of the package comment: (a) insert the revisions,
// (b) apply the conditional write, marking the record pending, (c) append a feed
// entry, then confirm the revisions and clear the marker. The batch is
// acknowledged (returns) only after (c) for every applied item. When it fails
// part-way, the applied items are complete or pending, and the sweep completes
// the pending ones.
func (s *Store) WriteRecords(ctx context.Context, writes []domain.RecordWrite) ([]error, error) {
	results := make([]error, len(writes))
	if len(writes) == 0 {
		return results, nil
	}
	now := ms(time.Now())
	if err := s.insertRevisions(ctx, writes); err != nil {
		return nil, err
	}
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
	byProject := map[string][]int{}
	for k, a := range done {
		byProject[a.projectID] = append(byProject[a.projectID], k)
	}
	seqs := make([]int64, len(done))
	for projectID, ks := range byProject {
		ids := make([]string, len(ks))
		for j, k := range ks {
			ids[j] = done[k].recordID
		}
		got, err := s.appendChanges(ctx, projectID, ids)
		if err != nil {
			return nil, err
		}
		for j, k := range ks {
			seqs[k] = got[j]
		}
	}
	// The writes are durable and in the feed: they are acknowledged whatever
	// happens next. A failure to complete them is left to the sweep.
	if err := s.complete(ctx, done, seqs); err != nil {
		s.log.Warn("mongo: records written, completing them failed; the sweep will", "err", err)
	}
	for k, a := range done {
		writes[a.index].Record.Seq = seqs[k]
	}
	return results, nil
}

// insertRevisions inserts every revision of the batch (unconfirmed); revisions
// already held are left as they are.
func (s *Store) insertRevisions(ctx context.Context, writes []domain.RecordWrite) error {
	var docs []any
	for _, w := range writes {
		for _, v := range w.Revisions {
			// A revision belongs to the record it is written with.
			d, err := toRevisionDoc(w.Record.ProjectID, w.Record.ID, v, s.tick())
			if err != nil {
				return err
			}
			docs = append(docs, d)
		}
	}
	if len(docs) == 0 {
		return nil
	}
	_, err := s.revisions.InsertMany(ctx, docs, options.InsertMany().SetOrdered(false))
	if err != nil {
		if _, onlyDups := dupIndexes(err); !onlyDups {
			return translate(err)
		}
	}
	return nil
}

// applyWrite runs step (b) for one write: a create inserts the record, an update
// is one findOneAndUpdate conditional on the expected rev (and version), so of
// several concurrent writers based on the same state exactly one applies. It
// returns the item's result, the write to complete and the record's new version,
// or err when the batch must fail.
func (s *Store) applyWrite(ctx context.Context, w domain.RecordWrite, now time.Time) (result error, a applied, version int64, err error) {
	r := w.Record
	doc, err := toRecordDoc(r)
	if err != nil {
		return nil, applied{}, 0, err
	}
	a = applied{projectID: r.ProjectID, recordID: r.ID, token: randomHex(12)}
	for _, v := range w.Revisions {
		a.revs = append(a.revs, key(r.ProjectID, r.ID, v.Rev))
	}
	if w.ExpectRev == "" {
		doc.Seq, doc.Version = 0, 1
		doc.Pending, doc.PendingAt, doc.PendingRevs = a.token, &now, a.revs
		if _, err := s.records.InsertOne(ctx, doc); err != nil {
			if isDup(err) {
				return domain.ErrExists, applied{}, 0, nil
			}
			return nil, applied{}, 0, translate(err)
		}
		return nil, a, 1, nil
	}

	update, err := setUnset(doc, protocolFields...)
	if err != nil {
		return nil, applied{}, 0, err
	}
	update = append(update,
		bson.E{Key: "$inc", Value: bson.D{{Key: "version", Value: int64(1)}}})
	for i, e := range update {
		if e.Key == "$set" {
			set := e.Value.(bson.D)
			update[i].Value = append(set, bson.E{Key: "pending", Value: a.token}, bson.E{Key: "pending_at", Value: now})
		}
	}
	if len(a.revs) > 0 {
		// $addToSet keeps the revisions of an earlier pending write (one that did
		// not complete) next to ours; we confirm them too.
		update = append(update, bson.E{Key: "$addToSet", Value: bson.D{{Key: "pending_revs",
			Value: bson.D{{Key: "$each", Value: a.revs}}}}})
	}
	filter := bson.D{{Key: "_id", Value: doc.ID}, {Key: "rev", Value: w.ExpectRev}}
	if w.ExpectVersion != 0 {
		filter = append(filter, bson.E{Key: "version", Value: w.ExpectVersion})
	}
	var before recordDoc
	// No projection: FerretDB v1 does not implement findAndModify's "fields".
	err = s.records.FindOneAndUpdate(ctx, filter, update, options.FindOneAndUpdate().
		SetReturnDocument(options.Before)).Decode(&before)
	if err == nil {
		a.revs = append(a.revs, before.PendingRevs...)
		return nil, a, before.Version + 1, nil
	}
	if !errors.Is(err, mongodrv.ErrNoDocuments) {
		return nil, applied{}, 0, translate(err)
	}
	cur, err := findOne[recordDoc](ctx, s.records, bson.D{{Key: "_id", Value: doc.ID}},
		options.FindOne().SetProjection(bson.D{{Key: "pending_at", Value: 1}}))
	if errors.Is(err, domain.ErrNotFound) {
		return domain.ErrNotFound, applied{}, 0, nil
	}
	if err != nil {
		return nil, applied{}, 0, err
	}
	if cur.PendingAt != nil && time.Since(*cur.PendingAt) > s.cfg.PendingGrace {
		// A write of this record was interrupted; have it completed now rather
		// than at the next periodic sweep.
		s.kickSweep()
	}
	return domain.ErrStale, applied{}, 0, nil
}

// complete finishes applied writes: it confirms their revisions, then records
// each write's feed position on its record and clears the record's pending marker
// (only if no later write replaced the marker meanwhile). Confirming first means
// an interruption leaves the marker, so the sweep confirms again.
func (s *Store) complete(ctx context.Context, done []applied, seqs []int64) error {
	var revs []string
	for _, a := range done {
		revs = append(revs, a.revs...)
	}
	if err := s.confirmRevisions(ctx, revs); err != nil {
		return err
	}
	// seq only grows ($max): the record's seq is always the largest position
	// that names it, whichever of a slow writer and the sweep completes last,
	// so readers list it once, there.
	var models []mongodrv.WriteModel
	for k, a := range done {
		id := key(a.projectID, a.recordID)
		seq := bson.D{{Key: "$max", Value: bson.D{{Key: "seq", Value: seqs[k]}}}}
		models = append(models,
			mongodrv.NewUpdateOneModel().
				SetFilter(bson.D{{Key: "_id", Value: id}, {Key: "pending", Value: a.token}}).
				SetUpdate(append(seq, bson.E{Key: "$unset", Value: bson.D{
					{Key: "pending", Value: ""}, {Key: "pending_at", Value: ""}, {Key: "pending_revs", Value: ""}}})),
			mongodrv.NewUpdateOneModel().
				SetFilter(bson.D{{Key: "_id", Value: id}, {Key: "pending", Value: bson.D{{Key: "$ne", Value: a.token}}}}).
				SetUpdate(seq))
	}
	_, err := s.records.BulkWrite(ctx, models, options.BulkWrite().SetOrdered(false))
	return translate(err)
}

// confirmRevisions marks revisions as part of the history.
func (s *Store) confirmRevisions(ctx context.Context, ids []string) error {
	if len(ids) == 0 {
		return nil
	}
	_, err := s.revisions.UpdateMany(ctx,
		bson.D{{Key: "_id", Value: bson.D{{Key: "$in", Value: ids}}}, {Key: "confirmed", Value: false}},
		bson.D{{Key: "$set", Value: bson.D{{Key: "confirmed", Value: true}}}})
	return translate(err)
}

// visibleRevisions keeps the revisions that count as history: confirmed ones,
// and those a pending write of the record names (applied, not yet confirmed).
func (s *Store) visibleRevisions(ctx context.Context, projectID, recordID string, docs []revisionDoc) ([]revisionDoc, error) {
	var pending map[string]bool
	out := docs[:0]
	for _, d := range docs {
		if !d.Confirmed {
			if pending == nil {
				rec, err := findOne[recordDoc](ctx, s.records, bson.D{{Key: "_id", Value: key(projectID, recordID)}},
					options.FindOne().SetProjection(bson.D{{Key: "pending_revs", Value: 1}}))
				if err != nil && !errors.Is(err, domain.ErrNotFound) {
					return nil, err
				}
				pending = map[string]bool{}
				for _, id := range rec.PendingRevs {
					pending[id] = true
				}
			}
			if !pending[d.ID] {
				continue
			}
		}
		out = append(out, d)
	}
	return out, nil
}

// GetRevision returns one stored revision of the record's history, ErrNotFound if
// unknown (see revisionDoc for revisions of writes that were not applied).
func (s *Store) GetRevision(ctx context.Context, projectID, recordID, rev string) (domain.Revision, error) {
	d, err := findOne[revisionDoc](ctx, s.revisions, bson.D{{Key: "_id", Value: key(projectID, recordID, rev)}})
	if err != nil {
		return domain.Revision{}, err
	}
	docs, err := s.visibleRevisions(ctx, projectID, recordID, []revisionDoc{d})
	if err != nil {
		return domain.Revision{}, err
	}
	if len(docs) == 0 {
		return domain.Revision{}, domain.ErrNotFound
	}
	return d.revision()
}

// ListRevisions returns a record's stored revisions, oldest first (by CreatedAt,
// then in the order they were stored).
func (s *Store) ListRevisions(ctx context.Context, projectID, recordID string) ([]domain.Revision, error) {
	docs, err := findAll[revisionDoc](ctx, s.revisions,
		bson.D{{Key: "project_id", Value: projectID}, {Key: "record_id", Value: recordID}},
		options.Find().SetSort(bson.D{{Key: "created_at", Value: 1}, {Key: "stored", Value: 1}, {Key: "_id", Value: 1}}))
	if err != nil {
		return nil, err
	}
	if docs, err = s.visibleRevisions(ctx, projectID, recordID, docs); err != nil {
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
