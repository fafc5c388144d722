package sqlite

import (
	"context"
	"database/sql"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/fieldsync/fieldsync/internal/domain"
)

// defaultPageLimit is the page size of ListQuarantine and ListAudit when the
// caller names none.
const defaultPageLimit = 100

// badCursor is what a cursor the store did not make earns: a client error, not a
// store failure.
func badCursor() error {
	return domain.Errorf(domain.KindBadRequest, "invalid_cursor", "The cursor is not valid")
}

const quarantineCols = `project_id, id, record_id, form_id, form_version, submission, errors, submitted_by,
	device_id, first_seen, last_seen, attempts, resolved_at, reason`

func scanQuarantine(sc scanner) (domain.QuarantineItem, error) {
	var (
		q                  domain.QuarantineItem
		sub, errs          sql.NullString
		first, last, resol sql.NullInt64
	)
	if err := sc.Scan(&q.ProjectID, &q.ID, &q.RecordID, &q.FormID, &q.FormVersion, &sub, &errs, &q.SubmittedBy,
		&q.DeviceID, &first, &last, &q.Attempts, &resol, &q.Reason); err != nil {
		return domain.QuarantineItem{}, err
	}
	q.Submission = fromRawText(sub)
	q.FirstSeen = fromMS(first)
	q.LastSeen = fromMS(last)
	q.ResolvedAt = fromMSPtr(resol)
	var err error
	if q.Errors, err = fromJSONText[domain.Finding](errs); err != nil {
		return domain.QuarantineItem{}, err
	}
	return q, nil
}

// PutQuarantine stores a new item (Attempts 1, FirstSeen = LastSeen) or counts
// one more attempt of a known one, which also makes it unresolved again.
func (s *Store) PutQuarantine(ctx context.Context, item domain.QuarantineItem) (domain.QuarantineItem, error) {
	errs, err := jsonText(item.Errors)
	if err != nil {
		return domain.QuarantineItem{}, err
	}
	var out domain.QuarantineItem
	err = s.write(ctx, func(tx *sql.Tx) error {
		// One statement either way: an upsert keeps the first submitter and the
		// first FirstSeen of an item pushed again.
		if _, err := tx.ExecContext(ctx, `INSERT INTO quarantine (`+quarantineCols+`)
			VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, 1, NULL, ?)
			ON CONFLICT (project_id, id) DO UPDATE SET attempts = attempts + 1, last_seen = excluded.last_seen,
				errors = excluded.errors, resolved_at = NULL, reason = excluded.reason`,
			item.ProjectID, item.ID, item.RecordID, item.FormID, item.FormVersion, rawText(item.Submission), errs,
			item.SubmittedBy, item.DeviceID, item.LastSeen.UnixMilli(), item.LastSeen.UnixMilli(), quarantineReason(item.Reason)); err != nil {
			return err
		}
		var err error
		out, err = scanQuarantine(tx.QueryRowContext(ctx, `SELECT `+quarantineCols+` FROM quarantine
			WHERE project_id = ? AND id = ?`, item.ProjectID, item.ID))
		return err
	})
	if err != nil {
		return domain.QuarantineItem{}, err
	}
	return out, nil
}

// ListQuarantine pages through a project's items in (FirstSeen, ID) order. The
// cursor is the position of the last item returned: "<first_seen ms>:<id>".
func (s *Store) ListQuarantine(ctx context.Context, projectID string, includeResolved bool, cursor string, limit int) ([]domain.QuarantineItem, string, error) {
	if limit <= 0 {
		limit = defaultPageLimit
	}
	q := `SELECT ` + quarantineCols + ` FROM quarantine WHERE project_id = ?`
	args := []any{projectID}
	if !includeResolved {
		q += ` AND resolved_at IS NULL`
	}
	if cursor != "" {
		msText, id, ok := strings.Cut(cursor, ":")
		after, err := strconv.ParseInt(msText, 10, 64)
		if !ok || err != nil || id == "" {
			return nil, "", badCursor()
		}
		q += ` AND (first_seen, id) > (?, ?)`
		args = append(args, after, id)
	}
	q += ` ORDER BY first_seen, id LIMIT ?`
	args = append(args, limit+1)
	var items []domain.QuarantineItem
	err := s.read(ctx, func(tx *sql.Tx) error {
		rows, err := tx.QueryContext(ctx, q, args...)
		if err != nil {
			return err
		}
		defer rows.Close()
		for rows.Next() {
			it, err := scanQuarantine(rows)
			if err != nil {
				return err
			}
			items = append(items, it)
		}
		return rows.Err()
	})
	if err != nil {
		return nil, "", err
	}
	next := ""
	if len(items) > limit {
		items = items[:limit]
		last := items[limit-1]
		next = strconv.FormatInt(last.FirstSeen.UnixMilli(), 10) + ":" + last.ID
	}
	return items, next, nil
}

// ResolveQuarantine marks every unresolved item of the given records resolved.
func (s *Store) ResolveQuarantine(ctx context.Context, projectID string, recordIDs []string, at time.Time) error {
	if len(recordIDs) == 0 {
		return nil
	}
	// Every push resolves the entries of the records it wrote, and most
	// projects have none open: a read answers that without a write
	// transaction (and its commit) on the push's path. An entry put after the
	// read is as if it came after this call.
	var open bool
	if err := s.read(ctx, func(tx *sql.Tx) error {
		return tx.QueryRowContext(ctx, `SELECT EXISTS (SELECT 1 FROM quarantine
			WHERE project_id = ? AND resolved_at IS NULL)`, projectID).Scan(&open)
	}); err != nil || !open {
		return err
	}
	return s.write(ctx, func(tx *sql.Tx) error {
		for chunk := range slices.Chunk(recordIDs, 500) {
			args := []any{at.UnixMilli(), projectID}
			for _, id := range chunk {
				args = append(args, id)
			}
			if _, err := tx.ExecContext(ctx, `UPDATE quarantine SET resolved_at = ?
				WHERE project_id = ? AND resolved_at IS NULL AND reason = 'rejected' AND record_id IN (`+placeholders(len(chunk))+`)`,
				args...); err != nil {
				return err
			}
		}
		return nil
	})
}

// quarantineReason is the stored reason: "" means rejected.
func quarantineReason(r string) string {
	if r == "" {
		return domain.QuarantineRejected
	}
	return r
}
