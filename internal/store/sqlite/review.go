package sqlite

import (
	"context"
	"database/sql"
	"strconv"

	"github.com/fieldsync/fieldsync/internal/domain"
)

// reviewID makes an entry's ID from its row number, zero-padded like audit IDs
// so that IDs sort as text in the order the entries were committed.
func reviewID(seq int64) string { return auditID(seq) }

// AppendReview stores an entry of a record's review thread and returns it with
// its ID.
func (s *Store) AppendReview(ctx context.Context, e domain.ReviewEntry) (domain.ReviewEntry, error) {
	err := s.write(ctx, func(tx *sql.Tx) error {
		res, err := tx.ExecContext(ctx, `INSERT INTO record_reviews (project_id, record_id, author, created_at,
			text, review_state, previous_state) VALUES (?, ?, ?, ?, ?, ?, ?)`,
			e.ProjectID, e.RecordID, e.Author, ms(e.CreatedAt), e.Text, e.ReviewState, e.PreviousState)
		if err != nil {
			return err
		}
		seq, err := res.LastInsertId()
		e.ID = reviewID(seq)
		return err
	})
	if err != nil {
		return domain.ReviewEntry{}, err
	}
	return e, nil
}

// ListReviews pages through a record's review thread oldest first. The cursor
// is the ID of the last entry returned.
func (s *Store) ListReviews(ctx context.Context, projectID, recordID, cursor string, limit int) ([]domain.ReviewEntry, string, error) {
	if limit <= 0 {
		limit = defaultPageLimit
	}
	var after int64
	if cursor != "" {
		n, err := strconv.ParseInt(cursor, 10, 64)
		if err != nil || n <= 0 {
			return nil, "", badCursor()
		}
		after = n
	}
	var out []domain.ReviewEntry
	err := s.read(ctx, func(tx *sql.Tx) error {
		rows, err := tx.QueryContext(ctx, `SELECT seq, author, created_at, text, review_state, previous_state
			FROM record_reviews WHERE project_id = ? AND record_id = ? AND seq > ? ORDER BY seq LIMIT ?`,
			projectID, recordID, after, limit+1)
		if err != nil {
			return err
		}
		defer rows.Close()
		for rows.Next() {
			var (
				e   = domain.ReviewEntry{ProjectID: projectID, RecordID: recordID}
				seq int64
				at  sql.NullInt64
			)
			if err := rows.Scan(&seq, &e.Author, &at, &e.Text, &e.ReviewState, &e.PreviousState); err != nil {
				return err
			}
			e.ID, e.CreatedAt = reviewID(seq), fromMS(at)
			out = append(out, e)
		}
		return rows.Err()
	})
	if err != nil {
		return nil, "", err
	}
	next := ""
	if len(out) > limit {
		out = out[:limit]
		next = out[limit-1].ID
	}
	return out, next, nil
}
