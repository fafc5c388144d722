package sqlite

import (
	"bytes"
	"cmp"
	"context"
	"database/sql"
	"encoding/json"
	"errors"
	"maps"
	"slices"
	"strings"
	"time"

	"github.com/fieldsync/fieldsync/internal/domain"
)

// The changes feed, and why it never skips a change.
//
// Every record row carries seq, its position in its project's feed. Each applied
// write sets seq = (the project's largest seq) + 1, read inside the write's
// transaction; rows are never deleted (a deletion is a tombstone), so that maximum
// never decreases and every new seq is larger than any seq handed out before.
//
// Write transactions begin with BEGIN IMMEDIATE: they take SQLite's single write
// lock (a lock on the file, shared by every process that opens it) before they
// read the maximum, and hold it until they commit. So writes serialize, and seq
// order equals commit order: a transaction that commits later read a maximum that
// already included every earlier commit, and got larger numbers. This holds for
// two Store values in one process and for two server processes on one file alike,
// because the lock is SQLite's, not ours.
//
// A reader runs each Changes call in one read transaction, which in WAL mode reads
// one snapshot (taken at its first read) holding exactly the transactions that
// had committed by then: a prefix of commit order, hence of seq order. Changes
// returns a Next no larger than the snapshot's largest seq (the last record of a
// full page, or the largest seq itself), so every write missing from the
// snapshot commits later and has a seq larger than Next. Hence the next call's
// `seq > cursor ORDER BY seq` never misses a change: a change that commits later
// with a smaller seq does not exist. The unique index records_seq backs this up:
// two writes can never share a position.

// recordCols are the columns scanRecord reads, in its order.
const recordCols = `project_id, ` + changeCols

// changeCols are recordCols without project_id, which Changes knows already.
// The data is in zdata or data (see record_data.go).
const changeCols = `id, seq, version, form_id, form_version, rev, deleted, coalesce(zdata, data), created_by, device_id,
	client_modified_at, created_at, updated_at, review_state, review_comment, conflicts, assigned_to,
	shared, attachments`

// recordInsertCols are the columns recordRow gives values for, in its order.
const recordInsertCols = `rk, project_id, id, seq, version, form_id, form_version, rev, deleted, data, created_by, device_id,
	client_modified_at, created_at, updated_at, review_state, review_comment, conflicts, assigned_to,
	shared, attachments, zdata`

// scanner returns a recordScanner for the rows of a query in tx.
func (s *Store) scanner(ctx context.Context, tx querier) recordScanner {
	return recordScanner{decode: func(v any) (json.RawMessage, error) { return s.decode(ctx, tx, v) }}
}

// recordScanner reads rows of recordCols or changeCols. One scanner serves a
// whole result, so its scan targets are made once, not once a row.
type recordScanner struct {
	r                           domain.Record
	data                        any
	conflicts, assigned, attach sql.NullString
	cma, created, updated       sql.NullInt64
	dest                        []any
	decode                      func(any) (json.RawMessage, error) // the data, as Store.decode
}

// scan reads one row, of recordCols when withProject is set, else of changeCols
// (ProjectID is then left to the caller).
func (s *recordScanner) scan(sc scanner, withProject bool) (domain.Record, error) {
	if s.dest == nil {
		if withProject {
			s.dest = append(s.dest, &s.r.ProjectID)
		}
		s.dest = append(s.dest, &s.r.ID, &s.r.Seq, &s.r.Version, &s.r.FormID, &s.r.FormVersion, &s.r.Rev, &s.r.Deleted,
			&s.data, &s.r.CreatedBy, &s.r.DeviceID, &s.cma, &s.created, &s.updated, &s.r.ReviewState, &s.r.ReviewComment,
			&s.conflicts, &s.assigned, &s.r.Shared, &s.attach)
	}
	s.r = domain.Record{}
	if err := sc.Scan(s.dest...); err != nil {
		return domain.Record{}, err
	}
	r := s.r
	var err error
	if r.Data, err = s.decode(s.data); err != nil {
		return domain.Record{}, err
	}
	s.data = nil
	r.ClientModifiedAt = fromMS(s.cma)
	r.CreatedAt = fromMS(s.created)
	r.UpdatedAt = fromMS(s.updated)
	if r.Conflicts, err = fromJSONText[domain.Conflict](s.conflicts); err != nil {
		return domain.Record{}, err
	}
	if r.AssignedTo, err = fromJSONText[string](s.assigned); err != nil {
		return domain.Record{}, err
	}
	if r.Attachments, err = fromJSONText[domain.Attachment](s.attach); err != nil {
		return domain.Record{}, err
	}
	return r, nil
}

// GetRecord returns ErrNotFound for an unknown id.
func (s *Store) GetRecord(ctx context.Context, projectID, id string) (domain.Record, error) {
	var r domain.Record
	err := s.read(ctx, func(tx *sql.Tx) error {
		var err error
		rs := s.scanner(ctx, tx)
		r, err = rs.scan(tx.QueryRowContext(ctx,
			`SELECT `+recordCols+` FROM records WHERE project_id = ? AND id = ?`, projectID, id), true)
		return err
	})
	return r, err
}

// GetRecords returns the records that exist among ids, keyed by id.
func (s *Store) GetRecords(ctx context.Context, projectID string, ids []string) (map[string]domain.Record, error) {
	out := make(map[string]domain.Record, len(ids))
	if len(ids) == 0 {
		return out, nil
	}
	// The statements are prepared once per size (parsing one cost as much as
	// the read itself on a 1-item push), before the transaction: see readStmt.
	type chunk struct {
		st  *sql.Stmt
		ids []string
	}
	var chunks []chunk
	for rest := ids; len(rest) > 0; {
		n := chunkSize(len(rest), inSizes)
		st, err := s.readStmt(ctx, `SELECT `+recordCols+` FROM records
			WHERE project_id = ? AND id IN (`+placeholders(n)+`)`)
		if err != nil {
			return nil, dbErr(ctx, err)
		}
		chunks = append(chunks, chunk{st, rest[:n]})
		rest = rest[n:]
	}
	// A push of a few items (the common case: a tablet syncing one new
	// interview) reads with one statement, which sees one snapshot by
	// itself: it runs without the BEGIN and ROLLBACK around it, statements
	// SQLite would parse anew each time.
	if len(chunks) == 1 {
		if s.observe != nil {
			defer s.observed("GetRecords", time.Now())
		}
		if err := s.readRecordChunk(ctx, s.db, chunks[0].st, projectID, chunks[0].ids, out); err != nil {
			return nil, dbErr(ctx, err)
		}
		return out, nil
	}
	err := s.read(ctx, func(tx *sql.Tx) error {
		for _, c := range chunks {
			if err := s.readRecordChunk(ctx, tx, tx.StmtContext(ctx, c.st), projectID, c.ids, out); err != nil {
				return err
			}
		}
		return nil
	})
	if err != nil {
		return nil, err
	}
	return out, nil
}

// readRecordChunk reads the records ids of project with st (a prepared
// GetRecords statement for len(ids) ids) into out; q reads dictionaries.
func (s *Store) readRecordChunk(ctx context.Context, q querier, st *sql.Stmt, projectID string, ids []string, out map[string]domain.Record) error {
	args := make([]any, 0, len(ids)+1)
	args = append(args, projectID)
	for _, id := range ids {
		args = append(args, id)
	}
	rows, err := st.QueryContext(ctx, args...)
	if err != nil {
		return err
	}
	defer rows.Close()
	rs := s.scanner(ctx, q)
	for rows.Next() {
		r, err := rs.scan(rows, true)
		if err != nil {
			return err
		}
		out[r.ID] = r
	}
	// An error that ended the rows early is in Err, not in Close: a record
	// left unread must not pass for one that does not exist.
	return rows.Err()
}

// recordState is what WriteRecords knows of one record while it decides a batch.
type recordState struct {
	rk        int64    // the row key, existing or allotted to a new row
	existed   bool     // the row existed before the batch
	exists    bool     // the row exists after the writes decided so far
	rev       string   // its rev after the writes decided so far
	version   int64    // its Version after the writes decided so far
	assigned0 []string // assigned_to before the batch
	final     *domain.Record
	seq       int64 // the seq of the last applied write
}

type recordKey struct{ project, id string }

type revKey struct {
	rk  int64
	rev string
}

// pendingRev is a revision to append, with the record it belongs to.
type pendingRev struct {
	rs *recordState
	v  *domain.Revision
}

// inRecord reports whether the revision's data is left to the record: the
// record ends the batch holding exactly it.
func (p pendingRev) inRecord() bool {
	return p.v.Rev == p.rs.final.Rev && bytes.Equal(p.v.Data, p.rs.final.Data)
}

// row is the revision's values for insertRevision and insertNewRevisionHead.
func (p pendingRev) row(enc batchEncoding) []any {
	v := p.v
	var text, blob any
	inRecord := p.inRecord()
	if !inRecord {
		e := enc.revision(v)
		text, blob = e.text, e.blob
	}
	return []any{p.rs.rk, v.Rev, v.Parent, v.Deleted, text, inRecord, v.FormVersion, ms(v.ClientModifiedAt),
		v.CreatedBy, v.DeviceID, ms(v.CreatedAt), blob}
}

// The statements of WriteRecords. Rows go in multi-row INSERTs of fixed sizes
// (see execChunks), each prepared once per connection.
const (
	insertRecordHead = `INSERT OR FAIL INTO records (` + recordInsertCols + `) VALUES `
	// A new record has no revisions yet, and the batch's own duplicates are
	// dropped before: nothing can collide, and OR FAIL spares SQLite the
	// statement journal that a statement which may roll itself back needs.
	insertNewRevisionHead = `INSERT OR FAIL INTO revisions (rk, rev, parent, deleted, data, data_in_record,
		form_version, client_modified_at, created_by, device_id, created_at, zdata) VALUES `
	// An existing record may hold the revision already (a replay): keep it.
	insertRevision = `INSERT OR IGNORE INTO revisions (rk, rev, parent, deleted, data, data_in_record,
		form_version, client_modified_at, created_by, device_id, created_at, zdata) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)`
	// Before a record row's data changes, the revisions that read their data
	// from the row get it (see detachData).
	recordData         = `SELECT coalesce(zdata, data) FROM records WHERE rk = ?`
	revisionExists     = `SELECT EXISTS (SELECT 1 FROM revisions WHERE rk = ? AND rev = ?)`
	detachRevisionData = `UPDATE revisions SET data = ?2, zdata = ?3, data_in_record = 0
		WHERE rk = ?1 AND data_in_record = 1`
	updateRecord = `UPDATE records SET project_id = ?2, id = ?3, seq = ?4, version = ?5, form_id = ?6,
		form_version = ?7, rev = ?8, deleted = ?9, data = ?10, created_by = ?11, device_id = ?12,
		client_modified_at = ?13, created_at = ?14, updated_at = ?15, review_state = ?16, review_comment = ?17,
		conflicts = ?18, assigned_to = ?19, shared = ?20, attachments = ?21, zdata = ?22
		WHERE rk = ?1`
	maxRK      = `SELECT coalesce(max(rk), 0) FROM records`
	maxSeq     = `SELECT coalesce(max(seq), 0) FROM records WHERE project_id = ?`
	stateQuery = `SELECT rk, id, rev, version, assigned_to FROM records WHERE project_id = ? AND id IN `
)

// WriteRecords applies the batch in one write transaction (see the feed argument
// at the top of this file). It reads the current rev of every record the batch
// names with a few IN queries, decides every item in order in memory (so a later
// item sees what an earlier one wrote), and then writes each touched record once,
// in its final state at its last seq: new rows and their revisions with
// multi-row INSERTs, existing rows with one UPDATE each. A record written twice in
// a batch thus takes two seqs, of which the feed shows the later; no reader ever
// sees the transaction half done. The Seq of each applied write is set in writes
// only after the commit.
func (s *Store) WriteRecords(ctx context.Context, writes []domain.RecordWrite) ([]error, error) {
	results := make([]error, len(writes))
	if len(writes) == 0 {
		return results, nil
	}
	seqs := make([]int64, len(writes))
	versions := make([]int64, len(writes))
	enc := s.encodeBatch(ctx, writes)
	// Concurrent batches share one transaction and its fsync (groupcommit.go).
	err := s.writeGrouped(ctx, len(writes), func(ctx context.Context, tx *sql.Tx) error {
		clear(results) // a group that failed runs this again, alone
		states, err := s.loadRecordStates(ctx, tx, writes)
		if err != nil {
			return err
		}
		ctrs := s.group.countersOf(tx)
		if !ctrs.haveRK {
			st, err := s.stmt(ctx, tx, maxRK)
			if err != nil {
				return err
			}
			if err := st.QueryRowContext(ctx).Scan(&ctrs.lastRK); err != nil {
				return err
			}
			ctrs.haveRK = true
		}
		lastRK := ctrs.lastRK
		lastSeq := map[string]int64{}
		var (
			created, updated []*recordState
			newRevs, oldRevs []pendingRev
			seenRevs         = map[revKey]bool{}
		)
		for i := range writes {
			w := &writes[i]
			rs := states[recordKey{w.Record.ProjectID, w.Record.ID}]
			switch {
			case w.ExpectRev == "" && rs.exists:
				results[i] = domain.ErrExists
				continue
			case w.ExpectRev != "" && !rs.exists:
				results[i] = domain.ErrNotFound
				continue
			case rs.exists && rs.rev != w.ExpectRev,
				rs.exists && w.ExpectVersion != 0 && rs.version != w.ExpectVersion:
				results[i] = domain.ErrStale
				continue
			}
			seq, ok := lastSeq[w.Record.ProjectID]
			if !ok {
				seq, ok = ctrs.seq[w.Record.ProjectID]
			}
			if !ok {
				st, err := s.stmt(ctx, tx, maxSeq)
				if err != nil {
					return err
				}
				if err := st.QueryRowContext(ctx, w.Record.ProjectID).Scan(&seq); err != nil {
					return err
				}
			}
			seq++
			lastSeq[w.Record.ProjectID] = seq
			seqs[i] = seq
			if rs.final == nil {
				if rs.existed {
					updated = append(updated, rs)
				} else {
					lastRK++
					rs.rk = lastRK
					created = append(created, rs)
				}
			}
			rs.exists, rs.rev, rs.final, rs.seq = true, w.Record.Rev, &w.Record, seq
			rs.version++
			versions[i] = rs.version
			for j, v := range w.Revisions {
				// A revision belongs to the record it is written with.
				k := revKey{rs.rk, v.Rev}
				if seenRevs[k] {
					continue
				}
				seenRevs[k] = true
				p := pendingRev{rs, &w.Revisions[j]}
				if rs.existed {
					oldRevs = append(oldRevs, p)
				} else {
					newRevs = append(newRevs, p)
				}
			}
		}

		rows := make([][]any, 0, len(created))
		for _, rs := range created {
			row, err := recordRow(rs, enc)
			if err != nil {
				return err
			}
			rows = append(rows, row)
		}
		if err := s.execChunks(ctx, tx, insertRecordHead, 22, rows); err != nil {
			return err
		}
		if len(updated) > 0 {
			upd, err := s.stmt(ctx, tx, updateRecord)
			if err != nil {
				return err
			}
			heads := map[*recordState]bool{}
			for _, p := range oldRevs {
				if p.inRecord() {
					heads[p.rs] = true
				}
			}
			for _, rs := range updated {
				row, err := recordRow(rs, enc)
				if err != nil {
					return err
				}
				if err := s.detachData(ctx, tx, rs, row[9], row[21], heads[rs]); err != nil {
					return err
				}
				if _, err := upd.ExecContext(ctx, row...); err != nil {
					return err
				}
			}
		}
		rows = rows[:0]
		for _, p := range newRevs {
			rows = append(rows, p.row(enc))
		}
		if err := s.execChunks(ctx, tx, insertNewRevisionHead, 12, rows); err != nil {
			return err
		}
		if len(oldRevs) > 0 {
			ins, err := s.stmt(ctx, tx, insertRevision)
			if err != nil {
				return err
			}
			for _, p := range oldRevs {
				if _, err := ins.ExecContext(ctx, p.row(enc)...); err != nil {
					return err
				}
			}
		}
		if err := syncAssignees(ctx, tx, append(created, updated...)); err != nil {
			return err
		}
		// The part is written: the group's next parts go on from here.
		ctrs.lastRK = lastRK
		maps.Copy(ctrs.seq, lastSeq)
		return nil
	})
	if err != nil {
		return nil, err
	}
	for i := range writes {
		if results[i] == nil {
			writes[i].Record.Seq, writes[i].Record.Version = seqs[i], versions[i]
		}
	}
	return results, nil
}

// loadRecordStates reads the row key, rev and assignment of every record the
// batch names (absent records get a state that does not exist).
func (s *Store) loadRecordStates(ctx context.Context, tx *sql.Tx, writes []domain.RecordWrite) (map[recordKey]*recordState, error) {
	states := make(map[recordKey]*recordState, len(writes))
	byProject := map[string][]string{}
	for _, w := range writes {
		k := recordKey{w.Record.ProjectID, w.Record.ID}
		if states[k] == nil {
			states[k] = &recordState{}
			byProject[k.project] = append(byProject[k.project], k.id)
		}
	}
	for project, ids := range byProject {
		for len(ids) > 0 {
			n := chunkSize(len(ids), inSizes)
			st, err := s.stmt(ctx, tx, stateQuery+"("+placeholders(n)+")")
			if err != nil {
				return nil, err
			}
			args := make([]any, 0, n+1)
			args = append(args, project)
			for _, id := range ids[:n] {
				args = append(args, id)
			}
			ids = ids[n:]
			rows, err := st.QueryContext(ctx, args...)
			if err != nil {
				return nil, err
			}
			for rows.Next() {
				var (
					rk, version int64
					id, rev     string
					assigned    sql.NullString
				)
				if err := rows.Scan(&rk, &id, &rev, &version, &assigned); err != nil {
					rows.Close()
					return nil, err
				}
				rs := states[recordKey{project, id}]
				rs.rk, rs.existed, rs.exists, rs.rev, rs.version = rk, true, true, rev, version
				if rs.assigned0, err = fromJSONText[string](assigned); err != nil {
					rows.Close()
					return nil, err
				}
			}
			// As in readRecordChunk: a read that ended early is an error,
			// not records that do not exist.
			if err := cmp.Or(rows.Err(), rows.Close()); err != nil {
				return nil, err
			}
		}
	}
	return states, nil
}

// recordRow is the rk and the recordCols values of a record's final state.
func recordRow(rs *recordState, enc batchEncoding) ([]any, error) {
	r := rs.final
	conflicts, err := jsonText(r.Conflicts)
	if err != nil {
		return nil, err
	}
	assigned, err := jsonText(r.AssignedTo)
	if err != nil {
		return nil, err
	}
	attach, err := jsonText(r.Attachments)
	if err != nil {
		return nil, err
	}
	e := enc.record(r)
	text, blob := e.text, e.blob
	return []any{rs.rk, r.ProjectID, r.ID, rs.seq, rs.version, r.FormID, r.FormVersion, r.Rev, r.Deleted, text,
		r.CreatedBy, r.DeviceID, ms(r.ClientModifiedAt), ms(r.CreatedAt), ms(r.UpdatedAt), r.ReviewState,
		r.ReviewComment, conflicts, assigned, r.Shared, attach, blob}, nil
}

// detachData gives the revisions that read their data from rs's row
// (data_in_record) the data the row holds now, before the row changes to hold
// text or blob (its new stored data). A row that keeps its data keeps them.
//
// The copy is a delta of the record's new data (see record_data.go) when the
// revision of the record's final rev is inserted by this transaction holding
// exactly that data (head: the batch has it, and it is not stored yet): it is
// then a newer row whose data is never lost. Otherwise it is the data as the
// row stored it.
func (s *Store) detachData(ctx context.Context, tx *sql.Tx, rs *recordState, text, blob any, head bool) error {
	st, err := s.stmt(ctx, tx, recordData)
	if err != nil {
		return err
	}
	var old any
	if err := st.QueryRowContext(ctx, rs.rk).Scan(&old); err != nil {
		return err
	}
	if sameStored(old, text) && blob == nil || sameStored(old, blob) && text == nil {
		return nil
	}
	data, err := s.decode(ctx, tx, old)
	if err != nil {
		return err
	}
	if bytes.Equal(data, rs.final.Data) && (data == nil) == (rs.final.Data == nil) {
		return nil // the same JSON, stored as an older release did
	}
	oldText, oldBlob := any(nil), any(nil)
	if _, ok := old.([]byte); ok {
		oldBlob = old
	} else {
		oldText = old
	}
	if head && old != nil {
		st, err := s.stmt(ctx, tx, revisionExists)
		if err != nil {
			return err
		}
		var exists bool
		if err := st.QueryRowContext(ctx, rs.rk, rs.final.Rev).Scan(&exists); err != nil {
			return err
		}
		if !exists {
			if d, ok := encodeDelta(data, rs.final.Data, rs.final.Rev, storedLen(old)); ok {
				oldText, oldBlob = nil, d
			}
		}
	}
	st, err = s.stmt(ctx, tx, detachRevisionData)
	if err != nil {
		return err
	}
	_, err = st.ExecContext(ctx, rs.rk, oldText, oldBlob)
	return err
}

// syncAssignees makes record_assignees equal to the final assigned_to of each
// written record; most writes leave the assignment as it was and cost nothing.
func syncAssignees(ctx context.Context, tx *sql.Tx, states []*recordState) error {
	for _, rs := range states {
		now := rs.final.AssignedTo
		if slices.Equal(rs.assigned0, now) {
			continue
		}
		for _, sub := range rs.assigned0 {
			if !slices.Contains(now, sub) {
				if _, err := tx.ExecContext(ctx, `DELETE FROM record_assignees WHERE project_id = ? AND subject = ? AND rk = ?`,
					rs.final.ProjectID, sub, rs.rk); err != nil {
					return err
				}
			}
		}
		for _, sub := range now {
			if _, err := tx.ExecContext(ctx, `INSERT OR IGNORE INTO record_assignees (project_id, subject, rk)
				VALUES (?, ?, ?)`, rs.final.ProjectID, sub, rs.rk); err != nil {
				return err
			}
		}
	}
	return nil
}

// Statement sizes. A multi-row INSERT or an IN list spreads the cost of a
// statement over many rows; fixed sizes let each be prepared once and reused
// (see Store.stmt), and the largest stays far below SQLite's parameter limit.
var (
	rowSizes = []int{64, 16, 4, 1}
	inSizes  = []int{256, 64, 16, 4, 1}
)

// chunkSize is the largest of sizes (given largest first, ending with 1) that is
// at most n.
func chunkSize(n int, sizes []int) int {
	for _, c := range sizes {
		if c <= n {
			return c
		}
	}
	return 1
}

// execChunks runs head + "(?, …), (?, …)…" over rows of ncol values each, in
// chunks of rowSizes rows.
func (s *Store) execChunks(ctx context.Context, tx *sql.Tx, head string, ncol int, rows [][]any) error {
	tuple := "(" + placeholders(ncol) + ")"
	args := make([]any, 0, min(len(rows), rowSizes[0])*ncol)
	for len(rows) > 0 {
		n := chunkSize(len(rows), rowSizes)
		st, err := s.stmt(ctx, tx, head+strings.TrimSuffix(strings.Repeat(tuple+", ", n), ", "))
		if err != nil {
			return err
		}
		args = args[:0]
		for _, r := range rows[:n] {
			args = append(args, r...)
		}
		rows = rows[n:]
		if _, err := st.ExecContext(ctx, args...); err != nil {
			return err
		}
	}
	return nil
}

// revisionData is a revision's stored data (see record_data.go), in a query
// that joins its record r to the revision v.
const revisionData = `CASE WHEN v.data_in_record = 1 THEN coalesce(r.zdata, r.data) ELSE coalesce(v.zdata, v.data) END`

// revisionCols are the columns scanRevision reads, in its order.
const revisionCols = `r.project_id, r.id, v.rev, v.parent, v.deleted, ` + revisionData + `, v.form_version,
	v.client_modified_at, v.created_by, v.device_id, v.created_at, v.rk`

// scanRevision reads one row of revisionCols. Its Data is left to the caller,
// who gets the stored data and the record's row key to decode it with
// decodeRevisionData.
func scanRevision(sc scanner) (v domain.Revision, stored any, rk int64, err error) {
	var cma, created sql.NullInt64
	if err := sc.Scan(&v.ProjectID, &v.RecordID, &v.Rev, &v.Parent, &v.Deleted, &stored, &v.FormVersion, &cma,
		&v.CreatedBy, &v.DeviceID, &created, &rk); err != nil {
		return domain.Revision{}, nil, 0, err
	}
	v.ClientModifiedAt = fromMS(cma)
	v.CreatedAt = fromMS(created)
	return v, stored, rk, nil
}

// storedRevisionData returns the stored data of the revision rev of the record
// rk: the base of a delta.
func storedRevisionData(ctx context.Context, tx *sql.Tx, rk int64, rev string) (any, error) {
	var stored any
	err := tx.QueryRowContext(ctx, `SELECT `+revisionData+` FROM revisions v JOIN records r ON r.rk = v.rk
		WHERE v.rk = ? AND v.rev = ?`, rk, rev).Scan(&stored)
	if errors.Is(err, sql.ErrNoRows) {
		return nil, errors.New("no such revision")
	}
	return stored, err
}

// GetRevision returns one stored revision, ErrNotFound if unknown.
func (s *Store) GetRevision(ctx context.Context, projectID, recordID, rev string) (domain.Revision, error) {
	var v domain.Revision
	err := s.read(ctx, func(tx *sql.Tx) error {
		var (
			stored any
			rk     int64
			err    error
		)
		v, stored, rk, err = scanRevision(tx.QueryRowContext(ctx, `SELECT `+revisionCols+`
			FROM records r JOIN revisions v ON v.rk = r.rk
			WHERE r.project_id = ? AND r.id = ? AND v.rev = ?`, projectID, recordID, rev))
		if err != nil {
			return err
		}
		v.Data, err = decodeRevisionData(stored, func(rev string) (any, error) {
			return storedRevisionData(ctx, tx, rk, rev)
		}, func(v any) (json.RawMessage, error) { return s.decode(ctx, tx, v) })
		return err
	})
	return v, err
}

// ListRevisions returns a record's stored revisions, oldest first (by CreatedAt,
// then in the order they were stored).
func (s *Store) ListRevisions(ctx context.Context, projectID, recordID string) ([]domain.Revision, error) {
	var out []domain.Revision
	err := s.read(ctx, func(tx *sql.Tx) error {
		rows, err := tx.QueryContext(ctx, `SELECT `+revisionCols+`
			FROM records r JOIN revisions v ON v.rk = r.rk
			WHERE r.project_id = ? AND r.id = ? ORDER BY v.created_at, v.rev`, projectID, recordID)
		if err != nil {
			return err
		}
		defer rows.Close()
		var (
			stored = map[string]any{}
			raw    []any
			rk     int64
		)
		for rows.Next() {
			v, data, k, err := scanRevision(rows)
			if err != nil {
				return err
			}
			out = append(out, v)
			raw = append(raw, data)
			stored[v.Rev], rk = data, k
		}
		if err := rows.Err(); err != nil {
			return err
		}
		// The bases of deltas are revisions of the same record, read above.
		base := func(rev string) (any, error) {
			if v, ok := stored[rev]; ok {
				return v, nil
			}
			return storedRevisionData(ctx, tx, rk, rev)
		}
		for i := range out {
			var err error
			if out[i].Data, err = decodeRevisionData(raw[i], base,
				func(v any) (json.RawMessage, error) { return s.decode(ctx, tx, v) }); err != nil {
				return err
			}
		}
		return nil
	})
	return out, err
}

// defaultChangesLimit is the page size when the query names none.
const defaultChangesLimit = 1000

// Changes returns one page of the feed. All its queries run in one read
// transaction, so they see one snapshot (see the argument at the top of this file).
//
// The page holds the first Limit records after Since that the caller may see. When
// it is full, Next is the seq of its last record. When it is not full, the page
// holds every visible record of the snapshot after Since, so the store has in
// effect examined the whole snapshot: Next is the snapshot's largest seq, past
// every record the caller may not see. More reports whether anything is committed
// beyond Next.
//
// An enumerator's page is the union of three index ranges, each cut at Limit
// before the union (created by a subject; shared; assigned to a subject), so a
// page costs O(Limit) index steps however sparse the caller's records are in the
// project (the assigned range is sorted first, but assignments are few).
func (s *Store) Changes(ctx context.Context, q domain.ChangesQuery) (domain.ChangesPage, error) {
	limit := q.Limit
	if limit <= 0 {
		limit = defaultChangesLimit
	}
	// The statements are prepared once (parsing the page query cost as much as
	// reading 30 of its records), before the transaction: see readStmt.
	query, args, bySeq := changesQuery(q, limit)
	pageSt, err := s.readStmt(ctx, query)
	if err != nil {
		return domain.ChangesPage{}, dbErr(ctx, err)
	}
	moreSt, err := s.readStmt(ctx, `SELECT EXISTS (SELECT 1 FROM records WHERE project_id = ? AND seq > ?)`)
	if err != nil {
		return domain.ChangesPage{}, dbErr(ctx, err)
	}
	topSt, err := s.readStmt(ctx, `SELECT coalesce(max(seq), 0) FROM records WHERE project_id = ?`)
	if err != nil {
		return domain.ChangesPage{}, dbErr(ctx, err)
	}
	page := domain.ChangesPage{Next: q.Since}
	err = s.read(ctx, func(tx *sql.Tx) error {
		rows, err := tx.StmtContext(ctx, pageSt).QueryContext(ctx, args...)
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
			if len(page.Records) == cap(page.Records) {
				// Room for 16 records first (an idle tablet's page is empty or
				// small), then for the whole page: append's growth copied the
				// records of a large page several times over.
				size := limit
				if cap(page.Records) == 0 {
					size = min(limit, 16)
				}
				grown := make([]domain.Record, len(page.Records), size)
				copy(grown, page.Records)
				page.Records = grown
			}
			page.Records = append(page.Records, r)
		}
		if err := rows.Err(); err != nil {
			return err
		}
		if bySeq {
			slices.SortFunc(page.Records, func(a, b domain.Record) int { return cmp.Compare(a.Seq, b.Seq) })
		}
		if len(page.Records) == limit {
			page.Next = page.Records[len(page.Records)-1].Seq
			return tx.StmtContext(ctx, moreSt).QueryRowContext(ctx, q.ProjectID, page.Next).Scan(&page.More)
		}
		var top int64
		if err := tx.StmtContext(ctx, topSt).QueryRowContext(ctx, q.ProjectID).Scan(&top); err != nil {
			return err
		}
		page.Next = max(q.Since, top)
		return nil
	})
	if err != nil {
		return domain.ChangesPage{}, err
	}
	return page, nil
}

// readStmt returns the prepared statement q, preparing it on first use, for a
// read to bind to its transaction (tx.StmtContext prepares it once per pooled
// connection). It must be called outside any transaction, and holds no lock
// while preparing: db.PrepareContext takes a connection of its own, and
// readers that waited for one while holding theirs (s.stmt holds stmtMu while
// it prepares) could take every connection of the pool and wait for ever.
func (s *Store) readStmt(ctx context.Context, q string) (*sql.Stmt, error) {
	s.stmtMu.Lock()
	st, ok := s.stmts[q]
	s.stmtMu.Unlock()
	if ok {
		return st, nil
	}
	st, err := s.db.PrepareContext(ctx, q)
	if err != nil {
		return nil, err
	}
	s.stmtMu.Lock()
	defer s.stmtMu.Unlock()
	if prev, ok := s.stmts[q]; ok {
		st.Close()
		return prev, nil
	}
	s.stmts[q] = st
	return st, nil
}

// changesQuery builds the page query of Changes. bySeq reports that its rows
// come in another order than seq's.
func changesQuery(q domain.ChangesQuery, limit int) (query string, args []any, bySeq bool) {
	form := ""
	var formArg []any
	if q.FormID != "" {
		form = ` AND form_id = ?`
		formArg = []any{q.FormID}
	}
	if len(q.Subjects) == 0 {
		args := append([]any{q.ProjectID, q.Since}, formArg...)
		args = append(args, limit)
		return `SELECT ` + changeCols + ` FROM records WHERE project_id = ? AND seq > ?` + form +
			` ORDER BY seq LIMIT ?`, args, false
	}
	subjects := slices.Compact(slices.Sorted(slices.Values(q.Subjects)))
	var arms []string
	// The arms take (seq, rk) from their indexes; the page's rows are then
	// fetched by rk, the table's own key, in rk order: Changes sorts them by
	// seq (bySeq). Fetching by seq cost a records_seq lookup more a row.
	arm := func(sql string, a ...any) {
		arms = append(arms, `SELECT seq, rk FROM (`+sql+` ORDER BY seq LIMIT ?)`)
		args = append(args, a...)
		args = append(args, limit)
	}
	arm(`SELECT seq, rk FROM records WHERE project_id = ? AND shared = 1 AND seq > ?`+form,
		append([]any{q.ProjectID, q.Since}, formArg...)...)
	for _, sub := range subjects {
		arm(`SELECT seq, rk FROM records WHERE project_id = ? AND created_by = ? AND seq > ?`+form,
			append([]any{q.ProjectID, sub, q.Since}, formArg...)...)
	}
	for _, sub := range subjects {
		arm(`SELECT r.seq AS seq, r.rk AS rk FROM record_assignees a JOIN records r ON r.rk = a.rk
			WHERE a.project_id = ? AND a.subject = ? AND r.seq > ?`+strings.ReplaceAll(form, "form_id", "r.form_id"),
			append([]any{q.ProjectID, sub, q.Since}, formArg...)...)
	}
	args = append(args, limit)
	return `SELECT ` + changeCols + ` FROM records WHERE rk IN (
		SELECT rk FROM (` + strings.Join(arms, ` UNION `) + `) ORDER BY seq LIMIT ?)`, args, true
}
