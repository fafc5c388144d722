package sqlite

import (
	"context"
	"database/sql"

	"github.com/fieldsync/fieldsync/internal/domain"
)

// CreateProject returns ErrExists if the id is taken.
func (s *Store) CreateProject(ctx context.Context, p domain.Project) error {
	return s.write(ctx, func(tx *sql.Tx) error {
		_, err := tx.ExecContext(ctx, `INSERT INTO projects (id, title, created_by, created_at) VALUES (?, ?, ?, ?)`,
			p.ID, p.Title, p.CreatedBy, ms(p.CreatedAt))
		return err
	})
}

func scanProject(sc scanner) (domain.Project, error) {
	var (
		p       domain.Project
		created sql.NullInt64
	)
	if err := sc.Scan(&p.ID, &p.Title, &p.CreatedBy, &created); err != nil {
		return domain.Project{}, err
	}
	p.CreatedAt = fromMS(created)
	return p, nil
}

// GetProject returns ErrNotFound for an unknown id.
func (s *Store) GetProject(ctx context.Context, id string) (domain.Project, error) {
	var p domain.Project
	err := s.read(ctx, func(tx *sql.Tx) error {
		var err error
		p, err = scanProject(tx.QueryRowContext(ctx,
			`SELECT id, title, created_by, created_at FROM projects WHERE id = ?`, id))
		return err
	})
	return p, err
}

// ListProjects returns every project ordered by id.
func (s *Store) ListProjects(ctx context.Context) ([]domain.Project, error) {
	var out []domain.Project
	err := s.read(ctx, func(tx *sql.Tx) error {
		rows, err := tx.QueryContext(ctx, `SELECT id, title, created_by, created_at FROM projects ORDER BY id`)
		if err != nil {
			return err
		}
		defer rows.Close()
		for rows.Next() {
			p, err := scanProject(rows)
			if err != nil {
				return err
			}
			out = append(out, p)
		}
		return rows.Err()
	})
	return out, err
}

// PutMembership creates or replaces the role of a user in a project.
func (s *Store) PutMembership(ctx context.Context, m domain.Membership) error {
	return s.write(ctx, func(tx *sql.Tx) error {
		_, err := tx.ExecContext(ctx, `INSERT INTO memberships (project_id, username, role, updated_at)
			VALUES (?, ?, ?, ?)
			ON CONFLICT (project_id, username) DO UPDATE SET role = excluded.role, updated_at = excluded.updated_at`,
			m.ProjectID, m.Username, string(m.Role), ms(m.UpdatedAt))
		return err
	})
}

func scanMembership(sc scanner) (domain.Membership, error) {
	var (
		m       domain.Membership
		role    string
		updated sql.NullInt64
	)
	if err := sc.Scan(&m.ProjectID, &m.Username, &role, &updated); err != nil {
		return domain.Membership{}, err
	}
	m.Role = domain.Role(role)
	m.UpdatedAt = fromMS(updated)
	return m, nil
}

// GetMembership returns ErrNotFound when the user is not a member.
func (s *Store) GetMembership(ctx context.Context, projectID, username string) (domain.Membership, error) {
	var m domain.Membership
	err := s.read(ctx, func(tx *sql.Tx) error {
		var err error
		m, err = scanMembership(tx.QueryRowContext(ctx, `SELECT project_id, username, role, updated_at
			FROM memberships WHERE project_id = ? AND username = ?`, projectID, username))
		return err
	})
	return m, err
}

// ListMemberships returns the matching memberships ordered by project, username.
func (s *Store) ListMemberships(ctx context.Context, f domain.MembershipFilter) ([]domain.Membership, error) {
	var out []domain.Membership
	err := s.read(ctx, func(tx *sql.Tx) error {
		// Only the set fields become conditions, so SQLite can use the primary
		// key (project) or memberships_user (username).
		q := `SELECT project_id, username, role, updated_at FROM memberships WHERE 1 = 1`
		var args []any
		if f.ProjectID != "" {
			q += ` AND project_id = ?`
			args = append(args, f.ProjectID)
		}
		if f.Username != "" {
			q += ` AND username = ?`
			args = append(args, f.Username)
		}
		rows, err := tx.QueryContext(ctx, q+` ORDER BY project_id, username`, args...)
		if err != nil {
			return err
		}
		defer rows.Close()
		for rows.Next() {
			m, err := scanMembership(rows)
			if err != nil {
				return err
			}
			out = append(out, m)
		}
		return rows.Err()
	})
	return out, err
}

// DeleteMembership returns ErrNotFound when the user is not a member.
func (s *Store) DeleteMembership(ctx context.Context, projectID, username string) error {
	return s.write(ctx, func(tx *sql.Tx) error {
		res, err := tx.ExecContext(ctx, `DELETE FROM memberships WHERE project_id = ? AND username = ?`,
			projectID, username)
		if err != nil {
			return err
		}
		return affected(res)
	})
}
