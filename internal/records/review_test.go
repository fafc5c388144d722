package records_test

import (
	"context"
	"fmt"
	"slices"
	"sync"
	"testing"
	"time"

	"github.com/google/uuid"

	"github.com/fieldsync/fieldsync/internal/audit"
	"github.com/fieldsync/fieldsync/internal/domain"
	"github.com/fieldsync/fieldsync/internal/records"
)

func analyst(name string) records.Caller {
	return records.Caller{Principal: domain.Principal{Subject: name, Username: name}, Role: domain.RoleAnalyst}
}

// TestClockFlagInThread: when a push flags a record has_issues (its device's
// clock far ahead), the change is in the record's review thread with the
// device and the time, and in the audit log, like an analyst's change.
func TestClockFlagInThread(t *testing.T) {
	for _, b := range stores {
		t.Run(b.name, func(t *testing.T) {
			ctx := context.Background()
			st := b.open(t)
			svc := newInstances(t, st, 1, domain.PolicyMerge)[0]
			id := uuid.NewString()
			future := time.Now().Add(48 * time.Hour)
			res, err := svc.Push(ctx, tablet(1), "p", []records.Submission{sub(id, nil, `{"name": "x"}`, future)})
			if err != nil || res[0].Status != records.StatusCreated {
				t.Fatalf("push: %v %+v", err, res)
			}
			thread, _, err := svc.Comments(ctx, analyst("ana"), "p", id, "", 0)
			if err != nil {
				t.Fatal(err)
			}
			if len(thread) != 1 || thread[0].Author != tablet(1).Principal.Subject || thread[0].ReviewState != domain.ReviewHasIssues ||
				thread[0].PreviousState != domain.ReviewReceived || thread[0].Text == "" || thread[0].CreatedAt.IsZero() {
				t.Fatalf("thread %+v, want the flag", thread)
			}
			events, _, err := st.ListAudit(ctx, domain.AuditFilter{Type: audit.ReviewChanged}, "", 10)
			if err != nil {
				t.Fatal(err)
			}
			if len(events) != 1 || events[0].Subject != id || events[0].Actor != tablet(1).Principal.Subject || events[0].Detail["reason"] != "clock_ahead" {
				t.Fatalf("audit %+v", events)
			}
		})
	}
}

// TestConcurrentComments: analysts commenting on one record at once through
// two server instances lose no comment, and the record shows one of them.
func TestConcurrentComments(t *testing.T) {
	for _, b := range stores {
		t.Run(b.name, func(t *testing.T) {
			ctx := context.Background()
			st := b.open(t)
			svcs := newInstances(t, st, 2, domain.PolicyMerge)
			id := uuid.NewString()
			if res, err := svcs[0].Push(ctx, tablet(1), "p", []records.Submission{sub(id, nil, `{"name": "x"}`, time.Now())}); err != nil || res[0].Status != records.StatusCreated {
				t.Fatalf("push: %v %+v", err, res)
			}
			const n = 8
			var wg sync.WaitGroup
			errs := make([]error, n)
			for i := range n {
				wg.Go(func() {
					state := []string{domain.ReviewApproved, domain.ReviewHasIssues}[i%2]
					_, errs[i] = svcs[i%2].AddComment(ctx, analyst(fmt.Sprint("analyst-", i)), "p", id, fmt.Sprint("comment ", i), &state)
				})
			}
			wg.Wait()
			for i, err := range errs {
				if err != nil {
					t.Fatalf("comment %d: %v", i, err)
				}
			}
			thread, next, err := svcs[1].Comments(ctx, analyst("ana"), "p", id, "", 100)
			if err != nil || next != "" {
				t.Fatalf("Comments: %v, next %q", err, next)
			}
			var texts []string
			for _, e := range thread {
				texts = append(texts, e.Text)
			}
			if len(thread) != n {
				t.Fatalf("thread holds %d comments, want %d: %q", len(thread), n, texts)
			}
			rec, err := st.GetRecord(ctx, "p", id)
			if err != nil {
				t.Fatal(err)
			}
			if !slices.Contains(texts, rec.ReviewComment) {
				t.Errorf("record shows %q, not one of the comments", rec.ReviewComment)
			}
			// Each entry keeps the state its comment set, whatever the order.
			for _, e := range thread {
				var i int
				if _, err := fmt.Sscanf(e.Text, "comment %d", &i); err != nil {
					t.Fatalf("entry %+v", e)
				}
				if want := []string{domain.ReviewApproved, domain.ReviewHasIssues}[i%2]; e.ReviewState != want || e.Author != fmt.Sprint("analyst-", i) {
					t.Errorf("entry %+v, want state %s by analyst-%d", e, want, i)
				}
			}
		})
	}
}
