package records_test

import (
	"context"
	"encoding/json"
	"fmt"
	"math/rand/v2"
	"testing"
	"time"

	"github.com/google/uuid"

	"github.com/fieldsync/fieldsync/internal/domain"
	"github.com/fieldsync/fieldsync/internal/forms"
	"github.com/fieldsync/fieldsync/internal/records"
	"github.com/fieldsync/fieldsync/internal/syncer"
)

// consentSchema is a survey form with rules that tie fields together: no age
// (and no smoking questions) without consent, and cigarettes only for a
// smoker. Edits valid on their own can merge into data it refuses.
const consentSchema = `{
	"type": "object",
	"properties": {
		"consent": {"type": "boolean"},
		"age": {"type": "integer", "minimum": 0, "maximum": 120},
		"smoker": {"type": "boolean"},
		"cigarettes": {"type": "integer", "minimum": 1},
		"note": {"type": "string"}
	},
	"required": ["consent"],
	"additionalProperties": false,
	"if": {"properties": {"consent": {"const": false}}},
	"then": {"allOf": [{"not": {"required": ["age"]}}, {"not": {"required": ["smoker"]}}]},
	"dependentSchemas": {"cigarettes": {"properties": {"smoker": {"const": true}}, "required": ["smoker"]}}
}`

// formEnv is a project "p" with a published form "f" of some schema and
// policy, and the sync service over it.
type formEnv struct {
	st  domain.Store
	svc *records.Service
	fv  records.FormVersion
}

func newFormEnv(t *testing.T, st domain.Store, policy, schema string) formEnv {
	t.Helper()
	ctx := context.Background()
	if err := st.CreateProject(ctx, domain.Project{ID: "p", Title: "p", CreatedBy: "admin", CreatedAt: time.Now().UTC()}); err != nil {
		t.Fatal(err)
	}
	fs := forms.NewService(forms.ServiceConfig{Store: st})
	def := fmt.Sprintf(`{"title": "f", "conflict_policy": %q, "schema": %s}`, policy, schema)
	if _, _, err := fs.PutVersion(ctx, "p", "f", "1", []byte(def)); err != nil {
		t.Fatal(err)
	}
	if _, err := fs.Publish(ctx, "p", "f", "1"); err != nil {
		t.Fatal(err)
	}
	fv, err := records.FormsOf(fs).LookupVersion(ctx, "p", "f", "1")
	if err != nil {
		t.Fatal(err)
	}
	return formEnv{st: st, svc: records.New(records.Config{Store: st, Forms: records.FormsOf(fs)}), fv: fv}
}

// stored returns the record as the store holds it, and the findings of its
// form version's schema on its data (none for a tombstone).
func (e formEnv) stored(t *testing.T, id string) (domain.Record, []domain.Finding) {
	t.Helper()
	rec, err := e.st.GetRecord(context.Background(), "p", id)
	if err != nil {
		t.Fatal(err)
	}
	if rec.Deleted {
		return rec, nil
	}
	return rec, e.fv.Validator.ValidateJSON(rec.Data)
}

// TestMergeRefusedBySchema: two devices edit one record offline, each edit
// valid, and their field-level merge is data the form refuses (age without
// consent). The record keeps its valid data and revision; the second edit is
// kept as a whole-record conflict for an analyst, and the push result says
// why. A resend of that edit answers unchanged.
func TestMergeRefusedBySchema(t *testing.T) {
	for _, b := range stores {
		t.Run(b.name, func(t *testing.T) {
			e := newFormEnv(t, b.open(t), domain.PolicyMerge, consentSchema)
			ctx := context.Background()
			t0 := time.Date(2026, 3, 1, 9, 0, 0, 0, time.UTC)
			id := uuid.NewString()
			push := func(dev int, s records.Submission) records.Result {
				t.Helper()
				res, err := e.svc.Push(ctx, tablet(dev), "p", []records.Submission{s})
				if err != nil {
					t.Fatal(err)
				}
				return res[0]
			}
			base := push(0, sub(id, nil, `{"consent": true}`, t0))
			if base.Status != records.StatusCreated {
				t.Fatalf("create: %+v", base)
			}
			a := push(1, sub(id, &base.Rev, `{"consent": false}`, t0.Add(time.Minute)))
			if a.Status != records.StatusUpdated {
				t.Fatalf("device A: %+v", a)
			}
			bEdit := sub(id, &base.Rev, `{"consent": true, "age": 30}`, t0.Add(2*time.Minute))
			res := push(2, bEdit)
			rec, findings := e.stored(t, id)
			if len(findings) > 0 {
				t.Fatalf("push answered %s and stored %s, which the form refuses: %+v", res.Status, rec.Data, findings)
			}
			if res.Status != records.StatusConflict || res.Rev != a.Rev || rec.Rev != a.Rev || string(rec.Data) != `{"consent":false}` {
				t.Fatalf("push answered %s %s; record %s %s; want conflict, and device A's edit kept", res.Status, res.Rev, rec.Rev, rec.Data)
			}
			if len(res.Errors) == 0 || res.Errors[0].Path == "" {
				t.Errorf("the push result does not say why the merge was refused: %+v", res.Errors)
			}
			for _, f := range res.Errors {
				if len(f.Path) < 5 || f.Path[:5] != "/data" {
					t.Errorf("finding %+v: path not under /data", f)
				}
			}
			if res.Current == nil || res.Current.Rev != a.Rev {
				t.Errorf("current: %+v", res.Current)
			}
			if len(rec.Conflicts) != 1 || rec.Conflicts[0].Path != "" || len(rec.Conflicts[0].Values) != 2 || rec.Conflicts[0].Values[0].Rev != a.Rev {
				t.Fatalf("conflicts %+v, want one whole-record entry: the standing content, then B's edit", rec.Conflicts)
			}
			held := rec.Conflicts[0].Values[1]
			var v map[string]any
			if err := json.Unmarshal(held.Value, &v); err != nil || v["age"] != 30.0 || v["consent"] != true {
				t.Errorf("the conflict entry holds %s, not device B's edit", held.Value)
			}
			if _, err := e.st.GetRevision(ctx, "p", id, held.Rev); err != nil {
				t.Errorf("device B's edit %s is not in the history: %v", held.Rev, err)
			}
			if again := push(2, bEdit); again.Status != records.StatusUnchanged {
				t.Errorf("resend of the refused edit: %+v", again)
			}
			if rec2, _ := e.stored(t, id); len(rec2.Conflicts) != 1 {
				t.Errorf("the resend added a conflict entry: %+v", rec2.Conflicts)
			}

			// A merge that the schema accepts is still merged.
			c := push(1, sub(id, &a.Rev, `{"consent": false, "note": "refused"}`, t0.Add(3*time.Minute)))
			d := push(2, sub(id, &a.Rev, `{"consent": true}`, t0.Add(4*time.Minute)))
			if c.Status != records.StatusUpdated || d.Status != records.StatusMerged {
				t.Fatalf("valid merge: %+v then %+v", c, d)
			}
			if rec, findings := e.stored(t, id); len(findings) > 0 || string(rec.Data) != `{"consent":true,"note":"refused"}` {
				t.Fatalf("valid merge stored %s (%+v)", rec.Data, findings)
			}
		})
	}
}

// TestOfflineEditsStayValid is the property the merge promises: for random
// valid edits of one base, made by several devices offline and pushed in
// random order, every push ends as valid data on the record or as a recorded
// conflict, under every policy. After each push the stored record is checked
// against the form again, the pushed edit is in the record's history, and a
// push answered conflict has added a conflict entry.
func TestOfflineEditsStayValid(t *testing.T) {
	seed := uint64(time.Now().UnixNano())
	t.Logf("seed %d", seed)
	for _, b := range stores {
		for _, policy := range []string{domain.PolicyMerge, domain.PolicyLastWriteWins, domain.PolicyReject} {
			t.Run(b.name+"/"+policy, func(t *testing.T) {
				recordsN, devices, rounds := 16, 4, 3
				if b.name == "mongo" {
					// The embedded FerretDB is slow. Merge is the policy whose
					// outcome can differ from both pushed edits.
					recordsN = 2
					if policy == domain.PolicyMerge {
						recordsN = 4
					}
				}
				e := newFormEnv(t, b.open(t), policy, consentSchema)
				rng := rand.New(rand.NewPCG(seed, uint64(len(b.name)+len(policy))))
				counts := map[string]int{}
				for range recordsN {
					for status, n := range e.offlineEdits(t, rng, devices, rounds) {
						counts[status] += n
					}
				}
				t.Logf("outcomes: %v", counts)
			})
		}
	}
}

// offlineEdits plays one record: a device creates it, then in each round
// every device edits it offline from the rev it last heard of, and the
// edits are pushed in random order. It returns how many pushes ended in each
// status.
func (e formEnv) offlineEdits(t *testing.T, rng *rand.Rand, devices, rounds int) map[string]int {
	t.Helper()
	ctx := context.Background()
	id := uuid.NewString()
	clock := time.Date(2026, 3, 1, 9, 0, 0, 0, time.UTC)
	tick := func() time.Time {
		clock = clock.Add(time.Duration(rng.IntN(120)-30) * time.Second) // device clocks disagree
		return clock
	}
	counts := map[string]int{}
	res, err := e.svc.Push(ctx, tablet(0), "p", []records.Submission{sub(id, nil, string(e.randomData(t, rng)), tick())})
	if err != nil || res[0].Status != records.StatusCreated {
		t.Fatalf("create: %v %+v", err, res)
	}
	known := make([]string, devices) // the rev each device last heard of
	for d := range known {
		known[d] = res[0].Rev
	}
	for range rounds {
		type edit struct {
			dev int
			s   records.Submission
		}
		var edits []edit
		for d := range devices {
			s := sub(id, &known[d], string(e.randomData(t, rng)), tick())
			if rng.IntN(10) == 0 {
				s.Deleted, s.Data = true, nil
			}
			edits = append(edits, edit{d, s})
		}
		rng.Shuffle(len(edits), func(i, j int) { edits[i], edits[j] = edits[j], edits[i] })
		for _, ed := range edits {
			before, _ := e.stored(t, id)
			res, err := e.svc.Push(ctx, tablet(ed.dev), "p", []records.Submission{ed.s})
			if err != nil {
				t.Fatal(err)
			}
			r := res[0]
			counts[r.Status]++
			after, findings := e.stored(t, id)
			what := fmt.Sprintf("device %d pushed %s (deleted %v) on %s onto %s (deleted %v): %s", ed.dev, ed.s.Data, ed.s.Deleted,
				*ed.s.BaseRev, before.Data, before.Deleted, r.Status)
			if len(findings) > 0 {
				t.Fatalf("%s; stored %s, which the form refuses: %+v", what, after.Data, findings)
			}
			switch r.Status {
			case records.StatusUpdated, records.StatusMerged, records.StatusUnchanged:
			case records.StatusConflict:
				if len(after.Conflicts) <= len(before.Conflicts) {
					t.Fatalf("%s; no conflict entry was recorded", what)
				}
			default:
				t.Fatalf("%s %+v", what, r.Errors)
			}
			if r.Rev != after.Rev {
				t.Fatalf("%s; answered rev %s, the record holds %s", what, r.Rev, after.Rev)
			}
			data := ed.s.Data
			if ed.s.Deleted {
				data = json.RawMessage(`{}`)
			}
			rev, err := syncer.NewRev(*ed.s.BaseRev, data, ed.s.Deleted)
			if err != nil {
				t.Fatal(err)
			}
			if _, err := e.st.GetRevision(ctx, "p", id, rev); err != nil && r.Status != records.StatusUnchanged {
				// Nothing is kept only when the merge made what the record holds
				// already (the edit changed nothing, made the current content,
				// or only did what the current content did too).
				if r.Status != records.StatusMerged || after.Rev != before.Rev {
					t.Fatalf("%s; the edit %s is not in the history: %v", what, rev, err)
				}
			}
			known[ed.dev] = r.Rev
		}
	}
	return counts
}

// randomData is a random document the form accepts: random answers to its
// questions, drawn until the schema takes them.
func (e formEnv) randomData(t *testing.T, rng *rand.Rand) json.RawMessage {
	t.Helper()
	for range 1000 {
		m := map[string]any{"consent": rng.IntN(3) > 0}
		maybe := func(key string, vals ...any) {
			if i := rng.IntN(len(vals) + 1); i < len(vals) {
				m[key] = vals[i]
			}
		}
		maybe("age", 17, 30, 64)
		maybe("smoker", true, false)
		maybe("cigarettes", 5, 20)
		maybe("note", "a", "b")
		b, err := json.Marshal(m)
		if err != nil {
			t.Fatal(err)
		}
		if len(e.fv.Validator.ValidateJSON(b)) == 0 {
			return b
		}
	}
	t.Fatal("no valid data drawn")
	return nil
}
