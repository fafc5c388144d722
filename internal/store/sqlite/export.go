package sqlite

import (
	"context"
	"database/sql"

	"github.com/fieldsync/fieldsync/internal/domain"
)

// The methods below read what the store contract has no list for (it never
// needs one to serve): fieldsync migrate uses them to copy a SQLite store to
// MongoDB whole, so that tablets stay signed in across the move.

// ListSettings returns every setting, keyed by name.
func (s *Store) ListSettings(ctx context.Context) (map[string]string, error) {
	out := map[string]string{}
	err := s.read(ctx, func(tx *sql.Tx) error {
		rows, err := tx.QueryContext(ctx, `SELECT key, value FROM settings ORDER BY key`)
		if err != nil {
			return err
		}
		defer rows.Close()
		for rows.Next() {
			var k, v string
			if err := rows.Scan(&k, &v); err != nil {
				return err
			}
			out[k] = v
		}
		return rows.Err()
	})
	return out, err
}

// ListTokenFamilies returns every refresh-token family, revoked ones included.
func (s *Store) ListTokenFamilies(ctx context.Context) ([]domain.TokenFamily, error) {
	var out []domain.TokenFamily
	err := s.read(ctx, func(tx *sql.Tx) error {
		rows, err := tx.QueryContext(ctx, `SELECT id, subject, device_id, revoked_at, created_at FROM token_families ORDER BY id`)
		if err != nil {
			return err
		}
		defer rows.Close()
		for rows.Next() {
			var (
				f                domain.TokenFamily
				revoked, created sql.NullInt64
			)
			if err := rows.Scan(&f.ID, &f.Subject, &f.DeviceID, &revoked, &created); err != nil {
				return err
			}
			f.RevokedAt, f.CreatedAt = fromMSPtr(revoked), fromMS(created)
			out = append(out, f)
		}
		return rows.Err()
	})
	return out, err
}

// ListRefreshTokens returns every refresh token, spent ones included, each
// after its parent.
func (s *Store) ListRefreshTokens(ctx context.Context) ([]domain.RefreshToken, error) {
	var out []domain.RefreshToken
	err := s.read(ctx, func(tx *sql.Tx) error {
		rows, err := tx.QueryContext(ctx, `SELECT `+refreshTokenColumns+` FROM refresh_tokens ORDER BY created_at, hash`)
		if err != nil {
			return err
		}
		defer rows.Close()
		for rows.Next() {
			var (
				t                       domain.RefreshToken
				expires, spent, created sql.NullInt64
			)
			if err := rows.Scan(&t.Hash, &t.FamilyID, &t.Subject, &t.Parent, &expires, &spent, &created); err != nil {
				return err
			}
			t.ExpiresAt, t.SpentAt, t.CreatedAt = fromMS(expires), fromMSPtr(spent), fromMS(created)
			out = append(out, t)
		}
		return rows.Err()
	})
	return out, err
}

// LastFeedPosition returns the last position the project's feed handed out
// (0 for none): every pull cursor a client holds is at most this.
func (s *Store) LastFeedPosition(ctx context.Context, projectID string) (int64, error) {
	var n int64
	err := s.read(ctx, func(tx *sql.Tx) error {
		return tx.QueryRowContext(ctx, `SELECT COALESCE(MAX(seq), 0) FROM records WHERE project_id = ?`, projectID).Scan(&n)
	})
	return n, err
}
