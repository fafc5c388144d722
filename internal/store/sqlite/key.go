package sqlite

import (
	"context"
	"database/sql"
	"time"

	"github.com/fieldsync/fieldsync/internal/domain"
)

// CreateSigningKey returns ErrExists if the id is taken.
func (s *Store) CreateSigningKey(ctx context.Context, k domain.SigningKey) error {
	return s.write(ctx, func(tx *sql.Tx) error {
		_, err := tx.ExecContext(ctx, `INSERT INTO signing_keys (id, algorithm, private_key, created_at, retired_at)
			VALUES (?, ?, ?, ?, ?)`, k.ID, k.Algorithm, k.PrivateKey, ms(k.CreatedAt), msPtr(k.RetiredAt))
		return err
	})
}

// ListSigningKeys returns every key, newest first (by CreatedAt, then id).
func (s *Store) ListSigningKeys(ctx context.Context) ([]domain.SigningKey, error) {
	var out []domain.SigningKey
	err := s.read(ctx, func(tx *sql.Tx) error {
		rows, err := tx.QueryContext(ctx, `SELECT id, algorithm, private_key, created_at, retired_at
			FROM signing_keys ORDER BY created_at DESC, id DESC`)
		if err != nil {
			return err
		}
		defer rows.Close()
		for rows.Next() {
			var (
				k                domain.SigningKey
				created, retired sql.NullInt64
			)
			if err := rows.Scan(&k.ID, &k.Algorithm, &k.PrivateKey, &created, &retired); err != nil {
				return err
			}
			k.CreatedAt = fromMS(created)
			k.RetiredAt = fromMSPtr(retired)
			out = append(out, k)
		}
		return rows.Err()
	})
	return out, err
}

// RetireSigningKeys sets RetiredAt on every key but keepID that has none.
func (s *Store) RetireSigningKeys(ctx context.Context, keepID string, at time.Time) error {
	return s.write(ctx, func(tx *sql.Tx) error {
		_, err := tx.ExecContext(ctx, `UPDATE signing_keys SET retired_at = ? WHERE id <> ? AND retired_at IS NULL`,
			at.UnixMilli(), keepID)
		return err
	})
}
