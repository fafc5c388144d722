package sqlite

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
)

// ErrNewerSchema is returned by Open and Verify for a store whose schema was
// migrated by a newer fieldsync than this one: its tables may hold what this
// binary would misread or overwrite, so it refuses the store rather than guess.
var ErrNewerSchema = errors.New("the store was written by a newer fieldsync")

// checkSchemaVersion refuses a store whose schema_migrations lists a version
// above known, the highest migration this binary has. A store without the
// table is new.
func checkSchemaVersion(ctx context.Context, q interface {
	QueryRowContext(ctx context.Context, query string, args ...any) *sql.Row
}, known int) error {
	var newest sql.NullInt64
	err := q.QueryRowContext(ctx, `SELECT max(version) FROM schema_migrations`).Scan(&newest)
	if err != nil {
		return err
	}
	if newest.Valid && int(newest.Int64) > known {
		return fmt.Errorf("%w: its schema version is %d, this binary knows versions up to %d; "+
			"run the newer fieldsync (or restore a backup made before the upgrade)", ErrNewerSchema, newest.Int64, known)
	}
	return nil
}
