package e2e

import (
	"context"
	"encoding/json"
	"fmt"
	"slices"
	"sync"
	"testing"
	"time"

	"github.com/google/uuid"

	"github.com/fieldsync/fieldsync/api"
	"github.com/fieldsync/fieldsync/internal/domain"
)

// TestConcurrentEditsTwoInstances has two tablets edit the same record at the
// same moment, each through its own instance, both from the same base revision
// (a record of a shared form, which both may write). Repeated on fresh records:
//   - different fields: one push is updated, the other merged, and the record
//     holds both edits, without a conflict;
//   - the same field: one push is updated, the other conflict; the value with the
//     later client_modified_at stands, and the record's conflicts hold the clash
//     with both values and the base value; with equal clocks one of the two
//     stands and the clash is recorded all the same.
//
// Either push may reach the store first; the checks hold for both orders.
func TestConcurrentEditsTwoInstances(t *testing.T) {
	for _, be := range backends() {
		t.Run(be.name, func(t *testing.T) {
			// On the embedded FerretDB this relies on mongotest's proxy, which
			// serialises modifying commands: FerretDB v1 runs findAndModify as a
			// read and then a write by _id, so without it two conditional
			// updates of one record can both apply and one edit is lost.
			rounds := 6
			if be.small {
				rounds = 4
				if raceEnabled {
					rounds = 3
				}
			}
			runConcurrentEdits(t, be.open(t), rounds)
		})
	}
}

func runConcurrentEdits(t *testing.T, stores [2]domain.Store, rounds int) {
	c := newCluster(t, stores)
	c.publish(sharedForm, "1", siteForm(true))
	devs := [2]device{c.addDevice("tablet-a"), c.addDevice("tablet-b")}
	cl := [2][2]*api.Client{c.clients(devs[0].token), c.clients(devs[1].token)}
	analyst := c.clients(c.addAnalyst("analyst1"))
	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Minute)
	defer cancel()

	base := time.Now().UTC().Truncate(time.Millisecond)
	for round := range rounds {
		// Tablet x goes through instance x this round, through the other one the
		// next.
		inst := [2]int{round % 2, (round + 1) % 2}
		edit := func(id, rev string, data string, at time.Time) api.Submission {
			return api.Submission{ID: id, Form: sharedForm, FormVersion: "1", BaseRev: &rev, ClientModifiedAt: at, Data: json.RawMessage(data)}
		}
		create := func(site string) (string, string) {
			id := uuid.NewString()
			resp, err := push(ctx, cl[0][inst[0]], c.project, []api.Submission{{ID: id, Form: sharedForm, FormVersion: "1",
				ClientModifiedAt: base, Data: json.RawMessage(fmt.Sprintf(`{"site":%q,"visit":1,"a":"a0","b":"b0"}`, site))}})
			if err != nil || resp.Results[0].Status != api.PushCreated {
				t.Fatalf("round %d: create: %v %+v", round, err, resp)
			}
			return id, resp.Results[0].Rev
		}

		// Different fields.
		id, rev := create(fmt.Sprintf("round-%d-fields", round))
		a, b := fmt.Sprintf("a-%d", round), fmt.Sprintf("b-%d", round)
		res := pushTogether(ctx, t, [2]*api.Client{cl[0][inst[0]], cl[1][inst[1]]}, c.project, [2]api.Submission{
			edit(id, rev, fmt.Sprintf(`{"site":"round-%d-fields","visit":1,"a":%q,"b":"b0"}`, round, a), base.Add(time.Second)),
			edit(id, rev, fmt.Sprintf(`{"site":"round-%d-fields","visit":1,"a":"a0","b":%q}`, round, b), base.Add(2*time.Second)),
		})
		statuses := []string{res[0].Status, res[1].Status}
		slices.Sort(statuses)
		if !slices.Equal(statuses, []string{api.PushMerged, api.PushUpdated}) {
			t.Errorf("round %d, different fields: statuses %v, want one updated and one merged (%+v)", round, statuses, res)
		}
		rec, err := getRecord(ctx, analyst[round%2], c.project, id)
		if err != nil {
			t.Fatalf("round %d: get: %v", round, err)
		}
		var data map[string]any
		_ = json.Unmarshal(rec.Data, &data)
		if data["a"] != a || data["b"] != b || len(rec.Conflicts) != 0 {
			t.Errorf("round %d, different fields: record holds %s with conflicts %+v, want a=%s and b=%s and no conflict", round, rec.Data, rec.Conflicts, a, b)
		}
		for _, r := range res {
			if r.Status == api.PushMerged && r.Rev != rec.Rev {
				t.Errorf("round %d, different fields: merged push answered rev %s, record is at %s", round, r.Rev, rec.Rev)
			}
		}

		// The same field, the second tablet's edit later by its clock (even
		// rounds) or at the same time (odd rounds).
		id, rev = create(fmt.Sprintf("round-%d-clash", round))
		p, q := fmt.Sprintf("p-%d", round), fmt.Sprintf("q-%d", round)
		later := base.Add(2 * time.Second)
		if round%2 == 1 {
			later = base.Add(time.Second)
		}
		res = pushTogether(ctx, t, [2]*api.Client{cl[0][inst[0]], cl[1][inst[1]]}, c.project, [2]api.Submission{
			edit(id, rev, fmt.Sprintf(`{"site":"round-%d-clash","visit":1,"a":%q,"b":"b0"}`, round, p), base.Add(time.Second)),
			edit(id, rev, fmt.Sprintf(`{"site":"round-%d-clash","visit":1,"a":%q,"b":"b0"}`, round, q), later),
		})
		statuses = []string{res[0].Status, res[1].Status}
		slices.Sort(statuses)
		if !slices.Equal(statuses, []string{api.PushConflict, api.PushUpdated}) {
			t.Errorf("round %d, same field: statuses %v, want one updated and one conflict (%+v)", round, statuses, res)
		}
		rec, err = getRecord(ctx, analyst[(round+1)%2], c.project, id)
		if err != nil {
			t.Fatalf("round %d: get: %v", round, err)
		}
		data = nil
		_ = json.Unmarshal(rec.Data, &data)
		if len(rec.Conflicts) != 1 {
			t.Errorf("round %d, same field: %d conflicts %+v, want 1", round, len(rec.Conflicts), rec.Conflicts)
			continue
		}
		cf := rec.Conflicts[0]
		var values []string
		for _, v := range cf.Values {
			var s string
			_ = json.Unmarshal(v.Value, &s)
			values = append(values, s)
		}
		if cf.Path != "/a" || string(cf.Base) != `"a0"` || len(values) != 2 || !slices.Contains(values, p) || !slices.Contains(values, q) {
			t.Errorf("round %d, same field: conflict %s base %s values %v, want /a base \"a0\" values %s and %s", round, cf.Path, cf.Base, values, p, q)
			continue
		}
		stands := values[0] // the winner's value comes first
		if round%2 == 0 && stands != q {
			t.Errorf("round %d, same field: %q stands, want %q (the later client_modified_at)", round, stands, q)
		}
		if data["a"] != stands || data["b"] != "b0" {
			t.Errorf("round %d, same field: record holds %s, want a=%s (the value that stands) and b=b0", round, rec.Data, stands)
		}
	}
}

// pushTogether sends two single-item pushes at the same moment (both goroutines
// wait for one channel to close) and returns their results.
func pushTogether(ctx context.Context, t *testing.T, cl [2]*api.Client, project string, subs [2]api.Submission) [2]api.PushResult {
	t.Helper()
	var out [2]api.PushResult
	var errs [2]error
	start := make(chan struct{})
	var wg sync.WaitGroup
	for i := range 2 {
		wg.Go(func() {
			<-start
			resp, _, err := pushRetry(ctx, cl[i], project, []api.Submission{subs[i]})
			if err == nil {
				out[i] = resp.Results[0]
			}
			errs[i] = err
		})
	}
	close(start)
	wg.Wait()
	for i, err := range errs {
		if err != nil {
			t.Fatalf("push of tablet %d: %v", i, err)
		}
	}
	return out
}
