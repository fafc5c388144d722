package sqlite

import (
	"context"
	"database/sql"
	"time"
)

// TouchDevice sets the device's last sync time to at unless it holds a later
// one. Returns ErrNotFound for an unknown id.
func (s *Store) TouchDevice(ctx context.Context, id string, at time.Time) error {
	// One per device's first sync in a while, beside its push: it joins the
	// pushes' group transaction rather than costing a commit and an fsync of
	// its own (groupcommit.go). Running it again is harmless (max).
	return s.writeGrouped(ctx, 1, func(ctx context.Context, tx *sql.Tx) error {
		res, err := tx.ExecContext(ctx, `UPDATE devices SET last_seen_at = max(coalesce(last_seen_at, 0), ?)
			WHERE id = ?`, at.UnixMilli(), id)
		if err != nil {
			return err
		}
		return affected(res)
	})
}

// DeviceLastSeen returns the last sync time of the project's devices that
// synced, keyed by device id.
func (s *Store) DeviceLastSeen(ctx context.Context, projectID string) (map[string]time.Time, error) {
	out := map[string]time.Time{}
	err := s.read(ctx, func(tx *sql.Tx) error {
		rows, err := tx.QueryContext(ctx, `SELECT id, last_seen_at FROM devices
			WHERE project_id = ? AND last_seen_at IS NOT NULL`, projectID)
		if err != nil {
			return err
		}
		defer rows.Close()
		for rows.Next() {
			var id string
			var at sql.NullInt64
			if err := rows.Scan(&id, &at); err != nil {
				return err
			}
			out[id] = fromMS(at)
		}
		return rows.Err()
	})
	return out, err
}

// RevokeSubjectFamiliesExcept revokes every family of a subject but keepID and
// returns how many were not revoked before.
func (s *Store) RevokeSubjectFamiliesExcept(ctx context.Context, subject, keepID string, at time.Time) (int, error) {
	var n int64
	err := s.write(ctx, func(tx *sql.Tx) error {
		res, err := tx.ExecContext(ctx, `UPDATE token_families SET revoked_at = ?
			WHERE subject = ? AND id <> ? AND revoked_at IS NULL`, at.UnixMilli(), subject, keepID)
		if err != nil {
			return err
		}
		n, err = res.RowsAffected()
		return err
	})
	return int(n), err
}
