package httpapi

import (
	"bytes"
	"compress/gzip"
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"net/url"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/google/uuid"

	"github.com/fieldsync/fieldsync/api"
	"github.com/fieldsync/fieldsync/internal/domain"
	"github.com/fieldsync/fieldsync/internal/syncer"
)

// The sync tests run on one project, "safety", with these forms (all with the
// schema of testFormSchema):
//
//   - "survey" v1 (merge), the everyday form; v2 is a draft never published;
//   - "household" v1 (merge, shared): every enumerator sees every record;
//   - "strict" v1 (reject, shared) and "lww" v1 (last-write-wins, shared);
//   - "old" v1 (merge), closed after its first record.
//
// Enumerators are enrolled tablets (devices A and B); the analyst is a user.

const syncProject = "safety"

// testFormSchema: name is required, age is at least 0.
const testFormSchema = `{"$schema": "https://json-schema.org/draft/2020-12/schema", "type": "object",
	"properties": {"name": {"type": "string"}, "age": {"type": "integer", "minimum": 0},
		"village": {"type": "string"}, "notes": {"type": "string"}, "tags": {"type": "array"}},
	"required": ["name"]}`

// syncEnv is a test server with the sync project set up.
type syncEnv struct {
	ts      *testServer
	admin   string // the admin's token (a manager of every project)
	analyst string
	devA    device
	devB    device
	oldRec  string // the record of the closed form "old"
}

// device is an enrolled tablet: its token and its subject (device:<id>).
type device struct {
	token, id, subject string
}

// newSyncEnv sets up the project, its forms, two tablets and an analyst.
func newSyncEnv(t *testing.T) *syncEnv {
	t.Helper()
	ts := newTestServer(t)
	e := &syncEnv{ts: ts, admin: ts.adminToken(t)}
	ts.want(t, http.StatusCreated, http.MethodPost, "/v1/projects", e.admin, api.CreateProjectRequest{ID: syncProject, Title: "Safety"}, nil)
	e.putForm(t, "survey", "1", "merge", false, true)
	e.putForm(t, "survey", "2", "merge", false, false)
	e.putForm(t, "household", "1", "merge", true, true)
	e.putForm(t, "strict", "1", "reject", true, true)
	e.putForm(t, "lww", "1", "last-write-wins", true, true)
	e.putForm(t, "old", "1", "merge", false, true)
	e.devA = e.enroll(t, "tablet A")
	e.devB = e.enroll(t, "tablet B")
	e.analyst = ts.addUser(t, e.admin, "ana", syncProject, api.RoleAnalyst)

	old := e.newSub("old", `{"name": "before closing"}`)
	e.wantStatuses(t, e.push(t, e.devA.token, old), api.PushCreated)
	e.oldRec = old.ID
	if _, err := ts.srv.forms.Close(context.Background(), syncProject, "old"); err != nil {
		t.Fatal(err)
	}
	return e
}

// putForm uploads a definition through the forms service (and publishes it).
func (e *syncEnv) putForm(t *testing.T, form, version, policy string, shared, publish bool) {
	t.Helper()
	def := fmt.Sprintf(`{"title": %q, "conflict_policy": %q, "shared": %v, "schema": %s}`, form, policy, shared, testFormSchema)
	ctx := context.Background()
	if _, _, err := e.ts.srv.forms.PutVersion(ctx, syncProject, form, version, []byte(def)); err != nil {
		t.Fatalf("PutVersion %s/%s: %v", form, version, err)
	}
	if publish {
		if _, err := e.ts.srv.forms.Publish(ctx, syncProject, form, version); err != nil {
			t.Fatalf("Publish %s/%s: %v", form, version, err)
		}
	}
}

// enroll creates a device in the project and enrolls it.
func (e *syncEnv) enroll(t *testing.T, name string) device {
	t.Helper()
	var dev api.CreateDeviceResponse
	e.ts.want(t, http.StatusCreated, http.MethodPost, "/v1/projects/"+syncProject+"/devices", e.admin, api.CreateDeviceRequest{Name: name}, &dev)
	var pair api.TokenResponse
	e.ts.want(t, http.StatusOK, http.MethodPost, "/v1/devices/enroll", "", api.EnrollRequest{EnrollmentCode: dev.EnrollmentCode}, &pair)
	return device{token: pair.AccessToken, id: dev.DeviceID, subject: domain.DeviceSubject(dev.DeviceID)}
}

// clock is the devices' clock in these tests: each call is a millisecond later.
var clockBase = time.Date(2026, 3, 1, 9, 0, 0, 0, time.UTC)

// newSub makes a new record of form's version 1 with a fresh id.
func (e *syncEnv) newSub(form, data string) api.Submission {
	return api.Submission{ID: uuid.NewString(), Form: form, FormVersion: "1", ClientModifiedAt: clockBase, Data: json.RawMessage(data)}
}

// edit makes an edit of a record from base, saved at the device's time at.
func edit(s api.Submission, base, data string, at time.Time) api.Submission {
	s.BaseRev = &base
	s.Data = json.RawMessage(data)
	s.ClientModifiedAt = at
	s.Deleted = false
	return s
}

// tombstone makes a deletion of a record from base, without data.
func tombstone(s api.Submission, base string, at time.Time) api.Submission {
	s.BaseRev = &base
	s.Data = nil
	s.Deleted = true
	s.ClientModifiedAt = at
	return s
}

func pushPath() string { return "/v1/projects/" + syncProject + "/sync/push" }

// push sends a batch: each item an api.Submission or raw JSON (a string or
// json.RawMessage, for malformed items). It fails unless the answer is 200
// with one result per item.
func (e *syncEnv) push(t testing.TB, token string, items ...any) []api.PushResult {
	t.Helper()
	body := pushBody(t, items...)
	var out api.PushResponse
	e.ts.want(t, http.StatusOK, http.MethodPost, pushPath(), token, body, &out)
	if len(out.Results) != len(items) {
		t.Fatalf("push of %d items: %d results", len(items), len(out.Results))
	}
	if out.ServerTime.IsZero() {
		t.Error("push answer without server_time")
	}
	return out.Results
}

func pushBody(t testing.TB, items ...any) []byte {
	t.Helper()
	raw := make([]json.RawMessage, len(items))
	for i, it := range items {
		switch v := it.(type) {
		case string:
			raw[i] = json.RawMessage(v)
		case json.RawMessage:
			raw[i] = v
		default:
			b, err := json.Marshal(v)
			if err != nil {
				t.Fatal(err)
			}
			raw[i] = b
		}
	}
	b, err := json.Marshal(map[string]any{"submissions": raw})
	if err != nil {
		t.Fatal(err)
	}
	return b
}

// wantStatuses fails unless the results have these statuses, in order.
func (e *syncEnv) wantStatuses(t testing.TB, res []api.PushResult, want ...string) {
	t.Helper()
	var got []string
	for _, r := range res {
		got = append(got, r.Status)
	}
	if !slices.Equal(got, want) {
		t.Fatalf("statuses %v, want %v; results: %s", got, want, mustJSON(t, res))
	}
}

func mustJSON(t testing.TB, v any) string {
	t.Helper()
	b, err := json.Marshal(v)
	if err != nil {
		t.Fatal(err)
	}
	return string(b)
}

func recordPath(id string) string { return "/v1/projects/" + syncProject + "/records/" + id }

// record reads a record with its history as token's caller.
func (e *syncEnv) record(t testing.TB, token, id string) api.Record {
	t.Helper()
	var rec api.Record
	resp, raw := e.ts.call(t, http.MethodGet, recordPath(id)+"?revs=true", token, nil)
	if resp.StatusCode != http.StatusOK {
		t.Fatalf("GET record %s: %d %s", id, resp.StatusCode, raw)
	}
	if err := json.Unmarshal(raw, &rec); err != nil {
		t.Fatal(err)
	}
	if got, want := resp.Header.Get("ETag"), `"`+rec.Rev+`"`; got != want {
		t.Errorf("GET record: ETag %s, want %s", got, want)
	}
	return rec
}

// dataOf decodes a record's data.
func dataOf(t testing.TB, raw json.RawMessage) map[string]any {
	t.Helper()
	var m map[string]any
	if err := json.Unmarshal(raw, &m); err != nil {
		t.Fatalf("data %s: %v", raw, err)
	}
	return m
}

// sameJSON reports whether two JSON documents are equal after canonicalisation.
func sameJSON(t testing.TB, a, b []byte) bool {
	t.Helper()
	ca, err := syncer.Canonical(a)
	if err != nil {
		t.Fatalf("%s: %v", a, err)
	}
	cb, err := syncer.Canonical(b)
	if err != nil {
		t.Fatalf("%s: %v", b, err)
	}
	return bytes.Equal(ca, cb)
}

// revOf is the revision an item makes of its base: what a client that computes
// revisions itself knows before the server answers.
func revOf(t testing.TB, s api.Submission) string {
	t.Helper()
	parent := ""
	if s.BaseRev != nil {
		parent = *s.BaseRev
	}
	data := []byte(s.Data)
	if s.Deleted && len(data) == 0 {
		data = []byte("{}")
	}
	rev, err := syncer.NewRev(parent, data, s.Deleted)
	if err != nil {
		t.Fatal(err)
	}
	return rev
}

// quarantine lists every quarantine entry (all pages) as an analyst would.
func (e *syncEnv) quarantine(t testing.TB, resolved bool) []api.QuarantineItem {
	t.Helper()
	var all []api.QuarantineItem
	cursor := ""
	for page := 0; page < 1000; page++ {
		q := url.Values{"limit": {"7"}}
		if resolved {
			q.Set("resolved", "true")
		}
		if cursor != "" {
			q.Set("cursor", cursor)
		}
		var list api.QuarantineList
		e.ts.want(t, http.StatusOK, http.MethodGet, "/v1/projects/"+syncProject+"/quarantine?"+q.Encode(), e.analyst, nil, &list)
		all = append(all, list.Items...)
		if list.Next == "" {
			return all
		}
		cursor = list.Next
	}
	t.Fatal("quarantine: too many pages")
	return nil
}

// findQuarantined returns the entry holding exactly this pushed item.
func findQuarantined(t testing.TB, items []api.QuarantineItem, pushed []byte) (api.QuarantineItem, bool) {
	t.Helper()
	for _, q := range items {
		if sameJSON(t, q.Submission, pushed) {
			return q, true
		}
	}
	return api.QuarantineItem{}, false
}

// pullAll pulls as token from since until more is false, limit per page, and
// returns the changes and the last cursor.
func (e *syncEnv) pullAll(t testing.TB, token, since string, limit int) ([]api.Record, string) {
	t.Helper()
	var all []api.Record
	for page := 0; page < 10000; page++ {
		p := e.pull(t, token, since, limit)
		all = append(all, p.Changes...)
		since = p.Next
		if !p.More {
			return all, since
		}
	}
	t.Fatal("pull: too many pages")
	return nil, ""
}

func (e *syncEnv) pull(t testing.TB, token, since string, limit int) api.PullResponse {
	t.Helper()
	q := url.Values{}
	if since != "" {
		q.Set("since", since)
	}
	if limit > 0 {
		q.Set("limit", fmt.Sprint(limit))
	}
	var p api.PullResponse
	e.ts.want(t, http.StatusOK, http.MethodGet, "/v1/projects/"+syncProject+"/sync/pull?"+q.Encode(), token, nil, &p)
	if p.Next == "" {
		t.Fatal("pull answered no next cursor")
	}
	return p
}

func ids(recs []api.Record) []string {
	out := make([]string, len(recs))
	for i, r := range recs {
		out[i] = r.ID
	}
	return out
}

// TestPushCreatedUpdatedUnchanged: the plain statuses, and a batch pushed again
// after its answer was lost.
func TestPushCreatedUpdatedUnchanged(t *testing.T) {
	e := newSyncEnv(t)
	a := e.newSub("survey", `{"name": "Amina", "age": 34}`)
	b := e.newSub("survey", `{"name": "Bello", "village": "Kora"}`)
	first := e.push(t, e.devA.token, a, b)
	e.wantStatuses(t, first, api.PushCreated, api.PushCreated)
	for i, s := range []api.Submission{a, b} {
		if first[i].ID != s.ID || first[i].Rev != revOf(t, s) || !strings.HasPrefix(first[i].Rev, "1-") {
			t.Errorf("result %d: %+v, want id %s rev %s", i, first[i], s.ID, revOf(t, s))
		}
	}

	// The answer was lost on the 2G link: the tablet pushes the same batch.
	again := e.push(t, e.devA.token, a, b)
	e.wantStatuses(t, again, api.PushUnchanged, api.PushUnchanged)
	for i := range again {
		if again[i].Rev != first[i].Rev || again[i].Current != nil || len(again[i].Errors) != 0 {
			t.Errorf("replay result %d: %+v, want the first rev %s and nothing else", i, again[i], first[i].Rev)
		}
	}

	a2 := edit(a, first[0].Rev, `{"name": "Amina", "age": 35}`, clockBase.Add(time.Hour))
	up := e.push(t, e.devA.token, a2)
	e.wantStatuses(t, up, api.PushUpdated)
	if !strings.HasPrefix(up[0].Rev, "2-") || up[0].Rev != revOf(t, a2) {
		t.Errorf("updated rev %s, want %s", up[0].Rev, revOf(t, a2))
	}
	// The edit's answer is lost too, and the tablet pushes it with its create.
	e.wantStatuses(t, e.push(t, e.devA.token, a, a2), api.PushUnchanged, api.PushUnchanged)

	rec := e.record(t, e.analyst, a.ID)
	if rec.Rev != up[0].Rev || !sameJSON(t, rec.Data, a2.Data) || len(rec.Conflicts) != 0 || len(rec.Revs) != 2 {
		t.Fatalf("record after replays: %s", mustJSON(t, rec))
	}
	if rec.Revs[0].Rev != first[0].Rev || rec.Revs[1].Rev != up[0].Rev || rec.Revs[1].Parent != first[0].Rev {
		t.Errorf("history %s", mustJSON(t, rec.Revs))
	}
	if rec.CreatedBy != e.devA.subject || rec.DeviceID != e.devA.id || rec.ReviewState != api.ReviewReceived {
		t.Errorf("record metadata: %s", mustJSON(t, rec))
	}
	// No duplicate: the form holds exactly the two records.
	var page api.RecordPage
	e.ts.want(t, http.StatusOK, http.MethodGet, "/v1/projects/"+syncProject+"/forms/survey/records", e.analyst, nil, &page)
	if got := ids(page.Records); len(got) != 2 || !slices.Contains(got, a.ID) || !slices.Contains(got, b.ID) {
		t.Errorf("form records %v, want %s and %s once each", got, a.ID, b.ID)
	}
}

// TestPushSameRecordTwiceInOneBatch: a create and its edit (whose base_rev the
// tablet computed) in one batch apply in order; so do an edit and a delete, and a
// delete and an edit after it.
func TestPushSameRecordTwiceInOneBatch(t *testing.T) {
	e := newSyncEnv(t)
	a := e.newSub("survey", `{"name": "Amina"}`)
	a2 := edit(a, revOf(t, a), `{"name": "Amina", "age": 40}`, clockBase.Add(time.Minute))
	a3 := tombstone(a, revOf(t, a2), clockBase.Add(2*time.Minute))
	a4 := edit(a, revOf(t, a3), `{"name": "Amina K.", "age": 40}`, clockBase.Add(3*time.Minute))
	res := e.push(t, e.devA.token, a, a2, a3, a4)
	e.wantStatuses(t, res, api.PushCreated, api.PushUpdated, api.PushUpdated, api.PushUpdated)
	rec := e.record(t, e.analyst, a.ID)
	if rec.Rev != revOf(t, a4) || rec.Deleted || !sameJSON(t, rec.Data, a4.Data) || len(rec.Revs) != 4 {
		t.Fatalf("record %s", mustJSON(t, rec))
	}
	if !rec.Revs[2].Deleted || rec.Revs[3].Parent != rec.Revs[2].Rev {
		t.Errorf("history %s", mustJSON(t, rec.Revs))
	}
	// The whole batch again: nothing changes.
	e.wantStatuses(t, e.push(t, e.devA.token, a, a2, a3, a4), api.PushUnchanged, api.PushUnchanged, api.PushUnchanged, api.PushUnchanged)
}

// TestPushEditOfUnknownRecord: an edit whose record the server does not hold
// (its create never arrived, or a backup was restored) creates it, keeping the
// device's lineage, so the device's next edit is a plain update.
func TestPushEditOfUnknownRecord(t *testing.T) {
	e := newSyncEnv(t)
	a := e.newSub("survey", `{"name": "lost create"}`)
	a2 := edit(a, revOf(t, a), `{"name": "lost create", "age": 3}`, clockBase.Add(time.Minute))
	res := e.push(t, e.devA.token, a2)
	e.wantStatuses(t, res, api.PushCreated)
	if res[0].Rev != revOf(t, a2) || !strings.HasPrefix(res[0].Rev, "2-") {
		t.Errorf("rev %s, want the edit's own %s", res[0].Rev, revOf(t, a2))
	}
	a3 := edit(a, res[0].Rev, `{"name": "lost create", "age": 4}`, clockBase.Add(2*time.Minute))
	e.wantStatuses(t, e.push(t, e.devA.token, a3), api.PushUpdated)
	// The create arrives late (an old outbox): it is older than what the record
	// holds, so it merges without overwriting anything.
	late := e.push(t, e.devA.token, a)
	if late[0].Status != api.PushMerged && late[0].Status != api.PushConflict {
		t.Fatalf("late create: %+v", late[0])
	}
	rec := e.record(t, e.analyst, a.ID)
	if d := dataOf(t, rec.Data); d["age"] != 4.0 {
		t.Errorf("late create overwrote the record: %s", rec.Data)
	}
	// A closed form takes no new record this way either.
	o := e.newSub("old", `{"name": "x"}`)
	res = e.push(t, e.devA.token, edit(o, revOf(t, o), `{"name": "y"}`, clockBase))
	e.wantStatuses(t, res, api.PushRejected)
}

// TestPushMergedAndConflict: two tablets edit one record of a shared form from
// the same base.
func TestPushMergedAndConflict(t *testing.T) {
	e := newSyncEnv(t)
	t0 := clockBase
	newRecord := func(t *testing.T, form string) (api.Submission, string) {
		s := e.newSub(form, `{"name": "Hawa", "age": 25, "village": "Kora"}`)
		res := e.push(t, e.devA.token, s)
		e.wantStatuses(t, res, api.PushCreated)
		return s, res[0].Rev
	}

	t.Run("different fields merge", func(t *testing.T) {
		s, r1 := newRecord(t, "household")
		ra := e.push(t, e.devA.token, edit(s, r1, `{"name": "Hawa", "age": 26, "village": "Kora"}`, t0.Add(time.Hour)))
		e.wantStatuses(t, ra, api.PushUpdated)
		bEdit := edit(s, r1, `{"name": "Hawa", "age": 25, "village": "Dori"}`, t0.Add(2*time.Hour))
		rb := e.push(t, e.devB.token, bEdit)
		e.wantStatuses(t, rb, api.PushMerged)
		cur := rb[0].Current
		if cur == nil || cur.Rev != rb[0].Rev || !strings.HasPrefix(cur.Rev, "3-") || len(cur.Conflicts) != 0 {
			t.Fatalf("merged result %s", mustJSON(t, rb[0]))
		}
		if d := dataOf(t, cur.Data); d["age"] != 26.0 || d["village"] != "Dori" || d["name"] != "Hawa" {
			t.Errorf("merged data %s, want both edits", cur.Data)
		}
		rec := e.record(t, e.analyst, s.ID)
		if rec.Rev != cur.Rev || !sameJSON(t, rec.Data, cur.Data) {
			t.Errorf("record %s, want the merged current", mustJSON(t, rec))
		}
		// B's own edit is in the history as a side revision.
		if !slices.ContainsFunc(rec.Revs, func(r api.Revision) bool { return r.Rev == revOf(t, bEdit) }) {
			t.Errorf("history without B's pushed edit %s: %s", revOf(t, bEdit), mustJSON(t, rec.Revs))
		}
		// Replayed, B's edit is recognised.
		e.wantStatuses(t, e.push(t, e.devB.token, bEdit), api.PushUnchanged)
	})

	t.Run("same field: the later clock stands, the clash is kept", func(t *testing.T) {
		for _, bLater := range []bool{true, false} {
			s, r1 := newRecord(t, "household")
			ra := e.push(t, e.devA.token, edit(s, r1, `{"name": "Hawa", "age": 30, "village": "Kora", "notes": "A"}`, t0.Add(time.Hour)))
			e.wantStatuses(t, ra, api.PushUpdated)
			bAt := t0.Add(2 * time.Hour)
			if !bLater {
				bAt = t0.Add(time.Minute)
			}
			bEdit := edit(s, r1, `{"name": "Hawa", "age": 31, "village": "Kora", "tags": ["b"]}`, bAt)
			rb := e.push(t, e.devB.token, bEdit)
			e.wantStatuses(t, rb, api.PushConflict)
			rec := e.record(t, e.analyst, s.ID)
			d := dataOf(t, rec.Data)
			wantAge, winner, loser := 30.0, ra[0].Rev, revOf(t, bEdit)
			if bLater {
				wantAge, winner, loser = 31.0, revOf(t, bEdit), ra[0].Rev
			}
			// The fields changed on one side only are taken either way.
			if d["age"] != wantAge || d["notes"] != "A" || d["tags"] == nil {
				t.Errorf("B later %v: data %s, want age %v and both one-sided edits", bLater, rec.Data, wantAge)
			}
			if len(rec.Conflicts) != 1 {
				t.Fatalf("B later %v: conflicts %s", bLater, mustJSON(t, rec.Conflicts))
			}
			c := rec.Conflicts[0]
			if c.Path != "/age" || string(c.Base) != "25" || len(c.Values) != 2 ||
				c.Values[0].Rev != winner || c.Values[1].Rev != loser ||
				string(c.Values[0].Value) != fmt.Sprint(wantAge) {
				t.Errorf("B later %v: clash %s, want /age base 25 with %s standing over %s", bLater, mustJSON(t, c), winner, loser)
			}
			if c.Values[1].DeviceID == "" && c.Values[0].DeviceID == "" {
				t.Errorf("clash without the devices: %s", mustJSON(t, c))
			}
			if rb[0].Current == nil || rb[0].Current.Rev != rec.Rev || len(rb[0].Current.Conflicts) != 1 {
				t.Errorf("conflict result's current %s, want the record", mustJSON(t, rb[0].Current))
			}
			// Replayed: recognised, and no second clash.
			e.wantStatuses(t, e.push(t, e.devB.token, bEdit), api.PushUnchanged)
			if rec := e.record(t, e.analyst, s.ID); len(rec.Conflicts) != 1 {
				t.Errorf("replay added a clash: %s", mustJSON(t, rec.Conflicts))
			}
		}
	})

	t.Run("policy reject applies nothing", func(t *testing.T) {
		s, r1 := newRecord(t, "strict")
		ra := e.push(t, e.devA.token, edit(s, r1, `{"name": "Hawa", "age": 26, "village": "Kora"}`, t0.Add(time.Hour)))
		e.wantStatuses(t, ra, api.PushUpdated)
		bEdit := edit(s, r1, `{"name": "Hawa", "age": 25, "village": "Dori"}`, t0.Add(2*time.Hour))
		rb := e.push(t, e.devB.token, bEdit)
		e.wantStatuses(t, rb, api.PushConflict)
		rec := e.record(t, e.analyst, s.ID)
		if rec.Rev != ra[0].Rev || dataOf(t, rec.Data)["village"] != "Kora" {
			t.Errorf("reject applied something: %s", mustJSON(t, rec))
		}
		if len(rec.Conflicts) != 1 || rec.Conflicts[0].Path != "" || len(rec.Conflicts[0].Values) != 1 ||
			rec.Conflicts[0].Values[0].Rev != revOf(t, bEdit) || !sameJSON(t, rec.Conflicts[0].Values[0].Value, bEdit.Data) {
			t.Errorf("reject: conflicts %s, want B's whole edit kept", mustJSON(t, rec.Conflicts))
		}
	})

	t.Run("last-write-wins keeps the loser", func(t *testing.T) {
		for _, bLater := range []bool{true, false} {
			s, r1 := newRecord(t, "lww")
			aEdit := edit(s, r1, `{"name": "Hawa", "age": 26, "village": "Kora"}`, t0.Add(time.Hour))
			e.wantStatuses(t, e.push(t, e.devA.token, aEdit), api.PushUpdated)
			bAt, wantStatus := t0.Add(2*time.Hour), api.PushMerged
			if !bLater {
				bAt, wantStatus = t0.Add(time.Minute), api.PushConflict
			}
			bEdit := edit(s, r1, `{"name": "Hawa", "age": 25, "village": "Dori"}`, bAt)
			e.wantStatuses(t, e.push(t, e.devB.token, bEdit), wantStatus)
			rec := e.record(t, e.analyst, s.ID)
			winner, loser := aEdit, bEdit
			if bLater {
				winner, loser = bEdit, aEdit
			}
			if !sameJSON(t, rec.Data, winner.Data) {
				t.Errorf("B later %v: data %s, want the later edit whole", bLater, rec.Data)
			}
			if len(rec.Conflicts) != 1 || rec.Conflicts[0].Path != "" || !sameJSON(t, rec.Conflicts[0].Values[0].Value, loser.Data) {
				t.Errorf("B later %v: conflicts %s, want the loser kept", bLater, mustJSON(t, rec.Conflicts))
			}
		}
	})

	t.Run("delete against an edit", func(t *testing.T) {
		s, r1 := newRecord(t, "household")
		e.wantStatuses(t, e.push(t, e.devA.token, tombstone(s, r1, t0.Add(time.Hour))), api.PushUpdated)
		rb := e.push(t, e.devB.token, edit(s, r1, `{"name": "Hawa", "age": 99, "village": "Kora"}`, t0.Add(2*time.Hour)))
		e.wantStatuses(t, rb, api.PushConflict)
		rec := e.record(t, e.analyst, s.ID)
		if rec.Deleted || len(rec.Conflicts) != 1 || rec.Conflicts[0].Path != "" || len(rec.Conflicts[0].Values) != 2 ||
			!rec.Conflicts[0].Values[1].Deleted {
			t.Errorf("the later edit must stand and the delete be kept: %s", mustJSON(t, rec))
		}
	})
}

// TestPushRejected: every reason an item is rejected, each in a batch with a
// good item that is stored all the same, and each kept in the quarantine.
func TestPushRejected(t *testing.T) {
	e := newSyncEnv(t)
	good := func() api.Submission { return e.newSub("survey", `{"name": "good"}`) }
	id := uuid.NewString()
	cases := []struct {
		name    string
		item    any
		path    string // of a finding the result must carry
		keyword string
	}{
		{"schema failure", api.Submission{ID: id, Form: "survey", FormVersion: "1", Data: json.RawMessage(`{"name": "x", "age": -1}`)}, "/data/age", "minimum"},
		{"missing required answer", e.newSub("survey", `{"age": 3}`), "/data/name", "required"},
		{"data not an object", e.newSub("survey", `["x"]`), "/data", "type"},
		{"unknown form", e.newSub("nosuchform", `{"name": "x"}`), "/form_version", ""},
		{"unknown version", api.Submission{ID: uuid.NewString(), Form: "survey", FormVersion: "9", Data: json.RawMessage(`{"name": "x"}`)}, "/form_version", ""},
		{"unpublished draft", api.Submission{ID: uuid.NewString(), Form: "survey", FormVersion: "2", Data: json.RawMessage(`{"name": "x"}`)}, "/form_version", "unpublished"},
		{"closed form, new record", e.newSub("old", `{"name": "x"}`), "/form", "closed"},
		{"not a uuid", api.Submission{ID: "interview-7", Form: "survey", FormVersion: "1", Data: json.RawMessage(`{"name": "x"}`)}, "/id", "format"},
		{"malformed base_rev", api.Submission{ID: uuid.NewString(), Form: "survey", FormVersion: "1", BaseRev: new("3"), Data: json.RawMessage(`{"name": "x"}`)}, "/base_rev", "format"},
		{"item is a string", `"a string where an item should be"`, "", "json"},
		{"item is null", `null`, "/id", "format"},
		{"data is a string", fmt.Sprintf(`{"id": %q, "form": "survey", "form_version": "1", "data": "name=x"}`, uuid.NewString()), "/data", "type"},
		{"wrong type of field", fmt.Sprintf(`{"id": %q, "form": "survey", "form_version": 1, "data": {"name": "x"}}`, uuid.NewString()), "", "json"},
		{"unknown field", fmt.Sprintf(`{"id": %q, "form": "survey", "form_version": "1", "bse_rev": "1-x", "data": {"name": "x"}}`, uuid.NewString()), "", "json"},
		{"bad time", fmt.Sprintf(`{"id": %q, "form": "survey", "form_version": "1", "client_modified_at": "yesterday", "data": {"name": "x"}}`, uuid.NewString()), "", "json"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			g1, g2 := good(), good()
			res := e.push(t, e.devA.token, g1, tc.item, g2)
			e.wantStatuses(t, res, api.PushCreated, api.PushRejected, api.PushCreated)
			r := res[1]
			if r.Rev != "" || r.Current != nil || len(r.Errors) == 0 {
				t.Fatalf("rejected result %s", mustJSON(t, r))
			}
			if !slices.ContainsFunc(r.Errors, func(f api.Finding) bool {
				return f.Path == tc.path && (tc.keyword == "" || f.Keyword == tc.keyword) && f.Message != ""
			}) {
				t.Errorf("findings %s, want one at %q (%s)", mustJSON(t, r.Errors), tc.path, tc.keyword)
			}
			raw := pushBody(t, tc.item)
			var env struct{ Submissions []json.RawMessage }
			_ = json.Unmarshal(raw, &env)
			q, ok := findQuarantined(t, e.quarantine(t, false), env.Submissions[0])
			if !ok {
				t.Fatalf("the rejected item is not in the quarantine")
			}
			if q.Attempts != 1 || len(q.Errors) == 0 || q.SubmittedBy != e.devA.subject {
				t.Errorf("quarantine entry %s", mustJSON(t, q))
			}
		})
	}
	// An edit of an existing record of a closed form still syncs.
	rec := e.record(t, e.analyst, e.oldRec)
	old := api.Submission{ID: e.oldRec, Form: "old", FormVersion: "1"}
	e.wantStatuses(t, e.push(t, e.devA.token, edit(old, rec.Rev, `{"name": "after closing"}`, clockBase.Add(time.Hour))), api.PushUpdated)
}

// TestPushForbidden: a tablet may not write another tablet's record unless it
// is shared or assigned to it.
func TestPushForbidden(t *testing.T) {
	e := newSyncEnv(t)
	s := e.newSub("survey", `{"name": "A's respondent"}`)
	r1 := e.push(t, e.devA.token, s)[0].Rev

	bEdit := edit(s, r1, `{"name": "B was here"}`, clockBase.Add(time.Hour))
	res := e.push(t, e.devB.token, bEdit, tombstone(s, r1, clockBase.Add(time.Hour)), s)
	e.wantStatuses(t, res, api.PushForbidden, api.PushForbidden, api.PushForbidden)
	if res[0].Rev != "" || res[0].Current != nil || len(res[0].Errors) == 0 {
		t.Errorf("forbidden result leaks or says nothing: %s", mustJSON(t, res[0]))
	}
	if rec := e.record(t, e.analyst, s.ID); rec.Rev != r1 {
		t.Fatalf("a forbidden push changed the record: %s", mustJSON(t, rec))
	}
	// Nor may B read it.
	resp, body := e.ts.call(t, http.MethodGet, recordPath(s.ID), e.devB.token, nil)
	problemOf(t, resp, body, http.StatusNotFound, "record_not_found")

	// Handed to B, the record is B's to edit too.
	var patched api.Record
	e.ts.want(t, http.StatusOK, http.MethodPatch, recordPath(s.ID), e.analyst, api.RecordPatch{AssignedTo: &[]string{e.devB.subject}}, &patched)
	e.wantStatuses(t, e.push(t, e.devB.token, bEdit), api.PushUpdated)
	rec := e.record(t, e.devB.token, s.ID)
	if rec.CreatedBy != e.devA.subject || rec.DeviceID != e.devB.id || dataOf(t, rec.Data)["name"] != "B was here" {
		t.Errorf("record after B's edit: %s", mustJSON(t, rec))
	}
	// A still owns it.
	e.wantStatuses(t, e.push(t, e.devA.token, edit(s, rec.Rev, `{"name": "A again"}`, clockBase.Add(2*time.Hour))), api.PushUpdated)
	// Unassigned, B is refused again.
	e.ts.want(t, http.StatusOK, http.MethodPatch, recordPath(s.ID), e.analyst, api.RecordPatch{AssignedTo: &[]string{}}, nil)
	rec = e.record(t, e.analyst, s.ID)
	e.wantStatuses(t, e.push(t, e.devB.token, edit(s, rec.Rev, `{"name": "B again"}`, clockBase.Add(3*time.Hour))), api.PushForbidden)
}

// TestPushLimits: more than 1000 items, and a body over 16 MiB once
// decompressed, are refused whole.
func TestPushLimits(t *testing.T) {
	e := newSyncEnv(t)
	items := make([]any, api.MaxPushItems+1)
	for i := range items {
		items[i] = e.newSub("survey", `{"name": "n"}`)
	}
	resp, body := e.ts.call(t, http.MethodPost, pushPath(), e.devA.token, pushBody(t, items...))
	problemOf(t, resp, body, http.StatusRequestEntityTooLarge, "too_many_items")

	// Exactly 1000 pass.
	if res := e.push(t, e.devA.token, items[:api.MaxPushItems]...); res[999].Status != api.PushCreated {
		t.Errorf("item 1000: %+v", res[999])
	}

	// 17 MiB of answers compress to a few KiB: the limit is on what they inflate to.
	big := e.newSub("survey", `{"name": "`+strings.Repeat("a", 17<<20)+`"}`)
	var zipped bytes.Buffer
	zw := gzip.NewWriter(&zipped)
	_, _ = zw.Write(pushBody(t, big))
	_ = zw.Close()
	if zipped.Len() > 1<<20 {
		t.Fatalf("the compressed body is %d bytes", zipped.Len())
	}
	req := e.ts.newRequest(t, http.MethodPost, pushPath(), zipped.Bytes())
	req.Header.Set("Content-Type", "application/json")
	req.Header.Set("Content-Encoding", "gzip")
	req.Header.Set("Authorization", "Bearer "+e.devA.token)
	resp, body = e.ts.do(t, req)
	problemOf(t, resp, body, http.StatusRequestEntityTooLarge, api.CodeBodyTooLarge)
	resp, _ = e.ts.call(t, http.MethodGet, recordPath(big.ID), e.analyst, nil)
	if resp.StatusCode != http.StatusNotFound {
		t.Errorf("a refused push stored its item: %d", resp.StatusCode)
	}
}

// TestPushConcurrentEdits: two tablets push edits of one record at the same
// moment, many times over; no edit is ever lost.
func TestPushConcurrentEdits(t *testing.T) {
	e := newSyncEnv(t)
	const rounds = 15
	for round := range rounds {
		sameField := round%2 == 1
		s := e.newSub("household", `{"name": "base", "age": 1}`)
		r1 := e.push(t, e.devA.token, s)[0].Rev
		aData, bData := `{"name": "base", "age": 1, "village": "A"}`, `{"name": "base", "age": 1, "notes": "B"}`
		if sameField {
			aData, bData = `{"name": "A", "age": 1}`, `{"name": "B", "age": 1}`
		}
		aEdit := edit(s, r1, aData, clockBase.Add(time.Hour))
		bEdit := edit(s, r1, bData, clockBase.Add(time.Hour+time.Millisecond))
		var wg sync.WaitGroup
		var ra, rb []api.PushResult
		wg.Add(2)
		go func() { defer wg.Done(); ra = e.push(t, e.devA.token, aEdit) }()
		go func() { defer wg.Done(); rb = e.push(t, e.devB.token, bEdit) }()
		wg.Wait()
		if t.Failed() {
			return
		}
		statuses := []string{ra[0].Status, rb[0].Status}
		slices.Sort(statuses)
		rec := e.record(t, e.analyst, s.ID)
		d := dataOf(t, rec.Data)
		if !sameField {
			if d["village"] != "A" || d["notes"] != "B" || len(rec.Conflicts) != 0 {
				t.Errorf("round %d: an edit was lost: %s (statuses %v)", round, mustJSON(t, rec), statuses)
			}
			if !slices.Equal(statuses, []string{api.PushMerged, api.PushUpdated}) {
				t.Errorf("round %d: statuses %v", round, statuses)
			}
			continue
		}
		// Same field: B's clock is later, so B stands whoever came first, and the
		// clash names both edits.
		if d["name"] != "B" || len(rec.Conflicts) != 1 || rec.Conflicts[0].Path != "/name" {
			t.Errorf("round %d: %s (statuses %v)", round, mustJSON(t, rec), statuses)
			continue
		}
		var revs []string
		for _, v := range rec.Conflicts[0].Values {
			revs = append(revs, v.Rev)
		}
		if !slices.Contains(revs, revOf(t, aEdit)) || !slices.Contains(revs, revOf(t, bEdit)) {
			t.Errorf("round %d: the clash %v does not name both edits %s and %s", round, revs, revOf(t, aEdit), revOf(t, bEdit))
		}
		if !slices.Equal(statuses, []string{api.PushConflict, api.PushUpdated}) {
			t.Errorf("round %d: statuses %v", round, statuses)
		}
	}
}
