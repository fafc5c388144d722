package sqlite

import (
	"context"
	"database/sql"
	"errors"
	"path/filepath"
	"strings"
	"testing"

	"github.com/fieldsync/fieldsync/internal/domain"
)

// previousReleaseStore writes a store as the release before the newest
// migration left it: the migrations up to the one before the last applied,
// and a quarantined item in that schema. It returns the file's path.
func previousReleaseStore(t *testing.T) string {
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
	if _, err := db.ExecContext(ctx, `CREATE TABLE schema_migrations (version INTEGER PRIMARY KEY, applied_at INTEGER NOT NULL) STRICT`); err != nil {
		t.Fatal(err)
	}
	for _, m := range ms[:len(ms)-1] {
		body, err := migrationFiles.ReadFile(m.name)
		if err != nil {
			t.Fatal(err)
		}
		if _, err := db.ExecContext(ctx, string(body)); err != nil {
			t.Fatalf("%s: %v", m.name, err)
		}
		if _, err := db.ExecContext(ctx, `INSERT INTO schema_migrations VALUES (?, 1)`, m.version); err != nil {
			t.Fatal(err)
		}
	}
	if _, err := db.ExecContext(ctx, `INSERT INTO projects (id, title, created_at) VALUES ('p', 'Old project', 1)`); err != nil {
		t.Fatal(err)
	}
	if _, err := db.ExecContext(ctx, `INSERT INTO quarantine (project_id, id, record_id, errors, first_seen, last_seen, attempts)
		VALUES ('p', 'q1', 'r1', '[]', 1000, 1000, 1)`); err != nil {
		t.Fatal(err)
	}
	return path
}

// TestOpenPreviousReleaseStore: a store written by the previous release's
// schema is migrated forward on open, and what it held reads as before.
func TestOpenPreviousReleaseStore(t *testing.T) {
	path := previousReleaseStore(t)
	st, err := Open(context.Background(), path)
	if err != nil {
		t.Fatalf("open a store of the previous release: %v", err)
	}
	defer st.Close()
	items, _, err := st.ListQuarantine(context.Background(), "p", domain.QuarantineFilter{}, "", 10)
	if err != nil {
		t.Fatal(err)
	}
	if len(items) != 1 || items[0].ID != "q1" || items[0].Reason != domain.QuarantineRejected {
		t.Errorf("quarantine after the upgrade: %+v", items)
	}
	if err := Verify(context.Background(), path); err != nil {
		t.Errorf("Verify after the upgrade: %v", err)
	}
}

// TestNewerStoreRefused: a store migrated by a newer fieldsync is refused by
// Open and by Verify (fieldsync restore), saying what to do.
func TestNewerStoreRefused(t *testing.T) {
	path := filepath.Join(t.TempDir(), "fieldsync.db")
	st, err := Open(context.Background(), path)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := st.db.Exec(`INSERT INTO schema_migrations (version, applied_at) VALUES (9999, 1)`); err != nil {
		t.Fatal(err)
	}
	st.Close()
	_, err = Open(context.Background(), path)
	if !errors.Is(err, ErrNewerSchema) || !strings.Contains(err.Error(), "9999") || !strings.Contains(err.Error(), "newer fieldsync") {
		t.Errorf("Open of a newer store: %v", err)
	}
	if err := Verify(context.Background(), path); !errors.Is(err, ErrNewerSchema) {
		t.Errorf("Verify of a newer store: %v", err)
	}
}
