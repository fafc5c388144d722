package httpapi

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"regexp"
	"slices"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/google/uuid"

	"github.com/fieldsync/fieldsync/api"
	"github.com/fieldsync/fieldsync/internal/domain"
	"github.com/fieldsync/fieldsync/schemas"
)

// formsProject is the project every form test works in.
const formsProject = "north"

// formsEnv is a test server with the project formsProject, and a way to get an
// access token for each role in it. Users and devices are made through the
// real identity service and log in for real, so the rules the routes see are
// production's.
type formsEnv struct {
	ts     *testServer
	admin  domain.Principal
	tokens map[string]string // role (or "device", "admin") → access token
}

func newFormsEnv(t *testing.T) *formsEnv {
	t.Helper()
	ts := newTestServer(t)
	ctx := context.Background()
	pair, err := ts.ids.Login(ctx, "admin", testAdminPassword, "127.0.0.1")
	if err != nil {
		t.Fatalf("admin login: %v", err)
	}
	admin, err := ts.ids.Authenticate(ctx, pair.AccessToken)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := ts.ids.CreateProject(ctx, admin, formsProject, "North district"); err != nil {
		t.Fatalf("CreateProject: %v", err)
	}
	return &formsEnv{ts: ts, admin: admin, tokens: map[string]string{"admin": pair.AccessToken}}
}

// token returns an access token of a member with role (a domain.Role), of an
// enrolled "device", or of "admin", making the user or device on first use.
func (e *formsEnv) token(t *testing.T, role string) string {
	t.Helper()
	if tok, ok := e.tokens[role]; ok {
		return tok
	}
	ctx := context.Background()
	if role == "device" {
		_, code, err := e.ts.ids.CreateDevice(ctx, e.admin, formsProject, "Tablet 07")
		if err != nil {
			t.Fatalf("CreateDevice: %v", err)
		}
		pair, _, err := e.ts.ids.Enroll(ctx, code, map[string]string{"model": "test"}, "127.0.0.1")
		if err != nil {
			t.Fatalf("Enroll: %v", err)
		}
		e.tokens[role] = pair.AccessToken
		return pair.AccessToken
	}
	username, password := "fx-"+role, "password-of-"+role+"-123"
	if _, err := e.ts.ids.CreateUser(ctx, e.admin, username, password, ""); err != nil {
		t.Fatalf("CreateUser: %v", err)
	}
	if _, err := e.ts.ids.SetMember(ctx, e.admin, formsProject, username, domain.Role(role)); err != nil {
		t.Fatalf("SetMember: %v", err)
	}
	pair, err := e.ts.ids.Login(ctx, username, password, "127.0.0.1")
	if err != nil {
		t.Fatalf("Login: %v", err)
	}
	e.tokens[role] = pair.AccessToken
	return pair.AccessToken
}

// send makes one request as role ("" for none) through ts.do, so the exchange
// is validated against openapi.yaml. A body is sent as application/json;
// header lists more header names and values.
func (e *formsEnv) send(t *testing.T, role, method, path string, body []byte, header ...string) (*http.Response, []byte) {
	t.Helper()
	var b any
	if body != nil {
		b = body
	}
	req := e.ts.newRequest(t, method, path, b)
	if body != nil {
		req.Header.Set("Content-Type", "application/json")
	}
	if role != "" {
		req.Header.Set("Authorization", "Bearer "+e.token(t, role))
	}
	for i := 0; i+1 < len(header); i += 2 {
		req.Header.Set(header[i], header[i+1])
	}
	return e.ts.do(t, req)
}

// expect is send that fails unless the answer has status, and decodes a JSON
// answer into out when out is not nil.
func (e *formsEnv) expect(t *testing.T, status int, role, method, path string, body []byte, out any) (*http.Response, []byte) {
	t.Helper()
	resp, raw := e.send(t, role, method, path, body)
	if resp.StatusCode != status {
		t.Fatalf("%s %s as %s: status %d, want %d: %s", method, path, role, resp.StatusCode, status, raw)
	}
	if out != nil {
		if err := json.Unmarshal(raw, out); err != nil {
			t.Fatalf("%s %s: decoding %s: %v", method, path, raw, err)
		}
	}
	return resp, raw
}

// expectProblem fails unless the answer is a problem with status and code.
func (e *formsEnv) expectProblem(t *testing.T, status int, code, role, method, path string, body []byte) api.Problem {
	t.Helper()
	resp, raw := e.send(t, role, method, path, body)
	return problemOf(t, resp, raw, status, code)
}

func versionPath(form, version string) string {
	return "/v1/projects/" + formsProject + "/forms/" + form + "/versions/" + version
}

// putDraft uploads def as a draft and returns the answer, which must be status.
func (e *formsEnv) putDraft(t *testing.T, status int, form, version string, def []byte) api.FormVersionEntry {
	t.Helper()
	var entry api.FormVersionEntry
	resp, _ := e.expect(t, status, "designer", http.MethodPut, versionPath(form, version), def, &entry)
	if got, want := resp.Header.Get("ETag"), `"`+entry.Hash+`"`; got != want {
		t.Errorf("PUT %s/%s: ETag %s, want %s", form, version, got, want)
	}
	return entry
}

func (e *formsEnv) publish(t *testing.T, form, version string) api.FormVersionEntry {
	t.Helper()
	var entry api.FormVersionEntry
	e.expect(t, http.StatusOK, "designer", http.MethodPost, versionPath(form, version)+"/publish", nil, &entry)
	if entry.State != api.VersionPublished || entry.PublishedAt == nil {
		t.Fatalf("publish %s/%s: %+v", form, version, entry)
	}
	return entry
}

// listForms answers GET .../forms as role, with the answer's ETag.
func (e *formsEnv) listForms(t *testing.T, role string) ([]api.FormListEntry, string) {
	t.Helper()
	var out api.FormList
	resp, _ := e.expect(t, http.StatusOK, role, http.MethodGet, "/v1/projects/"+formsProject+"/forms", nil, &out)
	return out.Forms, resp.Header.Get("ETag")
}

// push sends submissions as role and returns the results, one per item.
func (e *formsEnv) push(t *testing.T, role string, subs ...api.Submission) []api.PushResult {
	t.Helper()
	body, err := json.Marshal(api.PushRequest{Submissions: subs})
	if err != nil {
		t.Fatal(err)
	}
	var out api.PushResponse
	e.expect(t, http.StatusOK, role, http.MethodPost, "/v1/projects/"+formsProject+"/sync/push", body, &out)
	if len(out.Results) != len(subs) {
		t.Fatalf("push of %d items: %d results", len(subs), len(out.Results))
	}
	return out.Results
}

// newSubmission is a new record of form/version with data.
func newSubmission(form, version string, data []byte) api.Submission {
	return api.Submission{ID: uuid.NewString(), Form: form, FormVersion: version,
		ClientModifiedAt: time.Date(2024, 5, 14, 11, 30, 0, 0, time.UTC), Data: data}
}

// example reads one of the example form definitions of schemas/examples.
func example(t *testing.T, name string) []byte {
	t.Helper()
	b, err := schemas.Example(name)
	if err != nil {
		t.Fatal(err)
	}
	return b
}

// compact is what the server stores of an upload: the same bytes without
// insignificant whitespace.
func compact(t *testing.T, b []byte) []byte {
	t.Helper()
	var buf bytes.Buffer
	if err := json.Compact(&buf, b); err != nil {
		t.Fatal(err)
	}
	return buf.Bytes()
}

// minimalForm is a small valid definition with the given title.
func minimalForm(title string) []byte {
	return []byte(`{"title": "` + title + `", "schema": {"type": "object", "properties": {"village": {"type": "string", "minLength": 1}}, "required": ["village"]}}`)
}

var hexHash = regexp.MustCompile(`^[0-9a-f]{64}$`)

func TestFormDesignerRoundTrip(t *testing.T) {
	e := newFormsEnv(t)
	def := example(t, "perception-survey")

	// A new draft: 201, the version entry with the title, ETag = hash.
	first := e.putDraft(t, http.StatusCreated, "perception", "1", def)
	if first.Version != "1" || first.State != api.VersionDraft || !hexHash.MatchString(first.Hash) ||
		first.PublishedAt != nil || first.Title != "Community safety perception survey" {
		t.Errorf("new draft: %+v", first)
	}

	// Replacing the draft: 200, and a new hash for a new content.
	changed := bytes.Replace(def, []byte(`"title": "Community safety perception survey"`), []byte(`"title": "Perception survey (pilot)"`), 1)
	replaced := e.putDraft(t, http.StatusOK, "perception", "1", changed)
	if replaced.State != api.VersionDraft || replaced.Hash == first.Hash || replaced.Title != "Perception survey (pilot)" {
		t.Errorf("replaced draft: %+v (first %+v)", replaced, first)
	}

	// The draft reads back as uploaded, without whitespace.
	resp, body := e.expect(t, http.StatusOK, "designer", http.MethodGet, versionPath("perception", "1"), nil, nil)
	if !bytes.Equal(body, compact(t, changed)) {
		t.Errorf("GET draft: body differs from the upload:\n%s", truncate(body))
	}
	if resp.Header.Get("ETag") != `"`+replaced.Hash+`"` || resp.Header.Get("Cache-Control") != cacheRevalidate {
		t.Errorf("GET draft: ETag %s, Cache-Control %s", resp.Header.Get("ETag"), resp.Header.Get("Cache-Control"))
	}

	// Publishing: 200; published versions never change.
	pub := e.publish(t, "perception", "1")
	if pub.Hash != replaced.Hash || pub.Version != "1" || pub.Title != "Perception survey (pilot)" {
		t.Errorf("publish: %+v", pub)
	}
	again := e.publish(t, "perception", "1")
	if !again.PublishedAt.Equal(*pub.PublishedAt) {
		t.Errorf("publishing twice moved published_at: %v, then %v", pub.PublishedAt, again.PublishedAt)
	}
	p := e.expectProblem(t, http.StatusConflict, "version_published", "designer", http.MethodPut, versionPath("perception", "1"), def)
	if p.Detail == "" {
		t.Error("409 without a detail telling the designer what to do")
	}

	// The version, with ETag and If-None-Match in every accepted spelling.
	resp, body = e.expect(t, http.StatusOK, "designer", http.MethodGet, versionPath("perception", "1"), nil, nil)
	etag := resp.Header.Get("ETag")
	if etag != `"`+pub.Hash+`"` || resp.Header.Get("Content-Type") != "application/json" {
		t.Errorf("GET published: ETag %s, Content-Type %s", etag, resp.Header.Get("Content-Type"))
	}
	if cc := resp.Header.Get("Cache-Control"); cc != cacheImmutable {
		t.Errorf("GET published: Cache-Control %q", cc)
	}
	if !bytes.Equal(body, compact(t, changed)) {
		t.Error("GET published: body differs from the upload")
	}
	for _, inm := range []string{etag, pub.Hash, `W/` + etag, `"nope", ` + etag, "*"} {
		resp, body := e.send(t, "designer", http.MethodGet, versionPath("perception", "1"), nil, "If-None-Match", inm)
		if resp.StatusCode != http.StatusNotModified || len(body) != 0 || resp.Header.Get("ETag") != etag {
			t.Errorf("If-None-Match %s: %d, ETag %q, %d bytes", inm, resp.StatusCode, resp.Header.Get("ETag"), len(body))
		}
	}
	if resp, _ := e.send(t, "designer", http.MethodGet, versionPath("perception", "1"), nil, "If-None-Match", `"`+first.Hash+`"`); resp.StatusCode != http.StatusOK {
		t.Errorf("If-None-Match of another hash: %d, want 200", resp.StatusCode)
	}

	// The list, with its ETag.
	forms, listTag := e.listForms(t, "designer")
	want := []api.FormListEntry{{ID: "perception", Title: "Perception survey (pilot)", State: api.FormOpen, CurrentVersion: "1",
		Versions: []api.FormVersionEntry{{Version: "1", State: api.VersionPublished, Hash: pub.Hash, PublishedAt: pub.PublishedAt}}}}
	if fmt.Sprint(forms) != fmt.Sprint(want) {
		t.Errorf("list:\n got %+v\nwant %+v", forms, want)
	}
	if !regexp.MustCompile(`^"[0-9a-f]{64}"$`).MatchString(listTag) {
		t.Errorf("list ETag %q", listTag)
	}
	for _, inm := range []string{listTag, strings.Trim(listTag, `"`), `"x", ` + listTag} {
		resp, body := e.send(t, "designer", http.MethodGet, "/v1/projects/"+formsProject+"/forms", nil, "If-None-Match", inm)
		if resp.StatusCode != http.StatusNotModified || len(body) != 0 || resp.Header.Get("ETag") != listTag {
			t.Errorf("list If-None-Match %s: %d, ETag %q, %d bytes", inm, resp.StatusCode, resp.Header.Get("ETag"), len(body))
		}
	}

	// A new draft changes the designer's list and its ETag.
	e.putDraft(t, http.StatusCreated, "perception", "2", def)
	forms, tag2 := e.listForms(t, "designer")
	if tag2 == listTag || len(forms) != 1 || len(forms[0].Versions) != 2 || forms[0].CurrentVersion != "1" || forms[0].Title != "Perception survey (pilot)" {
		t.Errorf("list after a second draft (ETag %s, was %s): %+v", tag2, listTag, forms)
	}
	resp, _ = e.send(t, "designer", http.MethodGet, "/v1/projects/"+formsProject+"/forms", nil, "If-None-Match", listTag)
	if resp.StatusCode != http.StatusOK {
		t.Errorf("list with a stale ETag: %d, want 200", resp.StatusCode)
	}

	// A manager passes the designer's rule; an admin acts as manager.
	e.expect(t, http.StatusOK, "manager", http.MethodGet, versionPath("perception", "2"), nil, nil)
	e.expect(t, http.StatusCreated, "admin", http.MethodPut, versionPath("perception", "3"), def, nil)
}

// TestFormPublishedVersionImmutable: once published, a version's bytes never
// change, whatever is uploaded to it.
func TestFormPublishedVersionImmutable(t *testing.T) {
	e := newFormsEnv(t)
	def := example(t, "incident-report")
	e.putDraft(t, http.StatusCreated, "incident", "2024.1", def)
	e.publish(t, "incident", "2024.1")
	before, b1 := e.expect(t, http.StatusOK, "enumerator", http.MethodGet, versionPath("incident", "2024.1"), nil, nil)

	for name, body := range map[string][]byte{
		"valid":             minimalForm("Something else"),
		"invalid":           []byte(`{"title": ""}`),
		"not json":          []byte(`{"title": `),
		"same but reformed": compact(t, def),
	} {
		t.Run(name, func(t *testing.T) {
			e.expectProblem(t, http.StatusConflict, "version_published", "designer", http.MethodPut, versionPath("incident", "2024.1"), body)
		})
	}
	after, b2 := e.expect(t, http.StatusOK, "enumerator", http.MethodGet, versionPath("incident", "2024.1"), nil, nil)
	if !bytes.Equal(b1, b2) || before.Header.Get("ETag") != after.Header.Get("ETag") {
		t.Errorf("a rejected PUT changed a published version:\n%s\n%s", truncate(b1), truncate(b2))
	}
}

// TestFormHashIgnoresKeyOrderAndWhitespace: the hash is that of the canonical
// JSON, while the stored bytes keep the designer's order.
func TestFormHashIgnoresKeyOrderAndWhitespace(t *testing.T) {
	e := newFormsEnv(t)
	def := example(t, "action-plan-followup")

	// The same definition with every object's keys sorted (json.Marshal of a
	// map) and indented differently.
	var v any
	dec := json.NewDecoder(bytes.NewReader(def))
	dec.UseNumber()
	if err := dec.Decode(&v); err != nil {
		t.Fatal(err)
	}
	reordered, err := json.MarshalIndent(v, "", "\t\t")
	if err != nil {
		t.Fatal(err)
	}
	if bytes.Equal(compact(t, def), compact(t, reordered)) {
		t.Fatal("the reordered definition is not reordered")
	}

	a := e.putDraft(t, http.StatusCreated, "followup", "1", def)
	b := e.putDraft(t, http.StatusCreated, "followup", "2", reordered)
	if a.Hash != b.Hash {
		t.Errorf("hashes differ: %s and %s", a.Hash, b.Hash)
	}
	_, body := e.expect(t, http.StatusOK, "designer", http.MethodGet, versionPath("followup", "2"), nil, nil)
	if !bytes.Equal(body, compact(t, reordered)) {
		t.Error("the stored definition lost the uploaded key order")
	}
	// Replacing a draft with the same content in another order keeps its hash.
	if c := e.putDraft(t, http.StatusOK, "followup", "1", reordered); c.Hash != a.Hash {
		t.Errorf("replaced with the same content: hash %s, was %s", c.Hash, a.Hash)
	}
}

// TestFormEnumeratorSeesPublishedOnly: enumerators and devices never see a
// draft, not even the existence of a form that has only drafts.
func TestFormEnumeratorSeesPublishedOnly(t *testing.T) {
	e := newFormsEnv(t)
	def := example(t, "perception-survey")
	e.putDraft(t, http.StatusCreated, "perception", "1", def)
	pub := e.publish(t, "perception", "1")
	e.putDraft(t, http.StatusCreated, "perception", "2", minimalForm("Draft title"))
	e.putDraft(t, http.StatusCreated, "drafty", "1", minimalForm("Not ready"))

	for _, role := range []string{"enumerator", "device"} {
		t.Run(role, func(t *testing.T) {
			forms, tag := e.listForms(t, role)
			want := []api.FormListEntry{{ID: "perception", Title: "Community safety perception survey", State: api.FormOpen, CurrentVersion: "1",
				Versions: []api.FormVersionEntry{{Version: "1", State: api.VersionPublished, Hash: pub.Hash, PublishedAt: pub.PublishedAt}}}}
			if fmt.Sprint(forms) != fmt.Sprint(want) {
				t.Errorf("list:\n got %+v\nwant %+v", forms, want)
			}
			e.expect(t, http.StatusOK, role, http.MethodGet, versionPath("perception", "1"), nil, nil)
			e.expectProblem(t, http.StatusNotFound, "version_not_found", role, http.MethodGet, versionPath("perception", "2"), nil)
			e.expectProblem(t, http.StatusNotFound, "form_not_found", role, http.MethodGet, versionPath("drafty", "1"), nil)

			// Another draft leaves the enumerator's list, and its ETag, alone.
			e.putDraft(t, http.StatusCreated, "perception", "draft-for-"+role, minimalForm("Another draft"))
			if _, tag2 := e.listForms(t, role); tag2 != tag {
				t.Errorf("a draft changed the %s's list ETag", role)
			}
			resp, _ := e.send(t, role, http.MethodGet, "/v1/projects/"+formsProject+"/forms", nil, "If-None-Match", tag)
			if resp.StatusCode != http.StatusNotModified {
				t.Errorf("If-None-Match after a draft: %d, want 304", resp.StatusCode)
			}

			// Reading is all they may do.
			e.expectProblem(t, http.StatusForbidden, api.CodeForbidden, role, http.MethodPut, versionPath("perception", "9"), def)
			e.expectProblem(t, http.StatusForbidden, api.CodeForbidden, role, http.MethodPost, versionPath("perception", "2")+"/publish", nil)
			e.expectProblem(t, http.StatusForbidden, api.CodeForbidden, role, http.MethodPost, "/v1/projects/"+formsProject+"/forms/perception/close", nil)
		})
	}

	t.Run("analyst", func(t *testing.T) {
		forms, _ := e.listForms(t, "analyst")
		if len(forms) != 2 || forms[0].ID != "drafty" || forms[0].CurrentVersion != "" || len(forms[1].Versions) != 4 {
			t.Errorf("an analyst sees every version: %+v", forms)
		}
		e.expect(t, http.StatusOK, "analyst", http.MethodGet, versionPath("perception", "2"), nil, nil)
		e.expectProblem(t, http.StatusForbidden, api.CodeForbidden, "analyst", http.MethodPut, versionPath("perception", "9"), def)
	})

	t.Run("outsiders", func(t *testing.T) {
		e.expectProblem(t, http.StatusUnauthorized, api.CodeUnauthorized, "", http.MethodGet, "/v1/projects/"+formsProject+"/forms", nil)
		e.expectProblem(t, http.StatusNotFound, api.CodeProjectNotFound, "designer", http.MethodGet, "/v1/projects/south/forms", nil)
	})
}

// TestFormInvalidDefinition: every finding at once, addressed by JSON pointers
// into the definition.
func TestFormInvalidDefinition(t *testing.T) {
	e := newFormsEnv(t)
	p := e.expectProblem(t, http.StatusUnprocessableEntity, "invalid_definition", "designer", http.MethodPut, versionPath("broken", "1"),
		[]byte(`{"title": "", "conflict_policy": "newest", "schema": {"type": "array", "properties": {"a": {"minLength": -1}}}, "ui": 1, "x": true}`))
	var got []string
	for _, f := range p.Errors {
		got = append(got, f.Path+" "+f.Keyword)
	}
	want := []string{
		"/conflict_policy enum",
		"/schema/properties/a/minLength minimum",
		"/schema/type const",
		"/title minLength",
		"/title pattern",
		"/ui type",
		"/x additionalProperties",
	}
	if !slices.Equal(got, want) {
		t.Errorf("findings:\n got %q\nwant %q", got, want)
	}
	// Nothing was stored.
	e.expectProblem(t, http.StatusNotFound, "form_not_found", "designer", http.MethodGet, versionPath("broken", "1"), nil)
	if forms, _ := e.listForms(t, "designer"); len(forms) != 0 {
		t.Errorf("a refused definition made a form: %+v", forms)
	}

	t.Run("schema that does not compile", func(t *testing.T) {
		p := e.expectProblem(t, http.StatusUnprocessableEntity, "invalid_definition", "designer", http.MethodPut, versionPath("broken", "1"),
			[]byte(`{"title": "t", "schema": {"type": "object", "properties": {"a": {"$ref": "#/$defs/nope"}, "b": {"type": "string", "format": "date_time"}}}}`))
		if len(p.Errors) == 0 || p.Errors[0].Path != "/schema/properties/a/$ref" {
			t.Errorf("findings %+v", p.Errors)
		}
	})

	t.Run("too deep", func(t *testing.T) {
		deep := `{"title": "t", "schema": {"type": "object", "properties": {"a": ` + strings.Repeat(`{"items": `, 70) + `{}` + strings.Repeat(`}`, 70) + `}}}`
		e.expectProblem(t, http.StatusUnprocessableEntity, "definition_too_deep", "designer", http.MethodPut, versionPath("broken", "1"), []byte(deep))
	})
}

// TestFormRemoteRef: a $ref to another document is refused, and the server
// never asks for it.
func TestFormRemoteRef(t *testing.T) {
	var requests atomic.Int64
	remote := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		requests.Add(1)
		w.Header().Set("Content-Type", "application/schema+json")
		fmt.Fprint(w, `{"type": "string"}`)
	}))
	defer remote.Close()

	e := newFormsEnv(t)
	def := `{"title": "t", "schema": {"type": "object", "properties": {"village": {"$ref": "` + remote.URL + `/village.json"}}}}`
	p := e.expectProblem(t, http.StatusUnprocessableEntity, "remote_ref", "designer", http.MethodPut, versionPath("remote", "1"), []byte(def))
	if len(p.Errors) != 1 || p.Errors[0].Path != "/schema/properties/village/$ref" || p.Errors[0].Keyword != "$ref" {
		t.Errorf("findings %+v", p.Errors)
	}
	if n := requests.Load(); n != 0 {
		t.Errorf("the server fetched the remote schema %d times", n)
	}
}

// TestFormBodyErrors: what is wrong with the upload itself, before any
// schema is looked at.
func TestFormBodyErrors(t *testing.T) {
	e := newFormsEnv(t)
	big := []byte(`{"title": "t", "schema": {"type": "object", "description": "` + strings.Repeat("a", 1<<20) + `"}}`)

	p := e.expectProblem(t, http.StatusRequestEntityTooLarge, "definition_too_large", "designer", http.MethodPut, versionPath("big", "1"), big)
	if !strings.Contains(p.Detail, "1048576") {
		t.Errorf("detail %q does not state the limit", p.Detail)
	}

	// The gzipped requests are streamed (an io.Reader without GetBody), so
	// checkResponse validates their answers but not their bodies: its
	// validationRequest hands kin-openapi a decompressed body whose GetBody
	// still returns the compressed bytes, which kin-openapi rereads on routes
	// with security.
	t.Run("too large after decompression", func(t *testing.T) {
		req := e.ts.newRequest(t, http.MethodPut, versionPath("big", "1"), io.MultiReader(bytes.NewReader(gzipBytes(t, big))))
		req.Header.Set("Content-Type", "application/json")
		req.Header.Set("Content-Encoding", "gzip")
		req.Header.Set("Authorization", "Bearer "+e.token(t, "designer"))
		resp, body := e.ts.do(t, req)
		problemOf(t, resp, body, http.StatusRequestEntityTooLarge, "definition_too_large")
	})

	t.Run("gzipped definition", func(t *testing.T) {
		def := example(t, "incident-report")
		req := e.ts.newRequest(t, http.MethodPut, versionPath("incident", "1"), io.MultiReader(bytes.NewReader(gzipBytes(t, def))))
		req.Header.Set("Content-Type", "application/json; charset=utf-8")
		req.Header.Set("Content-Encoding", "gzip")
		req.Header.Set("Authorization", "Bearer "+e.token(t, "designer"))
		if resp, body := e.ts.do(t, req); resp.StatusCode != http.StatusCreated {
			t.Errorf("gzipped PUT: %d %s", resp.StatusCode, body)
		}
	})

	t.Run("not JSON", func(t *testing.T) {
		req := e.ts.newRequest(t, http.MethodPut, versionPath("x", "1"), minimalForm("t"))
		req.Header.Set("Content-Type", "text/plain")
		req.Header.Set("Authorization", "Bearer "+e.token(t, "designer"))
		resp, body := e.ts.do(t, req)
		problemOf(t, resp, body, http.StatusUnsupportedMediaType, api.CodeUnsupportedMediaType)

		p := e.expectProblem(t, http.StatusBadRequest, api.CodeBadJSON, "designer", http.MethodPut, versionPath("x", "1"), []byte(`{"title": "t", "schema": {`))
		if !strings.Contains(p.Detail, "byte") {
			t.Errorf("bad_json detail without an offset: %q", p.Detail)
		}
		e.expectProblem(t, http.StatusBadRequest, api.CodeBadJSON, "designer", http.MethodPut, versionPath("x", "1"), []byte("  \n"))
		e.expectProblem(t, http.StatusBadRequest, api.CodeBadJSON, "designer", http.MethodPut, versionPath("x", "1"), []byte("{\"title\": \"\xff\"}"))
	})

	t.Run("invalid ids", func(t *testing.T) {
		for _, path := range []string{versionPath("Perception", "1"), versionPath("perception", "-1"), versionPath("perception", strings.Repeat("9", 33))} {
			p := e.expectProblem(t, http.StatusUnprocessableEntity, "invalid_id", "designer", http.MethodPut, path, minimalForm("t"))
			if len(p.Errors) != 1 {
				t.Errorf("%s: findings %+v", path, p.Errors)
			}
		}
		e.expectProblem(t, http.StatusUnprocessableEntity, "invalid_id", "designer", http.MethodGet, versionPath("perception", "-1"), nil)
		e.expectProblem(t, http.StatusUnprocessableEntity, "invalid_id", "designer", http.MethodPost, versionPath("Perception", "1")+"/publish", nil)
		e.expectProblem(t, http.StatusUnprocessableEntity, "invalid_id", "designer", http.MethodPost, "/v1/projects/"+formsProject+"/forms/x.y/close", nil)
	})

	t.Run("unknown", func(t *testing.T) {
		e.putDraft(t, http.StatusCreated, "known", "1", minimalForm("Known"))
		e.expectProblem(t, http.StatusNotFound, "form_not_found", "designer", http.MethodPost, versionPath("unknown", "1")+"/publish", nil)
		e.expectProblem(t, http.StatusNotFound, "version_not_found", "designer", http.MethodPost, versionPath("known", "2")+"/publish", nil)
		e.expectProblem(t, http.StatusNotFound, "form_not_found", "designer", http.MethodGet, versionPath("unknown", "1"), nil)
		e.expectProblem(t, http.StatusNotFound, "version_not_found", "designer", http.MethodGet, versionPath("known", "2"), nil)
		e.expectProblem(t, http.StatusNotFound, "form_not_found", "designer", http.MethodPost, "/v1/projects/"+formsProject+"/forms/unknown/close", nil)
	})
}

// TestFormClose: a closed form takes no new records, but edits of existing
// ones still sync.
func TestFormClose(t *testing.T) {
	e := newFormsEnv(t)
	e.putDraft(t, http.StatusCreated, "perception", "1", example(t, "perception-survey"))
	e.publish(t, "perception", "1")
	data := readExampleSample(t, "perception-survey", "good-minimal.json")

	existing := newSubmission("perception", "1", data)
	res := e.push(t, "enumerator", existing)
	if res[0].Status != api.PushCreated {
		t.Fatalf("push before closing: %+v", res[0])
	}

	var closed api.FormListEntry
	e.expect(t, http.StatusOK, "designer", http.MethodPost, "/v1/projects/"+formsProject+"/forms/perception/close", nil, &closed)
	if closed.ID != "perception" || closed.State != api.FormClosed || closed.CurrentVersion != "1" || len(closed.Versions) != 1 {
		t.Errorf("close answered %+v", closed)
	}
	// Closing again changes nothing.
	e.expect(t, http.StatusOK, "designer", http.MethodPost, "/v1/projects/"+formsProject+"/forms/perception/close", nil, nil)
	if forms, _ := e.listForms(t, "enumerator"); len(forms) != 1 || forms[0].State != api.FormClosed {
		t.Errorf("the enumerator's list does not show the form closed: %+v", forms)
	}

	edit := existing
	edit.BaseRev = &res[0].Rev
	edit.ClientModifiedAt = existing.ClientModifiedAt.Add(time.Hour)
	edit.Data = bytes.Replace(data, []byte(`"night": 5`), []byte(`"night": 2`), 1)
	if bytes.Equal(edit.Data, data) {
		t.Fatal("the edit changes nothing")
	}
	fresh := newSubmission("perception", "1", data)
	res = e.push(t, "enumerator", fresh, edit)
	if res[0].Status != api.PushRejected || len(res[0].Errors) == 0 || res[0].Errors[0].Keyword != "closed" {
		t.Errorf("a new record of a closed form: %+v", res[0])
	}
	if res[1].Status != api.PushUpdated {
		t.Errorf("an edit of an existing record of a closed form: %+v", res[1])
	}
}

// readExampleSample reads a sample record of an example form.
func readExampleSample(t *testing.T, form, name string) []byte {
	t.Helper()
	b, err := os.ReadFile(filepath.Join("..", "..", "schemas", "examples", "testdata", form, name))
	if err != nil {
		t.Fatal(err)
	}
	return b
}

// TestFormExamplesOverHTTP publishes each example form over HTTP and pushes
// its sample records: the good ones become records, the bad ones are
// rejected with findings inside their data.
func TestFormExamplesOverHTTP(t *testing.T) {
	e := newFormsEnv(t)
	names := schemas.ExampleNames()
	if len(names) == 0 {
		t.Fatal("no example forms")
	}
	for _, name := range names {
		t.Run(name, func(t *testing.T) {
			e.putDraft(t, http.StatusCreated, name, "1", example(t, name))
			e.publish(t, name, "1")
			_, body := e.expect(t, http.StatusOK, "enumerator", http.MethodGet, versionPath(name, "1"), nil, nil)
			if !bytes.Equal(body, compact(t, example(t, name))) {
				t.Error("the enumerator reads another definition than the one uploaded")
			}

			files, err := filepath.Glob(filepath.Join("..", "..", "schemas", "examples", "testdata", name, "*.json"))
			if err != nil || len(files) == 0 {
				t.Fatalf("no samples for %s (%v)", name, err)
			}
			var subs []api.Submission
			var good []bool
			for _, f := range files {
				base := filepath.Base(f)
				if !strings.HasPrefix(base, "good-") && !strings.HasPrefix(base, "bad-") {
					t.Fatalf("sample %s is neither good- nor bad-", base)
				}
				subs = append(subs, newSubmission(name, "1", readExampleSample(t, name, base)))
				good = append(good, strings.HasPrefix(base, "good-"))
			}
			for i, r := range e.push(t, "device", subs...) {
				sample := filepath.Base(files[i])
				switch {
				case good[i] && r.Status != api.PushCreated:
					t.Errorf("%s: %s %+v, want created", sample, r.Status, r.Errors)
				case !good[i] && r.Status != api.PushRejected:
					t.Errorf("%s: %s, want rejected", sample, r.Status)
				case !good[i] && len(r.Errors) == 0:
					t.Errorf("%s: rejected without findings", sample)
				case !good[i]:
					for _, f := range r.Errors {
						if !strings.HasPrefix(f.Path, "/data/") {
							t.Errorf("%s: finding %+v is not inside /data/", sample, f)
						}
					}
				}
			}
		})
	}
}

// TestFormClient drives the routes through the typed methods of api.Client,
// the way fsctl does.
func TestFormClient(t *testing.T) {
	e := newFormsEnv(t)
	ctx := context.Background()
	c := e.ts.apiClient(t, api.WithToken(e.token(t, "designer")))
	def := example(t, "incident-report")

	entry, created, err := c.PutFormVersion(ctx, formsProject, "incident", "1", def)
	if err != nil || !created || entry.State != api.VersionDraft || entry.Title != "Security incident report" {
		t.Fatalf("PutFormVersion: %v %v %+v", err, created, entry)
	}
	if _, created, err = c.PutFormVersion(ctx, formsProject, "incident", "1", def); err != nil || created {
		t.Errorf("PutFormVersion again: %v, created %v", err, created)
	}
	if _, err := c.PublishFormVersion(ctx, formsProject, "incident", "1"); err != nil {
		t.Fatal(err)
	}
	if _, _, err := c.PutFormVersion(ctx, formsProject, "incident", "1", def); !api.IsCode(err, "version_published") {
		t.Errorf("PutFormVersion of a published version: %v", err)
	}
	got, hash, err := c.GetFormVersion(ctx, formsProject, "incident", "1")
	if err != nil || hash != entry.Hash || !bytes.Equal(got, compact(t, def)) {
		t.Errorf("GetFormVersion: %v, hash %s (want %s)", err, hash, entry.Hash)
	}
	list, err := c.ListForms(ctx, formsProject)
	if err != nil || len(list) != 1 || list[0].CurrentVersion != "1" {
		t.Errorf("ListForms: %v %+v", err, list)
	}

	// Exchange with If-None-Match: a 304 is an answer, not an error.
	var out []byte
	status, h, err := c.Exchange(ctx, http.MethodGet, versionPath("incident", "1"), http.Header{"If-None-Match": {hash}}, nil, &out)
	if err != nil || status != http.StatusNotModified || len(out) != 0 || h.Get("ETag") != `"`+hash+`"` {
		t.Errorf("Exchange with If-None-Match: %v, %d, %d bytes, ETag %q", err, status, len(out), h.Get("ETag"))
	}
	// Without it a 304 would be unexpected; a 404 is still a *Problem.
	if status, _, err := c.Exchange(ctx, http.MethodGet, versionPath("incident", "9"), nil, nil, nil); status != http.StatusNotFound || !api.IsCode(err, "version_not_found") {
		t.Errorf("Exchange of an unknown version: %d %v", status, err)
	}

	closed, err := c.CloseForm(ctx, formsProject, "incident")
	if err != nil || closed.State != api.FormClosed {
		t.Errorf("CloseForm: %v %+v", err, closed)
	}
}
