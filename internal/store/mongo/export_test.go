package mongo

import (
	"context"

	"go.mongodb.org/mongo-driver/v2/event"
	"time"

	"go.mongodb.org/mongo-driver/v2/bson"
	mongodrv "go.mongodb.org/mongo-driver/v2/mongo"

	"github.com/fieldsync/fieldsync/internal/domain"
)

// Hooks for the external tests: they reach into the write protocol to stage what
// a crashed or stalled writer leaves behind.

// Allocate takes n feed positions, as a writer's step (c) does before inserting.
func (s *Store) Allocate(ctx context.Context, projectID string, n int) (int64, error) {
	return s.allocate(ctx, projectID, n)
}

// InsertChangeAt inserts a change at a given position, as a stalled writer
// finally does; ErrExists when the position was taken (voided) meanwhile.
func (s *Store) InsertChangeAt(ctx context.Context, projectID string, seq int64, recordID string) error {
	_, err := s.changes.InsertOne(ctx, changeDoc{ID: changeKey(projectID, seq), ProjectID: projectID, Seq: seq,
		RecordID: recordID, At: ms(time.Now())})
	return translate(err)
}

// AppendChanges runs step (c) alone for records (with no visibility: only
// analysts' pages list them).
func (s *Store) AppendChanges(ctx context.Context, projectID string, recordIDs []string) ([]int64, error) {
	entries := make([]entry, len(recordIDs))
	for i, id := range recordIDs {
		entries[i] = entry{recordID: id}
	}
	return s.appendChanges(ctx, projectID, entries)
}

// ApplyOnly runs step (b) of one write and stops, as a writer that crashes
// before appending its change.
func (s *Store) ApplyOnly(ctx context.Context, w domain.RecordWrite) error {
	res, _, _, err := s.applyWrite(ctx, w, ms(time.Now()))
	if err != nil {
		return err
	}
	return res
}

// Pending reports a record's pending marker ("" when none).
func (s *Store) Pending(ctx context.Context, projectID, recordID string) (string, error) {
	d, err := findOne[recordDoc](ctx, s.records, recordFilter(projectID, recordID))
	return d.Pending, err
}

// Void reports whether the feed position is a void.
func (s *Store) Void(ctx context.Context, projectID string, seq int64) (bool, error) {
	d, err := findOne[changeDoc](ctx, s.changes, bson.D{{Key: "_id", Value: changeKey(projectID, seq)}})
	return d.Void, err
}

// RawRecord returns the stored record document as BSON.
func (s *Store) RawRecord(ctx context.Context, projectID, recordID string) (bson.Raw, error) {
	return s.records.FindOne(ctx, recordFilter(projectID, recordID)).Raw()
}

// SetAfterPositions sets a function Changes runs between reading positions and
// reading their records.
func (s *Store) SetAfterPositions(f func()) { s.afterPositions = f }

// SetAfterApply sets a function WriteRecords runs between applying its records
// (step b) and appending their changes (step c); an error it returns stops the
// write there, as a writer that dies between the steps.
func (s *Store) SetAfterApply(f func() error) { s.afterApply = f }

// OpenMonitored opens a Store whose client reports every command to monitor.
func OpenMonitored(ctx context.Context, cfg Config, monitor *event.CommandMonitor) (*Store, error) {
	return open(ctx, cfg, monitor)
}

// FeedCounts returns how many change documents this Store's Changes read by
// page queries (examined) and by gap checks (verified), and how many changes
// its compaction removed.
func (s *Store) FeedCounts() (examined, verified, compacted int64) {
	return s.examined.Load(), s.verified.Load(), s.compacted.Load()
}

// Sweep runs one pass of the background sweep now.
func (s *Store) Sweep(ctx context.Context) error { return s.sweep(ctx) }

// ChangeCount returns how many documents the project's feed holds (changes and
// voids).
func (s *Store) ChangeCount(ctx context.Context, projectID string) (int64, error) {
	n, err := s.changes.CountDocuments(ctx, bson.D{{Key: "project_id", Value: projectID}})
	return n, translate(err)
}

// RawRevision reads a revision document without going through the store's
// reads (ErrNotFound when none).
func (s *Store) RawRevision(ctx context.Context, projectID, recordID, rev string) (bson.Raw, error) {
	raw, err := s.revisions.FindOne(ctx, bson.D{{Key: "_id", Value: key(projectID, recordID, rev)}}).Raw()
	return raw, translate(err)
}

// Database is the store's database, for tests that write documents as an
// earlier version did.
func (s *Store) Database() *mongodrv.Database { return s.db }
