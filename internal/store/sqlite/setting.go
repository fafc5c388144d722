package sqlite

import (
	"context"
	"database/sql"
)

// GetSetting returns ErrNotFound for an unknown key.
func (s *Store) GetSetting(ctx context.Context, key string) (string, error) {
	var v string
	err := s.read(ctx, func(tx *sql.Tx) error {
		return tx.QueryRowContext(ctx, `SELECT value FROM settings WHERE key = ?`, key).Scan(&v)
	})
	return v, err
}

// PutSettingIfAbsent stores value under key unless the key exists. The insert and
// the read-back run under the write lock, so exactly one concurrent caller
// creates the key and every caller gets the value that won.
func (s *Store) PutSettingIfAbsent(ctx context.Context, key, value string) (string, bool, error) {
	var (
		stored  string
		created bool
	)
	err := s.write(ctx, func(tx *sql.Tx) error {
		res, err := tx.ExecContext(ctx, `INSERT INTO settings (key, value) VALUES (?, ?) ON CONFLICT (key) DO NOTHING`,
			key, value)
		if err != nil {
			return err
		}
		n, err := res.RowsAffected()
		if err != nil {
			return err
		}
		if n == 1 {
			stored, created = value, true
			return nil
		}
		return tx.QueryRowContext(ctx, `SELECT value FROM settings WHERE key = ?`, key).Scan(&stored)
	})
	if err != nil {
		return "", false, err
	}
	return stored, created, nil
}
