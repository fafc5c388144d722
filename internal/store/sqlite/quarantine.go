package sqlite

import (
	"context"
	"database/sql"
	"encoding/json"
	"errors"
	"fmt"
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
	device_id, first_seen, last_seen, attempts, resolved_at, reason,
	resolved_by, dismissed_at, dismissed_by, dismiss_reason, last_reapply, claim, claimed_at`

func scanQuarantine(sc scanner) (domain.QuarantineItem, error) {
	var (
		q                             domain.QuarantineItem
		sub, errs, reapply            sql.NullString
		first, last, resol, dis, clat sql.NullInt64
	)
	if err := sc.Scan(&q.ProjectID, &q.ID, &q.RecordID, &q.FormID, &q.FormVersion, &sub, &errs, &q.SubmittedBy,
		&q.DeviceID, &first, &last, &q.Attempts, &resol, &q.Reason,
		&q.ResolvedBy, &dis, &q.DismissedBy, &q.DismissReason, &reapply, &q.Claim, &clat); err != nil {
		return domain.QuarantineItem{}, err
	}
	q.Submission = fromRawText(sub)
	q.FirstSeen = fromMS(first)
	q.LastSeen = fromMS(last)
	q.ResolvedAt = fromMSPtr(resol)
	q.DismissedAt = fromMSPtr(dis)
	q.ClaimedAt = fromMSPtr(clat)
	var err error
	if q.Errors, err = fromJSONText[domain.Finding](errs); err != nil {
		return domain.QuarantineItem{}, err
	}
	if reapply.Valid && reapply.String != "" {
		var r domain.QuarantineReapply
		if err := json.Unmarshal([]byte(reapply.String), &r); err != nil {
			return domain.QuarantineItem{}, fmt.Errorf("sqlite: decode stored JSON: %w", err)
		}
		r.At = r.At.UTC()
		q.LastReapply = &r
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
			VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, 1, NULL, ?, '', NULL, '', '', NULL, '', NULL)
			ON CONFLICT (project_id, id) DO UPDATE SET attempts = attempts + 1, last_seen = excluded.last_seen,
				errors = excluded.errors, resolved_at = NULL, resolved_by = '', reason = excluded.reason`,
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
func (s *Store) ListQuarantine(ctx context.Context, projectID string, f domain.QuarantineFilter, cursor string, limit int) ([]domain.QuarantineItem, string, error) {
	if limit <= 0 {
		limit = defaultPageLimit
	}
	q := `SELECT ` + quarantineCols + ` FROM quarantine WHERE project_id = ?`
	args := []any{projectID}
	if f.FormID != "" {
		q += ` AND form_id = ?`
		args = append(args, f.FormID)
	}
	if cond := stateCondition(f.States); cond != "" {
		q += ` AND (` + cond + `)`
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

// quarantineOpen is the SQL condition of an open item.
const quarantineOpen = `resolved_at IS NULL AND dismissed_at IS NULL`

// stateCondition is the SQL condition of the given states, "" for all of them
// (none named, or all three).
func stateCondition(states []string) string {
	var conds []string
	for _, st := range states {
		switch st {
		case domain.QuarantineOpen:
			conds = append(conds, quarantineOpen)
		case domain.QuarantineResolved:
			conds = append(conds, `resolved_at IS NOT NULL AND dismissed_at IS NULL`)
		case domain.QuarantineDismissed:
			conds = append(conds, `dismissed_at IS NOT NULL`)
		default:
			conds = append(conds, `0`) // a state no item has
		}
	}
	slices.Sort(conds)
	conds = slices.Compact(conds)
	if len(conds) == 0 || len(conds) == len(domain.QuarantineStates) && !slices.Contains(conds, `0`) {
		return ""
	}
	for i := range conds {
		conds[i] = "(" + conds[i] + ")"
	}
	return strings.Join(conds, " OR ")
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
	// One statement reads one snapshot by itself, so it runs without a
	// transaction of its own (BEGIN and ROLLBACK are statements SQLite parses
	// too), prepared once.
	st, err := s.readStmt(ctx, `SELECT EXISTS (SELECT 1 FROM quarantine
		WHERE project_id = ? AND `+quarantineOpen+`)`)
	if err != nil {
		return dbErr(ctx, err)
	}
	var open bool
	t0 := time.Now()
	err = st.QueryRowContext(ctx, projectID).Scan(&open)
	if s.observe != nil {
		s.observed("ResolveQuarantine", t0) // as read would have
	}
	if err != nil || !open {
		return dbErr(ctx, err)
	}
	return s.write(ctx, func(tx *sql.Tx) error {
		for chunk := range slices.Chunk(recordIDs, 500) {
			args := []any{at.UnixMilli(), projectID}
			for _, id := range chunk {
				args = append(args, id)
			}
			if _, err := tx.ExecContext(ctx, `UPDATE quarantine SET resolved_at = ?
				WHERE project_id = ? AND `+quarantineOpen+` AND reason = 'rejected' AND record_id IN (`+placeholders(len(chunk))+`)`,
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

// GetQuarantine returns one item; ErrNotFound for an unknown id.
func (s *Store) GetQuarantine(ctx context.Context, projectID, id string) (domain.QuarantineItem, error) {
	var out domain.QuarantineItem
	err := s.read(ctx, func(tx *sql.Tx) error {
		var err error
		out, err = getQuarantine(ctx, tx, projectID, id)
		return err
	})
	return out, err
}

func getQuarantine(ctx context.Context, tx *sql.Tx, projectID, id string) (domain.QuarantineItem, error) {
	it, err := scanQuarantine(tx.QueryRowContext(ctx, `SELECT `+quarantineCols+` FROM quarantine
		WHERE project_id = ? AND id = ?`, projectID, id))
	if errors.Is(err, sql.ErrNoRows) {
		return domain.QuarantineItem{}, domain.ErrNotFound
	}
	return it, err
}

// decide is a conditional UPDATE of one item (cond is the condition the item
// must meet), run by the caller in one write transaction so that the check
// and the change are one step: it stores the item afterwards in out, and
// returns ErrNotFound when there is none, ErrStale when it does not meet cond.
// (The caller calls s.write itself: the store's metrics name the operation
// after the method that does.)
func decide(ctx context.Context, tx *sql.Tx, out *domain.QuarantineItem, projectID, id, set string, setArgs []any, cond string, condArgs ...any) error {
	res, err := tx.ExecContext(ctx, `UPDATE quarantine SET `+set+` WHERE project_id = ? AND id = ? AND (`+cond+`)`,
		slices.Concat(setArgs, []any{projectID, id}, condArgs)...)
	if err != nil {
		return err
	}
	n, err := res.RowsAffected()
	if err != nil {
		return err
	}
	*out, err = getQuarantine(ctx, tx, projectID, id)
	if err == nil && n == 0 {
		return domain.ErrStale
	}
	return err
}

// decided is what a decision method answers: the item, or the zero item and
// the error.
func decided(it domain.QuarantineItem, err error) (domain.QuarantineItem, error) {
	if err != nil {
		return domain.QuarantineItem{}, err
	}
	return it, nil
}

// unclaimed is the condition of an item without a live claim; its one
// parameter is the time before which a claim has lapsed.
const unclaimed = `claim = '' OR claimed_at IS NULL OR claimed_at < ?`

// ClaimQuarantine claims an open item for a re-apply (see domain).
func (s *Store) ClaimQuarantine(ctx context.Context, projectID, id, claim string, at, staleBefore time.Time) (domain.QuarantineItem, error) {
	var out domain.QuarantineItem
	err := s.write(ctx, func(tx *sql.Tx) error {
		return decide(ctx, tx, &out, projectID, id, `claim = ?, claimed_at = ?`, []any{claim, at.UnixMilli()},
			quarantineOpen+` AND (`+unclaimed+`)`, staleBefore.UnixMilli())
	})
	return decided(out, err)
}

// SettleQuarantine records a re-apply made under claim (see domain).
func (s *Store) SettleQuarantine(ctx context.Context, projectID, id, claim string, r domain.QuarantineReapply) (domain.QuarantineItem, error) {
	if claim == "" {
		return domain.QuarantineItem{}, domain.ErrStale
	}
	b, err := json.Marshal(r)
	if err != nil {
		return domain.QuarantineItem{}, err
	}
	set := `last_reapply = ?, claim = '', claimed_at = NULL`
	args := []any{string(b)}
	if r.Applied {
		set += `, resolved_at = coalesce(resolved_at, ?), resolved_by = ?`
		args = append(args, r.At.UnixMilli(), r.By)
	} else {
		errs, err := jsonText(r.Errors)
		if err != nil {
			return domain.QuarantineItem{}, err
		}
		set += `, errors = ?`
		args = append(args, errs)
	}
	var out domain.QuarantineItem
	err = s.write(ctx, func(tx *sql.Tx) error {
		return decide(ctx, tx, &out, projectID, id, set, args, `claim = ?`, claim)
	})
	return decided(out, err)
}

// DismissQuarantine dismisses an open item without a live claim (see domain).
func (s *Store) DismissQuarantine(ctx context.Context, projectID, id string, d domain.QuarantineDismissal, staleBefore time.Time) (domain.QuarantineItem, error) {
	var out domain.QuarantineItem
	err := s.write(ctx, func(tx *sql.Tx) error {
		return decide(ctx, tx, &out, projectID, id, `dismissed_at = ?, dismissed_by = ?, dismiss_reason = ?, claim = '', claimed_at = NULL`,
			[]any{d.At.UnixMilli(), d.By, d.Reason}, quarantineOpen+` AND (`+unclaimed+`)`, staleBefore.UnixMilli())
	})
	return decided(out, err)
}
