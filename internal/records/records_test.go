package records_test

import (
	"context"
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"sync"
	"testing"
	"time"

	"github.com/google/uuid"

	"github.com/fieldsync/fieldsync/internal/domain"
	"github.com/fieldsync/fieldsync/internal/forms"
	"github.com/fieldsync/fieldsync/internal/records"
	"github.com/fieldsync/fieldsync/internal/store/mongo/mongotest"
	"github.com/fieldsync/fieldsync/internal/store/sqlite"
)

func TestMain(m *testing.M) { os.Exit(mongotest.RunMain(m)) }

// stores are the backends the service tests run on.
var stores = []struct {
	name string
	open func(t *testing.T) domain.Store
}{
	{"sqlite", func(t *testing.T) domain.Store {
		st, err := sqlite.Open(context.Background(), filepath.Join(t.TempDir(), "fieldsync.db"))
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { _ = st.Close() })
		return st
	}},
	{"mongo", func(t *testing.T) domain.Store {
		return mongotest.Open(t)
	}},
}

// newInstances returns n sync services on st, as n server instances sharing a
// store would be, with a published form "f" of the given policy in project "p".
func newInstances(t *testing.T, st domain.Store, n int, policy string) []*records.Service {
	t.Helper()
	ctx := context.Background()
	now := time.Now().UTC()
	if err := st.CreateProject(ctx, domain.Project{ID: "p", Title: "p", CreatedBy: "admin", CreatedAt: now}); err != nil {
		t.Fatal(err)
	}
	def := fmt.Sprintf(`{"title": "f", "conflict_policy": %q, "schema": {"type": "object", "properties": {"name": {"type": "string"}}}}`, policy)
	var out []*records.Service
	for i := 0; i < n; i++ {
		fs := forms.NewService(forms.ServiceConfig{Store: st})
		if i == 0 {
			if _, _, err := fs.PutVersion(ctx, "p", "f", "1", []byte(def)); err != nil {
				t.Fatal(err)
			}
			if _, err := fs.Publish(ctx, "p", "f", "1"); err != nil {
				t.Fatal(err)
			}
		}
		out = append(out, records.New(records.Config{Store: st, Forms: records.FormsOf(fs)}))
	}
	return out
}

func tablet(n int) records.Caller {
	id := fmt.Sprint("tablet-", n)
	return records.Caller{Principal: domain.Principal{Subject: domain.DeviceSubject(id), DeviceID: id, DeviceProject: "p"}, Role: domain.RoleManager}
}

func sub(id string, base *string, data string, at time.Time) records.Submission {
	return records.Submission{ID: id, Form: "f", FormVersion: "1", BaseRev: base, ClientModifiedAt: at, Data: json.RawMessage(data)}
}

// TestInstancesKeepEveryConflictEntry: stale edits pushed at once through two
// instances, under policy reject, each leave their conflict entry; and a review
// made on one instance survives an edit pushed through the other. These writes
// keep the record's rev, so only the store's check of RecordWrite.ExpectVersion
// (Record.Version) can order them across instances: the in-process record locks
// of one Service do not reach the other.
func TestInstancesKeepEveryConflictEntry(t *testing.T) {
	for _, b := range stores {
		t.Run(b.name, func(t *testing.T) {
			st := b.open(t)
			testInstancesKeepEveryConflictEntry(t, st, newInstances(t, st, 2, domain.PolicyReject))
		})
	}
}

func testInstancesKeepEveryConflictEntry(t *testing.T, st domain.Store, inst []*records.Service) {
	ctx := context.Background()
	t0 := time.Date(2026, 3, 1, 9, 0, 0, 0, time.UTC)
	id := uuid.NewString()
	res, err := inst[0].Push(ctx, tablet(0), "p", []records.Submission{sub(id, nil, `{"name": "base"}`, t0)})
	if err != nil || res[0].Status != records.StatusCreated {
		t.Fatalf("create: %v %+v", err, res)
	}
	if rec, _ := st.GetRecord(ctx, "p", id); rec.Version == 0 {
		t.Fatal("the store does not keep Record.Version, so it cannot check RecordWrite.ExpectVersion: writes that keep the rev " +
			"(conflict entries, reviews, assignments) made at once through two instances can erase each other")
	}
	r1 := res[0].Rev
	res, err = inst[0].Push(ctx, tablet(0), "p", []records.Submission{sub(id, &r1, `{"name": "edited"}`, t0.Add(time.Hour))})
	if err != nil || res[0].Status != records.StatusUpdated {
		t.Fatalf("edit: %v %+v", err, res)
	}
	const n = 8
	var wg sync.WaitGroup
	for i := 1; i <= n; i++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			res, err := inst[i%2].Push(ctx, tablet(i), "p", []records.Submission{sub(id, &r1, fmt.Sprintf(`{"name": "stale %d"}`, i), t0.Add(2*time.Hour))})
			if err != nil || res[0].Status != records.StatusConflict {
				t.Errorf("stale edit %d: %v %+v", i, err, res)
			}
		}()
	}
	wg.Wait()
	rec, err := st.GetRecord(ctx, "p", id)
	if err != nil {
		t.Fatal(err)
	}
	if len(rec.Conflicts) != n {
		t.Errorf("%d conflict entries for %d stale edits", len(rec.Conflicts), n)
	}

	approved := domain.ReviewApproved
	for round := 0; round < 10; round++ {
		cur, _ := st.GetRecord(ctx, "p", id)
		base := cur.Rev
		wg.Add(2)
		go func() {
			defer wg.Done()
			if _, err := inst[0].Update(ctx, records.Caller{Role: domain.RoleAnalyst}, "p", id, records.Patch{ReviewState: &approved}); err != nil {
				t.Error(err)
			}
		}()
		go func() {
			defer wg.Done()
			if _, err := inst[1].Push(ctx, tablet(0), "p", []records.Submission{sub(id, &base, fmt.Sprintf(`{"name": "round %d"}`, round), t0.Add(3*time.Hour))}); err != nil {
				t.Error(err)
			}
		}()
		wg.Wait()
		if rec, _ := st.GetRecord(ctx, "p", id); rec.ReviewState != approved {
			t.Fatalf("round %d: the review was erased by a concurrent push", round)
		}
		received := domain.ReviewReceived
		if _, err := inst[0].Update(ctx, records.Caller{Role: domain.RoleAnalyst}, "p", id, records.Patch{ReviewState: &received}); err != nil {
			t.Fatal(err)
		}
	}
}
