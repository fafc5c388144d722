package console_test

import (
	"html"
	"net/http"
	"net/url"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/fieldsync/fieldsync/api"
	"github.com/fieldsync/fieldsync/internal/domain"
)

// TestQuarantineReapplyVersion: each open entry's re-apply form has a
// labelled select of the form's published versions (drafts left out), the
// submitted one chosen. An item refused under version 1 (age over 120) is
// applied against version 2, whose schema allows it, and the entry is
// resolved; an unknown version is the service's refusal, shown on the page
// with the text kept and the entry left open.
func TestQuarantineReapplyVersion(t *testing.T) {
	e := startAnalystEnv(t)
	ctx := t.Context()
	relaxed := strings.Replace(surveyDefinition, `"maximum": 120`, `"maximum": 500`, 1)
	if relaxed == surveyDefinition {
		t.Fatal("the fixture's age maximum moved")
	}
	if _, _, err := e.Forms.PutVersion(ctx, "safety", "household", "2", []byte(relaxed)); err != nil {
		t.Fatal(err)
	}
	if _, err := e.Forms.Publish(ctx, "safety", "household", "2"); err != nil {
		t.Fatal(err)
	}
	if _, _, err := e.Forms.PutVersion(ctx, "safety", "household", "3-draft", []byte(relaxed)); err != nil {
		t.Fatal(err)
	}
	if r := e.push(t, e.tablets[0], sub(4, `{"village":"Dandora","age":430}`, time.Now())); r[0].Status != api.PushRejected {
		t.Fatalf("the v1 item: %+v", r[0])
	}
	c := e.SignIn(t, "alice", analystPassword)

	_, body := c.Get("/projects/safety/data/quarantine")
	m := regexp.MustCompile(`id="q-([0-9a-f]+)"`).FindStringSubmatch(body)
	if m == nil {
		t.Fatalf("no quarantine entry\n%s", body)
	}
	id := m[1]
	sel := regexp.MustCompile(`(?s)<select id="version-` + id + `" name="form_version">(.*?)</select>`).FindStringSubmatch(body)
	if sel == nil || !strings.Contains(body, `<label for="version-`+id+`">Form version to check it against</label>`) {
		t.Fatalf("no labelled version select in the entry's re-apply form\n%s", body)
	}
	opts := regexp.MustCompile(`<option value="([^"]*)"( selected)?>([^<]*)</option>`).FindAllStringSubmatch(sel[1], -1)
	var got []string
	for _, o := range opts {
		got = append(got, o[1]+o[2]+"="+html.UnescapeString(o[3]))
	}
	if want := []string{"1 selected=1 (as submitted)", "2=2"}; strings.Join(got, ",") != strings.Join(want, ",") {
		t.Errorf("version options %q, want %q (published only, the submitted one chosen)", got, want)
	}

	reapply := "/projects/safety/data/quarantine/" + id + "/reapply"
	data := `{"village":"Dandora","age":430,"feels_safe":"no"}`
	// A version the form does not have: refused by the service, the entry
	// open with its finding and the text kept.
	resp, _ := c.PostForm(reapply, url.Values{"data": {data}, "form_version": {"9"}})
	if resp.StatusCode != http.StatusSeeOther || strings.Contains(resp.Header.Get("Location"), "msg=") {
		t.Fatalf("unknown version: %d %s", resp.StatusCode, resp.Header.Get("Location"))
	}
	_, body = c.Get("/projects/safety/data/quarantine")
	// (feels_safe is only in the text sent, not in the submission.)
	if !strings.Contains(body, `form &#34;household&#34; version &#34;9&#34; is not known in this project`) ||
		!strings.Contains(body, `&#34;feels_safe&#34;: &#34;no&#34;`) {
		t.Errorf("unknown version: the finding or the text is missing\n%s", body)
	}
	if !strings.Contains(body, `id="q-`+id+`"`) || !strings.Contains(body, `/form_version`) {
		t.Errorf("unknown version: the entry is not open with the finding at /form_version")
	}

	// Against version 2 it is applied, the record of version 2, the entry
	// resolved.
	resp, _ = c.PostForm(reapply, url.Values{"data": {data}, "form_version": {"2"}})
	if resp.StatusCode != http.StatusSeeOther || !strings.Contains(resp.Header.Get("Location"), "msg=reapplied") {
		t.Fatalf("reapply against v2: %d %s", resp.StatusCode, resp.Header.Get("Location"))
	}
	rec, _, err := e.Records.Get(ctx, analystCaller(), "safety", recordID(4), false)
	if err != nil || rec.FormVersion != "2" || !strings.Contains(string(rec.Data), `"age":430`) {
		t.Errorf("record after reapply: version %q, %s, %v", rec.FormVersion, rec.Data, err)
	}
	items, _, err := e.Records.Quarantine(ctx, "safety", domain.QuarantineFilter{States: []string{domain.QuarantineResolved}}, "", 10)
	if err != nil || len(items) != 1 || items[0].ID != id {
		t.Errorf("resolved entries: %d, %v", len(items), err)
	}
	_, body = c.Get("/projects/safety/data/quarantine")
	if strings.Contains(body, `id="q-`+id+`"`) {
		t.Error("the entry is still listed as open")
	}
}
