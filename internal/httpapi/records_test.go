package httpapi

import (
	"bytes"
	"compress/gzip"
	"context"
	"encoding/base64"
	"encoding/json"
	"fmt"
	"maps"
	"math/rand/v2"
	"net/http"
	"net/url"
	"os"
	"slices"
	"strconv"
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
	// Byte for byte first: an item with a repeated member is kept as sent,
	// and sameJSON refuses to compare such JSON.
	var want bytes.Buffer
	if json.Compact(&want, pushed) == nil {
		for _, q := range items {
			var got bytes.Buffer
			if json.Compact(&got, q.Submission) == nil && bytes.Equal(got.Bytes(), want.Bytes()) {
				return q, true
			}
		}
	}
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
		// One whole-record entry: the content that stands, then B's edit.
		if len(rec.Conflicts) != 1 || rec.Conflicts[0].Path != "" || len(rec.Conflicts[0].Values) != 2 ||
			rec.Conflicts[0].Values[0].Rev != ra[0].Rev || !sameJSON(t, rec.Conflicts[0].Values[0].Value, rec.Data) ||
			rec.Conflicts[0].Values[1].Rev != revOf(t, bEdit) || !sameJSON(t, rec.Conflicts[0].Values[1].Value, bEdit.Data) {
			t.Errorf("reject: conflicts %s, want the standing content and B's whole edit", mustJSON(t, rec.Conflicts))
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
			if len(rec.Conflicts) != 1 || rec.Conflicts[0].Path != "" || len(rec.Conflicts[0].Values) != 2 ||
				!sameJSON(t, rec.Conflicts[0].Values[0].Value, winner.Data) || !sameJSON(t, rec.Conflicts[0].Values[1].Value, loser.Data) {
				t.Errorf("B later %v: conflicts %s, want the winner, then the loser kept", bLater, mustJSON(t, rec.Conflicts))
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
		// encoding/json would silently keep the last of repeated members.
		{"repeated id", fmt.Sprintf(`{"id": %q, "id": %q, "form": "survey", "form_version": "1", "data": {"name": "x"}}`, uuid.NewString(), uuid.NewString()), "", "json"},
		{"repeated form_version", fmt.Sprintf(`{"id": %q, "form": "survey", "form_version": "2", "form_version": "1", "data": {"name": "x"}}`, uuid.NewString()), "", "json"},
		{"repeated member of an attachment", fmt.Sprintf(`{"id": %q, "form": "survey", "form_version": "1", "data": {"name": "x"}, "attachments": [{"name": "a.jpg", "name": "b.jpg", "sha256": "00", "size": 1}]}`, uuid.NewString()), "", "json"},
		{"repeated answer", fmt.Sprintf(`{"id": %q, "form": "survey", "form_version": "1", "data": {"name": "x", "name": "y"}}`, uuid.NewString()), "/data", "json"},
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
	// Nothing is lost: each refused item waits in the quarantine for a manager,
	// marked forbidden; the later writes of the record did not settle it.
	q := e.quarantine(t, false)
	for i, item := range []any{bEdit, tombstone(s, r1, clockBase.Add(time.Hour)), s} {
		raw := pushBody(t, item)
		var env struct{ Submissions []json.RawMessage }
		_ = json.Unmarshal(raw, &env)
		got, ok := findQuarantined(t, q, env.Submissions[0])
		if !ok || got.Reason != api.QuarantineForbidden || got.RecordID != s.ID || got.SubmittedBy != e.devB.subject {
			t.Errorf("forbidden item %d in the quarantine: %v %s", i, ok, mustJSON(t, got))
		}
	}
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

	// 33 MiB of answers compress to a few KiB: the limit is on what they
	// inflate to. The body is written straight into gzip, a MiB at a time;
	// past 32 MiB the spec checker leaves the request body alone (parsing it
	// would only cost time) and still checks the answer.
	big := e.newSub("survey", `{"name": "x"}`)
	head, tail, _ := bytes.Cut(pushBody(t, big), []byte(`"x"`))
	var zipped bytes.Buffer
	zw, _ := gzip.NewWriterLevel(&zipped, gzip.BestSpeed)
	_, _ = zw.Write(head)
	_, _ = zw.Write([]byte(`"`))
	chunk := bytes.Repeat([]byte("a"), 1<<20)
	for range 33 {
		_, _ = zw.Write(chunk)
	}
	_, _ = zw.Write([]byte(`"`))
	_, _ = zw.Write(tail)
	_ = zw.Close()
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

// TestPushNothingIsDropped pushes a messy run from two tablets that share
// forms of the three policies (creates, edits on current and stale bases, deletes and edits after
// them, replays of earlier items, bad and malformed items, several items for
// one record in a batch), pulling now and then as tablets do, and then checks
// protocol.md's promise: every item sent is findable as a record, a revision
// in the ?revs=true history, a conflict entry or a quarantine entry.
func TestPushNothingIsDropped(t *testing.T) {
	e := newSyncEnv(t)
	// FIELDSYNC_TEST_SEED=n runs another mix of the same kinds of items.
	seed, _ := strconv.ParseUint(os.Getenv("FIELDSYNC_TEST_SEED"), 10, 64)
	rng := rand.New(rand.NewPCG(7+seed, 11))
	type known struct {
		sub     api.Submission
		rev     string
		old     []string
		data    map[string]any
		deleted bool
	}
	type tablet struct {
		dev    device
		known  map[string]*known
		order  []string // ids in the order first known, for deterministic picks
		cursor string
		sent   []any // every item pushed, for replays
	}
	type sentItem struct {
		item   any
		sub    *api.Submission // nil for a malformed item
		status string
		by     string
	}
	var sent []sentItem
	tablets := []*tablet{{dev: e.devA, known: map[string]*known{}}, {dev: e.devB, known: map[string]*known{}}}
	villages := []string{"Kora", "Dori", "Sebba", "Gorom"}
	tick := clockBase
	now := func() time.Time { tick = tick.Add(time.Duration(1+rng.IntN(5000)) * time.Millisecond); return tick }
	encode := func(m map[string]any) json.RawMessage {
		b, _ := json.Marshal(m)
		return b
	}
	learn := func(tb *tablet, id string, sub api.Submission, rev string, data json.RawMessage, deleted bool) {
		k := tb.known[id]
		if k == nil {
			k = &known{sub: sub}
			tb.known[id] = k
			tb.order = append(tb.order, id)
		}
		if k.rev != "" && k.rev != rev {
			k.old = append(k.old, k.rev)
		}
		k.rev, k.deleted = rev, deleted
		if len(data) > 0 {
			var m map[string]any
			if json.Unmarshal(data, &m) == nil && m != nil {
				k.data = m
			}
		}
	}
	changed := func(m map[string]any) map[string]any {
		out := map[string]any{}
		for k, v := range m {
			out[k] = v
		}
		if out["name"] == nil {
			out["name"] = "someone"
		}
		switch rng.IntN(3) {
		case 0:
			out["age"] = rng.IntN(90)
		case 1:
			out["village"] = villages[rng.IntN(len(villages))]
		default:
			out["notes"] = fmt.Sprintf("note %d", rng.IntN(1000))
		}
		return out
	}
	pick := func(tb *tablet) *known { return tb.known[tb.order[rng.IntN(len(tb.order))]] }

	const batches, perBatch = 3, 50
	for round := 0; round < batches; round++ {
		for _, tb := range tablets {
			var batch []any
			for len(batch) < perBatch {
				k := rng.IntN(100)
				switch {
				case k < 22 || len(tb.known) == 0:
					data := map[string]any{"name": fmt.Sprintf("resp %d", rng.IntN(1e6)), "age": rng.IntN(90)}
					form := []string{"household", "household", "strict", "lww"}[rng.IntN(4)]
					s := api.Submission{ID: uuid.NewString(), Form: form, FormVersion: "1", ClientModifiedAt: now(), Data: encode(data)}
					batch = append(batch, s)
					if rng.IntN(4) == 0 { // and its edit in the same batch, the rev computed by the tablet
						batch = append(batch, edit(s, revOf(t, s), string(encode(changed(data))), now()))
					}
				case k < 45: // an edit from what the tablet holds (stale when the other tablet wrote since)
					kn := pick(tb)
					batch = append(batch, edit(kn.sub, kn.rev, string(encode(changed(kn.data))), now()))
				case k < 53: // an edit from an older revision the tablet once held
					kn := pick(tb)
					base := kn.rev
					if len(kn.old) > 0 {
						base = kn.old[rng.IntN(len(kn.old))]
					}
					batch = append(batch, edit(kn.sub, base, string(encode(changed(kn.data))), now()))
				case k < 61:
					kn := pick(tb)
					batch = append(batch, tombstone(kn.sub, kn.rev, now()))
				case k < 70: // fails the schema
					if rng.IntN(2) == 0 || len(tb.known) == 0 {
						batch = append(batch, api.Submission{ID: uuid.NewString(), Form: "household", FormVersion: "1", ClientModifiedAt: now(), Data: json.RawMessage(`{"name": "x", "age": -5}`)})
					} else {
						kn := pick(tb)
						batch = append(batch, edit(kn.sub, kn.rev, `{"age": "old"}`, now()))
					}
				case k < 76: // malformed
					junk := []string{`"junk"`, `42`, `[1, 2]`,
						fmt.Sprintf(`{"id": %q, "form": "household", "form_version": "1", "data": {"name": "x"}, "extra": 1}`, uuid.NewString()),
						fmt.Sprintf(`{"id": %q, "form": "household", "form_version": "1", "data": "name=x"}`, uuid.NewString())}
					batch = append(batch, junk[rng.IntN(len(junk))])
				default: // a replay of something pushed before
					if len(tb.sent) == 0 {
						continue
					}
					batch = append(batch, tb.sent[rng.IntN(len(tb.sent))])
				}
			}
			res := e.push(t, tb.dev.token, batch...)
			for i, item := range batch {
				si := sentItem{item: item, status: res[i].Status, by: tb.dev.subject}
				if s, ok := item.(api.Submission); ok {
					si.sub = &s
					switch res[i].Status {
					case api.PushCreated, api.PushUpdated, api.PushUnchanged:
						learn(tb, s.ID, s, res[i].Rev, s.Data, s.Deleted)
					case api.PushMerged, api.PushConflict:
						learn(tb, s.ID, s, res[i].Current.Rev, res[i].Current.Data, res[i].Current.Deleted)
					}
				}
				sent = append(sent, si)
				tb.sent = append(tb.sent, item)
			}
			if rng.IntN(2) == 0 { // a sync window long enough to pull
				changes, next := e.pullAll(t, tb.dev.token, tb.cursor, 40)
				tb.cursor = next
				for _, r := range changes {
					learn(tb, r.ID, api.Submission{ID: r.ID, Form: r.Form, FormVersion: r.FormVersion}, r.Rev, r.Data, r.Deleted)
				}
			}
		}
	}

	// Now count.
	tally := map[string]int{}
	records := map[string]api.Record{}
	quarantined := e.quarantine(t, true)
	rejected := 0
	for i, si := range sent {
		tally[si.status]++
		switch si.status {
		case api.PushForbidden:
			t.Errorf("item %d: forbidden on a shared form", i)
			continue
		case api.PushRejected:
			rejected++
			raw := pushBody(t, si.item)
			var env struct{ Submissions []json.RawMessage }
			_ = json.Unmarshal(raw, &env)
			if _, ok := findQuarantined(t, quarantined, env.Submissions[0]); !ok {
				t.Errorf("item %d, rejected, is in no quarantine entry: %s", i, env.Submissions[0])
			}
			continue
		}
		s := si.sub
		rec, ok := records[s.ID]
		if !ok {
			rec = e.record(t, e.analyst, s.ID)
			records[s.ID] = rec
		}
		own := revOf(t, *s)
		found := slices.ContainsFunc(rec.Revs, func(r api.Revision) bool { return r.Rev == own })
		if !found {
			// An edit that changed nothing, or made what the record held: its
			// content is a revision the server already had.
			want := s.Data
			if s.Deleted {
				want = json.RawMessage("{}")
			}
			found = slices.ContainsFunc(rec.Revs, func(r api.Revision) bool {
				return r.Deleted == s.Deleted && (s.Deleted || sameJSON(t, r.Data, want))
			})
		}
		for _, c := range rec.Conflicts {
			found = found || slices.ContainsFunc(c.Values, func(v api.ConflictValue) bool { return v.Rev == own })
		}
		if !found {
			t.Errorf("item %d (%s, status %s, own rev %s) is nowhere in record %s", i, mustJSON(t, s), si.status, own, mustJSON(t, rec))
		}
	}
	attempts := 0
	for _, q := range quarantined {
		attempts += q.Attempts
	}
	if attempts != rejected {
		t.Errorf("quarantine holds %d attempts in %d entries; %d items were rejected", attempts, len(quarantined), rejected)
	}
	// No duplicate and no stray record: the project holds exactly the records
	// items were stored as.
	all, _ := e.pullAll(t, e.analyst, "", 1000)
	got := ids(all)
	if _, ok := records[e.oldRec]; !ok { // made by newSyncEnv; the tablets may have edited it
		records[e.oldRec] = api.Record{}
	}
	want := slices.Sorted(maps.Keys(records))
	slices.Sort(got)
	if !slices.Equal(got, want) {
		t.Errorf("the project holds %d records, the items made %d", len(got), len(want))
		for _, id := range want {
			if !slices.Contains(got, id) {
				t.Errorf("record %s is not in the analyst's pull: %s", id, mustJSON(t, records[id]))
			}
		}
	}
	t.Logf("%d items: %v; %d records, %d quarantine entries", len(sent), tally, len(records), len(quarantined))
	for _, st := range []string{api.PushCreated, api.PushUpdated, api.PushUnchanged, api.PushMerged, api.PushConflict, api.PushRejected} {
		if tally[st] == 0 {
			t.Errorf("the run produced no %s item: make it messier", st)
		}
	}
}

// TestQuarantine: one entry per distinct bad item, counted; resolved by a later
// good push of its record.
func TestQuarantine(t *testing.T) {
	e := newSyncEnv(t)
	bad := e.newSub("survey", `{"name": "Issa", "age": -3}`)
	for i := 0; i < 3; i++ {
		e.wantStatuses(t, e.push(t, e.devA.token, bad), api.PushRejected)
	}
	other := e.newSub("survey", `{"age": 5}`)
	e.wantStatuses(t, e.push(t, e.devB.token, other), api.PushRejected)

	list := e.quarantine(t, false)
	if len(list) != 2 {
		t.Fatalf("quarantine %s, want 2 entries", mustJSON(t, list))
	}
	q := list[0]
	if q.RecordID != bad.ID || q.Attempts != 3 || q.Form != "survey" || q.FormVersion != "1" || q.SubmittedBy != e.devA.subject ||
		q.LastSeen.Before(q.FirstSeen) || q.ResolvedAt != nil || len(q.Errors) != 1 || q.Errors[0].Path != "/data/age" {
		t.Errorf("entry %s", mustJSON(t, q))
	}
	var sub api.Submission
	if err := json.Unmarshal(q.Submission, &sub); err != nil || sub.ID != bad.ID || !sameJSON(t, sub.Data, bad.Data) {
		t.Errorf("entry's submission %s, want the item as pushed", q.Submission)
	}

	// Paging.
	var page api.QuarantineList
	e.ts.want(t, http.StatusOK, http.MethodGet, "/v1/projects/"+syncProject+"/quarantine?limit=1", e.analyst, nil, &page)
	if len(page.Items) != 1 || page.Next == "" {
		t.Fatalf("page 1: %s", mustJSON(t, page))
	}
	var page2 api.QuarantineList
	e.ts.want(t, http.StatusOK, http.MethodGet, "/v1/projects/"+syncProject+"/quarantine?limit=1&cursor="+url.QueryEscape(page.Next), e.analyst, nil, &page2)
	if len(page2.Items) != 1 || page2.Items[0].ID == page.Items[0].ID || page2.Next != "" {
		t.Errorf("page 2: %s", mustJSON(t, page2))
	}
	for _, bad := range []string{"cursor=nonsense", "resolved=maybe", "limit=0", "limit=1001"} {
		resp, body := e.ts.call(t, http.MethodGet, "/v1/projects/"+syncProject+"/quarantine?"+bad, e.analyst, nil)
		if resp.StatusCode != http.StatusBadRequest {
			t.Errorf("%s: %d %s", bad, resp.StatusCode, body)
		}
	}
	resp, body := e.ts.call(t, http.MethodGet, "/v1/projects/"+syncProject+"/quarantine?cursor=nonsense", e.analyst, nil)
	problemOf(t, resp, body, http.StatusBadRequest, "invalid_cursor")
	resp, body = e.ts.call(t, http.MethodGet, "/v1/projects/"+syncProject+"/quarantine", e.devA.token, nil)
	problemOf(t, resp, body, http.StatusForbidden, api.CodeForbidden)

	// Fixed on the tablet and pushed again: created, and the entry resolved.
	fixed := bad
	fixed.Data = json.RawMessage(`{"name": "Issa", "age": 3}`)
	e.wantStatuses(t, e.push(t, e.devA.token, fixed), api.PushCreated)
	list = e.quarantine(t, false)
	if len(list) != 1 || list[0].RecordID != other.ID {
		t.Errorf("after the fix, unresolved: %s", mustJSON(t, list))
	}
	all := e.quarantine(t, true)
	i := slices.IndexFunc(all, func(q api.QuarantineItem) bool { return q.RecordID == bad.ID })
	if len(all) != 2 || i < 0 || all[i].ResolvedAt == nil || all[i].Attempts != 3 {
		t.Errorf("with resolved=true: %s", mustJSON(t, all))
	}

	// A batch that stores a record and also holds a bad edit of it leaves the
	// bad edit listed: nothing resolves it but a later good push.
	x := e.newSub("survey", `{"name": "Moussa"}`)
	xBad := edit(x, revOf(t, x), `{"name": "Moussa", "age": -1}`, clockBase.Add(time.Minute))
	e.wantStatuses(t, e.push(t, e.devA.token, x, xBad), api.PushCreated, api.PushRejected)
	list = e.quarantine(t, false)
	if !slices.ContainsFunc(list, func(q api.QuarantineItem) bool { return q.RecordID == x.ID }) {
		t.Errorf("the bad edit pushed with its record's create is not listed: %s", mustJSON(t, list))
	}
	// The same bad item pushed again is the same entry, unresolved.
	e.wantStatuses(t, e.push(t, e.devA.token, xBad), api.PushRejected)
	list = e.quarantine(t, false)
	n := 0
	for _, q := range list {
		if q.RecordID == x.ID {
			n++
			if q.Attempts != 2 {
				t.Errorf("entry %s, want 2 attempts", mustJSON(t, q))
			}
		}
	}
	if n != 1 {
		t.Errorf("%d entries for the bad edit", n)
	}
}

// TestPull: order, paging, cursors, tombstones and who sees what.
func TestPull(t *testing.T) {
	e := newSyncEnv(t)
	var a []api.Submission
	for i := range 4 {
		a = append(a, e.newSub("survey", fmt.Sprintf(`{"name": "a%d"}`, i)))
	}
	var b []api.Submission
	for i := range 3 {
		b = append(b, e.newSub("survey", fmt.Sprintf(`{"name": "b%d"}`, i)))
	}
	h := e.newSub("household", `{"name": "shared"}`)
	ra := e.push(t, e.devA.token, a[0], a[1], a[2], a[3])
	e.push(t, e.devB.token, b[0], b[1], b[2])
	e.push(t, e.devA.token, h)
	e.wantStatuses(t, e.push(t, e.devA.token, tombstone(a[1], ra[1].Rev, clockBase.Add(time.Hour))), api.PushUpdated)

	// Commit order; a record appears once, where it was last written.
	wantOrder := []string{e.oldRec, a[0].ID, a[2].ID, a[3].ID, b[0].ID, b[1].ID, b[2].ID, h.ID, a[1].ID}
	var pages []api.PullResponse
	since := ""
	for {
		p := e.pull(t, e.analyst, since, 3)
		pages = append(pages, p)
		since = p.Next
		if !p.More {
			break
		}
		if len(pages) > 10 {
			t.Fatal("no end")
		}
	}
	var got []api.Record
	var more []bool
	for _, p := range pages {
		got = append(got, p.Changes...)
		more = append(more, p.More)
		if len(p.Changes) > 3 {
			t.Errorf("a page of %d with limit 3", len(p.Changes))
		}
	}
	if !slices.Equal(ids(got), wantOrder) || !slices.Equal(more, []bool{true, true, false}) {
		t.Fatalf("pulled %v (more %v), want %v", ids(got), more, wantOrder)
	}
	if last := got[len(got)-1]; !last.Deleted || last.Rev == ra[1].Rev {
		t.Errorf("the tombstone: %s", mustJSON(t, last))
	}
	// The cursor is opaque and stable: the same page again, and nothing after the end.
	if _, err := strconv.ParseInt(pages[0].Next, 10, 64); err == nil {
		t.Errorf("cursor %q is a bare number", pages[0].Next)
	}
	again := e.pull(t, e.analyst, pages[0].Next, 3)
	if !slices.Equal(ids(again.Changes), ids(pages[1].Changes)) || again.Next != pages[1].Next || again.More != pages[1].More {
		t.Errorf("page 2 again: %v %s, first time %v %s", ids(again.Changes), again.Next, ids(pages[1].Changes), pages[1].Next)
	}
	end := e.pull(t, e.analyst, since, 3)
	if len(end.Changes) != 0 || end.More || end.Next != since {
		t.Errorf("after the end: %s", mustJSON(t, end))
	}
	// The admin (a manager) sees everything too.
	if all, _ := e.pullAll(t, e.admin, "", 0); !slices.Equal(ids(all), wantOrder) {
		t.Errorf("admin pulled %v", ids(all))
	}

	// Tablets see their own records and the shared form's.
	gotA, cursorA := e.pullAll(t, e.devA.token, "", 2)
	if want := []string{e.oldRec, a[0].ID, a[2].ID, a[3].ID, h.ID, a[1].ID}; !slices.Equal(ids(gotA), want) {
		t.Errorf("tablet A pulled %v, want %v", ids(gotA), want)
	}
	gotB, cursorB := e.pullAll(t, e.devB.token, "", 2)
	if want := []string{b[0].ID, b[1].ID, b[2].ID, h.ID}; !slices.Equal(ids(gotB), want) {
		t.Errorf("tablet B pulled %v, want %v", ids(gotB), want)
	}
	// Nothing new: B's next pull is empty.
	if p := e.pull(t, e.devB.token, cursorB, 0); len(p.Changes) != 0 || p.More {
		t.Errorf("B's idle pull: %s", mustJSON(t, p))
	}
	// One of A's records handed to B comes with B's next pull, and only it.
	var patched api.Record
	e.ts.want(t, http.StatusOK, http.MethodPatch, recordPath(a[2].ID), e.analyst, api.RecordPatch{AssignedTo: &[]string{e.devB.subject}}, &patched)
	if !slices.Equal(patched.AssignedTo, []string{e.devB.subject}) || patched.Rev != ra[2].Rev {
		t.Errorf("patched %s", mustJSON(t, patched))
	}
	newB, _ := e.pullAll(t, e.devB.token, cursorB, 0)
	if !slices.Equal(ids(newB), []string{a[2].ID}) || !slices.Equal(newB[0].AssignedTo, []string{e.devB.subject}) {
		t.Errorf("B's pull after the assignment: %s", mustJSON(t, newB))
	}
	// A sees its record move too (it changed), and only that.
	if newA, _ := e.pullAll(t, e.devA.token, cursorA, 0); !slices.Equal(ids(newA), []string{a[2].ID}) {
		t.Errorf("A's pull after the assignment: %v", ids(newA))
	}

	for _, tc := range []struct{ query, code string }{
		{"since=nonsense", "invalid_cursor"},
		{"since=" + base64.RawURLEncoding.EncodeToString([]byte("c2xxxxxxxx")), "invalid_cursor"},
		{"limit=0", "invalid_limit"},
		{"limit=1001", "invalid_limit"},
		{"limit=ten", "invalid_limit"},
	} {
		resp, body := e.ts.call(t, http.MethodGet, "/v1/projects/"+syncProject+"/sync/pull?"+tc.query, e.devA.token, nil)
		problemOf(t, resp, body, http.StatusBadRequest, tc.code)
	}
}

// TestRecordAnalystRoutes: read with history, correct, resolve, review, assign,
// and the per-form listing.
func TestRecordAnalystRoutes(t *testing.T) {
	e := newSyncEnv(t)
	s := e.newSub("survey", `{"name": "Awa", "age": 20}`)
	r1 := e.push(t, e.devA.token, s)[0].Rev
	r2 := e.push(t, e.devA.token, edit(s, r1, `{"name": "Awa", "age": 21}`, clockBase.Add(time.Hour)))[0].Rev
	r3 := e.push(t, e.devA.token, edit(s, r2, `{"name": "Awa", "age": 22}`, clockBase.Add(2*time.Hour)))[0].Rev

	t.Run("get", func(t *testing.T) {
		rec := e.record(t, e.analyst, s.ID)
		var revs, parents []string
		for _, r := range rec.Revs {
			revs, parents = append(revs, r.Rev), append(parents, r.Parent)
		}
		if rec.Rev != r3 || !slices.Equal(revs, []string{r1, r2, r3}) || !slices.Equal(parents, []string{"", r1, r2}) {
			t.Errorf("history %v parents %v", revs, parents)
		}
		var plain api.Record
		e.ts.want(t, http.StatusOK, http.MethodGet, recordPath(s.ID), e.analyst, nil, &plain)
		if plain.Revs != nil {
			t.Errorf("revs without ?revs=true")
		}
		resp, body := e.ts.call(t, http.MethodGet, recordPath(s.ID)+"?revs=maybe", e.analyst, nil)
		problemOf(t, resp, body, http.StatusBadRequest, "invalid_query")
		resp, body = e.ts.call(t, http.MethodGet, recordPath(uuid.NewString()), e.analyst, nil)
		problemOf(t, resp, body, http.StatusNotFound, "record_not_found")
		// The tablet that made it reads it too; the other does not.
		e.record(t, e.devA.token, s.ID)
		resp, body = e.ts.call(t, http.MethodGet, recordPath(s.ID), e.devB.token, nil)
		problemOf(t, resp, body, http.StatusNotFound, "record_not_found")
	})

	var corrected api.Record
	t.Run("correct", func(t *testing.T) {
		put := func(ifMatch string, data string) (*http.Response, []byte) {
			req := e.ts.newRequest(t, http.MethodPut, recordPath(s.ID), `{"data": `+data+`}`)
			req.Header.Set("Content-Type", "application/json")
			req.Header.Set("Authorization", "Bearer "+e.analyst)
			if ifMatch != "" {
				req.Header.Set("If-Match", ifMatch)
			}
			return e.ts.do(t, req)
		}
		resp, body := put("", `{"name": "Awa", "age": 23}`)
		problemOf(t, resp, body, http.StatusPreconditionRequired, "if_match_required")
		resp, body = put(`"`+r2+`"`, `{"name": "Awa", "age": 23}`)
		p := problemOf(t, resp, body, http.StatusPreconditionFailed, "rev_mismatch")
		if !strings.Contains(p.Detail, r3) {
			t.Errorf("412 detail %q does not name the current rev", p.Detail)
		}
		resp, body = put(`"`+r3+`"`, `{"name": "Awa", "age": -23}`)
		p = problemOf(t, resp, body, http.StatusUnprocessableEntity, "invalid_data")
		if len(p.Errors) != 1 || p.Errors[0].Path != "/data/age" {
			t.Errorf("422 findings %s", mustJSON(t, p.Errors))
		}
		resp, body = put(`"`+r3+`"`, `{"name": "Awa", "age": 23, "village": "Kora"}`)
		if resp.StatusCode != http.StatusOK {
			t.Fatalf("PUT: %d %s", resp.StatusCode, body)
		}
		_ = json.Unmarshal(body, &corrected)
		if !strings.HasPrefix(corrected.Rev, "4-") || resp.Header.Get("ETag") != `"`+corrected.Rev+`"` || dataOf(t, corrected.Data)["age"] != 23.0 {
			t.Errorf("corrected %s, ETag %s", mustJSON(t, corrected), resp.Header.Get("ETag"))
		}
		rec := e.record(t, e.analyst, s.ID)
		if last := rec.Revs[len(rec.Revs)-1]; last.Rev != corrected.Rev || last.Parent != r3 || last.CreatedBy != "ana" {
			t.Errorf("the correction in the history: %s", mustJSON(t, last))
		}
		// The same correction again, from the old rev: 412. Unquoted If-Match works.
		resp, body = put(`"`+r3+`"`, `{"name": "Awa", "age": 23, "village": "Kora"}`)
		problemOf(t, resp, body, http.StatusPreconditionFailed, "rev_mismatch")
		resp, body = put(corrected.Rev, `{"name": "Awa", "age": 24, "village": "Kora"}`)
		if resp.StatusCode != http.StatusOK {
			t.Fatalf("PUT with an unquoted If-Match: %d %s", resp.StatusCode, body)
		}
		_ = json.Unmarshal(body, &corrected)
		// Tablets may not correct, and a missing record is 404.
		resp, body = e.ts.call(t, http.MethodPut, recordPath(s.ID), e.devA.token, api.RecordPut{Data: json.RawMessage(`{"name": "x"}`)})
		problemOf(t, resp, body, http.StatusForbidden, api.CodeForbidden)
		req := e.ts.newRequest(t, http.MethodPut, recordPath(uuid.NewString()), `{"data": {"name": "x"}}`)
		req.Header.Set("Authorization", "Bearer "+e.analyst)
		req.Header.Set("If-Match", `"`+r1+`"`)
		resp, body = e.ts.do(t, req)
		problemOf(t, resp, body, http.StatusNotFound, "record_not_found")

		// The tablet, still on r3, edits another field: it merges with the correction.
		res := e.push(t, e.devA.token, edit(s, r3, `{"name": "Awa", "age": 22, "notes": "from the field"}`, clockBase.Add(3*time.Hour)))
		e.wantStatuses(t, res, api.PushMerged)
		d := dataOf(t, res[0].Current.Data)
		if d["age"] != 24.0 || d["village"] != "Kora" || d["notes"] != "from the field" {
			t.Errorf("the tablet's edit against the correction: %s", res[0].Current.Data)
		}
	})

	t.Run("resolve", func(t *testing.T) {
		h := e.newSub("household", `{"name": "Fati", "age": 40}`)
		h1 := e.push(t, e.devA.token, h)[0].Rev
		e.push(t, e.devA.token, edit(h, h1, `{"name": "Fati", "age": 41}`, clockBase.Add(time.Hour)))
		e.wantStatuses(t, e.push(t, e.devB.token, edit(h, h1, `{"name": "Fati", "age": 42}`, clockBase.Add(2*time.Hour))), api.PushConflict)
		rec := e.record(t, e.analyst, h.ID)
		if len(rec.Conflicts) != 1 {
			t.Fatalf("no conflict to resolve: %s", mustJSON(t, rec))
		}
		path := recordPath(h.ID) + "/resolve"
		resp, body := e.ts.call(t, http.MethodPost, path, e.analyst, api.ResolveRequest{Rev: h1, Data: json.RawMessage(`{"name": "Fati", "age": 41}`)})
		problemOf(t, resp, body, http.StatusPreconditionFailed, "rev_mismatch")
		resp, body = e.ts.call(t, http.MethodPost, path, e.analyst, `{"data": {"name": "Fati", "age": 41}}`)
		problemOf(t, resp, body, http.StatusUnprocessableEntity, "invalid_resolution")
		resp, body = e.ts.call(t, http.MethodPost, path, e.analyst, api.ResolveRequest{Rev: rec.Rev, Data: json.RawMessage(`{"age": 41}`)})
		problemOf(t, resp, body, http.StatusUnprocessableEntity, "invalid_data")
		resp, body = e.ts.call(t, http.MethodPost, path, e.devA.token, api.ResolveRequest{Rev: rec.Rev, Data: json.RawMessage(`{"name": "Fati", "age": 41}`)})
		problemOf(t, resp, body, http.StatusForbidden, api.CodeForbidden)

		var settled api.Record
		resp, body = e.ts.call(t, http.MethodPost, path, e.analyst, api.ResolveRequest{Rev: rec.Rev, Data: json.RawMessage(`{"name": "Fati", "age": 41}`)})
		if resp.StatusCode != http.StatusOK {
			t.Fatalf("resolve: %d %s", resp.StatusCode, body)
		}
		_ = json.Unmarshal(body, &settled)
		if len(settled.Conflicts) != 0 || settled.Rev == rec.Rev || dataOf(t, settled.Data)["age"] != 41.0 || resp.Header.Get("ETag") != `"`+settled.Rev+`"` {
			t.Errorf("settled %s", mustJSON(t, settled))
		}
		after := e.record(t, e.analyst, h.ID)
		// Every edit is still in the history: the create, A's edit, B's edit (a
		// side revision), the merge it made and the resolution.
		if len(after.Conflicts) != 0 || len(after.Revs) != 5 || after.Revs[len(after.Revs)-1].Rev != settled.Rev {
			t.Errorf("after resolving: %s", mustJSON(t, after))
		}
		// The tablets get the settled record with their next pull.
		if got, _ := e.pullAll(t, e.devB.token, "", 0); !slices.ContainsFunc(got, func(r api.Record) bool { return r.ID == h.ID && r.Rev == settled.Rev }) {
			t.Errorf("B's pull misses the settled record")
		}

		// A clash of a deletion and an edit, settled in favour of the deletion.
		g := e.newSub("household", `{"name": "Gorom"}`)
		g1 := e.push(t, e.devA.token, g)[0].Rev
		e.push(t, e.devA.token, edit(g, g1, `{"name": "Gorom", "age": 9}`, clockBase.Add(2*time.Hour)))
		e.wantStatuses(t, e.push(t, e.devB.token, tombstone(g, g1, clockBase.Add(time.Hour))), api.PushConflict)
		rec = e.record(t, e.analyst, g.ID)
		e.ts.want(t, http.StatusOK, http.MethodPost, recordPath(g.ID)+"/resolve", e.analyst, api.ResolveRequest{Rev: rec.Rev, Deleted: true}, &settled)
		if !settled.Deleted || len(settled.Conflicts) != 0 {
			t.Errorf("settled with the deletion: %s", mustJSON(t, settled))
		}

		// Once settled there is nothing to resolve: a second resolve is a 409,
		// not a revision made for nothing.
		resp, body = e.ts.call(t, http.MethodPost, recordPath(g.ID)+"/resolve", e.analyst, api.ResolveRequest{Rev: settled.Rev, Deleted: true})
		problemOf(t, resp, body, http.StatusConflict, "no_conflicts")
	})

	t.Run("review and assign", func(t *testing.T) {
		var rec api.Record
		e.ts.want(t, http.StatusOK, http.MethodPatch, recordPath(s.ID), e.analyst,
			api.RecordPatch{ReviewState: new(api.ReviewHasIssues), Comment: new("age looks wrong")}, &rec)
		if rec.ReviewState != api.ReviewHasIssues || rec.ReviewComment != "age looks wrong" || len(rec.AssignedTo) != 0 {
			t.Errorf("patched %s", mustJSON(t, rec))
		}
		before := rec.Rev
		e.ts.want(t, http.StatusOK, http.MethodPatch, recordPath(s.ID), e.analyst,
			api.RecordPatch{AssignedTo: &[]string{"ana", e.devB.subject}}, &rec)
		if rec.ReviewState != api.ReviewHasIssues || !slices.Equal(rec.AssignedTo, []string{"ana", e.devB.subject}) || rec.Rev != before {
			t.Errorf("assigned %s", mustJSON(t, rec))
		}
		resp, body := e.ts.call(t, http.MethodPatch, recordPath(s.ID), e.analyst, `{"review_state": "great"}`)
		problemOf(t, resp, body, http.StatusUnprocessableEntity, "invalid_patch")
		resp, body = e.ts.call(t, http.MethodPatch, recordPath(s.ID), e.analyst, `{"assigned_to": [""]}`)
		problemOf(t, resp, body, http.StatusUnprocessableEntity, "invalid_patch")
		resp, body = e.ts.call(t, http.MethodPatch, recordPath(s.ID), e.analyst, `{"reviewstate": "approved"}`)
		problemOf(t, resp, body, http.StatusBadRequest, api.CodeBadJSON)
		resp, body = e.ts.call(t, http.MethodPatch, recordPath(uuid.NewString()), e.analyst, `{"review_state": "approved"}`)
		problemOf(t, resp, body, http.StatusNotFound, "record_not_found")
		resp, body = e.ts.call(t, http.MethodPatch, recordPath(s.ID), e.devA.token, `{"review_state": "approved"}`)
		problemOf(t, resp, body, http.StatusForbidden, api.CodeForbidden)
		// The review survives the tablet's next edit.
		res := e.push(t, e.devA.token, edit(s, rec.Rev, `{"name": "Awa", "age": 25, "village": "Kora", "notes": "from the field"}`, clockBase.Add(5*time.Hour)))
		e.wantStatuses(t, res, api.PushUpdated)
		rec = e.record(t, e.analyst, s.ID)
		if rec.ReviewState != api.ReviewHasIssues || len(rec.AssignedTo) != 2 {
			t.Errorf("the tablet's edit lost the review: %s", mustJSON(t, rec))
		}
	})

	t.Run("form records", func(t *testing.T) {
		for range 3 {
			e.push(t, e.devB.token, e.newSub("survey", `{"name": "more"}`))
		}
		var all []string
		cursor := ""
		for {
			var page api.RecordPage
			e.ts.want(t, http.StatusOK, http.MethodGet, "/v1/projects/"+syncProject+"/forms/survey/records?limit=2&cursor="+url.QueryEscape(cursor), e.analyst, nil, &page)
			for _, r := range page.Records {
				if r.Form != "survey" {
					t.Errorf("a %s record in the survey listing", r.Form)
				}
				all = append(all, r.ID)
			}
			if page.Next == "" {
				break
			}
			cursor = page.Next
		}
		if len(all) != 4 || all[0] != s.ID {
			t.Errorf("survey records %v", all)
		}
		resp, body := e.ts.call(t, http.MethodGet, "/v1/projects/"+syncProject+"/forms/nosuchform/records", e.analyst, nil)
		problemOf(t, resp, body, http.StatusNotFound, "form_not_found")
		resp, body = e.ts.call(t, http.MethodGet, "/v1/projects/"+syncProject+"/forms/survey/records?cursor=zzz", e.analyst, nil)
		problemOf(t, resp, body, http.StatusBadRequest, "invalid_cursor")
		resp, body = e.ts.call(t, http.MethodGet, "/v1/projects/"+syncProject+"/forms/survey/records", e.devA.token, nil)
		problemOf(t, resp, body, http.StatusForbidden, api.CodeForbidden)
	})
}

// TestSyncClientMethods drives the routes through api.Client, as fsctl and
// scripts do.
func TestSyncClientMethods(t *testing.T) {
	e := newSyncEnv(t)
	ctx := context.Background()
	dev := e.ts.apiClient(t, api.WithToken(e.devA.token), api.WithGzipRequests(512))
	ana := e.ts.apiClient(t, api.WithToken(e.analyst))

	s := e.newSub("survey", `{"name": "via client"}`)
	pr, err := dev.Push(ctx, syncProject, []api.Submission{s})
	if err != nil || pr.Results[0].Status != api.PushCreated {
		t.Fatalf("Push: %v %+v", err, pr)
	}
	pull, err := dev.Pull(ctx, syncProject, "", 1)
	if err != nil || len(pull.Changes) != 1 || !pull.More {
		t.Fatalf("Pull: %v %+v", err, pull)
	}
	if _, err := dev.Pull(ctx, syncProject, "bogus", 0); !api.IsCode(err, "invalid_cursor") {
		t.Errorf("Pull with a bad cursor: %v", err)
	}
	rec, err := ana.GetRecord(ctx, syncProject, s.ID, true)
	if err != nil || len(rec.Revs) != 1 {
		t.Fatalf("GetRecord: %v %+v", err, rec)
	}
	fixed, err := ana.CorrectRecord(ctx, syncProject, s.ID, rec.Rev, json.RawMessage(`{"name": "corrected"}`))
	if err != nil || fixed.Rev == rec.Rev {
		t.Fatalf("CorrectRecord: %v %+v", err, fixed)
	}
	if _, err := ana.CorrectRecord(ctx, syncProject, s.ID, rec.Rev, json.RawMessage(`{"name": "again"}`)); !api.IsCode(err, "rev_mismatch") {
		t.Errorf("stale CorrectRecord: %v", err)
	}
	// A record without conflicts has nothing to resolve.
	if _, err := ana.ResolveRecord(ctx, syncProject, s.ID, api.ResolveRequest{Rev: fixed.Rev, Data: json.RawMessage(`{"name": "settled"}`)}); !api.IsCode(err, "no_conflicts") {
		t.Errorf("ResolveRecord without conflicts: %v", err)
	}
	if p, err := ana.PatchRecord(ctx, syncProject, s.ID, api.RecordPatch{ReviewState: new(api.ReviewApproved)}); err != nil || p.ReviewState != api.ReviewApproved {
		t.Errorf("PatchRecord: %v %+v", err, p)
	}
	if _, err := dev.Push(ctx, syncProject, []api.Submission{e.newSub("survey", `{}`)}); err != nil {
		t.Fatal(err)
	}
	q, err := ana.ListQuarantine(ctx, syncProject, api.QuarantineQuery{Limit: 10})
	if err != nil || len(q.Items) != 1 {
		t.Errorf("ListQuarantine: %v %+v", err, q)
	}
	page, err := ana.ListFormRecords(ctx, syncProject, "survey", "", 10)
	if err != nil || len(page.Records) != 1 || page.Next != "" {
		t.Errorf("ListFormRecords: %v %+v", err, page)
	}
}

// TestConcurrentWritesKeepingTheRev: writes that leave a record's rev as it is
// (a conflict entry under policy reject, a review) are as safe under
// concurrency as edits: five tablets pushing stale edits at once leave five
// conflict entries, and a review racing a push is never undone by it.
func TestConcurrentWritesKeepingTheRev(t *testing.T) {
	e := newSyncEnv(t)
	devs := []device{e.devB, e.enroll(t, "tablet C"), e.enroll(t, "tablet D"), e.enroll(t, "tablet E"), e.enroll(t, "tablet F")}
	for round := range 4 {
		s := e.newSub("strict", `{"name": "base"}`)
		r1 := e.push(t, e.devA.token, s)[0].Rev
		e.wantStatuses(t, e.push(t, e.devA.token, edit(s, r1, `{"name": "A"}`, clockBase.Add(time.Hour))), api.PushUpdated)
		var wg sync.WaitGroup
		for i, d := range devs {
			wg.Add(1)
			go func() {
				defer wg.Done()
				e.wantStatuses(t, e.push(t, d.token, edit(s, r1, fmt.Sprintf(`{"name": "tablet %d"}`, i), clockBase.Add(2*time.Hour))), api.PushConflict)
			}()
		}
		wg.Wait()
		if rec := e.record(t, e.analyst, s.ID); len(rec.Conflicts) != len(devs) || dataOf(t, rec.Data)["name"] != "A" {
			t.Errorf("round %d: %d conflict entries for %d stale edits: %s", round, len(rec.Conflicts), len(devs), mustJSON(t, rec.Conflicts))
		}
	}
	for round := range 8 {
		s := e.newSub("household", `{"name": "base"}`)
		r1 := e.push(t, e.devA.token, s)[0].Rev
		var wg sync.WaitGroup
		wg.Add(2)
		go func() {
			defer wg.Done()
			e.wantStatuses(t, e.push(t, e.devA.token, edit(s, r1, `{"name": "A"}`, clockBase.Add(time.Hour))), api.PushUpdated)
		}()
		go func() {
			defer wg.Done()
			e.ts.want(t, http.StatusOK, http.MethodPatch, recordPath(s.ID), e.analyst,
				api.RecordPatch{ReviewState: new(api.ReviewApproved), AssignedTo: &[]string{e.devB.subject}}, nil)
		}()
		wg.Wait()
		rec := e.record(t, e.analyst, s.ID)
		if rec.ReviewState != api.ReviewApproved || len(rec.AssignedTo) != 1 || dataOf(t, rec.Data)["name"] != "A" {
			t.Errorf("round %d: review or edit lost: %s", round, mustJSON(t, rec))
		}
	}
}
