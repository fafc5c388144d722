package httpapi

import (
	"context"
	"database/sql"
	"encoding/json"
	"fmt"
	"net/http"
	"path/filepath"
	"strings"
	"sync"
	"testing"

	msqlite "modernc.org/sqlite"

	"github.com/fieldsync/fieldsync/api"
	"github.com/fieldsync/fieldsync/internal/store/sqlite"
)

// pageLimits caps the size of the SQLite files whose path contains a key, in
// pages, on every connection opened from the moment it is set: SQLite then
// answers SQLITE_FULL past the cap, as it does when the disk is full. It is
// fault injection at the store boundary with SQLite's own mechanism
// (max_page_count), because a test cannot make a small file system without
// root; production code has no part in it.
var pageLimits struct {
	once sync.Once
	mu   sync.Mutex
	m    map[string]int
}

func limitPages(t *testing.T, path string, pages int) {
	pageLimits.once.Do(func() {
		pageLimits.m = map[string]int{}
		msqlite.RegisterConnectionHook(func(conn msqlite.ExecQuerierContext, dsn string) error {
			pageLimits.mu.Lock()
			defer pageLimits.mu.Unlock()
			for key, n := range pageLimits.m {
				if strings.Contains(dsn, key) {
					_, err := conn.ExecContext(context.Background(), fmt.Sprintf("PRAGMA max_page_count = %d", n), nil)
					return err
				}
			}
			return nil
		})
	})
	pageLimits.mu.Lock()
	pageLimits.m[path] = pages
	pageLimits.mu.Unlock()
	t.Cleanup(func() {
		pageLimits.mu.Lock()
		delete(pageLimits.m, path)
		pageLimits.mu.Unlock()
	})
}

// serverOn starts a test server on the SQLite file at path (closed when the
// test ends, or by the caller).
func serverOn(t *testing.T, path string) (*testServer, *sqlite.Store) {
	t.Helper()
	st, err := sqlite.Open(context.Background(), path)
	if err != nil {
		t.Fatalf("sqlite.Open: %v", err)
	}
	t.Cleanup(func() { st.Close() })
	return newTestServer(t, withConfig(func(c *Config) { c.Store = st })), st
}

// TestSQLiteFullDiskAnswers503 fills the SQLite store while a tablet pushes:
// the push that does not fit answers 503 with Retry-After and the code
// store_full, nothing acknowledged is lost, the file passes SQLite's integrity
// check, and once there is room again the same batch goes in.
func TestSQLiteFullDiskAnswers503(t *testing.T) {
	dir := t.TempDir()
	path := filepath.Join(dir, "full-disk-test.db")

	// Set up on an unlimited store: a project, a form, a tablet.
	ts, st := serverOn(t, path)
	e := &syncEnv{ts: ts, admin: ts.adminToken(t)}
	ts.want(t, http.StatusCreated, http.MethodPost, "/v1/projects", e.admin, api.CreateProjectRequest{ID: syncProject, Title: "Safety"}, nil)
	e.putForm(t, "survey", "1", "merge", false, true)
	tablet := e.enroll(t, "tablet")
	ts.Close()
	if err := st.Close(); err != nil {
		t.Fatal(err)
	}
	pages := pageCount(t, path)

	// The same file with room for a few batches only.
	limitPages(t, "full-disk-test.db", pages+40)
	ts, st = serverOn(t, path)
	e.ts = ts
	acked := map[string]string{}
	var refused []api.Submission
	note := strings.Repeat("x", 1500)
	for b := 0; b < 500 && refused == nil; b++ {
		subs := make([]any, 20)
		for i := range subs {
			subs[i] = e.newSub("survey", fmt.Sprintf(`{"name": "r-%d-%d", "notes": %q}`, b, i, note))
		}
		resp, raw := ts.call(t, http.MethodPost, pushPath(), tablet.token, pushBody(t, subs...))
		switch resp.StatusCode {
		case http.StatusOK:
			var out api.PushResponse
			if err := json.Unmarshal(raw, &out); err != nil {
				t.Fatal(err)
			}
			for _, r := range out.Results {
				if r.Status != api.PushCreated {
					t.Fatalf("push: %+v", r)
				}
				acked[r.ID] = r.Rev
			}
		case http.StatusServiceUnavailable:
			var p api.Problem
			if err := json.Unmarshal(raw, &p); err != nil {
				t.Fatal(err)
			}
			if p.Code != api.CodeStoreFull || !strings.Contains(p.Title, "full") {
				t.Errorf("full store: problem %+v, want code %s and a title that says the disk is full", p, api.CodeStoreFull)
			}
			if resp.Header.Get("Retry-After") == "" {
				t.Error("full store: 503 without Retry-After")
			}
			for _, s := range subs {
				refused = append(refused, s.(api.Submission))
			}
		default:
			t.Fatalf("push: %d %s", resp.StatusCode, raw)
		}
	}
	if refused == nil {
		t.Fatalf("%d records acknowledged and the store never filled", len(acked))
	}
	if len(acked) == 0 {
		t.Fatal("the store was full before the first push")
	}
	// Reads go on while writes cannot.
	if resp, raw := ts.get(t, "/readyz"); resp.StatusCode != http.StatusOK {
		t.Errorf("readyz on a full store: %d %s", resp.StatusCode, raw)
	}
	ts.Close()
	if err := st.Close(); err != nil {
		t.Fatal(err)
	}

	// Intact: SQLite's own check, then every acknowledged record at its rev.
	db, err := sql.Open("sqlite", path)
	if err != nil {
		t.Fatal(err)
	}
	var verdict string
	if err := db.QueryRow(`PRAGMA integrity_check`).Scan(&verdict); err != nil || verdict != "ok" {
		t.Errorf("integrity_check after the store filled: %q, %v", verdict, err)
	}
	db.Close()

	// Room again (the operator freed the disk): the refused batch goes in.
	pageLimits.mu.Lock()
	delete(pageLimits.m, "full-disk-test.db")
	pageLimits.mu.Unlock()
	ts, _ = serverOn(t, path)
	e.ts = ts
	for id, rev := range acked {
		if got := e.record(t, e.admin, id); got.Rev != rev {
			t.Errorf("record %s: rev %s, acknowledged %s", id, got.Rev, rev)
		}
	}
	items := make([]any, len(refused))
	for i, s := range refused {
		items[i] = s
	}
	for _, r := range e.push(t, tablet.token, items...) {
		if r.Status != api.PushCreated && r.Status != api.PushUnchanged {
			t.Errorf("refused item pushed again: %+v", r)
		}
	}
	t.Logf("%d records acknowledged before the store filled (%d pages allowed)", len(acked), pages+40)
}

// pageCount is the number of pages of the SQLite file at path.
func pageCount(t *testing.T, path string) int {
	t.Helper()
	db, err := sql.Open("sqlite", path)
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	var n int
	if err := db.QueryRow(`PRAGMA page_count`).Scan(&n); err != nil {
		t.Fatal(err)
	}
	return n
}
