package mongo

import (
	"context"
	"time"

	"go.mongodb.org/mongo-driver/v2/bson"
	"go.mongodb.org/mongo-driver/v2/mongo/options"

	"github.com/fieldsync/fieldsync/internal/domain"
)

// keyDoc is a JWT signing key, keyed by its kid. The private key sits in the
// database so that every instance signs with the same key, sealed by the
// identity service with a secret the database does not hold (README, "Secrets
// and backups").
type keyDoc struct {
	ID         string     `bson:"_id"`
	Algorithm  string     `bson:"algorithm"`
	PrivateKey []byte     `bson:"private_key"`
	CreatedAt  *time.Time `bson:"created_at,omitempty"`
	RetiredAt  *time.Time `bson:"retired_at,omitempty"`
}

// CreateSigningKey returns ErrExists if the id is taken.
func (s *Store) CreateSigningKey(ctx context.Context, k domain.SigningKey) error {
	_, err := s.keys.InsertOne(ctx, keyDoc{ID: k.ID, Algorithm: k.Algorithm, PrivateKey: k.PrivateKey,
		CreatedAt: timePtr(k.CreatedAt), RetiredAt: utcPtr(k.RetiredAt)})
	return translate(err)
}

// ListSigningKeys returns every key, newest first (by CreatedAt, then id).
func (s *Store) ListSigningKeys(ctx context.Context) ([]domain.SigningKey, error) {
	docs, err := findAll[keyDoc](ctx, s.keys, bson.D{},
		options.Find().SetSort(bson.D{{Key: "created_at", Value: -1}, {Key: "_id", Value: -1}}))
	if err != nil {
		return nil, err
	}
	out := make([]domain.SigningKey, len(docs))
	for i, d := range docs {
		out[i] = domain.SigningKey{ID: d.ID, Algorithm: d.Algorithm, PrivateKey: d.PrivateKey,
			CreatedAt: timeVal(d.CreatedAt), RetiredAt: utcPtr(d.RetiredAt)}
	}
	return out, nil
}

// RetireSigningKeys sets RetiredAt on every key but keepID that has none.
func (s *Store) RetireSigningKeys(ctx context.Context, keepID string, at time.Time) error {
	_, err := s.keys.UpdateMany(ctx,
		bson.D{{Key: "_id", Value: bson.D{{Key: "$ne", Value: keepID}}}, {Key: "retired_at", Value: nil}},
		bson.D{{Key: "$set", Value: bson.D{{Key: "retired_at", Value: ms(at)}}}})
	return translate(err)
}
