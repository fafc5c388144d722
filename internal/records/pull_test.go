package records_test

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"slices"
	"testing"
	"time"

	"github.com/google/uuid"

	"github.com/fieldsync/fieldsync/internal/domain"
	"github.com/fieldsync/fieldsync/internal/records"
)

// pullChunkedPage is one page read with PullChunked: the chunks as emitted.
type pullChunkedPage struct {
	chunks [][]string
	next   string
	more   bool
}

func (p pullChunkedPage) ids() []string { return slices.Concat(p.chunks...) }

func recordIDs(recs []domain.Record) []string {
	out := make([]string, len(recs))
	for i, r := range recs {
		out[i] = r.ID
	}
	return out
}

// TestPullChunkedMatchesPull: a page read in chunks holds what Pull answers,
// with the same cursor and more, for callers who see all records and for
// tablets who see some, whatever the chunk size.
func TestPullChunkedMatchesPull(t *testing.T) {
	for _, backend := range stores {
		t.Run(backend.name, func(t *testing.T) {
			st := backend.open(t)
			svc := newInstances(t, st, 1, "merge")[0]
			ctx := context.Background()
			now := time.Now().UTC().Truncate(time.Millisecond)
			const n = 53
			writes := make([]domain.RecordWrite, n)
			for i := range writes {
				r := domain.Record{ProjectID: "p", ID: uuid.NewString(), FormID: "f", FormVersion: "1", Rev: fmt.Sprintf("1-%032x", i),
					Data: json.RawMessage(fmt.Sprintf(`{"name":"r%d"}`, i)), CreatedBy: tablet(i % 3).Principal.Subject,
					ClientModifiedAt: now, CreatedAt: now, UpdatedAt: now, ReviewState: domain.ReviewReceived}
				switch i % 7 {
				case 1:
					r.Shared = true
				case 2:
					r.AssignedTo = []string{tablet(1).Principal.Subject}
				}
				writes[i] = domain.RecordWrite{Record: r, Revisions: []domain.Revision{{ProjectID: "p", RecordID: r.ID, Rev: r.Rev,
					Data: r.Data, FormVersion: "1", ClientModifiedAt: now, CreatedBy: r.CreatedBy, CreatedAt: now}}}
			}
			if results, err := st.WriteRecords(ctx, writes); err != nil {
				t.Fatal(err)
			} else {
				for _, err := range results {
					if err != nil {
						t.Fatal(err)
					}
				}
			}
			enumerator := tablet(1)
			enumerator.Role = domain.RoleEnumerator
			analyst := records.Caller{Principal: domain.Principal{Subject: "ana", Username: "ana"}, Role: domain.RoleAnalyst}
			for _, c := range []struct {
				name   string
				caller records.Caller
			}{{"analyst", analyst}, {"enumerator", enumerator}} {
				for _, form := range []string{"", "f"} {
					for _, limit := range []int{1, 5, 50, 1000} {
						for _, chunk := range []int{0, 1, 3, 7, 2000} {
							t.Run(fmt.Sprintf("%s/form %q/limit %d/chunk %d", c.name, form, limit, chunk), func(t *testing.T) {
								cursor, total := "", 0
								for pages := 0; ; pages++ {
									want, err := svc.Pull(ctx, c.caller, "p", cursor, limit, form)
									if err != nil {
										t.Fatal(err)
									}
									var got pullChunkedPage
									got.next, got.more, err = svc.PullChunked(ctx, c.caller, "p", cursor, limit, form, chunk,
										func(recs []domain.Record) error {
											got.chunks = append(got.chunks, recordIDs(recs))
											return nil
										})
									if err != nil {
										t.Fatal(err)
									}
									if !slices.Equal(got.ids(), recordIDs(want.Records)) || got.next != want.Next || got.more != want.More {
										t.Fatalf("page %d: chunked %v %q %v, Pull %v %q %v", pages, got.ids(), got.next, got.more,
											recordIDs(want.Records), want.Next, want.More)
									}
									size := chunk
									if size <= 0 || size > limit {
										size = limit
									}
									for i, ch := range got.chunks {
										if len(ch) > size || (i < len(got.chunks)-1 && len(ch) != size) {
											t.Fatalf("chunks of %d records with chunk %d: %v", len(ch), chunk, got.chunks)
										}
									}
									total += len(want.Records)
									cursor = want.Next
									if !want.More {
										break
									}
									if pages > n {
										t.Fatal("no end")
									}
								}
								if c.name == "analyst" && form == "" && total != n {
									t.Fatalf("pulled %d records of %d", total, n)
								}
							})
						}
					}
				}
			}

			// The errors of the arguments come before any chunk.
			emitNothing := func([]domain.Record) error { t.Fatal("a chunk was emitted"); return nil }
			for _, tc := range []struct {
				cursor, form string
				limit        int
				code         string
			}{{"nonsense", "", 10, "invalid_cursor"}, {"", "", 1001, "invalid_limit"}, {"", "nope", 10, "form_not_found"}} {
				_, _, err := svc.PullChunked(ctx, analyst, "p", tc.cursor, tc.limit, tc.form, 3, emitNothing)
				var de *domain.Error
				if !errors.As(err, &de) || de.Code != tc.code {
					t.Errorf("PullChunked(%q, %d, %q): %v, want %s", tc.cursor, tc.limit, tc.form, err, tc.code)
				}
			}

			// An error of emit stops the reading and is returned.
			stop := errors.New("client gone")
			calls := 0
			_, _, err := svc.PullChunked(ctx, analyst, "p", "", 50, "", 5, func([]domain.Record) error {
				calls++
				if calls == 2 {
					return stop
				}
				return nil
			})
			if !errors.Is(err, stop) || calls != 2 {
				t.Errorf("emit failing at its 2nd chunk: %v after %d chunks", err, calls)
			}
		})
	}
}

// failingStore fails Changes from its failAt-th call on.
type failingStore struct {
	domain.Store
	calls, failAt int
}

var errStoreDown = errors.New("store down")

func (f *failingStore) Changes(ctx context.Context, q domain.ChangesQuery) (domain.ChangesPage, error) {
	if f.calls++; f.calls >= f.failAt {
		return domain.ChangesPage{}, errStoreDown
	}
	return f.Store.Changes(ctx, q)
}

// TestPullChunkedStoreError: a store error after some chunks ends the page
// with that error.
func TestPullChunkedStoreError(t *testing.T) {
	st := stores[0].open(t)
	newInstances(t, st, 1, "merge")
	ctx := context.Background()
	now := time.Now().UTC()
	for i := range 10 {
		id := uuid.NewString()
		rev := fmt.Sprintf("1-%032x", i)
		r := domain.Record{ProjectID: "p", ID: id, FormID: "f", FormVersion: "1", Rev: rev, Data: json.RawMessage(`{}`),
			CreatedBy: "ana", ClientModifiedAt: now, CreatedAt: now, UpdatedAt: now, ReviewState: domain.ReviewReceived}
		if _, err := st.WriteRecords(ctx, []domain.RecordWrite{{Record: r, Revisions: []domain.Revision{{ProjectID: "p", RecordID: id,
			Rev: rev, Data: r.Data, FormVersion: "1", CreatedAt: now}}}}); err != nil {
			t.Fatal(err)
		}
	}
	fs := &failingStore{Store: st, failAt: 2}
	svc := records.New(records.Config{Store: fs})
	var emitted int
	_, _, err := svc.PullChunked(ctx, records.Caller{Principal: domain.Principal{Subject: "ana"}, Role: domain.RoleAnalyst}, "p", "", 10, "", 3,
		func(recs []domain.Record) error { emitted += len(recs); return nil })
	if !errors.Is(err, errStoreDown) || emitted != 3 {
		t.Fatalf("store failing at its 2nd chunk: %v after %d records", err, emitted)
	}
}
