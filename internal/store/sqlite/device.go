package sqlite

import (
	"context"
	"database/sql"
	"maps"
	"time"

	"github.com/fieldsync/fieldsync/internal/domain"
)

const deviceCols = `id, project_id, name, enrollment_hash, enrollment_expires_at, enrolled_at, info, revoked_at,
	created_by, created_at`

func scanDevice(sc scanner) (domain.Device, error) {
	var (
		d                                   domain.Device
		expires, enrolled, revoked, created sql.NullInt64
		info                                sql.NullString
	)
	if err := sc.Scan(&d.ID, &d.ProjectID, &d.Name, &d.EnrollmentHash, &expires, &enrolled, &info, &revoked,
		&d.CreatedBy, &created); err != nil {
		return domain.Device{}, err
	}
	d.EnrollmentExpiresAt = fromMS(expires)
	d.EnrolledAt = fromMSPtr(enrolled)
	d.RevokedAt = fromMSPtr(revoked)
	d.CreatedAt = fromMS(created)
	var err error
	if d.Info, err = fromMapText(info); err != nil {
		return domain.Device{}, err
	}
	return d, nil
}

// CreateDevice returns ErrExists if the id (or the enrollment hash) is taken.
func (s *Store) CreateDevice(ctx context.Context, d domain.Device) error {
	info, err := mapText(d.Info)
	if err != nil {
		return err
	}
	return s.write(ctx, func(tx *sql.Tx) error {
		_, err := tx.ExecContext(ctx, `INSERT INTO devices (`+deviceCols+`) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?)`,
			d.ID, d.ProjectID, d.Name, d.EnrollmentHash, ms(d.EnrollmentExpiresAt), msPtr(d.EnrolledAt), info,
			msPtr(d.RevokedAt), d.CreatedBy, ms(d.CreatedAt))
		return err
	})
}

// GetDevice returns ErrNotFound for an unknown id.
func (s *Store) GetDevice(ctx context.Context, id string) (domain.Device, error) {
	var d domain.Device
	err := s.read(ctx, func(tx *sql.Tx) error {
		var err error
		d, err = scanDevice(tx.QueryRowContext(ctx, `SELECT `+deviceCols+` FROM devices WHERE id = ?`, id))
		return err
	})
	return d, err
}

// ListDevices returns a project's devices ordered by creation time (then id).
func (s *Store) ListDevices(ctx context.Context, projectID string) ([]domain.Device, error) {
	var out []domain.Device
	err := s.read(ctx, func(tx *sql.Tx) error {
		rows, err := tx.QueryContext(ctx, `SELECT `+deviceCols+` FROM devices WHERE project_id = ?
			ORDER BY created_at, id`, projectID)
		if err != nil {
			return err
		}
		defer rows.Close()
		for rows.Next() {
			d, err := scanDevice(rows)
			if err != nil {
				return err
			}
			out = append(out, d)
		}
		return rows.Err()
	})
	return out, err
}

// EnrollDevice uses an enrollment code. The check and the update run under the
// write lock, so of several concurrent callers exactly one finds the code unused.
func (s *Store) EnrollDevice(ctx context.Context, enrollmentHash string, info map[string]string, now time.Time) (domain.Device, error) {
	infoText, err := mapText(info)
	if err != nil {
		return domain.Device{}, err
	}
	var d domain.Device
	err = s.write(ctx, func(tx *sql.Tx) error {
		if enrollmentHash == "" {
			return domain.ErrNotFound
		}
		var err error
		// The repeated condition lets SQLite use the partial index devices_enrollment.
		d, err = scanDevice(tx.QueryRowContext(ctx, `SELECT `+deviceCols+` FROM devices
			WHERE enrollment_hash = ? AND enrollment_hash <> ''`, enrollmentHash))
		if err != nil {
			return err
		}
		if d.EnrolledAt != nil || d.RevokedAt != nil || !now.Before(d.EnrollmentExpiresAt) {
			return domain.ErrStale
		}
		if _, err := tx.ExecContext(ctx, `UPDATE devices SET enrolled_at = ?, info = ? WHERE id = ?`,
			now.UnixMilli(), infoText, d.ID); err != nil {
			return err
		}
		at := time.UnixMilli(now.UnixMilli()).UTC()
		d.EnrolledAt = &at
		d.Info = nil
		if len(info) > 0 {
			d.Info = maps.Clone(info)
		}
		return nil
	})
	if err != nil {
		return domain.Device{}, err
	}
	return d, nil
}

// RevokeDevice sets RevokedAt, kept from the first revocation. Returns
// ErrNotFound for an unknown id.
func (s *Store) RevokeDevice(ctx context.Context, id string, at time.Time) error {
	return s.write(ctx, func(tx *sql.Tx) error {
		res, err := tx.ExecContext(ctx, `UPDATE devices SET revoked_at = coalesce(revoked_at, ?) WHERE id = ?`,
			at.UnixMilli(), id)
		if err != nil {
			return err
		}
		return affected(res)
	})
}
