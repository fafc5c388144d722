package sqlite

import (
	"fmt"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/fieldsync/fieldsync/internal/domain"
)

// TestQueryRecordsUsesIndex: every page of QueryRecords, oldest first or
// newest first, with or without a cursor and filters, is a range of
// records_form_created read in the order asked for: no sort of the form's
// records (a "TEMP B-TREE") that would make each page of a million-record
// form cost a full scan. The plans are asked of a store holding records of
// several forms, analysed, so the planner weighs records_form (project, form,
// seq) against it as it would on a server.
func TestQueryRecordsUsesIndex(t *testing.T) {
	st := openTest(t, filepath.Join(t.TempDir(), "fieldsync.db"))
	ctx := t.Context()
	at := time.Date(2026, 3, 1, 8, 0, 0, 0, time.UTC)
	var writes []domain.RecordWrite
	for i := range 300 {
		w := benchWrite("p1", i, at.Add(time.Duration(i)*time.Second))
		w.Record.FormID = []string{"perception", "incident", "household"}[i%3]
		writes = append(writes, w)
	}
	if _, err := st.WriteRecords(ctx, writes); err != nil {
		t.Fatal(err)
	}
	if _, err := st.db.ExecContext(ctx, `ANALYZE`); err != nil {
		t.Fatal(err)
	}
	after := domain.RecordCursor{CreatedAt: at.Add(time.Minute), ID: "00000000-0000-4000-8000-000000000010"}
	for _, tc := range []struct {
		name string
		q    domain.RecordQuery
	}{
		{"first page", domain.RecordQuery{}},
		{"after a cursor", domain.RecordQuery{After: after}},
		{"tombstones", domain.RecordQuery{After: after, IncludeDeleted: true}},
		{"since and until", domain.RecordQuery{After: after, Since: at, Until: at.Add(time.Hour)}},
		{"filters", domain.RecordQuery{After: after, ReviewStates: []string{domain.ReviewApproved}, Versions: []string{"1", "2"}, Devices: []string{"tab1"}}},
	} {
		for _, desc := range []bool{false, true} {
			q := tc.q
			q.ProjectID, q.FormID, q.Descending = "p1", "perception", desc
			query, args := queryRecordsSQL(q, 50)
			rows, err := st.db.QueryContext(ctx, `EXPLAIN QUERY PLAN `+query, args...)
			if err != nil {
				t.Fatal(err)
			}
			var plan []string
			for rows.Next() {
				var id, parent, notused int
				var detail string
				if err := rows.Scan(&id, &parent, &notused, &detail); err != nil {
					t.Fatal(err)
				}
				plan = append(plan, detail)
			}
			rows.Close()
			all := strings.Join(plan, "; ")
			name := fmt.Sprintf("%s, descending %v", tc.name, desc)
			t.Logf("%s: %s", name, all)
			if !strings.Contains(all, "USING INDEX records_form_created") || strings.Contains(all, "TEMP B-TREE") {
				t.Errorf("%s: plan %q, want a range of records_form_created and no sort", name, all)
			}
		}
	}
}
