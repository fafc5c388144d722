package sqlite

import (
	"context"
	"database/sql"
	"errors"
	"time"

	"github.com/fieldsync/fieldsync/internal/domain"
)

// CreateTokenFamily returns ErrExists if the id is taken.
func (s *Store) CreateTokenFamily(ctx context.Context, f domain.TokenFamily) error {
	return s.write(ctx, func(tx *sql.Tx) error {
		_, err := tx.ExecContext(ctx, `INSERT INTO token_families (id, subject, device_id, revoked_at, created_at)
			VALUES (?, ?, ?, ?, ?)`, f.ID, f.Subject, f.DeviceID, msPtr(f.RevokedAt), ms(f.CreatedAt))
		return err
	})
}

// GetTokenFamily returns ErrNotFound for an unknown id.
func (s *Store) GetTokenFamily(ctx context.Context, id string) (domain.TokenFamily, error) {
	var (
		f                domain.TokenFamily
		revoked, created sql.NullInt64
	)
	err := s.read(ctx, func(tx *sql.Tx) error {
		return tx.QueryRowContext(ctx, `SELECT id, subject, device_id, revoked_at, created_at
			FROM token_families WHERE id = ?`, id).Scan(&f.ID, &f.Subject, &f.DeviceID, &revoked, &created)
	})
	if err != nil {
		return domain.TokenFamily{}, err
	}
	f.RevokedAt = fromMSPtr(revoked)
	f.CreatedAt = fromMS(created)
	return f, nil
}

// RevokeTokenFamily sets RevokedAt, kept from the first revocation. Returns
// ErrNotFound for an unknown id.
func (s *Store) RevokeTokenFamily(ctx context.Context, id string, at time.Time) error {
	return s.write(ctx, func(tx *sql.Tx) error {
		res, err := tx.ExecContext(ctx, `UPDATE token_families SET revoked_at = coalesce(revoked_at, ?)
			WHERE id = ?`, at.UnixMilli(), id)
		if err != nil {
			return err
		}
		return affected(res)
	})
}

// RevokeSubjectFamilies revokes every family of a subject and returns how many
// were not revoked before.
func (s *Store) RevokeSubjectFamilies(ctx context.Context, subject string, at time.Time) (int, error) {
	var n int64
	err := s.write(ctx, func(tx *sql.Tx) error {
		res, err := tx.ExecContext(ctx, `UPDATE token_families SET revoked_at = ?
			WHERE subject = ? AND revoked_at IS NULL`, at.UnixMilli(), subject)
		if err != nil {
			return err
		}
		n, err = res.RowsAffected()
		return err
	})
	return int(n), err
}

// CreateRefreshToken returns ErrExists if the hash is taken, or if another token
// has the same non-empty Parent (the partial unique index refresh_tokens_parent).
func (s *Store) CreateRefreshToken(ctx context.Context, t domain.RefreshToken) error {
	return s.write(ctx, func(tx *sql.Tx) error {
		_, err := tx.ExecContext(ctx, `INSERT INTO refresh_tokens (hash, family_id, subject, parent, expires_at,
			spent_at, created_at) VALUES (?, ?, ?, ?, ?, ?, ?)`,
			t.Hash, t.FamilyID, t.Subject, t.Parent, ms(t.ExpiresAt), msPtr(t.SpentAt), ms(t.CreatedAt))
		return err
	})
}

// refreshTokenColumns are the columns scanRefreshToken reads, in its order.
const refreshTokenColumns = `hash, family_id, subject, parent, expires_at, spent_at, created_at`

// scanRefreshToken reads one row of refreshTokenColumns.
func scanRefreshToken(row *sql.Row) (domain.RefreshToken, error) {
	var (
		t                       domain.RefreshToken
		expires, spent, created sql.NullInt64
	)
	if err := row.Scan(&t.Hash, &t.FamilyID, &t.Subject, &t.Parent, &expires, &spent, &created); err != nil {
		return domain.RefreshToken{}, err
	}
	t.ExpiresAt = fromMS(expires)
	t.SpentAt = fromMSPtr(spent)
	t.CreatedAt = fromMS(created)
	return t, nil
}

// SpendRefreshToken marks a token spent. The check and the update run under the
// write lock, so of several concurrent callers exactly one spends it; the others
// get the stored token with ErrStale.
func (s *Store) SpendRefreshToken(ctx context.Context, hash string, at time.Time) (domain.RefreshToken, error) {
	var t domain.RefreshToken
	err := s.write(ctx, func(tx *sql.Tx) error {
		var err error
		t, err = scanRefreshToken(tx.QueryRowContext(ctx, `SELECT `+refreshTokenColumns+`
			FROM refresh_tokens WHERE hash = ?`, hash))
		if err != nil {
			return err
		}
		if t.SpentAt != nil {
			return domain.ErrStale
		}
		if _, err := tx.ExecContext(ctx, `UPDATE refresh_tokens SET spent_at = ? WHERE hash = ?`,
			at.UnixMilli(), hash); err != nil {
			return err
		}
		t.SpentAt = fromMSPtr(sql.NullInt64{Int64: at.UnixMilli(), Valid: true})
		return nil
	})
	if err != nil {
		if errors.Is(err, domain.ErrStale) {
			return t, err
		}
		return domain.RefreshToken{}, err
	}
	return t, nil
}

// GetRefreshTokenByParent returns the token whose parent is parentHash, through
// the index refresh_tokens_parent. Returns ErrNotFound when there is none, and for
// "" (which marks tokens without a parent, not a parent).
func (s *Store) GetRefreshTokenByParent(ctx context.Context, parentHash string) (domain.RefreshToken, error) {
	if parentHash == "" {
		return domain.RefreshToken{}, domain.ErrNotFound
	}
	var t domain.RefreshToken
	err := s.read(ctx, func(tx *sql.Tx) error {
		var err error
		t, err = scanRefreshToken(tx.QueryRowContext(ctx, `SELECT `+refreshTokenColumns+`
			FROM refresh_tokens WHERE parent = ? AND parent != ''`, parentHash))
		return err
	})
	if err != nil {
		return domain.RefreshToken{}, err
	}
	return t, nil
}
