package sqlite

import (
	"context"
	"path/filepath"
	"testing"
	"time"

	"github.com/google/uuid"

	"github.com/fieldsync/fieldsync/internal/domain"
)

// TestGetRecordsChunks reads a number of ids that no one prepared IN list
// fits (300 held, 43 unknown: 256+64+16+4+1+1+1), so every chunk size is used,
// and checks that exactly the held records come back, also a second time when
// the statements are reused.
func TestGetRecordsChunks(t *testing.T) {
	ctx := context.Background()
	s := openTest(t, filepath.Join(t.TempDir(), "fieldsync.db"))
	at := time.Now().UTC().Truncate(time.Millisecond)
	var ids []string
	for i := range 300 {
		w := benchWrite("p", i, at)
		if _, err := s.WriteRecords(ctx, []domain.RecordWrite{w}); err != nil {
			t.Fatal(err)
		}
		ids = append(ids, w.Record.ID)
	}
	for range 43 {
		ids = append(ids, uuid.NewString())
	}
	for round := range 2 {
		got, err := s.GetRecords(ctx, "p", ids)
		if err != nil {
			t.Fatal(err)
		}
		if len(got) != 300 {
			t.Fatalf("round %d: %d records, want 300", round, len(got))
		}
		for _, id := range ids[:300] {
			if r, ok := got[id]; !ok || r.ID != id || len(r.Data) == 0 {
				t.Fatalf("round %d: record %s: %+v", round, id, r)
			}
		}
	}
}
