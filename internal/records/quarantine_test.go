package records_test

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"testing"
	"time"

	"github.com/google/uuid"

	"github.com/fieldsync/fieldsync/internal/audit"
	"github.com/fieldsync/fieldsync/internal/domain"
	"github.com/fieldsync/fieldsync/internal/forms"
	"github.com/fieldsync/fieldsync/internal/records"
)

// ageForm: name required, age at least 0; policy merge.
const ageForm = `{"title": "f", "schema": {"type": "object", "properties": {"name": {"type": "string"}, "age": {"type": "integer", "minimum": 0}}, "required": ["name"]}}`

// quarantineEnv is project "p" with form "f" (ageForm) on one store, and the
// services over it.
type quarantineEnv struct {
	st  domain.Store
	fs  *forms.Service
	svc *records.Service
}

func newQuarantineEnv(t *testing.T, st domain.Store) *quarantineEnv {
	t.Helper()
	ctx := context.Background()
	if err := st.CreateProject(ctx, domain.Project{ID: "p", Title: "p", CreatedBy: "admin", CreatedAt: time.Now().UTC()}); err != nil {
		t.Fatal(err)
	}
	fs := forms.NewService(forms.ServiceConfig{Store: st, Audit: st})
	if _, _, err := fs.PutVersion(ctx, "p", "f", "1", []byte(ageForm)); err != nil {
		t.Fatal(err)
	}
	if _, err := fs.Publish(ctx, "p", "f", "1"); err != nil {
		t.Fatal(err)
	}
	return &quarantineEnv{st: st, fs: fs, svc: records.New(records.Config{Store: st, Forms: records.FormsOf(fs)})}
}

// enumerator is tablet n acting as the enumerator it is.
func enumerator(n int) records.Caller {
	c := tablet(n)
	c.Role = domain.RoleEnumerator
	return c
}

func person(name string, role domain.Role) records.Caller {
	return records.Caller{Principal: domain.Principal{Subject: name, Username: name}, Role: role}
}

// pushOne pushes one item and returns its result.
func (e *quarantineEnv) pushOne(t *testing.T, c records.Caller, s records.Submission) records.Result {
	t.Helper()
	res, err := e.svc.Push(context.Background(), c, "p", []records.Submission{s})
	if err != nil {
		t.Fatal(err)
	}
	return res[0]
}

// entryOf returns the one quarantine entry (any state) of a record.
func (e *quarantineEnv) entryOf(t *testing.T, recordID string) domain.QuarantineItem {
	t.Helper()
	items, _, err := e.svc.Quarantine(context.Background(), "p", domain.QuarantineFilter{}, "", 100)
	if err != nil {
		t.Fatal(err)
	}
	var found []domain.QuarantineItem
	for _, it := range items {
		if it.RecordID == recordID {
			found = append(found, it)
		}
	}
	if len(found) != 1 {
		t.Fatalf("%d quarantine entries of record %s, want 1: %+v", len(found), recordID, found)
	}
	return found[0]
}

// auditOf returns the audit events of a type, newest first.
func auditOf(t *testing.T, st domain.Store, typ string) []domain.AuditEvent {
	t.Helper()
	evs, _, err := st.ListAudit(context.Background(), domain.AuditFilter{Type: typ}, "", 100)
	if err != nil {
		t.Fatal(err)
	}
	return evs
}

func wantCode(t *testing.T, err error, code string) {
	t.Helper()
	if e, ok := domain.AsError(err); !ok || e.Code != code {
		t.Fatalf("error %v, want code %s", err, code)
	}
}

// TestReapplyRejected: a rejected item re-applied as it was is refused again
// and stays open with the findings; re-applied with corrected data it becomes
// the submitter's record, the entry is resolved by the analyst, the data tried
// is kept, and each attempt is audited.
func TestReapplyRejected(t *testing.T) {
	for _, b := range stores {
		t.Run(b.name, func(t *testing.T) {
			ctx := context.Background()
			e := newQuarantineEnv(t, b.open(t))
			bad := sub(uuid.NewString(), nil, `{"name": "Ana", "age": -4}`, time.Now())
			if r := e.pushOne(t, enumerator(1), bad); r.Status != records.StatusRejected {
				t.Fatalf("push: %+v", r)
			}
			entry := e.entryOf(t, bad.ID)
			ana := person("ana", domain.RoleAnalyst)

			res, after, err := e.svc.ReapplyQuarantine(ctx, ana, "p", entry.ID, records.Reapply{})
			if err != nil {
				t.Fatal(err)
			}
			if res.Status != records.StatusRejected || len(res.Errors) == 0 || res.Errors[0].Path != "/data/age" {
				t.Fatalf("re-applied as sent: %+v", res)
			}
			if after.State() != domain.QuarantineOpen || after.LastReapply == nil || after.LastReapply.Applied || after.LastReapply.By != "ana" {
				t.Fatalf("entry after a refused re-apply: %+v", after)
			}

			fixed := json.RawMessage(`{"name": "Ana", "age": 4}`)
			res, after, err = e.svc.ReapplyQuarantine(ctx, ana, "p", entry.ID, records.Reapply{Data: fixed})
			if err != nil {
				t.Fatal(err)
			}
			if res.Status != records.StatusCreated || res.Rev == "" {
				t.Fatalf("re-applied corrected: %+v", res)
			}
			if after.State() != domain.QuarantineResolved || after.ResolvedBy != "ana" || after.LastReapply.Rev != res.Rev ||
				!jsonEqual(after.LastReapply.Data, fixed) {
				t.Fatalf("entry after the corrected re-apply: %+v", after)
			}
			rec, err := e.st.GetRecord(ctx, "p", bad.ID)
			if err != nil {
				t.Fatal(err)
			}
			// The tablet's record: it keeps seeing it.
			if rec.CreatedBy != tablet(1).Principal.Subject || rec.DeviceID != "tablet-1" || !jsonEqual(rec.Data, fixed) {
				t.Errorf("record: created_by %s device %s data %s", rec.CreatedBy, rec.DeviceID, rec.Data)
			}
			if _, _, err := e.svc.Get(ctx, enumerator(1), "p", bad.ID, false); err != nil {
				t.Errorf("the submitting tablet cannot read its re-applied record: %v", err)
			}
			evs := auditOf(t, e.st, audit.QuarantineReapplied)
			if len(evs) != 2 || evs[0].Actor != "ana" || evs[0].Subject != entry.ID || evs[0].Detail["status"] != "created" ||
				evs[0].Detail["record"] != bad.ID || evs[0].Detail["corrected"] != "true" || evs[1].Detail["status"] != "rejected" {
				t.Errorf("audit events: %+v", evs)
			}

			// Resolved: not again.
			_, _, err = e.svc.ReapplyQuarantine(ctx, ana, "p", entry.ID, records.Reapply{})
			wantCode(t, err, "quarantine_not_open")
			_, _, err = e.svc.ReapplyQuarantine(ctx, ana, "p", "nope", records.Reapply{})
			wantCode(t, err, "quarantine_not_found")
		})
	}
}

func jsonEqual(a, b json.RawMessage) bool {
	var x, y any
	if json.Unmarshal(a, &x) != nil || json.Unmarshal(b, &y) != nil {
		return false
	}
	return fmt.Sprint(x) == fmt.Sprint(y)
}

// TestReapplyForbidden: a tablet's edit of a record that is not its own is
// kept as forbidden; a manager's re-apply lets it in as that tablet's edit (the
// revision names the tablet), merged by the form's policy, and the record
// still belongs to its creator.
func TestReapplyForbidden(t *testing.T) {
	for _, b := range stores {
		t.Run(b.name, func(t *testing.T) {
			ctx := context.Background()
			e := newQuarantineEnv(t, b.open(t))
			s := sub(uuid.NewString(), nil, `{"name": "Bol", "age": 30}`, time.Now())
			r1 := e.pushOne(t, enumerator(1), s).Rev
			edit := sub(s.ID, &r1, `{"name": "Bol", "age": 31}`, time.Now())
			if r := e.pushOne(t, enumerator(2), edit); r.Status != records.StatusForbidden {
				t.Fatalf("push of another tablet's record: %+v", r)
			}
			entry := e.entryOf(t, s.ID)
			if entry.Reason != domain.QuarantineForbidden || entry.SubmittedBy != tablet(2).Principal.Subject {
				t.Fatalf("entry: %+v", entry)
			}
			mia := person("mia", domain.RoleManager)
			res, after, err := e.svc.ReapplyQuarantine(ctx, mia, "p", entry.ID, records.Reapply{})
			if err != nil {
				t.Fatal(err)
			}
			if res.Status != records.StatusUpdated {
				t.Fatalf("re-applied: %+v", res)
			}
			if after.State() != domain.QuarantineResolved || after.ResolvedBy != "mia" || after.SubmittedBy != tablet(2).Principal.Subject {
				t.Errorf("entry: %+v", after)
			}
			rec, revs, err := e.svc.Get(ctx, mia, "p", s.ID, true)
			if err != nil {
				t.Fatal(err)
			}
			last := revs[len(revs)-1]
			if rec.CreatedBy != tablet(1).Principal.Subject || rec.DeviceID != "tablet-2" ||
				last.Rev != res.Rev || last.CreatedBy != tablet(2).Principal.Subject || last.DeviceID != "tablet-2" {
				t.Errorf("record %+v, last revision %+v: want tablet 1's record with tablet 2's edit", rec, last)
			}
		})
	}
}

// TestReapplyConcurrent: people re-applying one entry at once, each with
// other corrected data, apply it once: one result, one new revision; the
// others are told the entry is taken.
func TestReapplyConcurrent(t *testing.T) {
	for _, b := range stores {
		t.Run(b.name, func(t *testing.T) {
			ctx := context.Background()
			e := newQuarantineEnv(t, b.open(t))
			bad := sub(uuid.NewString(), nil, `{"name": "Ana", "age": -4}`, time.Now())
			e.pushOne(t, enumerator(1), bad)
			entry := e.entryOf(t, bad.ID)
			const n = 6
			errs := make([]error, n)
			start := make(chan struct{})
			done := make(chan int)
			for i := range n {
				go func() {
					<-start
					_, _, errs[i] = e.svc.ReapplyQuarantine(ctx, person(fmt.Sprint("ana", i), domain.RoleAnalyst), "p", entry.ID,
						records.Reapply{Data: json.RawMessage(fmt.Sprintf(`{"name": "Ana", "age": %d}`, i))})
					done <- i
				}()
			}
			close(start)
			for range n {
				<-done
			}
			wins := 0
			for i, err := range errs {
				if err == nil {
					wins++
					continue
				}
				var de *domain.Error
				if !errors.As(err, &de) || (de.Code != "quarantine_busy" && de.Code != "quarantine_not_open") {
					t.Errorf("re-apply %d: %v", i, err)
				}
			}
			if wins != 1 {
				t.Fatalf("%d re-applies applied, want 1", wins)
			}
			revs, err := e.st.ListRevisions(ctx, "p", bad.ID)
			if err != nil || len(revs) != 1 {
				t.Fatalf("record has %d revisions (%v), want 1", len(revs), err)
			}
			if got := e.entryOf(t, bad.ID); got.State() != domain.QuarantineResolved || got.Claim != "" {
				t.Errorf("entry: %+v", got)
			}
		})
	}
}

// TestDismissQuarantine: a dismissal needs a reason; it keeps the entry,
// marked with who, when and why, closes it to re-applies, and is audited.
// Designers may not decide.
func TestDismissQuarantine(t *testing.T) {
	for _, b := range stores {
		t.Run(b.name, func(t *testing.T) {
			ctx := context.Background()
			e := newQuarantineEnv(t, b.open(t))
			bad := sub(uuid.NewString(), nil, `{"age": 3}`, time.Now())
			e.pushOne(t, enumerator(1), bad)
			entry := e.entryOf(t, bad.ID)
			ana := person("ana", domain.RoleAnalyst)
			for _, reason := range []string{"", "   "} {
				_, err := e.svc.DismissQuarantine(ctx, ana, "p", entry.ID, reason)
				wantCode(t, err, "invalid_dismissal")
			}
			_, err := e.svc.DismissQuarantine(ctx, person("dee", domain.RoleDesigner), "p", entry.ID, "too strict")
			wantCode(t, err, "forbidden")
			_, _, err = e.svc.ReapplyQuarantine(ctx, person("dee", domain.RoleDesigner), "p", entry.ID, records.Reapply{})
			wantCode(t, err, "forbidden")

			got, err := e.svc.DismissQuarantine(ctx, ana, "p", entry.ID, " a training interview ")
			if err != nil {
				t.Fatal(err)
			}
			if got.State() != domain.QuarantineDismissed || got.DismissedBy != "ana" || got.DismissReason != "a training interview" || got.DismissedAt == nil {
				t.Errorf("dismissed: %+v", got)
			}
			_, err = e.svc.DismissQuarantine(ctx, ana, "p", entry.ID, "again")
			wantCode(t, err, "quarantine_not_open")
			_, _, err = e.svc.ReapplyQuarantine(ctx, ana, "p", entry.ID, records.Reapply{})
			wantCode(t, err, "quarantine_not_open")
			open, _, err := e.svc.Quarantine(ctx, "p", domain.QuarantineFilter{States: []string{domain.QuarantineOpen}}, "", 10)
			if err != nil || len(open) != 0 {
				t.Errorf("open entries after the dismissal: %d, %v", len(open), err)
			}
			evs := auditOf(t, e.st, audit.QuarantineDismissed)
			if len(evs) != 1 || evs[0].Actor != "ana" || evs[0].Subject != entry.ID || evs[0].Detail["reason"] != "a training interview" {
				t.Errorf("audit events: %+v", evs)
			}
			_, _, err = e.svc.Quarantine(ctx, "p", domain.QuarantineFilter{States: []string{"closed"}}, "", 10)
			wantCode(t, err, "invalid_query")
		})
	}
}

// TestReapplyAfterReopen: an item refused because its form was closed is
// applied once a designer reopens the form; both changes of the form are
// audited.
func TestReapplyAfterReopen(t *testing.T) {
	ctx := context.Background()
	e := newQuarantineEnv(t, stores[0].open(t))
	if _, err := e.fs.Close(forms.WithActor(ctx, "dee", ""), "p", "f"); err != nil {
		t.Fatal(err)
	}
	late := sub(uuid.NewString(), nil, `{"name": "late"}`, time.Now())
	if r := e.pushOne(t, enumerator(1), late); r.Status != records.StatusRejected || r.Errors[0].Keyword != "closed" {
		t.Fatalf("push to a closed form: %+v", r)
	}
	if f, err := e.fs.Reopen(forms.WithActor(ctx, "dee", ""), "p", "f"); err != nil || f.State != domain.FormOpen {
		t.Fatalf("Reopen: %+v, %v", f, err)
	}
	// Reopening an open form is no event.
	if _, err := e.fs.Reopen(ctx, "p", "f"); err != nil {
		t.Fatal(err)
	}
	res, _, err := e.svc.ReapplyQuarantine(ctx, person("ana", domain.RoleAnalyst), "p", e.entryOf(t, late.ID).ID, records.Reapply{})
	if err != nil || res.Status != records.StatusCreated {
		t.Fatalf("re-apply after reopening: %+v, %v", res, err)
	}
	for typ, n := range map[string]int{audit.FormPublished: 1, audit.FormClosed: 1, audit.FormReopened: 1} {
		evs := auditOf(t, e.st, typ)
		if len(evs) != n || evs[0].Subject != "f" || evs[0].ProjectID != "p" {
			t.Errorf("%s events: %+v", typ, evs)
		}
		if typ != audit.FormPublished && evs[0].Actor != "dee" {
			t.Errorf("%s actor %q, want dee", typ, evs[0].Actor)
		}
	}
	if _, err := e.fs.Reopen(ctx, "p", "nope"); err == nil {
		t.Error("Reopen of an unknown form answered no error")
	}
}
