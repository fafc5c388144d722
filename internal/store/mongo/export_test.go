package mongo

import (
	"context"
	"time"

	"go.mongodb.org/mongo-driver/v2/bson"

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

// AppendChanges runs step (c) alone.
func (s *Store) AppendChanges(ctx context.Context, projectID string, recordIDs []string) ([]int64, error) {
	return s.appendChanges(ctx, projectID, recordIDs)
}

// ApplyOnly runs steps (a) and (b) of one write and stops, as a writer that
// crashes before appending its change.
func (s *Store) ApplyOnly(ctx context.Context, w domain.RecordWrite) error {
	if err := s.insertRevisions(ctx, []domain.RecordWrite{w}); err != nil {
		return err
	}
	res, _, _, err := s.applyWrite(ctx, w, ms(time.Now()))
	if err != nil {
		return err
	}
	return res
}

// Pending reports a record's pending marker ("" when none).
func (s *Store) Pending(ctx context.Context, projectID, recordID string) (string, error) {
	d, err := findOne[recordDoc](ctx, s.records, bson.D{{Key: "_id", Value: key(projectID, recordID)}})
	return d.Pending, err
}

// Void reports whether the feed position is a void.
func (s *Store) Void(ctx context.Context, projectID string, seq int64) (bool, error) {
	d, err := findOne[changeDoc](ctx, s.changes, bson.D{{Key: "_id", Value: changeKey(projectID, seq)}})
	return d.Void, err
}

// RawRecord returns the stored record document as BSON.
func (s *Store) RawRecord(ctx context.Context, projectID, recordID string) (bson.Raw, error) {
	return s.records.FindOne(ctx, bson.D{{Key: "_id", Value: key(projectID, recordID)}}).Raw()
}

// SetAfterPositions sets a function Changes runs between reading positions and
// reading their records.
func (s *Store) SetAfterPositions(f func()) { s.afterPositions = f }
