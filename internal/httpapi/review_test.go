package httpapi

import (
	"context"
	"encoding/json"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/google/uuid"

	"github.com/fieldsync/fieldsync/api"
)

func commentsPath(id string) string { return recordPath(id) + "/comments" }

// comments reads a record's whole review thread as token's caller, in pages
// of limit.
func (e *syncEnv) comments(t testing.TB, token, id string, limit int) []api.Comment {
	t.Helper()
	var out []api.Comment
	cursor := ""
	for range 100 {
		path := commentsPath(id) + "?limit=" + itoa(limit)
		if cursor != "" {
			path += "&cursor=" + cursor
		}
		var page api.CommentList
		e.ts.want(t, http.StatusOK, http.MethodGet, path, token, nil, &page)
		if len(page.Items) > limit {
			t.Fatalf("a page of %d comments, limit %d", len(page.Items), limit)
		}
		out = append(out, page.Items...)
		if page.Next == "" {
			return out
		}
		cursor = page.Next
	}
	t.Fatal("comments: more than 100 pages")
	return nil
}

func itoa(n int) string { b, _ := json.Marshal(n); return string(b) }

// TestReviewThread: comments are a thread with author and time, not one field
// that the next review overwrites; every review-state change is in it too,
// whether made by PATCH or with a comment, with who and when. The record
// shows the latest comment.
func TestReviewThread(t *testing.T) {
	e := newSyncEnv(t)
	s := e.newSub("survey", `{"name": "Amina"}`)
	e.wantStatuses(t, e.push(t, e.devA.token, s), api.PushCreated)
	hasIssues, approved, rejected := api.ReviewHasIssues, api.ReviewApproved, api.ReviewRejected
	first, fixed := "Village name misspelt", "Fixed with the team"

	start := time.Now().UTC().Add(-time.Second)
	e.ts.want(t, http.StatusOK, http.MethodPatch, recordPath(s.ID), e.analyst, api.RecordPatch{ReviewState: &hasIssues, Comment: &first}, nil)
	var added api.Comment
	e.ts.want(t, http.StatusCreated, http.MethodPost, commentsPath(s.ID), e.admin, api.CommentRequest{Text: fixed, ReviewState: &approved}, &added)
	if added.Author != "admin" || added.Text != fixed || added.ReviewState != approved || added.PreviousState != hasIssues || added.ID == "" {
		t.Errorf("POST comments answered %s", mustJSON(t, added))
	}
	// A state change without a comment, and a comment without a state change.
	e.ts.want(t, http.StatusOK, http.MethodPatch, recordPath(s.ID), e.analyst, api.RecordPatch{ReviewState: &rejected}, nil)
	e.ts.want(t, http.StatusCreated, http.MethodPost, commentsPath(s.ID), e.analyst, api.CommentRequest{Text: "second look"}, nil)
	// A patch that changes nothing of the review adds nothing.
	e.ts.want(t, http.StatusOK, http.MethodPatch, recordPath(s.ID), e.analyst, api.RecordPatch{ReviewState: &rejected, AssignedTo: &[]string{"ana"}}, nil)

	want := []api.Comment{
		{Author: "ana", Text: first, ReviewState: hasIssues, PreviousState: api.ReviewReceived},
		{Author: "admin", Text: fixed, ReviewState: approved, PreviousState: hasIssues},
		{Author: "ana", Text: "", ReviewState: rejected, PreviousState: approved},
		{Author: "ana", Text: "second look", ReviewState: rejected},
	}
	for _, limit := range []int{1, 3, 100} {
		got := e.comments(t, e.analyst, s.ID, limit)
		if len(got) != len(want) {
			t.Fatalf("thread in pages of %d: %s, want %d entries", limit, mustJSON(t, got), len(want))
		}
		for i, g := range got {
			w := want[i]
			w.ID, w.CreatedAt = g.ID, g.CreatedAt
			if g != w {
				t.Errorf("entry %d: %s, want %s", i, mustJSON(t, g), mustJSON(t, w))
			}
			if g.CreatedAt.Before(start) || g.CreatedAt.After(time.Now().Add(time.Second)) {
				t.Errorf("entry %d: created_at %v", i, g.CreatedAt)
			}
			if i > 0 && g.CreatedAt.Before(got[i-1].CreatedAt) {
				t.Errorf("entry %d is older than the one before", i)
			}
		}
	}
	// The record keeps showing the latest comment.
	if rec := e.record(t, e.analyst, s.ID); rec.ReviewComment != "second look" || rec.ReviewState != rejected {
		t.Errorf("record review_comment %q, review_state %q", rec.ReviewComment, rec.ReviewState)
	}
	// A manager reads the thread too; the api client speaks it.
	cl := e.ts.apiClient(t, api.WithToken(e.admin))
	list, err := cl.ListComments(context.Background(), syncProject, s.ID, api.Page{Limit: 2})
	if err != nil || len(list.Items) != 2 || list.Next == "" {
		t.Errorf("ListComments: %v %s", err, mustJSON(t, list))
	}
	if c, err := cl.AddComment(context.Background(), syncProject, s.ID, api.CommentRequest{Text: "by the client"}); err != nil || c.Text != "by the client" {
		t.Errorf("AddComment: %v %s", err, mustJSON(t, c))
	}
}

// TestReviewThreadRefusals: what a client can get wrong answers a clear
// problem and adds nothing to the thread.
func TestReviewThreadRefusals(t *testing.T) {
	e := newSyncEnv(t)
	s := e.newSub("survey", `{"name": "Amina"}`)
	e.wantStatuses(t, e.push(t, e.devA.token, s), api.PushCreated)
	long := strings.Repeat("é", api.MaxCommentChars+1)
	bad := "maybe"

	resp, body := e.ts.call(t, http.MethodPost, commentsPath(s.ID), e.analyst, api.CommentRequest{Text: long})
	p := problemOf(t, resp, body, http.StatusUnprocessableEntity, "invalid_comment")
	if len(p.Errors) != 1 || p.Errors[0].Path != "/text" || !strings.Contains(p.Title, "4000") {
		t.Errorf("too long: %s", body)
	}
	resp, body = e.ts.call(t, http.MethodPatch, recordPath(s.ID), e.analyst, api.RecordPatch{Comment: &long})
	p = problemOf(t, resp, body, http.StatusUnprocessableEntity, "invalid_patch")
	if len(p.Errors) != 1 || p.Errors[0].Path != "/comment" {
		t.Errorf("too long in a PATCH: %s", body)
	}
	resp, body = e.ts.call(t, http.MethodPost, commentsPath(s.ID), e.analyst, api.CommentRequest{Text: "  "})
	problemOf(t, resp, body, http.StatusUnprocessableEntity, "invalid_comment")
	resp, body = e.ts.call(t, http.MethodPost, commentsPath(s.ID), e.analyst, api.CommentRequest{Text: "x", ReviewState: &bad})
	problemOf(t, resp, body, http.StatusUnprocessableEntity, "invalid_comment")
	resp, body = e.ts.call(t, http.MethodPost, commentsPath(s.ID), e.analyst, `{"text": "x", "mood": "grumpy"}`)
	if resp.StatusCode != http.StatusBadRequest {
		t.Errorf("unknown field: %d %s", resp.StatusCode, body)
	}
	resp, body = e.ts.call(t, http.MethodPost, commentsPath(uuid.NewString()), e.analyst, api.CommentRequest{Text: "x"})
	problemOf(t, resp, body, http.StatusNotFound, "record_not_found")
	resp, body = e.ts.call(t, http.MethodGet, commentsPath(uuid.NewString()), e.analyst, nil)
	problemOf(t, resp, body, http.StatusNotFound, "record_not_found")
	resp, body = e.ts.call(t, http.MethodGet, commentsPath(s.ID)+"?cursor=not-ours", e.analyst, nil)
	problemOf(t, resp, body, http.StatusBadRequest, "invalid_cursor")
	resp, body = e.ts.call(t, http.MethodGet, commentsPath(s.ID)+"?limit=0", e.analyst, nil)
	problemOf(t, resp, body, http.StatusBadRequest, "invalid_limit")

	if got := e.comments(t, e.analyst, s.ID, 10); len(got) != 0 {
		t.Errorf("refused comments are in the thread: %s", mustJSON(t, got))
	}
	// Exactly the limit is fine.
	e.ts.want(t, http.StatusCreated, http.MethodPost, commentsPath(s.ID), e.analyst, api.CommentRequest{Text: long[:len(long)-2]}, nil)
}

// TestDeviceNames: people see the name of the tablet beside its id, on a
// record and on the pages of both feeds; a tablet's pull carries ids only.
func TestDeviceNames(t *testing.T) {
	e := newSyncEnv(t)
	devC := e.enroll(t, "tablet C")
	a, b, c := e.newSub("household", `{"name": "a"}`), e.newSub("household", `{"name": "b"}`), e.newSub("household", `{"name": "c"}`)
	e.wantStatuses(t, e.push(t, e.devA.token, a), api.PushCreated)
	e.wantStatuses(t, e.push(t, e.devB.token, b), api.PushCreated)
	e.wantStatuses(t, e.push(t, devC.token, c), api.PushCreated)
	names := map[string]string{e.devA.id: "tablet A", e.devB.id: "tablet B", devC.id: "tablet C"}

	if rec := e.record(t, e.analyst, a.ID); rec.DeviceID != e.devA.id || rec.DeviceName != "tablet A" {
		t.Errorf("GET record: device %q named %q", rec.DeviceID, rec.DeviceName)
	}
	check := func(what string, recs []api.Record, named bool) {
		t.Helper()
		seen := 0
		for _, r := range recs {
			want, ok := names[r.DeviceID]
			if !ok {
				continue
			}
			seen++
			if !named {
				want = ""
			}
			if r.DeviceName != want {
				t.Errorf("%s: record of %s named %q, want %q", what, r.DeviceID, r.DeviceName, want)
			}
		}
		if seen < 3 {
			t.Errorf("%s: %d records of the three tablets", what, seen)
		}
	}
	// Pages of one record (looked up one by one) and of all (one list read).
	for _, limit := range []int{1, 100} {
		recs, _ := e.pullAll(t, e.analyst, "", limit)
		check("analyst's pull", recs, true)
	}
	var page api.RecordPage
	e.ts.want(t, http.StatusOK, http.MethodGet, "/v1/projects/"+syncProject+"/forms/household/records", e.analyst, nil, &page)
	check("form records", page.Records, true)
	recs, _ := e.pullAll(t, e.devA.token, "", 100)
	check("tablet's pull", recs, false)
	// The answer to a PATCH names it too.
	state := api.ReviewApproved
	var patched api.Record
	e.ts.want(t, http.StatusOK, http.MethodPatch, recordPath(b.ID), e.analyst, api.RecordPatch{ReviewState: &state}, &patched)
	if patched.DeviceName != "tablet B" {
		t.Errorf("PATCH answer: device_name %q", patched.DeviceName)
	}
}

// auditOf returns the project's audit events of one type, newest first, as
// GET /v1/audit answers an admin.
func (e *syncEnv) auditOf(t testing.TB, typ string) []api.AuditEvent {
	t.Helper()
	var list api.AuditList
	e.ts.want(t, http.StatusOK, http.MethodGet, "/v1/audit?project="+syncProject+"&type="+typ, e.admin, nil, &list)
	return list.Events
}

// TestDataAudit: corrections, resolutions, review changes, assignments,
// comments and deletions (by push and by resolution) are in the audit log,
// each with who, the project and the record, and never with answers.
func TestDataAudit(t *testing.T) {
	e := newSyncEnv(t)
	secret := "Secret-Answer-42"
	s := e.newSub("survey", `{"name": "`+secret+`"}`)
	r1 := e.push(t, e.devA.token, s)[0].Rev

	one := func(typ, actor, subject string, detail map[string]string) {
		t.Helper()
		events := e.auditOf(t, typ)
		if len(events) != 1 {
			t.Fatalf("%s: %d events, want 1: %s", typ, len(events), mustJSON(t, events))
		}
		ev := events[0]
		if ev.Actor != actor || ev.Project != syncProject || ev.Subject != subject || ev.RemoteAddr == "" {
			t.Errorf("%s: %s, want actor %s, subject %s", typ, mustJSON(t, ev), actor, subject)
		}
		for k, v := range detail {
			if ev.Detail[k] != v {
				t.Errorf("%s: detail %s=%q, want %q", typ, k, ev.Detail[k], v)
			}
		}
		if strings.Contains(mustJSON(t, ev), secret) {
			t.Errorf("%s: the event holds an answer: %s", typ, mustJSON(t, ev))
		}
	}

	// A correction.
	req := e.ts.newRequest(t, http.MethodPut, recordPath(s.ID), `{"data": {"name": "`+secret+`", "age": 3}}`)
	req.Header.Set("Content-Type", "application/json")
	req.Header.Set("Authorization", "Bearer "+e.analyst)
	req.Header.Set("If-Match", r1)
	resp, body := e.ts.do(t, req)
	if resp.StatusCode != http.StatusOK {
		t.Fatalf("PUT: %d %s", resp.StatusCode, body)
	}
	var corrected api.Record
	_ = json.Unmarshal(body, &corrected)
	one(auditRecordCorrected, "ana", s.ID, map[string]string{"rev": corrected.Rev, "prev_rev": r1})

	// Review, assignment and a comment by PATCH.
	state, note := api.ReviewHasIssues, "check "+secret
	e.ts.want(t, http.StatusOK, http.MethodPatch, recordPath(s.ID), e.analyst,
		api.RecordPatch{ReviewState: &state, Comment: &note, AssignedTo: &[]string{e.devB.subject}}, nil)
	one(auditReviewChanged, "ana", s.ID, map[string]string{"from": api.ReviewReceived, "to": api.ReviewHasIssues})
	one(auditRecordAssigned, "ana", s.ID, map[string]string{"assigned_to": e.devB.subject})
	one(auditCommentAdded, "ana", s.ID, nil)

	// A conflict, resolved with a tombstone: a resolution and a deletion.
	k := e.newSub("strict", `{"name": "base"}`)
	k1 := e.push(t, e.devA.token, k)[0].Rev
	e.push(t, e.devA.token, edit(k, k1, `{"name": "one"}`, clockBase.Add(time.Minute)))
	e.wantStatuses(t, e.push(t, e.devB.token, edit(k, k1, `{"name": "two"}`, clockBase.Add(2*time.Minute))), api.PushConflict)
	cur := e.record(t, e.analyst, k.ID)
	var resolved api.Record
	e.ts.want(t, http.StatusOK, http.MethodPost, recordPath(k.ID)+"/resolve", e.admin, api.ResolveRequest{Rev: cur.Rev, Deleted: true}, &resolved)
	one(auditConflictResolved, "admin", k.ID, map[string]string{"rev": resolved.Rev, "conflicts": "1"})
	one(auditRecordDeleted, "admin", k.ID, map[string]string{"rev": resolved.Rev})

	// A deletion by push.
	d := e.newSub("survey", `{"name": "gone"}`)
	d1 := e.push(t, e.devA.token, d)[0].Rev
	del := e.push(t, e.devA.token, tombstone(d, d1, clockBase.Add(time.Hour)))
	e.wantStatuses(t, del, api.PushUpdated)
	events := e.auditOf(t, auditRecordDeleted)
	if len(events) != 2 || events[0].Subject != d.ID || events[0].Actor != e.devA.subject || events[0].Detail["rev"] != del[0].Rev {
		t.Errorf("deletion by push: %s", mustJSON(t, events))
	}
	// The retry of that push is unchanged, and no second deletion.
	e.wantStatuses(t, e.push(t, e.devA.token, tombstone(d, d1, clockBase.Add(time.Hour))), api.PushUnchanged)
	if n := len(e.auditOf(t, auditRecordDeleted)); n != 2 {
		t.Errorf("after a replay: %d deletions audited, want 2", n)
	}
}

// The data event types, spelt out here as the wire shows them (a second
// opinion on the constants of internal/audit).
const (
	auditRecordCorrected  = "record_corrected"
	auditConflictResolved = "conflict_resolved"
	auditReviewChanged    = "review_changed"
	auditRecordAssigned   = "record_assigned"
	auditCommentAdded     = "comment_added"
	auditRecordDeleted    = "record_deleted"
)

// TestRecordJSONDeviceName: the page encoder writes device_name where
// encoding/json puts api.Record's DeviceName, and leaves it out without one.
func TestRecordJSONDeviceName(t *testing.T) {
	recs := variedRecords()
	names := map[string]string{}
	for i, r := range recs {
		if r.DeviceID != "" && i%2 == 0 {
			names[r.DeviceID] = `tablet "<7>" ` + r.DeviceID
		}
	}
	want := api.PullResponse{Changes: make([]api.Record, len(recs)), Next: "c"}
	for i, r := range recs {
		want.Changes[i] = apiRecord(r)
		want.Changes[i].DeviceName = names[r.DeviceID]
	}
	w := httptest.NewRecorder()
	ps := newPageStream(w, `{"changes":[`)
	ps.names = names
	if err := ps.page(recs); err != nil {
		t.Fatal(err)
	}
	if err := ps.finish(pullTail("c", false)); err != nil {
		t.Fatal(err)
	}
	ps.release()
	samePageJSON(t, w.Body.Bytes(), append(mustMarshal(want), '\n'))
	if len(names) == 0 || !strings.Contains(w.Body.String(), `"device_name"`) {
		t.Fatalf("no record was named: %s", w.Body.String())
	}
}
