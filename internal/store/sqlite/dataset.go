package sqlite

import (
	"context"
	"database/sql"
	"strings"

	"github.com/fieldsync/fieldsync/internal/domain"
)

// defaultQueryLimit is the page size of QueryRecords when the query names none.
const defaultQueryLimit = 1000

// QueryRecords returns one page of a form's records in (created_at, id) order,
// a range of the index records_form_created (migration 0008); newest first
// (q.Descending), the same range walked backwards (SQLite scans an index in
// either direction, so the descending order needs no index of its own and no
// sort: TestQueryRecordsUsesIndex checks the plan). The page is one
// read transaction: a long export holds no snapshot open between pages, so it
// never keeps the WAL from being checkpointed.
func (s *Store) QueryRecords(ctx context.Context, q domain.RecordQuery) (domain.RecordQueryPage, error) {
	limit := q.Limit
	if limit <= 0 {
		limit = defaultQueryLimit
	}
	query, args := queryRecordsSQL(q, limit)

	page := domain.RecordQueryPage{Next: q.After}
	err := s.read(ctx, func(tx *sql.Tx) error {
		rows, err := tx.QueryContext(ctx, query, args...)
		if err != nil {
			return err
		}
		defer rows.Close()
		rs := s.scanner(ctx, tx)
		for rows.Next() {
			r, err := rs.scan(rows, false)
			if err != nil {
				return err
			}
			r.ProjectID = q.ProjectID
			if page.Records == nil {
				page.Records = make([]domain.Record, 0, min(limit, 256))
			}
			page.Records = append(page.Records, r)
		}
		return rows.Err()
	})
	if err != nil {
		return domain.RecordQueryPage{}, err
	}
	if n := len(page.Records); n > 0 {
		last := page.Records[n-1]
		page.Next = domain.RecordCursor{CreatedAt: last.CreatedAt, ID: last.ID}
		page.More = n == limit
	}
	return page, nil
}

// queryRecordsSQL is the statement of QueryRecords and its arguments: one
// range of records_form_created, in the query's direction.
func queryRecordsSQL(q domain.RecordQuery, limit int) (string, []any) {
	var b strings.Builder
	b.WriteString(`SELECT ` + changeCols + ` FROM records`)
	args := recordQueryWhere(&b, q, true)
	if q.Descending {
		b.WriteString(` ORDER BY created_at DESC, id DESC LIMIT ?`)
	} else {
		b.WriteString(` ORDER BY created_at, id LIMIT ?`)
	}
	args = append(args, limit)
	return b.String(), args
}

// CountRecords counts what QueryRecords would page through: count(*) over
// the same range of records_form_created.
func (s *Store) CountRecords(ctx context.Context, q domain.RecordQuery) (int, error) {
	var b strings.Builder
	b.WriteString(`SELECT count(*) FROM records`)
	args := recordQueryWhere(&b, q, false)
	var n int
	err := s.read(ctx, func(tx *sql.Tx) error {
		return tx.QueryRowContext(ctx, b.String(), args...).Scan(&n)
	})
	return n, err
}

// recordQueryWhere writes the WHERE clause of q to b and returns its
// arguments; withCursor adds q.After's side in q's direction.
func recordQueryWhere(b *strings.Builder, q domain.RecordQuery, withCursor bool) []any {
	b.WriteString(` WHERE project_id = ? AND form_id = ?`)
	args := []any{q.ProjectID, q.FormID}
	if withCursor && !q.After.IsZero() {
		if q.Descending {
			b.WriteString(` AND (created_at, id) < (?, ?)`)
		} else {
			b.WriteString(` AND (created_at, id) > (?, ?)`)
		}
		args = append(args, ms(q.After.CreatedAt), q.After.ID)
	}
	if !q.Since.IsZero() {
		b.WriteString(` AND created_at >= ?`)
		args = append(args, ms(domain.CeilMilli(q.Since)))
	}
	if !q.Until.IsZero() {
		b.WriteString(` AND created_at < ?`)
		args = append(args, ms(domain.CeilMilli(q.Until)))
	}
	if !q.IncludeDeleted {
		b.WriteString(` AND deleted = 0`)
	}
	in := func(col string, vals []string) {
		if len(vals) == 0 {
			return
		}
		b.WriteString(` AND ` + col + ` IN (` + placeholders(len(vals)) + `)`)
		for _, v := range vals {
			args = append(args, v)
		}
	}
	in("review_state", q.ReviewStates)
	in("form_version", q.Versions)
	in("device_id", q.Devices)
	return args
}
