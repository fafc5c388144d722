package sqlite

import (
	"context"
	"database/sql"

	"github.com/fieldsync/fieldsync/internal/domain"
)

const userCols = `username, display_name, password_hash, admin, disabled, tokens_valid_after, created_at, updated_at`

func scanUser(sc scanner) (domain.User, error) {
	var (
		u                       domain.User
		valid, created, updated sql.NullInt64
	)
	if err := sc.Scan(&u.Username, &u.DisplayName, &u.PasswordHash, &u.Admin, &u.Disabled,
		&valid, &created, &updated); err != nil {
		return domain.User{}, err
	}
	u.TokensValidAfter = fromMS(valid)
	u.CreatedAt = fromMS(created)
	u.UpdatedAt = fromMS(updated)
	return u, nil
}

// CreateUser stores a new user. Returns ErrExists if the username is taken.
func (s *Store) CreateUser(ctx context.Context, u domain.User) error {
	return s.write(ctx, func(tx *sql.Tx) error {
		_, err := tx.ExecContext(ctx, `INSERT INTO users (`+userCols+`) VALUES (?, ?, ?, ?, ?, ?, ?, ?)`,
			u.Username, u.DisplayName, u.PasswordHash, u.Admin, u.Disabled,
			ms(u.TokensValidAfter), ms(u.CreatedAt), ms(u.UpdatedAt))
		return err
	})
}

// GetUser returns ErrNotFound for an unknown username.
func (s *Store) GetUser(ctx context.Context, username string) (domain.User, error) {
	var u domain.User
	err := s.read(ctx, func(tx *sql.Tx) error {
		var err error
		u, err = scanUser(tx.QueryRowContext(ctx, `SELECT `+userCols+` FROM users WHERE username = ?`, username))
		return err
	})
	return u, err
}

// UpdateUser replaces everything but Username and CreatedAt. Returns ErrNotFound
// for an unknown username.
func (s *Store) UpdateUser(ctx context.Context, u domain.User) error {
	return s.write(ctx, func(tx *sql.Tx) error {
		res, err := tx.ExecContext(ctx, `UPDATE users SET display_name = ?, password_hash = ?, admin = ?,
			disabled = ?, tokens_valid_after = ?, updated_at = ? WHERE username = ?`,
			u.DisplayName, u.PasswordHash, u.Admin, u.Disabled, ms(u.TokensValidAfter), ms(u.UpdatedAt), u.Username)
		if err != nil {
			return err
		}
		return affected(res)
	})
}

// ListUsers returns every user ordered by username.
func (s *Store) ListUsers(ctx context.Context) ([]domain.User, error) {
	var out []domain.User
	err := s.read(ctx, func(tx *sql.Tx) error {
		rows, err := tx.QueryContext(ctx, `SELECT `+userCols+` FROM users ORDER BY username`)
		if err != nil {
			return err
		}
		defer rows.Close()
		for rows.Next() {
			u, err := scanUser(rows)
			if err != nil {
				return err
			}
			out = append(out, u)
		}
		return rows.Err()
	})
	return out, err
}
