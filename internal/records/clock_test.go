package records_test

import (
	"context"
	"testing"
	"time"

	"github.com/google/uuid"

	"github.com/fieldsync/fieldsync/internal/domain"
	"github.com/fieldsync/fieldsync/internal/forms"
	"github.com/fieldsync/fieldsync/internal/records"
)

// TestClockAheadDoesNotWinForever: a device whose clock says 9999 keeps that
// time on what it sent, but its edit is ordered as if made at its arrival
// plus MaxClockSkew, so a later edit wins last-write-wins as it should; and
// the record is flagged for review.
func TestClockAheadDoesNotWinForever(t *testing.T) {
	for _, b := range stores {
		t.Run(b.name, func(t *testing.T) {
			ctx := context.Background()
			st := b.open(t)
			if err := st.CreateProject(ctx, domain.Project{ID: "p", Title: "p", CreatedBy: "admin", CreatedAt: time.Now().UTC()}); err != nil {
				t.Fatal(err)
			}
			fs := forms.NewService(forms.ServiceConfig{Store: st})
			def := `{"title": "f", "conflict_policy": "last-write-wins", "schema": {"type": "object", "properties": {"name": {"type": "string"}}}}`
			if _, _, err := fs.PutVersion(ctx, "p", "f", "1", []byte(def)); err != nil {
				t.Fatal(err)
			}
			if _, err := fs.Publish(ctx, "p", "f", "1"); err != nil {
				t.Fatal(err)
			}
			now := time.Date(2026, 6, 1, 9, 0, 0, 0, time.UTC)
			svc := records.New(records.Config{Store: st, Forms: records.FormsOf(fs), Now: func() time.Time { return now }})

			id := uuid.NewString()
			res, err := svc.Push(ctx, tablet(1), "p", []records.Submission{sub(id, nil, `{"name": "base"}`, now)})
			if err != nil || res[0].Status != records.StatusCreated {
				t.Fatalf("create: %v %+v", err, res)
			}
			base := res[0].Rev
			year9999 := time.Date(9999, 1, 1, 0, 0, 0, 0, time.UTC)
			now = now.Add(time.Minute)
			res, err = svc.Push(ctx, tablet(1), "p", []records.Submission{sub(id, &base, `{"name": "from the future"}`, year9999)})
			if err != nil || res[0].Status != records.StatusUpdated {
				t.Fatalf("edit from the future: %v %+v", err, res)
			}
			rec, err := st.GetRecord(ctx, "p", id)
			if err != nil {
				t.Fatal(err)
			}
			if !rec.ClientModifiedAt.Equal(year9999) {
				t.Errorf("client_modified_at %v, want it kept as sent (%v)", rec.ClientModifiedAt, year9999)
			}
			if rec.ReviewState != domain.ReviewHasIssues || rec.ReviewComment == "" {
				t.Errorf("review %q %q, want the record flagged", rec.ReviewState, rec.ReviewComment)
			}

			// Two hours later another tablet, which edited the base offline an
			// hour and a half after the future edit arrived, pushes: its edit is
			// the later one and stands.
			now = now.Add(2 * time.Hour)
			res, err = svc.Push(ctx, tablet(2), "p", []records.Submission{sub(id, &base, `{"name": "later"}`, now.Add(-30*time.Minute))})
			if err != nil {
				t.Fatal(err)
			}
			rec, err = st.GetRecord(ctx, "p", id)
			if err != nil {
				t.Fatal(err)
			}
			if res[0].Status != records.StatusMerged || string(rec.Data) != `{"name":"later"}` {
				t.Errorf("later edit: %s, record %s; want merged and standing over the year-9999 edit", res[0].Status, rec.Data)
			}
		})
	}
}
