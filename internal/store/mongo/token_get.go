package mongo

import (
	"context"

	"go.mongodb.org/mongo-driver/v2/bson"

	"github.com/fieldsync/fieldsync/internal/domain"
)

// GetRefreshToken returns the token of hash, spent or not. Returns ErrNotFound
// for an unknown hash. SpentAt comes from the token document, as in
// GetRefreshTokenByParent: a spend in flight reads as unspent, and
// SpendRefreshToken, which decides on the spend document, has the last word.
func (s *Store) GetRefreshToken(ctx context.Context, hash string) (domain.RefreshToken, error) {
	d, err := findOne[tokenDoc](ctx, s.tokens, bson.D{{Key: "_id", Value: hash}})
	if err != nil {
		return domain.RefreshToken{}, err
	}
	return d.token(), nil
}
