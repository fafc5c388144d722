package records_test

import (
	"context"
	"encoding/json"
	"fmt"
	"path/filepath"
	"testing"
	"time"

	"github.com/google/uuid"

	"github.com/fieldsync/fieldsync/internal/domain"
	"github.com/fieldsync/fieldsync/internal/forms"
	"github.com/fieldsync/fieldsync/internal/records"
	"github.com/fieldsync/fieldsync/internal/store/mongo/mongotest"
	"github.com/fieldsync/fieldsync/internal/store/sqlite"
)

// bothStores are the two backends, MongoDB always included: the tests of
// this file need nothing FerretDB lacks (the mongotest proxy serialises
// conditional writes per collection).
var bothStores = []struct {
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
	{"mongo", func(t *testing.T) domain.Store { return mongotest.Open(t) }},
}

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
	for _, b := range bothStores {
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
			if len(rec.Conflicts) != 1 || rec.Conflicts[0].Path != "" || len(rec.Conflicts[0].Values) != 1 {
				t.Fatalf("conflicts %+v, want one whole-record entry", rec.Conflicts)
			}
			held := rec.Conflicts[0].Values[0]
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
