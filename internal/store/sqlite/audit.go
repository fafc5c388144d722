package sqlite

import (
	"context"
	"database/sql"
	"fmt"
	"strconv"

	"github.com/fieldsync/fieldsync/internal/domain"
)

// auditID makes an event's ID from its row number: zero-padded, so IDs sort as
// strings in the order they were committed (writes serialize on the write lock,
// so row numbers are handed out in commit order, also across processes).
func auditID(seq int64) string { return fmt.Sprintf("%016d", seq) }

// AppendAudit stores an event and returns it with its ID.
func (s *Store) AppendAudit(ctx context.Context, e domain.AuditEvent) (domain.AuditEvent, error) {
	detail, err := mapText(e.Detail)
	if err != nil {
		return domain.AuditEvent{}, err
	}
	err = s.write(ctx, func(tx *sql.Tx) error {
		res, err := tx.ExecContext(ctx, `INSERT INTO audit_events (time, type, actor, project_id, subject,
			remote_addr, detail) VALUES (?, ?, ?, ?, ?, ?, ?)`,
			e.Time.UnixMilli(), e.Type, e.Actor, e.ProjectID, e.Subject, e.RemoteAddr, detail)
		if err != nil {
			return err
		}
		seq, err := res.LastInsertId()
		e.ID = auditID(seq)
		return err
	})
	if err != nil {
		return domain.AuditEvent{}, err
	}
	return e, nil
}

// ListAudit pages through matching events newest first. Since is inclusive and
// Until exclusive. The cursor is the ID of the last event returned.
func (s *Store) ListAudit(ctx context.Context, f domain.AuditFilter, cursor string, limit int) ([]domain.AuditEvent, string, error) {
	if limit <= 0 {
		limit = defaultPageLimit
	}
	q := `SELECT seq, time, type, actor, project_id, subject, remote_addr, detail FROM audit_events WHERE 1 = 1`
	var args []any
	if f.Type != "" {
		q += ` AND type = ?`
		args = append(args, f.Type)
	}
	if f.Actor != "" {
		q += ` AND actor = ?`
		args = append(args, f.Actor)
	}
	if f.ProjectID != "" {
		q += ` AND project_id = ?`
		args = append(args, f.ProjectID)
	}
	if !f.Since.IsZero() {
		q += ` AND time >= ?`
		args = append(args, f.Since.UnixMilli())
	}
	if !f.Until.IsZero() {
		q += ` AND time < ?`
		args = append(args, f.Until.UnixMilli())
	}
	if cursor != "" {
		before, err := strconv.ParseInt(cursor, 10, 64)
		if err != nil || before <= 0 {
			return nil, "", badCursor()
		}
		q += ` AND seq < ?`
		args = append(args, before)
	}
	q += ` ORDER BY seq DESC LIMIT ?`
	args = append(args, limit+1)

	var events []domain.AuditEvent
	err := s.read(ctx, func(tx *sql.Tx) error {
		rows, err := tx.QueryContext(ctx, q, args...)
		if err != nil {
			return err
		}
		defer rows.Close()
		for rows.Next() {
			var (
				e      domain.AuditEvent
				seq    int64
				at     sql.NullInt64
				detail sql.NullString
			)
			if err := rows.Scan(&seq, &at, &e.Type, &e.Actor, &e.ProjectID, &e.Subject, &e.RemoteAddr,
				&detail); err != nil {
				return err
			}
			e.ID = auditID(seq)
			e.Time = fromMS(at)
			if e.Detail, err = fromMapText(detail); err != nil {
				return err
			}
			events = append(events, e)
		}
		return rows.Err()
	})
	if err != nil {
		return nil, "", err
	}
	next := ""
	if len(events) > limit {
		events = events[:limit]
		next = events[limit-1].ID
	}
	return events, next, nil
}
