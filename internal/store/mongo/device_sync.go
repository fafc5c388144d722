package mongo

import (
	"context"
	"time"

	"go.mongodb.org/mongo-driver/v2/bson"
	"go.mongodb.org/mongo-driver/v2/mongo/options"

	"github.com/fieldsync/fieldsync/internal/domain"
)

// lastSeenDoc is the projection DeviceLastSeen reads of a device document;
// last_seen_at is written by TouchDevice only, so deviceDoc does not know it.
type lastSeenDoc struct {
	ID         string     `bson:"_id"`
	LastSeenAt *time.Time `bson:"last_seen_at,omitempty"`
}

// TouchDevice sets the device's last sync time to at unless it holds a later
// one ($max: one atomic single-document update, so concurrent syncs of one
// device through several instances never move it back). Returns ErrNotFound
// for an unknown id.
func (s *Store) TouchDevice(ctx context.Context, id string, at time.Time) error {
	res, err := s.devices.UpdateOne(ctx, bson.D{{Key: "_id", Value: id}},
		bson.D{{Key: "$max", Value: bson.D{{Key: "last_seen_at", Value: ms(at)}}}})
	if err != nil {
		return translate(err)
	}
	if res.MatchedCount == 0 {
		return domain.ErrNotFound
	}
	return nil
}

// DeviceLastSeen returns the last sync time of the project's devices that
// synced, keyed by device id (through the index by_project).
func (s *Store) DeviceLastSeen(ctx context.Context, projectID string) (map[string]time.Time, error) {
	docs, err := findAll[lastSeenDoc](ctx, s.devices,
		bson.D{{Key: "project_id", Value: projectID}, {Key: "last_seen_at", Value: bson.D{{Key: "$exists", Value: true}}}},
		options.Find().SetProjection(bson.D{{Key: "_id", Value: 1}, {Key: "last_seen_at", Value: 1}}))
	if err != nil {
		return nil, err
	}
	out := make(map[string]time.Time, len(docs))
	for _, d := range docs {
		if d.LastSeenAt != nil {
			out[d.ID] = d.LastSeenAt.UTC()
		}
	}
	return out, nil
}

// RevokeSubjectFamiliesExcept revokes every family of a subject but keepID
// and returns how many were not revoked before.
func (s *Store) RevokeSubjectFamiliesExcept(ctx context.Context, subject, keepID string, at time.Time) (int, error) {
	res, err := s.families.UpdateMany(ctx,
		bson.D{{Key: "subject", Value: subject}, {Key: "_id", Value: bson.D{{Key: "$ne", Value: keepID}}},
			{Key: "revoked_at", Value: nil}},
		bson.D{{Key: "$set", Value: bson.D{{Key: "revoked_at", Value: ms(at)}}}})
	if err != nil {
		return 0, translate(err)
	}
	return int(res.ModifiedCount), nil
}
