package httpapi

import (
	"encoding/json"
	"net/http"
	"net/url"
	"testing"
	"time"

	"github.com/fieldsync/fieldsync/api"
)

func quarantineURL(q url.Values) string {
	p := "/v1/projects/" + syncProject + "/quarantine"
	if len(q) > 0 {
		p += "?" + q.Encode()
	}
	return p
}

func quarantineItemURL(id, action string) string {
	return "/v1/projects/" + syncProject + "/quarantine/" + id + "/" + action
}

// listQuarantine lists one page (limit 100) as token with the query q.
func (e *syncEnv) listQuarantine(t *testing.T, token string, q url.Values) []api.QuarantineItem {
	t.Helper()
	var l api.QuarantineList
	e.ts.want(t, http.StatusOK, http.MethodGet, quarantineURL(q), token, nil, &l)
	return l.Items
}

// onlyEntry returns the one entry of record id among items.
func onlyEntry(t *testing.T, items []api.QuarantineItem, recordID string) api.QuarantineItem {
	t.Helper()
	var found []api.QuarantineItem
	for _, it := range items {
		if it.RecordID == recordID {
			found = append(found, it)
		}
	}
	if len(found) != 1 {
		t.Fatalf("%d entries of record %s, want 1: %s", len(found), recordID, mustJSON(t, items))
	}
	return found[0]
}

// TestQuarantineReapplyAndDismiss walks the quarantine as its people do: a
// designer sees the entries of a schema too strict but may not act on them;
// an analyst re-applies one with corrected data (it becomes the tablet's
// record, and the entry is resolved by the analyst) and dismisses another
// with a reason; the listing filters by state and form; both actions are in
// the audit log.
func TestQuarantineReapplyAndDismiss(t *testing.T) {
	e := newSyncEnv(t)
	designer := e.ts.addUser(t, e.admin, "dee", syncProject, api.RoleDesigner)
	bad := e.newSub("survey", `{"name": "Ana", "age": -3}`)
	other := e.newSub("household", `{"age": 40}`)
	e.wantStatuses(t, e.push(t, e.devA.token, bad, other), api.PushRejected, api.PushRejected)

	// The designer reads the quarantine (and filters it by form).
	items := e.listQuarantine(t, designer, url.Values{"form": {"survey"}})
	entry := onlyEntry(t, items, bad.ID)
	if entry.State != api.QuarantineOpen || entry.DeviceID != e.devA.id || entry.SubmittedBy != e.devA.subject {
		t.Fatalf("entry: %s", mustJSON(t, entry))
	}
	for _, it := range items {
		if it.Form != "survey" {
			t.Errorf("form=survey listed an entry of %s", it.Form)
		}
	}
	// … but does not act on them.
	e.ts.wantProblem(t, http.StatusForbidden, api.CodeForbidden, http.MethodPost, quarantineItemURL(entry.ID, "reapply"), designer, api.ReapplyRequest{})
	e.ts.wantProblem(t, http.StatusForbidden, api.CodeForbidden, http.MethodPost, quarantineItemURL(entry.ID, "dismiss"), designer, api.DismissRequest{Reason: "x"})

	// Re-applied as it was (no body), it is refused again and stays open.
	var res api.ReapplyResult
	e.ts.want(t, http.StatusOK, http.MethodPost, quarantineItemURL(entry.ID, "reapply"), e.analyst, nil, &res)
	if res.Status != api.PushRejected || len(res.Errors) == 0 || res.Entry.State != api.QuarantineOpen || res.Entry.LastReapply == nil {
		t.Fatalf("re-applied as sent: %s", mustJSON(t, res))
	}
	// Corrected, it is the tablet's record.
	fixed := json.RawMessage(`{"name": "Ana", "age": 3}`)
	e.ts.want(t, http.StatusOK, http.MethodPost, quarantineItemURL(entry.ID, "reapply"), e.analyst, api.ReapplyRequest{Data: fixed}, &res)
	if res.Status != api.PushCreated || res.Rev == "" || res.Entry.State != api.QuarantineResolved || res.Entry.ResolvedBy != "ana" ||
		!sameJSON(t, res.Entry.LastReapply.Data, fixed) {
		t.Fatalf("re-applied corrected: %s", mustJSON(t, res))
	}
	rec := e.record(t, e.devA.token, bad.ID)
	if rec.CreatedBy != e.devA.subject || rec.DeviceID != e.devA.id || !sameJSON(t, rec.Data, fixed) {
		t.Errorf("record: %s", mustJSON(t, rec))
	}
	e.ts.wantProblem(t, http.StatusConflict, "quarantine_not_open", http.MethodPost, quarantineItemURL(entry.ID, "reapply"), e.analyst, nil)
	e.ts.wantProblem(t, http.StatusNotFound, "quarantine_not_found", http.MethodPost, quarantineItemURL("nope", "reapply"), e.analyst, nil)
	e.ts.wantProblem(t, http.StatusBadRequest, "bad_json", http.MethodPost, quarantineItemURL(entry.ID, "reapply"), e.analyst, `{"dat": {}}`)

	// Dismissal: a reason is required.
	otherEntry := onlyEntry(t, e.listQuarantine(t, e.analyst, nil), other.ID)
	for _, body := range []any{`{}`, api.DismissRequest{Reason: "  "}} {
		p := e.ts.wantProblem(t, http.StatusUnprocessableEntity, "invalid_dismissal", http.MethodPost, quarantineItemURL(otherEntry.ID, "dismiss"), e.analyst, body)
		if len(p.Errors) == 0 || p.Errors[0].Path != "/reason" {
			t.Errorf("problem without the finding on /reason: %+v", p)
		}
	}
	e.ts.want(t, http.StatusNoContent, http.MethodPost, quarantineItemURL(otherEntry.ID, "dismiss"), e.analyst, api.DismissRequest{Reason: "a training interview"}, nil)
	e.ts.wantProblem(t, http.StatusConflict, "quarantine_not_open", http.MethodPost, quarantineItemURL(otherEntry.ID, "dismiss"), e.analyst, api.DismissRequest{Reason: "again"})

	// The listing by state.
	if open := e.listQuarantine(t, e.analyst, nil); len(open) != 0 {
		t.Errorf("open entries left: %s", mustJSON(t, open))
	}
	resolved := onlyEntry(t, e.listQuarantine(t, e.analyst, url.Values{"state": {"resolved"}}), bad.ID)
	if resolved.ResolvedBy != "ana" || resolved.ResolvedAt == nil || resolved.LastReapply.Rev != res.Rev {
		t.Errorf("resolved entry: %s", mustJSON(t, resolved))
	}
	dismissed := onlyEntry(t, e.listQuarantine(t, e.analyst, url.Values{"state": {"dismissed"}}), other.ID)
	if dismissed.State != api.QuarantineDismissed || dismissed.DismissedBy != "ana" || dismissed.DismissReason != "a training interview" || dismissed.DismissedAt == nil {
		t.Errorf("dismissed entry: %s", mustJSON(t, dismissed))
	}
	if all := e.listQuarantine(t, e.analyst, url.Values{"state": {"open,resolved,dismissed"}}); len(all) != 2 {
		t.Errorf("every state: %d entries, want 2", len(all))
	}
	if all := e.listQuarantine(t, e.analyst, url.Values{"resolved": {"true"}}); len(all) != 2 {
		t.Errorf("resolved=true: %d entries, want 2", len(all))
	}
	for _, q := range []url.Values{{"state": {"closed"}}, {"sate": {"open"}}, {"resolved": {"true"}, "state": {"open"}}} {
		e.ts.wantProblem(t, http.StatusBadRequest, "invalid_query", http.MethodGet, quarantineURL(q), e.analyst, nil)
	}

	// Both actions are audited, by whom and on what.
	if n := e.ts.auditCount(t, e.admin, "quarantine_reapplied", entry.ID); n != 2 {
		t.Errorf("%d quarantine_reapplied events, want 2", n)
	}
	if n := e.ts.auditCount(t, e.admin, "quarantine_dismissed", otherEntry.ID); n != 1 {
		t.Errorf("%d quarantine_dismissed events, want 1", n)
	}
}

// TestQuarantineReapplyForbidden: a tablet's offline edit of a record that
// was handed away from it is kept as forbidden; a manager re-applies it, and
// the record's history names the tablet that made the edit, not the manager.
func TestQuarantineReapplyForbidden(t *testing.T) {
	e := newSyncEnv(t)
	s := e.newSub("survey", `{"name": "A's respondent"}`)
	r1 := e.push(t, e.devA.token, s)[0].Rev
	bEdit := edit(s, r1, `{"name": "B was here"}`, clockBase.Add(time.Hour))
	e.wantStatuses(t, e.push(t, e.devB.token, bEdit), api.PushForbidden)
	entry := onlyEntry(t, e.listQuarantine(t, e.admin, nil), s.ID)
	if entry.Reason != api.QuarantineForbidden {
		t.Fatalf("entry: %s", mustJSON(t, entry))
	}
	var res api.ReapplyResult
	e.ts.want(t, http.StatusOK, http.MethodPost, quarantineItemURL(entry.ID, "reapply"), e.admin, api.ReapplyRequest{}, &res)
	if res.Status != api.PushUpdated || res.Entry.ResolvedBy != "admin" || res.Entry.SubmittedBy != e.devB.subject {
		t.Fatalf("re-applied: %s", mustJSON(t, res))
	}
	rec := e.record(t, e.analyst, s.ID)
	last := rec.Revs[len(rec.Revs)-1]
	if rec.CreatedBy != e.devA.subject || last.Rev != res.Rev || last.CreatedBy != e.devB.subject || last.DeviceID != e.devB.id {
		t.Errorf("record %s: want A's record with B's edit as its last revision", mustJSON(t, rec))
	}
}

// TestFormReopen: a designer closes a form (new records are refused) and
// reopens it (they are taken again); both are audited with the designer as
// actor, and fsctl's client method answers the open form.
func TestFormReopen(t *testing.T) {
	e := newSyncEnv(t)
	designer := e.ts.addUser(t, e.admin, "dee", syncProject, api.RoleDesigner)
	path := "/v1/projects/" + syncProject + "/forms/survey/"
	var f api.FormListEntry
	e.ts.want(t, http.StatusOK, http.MethodPost, path+"close", designer, nil, &f)
	if f.State != "closed" {
		t.Fatalf("closed form: %s", mustJSON(t, f))
	}
	e.wantStatuses(t, e.push(t, e.devA.token, e.newSub("survey", `{"name": "late"}`)), api.PushRejected)
	e.ts.want(t, http.StatusOK, http.MethodPost, path+"reopen", designer, nil, &f)
	if f.State != "open" {
		t.Fatalf("reopened form: %s", mustJSON(t, f))
	}
	e.wantStatuses(t, e.push(t, e.devA.token, e.newSub("survey", `{"name": "welcome back"}`)), api.PushCreated)
	// Reopening an open form changes nothing and is no event.
	e.ts.want(t, http.StatusOK, http.MethodPost, path+"reopen", designer, nil, &f)
	for typ, n := range map[string]int{"form_closed": 1, "form_reopened": 1} {
		var l api.AuditList
		e.ts.want(t, http.StatusOK, http.MethodGet, "/v1/audit?type="+typ, e.admin, nil, &l)
		var evs []api.AuditEvent
		for _, ev := range l.Events {
			if ev.Subject == "survey" {
				evs = append(evs, ev)
			}
		}
		if len(evs) != n || evs[0].Actor != "dee" || evs[0].Project != syncProject {
			t.Errorf("%s events of survey: %s", typ, mustJSON(t, evs))
		}
	}
	e.ts.wantProblem(t, http.StatusNotFound, "form_not_found", http.MethodPost, "/v1/projects/"+syncProject+"/forms/nope/reopen", designer, nil)
	e.ts.wantProblem(t, http.StatusForbidden, api.CodeForbidden, http.MethodPost, path+"reopen", e.analyst, nil)
}
