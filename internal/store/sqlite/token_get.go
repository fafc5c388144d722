package sqlite

import (
	"context"
	"database/sql"

	"github.com/fieldsync/fieldsync/internal/domain"
)

// GetRefreshToken returns the token of hash, spent or not. Returns ErrNotFound
// for an unknown hash.
func (s *Store) GetRefreshToken(ctx context.Context, hash string) (domain.RefreshToken, error) {
	var t domain.RefreshToken
	err := s.read(ctx, func(tx *sql.Tx) error {
		var err error
		t, err = scanRefreshToken(tx.QueryRowContext(ctx, `SELECT `+refreshTokenColumns+`
			FROM refresh_tokens WHERE hash = ?`, hash))
		return err
	})
	if err != nil {
		return domain.RefreshToken{}, err
	}
	return t, nil
}
