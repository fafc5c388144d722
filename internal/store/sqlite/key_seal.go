package sqlite

import (
	"bytes"
	"context"
	"database/sql"

	"github.com/fieldsync/fieldsync/internal/domain"
)

// ReplaceSigningKeyMaterial sets the private key of key id to next if it is
// still prev. Returns ErrNotFound for an unknown id and ErrStale when the key
// holds other bytes (another instance sealed it first).
func (s *Store) ReplaceSigningKeyMaterial(ctx context.Context, id string, prev, next []byte) error {
	return s.write(ctx, func(tx *sql.Tx) error {
		var cur []byte
		if err := tx.QueryRowContext(ctx, `SELECT private_key FROM signing_keys WHERE id = ?`, id).Scan(&cur); err != nil {
			return err // sql.ErrNoRows becomes ErrNotFound
		}
		if !bytes.Equal(cur, prev) {
			return domain.ErrStale
		}
		_, err := tx.ExecContext(ctx, `UPDATE signing_keys SET private_key = ? WHERE id = ?`, next, id)
		return err
	})
}
