package sqlite

import (
	"bytes"
	"context"
	"database/sql"
	"encoding/binary"
	"encoding/json"
	"errors"
	"fmt"
	"sync"
	"time"

	"github.com/klauspost/compress/s2"

	"github.com/fieldsync/fieldsync/internal/domain"
)

// Dictionaries of forms (table data_dicts, migration 0011).
//
// One record's answers compress poorly alone (~0.6 with zstd): most of their
// bytes are the keys, codes and phrases every record of the form repeats. So
// once a form has dictMinSamples records, the store keeps the JSON of up to
// dictSamples of them as that form's dictionary, and encodes the data of its
// later records as s2 blocks against it (stored form 'D', record_data.go):
// about a third of the JSON's size. A dictionary never changes and is never
// deleted; a process caches the ones it used (a few hundred KB each, for the
// encoder's tables).
const (
	dictSamples    = 16
	dictMinSamples = 8
	dictMaxBytes   = 32 << 10
	// dictRetry is how many batches with records of a form without a
	// dictionary a process writes before it looks for (or makes) one again.
	dictRetry = 16
)

// dictCache is a Store's dictionaries, by form and by id.
type dictCache struct {
	mu     sync.Mutex
	byID   map[int64]*s2.Dict
	byForm map[formKey]*formDict
}

type formKey struct{ project, form string }

// formDict is a form's dictionary, or (d nil) the count of records to encode
// before looking again.
type formDict struct {
	id    int64
	d     *s2.Dict
	until int
}

// encoded is a datum as stored, in the data and zdata columns.
type encoded struct{ text, blob any }

// batchEncoding is the stored forms of a batch's data, made before its
// transaction so that the write lock is not held while compressing.
type batchEncoding struct {
	records   map[*domain.Record]encoded
	revisions map[*domain.Revision]encoded
}

// record is the stored form of a record's data.
func (e batchEncoding) record(r *domain.Record) encoded {
	if x, ok := e.records[r]; ok {
		return x
	}
	t, b := encodeData(r.Data)
	return encoded{t, b}
}

// revision is the stored form of a revision's data.
func (e batchEncoding) revision(v *domain.Revision) encoded {
	if x, ok := e.revisions[v]; ok {
		return x
	}
	t, b := encodeData(v.Data)
	return encoded{t, b}
}

// encodeBatch encodes the data of every write and of every revision whose data
// is not its record's (which the record row holds, see pendingRev.row), each
// with its form's dictionary when it has one.
func (s *Store) encodeBatch(ctx context.Context, writes []domain.RecordWrite) batchEncoding {
	e := batchEncoding{records: make(map[*domain.Record]encoded, len(writes)), revisions: map[*domain.Revision]encoded{}}
	dicts := map[formKey]*formDict{}
	for i := range writes {
		w := &writes[i]
		k := formKey{w.Record.ProjectID, w.Record.FormID}
		fd, ok := dicts[k]
		if !ok {
			fd = s.formDict(ctx, k, writes)
			dicts[k] = fd
		}
		e.records[&w.Record] = encodeWith(w.Record.Data, fd)
		for j := range w.Revisions {
			v := &w.Revisions[j]
			if !bytes.Equal(v.Data, w.Record.Data) {
				e.revisions[v] = encodeWith(v.Data, fd)
			}
		}
	}
	return e
}

// encodeWith encodes data with the form's dictionary, or alone (encodeData)
// when it has none or that is shorter. The dictionary's encoding is tried
// first, as it is the faster (s2's Encode, ~4 times EncodeBetter's speed for
// a quarter more bytes), and zstd only when it saved less than half.
func encodeWith(data json.RawMessage, fd *formDict) encoded {
	if fd == nil || fd.d == nil || len(data) < minCompress {
		text, blob := encodeData(data)
		return encoded{text, blob}
	}
	// Encode writes from the start of its dst: the header goes before.
	body := fd.d.Encode(nil, data)
	out := make([]byte, 1, 1+binary.MaxVarintLen64+len(body))
	out[0] = dataDict
	out = binary.AppendUvarint(out, uint64(fd.id))
	out = append(out, body...)
	if len(out) <= len(data)/2 {
		return encoded{nil, out}
	}
	text, blob := encodeData(data)
	if len(out) >= storedLen(text)+storedLen(blob) {
		return encoded{text, blob}
	}
	return encoded{nil, out}
}

// formDict returns the dictionary of a form, making it from the batch's
// records of the form and the stored ones when it has none and enough of them.
// It returns nil when there is none: the data is then encoded alone. A
// dictionary that cannot be read or made is not an error for the write.
func (s *Store) formDict(ctx context.Context, k formKey, writes []domain.RecordWrite) *formDict {
	c := &s.dicts
	c.mu.Lock()
	fd := c.byForm[k]
	if fd != nil && (fd.d != nil || fd.until > 0) {
		if fd.d == nil {
			fd.until--
		}
		c.mu.Unlock()
		return fd
	}
	c.mu.Unlock()
	id, dict, err := s.loadOrMakeDict(ctx, k, writes)
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.byForm == nil {
		c.byForm, c.byID = map[formKey]*formDict{}, map[int64]*s2.Dict{}
	}
	if err != nil || dict == nil {
		fd = &formDict{until: dictRetry}
	} else {
		if c.byID[id] == nil {
			c.byID[id] = dict
		}
		fd = &formDict{id: id, d: c.byID[id]}
	}
	c.byForm[k] = fd
	return fd
}

// loadOrMakeDict reads a form's dictionary, or makes one if it has enough
// records (in the batch, then stored) and none yet. A nil dict without error
// means none.
func (s *Store) loadOrMakeDict(ctx context.Context, k formKey, writes []domain.RecordWrite) (int64, *s2.Dict, error) {
	var (
		id   int64
		dict []byte
	)
	err := s.db.QueryRowContext(ctx, `SELECT id, dict FROM data_dicts WHERE project_id = ? AND form_id = ?`,
		k.project, k.form).Scan(&id, &dict)
	if err == nil {
		return id, s2.MakeDict(dict, nil), nil
	}
	if !errors.Is(err, sql.ErrNoRows) {
		return 0, nil, err
	}
	var samples []json.RawMessage
	for i := range writes {
		r := &writes[i].Record
		if len(samples) < dictSamples && r.ProjectID == k.project && r.FormID == k.form && len(r.Data) >= minCompress {
			samples = append(samples, r.Data)
		}
	}
	if len(samples) < dictSamples {
		err := s.read(ctx, func(tx *sql.Tx) error {
			rows, err := tx.QueryContext(ctx, `SELECT coalesce(zdata, data) FROM records
				WHERE project_id = ? AND form_id = ? AND (zdata IS NOT NULL OR length(data) >= ?) ORDER BY seq LIMIT ?`,
				k.project, k.form, minCompress, dictSamples-len(samples))
			if err != nil {
				return err
			}
			defer rows.Close()
			for rows.Next() {
				var v any
				if err := rows.Scan(&v); err != nil {
					return err
				}
				// No record of the form can be encoded with a dictionary yet.
				if data, err := decodeData(v); err == nil {
					samples = append(samples, data)
				}
			}
			return rows.Err()
		})
		if err != nil {
			return 0, nil, err
		}
	}
	if len(samples) < dictMinSamples {
		return 0, nil, nil
	}
	var b []byte
	for _, d := range samples {
		if len(b)+len(d) > dictMaxBytes {
			break
		}
		b = append(b, d...)
	}
	if len(b) < s2.MinDictSize {
		return 0, nil, nil
	}
	err = s.write(ctx, func(tx *sql.Tx) error {
		// Another process may have made one meanwhile: the first stays.
		if _, err := tx.ExecContext(ctx, `INSERT OR IGNORE INTO data_dicts (project_id, form_id, dict, created_at)
			VALUES (?, ?, ?, ?)`, k.project, k.form, b, time.Now().UnixMilli()); err != nil {
			return err
		}
		return tx.QueryRowContext(ctx, `SELECT id, dict FROM data_dicts WHERE project_id = ? AND form_id = ?`,
			k.project, k.form).Scan(&id, &dict)
	})
	if err != nil {
		return 0, nil, err
	}
	return id, s2.MakeDict(dict, nil), nil
}

// dictByID returns the dictionary id, reading it with tx when this process has
// not used it yet.
func (s *Store) dictByID(ctx context.Context, tx querier, id int64) (*s2.Dict, error) {
	c := &s.dicts
	c.mu.Lock()
	d := c.byID[id]
	c.mu.Unlock()
	if d != nil {
		return d, nil
	}
	var dict []byte
	if err := tx.QueryRowContext(ctx, `SELECT dict FROM data_dicts WHERE id = ?`, id).Scan(&dict); err != nil {
		return nil, fmt.Errorf("sqlite: dictionary %d of stored data: %w", id, err)
	}
	if d = s2.MakeDict(dict, nil); d == nil {
		return nil, fmt.Errorf("sqlite: dictionary %d of stored data is too short", id)
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.byID == nil {
		c.byForm, c.byID = map[formKey]*formDict{}, map[int64]*s2.Dict{}
	}
	if prev := c.byID[id]; prev != nil {
		return prev, nil
	}
	c.byID[id] = d
	return d, nil
}

// querier reads one row: a transaction, or the pool for a read that is one
// statement (a snapshot by itself).
type querier interface {
	QueryRowContext(ctx context.Context, query string, args ...any) *sql.Row
}

// decode is decodeData for every stored form but deltas, reading dictionaries
// with tx. (A dictionary row is never changed or removed once a record names
// it, so any snapshot that holds the record holds its dictionary.)
func (s *Store) decode(ctx context.Context, tx querier, v any) (json.RawMessage, error) {
	b, ok := v.([]byte)
	if !ok || len(b) == 0 || b[0] != dataDict {
		return decodeData(v)
	}
	id, n := binary.Uvarint(b[1:])
	if n <= 0 {
		return nil, errors.New("sqlite: stored data names no dictionary")
	}
	d, err := s.dictByID(ctx, tx, int64(id))
	if err != nil {
		return nil, err
	}
	out, err := d.Decode(nil, b[1+n:])
	if err != nil {
		return nil, fmt.Errorf("sqlite: decode stored data: %w", err)
	}
	return out, nil
}
