package mongo

import (
	"context"
	"fmt"
	"strings"
	"time"

	"go.mongodb.org/mongo-driver/v2/bson"
	"go.mongodb.org/mongo-driver/v2/mongo/options"

	"github.com/fieldsync/fieldsync/internal/domain"
)

// reviewDoc is one entry of a record's review thread. Its _id is
// "<project>/<record>/<entry id>", the entry id made like an audit ID (the
// storing instance's strictly increasing nanosecond clock, then random hex), so
// a record's entries sort by _id in the order they were added and stay
// together on one shard (see doc.go).
type reviewDoc struct {
	ID            string     `bson:"_id"`
	ProjectID     string     `bson:"project_id"`
	RecordID      string     `bson:"record_id"`
	Author        string     `bson:"author"`
	CreatedAt     *time.Time `bson:"created_at,omitempty"`
	Text          string     `bson:"text,omitempty"`
	ReviewState   string     `bson:"review_state,omitempty"`
	PreviousState string     `bson:"previous_state,omitempty"`
}

// reviewKey is the _id prefix of a record's entries.
func reviewKey(projectID, recordID string) string { return projectID + "/" + recordID + "/" }

// AppendReview stores an entry of a record's review thread and returns it with
// its ID.
func (s *Store) AppendReview(ctx context.Context, e domain.ReviewEntry) (domain.ReviewEntry, error) {
	e.ID = fmt.Sprintf("%016x%s", s.tick(), randomHex(4))
	if !e.CreatedAt.IsZero() {
		e.CreatedAt = ms(e.CreatedAt)
	}
	_, err := s.reviews.InsertOne(ctx, reviewDoc{ID: reviewKey(e.ProjectID, e.RecordID) + e.ID, ProjectID: e.ProjectID,
		RecordID: e.RecordID, Author: e.Author, CreatedAt: timePtr(e.CreatedAt), Text: e.Text,
		ReviewState: e.ReviewState, PreviousState: e.PreviousState})
	if err != nil {
		return domain.ReviewEntry{}, translate(err)
	}
	return e, nil
}

// ListReviews pages through a record's review thread oldest first (by _id).
// The cursor is the ID of the last entry returned.
func (s *Store) ListReviews(ctx context.Context, projectID, recordID, cursor string, limit int) ([]domain.ReviewEntry, string, error) {
	if limit <= 0 {
		limit = 100
	}
	filter := bson.D{{Key: "project_id", Value: projectID}, {Key: "record_id", Value: recordID}}
	if cursor != "" {
		if !isAuditID(cursor) {
			return nil, "", domain.Errorf(domain.KindBadRequest, "invalid_cursor", "The cursor is not valid")
		}
		filter = append(filter, bson.E{Key: "_id", Value: bson.D{{Key: "$gt", Value: reviewKey(projectID, recordID) + cursor}}})
	}
	docs, err := findAll[reviewDoc](ctx, s.reviews, filter,
		options.Find().SetSort(bson.D{{Key: "_id", Value: 1}}).SetLimit(int64(limit)+1))
	if err != nil {
		return nil, "", err
	}
	out := make([]domain.ReviewEntry, len(docs))
	for i, d := range docs {
		out[i] = domain.ReviewEntry{ProjectID: d.ProjectID, RecordID: d.RecordID,
			ID: strings.TrimPrefix(d.ID, reviewKey(projectID, recordID)), Author: d.Author, CreatedAt: timeVal(d.CreatedAt),
			Text: d.Text, ReviewState: d.ReviewState, PreviousState: d.PreviousState}
	}
	next := ""
	if len(out) > limit {
		out = out[:limit]
		next = out[limit-1].ID
	}
	return out, next, nil
}
