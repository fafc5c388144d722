package mongo

import (
	"context"

	"go.mongodb.org/mongo-driver/v2/bson"

	"github.com/fieldsync/fieldsync/internal/domain"
)

// ReplaceSigningKeyMaterial sets the private key of key id to next if it is
// still prev, in one conditional update, so that instances sealing the same key
// at once cannot overwrite each other. Returns ErrNotFound for an unknown id and
// ErrStale when the key holds other bytes.
func (s *Store) ReplaceSigningKeyMaterial(ctx context.Context, id string, prev, next []byte) error {
	res, err := s.keys.UpdateOne(ctx,
		bson.D{{Key: "_id", Value: id}, {Key: "private_key", Value: bson.Binary{Data: prev}}},
		bson.D{{Key: "$set", Value: bson.D{{Key: "private_key", Value: bson.Binary{Data: next}}}}})
	if err != nil {
		return translate(err)
	}
	if res.MatchedCount == 1 {
		return nil
	}
	n, err := s.keys.CountDocuments(ctx, bson.D{{Key: "_id", Value: id}})
	if err != nil {
		return translate(err)
	}
	if n == 0 {
		return domain.ErrNotFound
	}
	return domain.ErrStale
}
