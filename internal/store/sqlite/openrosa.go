package sqlite

import (
	"context"
	"database/sql"
	"encoding/json"
	"errors"

	"github.com/fieldsync/fieldsync/internal/domain"
)

// SetFormVersionXForm stores a published version's XForm unless it has one;
// the check and the write share the write lock, so the first XForm wins.
func (s *Store) SetFormVersionXForm(ctx context.Context, projectID, formID, version string, xform []byte, md5 string, meta json.RawMessage) (domain.FormVersion, error) {
	var v domain.FormVersion
	err := s.write(ctx, func(tx *sql.Tx) error {
		var err error
		if v, err = getVersion(ctx, tx, projectID, formID, version); err != nil {
			return err
		}
		if v.State != domain.VersionPublished {
			return domain.ErrStale
		}
		if len(v.XForm) > 0 {
			return nil
		}
		if _, err := tx.ExecContext(ctx, `UPDATE form_versions SET xform = ?, xform_md5 = ?, openrosa = ?
			WHERE project_id = ? AND form_id = ? AND version = ?`,
			xform, md5, rawText(meta), projectID, formID, version); err != nil {
			return err
		}
		v, err = getVersion(ctx, tx, projectID, formID, version)
		return err
	})
	if err != nil {
		return domain.FormVersion{}, err
	}
	return v, nil
}

// SetDeviceOpenRosaKey replaces the device's OpenRosa key hash.
func (s *Store) SetDeviceOpenRosaKey(ctx context.Context, deviceID, keyHash string) error {
	return s.write(ctx, func(tx *sql.Tx) error {
		res, err := tx.ExecContext(ctx, `UPDATE devices SET openrosa_key_hash = ? WHERE id = ?`, keyHash, deviceID)
		if err != nil {
			return err
		}
		return affected(res)
	})
}

// GetDeviceByOpenRosaKey returns the device holding the key hash.
func (s *Store) GetDeviceByOpenRosaKey(ctx context.Context, keyHash string) (domain.Device, error) {
	if keyHash == "" {
		return domain.Device{}, domain.ErrNotFound
	}
	var d domain.Device
	err := s.read(ctx, func(tx *sql.Tx) error {
		var err error
		// The repeated condition lets SQLite use the partial index devices_openrosa_key.
		d, err = scanDevice(tx.QueryRowContext(ctx, `SELECT `+deviceCols+` FROM devices
			WHERE openrosa_key_hash = ? AND openrosa_key_hash <> ''`, keyHash))
		return err
	})
	return d, err
}

const instanceCols = `project_id, instance_id, record_id, rev, xml_hash, created_at`

func scanInstance(sc scanner) (domain.OpenRosaInstance, error) {
	var (
		in      domain.OpenRosaInstance
		created sql.NullInt64
	)
	if err := sc.Scan(&in.ProjectID, &in.InstanceID, &in.RecordID, &in.Rev, &in.XMLHash, &created); err != nil {
		return domain.OpenRosaInstance{}, err
	}
	in.CreatedAt = fromMS(created)
	return in, nil
}

// PutOpenRosaInstance stores inst unless its instance id is held.
func (s *Store) PutOpenRosaInstance(ctx context.Context, inst domain.OpenRosaInstance) (domain.OpenRosaInstance, bool, error) {
	var (
		out     domain.OpenRosaInstance
		created bool
	)
	err := s.write(ctx, func(tx *sql.Tx) error {
		res, err := tx.ExecContext(ctx, `INSERT INTO openrosa_instances (`+instanceCols+`) VALUES (?, ?, ?, ?, ?, ?)
			ON CONFLICT (project_id, instance_id) DO NOTHING`,
			inst.ProjectID, inst.InstanceID, inst.RecordID, inst.Rev, inst.XMLHash, ms(inst.CreatedAt))
		if err != nil {
			return err
		}
		n, err := res.RowsAffected()
		if err != nil {
			return err
		}
		created = n == 1
		out, err = scanInstance(tx.QueryRowContext(ctx, `SELECT `+instanceCols+` FROM openrosa_instances
			WHERE project_id = ? AND instance_id = ?`, inst.ProjectID, inst.InstanceID))
		return err
	})
	if err != nil {
		return domain.OpenRosaInstance{}, false, err
	}
	return out, created, nil
}

// GetOpenRosaInstance returns ErrNotFound for an unknown instance id.
func (s *Store) GetOpenRosaInstance(ctx context.Context, projectID, instanceID string) (domain.OpenRosaInstance, error) {
	var in domain.OpenRosaInstance
	err := s.read(ctx, func(tx *sql.Tx) error {
		var err error
		in, err = scanInstance(tx.QueryRowContext(ctx, `SELECT `+instanceCols+` FROM openrosa_instances
			WHERE project_id = ? AND instance_id = ?`, projectID, instanceID))
		return err
	})
	if errors.Is(err, sql.ErrNoRows) {
		return domain.OpenRosaInstance{}, domain.ErrNotFound
	}
	return in, err
}
