package sqlite

import (
	"context"
	"database/sql"
	"errors"
	"time"

	"github.com/fieldsync/fieldsync/internal/domain"
)

const formCols = `project_id, id, title, state, current_version, closed_at, created_at, updated_at`

func scanForm(sc scanner) (domain.Form, error) {
	var (
		f                        domain.Form
		closed, created, updated sql.NullInt64
	)
	if err := sc.Scan(&f.ProjectID, &f.ID, &f.Title, &f.State, &f.CurrentVersion, &closed, &created,
		&updated); err != nil {
		return domain.Form{}, err
	}
	f.ClosedAt = fromMSPtr(closed)
	f.CreatedAt = fromMS(created)
	f.UpdatedAt = fromMS(updated)
	return f, nil
}

// versionCols are the columns of a version without its definition; scanVersion
// reads them (and the definition when withDefinition).
const versionCols = `project_id, form_id, version, state, hash, title, policy, shared, published_at, created_at,
	updated_at`

func scanVersion(sc scanner, withDefinition bool) (domain.FormVersion, error) {
	var (
		v                           domain.FormVersion
		published, created, updated sql.NullInt64
		def, meta                   sql.NullString
		xform                       []byte
	)
	dest := []any{&v.ProjectID, &v.FormID, &v.Version, &v.State, &v.Hash, &v.Title, &v.Policy, &v.Shared,
		&published, &created, &updated}
	if withDefinition {
		dest = append(dest, &def, &xform, &v.XFormMD5, &meta)
	}
	if err := sc.Scan(dest...); err != nil {
		return domain.FormVersion{}, err
	}
	v.PublishedAt = fromMSPtr(published)
	v.CreatedAt = fromMS(created)
	v.UpdatedAt = fromMS(updated)
	v.Definition = fromRawText(def)
	v.XForm = xform
	v.OpenRosa = fromRawText(meta)
	return v, nil
}

// PutFormVersion creates or replaces a draft version, creating the form (open)
// if needed. A replaced draft keeps its CreatedAt, so it keeps its place in the
// form's version list. Until a version is published the form is named after its
// latest draft; from then on after its current version.
func (s *Store) PutFormVersion(ctx context.Context, v domain.FormVersion) (bool, error) {
	var created bool
	err := s.write(ctx, func(tx *sql.Tx) error {
		var current string
		err := tx.QueryRowContext(ctx, `SELECT current_version FROM forms WHERE project_id = ? AND id = ?`,
			v.ProjectID, v.FormID).Scan(&current)
		switch {
		case errors.Is(err, sql.ErrNoRows):
			if _, err := tx.ExecContext(ctx, `INSERT INTO forms (`+formCols+`) VALUES (?, ?, ?, ?, '', NULL, ?, ?)`,
				v.ProjectID, v.FormID, v.Title, domain.FormOpen, ms(v.CreatedAt), ms(v.UpdatedAt)); err != nil {
				return err
			}
		case err != nil:
			return err
		case current == "":
			if _, err := tx.ExecContext(ctx, `UPDATE forms SET title = ?, updated_at = ? WHERE project_id = ? AND id = ?`,
				v.Title, ms(v.UpdatedAt), v.ProjectID, v.FormID); err != nil {
				return err
			}
		default:
			if _, err := tx.ExecContext(ctx, `UPDATE forms SET updated_at = ? WHERE project_id = ? AND id = ?`,
				ms(v.UpdatedAt), v.ProjectID, v.FormID); err != nil {
				return err
			}
		}

		var state string
		err = tx.QueryRowContext(ctx, `SELECT state FROM form_versions WHERE project_id = ? AND form_id = ? AND version = ?`,
			v.ProjectID, v.FormID, v.Version).Scan(&state)
		switch {
		case errors.Is(err, sql.ErrNoRows):
			created = true
			_, err = tx.ExecContext(ctx, `INSERT INTO form_versions (`+versionCols+`, definition)
				VALUES (?, ?, ?, ?, ?, ?, ?, ?, NULL, ?, ?, ?)`,
				v.ProjectID, v.FormID, v.Version, domain.VersionDraft, v.Hash, v.Title, v.Policy, v.Shared,
				ms(v.CreatedAt), ms(v.UpdatedAt), rawText(v.Definition))
			return err
		case err != nil:
			return err
		case state == domain.VersionPublished:
			return domain.ErrStale
		}
		_, err = tx.ExecContext(ctx, `UPDATE form_versions SET hash = ?, title = ?, policy = ?, shared = ?,
			definition = ?, updated_at = ? WHERE project_id = ? AND form_id = ? AND version = ?`,
			v.Hash, v.Title, v.Policy, v.Shared, rawText(v.Definition), ms(v.UpdatedAt),
			v.ProjectID, v.FormID, v.Version)
		return err
	})
	return created, err
}

// getVersion reads one version with its definition.
func getVersion(ctx context.Context, tx *sql.Tx, projectID, formID, version string) (domain.FormVersion, error) {
	return scanVersion(tx.QueryRowContext(ctx, `SELECT `+versionCols+`, definition, xform, xform_md5, openrosa FROM form_versions
		WHERE project_id = ? AND form_id = ? AND version = ?`, projectID, formID, version), true)
}

// GetFormVersion returns ErrNotFound for an unknown form or version.
func (s *Store) GetFormVersion(ctx context.Context, projectID, formID, version string) (domain.FormVersion, error) {
	var v domain.FormVersion
	err := s.read(ctx, func(tx *sql.Tx) error {
		var err error
		v, err = getVersion(ctx, tx, projectID, formID, version)
		return err
	})
	return v, err
}

// PublishFormVersion publishes a draft and makes it the form's current version;
// publishing a published version changes nothing and returns it.
func (s *Store) PublishFormVersion(ctx context.Context, projectID, formID, version string, at time.Time) (domain.FormVersion, error) {
	var v domain.FormVersion
	err := s.write(ctx, func(tx *sql.Tx) error {
		var err error
		if v, err = getVersion(ctx, tx, projectID, formID, version); err != nil {
			return err
		}
		if v.State == domain.VersionPublished {
			return nil
		}
		if _, err := tx.ExecContext(ctx, `UPDATE form_versions SET state = ?, published_at = ?, updated_at = ?
			WHERE project_id = ? AND form_id = ? AND version = ?`,
			domain.VersionPublished, at.UnixMilli(), at.UnixMilli(), projectID, formID, version); err != nil {
			return err
		}
		if _, err := tx.ExecContext(ctx, `UPDATE forms SET current_version = ?, title = ?, updated_at = ?
			WHERE project_id = ? AND id = ?`, version, v.Title, at.UnixMilli(), projectID, formID); err != nil {
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

// CloseForm sets the form's state to closed, ClosedAt kept from the first close.
// Returns ErrNotFound for an unknown form.
func (s *Store) CloseForm(ctx context.Context, projectID, formID string, at time.Time) error {
	return s.write(ctx, func(tx *sql.Tx) error {
		res, err := tx.ExecContext(ctx, `UPDATE forms SET state = ?2,
			updated_at = CASE WHEN closed_at IS NULL THEN ?1 ELSE updated_at END,
			closed_at = coalesce(closed_at, ?1) WHERE project_id = ?3 AND id = ?4`,
			at.UnixMilli(), domain.FormClosed, projectID, formID)
		if err != nil {
			return err
		}
		return affected(res)
	})
}

// listVersions reads the versions (without definitions) of one form, or of every
// form of the project when formID is "", keyed by form, in creation order.
func listVersions(ctx context.Context, tx *sql.Tx, projectID, formID string) (map[string][]domain.FormVersion, error) {
	q := `SELECT ` + versionCols + ` FROM form_versions WHERE project_id = ?`
	args := []any{projectID}
	if formID != "" {
		q += ` AND form_id = ?`
		args = append(args, formID)
	}
	rows, err := tx.QueryContext(ctx, q+` ORDER BY form_id, created_at, rowid`, args...)
	if err != nil {
		return nil, err
	}
	defer rows.Close()
	out := map[string][]domain.FormVersion{}
	for rows.Next() {
		v, err := scanVersion(rows, false)
		if err != nil {
			return nil, err
		}
		out[v.FormID] = append(out[v.FormID], v)
	}
	return out, rows.Err()
}

// GetForm returns a form with its versions (without definitions) in creation
// order. Returns ErrNotFound for an unknown form.
func (s *Store) GetForm(ctx context.Context, projectID, formID string) (domain.Form, error) {
	// Prepared once, before the transaction (see readStmt): a push reads its
	// form, and parsing these two statements cost more than running them.
	formSt, err := s.readStmt(ctx, `SELECT `+formCols+` FROM forms WHERE project_id = ? AND id = ?`)
	if err != nil {
		return domain.Form{}, dbErr(ctx, err)
	}
	versionsSt, err := s.readStmt(ctx, `SELECT `+versionCols+` FROM form_versions WHERE project_id = ? AND form_id = ?
		ORDER BY created_at, rowid`)
	if err != nil {
		return domain.Form{}, dbErr(ctx, err)
	}
	var f domain.Form
	err = s.read(ctx, func(tx *sql.Tx) error {
		var err error
		f, err = scanForm(tx.StmtContext(ctx, formSt).QueryRowContext(ctx, projectID, formID))
		if err != nil {
			return err
		}
		rows, err := tx.StmtContext(ctx, versionsSt).QueryContext(ctx, projectID, formID)
		if err != nil {
			return err
		}
		defer rows.Close()
		for rows.Next() {
			v, err := scanVersion(rows, false)
			if err != nil {
				return err
			}
			f.Versions = append(f.Versions, v)
		}
		return rows.Err()
	})
	if err != nil {
		return domain.Form{}, err
	}
	return f, nil
}

// ListForms returns a project's forms ordered by id, each with its versions.
func (s *Store) ListForms(ctx context.Context, projectID string) ([]domain.Form, error) {
	var out []domain.Form
	err := s.read(ctx, func(tx *sql.Tx) error {
		rows, err := tx.QueryContext(ctx, `SELECT `+formCols+` FROM forms WHERE project_id = ? ORDER BY id`, projectID)
		if err != nil {
			return err
		}
		defer rows.Close()
		for rows.Next() {
			f, err := scanForm(rows)
			if err != nil {
				return err
			}
			out = append(out, f)
		}
		if err := rows.Err(); err != nil {
			return err
		}
		vs, err := listVersions(ctx, tx, projectID, "")
		if err != nil {
			return err
		}
		for i := range out {
			out[i].Versions = vs[out[i].ID]
		}
		return nil
	})
	return out, err
}

// ReopenForm opens a closed form again and clears its ClosedAt; an open form
// is left as it is.
func (s *Store) ReopenForm(ctx context.Context, projectID, formID string, at time.Time) error {
	return s.write(ctx, func(tx *sql.Tx) error {
		res, err := tx.ExecContext(ctx, `UPDATE forms SET state = ?2,
			updated_at = CASE WHEN state = ?3 THEN ?1 ELSE updated_at END,
			closed_at = NULL WHERE project_id = ?4 AND id = ?5`,
			at.UnixMilli(), domain.FormOpen, domain.FormClosed, projectID, formID)
		if err != nil {
			return err
		}
		return affected(res)
	})
}
