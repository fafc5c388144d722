package sqlite

import (
	"database/sql"
	"path/filepath"
	"testing"
)

func TestTmpPageSize(t *testing.T) {
	p := filepath.Join(t.TempDir(), "x.db")
	db, err := sql.Open("sqlite", "file:"+p+`?_pragma=busy_timeout(10000)&_pragma="main".page_size(16384)&_pragma=journal_mode(WAL)`)
	if err != nil { t.Fatal(err) }
	defer db.Close()
	if _, err := db.Exec(`CREATE TABLE x (a)`); err != nil { t.Fatal(err) }
	var ps int; var jm string
	db.QueryRow(`PRAGMA page_size`).Scan(&ps); db.QueryRow(`PRAGMA journal_mode`).Scan(&jm)
	t.Logf("page_size %d journal %s", ps, jm)
}
