package sqlite

import (
	"context"
	"database/sql"
	"fmt"
	"net/url"
	"path/filepath"
)

// Verify checks, without changing it, that the file at path is a SQLite store
// this binary can open: SQLite's integrity check passes and its schema is not
// newer than this binary's (see checkSchemaVersion). fieldsync restore runs it
// on a backup before putting it in place.
func Verify(ctx context.Context, path string) error {
	db, err := sql.Open("sqlite", "file:"+(&url.URL{Path: filepath.ToSlash(path)}).EscapedPath()+"?mode=ro")
	if err != nil {
		return fmt.Errorf("sqlite: %w", err)
	}
	defer db.Close()
	var verdict string
	if err := db.QueryRowContext(ctx, `PRAGMA integrity_check`).Scan(&verdict); err != nil {
		return fmt.Errorf("sqlite: %s is not a SQLite database: %w", path, err)
	}
	if verdict != "ok" {
		return fmt.Errorf("sqlite: %s fails the integrity check: %s", path, verdict)
	}
	var n int
	if err := db.QueryRowContext(ctx, `SELECT count(*) FROM sqlite_master WHERE name = 'schema_migrations'`).Scan(&n); err != nil {
		return fmt.Errorf("sqlite: %w", err)
	}
	if n == 0 {
		return fmt.Errorf("sqlite: %s is not a fieldsync store (no schema_migrations table)", path)
	}
	names, err := migrationNames()
	if err != nil {
		return err
	}
	if err := checkSchemaVersion(ctx, db, names[len(names)-1].version); err != nil {
		return fmt.Errorf("sqlite: %w", err)
	}
	return nil
}
