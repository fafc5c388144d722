package e2e

import (
	"context"
	"database/sql"
	"encoding/json"
	"fmt"
	"io/fs"
	"math/rand/v2"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/google/uuid"

	"github.com/fieldsync/fieldsync/api"
	"github.com/fieldsync/fieldsync/internal/domain"
	"github.com/fieldsync/fieldsync/internal/store/sqlite"
)

// BenchmarkDiskPerRecord measures what the SQLite data directory costs per
// record (issue 16): it pushes diskRecords survey records of about 1 KB
// through HTTP in batches of benchBatch, as tablets do, then edits every one of
// them once (a push with base_rev), so that the history counts too. It reports
// the bytes of the whole data directory (database, WAL and shared-memory file,
// while the server runs) per record after the creates and after the edits,
// each right after the last push and once writes paused (-idle: the store has
// emptied the WAL), and logs where the bytes of the database file go (SQLite's
// dbstat: pages per table and index). One op is the whole run; use
//
//	go test -run x -bench DiskPerRecord -benchtime 1x ./internal/e2e/
func BenchmarkDiskPerRecord(b *testing.B) {
	const diskRecords = 20_000
	for b.Loop() {
		dir := b.TempDir()
		path := filepath.Join(dir, "fieldsync.db")
		c := newCluster(b, openSQLitePairAt(b, path))
		c.publish("perception", "1", surveyForm(b))
		cl := c.client(0, c.addDevice("disk-tablet").token)
		ctx := context.Background()

		ids := make([]string, diskRecords)
		revs := make([]string, diskRecords)
		var dataBytes int
		for from := 0; from < diskRecords; from += benchBatch {
			subs := make([]api.Submission, benchBatch)
			for i := range subs {
				ids[from+i] = uuid.NewString()
				data := kilobyteRecord(from+i, false)
				dataBytes += len(data)
				subs[i] = api.Submission{ID: ids[from+i], Form: "perception", FormVersion: "1",
					ClientModifiedAt: time.Now().UTC(), Data: data}
			}
			out, err := push(ctx, cl, c.project, subs)
			if err != nil {
				b.Fatal(err)
			}
			for i, r := range out.Results {
				if r.Status != api.PushCreated {
					b.Fatalf("create: %+v", r)
				}
				revs[from+i] = r.Rev
			}
		}
		created := dirBytes(b, dir)
		b.Logf("after %d creates (%.0f B of JSON each):\n%s", diskRecords, float64(dataBytes)/diskRecords, spaceReport(b, path, dir))
		// The store empties the WAL once writes pause (a checkpoint): wait
		// for that, as a du after a run would see it.
		waitWALEmptied(b, path)
		createdIdle := dirBytes(b, dir)
		b.Logf("once writes paused:\n%s", spaceReport(b, path, dir))

		for from := 0; from < diskRecords; from += benchBatch {
			subs := make([]api.Submission, benchBatch)
			for i := range subs {
				subs[i] = api.Submission{ID: ids[from+i], Form: "perception", FormVersion: "1", BaseRev: &revs[from+i],
					ClientModifiedAt: time.Now().UTC(), Data: kilobyteRecord(from+i, true)}
			}
			out, err := push(ctx, cl, c.project, subs)
			if err != nil {
				b.Fatal(err)
			}
			for _, r := range out.Results {
				if r.Status != api.PushUpdated {
					b.Fatalf("edit: %+v", r)
				}
			}
		}
		edited := dirBytes(b, dir)
		b.Logf("after one edit of each:\n%s", spaceReport(b, path, dir))
		waitWALEmptied(b, path)
		idle := dirBytes(b, dir)
		b.Logf("once writes paused:\n%s", spaceReport(b, path, dir))
		b.ReportMetric(float64(created)/diskRecords, "B/record")
		b.ReportMetric(float64(createdIdle)/diskRecords, "B/record-idle")
		b.ReportMetric(float64(edited)/diskRecords, "B/record-edited")
		b.ReportMetric(float64(idle)/diskRecords, "B/record-edited-idle")
	}
}

// waitWALEmptied waits until the WAL of the database at path is empty (or
// gone), for at most a minute.
func waitWALEmptied(tb testing.TB, path string) {
	tb.Helper()
	deadline := time.Now().Add(time.Minute)
	for {
		fi, err := os.Stat(path + "-wal")
		if err != nil || fi.Size() == 0 {
			return
		}
		if time.Now().After(deadline) {
			tb.Fatalf("the WAL still holds %d bytes after a minute without writes", fi.Size())
		}
		time.Sleep(50 * time.Millisecond) // polling an observable condition, with a deadline
	}
}

// openSQLitePairAt is openSQLitePair on a file the caller names.
func openSQLitePairAt(tb testing.TB, path string) [2]domain.Store {
	tb.Helper()
	var out [2]domain.Store
	for i := range out {
		observe, remember := storeMetrics(tb)
		st, err := sqlite.OpenConfig(context.Background(), sqlite.Config{Path: path, Observe: observe})
		if err != nil {
			tb.Fatalf("sqlite.Open #%d: %v", i, err)
		}
		remember(st)
		tb.Cleanup(func() { st.Close() })
		out[i] = st
	}
	return out
}

// kilobyteRecord is surveyRecord(i) grown to about 1 KB by a longer comment
// of words drawn at random (seeded by i, so an edit can redo it): free text
// compresses as free text does, not as one sentence repeated. edited changes
// what an enumerator's correction would: two answers and a sentence more.
func kilobyteRecord(i int, edited bool) []byte {
	words := strings.Fields(`water point road market school clinic night patrol chief elders youth group
		women meeting police station report fear theft phone light dark path river bridge church mosque
		matatu stage boda rider shop kiosk fence gate dog watchman neighbour rain season harvest cattle
		goat land boundary dispute court fine sister brother mother father child fees hunger job casual
		work construction site broke stolen money bag door window key lock alarm whistle shout run hide`)
	r := rand.New(rand.NewPCG(uint64(i), 16))
	var sb strings.Builder
	fmt.Fprintf(&sb, "Household %d.", i)
	for sb.Len() < 420 {
		sb.WriteByte(' ')
		sb.WriteString(words[r.IntN(len(words))])
	}
	sb.WriteByte('.')
	if edited {
		sb.WriteString(" Follow-up: the respondent asked to add that the lights were repaired.")
	}
	var rec map[string]any
	if err := json.Unmarshal(surveyRecord(i), &rec); err != nil {
		panic(err)
	}
	rec["comments"] = sb.String()
	if edited {
		rec["trust"].(map[string]any)["police"] = 1 + (i+2)%5
		rec["feeling_safe"].(map[string]any)["night"] = 1 + (i+1)%5
	}
	out, err := json.Marshal(rec)
	if err != nil {
		panic(err)
	}
	return out
}

// dirBytes is the size of the files under dir, the attachments directory
// included.
func dirBytes(tb testing.TB, dir string) int64 {
	tb.Helper()
	var n int64
	err := filepath.WalkDir(dir, func(p string, d fs.DirEntry, err error) error {
		if err != nil || d.IsDir() {
			return err
		}
		fi, err := d.Info()
		if err != nil {
			return err
		}
		n += fi.Size()
		return nil
	})
	if err != nil {
		tb.Fatal(err)
	}
	return n
}

// spaceReport tells where the bytes of the data directory go: each file, and
// the pages of the database file per table and index (dbstat), with the bytes
// of payload they hold.
func spaceReport(tb testing.TB, path, dir string) string {
	tb.Helper()
	var sb strings.Builder
	entries, err := os.ReadDir(dir)
	if err != nil {
		tb.Fatal(err)
	}
	for _, e := range entries {
		if fi, err := e.Info(); err == nil && !e.IsDir() {
			fmt.Fprintf(&sb, "  file %-22s %10d B\n", e.Name(), fi.Size())
		}
	}
	db, err := sql.Open("sqlite", "file:"+path+"?mode=ro")
	if err != nil {
		tb.Fatal(err)
	}
	defer db.Close()
	rows, err := db.Query(`SELECT name, count(*), sum(pgsize), sum(payload), sum(unused)
		FROM dbstat GROUP BY name ORDER BY sum(pgsize) DESC`)
	if err != nil {
		tb.Fatal(err)
	}
	defer rows.Close()
	fmt.Fprintf(&sb, "  %-28s %8s %12s %12s %12s\n", "table/index", "pages", "bytes", "payload", "unused")
	for rows.Next() {
		var (
			name                          string
			pages, bytes, payload, unused int64
		)
		if err := rows.Scan(&name, &pages, &bytes, &payload, &unused); err != nil {
			tb.Fatal(err)
		}
		if bytes < 64<<10 {
			continue
		}
		fmt.Fprintf(&sb, "  %-28s %8d %12d %12d %12d\n", name, pages, bytes, payload, unused)
	}
	if err := rows.Err(); err != nil {
		tb.Fatal(err)
	}
	var free, pageSize int64
	if err := db.QueryRow(`PRAGMA freelist_count`).Scan(&free); err != nil {
		tb.Fatal(err)
	}
	if err := db.QueryRow(`PRAGMA page_size`).Scan(&pageSize); err != nil {
		tb.Fatal(err)
	}
	fmt.Fprintf(&sb, "  free pages %d (page size %d)", free, pageSize)
	return sb.String()
}
