package console_test

import (
	"bytes"
	"context"
	"html"
	"mime/multipart"
	"net/http"
	"net/url"
	"regexp"
	"strings"
	"testing"

	"github.com/fieldsync/fieldsync/internal/audit"
	"github.com/fieldsync/fieldsync/internal/console/consoletest"
	"github.com/fieldsync/fieldsync/internal/domain"
)

// Definitions of the designer tests: v1 and v2 of one form differ in every
// way the comparison reports.
const (
	designerV1 = `{"title":"Safety perception","description":"Asked once a quarter.","schema":{"type":"object",
"required":["consent","gender","household"],
"properties":{
 "consent":{"title":"Consent given","type":"boolean"},
 "name":{"title":"Respondent name","type":"string"},
 "gender":{"title":"Gender","enum":["female","male"]},
 "safe":{"title":"Safe at night?","oneOf":[{"const":"yes","title":"Yes, safe"},{"const":"no","title":"No, not safe"}]},
 "age":{"title":"Age","type":"integer","minimum":0,"maximum":120,"multipleOf":1},
 "household":{"title":"Household members","type":"array","items":{"type":"object","required":["member_age"],
   "properties":{"member_age":{"title":"Member's age","type":"integer"}}}}
}},
"ui":{"choices":{"/gender":{"female":"Woman","male":"Man"}}}}`
	designerV2 = `{"title":"Safety perception","schema":{"type":"object",
"required":["consent","gender","household","safe"],
"properties":{
 "consent":{"title":"Consent given","type":"boolean"},
 "gender":{"title":"Gender","enum":["female","male","other"]},
 "safe":{"title":"Safe at night?","oneOf":[{"const":"yes","title":"Yes, safe"},{"const":"no","title":"No, not safe"}]},
 "age":{"title":"Age","type":"number"},
 "phone":{"title":"Phone","type":"string"},
 "household":{"title":"Household members","type":"array","items":{"type":"object","required":["member_age"],
   "properties":{"member_age":{"title":"Member's age","type":"integer"}}}}
}},
"ui":{"choices":{"/gender":{"female":"Woman","male":"Man","other":"Other"}}}}`
	// designerBroken has one error the meta-schema reports at a pointer.
	designerBroken = `{"title":"Broken","schema":{"type":"object","properties":{"name":{"title":"Name","type":"strin"}}}}`
)

const designerPassword = "designer-password-1234"

func designerEnv(t *testing.T) *consoletest.Env {
	t.Helper()
	env := consoletest.Start(t)
	env.CreateProject(t, "safety", "Safety survey")
	env.AddUser(t, "dana", designerPassword, "safety", domain.RoleDesigner)
	env.AddUser(t, "ana", designerPassword, "safety", domain.RoleAnalyst)
	env.AddUser(t, "eno", designerPassword, "safety", domain.RoleEnumerator)
	return env
}

// rows returns the text of the cells of each <tr> of the table with id, tags
// removed, for assertions on what a reader of the page sees.
func rows(t *testing.T, body, id string) [][]string {
	t.Helper()
	i := strings.Index(body, `id="`+id+`"`)
	if i < 0 {
		t.Fatalf("no #%s on the page", id)
	}
	end := strings.Index(body[i:], "</table>")
	tbody := body[i : i+end]
	if j := strings.Index(tbody, "<tbody>"); j >= 0 {
		tbody = tbody[j:]
	}
	tag := regexp.MustCompile(`<[^>]+>`)
	var out [][]string
	for _, tr := range strings.Split(tbody, "<tr")[1:] {
		var cells []string
		for _, td := range regexp.MustCompile(`<t[hd][^>]*>`).Split(tr, -1)[1:] {
			cells = append(cells, strings.Join(strings.Fields(html.UnescapeString(tag.ReplaceAllString(td, " "))), " "))
		}
		out = append(out, cells)
	}
	return out
}

// TestDesignerUploadFindings: a refused definition shows each finding's
// pointer beside its message, and the pasted text comes back in the
// textarea; the fixed one is saved as a draft and previewed in schema order
// with types, required and choice labels.
func TestDesignerUploadFindings(t *testing.T) {
	env := designerEnv(t)
	c := env.SignIn(t, "dana", designerPassword)

	resp, body := c.PostForm("/projects/safety/forms/upload", url.Values{"form": {"perception"}, "version": {"1"}, "definition": {designerBroken}})
	if resp.StatusCode != http.StatusUnprocessableEntity {
		t.Fatalf("broken definition: %d, want 422", resp.StatusCode)
	}
	got := rows(t, body, "findings")
	if len(got) != 1 || got[0][0] != "/schema/properties/name/type" || !strings.Contains(got[0][1], "must match") {
		t.Errorf("findings = %q, want the pointer /schema/properties/name/type with its message", got)
	}
	if !strings.Contains(body, ">\n"+html.EscapeString(designerBroken)+"</textarea>") {
		t.Errorf("the pasted definition is not kept in the textarea")
	}
	if !strings.Contains(body, `value="perception"`) || !strings.Contains(body, `id="version" name="version" value="1"`) {
		t.Errorf("the form id and version are not kept")
	}
	if _, err := env.Forms.Version(context.Background(), "safety", "perception", "1", false); err == nil {
		t.Errorf("the broken definition was stored")
	}

	// Not JSON at all: the parser's detail, the text kept.
	resp, body = c.PostForm("/projects/safety/forms/upload", url.Values{"form": {"perception"}, "version": {"1"}, "definition": {`{"title": `}})
	if resp.StatusCode != http.StatusBadRequest || !strings.Contains(body, `data-code="bad_json"`) || !strings.Contains(body, ">\n{&#34;title&#34;: </textarea>") {
		t.Errorf("bad JSON: %d, want 400 bad_json with the text kept", resp.StatusCode)
	}
	// Nothing filled in: 422, nothing stored.
	resp, body = c.PostForm("/projects/safety/forms/upload", url.Values{})
	if resp.StatusCode != http.StatusUnprocessableEntity || !strings.Contains(body, `id="upload-error"`) {
		t.Errorf("empty upload: %d, want 422 with the missing fields", resp.StatusCode)
	}

	resp, _ = c.PostForm("/projects/safety/forms/upload", url.Values{"form": {"perception"}, "version": {"1"}, "definition": {designerV1}})
	if resp.StatusCode != http.StatusSeeOther || resp.Header.Get("Location") != "/projects/safety/forms/perception/versions/1?msg=form_draft_created" {
		t.Fatalf("valid definition: %d to %q", resp.StatusCode, resp.Header.Get("Location"))
	}
	resp, body = c.Get("/projects/safety/forms/perception/versions/1")
	if resp.StatusCode != http.StatusOK {
		t.Fatalf("preview: %d", resp.StatusCode)
	}
	want := [][]string{
		{"1", "Consent given", "consent", "yes / no", "✱ yes", ""},
		{"2", "Respondent name", "name", "text", "no", ""},
		{"3", "Gender", "gender", "single choice", "✱ yes", "female — Woman male — Man"},
		{"4", "Safe at night?", "safe", "single choice", "no", "yes — Yes, safe no — No, not safe"},
		{"5", "Age", "age", "whole number", "no", ""},
		{"6", "Household members", "household", "repeat group", "✱ yes", ""},
		{"7", "↳ Member's age", "household/member_age", "whole number", "✱ yes", ""},
	}
	if got := rows(t, body, "questions"); !equalRows(got, want) {
		t.Errorf("questions:\n got %q\nwant %q", got, want)
	}
	if !strings.Contains(body, `id="publish"`) || strings.Contains(body, `id="openrosa"`) {
		t.Errorf("a draft's preview: want a publish button and no OpenRosa section")
	}
	if !strings.Contains(body, "Asked once a quarter.") {
		t.Errorf("the form's description is missing")
	}

	// Editing the draft: the upload page comes prefilled with its id,
	// version and definition, pretty-printed in the designer's key order.
	m := regexp.MustCompile(`href="([^"]+)" id="edit-as-new"`).FindStringSubmatch(body)
	if m == nil {
		t.Fatal("no link to edit the draft")
	}
	_, body = c.Get(html.UnescapeString(m[1]))
	if !strings.Contains(body, `name="form" value="perception"`) || !strings.Contains(body, `name="version" value="1"`) ||
		!strings.Contains(body, ">\n{\n  &#34;title&#34;: &#34;Safety perception&#34;,\n  &#34;description&#34;") {
		t.Errorf("the edit page is not prefilled with the draft")
	}
}

func equalRows(a, b [][]string) bool {
	if len(a) != len(b) {
		return false
	}
	for i := range a {
		if strings.Join(a[i], "\x00") != strings.Join(b[i], "\x00") {
			return false
		}
	}
	return true
}

// TestDesignerUploadFile: a chosen file is the definition, whatever the
// textarea holds; a file over the size limit is refused and not echoed.
func TestDesignerUploadFile(t *testing.T) {
	env := designerEnv(t)
	c := env.SignIn(t, "dana", designerPassword)
	post := func(def []byte) (*http.Response, string) {
		var buf bytes.Buffer
		mw := multipart.NewWriter(&buf)
		_ = mw.WriteField("csrf_token", c.CSRF())
		_ = mw.WriteField("form", "perception")
		_ = mw.WriteField("version", "1")
		_ = mw.WriteField("definition", "ignored when a file is chosen")
		fw, _ := mw.CreateFormFile("file", "perception.json")
		_, _ = fw.Write(def)
		_ = mw.Close()
		req, _ := http.NewRequest(http.MethodPost, env.URL+"/projects/safety/forms/upload", &buf)
		req.Header.Set("Content-Type", mw.FormDataContentType())
		req.Header.Set("Origin", env.URL)
		resp, err := c.HTTP.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		var b bytes.Buffer
		_, _ = b.ReadFrom(resp.Body)
		return resp, b.String()
	}
	resp, body := post(append([]byte(`{"title":"`), bytes.Repeat([]byte("a"), 2<<20)...))
	if resp.StatusCode != http.StatusRequestEntityTooLarge || !strings.Contains(body, `id="upload-dropped"`) {
		t.Errorf("oversized file: %d, want 413 and the file not shown", resp.StatusCode)
	}
	resp, _ = post([]byte(designerV1))
	if resp.StatusCode != http.StatusSeeOther {
		t.Fatalf("file upload: %d", resp.StatusCode)
	}
	fv, err := env.Forms.Version(context.Background(), "safety", "perception", "1", false)
	if err != nil || fv.Title != "Safety perception" {
		t.Fatalf("stored version: %+v, %v", fv, err)
	}
}

// TestDesignerLifecycle: publish, close and reopen through the console go
// through the forms service with the signed-in user as the audit actor;
// the comparison of two versions lists what was added, removed and changed.
func TestDesignerLifecycle(t *testing.T) {
	env := designerEnv(t)
	ctx := context.Background()
	for v, def := range map[string]string{"1": designerV1, "2": designerV2} {
		if _, _, err := env.Forms.PutVersion(ctx, "safety", "perception", v, []byte(def)); err != nil {
			t.Fatal(err)
		}
	}
	c := env.SignIn(t, "dana", designerPassword)
	resp, _ := c.PostForm("/projects/safety/forms/perception/versions/1/publish", url.Values{})
	if resp.StatusCode != http.StatusSeeOther {
		t.Fatalf("publish: %d", resp.StatusCode)
	}
	_, body := c.Get(resp.Header.Get("Location"))
	if !strings.Contains(body, "The version is published") || strings.Contains(body, `id="publish"`) {
		t.Errorf("published version page: want the flash and no publish button")
	}
	// The publish answer's openrosa.warnings: a keyword Collect does not check.
	if !regexp.MustCompile(`id="openrosa-warnings"><li>/age: multipleOf is checked by the server only</li>`).MatchString(body) {
		t.Errorf("published version page: the OpenRosa warning about /age is missing")
	}
	resp, _ = c.PostForm("/projects/safety/forms/perception/close", url.Values{})
	if resp.StatusCode != http.StatusSeeOther {
		t.Fatalf("close: %d", resp.StatusCode)
	}
	_, body = c.Get("/projects/safety/forms")
	if !strings.Contains(body, `data-state="closed"`) || !strings.Contains(body, `id="reopen-perception"`) {
		t.Errorf("forms list after close: want the form closed with a reopen button")
	}
	if resp, _ = c.PostForm("/projects/safety/forms/perception/reopen", url.Values{}); resp.StatusCode != http.StatusSeeOther {
		t.Fatalf("reopen: %d", resp.StatusCode)
	}
	events, _, err := env.Identity.ListAudit(ctx, env.Admin, domain.AuditFilter{ProjectID: "safety"}, "", 50)
	if err != nil {
		t.Fatal(err)
	}
	seen := map[string]string{}
	for _, e := range events {
		seen[e.Type] = e.Actor
	}
	for _, typ := range []string{audit.FormPublished, audit.FormClosed, audit.FormReopened} {
		if seen[typ] != "dana" {
			t.Errorf("audit %s: actor %q, want dana", typ, seen[typ])
		}
	}

	_, body = c.Get("/projects/safety/forms/perception/compare?a=1&b=2")
	want := [][]string{
		{"− removed", "Respondent name", "/name", ""},
		{"± changed", "Gender", "/gender", "choices: female, male → female, male, other"},
		{"± changed", "Safe at night?", "/safe", "required: no → yes"},
		{"± changed", "Age", "/age", "type: whole number → number"},
		{"+ added", "Phone", "/phone", ""},
	}
	if got := rows(t, body, "changes"); !equalRows(got, want) {
		t.Errorf("changes:\n got %q\nwant %q", got, want)
	}
	if !strings.Contains(body, "3 questions unchanged.") {
		t.Errorf("unchanged count missing")
	}
}

// TestDesignerReadersSeeNoActions: an analyst sees the forms and previews
// without any designer action; an enumerator sees published versions only.
func TestDesignerReadersSeeNoActions(t *testing.T) {
	env := designerEnv(t)
	ctx := context.Background()
	for v, def := range map[string]string{"1": designerV1, "2": designerV2} {
		if _, _, err := env.Forms.PutVersion(ctx, "safety", "perception", v, []byte(def)); err != nil {
			t.Fatal(err)
		}
	}
	if _, err := env.Forms.Publish(ctx, "safety", "perception", "1"); err != nil {
		t.Fatal(err)
	}
	actions := regexp.MustCompile(`id="(upload-link|publish[^"]*|close-[^"]*|reopen-[^"]*|new-version-[^"]*|edit-as-new)"|method="post" action="/projects`)
	for _, who := range []string{"ana", "eno"} {
		c := env.SignIn(t, who, designerPassword)
		for _, page := range []string{"/projects/safety/forms", "/projects/safety/forms/perception/versions/1"} {
			resp, body := c.Get(page)
			if resp.StatusCode != http.StatusOK {
				t.Errorf("%s %s: %d", who, page, resp.StatusCode)
			}
			if m := actions.FindString(body); m != "" {
				t.Errorf("%s %s: shows a designer action (%s)", who, page, m)
			}
		}
	}
	eno := env.SignIn(t, "eno", designerPassword)
	if _, body := eno.Get("/projects/safety/forms"); strings.Contains(body, `data-version="2"`) {
		t.Errorf("an enumerator sees the draft in the forms list")
	}
	if resp, body := eno.Get("/projects/safety/forms/perception/versions/2"); resp.StatusCode != http.StatusNotFound || !strings.Contains(body, `data-code="version_not_found"`) {
		t.Errorf("an enumerator opening a draft: %d, want 404 version_not_found as the API answers", resp.StatusCode)
	}
	ana := env.SignIn(t, "ana", designerPassword)
	if _, body := ana.Get("/projects/safety/forms"); !strings.Contains(body, `data-version="2"`) {
		t.Errorf("an analyst does not see the draft")
	}
}

// TestDesignerOpenRosaReasons: a published version ODK Collect cannot use
// shows the generator's reasons (the publish answer's openrosa.reasons).
func TestDesignerOpenRosaReasons(t *testing.T) {
	env := designerEnv(t)
	def := `{"title":"Mixed","schema":{"type":"object","properties":{"code":{"title":"Code","type":["string","integer"]}}}}`
	if _, _, err := env.Forms.PutVersion(context.Background(), "safety", "mixed", "1", []byte(def)); err != nil {
		t.Fatal(err)
	}
	c := env.SignIn(t, "dana", designerPassword)
	resp, _ := c.PostForm("/projects/safety/forms/mixed/versions/1/publish", url.Values{})
	if resp.StatusCode != http.StatusSeeOther {
		t.Fatalf("publish: %d", resp.StatusCode)
	}
	_, body := c.Get(resp.Header.Get("Location"))
	if !regexp.MustCompile(`id="openrosa-reasons"><li>/code: a value of several types`).MatchString(body) {
		t.Errorf("the OpenRosa reason about /code is missing")
	}
}
