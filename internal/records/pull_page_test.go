package records_test

import (
	"context"
	"fmt"
	"sync"
	"testing"
	"time"

	"github.com/google/uuid"

	"github.com/fieldsync/fieldsync/internal/domain"
	"github.com/fieldsync/fieldsync/internal/records"
)

// TestPullPagesUnderWrites: pages larger than the feeds' old chunk of 250,
// pulled while devices keep editing the records, hold each record at most
// once, and a puller that goes on until more is false has every record in
// its final state: nothing is skipped across pages.
func TestPullPagesUnderWrites(t *testing.T) {
	for _, b := range stores {
		t.Run(b.name, func(t *testing.T) {
			n, rounds := 600, 40
			if b.name == "mongo" {
				// Small: the embedded FerretDB scans whole collections, and an
				// update command of more than ~100 statements (a write of more
				// than ~50 records) never returns from it (FerretDB v1.24.2 keeps
				// each statement's cursor, and so a connection of its pool of 100,
				// open until the command ends).
				n, rounds = 40, 10
			}
			st := b.open(t)
			svc := newInstances(t, st, 1, "merge")[0]
			ctx := context.Background()
			t0 := time.Date(2026, 3, 1, 9, 0, 0, 0, time.UTC)
			subs := make([]records.Submission, n)
			for i := range subs {
				subs[i] = sub(uuid.NewString(), nil, fmt.Sprintf(`{"name": "r%d"}`, i), t0)
			}
			res, err := svc.Push(ctx, tablet(0), "p", subs)
			if err != nil {
				t.Fatal(err)
			}
			revs := make([]string, n) // the writer's view
			for i, r := range res {
				if r.Status != records.StatusCreated {
					t.Fatalf("create %d: %+v", i, r)
				}
				revs[i] = r.Rev
			}
			analyst := records.Caller{Principal: tablet(9).Principal, Role: domain.RoleAnalyst}

			// The writer edits records spread over the feed, each round a
			// different stride, so edits land before and after the puller's
			// position.
			done := make(chan struct{})
			var wg sync.WaitGroup
			wg.Go(func() {
				defer close(done)
				for round := range rounds {
					var batch []records.Submission
					var which []int
					for i := round % 7; i < n; i += 37 + round%5 {
						batch = append(batch, sub(subs[i].ID, &revs[i], fmt.Sprintf(`{"name": "r%d edit %d"}`, i, round), t0.Add(time.Duration(round+1)*time.Minute)))
						which = append(which, i)
					}
					res, err := svc.Push(ctx, tablet(1), "p", batch)
					if err != nil {
						t.Error(err)
						return
					}
					for k, r := range res {
						if r.Status != records.StatusUpdated {
							t.Errorf("round %d: %+v", round, r)
							return
						}
						revs[which[k]] = r.Rev
					}
				}
			})

			// The puller reads the whole feed from the start again and again
			// while the writer writes: pages of every record, larger than the
			// feeds' old chunk. A pass holds every record (none is skipped),
			// and the pass that began after the writer stopped holds each in
			// its final state.
			var seen map[string]string // record id → the rev last pulled
			passes, pages, big := 0, 0, 0
			for finished := false; !finished; passes++ {
				select {
				case <-done:
					finished = true
				default:
				}
				seen = map[string]string{}
				for cursor := ""; ; {
					page, err := svc.Pull(ctx, analyst, "p", cursor, records.MaxPullLimit, "")
					if err != nil {
						t.Fatal(err)
					}
					pages++
					if len(page.Records) > 250 {
						big++
					}
					inPage := map[string]bool{}
					for _, r := range page.Records {
						if inPage[r.ID] {
							t.Fatalf("pass %d: record %s twice in a page of %d", passes, r.ID, len(page.Records))
						}
						inPage[r.ID] = true
						seen[r.ID] = r.Rev
					}
					if !page.More {
						break
					}
					cursor = page.Next
				}
				if len(seen) != n {
					t.Fatalf("pass %d pulled %d records of %d", passes, len(seen), n)
				}
			}
			wg.Wait()
			if big == 0 && n > 250 {
				t.Error("no page was larger than 250 records")
			}
			for i, s := range subs {
				if seen[s.ID] != revs[i] {
					t.Fatalf("record %d: pulled at %s, it is at %s", i, seen[s.ID], revs[i])
				}
			}
			t.Logf("%d passes, %d pages, %d over 250 records", passes, pages, big)
		})
	}
}
