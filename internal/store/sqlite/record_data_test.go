package sqlite

import (
	"context"
	"database/sql"
	"encoding/json"
	"fmt"
	"math/rand/v2"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/fieldsync/fieldsync/internal/domain"
)

// answers is a JSON object of about n bytes that differs by i: words drawn at
// random (seeded by i) from a few hundred, as free text compresses.
func answers(i, n int) json.RawMessage {
	r := rand.New(rand.NewPCG(uint64(i), 7))
	var sb strings.Builder
	fmt.Fprintf(&sb, `{"i":%d,"note":"`, i)
	for sb.Len() < n {
		fmt.Fprintf(&sb, "w%x ", r.IntN(400))
	}
	sb.WriteString(`"}`)
	return json.RawMessage(sb.String())
}

// textDataStore writes a store as the releases before migration 0011 left it:
// data as JSON text, a created record whose revision reads the record's data
// (data_in_record), and an edited one whose first revision holds its own copy.
func textDataStore(t *testing.T) string {
	t.Helper()
	path := filepath.Join(t.TempDir(), "fieldsync.db")
	db, err := sql.Open("sqlite", path)
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	ms, err := migrationNames()
	if err != nil {
		t.Fatal(err)
	}
	ctx := context.Background()
	exec := func(q string, args ...any) {
		t.Helper()
		if _, err := db.ExecContext(ctx, q, args...); err != nil {
			t.Fatalf("%.60s: %v", q, err)
		}
	}
	exec(`CREATE TABLE schema_migrations (version INTEGER PRIMARY KEY, applied_at INTEGER NOT NULL) STRICT`)
	for _, m := range ms {
		if m.version >= 11 {
			break
		}
		body, err := migrationFiles.ReadFile(m.name)
		if err != nil {
			t.Fatal(err)
		}
		exec(string(body))
		exec(`INSERT INTO schema_migrations VALUES (?, 1)`, m.version)
	}
	rec := `INSERT INTO records (rk, project_id, id, seq, version, form_id, form_version, rev, data, created_by,
		created_at, updated_at, review_state) VALUES (?, 'p', ?, ?, ?, 'f', '1', ?, ?, 'u', ?, ?, 'received')`
	rev := `INSERT INTO revisions (rk, rev, parent, data, data_in_record, form_version, created_by, created_at)
		VALUES (?, ?, ?, ?, ?, '1', 'u', ?)`
	exec(rec, 1, "r1", 1, 1, "1-a", string(answers(1, 1000)), 1000, 1000)
	exec(rev, 1, "1-a", "", nil, 1, 1000)
	exec(rec, 2, "r2", 2, 2, "2-b", string(answers(3, 1000)), 2000, 2500)
	exec(rev, 2, "1-x", "", string(answers(2, 1000)), 0, 2000)
	exec(rev, 2, "2-b", "1-x", nil, 1, 2500)
	return path
}

// TestTextDataStore: a store whose data is JSON text (written before
// migration 0011) opens, and every record, revision and query reads as before;
// edits then store new data compressed and old data as deltas, and a write
// that leaves the data as it was copies nothing.
func TestTextDataStore(t *testing.T) {
	st := openTest(t, textDataStore(t))
	ctx := t.Context()
	want := map[string]json.RawMessage{"1-a": answers(1, 1000), "1-x": answers(2, 1000), "2-b": answers(3, 1000)}
	check := func(when string) {
		t.Helper()
		for id, rev := range map[string]string{"r1": "1-a", "r2": "2-b"} {
			r, err := st.GetRecord(ctx, "p", id)
			if err != nil {
				t.Fatalf("%s: GetRecord %s: %v", when, id, err)
			}
			if r.Rev != rev || string(r.Data) != string(want[rev]) {
				t.Errorf("%s: GetRecord %s = %s %.40s…, want %s %.40s…", when, id, r.Rev, r.Data, rev, want[rev])
			}
		}
		got, err := st.GetRecords(ctx, "p", []string{"r1", "r2"})
		if err != nil || len(got) != 2 || string(got["r2"].Data) != string(want[got["r2"].Rev]) {
			t.Errorf("%s: GetRecords: %v %v", when, got, err)
		}
		page, err := st.Changes(ctx, domain.ChangesQuery{ProjectID: "p"})
		if err != nil {
			t.Fatal(err)
		}
		for _, r := range page.Records {
			if string(r.Data) != string(want[r.Rev]) {
				t.Errorf("%s: Changes: %s at %s: %.40s…", when, r.ID, r.Rev, r.Data)
			}
		}
		q, err := st.QueryRecords(ctx, domain.RecordQuery{ProjectID: "p", FormID: "f"})
		if err != nil {
			t.Fatal(err)
		}
		if len(q.Records) != 2 {
			t.Errorf("%s: QueryRecords: %d records", when, len(q.Records))
		}
		for _, r := range q.Records {
			if string(r.Data) != string(want[r.Rev]) {
				t.Errorf("%s: QueryRecords: %s at %s: %.40s…", when, r.ID, r.Rev, r.Data)
			}
		}
		for id := range map[string]bool{"r1": true, "r2": true} {
			revs, err := st.ListRevisions(ctx, "p", id)
			if err != nil {
				t.Fatal(err)
			}
			for _, v := range revs {
				if string(v.Data) != string(want[v.Rev]) {
					t.Errorf("%s: ListRevisions %s: %s: %.40s…, want %.40s…", when, id, v.Rev, v.Data, want[v.Rev])
				}
				one, err := st.GetRevision(ctx, "p", id, v.Rev)
				if err != nil || string(one.Data) != string(want[v.Rev]) {
					t.Errorf("%s: GetRevision %s %s: %.40s… %v", when, id, v.Rev, one.Data, err)
				}
			}
		}
	}
	check("opened")

	// A review of r1 leaves its data: its revision goes on reading the row's.
	r1, err := st.GetRecord(ctx, "p", "r1")
	if err != nil {
		t.Fatal(err)
	}
	r1.ReviewState = domain.ReviewApproved
	if res, err := st.WriteRecords(ctx, []domain.RecordWrite{{Record: r1, ExpectRev: r1.Rev}}); err != nil || res[0] != nil {
		t.Fatalf("review: %v %v", res, err)
	}
	if n := storedCount(t, st, `SELECT count(*) FROM revisions WHERE rk = 1 AND data_in_record = 1`); n != 1 {
		t.Errorf("after a review, %d revisions of r1 read the record's data, want 1 (no copy)", n)
	}
	check("reviewed")

	// Five edits of r2: each keeps the one before it as a delta of its own.
	r2, err := st.GetRecord(ctx, "p", "r2")
	if err != nil {
		t.Fatal(err)
	}
	at := time.UnixMilli(3000).UTC()
	for g := 3; g <= 7; g++ {
		next := r2
		next.Rev, next.Data = fmt.Sprintf("%d-e", g), answers(g+1, 1000)
		next.Data = json.RawMessage(strings.Replace(string(answers(3, 1000)), `"i":3`, fmt.Sprintf(`"i":%d`, 100+g), 1))
		want[next.Rev] = next.Data
		w := domain.RecordWrite{Record: next, ExpectRev: r2.Rev, Revisions: []domain.Revision{{ProjectID: "p", RecordID: "r2",
			Rev: next.Rev, Parent: r2.Rev, Data: next.Data, FormVersion: "1", CreatedAt: at.Add(time.Duration(g) * time.Second)}}}
		ws := []domain.RecordWrite{w}
		if res, err := st.WriteRecords(ctx, ws); err != nil || res[0] != nil {
			t.Fatalf("edit %d: %v %v", g, res, err)
		}
		r2 = ws[0].Record
		if string(r2.Data) != string(next.Data) {
			t.Fatal("edit changed the data it was given")
		}
	}
	revs, err := st.ListRevisions(ctx, "p", "r2")
	if err != nil {
		t.Fatal(err)
	}
	if len(revs) != 7 {
		t.Fatalf("r2 has %d revisions, want 7", len(revs))
	}
	for _, v := range revs {
		if string(v.Data) != string(want[v.Rev]) {
			t.Errorf("edited: %s: %.50s…, want %.50s…", v.Rev, v.Data, want[v.Rev])
		}
		one, err := st.GetRevision(ctx, "p", "r2", v.Rev)
		if err != nil || string(one.Data) != string(want[v.Rev]) {
			t.Errorf("edited: GetRevision %s: %.40s… %v", v.Rev, one.Data, err)
		}
	}
	// 2-b and the edits before the last are deltas; 1-x stays text.
	if n := storedCount(t, st, `SELECT count(*) FROM revisions WHERE rk = 2 AND substr(zdata, 1, 1) = x'64'`); n != 5 {
		t.Errorf("%d deltas among r2's revisions, want 5", n)
	}
	if n := storedCount(t, st, `SELECT max(length(zdata)) FROM revisions WHERE rk = 2`); n > 100 {
		t.Errorf("a delta of a 1 KB record that changed in one field takes %d bytes", n)
	}
	if n := storedCount(t, st, `SELECT length(zdata) FROM records WHERE rk = 2`); n == 0 || n > 600 {
		t.Errorf("the record's compressed data takes %d bytes (1 KB of JSON)", n)
	}
}

// storedCount runs a query that answers one number.
func storedCount(t *testing.T, st *Store, q string) int {
	t.Helper()
	var n sql.NullInt64
	if err := st.db.QueryRowContext(t.Context(), q).Scan(&n); err != nil {
		t.Fatal(err)
	}
	return int(n.Int64)
}

// TestDiskPerRecord: ~1 KB records, each edited once and reviewed once, take
// little more room than one copy of their JSON (issue 16: they took 1.3 KB each
// in records and a 4 KB overflow page each in revisions once edited, as each
// edit and each review copied the whole JSON into the history).
func TestDiskPerRecord(t *testing.T) {
	const n = 300
	st := openTest(t, filepath.Join(t.TempDir(), "fieldsync.db"))
	ctx := t.Context()
	at := time.UnixMilli(1_700_000_000_000).UTC()
	survey := func(i, edit int) json.RawMessage {
		return json.RawMessage(fmt.Sprintf(`{"consent":true,"edit":%d,"household":%d,"respondent":{"age":%d,"gender":%q},`+
			`"trust":{"police":%d,"chiefs":%d},"comments":%q}`, edit, i, 18+i%70, []string{"female", "male"}[i%2],
			1+i%5, 1+(i/5)%5, answers(i, 850)))
	}
	var jsonBytes int
	writes := make([]domain.RecordWrite, n)
	for i := range writes {
		data := survey(i, 0)
		jsonBytes += len(data)
		id, rev := fmt.Sprintf("r%03d", i), "1-a"
		writes[i] = domain.RecordWrite{
			Record: domain.Record{ProjectID: "p", ID: id, FormID: "f", FormVersion: "1", Rev: rev, Data: data,
				CreatedBy: "device:0f9d3c5e-1111-4000-8000-000000000001", CreatedAt: at, UpdatedAt: at},
			Revisions: []domain.Revision{{ProjectID: "p", RecordID: id, Rev: rev, Data: data, FormVersion: "1", CreatedAt: at}}}
	}
	mustWrite(t, st, writes)
	for i := range writes { // an edit of each
		w := &writes[i]
		prev := w.Record.Rev
		w.Record.Rev, w.Record.Data, w.ExpectRev, w.ExpectVersion = "2-b", survey(i, 1), prev, 0
		w.Revisions = []domain.Revision{{ProjectID: "p", RecordID: w.Record.ID, Rev: "2-b", Parent: prev,
			Data: w.Record.Data, FormVersion: "1", CreatedAt: at.Add(time.Second)}}
	}
	mustWrite(t, st, writes)
	for i := range writes { // a review of each
		w := &writes[i]
		w.Record.ReviewState, w.ExpectRev, w.Revisions = domain.ReviewApproved, w.Record.Rev, nil
	}
	mustWrite(t, st, writes)

	var bytes int
	if err := st.db.QueryRowContext(ctx, `SELECT sum(pgsize) FROM dbstat WHERE name IN ('records', 'revisions')`).Scan(&bytes); err != nil {
		t.Fatal(err)
	}
	t.Logf("%d records of %d B of JSON, edited and reviewed: %d B each in records and revisions",
		n, jsonBytes/n, bytes/n)
	if limit := jsonBytes / n; bytes/n > limit {
		t.Errorf("a record and its history take %d B, more than its %d B of JSON", bytes/n, limit)
	}
	for _, id := range []string{"r000", "r150", "r299"} {
		revs, err := st.ListRevisions(ctx, "p", id)
		if err != nil || len(revs) != 2 {
			t.Fatalf("ListRevisions %s: %d, %v", id, len(revs), err)
		}
		var i int
		fmt.Sscanf(id, "r%d", &i)
		if string(revs[0].Data) != string(survey(i, 0)) || string(revs[1].Data) != string(survey(i, 1)) {
			t.Errorf("%s: revisions read %.60s… and %.60s…", id, revs[0].Data, revs[1].Data)
		}
	}
}

// mustWrite applies writes (and sets their Version and Seq), failing on any
// refusal.
func mustWrite(t *testing.T, st *Store, writes []domain.RecordWrite) {
	t.Helper()
	res, err := st.WriteRecords(t.Context(), writes)
	if err != nil {
		t.Fatal(err)
	}
	for i, r := range res {
		if r != nil {
			t.Fatalf("write %d: %v", i, r)
		}
	}
}

// TestWALEmptiedWhenWritesPause: once writes pause, the store checkpoints the
// WAL and empties it, so the data directory does not keep tens of MB of it
// (issue 16: a project of 22,000 records kept 40 MB).
func TestWALEmptiedWhenWritesPause(t *testing.T) {
	path := filepath.Join(t.TempDir(), "fieldsync.db")
	st := openTest(t, path)
	writes := make([]domain.RecordWrite, 500)
	at := time.UnixMilli(1_700_000_000_000).UTC()
	for i := range writes {
		id := fmt.Sprintf("r%03d", i)
		writes[i] = domain.RecordWrite{Record: domain.Record{ProjectID: "p", ID: id, FormID: "f", Rev: "1-a",
			Data: answers(i, 1000), CreatedAt: at}}
	}
	mustWrite(t, st, writes)
	fi, err := os.Stat(path + "-wal")
	if err != nil || fi.Size() <= walIdleMinBytes {
		t.Fatalf("the batch left a WAL of %v bytes (%v): too small to test", fi.Size(), err)
	}
	deadline := time.Now().Add(30 * time.Second)
	for {
		fi, err := os.Stat(path + "-wal")
		if err != nil || fi.Size() == 0 {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("the WAL still holds %d bytes 30 s after the last write", fi.Size())
		}
		time.Sleep(20 * time.Millisecond) // polling an observable condition, with a deadline
	}
	// Every write is still there.
	page, err := st.Changes(t.Context(), domain.ChangesQuery{ProjectID: "p"})
	if err != nil || len(page.Records) != len(writes) {
		t.Fatalf("after the checkpoint: %d records, %v", len(page.Records), err)
	}
}
