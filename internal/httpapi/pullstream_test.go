package httpapi

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"strings"
	"sync/atomic"
	"testing"

	"github.com/google/uuid"

	"github.com/fieldsync/fieldsync/api"
	"github.com/fieldsync/fieldsync/internal/domain"
	"github.com/fieldsync/fieldsync/internal/records"
)

// fillProject writes n records of variedRecords' shapes straight into the store:
// created by tablet A or B, or of the shared form, some assigned to B.
func fillProject(t *testing.T, e *syncEnv, n int) {
	t.Helper()
	shapes := variedRecords()
	writes := make([]domain.RecordWrite, n)
	for i := range writes {
		r := shapes[i%len(shapes)]
		r.ProjectID, r.ID, r.FormVersion, r.Seq, r.Version = syncProject, uuid.NewString(), "1", 0, 0
		r.FormID, r.CreatedBy = "survey", e.devA.subject
		switch i % 5 {
		case 1:
			r.CreatedBy = e.devB.subject
		case 2:
			r.FormID, r.Shared = "household", true
		case 3:
			r.CreatedBy, r.AssignedTo = e.devA.subject, []string{e.devB.subject}
		}
		// What openapi.yaml asks of a record: revs of their pattern, data an object.
		r.Rev = specRev(1)
		if r.ReviewState == "" {
			r.ReviewState = domain.ReviewReceived
		}
		if len(r.Data) == 0 || r.Data[0] != '{' {
			r.Data = json.RawMessage(`{"was":` + string(orNull(r.Data)) + `}`)
		}
		if r.Conflicts != nil {
			cs := make([]domain.Conflict, len(r.Conflicts))
			for j, c := range r.Conflicts {
				c.Values = append([]domain.ConflictValue(nil), c.Values...)
				for k := range c.Values {
					c.Values[k].Rev = specRev(2)
				}
				cs[j] = c
			}
			r.Conflicts = cs
		}
		writes[i] = domain.RecordWrite{Record: r, Revisions: []domain.Revision{{ProjectID: syncProject, RecordID: r.ID, Rev: r.Rev,
			Deleted: r.Deleted, Data: r.Data, FormVersion: "1", ClientModifiedAt: r.ClientModifiedAt, CreatedBy: r.CreatedBy, CreatedAt: r.CreatedAt}}}
	}
	results, err := e.ts.store.WriteRecords(context.Background(), writes)
	if err != nil {
		t.Fatal(err)
	}
	for _, err := range results {
		if err != nil {
			t.Fatal(err)
		}
	}
}

// specRev is a random revision of the given generation.
func specRev(gen int) string {
	return fmt.Sprintf("%d-%s", gen, strings.ReplaceAll(uuid.NewString(), "-", ""))
}

func orNull(raw json.RawMessage) json.RawMessage {
	if len(raw) == 0 {
		return json.RawMessage("null")
	}
	return raw
}

// TestPullStreamMatchesPull pulls pages of several chunks, as an analyst and as
// a tablet, gzipped and plain, and compares each with what handlePull answered
// before pages were streamed: encoding/json's encoding of Service.Pull's page.
// Every answer is validated against openapi.yaml on the way (ts.get).
func TestPullStreamMatchesPull(t *testing.T) {
	e := newSyncEnv(t)
	fillProject(t, e, 3*pullChunk+17)
	ctx := context.Background()
	callers := []struct {
		name, token string
		caller      records.Caller
	}{
		{"analyst", e.analyst, records.Caller{Principal: domain.Principal{Subject: "ana", Username: "ana"}, Role: domain.RoleAnalyst}},
		{"tablet B", e.devB.token, records.Caller{Principal: domain.Principal{Subject: e.devB.subject, DeviceID: e.devB.id,
			DeviceProject: syncProject}, Role: domain.RoleEnumerator}},
	}
	for _, c := range callers {
		for _, limit := range []int{1000, pullChunk, pullChunk + 1, 2*pullChunk - 1, 7} {
			for _, enc := range []string{"gzip", ""} {
				t.Run(fmt.Sprintf("%s/limit %d/%q", c.name, limit, enc), func(t *testing.T) {
					since, pages := "", 0
					for {
						want, err := e.ts.srv.records.Pull(ctx, c.caller, syncProject, since, limit, "")
						if err != nil {
							t.Fatal(err)
						}
						wantBody, err := referencePullNamed(want.Records, want.DeviceNames, want.Next, want.More)
						if err != nil {
							t.Fatal(err)
						}
						q := url.Values{"limit": {fmt.Sprint(limit)}}
						if since != "" {
							q.Set("since", since)
						}
						req := e.ts.newRequest(t, http.MethodGet, "/v1/projects/"+syncProject+"/sync/pull?"+q.Encode(), nil)
						req.Header.Set("Authorization", "Bearer "+c.token)
						if enc != "" {
							req.Header.Set("Accept-Encoding", enc)
						}
						resp, body := e.ts.do(t, req)
						if resp.StatusCode != http.StatusOK {
							t.Fatalf("status %d: %s", resp.StatusCode, body)
						}
						if big := len(body) > 4096; big && (resp.Header.Get("Content-Encoding") == "gzip") != (enc == "gzip") {
							t.Errorf("Content-Encoding %q asking for %q", resp.Header.Get("Content-Encoding"), enc)
						}
						samePageJSON(t, body, wantBody)
						if !want.More {
							break
						}
						since = want.Next
						if pages++; pages > 1000 {
							t.Fatal("no end")
						}
					}
				})
			}
		}
	}

	// The form feed: next only while more follow.
	for _, limit := range []int{1000, pullChunk + 3} {
		cursor := ""
		for pages := 0; ; pages++ {
			want, err := e.ts.srv.records.FormRecords(ctx, domain.RecordQuery{ProjectID: syncProject, FormID: "survey"}, cursor, limit)
			if err != nil {
				t.Fatal(err)
			}
			next := want.Next
			wantBody, err := referenceRecordPageNamed(want.Records, want.DeviceNames, next)
			if err != nil {
				t.Fatal(err)
			}
			q := url.Values{"limit": {fmt.Sprint(limit)}}
			if cursor != "" {
				q.Set("cursor", cursor)
			}
			resp, body := e.ts.get(t, "/v1/projects/"+syncProject+"/forms/survey/records?"+q.Encode(),
				"Authorization", "Bearer "+e.analyst, "Accept-Encoding", "gzip")
			if resp.StatusCode != http.StatusOK {
				t.Fatalf("status %d: %s", resp.StatusCode, body)
			}
			samePageJSON(t, body, wantBody)
			if next == "" {
				break
			}
			cursor = next
			if pages > 1000 {
				t.Fatal("no end")
			}
		}
	}

	// And the client reads the same as encoding/json does.
	cl := e.ts.apiClient(t, api.WithToken(e.analyst))
	got, err := cl.Pull(ctx, syncProject, "", 1000)
	if err != nil {
		t.Fatal(err)
	}
	raw, body := e.ts.get(t, "/v1/projects/"+syncProject+"/sync/pull?limit=1000", "Authorization", "Bearer "+e.analyst)
	if raw.StatusCode != http.StatusOK {
		t.Fatalf("status %d", raw.StatusCode)
	}
	var want api.PullResponse
	if err := json.Unmarshal(body, &want); err != nil {
		t.Fatal(err)
	}
	if len(got.Changes) != len(want.Changes) || len(want.Changes) < 3*pullChunk || !bytes.Equal(mustMarshal(got), mustMarshal(want)) {
		t.Errorf("api.Client pulled %d records, other than encoding/json's decoding", len(got.Changes))
	}
}

// failingChanges fails the Changes call number failAt (counting from 1) with
// err; with corrupt set, it spoils the data of the page's record number
// pullChunk+1 instead, as a damaged stored value would.
type failingChanges struct {
	domain.Store
	calls   atomic.Int64
	failAt  atomic.Int64
	corrupt atomic.Bool
	err     error
}

func (f *failingChanges) Changes(ctx context.Context, q domain.ChangesQuery) (domain.ChangesPage, error) {
	if f.calls.Add(1) == f.failAt.Load() {
		return domain.ChangesPage{}, f.err
	}
	p, err := f.Store.Changes(ctx, q)
	if err == nil && f.corrupt.Load() && len(p.Records) > pullChunk {
		p.Records[pullChunk].Data = json.RawMessage(`{"broken`)
	}
	return p, err
}

// TestPullStreamStoreFailure: a store failure is a clean problem (a page is
// one store read, done before anything is sent); a failure after part of the
// page is sent (a damaged record past the first chunk) breaks the answer off
// as JSON no client takes for a page, and the error is logged.
func TestPullStreamStoreFailure(t *testing.T) {
	var fc *failingChanges
	broken := errors.New("disk on fire")
	ts := newTestServer(t, withConfig(func(c *Config) {
		fc = &failingChanges{Store: c.Store, err: broken}
		c.Store = fc
	}))
	e := &syncEnv{ts: ts, admin: ts.adminToken(t)}
	ts.want(t, http.StatusCreated, http.MethodPost, "/v1/projects", e.admin, api.CreateProjectRequest{ID: syncProject, Title: "Safety"}, nil)
	e.putForm(t, "survey", "1", "merge", false, true)
	e.putForm(t, "household", "1", "merge", true, true)
	e.devA = e.enroll(t, "tablet A")
	e.devB = e.enroll(t, "tablet B")
	e.analyst = ts.addUser(t, e.admin, "ana", syncProject, api.RoleAnalyst)
	fillProject(t, e, 2*pullChunk+1)

	fc.calls.Store(0)
	fc.failAt.Store(1)
	resp, body := ts.get(t, "/v1/projects/"+syncProject+"/sync/pull?limit=1000", "Authorization", "Bearer "+e.analyst)
	if resp.StatusCode != http.StatusInternalServerError || !strings.Contains(string(body), "internal_error") {
		t.Fatalf("store failing: %d %s", resp.StatusCode, body)
	}
	if !strings.Contains(ts.logs.String(), broken.Error()) {
		t.Error("the failure is not logged")
	}
	fc.failAt.Store(0)

	fc.corrupt.Store(true)
	for _, enc := range []string{"gzip", ""} {
		req := ts.newRequest(t, http.MethodGet, "/v1/projects/"+syncProject+"/sync/pull?limit=1000", nil)
		req.Header.Set("Authorization", "Bearer "+e.analyst)
		req.Header.Set("Accept-Encoding", enc)
		resp, err := rawClient.Do(req) // not ts.do: the body is broken on purpose
		if err != nil {
			t.Fatal(err)
		}
		raw, err := io.ReadAll(resp.Body)
		resp.Body.Close()
		if err != nil {
			t.Fatalf("%q: reading the broken answer: %v", enc, err)
		}
		body := decodeBody(t, resp.Header, raw)
		if resp.StatusCode != http.StatusOK || !bytes.HasPrefix(body, []byte(`{"changes":[{`)) || json.Valid(body) {
			t.Fatalf("%q: second chunk failing: %d, body valid JSON %v: %.80s", enc, resp.StatusCode, json.Valid(body), body)
		}
		var page api.PullResponse
		if err := json.Unmarshal(body, &page); err == nil {
			t.Fatalf("%q: a broken page decodes", enc)
		}
	}
	if !strings.Contains(ts.logs.String(), "encoding record") {
		t.Error("the broken answer is not logged")
	}

	// The client sees an error, not a short page.
	cl, err := api.NewClient(ts.URL, api.WithToken(e.analyst))
	if err != nil {
		t.Fatal(err)
	}
	if p, err := cl.Pull(context.Background(), syncProject, "", 1000); err == nil {
		t.Fatalf("the client took a broken page of %d records", len(p.Changes))
	}
}

// movingChanges runs a hook once, after the next Changes call that succeeds:
// a write that lands while a page is being answered.
type movingChanges struct {
	domain.Store
	after atomic.Pointer[func(domain.ChangesPage)]
	// afterQuery is after for QueryRecords (the records listing).
	afterQuery atomic.Pointer[func(domain.RecordQueryPage)]
}

func (m *movingChanges) Changes(ctx context.Context, q domain.ChangesQuery) (domain.ChangesPage, error) {
	p, err := m.Store.Changes(ctx, q)
	if err == nil {
		if f := m.after.Swap(nil); f != nil {
			(*f)(p)
		}
	}
	return p, err
}

func (m *movingChanges) QueryRecords(ctx context.Context, q domain.RecordQuery) (domain.RecordQueryPage, error) {
	p, err := m.Store.QueryRecords(ctx, q)
	if err == nil {
		if f := m.afterQuery.Swap(nil); f != nil {
			(*f)(p)
		}
	}
	return p, err
}

// TestPullPageOneState: a record updated while a page of several chunks is
// being answered is in that page once, and the next page brings its new
// state: a page is one read of the feed, not chunks read at different times.
func TestPullPageOneState(t *testing.T) {
	var mc *movingChanges
	ts := newTestServer(t, withConfig(func(c *Config) {
		mc = &movingChanges{Store: c.Store}
		c.Store = mc
	}))
	e := &syncEnv{ts: ts, admin: ts.adminToken(t)}
	ts.want(t, http.StatusCreated, http.MethodPost, "/v1/projects", e.admin, api.CreateProjectRequest{ID: syncProject, Title: "Safety"}, nil)
	e.putForm(t, "survey", "1", "merge", false, true)
	e.putForm(t, "household", "1", "merge", true, true)
	e.devA = e.enroll(t, "tablet A")
	e.devB = e.enroll(t, "tablet B")
	e.analyst = ts.addUser(t, e.admin, "ana", syncProject, api.RoleAnalyst)
	fillProject(t, e, 3*pullChunk+10)

	// move updates the first record of the page the store just read, so that
	// it moves to the end of the feed.
	moved := map[string]string{} // record id → its rev after the move
	move := func(p domain.ChangesPage) {
		if len(p.Records) == 0 {
			t.Error("the hook saw an empty page")
			return
		}
		r := p.Records[0]
		next := r
		next.Rev, next.Data = specRev(2), json.RawMessage(`{"name":"moved"}`)
		res, err := mc.Store.WriteRecords(context.Background(), []domain.RecordWrite{{Record: next, ExpectRev: r.Rev, ExpectVersion: r.Version,
			Revisions: []domain.Revision{{ProjectID: syncProject, RecordID: r.ID, Rev: next.Rev, Parent: r.Rev, Data: next.Data, FormVersion: r.FormVersion,
				ClientModifiedAt: r.ClientModifiedAt, CreatedBy: r.CreatedBy, CreatedAt: r.CreatedAt}}}})
		if err != nil || res[0] != nil {
			t.Errorf("moving %s: %v %v", r.ID, err, res)
			return
		}
		moved[r.ID] = next.Rev
	}
	once := func(records []api.Record) map[string]api.Record {
		t.Helper()
		seen := map[string]api.Record{}
		for _, r := range records {
			if _, dup := seen[r.ID]; dup {
				t.Errorf("record %s twice in one page of %d", r.ID, len(records))
			}
			seen[r.ID] = r
		}
		return seen
	}

	// The sync feed.
	mc.after.Store(&move)
	var page api.PullResponse
	ts.want(t, http.StatusOK, http.MethodGet, "/v1/projects/"+syncProject+"/sync/pull?limit=1000", e.analyst, nil, &page)
	if len(moved) != 1 {
		t.Fatal("no record was moved")
	}
	if got := once(page.Changes); len(got) != 3*pullChunk+10 {
		t.Errorf("the page holds %d of %d records", len(got), 3*pullChunk+10)
	}
	var rest api.PullResponse
	ts.want(t, http.StatusOK, http.MethodGet, "/v1/projects/"+syncProject+"/sync/pull?limit=1000&since="+url.QueryEscape(page.Next), e.analyst, nil, &rest)
	for id, rev := range moved {
		if r, ok := once(rest.Changes)[id]; !ok || r.Rev != rev {
			t.Errorf("the next page does not bring %s at %s: %+v", id, rev, rest.Changes)
		}
	}

	// The form's records listing: a page is one QueryRecords read, and an
	// edit while it is sent neither moves the record nor lists it twice.
	clear(moved)
	moveQ := func(p domain.RecordQueryPage) {
		move(domain.ChangesPage{Records: p.Records})
	}
	mc.afterQuery.Store(&moveQ)
	var recs api.RecordPage
	ts.want(t, http.StatusOK, http.MethodGet, "/v1/projects/"+syncProject+"/forms/survey/records?limit=1000", e.analyst, nil, &recs)
	if len(moved) != 1 {
		t.Fatal("no record was moved")
	}
	if got := once(recs.Records); len(got) <= pullChunk {
		t.Errorf("the form's page holds %d records, no more than a chunk", len(got))
	}
	var again api.RecordPage
	ts.want(t, http.StatusOK, http.MethodGet, "/v1/projects/"+syncProject+"/forms/survey/records?limit=1000", e.analyst, nil, &again)
	for id, rev := range moved {
		if r, ok := once(again.Records)[id]; !ok || r.Rev != rev || again.Records[0].ID != id {
			t.Errorf("the listing does not bring %s at %s in its place: %+v", id, rev, r)
		}
	}
}
