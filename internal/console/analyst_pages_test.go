package console_test

import (
	"archive/zip"
	"bytes"
	"encoding/json"
	"net/http"
	"net/url"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/fieldsync/fieldsync/internal/domain"
)

// TestAnalystPages drives the analysts' pages with a plain HTTP client (the
// browser test covers the same flow in Chromium): records pushed through the
// API show in the table with labels and filter by device, review state and
// date; the record page lays out the answers and diffs two revisions; the
// conflict resolves; the quarantine keeps text that is not JSON, shows the
// findings of a refused correction and applies a good one; every export
// format downloads; the map draws the points.
func TestAnalystPages(t *testing.T) {
	e := startAnalystEnv(t)
	e.seed(t)
	c := e.SignIn(t, "alice", analystPassword)

	// The data index counts each form's submissions (the quarantined item
	// is not one).
	if _, body := c.Get("/projects/safety/data"); !strings.Contains(body, `<td data-count="household">3</td>`) {
		t.Error("the data index does not count the household form's 3 submissions")
	}

	// The table: labels for choices, device names, conflicts flagged.
	resp, body := c.Get("/projects/safety/data/forms/household")
	if resp.StatusCode != http.StatusOK {
		t.Fatalf("table: %d\n%s", resp.StatusCode, body)
	}
	for _, want := range []string{"Kibera", "Mathare", "Korogocho", "Theft, Gender-based violence", "Tablet North", "Tablet South", "1 to resolve", "Feels safe at night"} {
		if !strings.Contains(body, want) {
			t.Errorf("table lacks %q", want)
		}
	}
	if strings.Contains(body, "Dandora") {
		t.Error("the quarantined item shows in the table")
	}
	// Filters: the device, a review state nobody has yet, a date range.
	_, body = c.Get("/projects/safety/data/forms/household?device=" + e.tablets[1].id)
	if !strings.Contains(body, "Korogocho") || strings.Contains(body, "Mathare") {
		t.Errorf("device filter: want only the south tablet's record")
	}
	// The total is what the table lists (one page here): record 3, and
	// record 1, whose last edit came from this tablet.
	if rows := strings.Count(body, "<tr data-id="); rows != 2 || !strings.Contains(body, "2 submissions match the filters.") {
		t.Errorf("device filter: %d rows, total %s", rows, regexp.MustCompile(`<p id="total">.*</p>`).FindString(body))
	}
	_, body = c.Get("/projects/safety/data/forms/household?review_state=approved")
	if !strings.Contains(body, `id="no-records"`) {
		t.Error("review-state filter: want no record")
	}
	_, body = c.Get("/projects/safety/data/forms/household?since=2000-01-01&until=2001-01-01")
	if !strings.Contains(body, `id="no-records"`) {
		t.Error("date filter: want no record")
	}
	resp, body = c.Get("/projects/safety/data/forms/household?since=yesterday")
	if resp.StatusCode != http.StatusBadRequest || !strings.Contains(body, `data-code="invalid_query"`) {
		t.Errorf("bad date: %d", resp.StatusCode)
	}

	// The record page: answers in the form's order with titles and labels,
	// history and the diff of the last revision: the merge of the clashing
	// edit, whose later age (43) stood over the first edit's (35).
	resp, body = c.Get("/projects/safety/data/records/" + recordID(1))
	if resp.StatusCode != http.StatusOK {
		t.Fatalf("record: %d", resp.StatusCode)
	}
	order := []string{"Village", "Feels safe at night", "Threats", "Age of the respondent", "Location (latitude)"}
	last := -1
	for _, title := range order {
		i := strings.Index(body, "<dt>"+title+"</dt>")
		if i < 0 || i < last {
			t.Errorf("record page: %q missing or out of the form's order", title)
		}
		last = i
	}
	if !regexp.MustCompile(`(?s)id="diff".*Age of the respondent.*<del>35</del>.*<ins>43</ins>`).MatchString(body) {
		t.Error("record page: no diff of age 35 → 43")
	}

	// The answers in the form's other language.
	_, body = c.Get("/projects/safety/data/records/" + recordID(1) + "?lang=fr")
	for _, want := range []string{"<dt>Se sent en sécurité la nuit</dt>", ">Non</dd>", "Vol, Gender-based violence", `<option value="fr" selected>`} {
		if !strings.Contains(body, want) {
			t.Errorf("record in French lacks %q", want)
		}
	}
	_, frTable := c.Get("/projects/safety/data/forms/household?lang=fr")
	if !strings.Contains(frTable, "Se sent en sécurité la nuit") || !strings.Contains(frTable, "?lang=fr") {
		t.Error("table in French: no French title, or record links without the language")
	}
	_, body = c.Get("/projects/safety/data/records/" + recordID(1))

	// Two revisions of one's choosing: the first against the current one.
	revs := regexp.MustCompile(`name="a" value="([^"]+)"`).FindAllStringSubmatch(body, -1)
	if len(revs) != 4 {
		t.Fatalf("history: %d revisions, want 4 (created, edited, the clashing edit, the merge)", len(revs))
	}
	_, body = c.Get("/projects/safety/data/records/" + recordID(1) + "?a=" + url.QueryEscape(revs[0][1]) + "&b=" + url.QueryEscape(revs[3][1]))
	if !regexp.MustCompile(`(?s)id="diff".*<del>34</del>.*<ins>43</ins>`).MatchString(body) {
		t.Error("diff of the first and last revisions: no age 34 → 43")
	}
	resp, _ = c.Get("/projects/safety/data/records/" + recordID(1) + "?a=1-nope&b=" + url.QueryEscape(revs[3][1]))
	if resp.StatusCode != http.StatusBadRequest {
		t.Errorf("diff with an unknown revision: %d", resp.StatusCode)
	}

	// Review with a comment: the thread and the state show it.
	resp, _ = c.PostForm("/projects/safety/data/records/"+recordID(1)+"/review", url.Values{"review_state": {"has_issues"}, "comment": {"Age differs between visits"}})
	if resp.StatusCode != http.StatusSeeOther {
		t.Fatalf("review: %d", resp.StatusCode)
	}
	_, body = c.Get("/projects/safety/data/records/" + recordID(1))
	if !strings.Contains(body, "Age differs between visits") || !strings.Contains(body, "received → has issues") {
		t.Error("review thread: the comment or the state change is missing")
	}
	resp, _ = c.PostForm("/projects/safety/data/records/"+recordID(1)+"/assign", url.Values{"assigned_to": {"alice"}})
	if resp.StatusCode != http.StatusSeeOther {
		t.Fatalf("assign: %d", resp.StatusCode)
	}

	// Conflicts: each side with who and when; resolve by picking the side
	// that did not stand (35).
	_, body = c.Get("/projects/safety/data/records/" + recordID(1) + "/conflicts")
	for _, want := range []string{"Age of the respondent", "Tablet North", "Tablet South", "35", "43"} {
		if !strings.Contains(body, want) {
			t.Errorf("conflicts page lacks %q", want)
		}
	}
	rev := regexp.MustCompile(`name="rev" value="([^"]+)"`).FindStringSubmatch(body)
	side := regexp.MustCompile(`name="pick-0" value="(v\d)" id="pick-0-v\d"`).FindAllStringSubmatch(body, -1)
	if rev == nil || len(side) != 1 {
		t.Fatalf("conflicts form: rev %v, sides to pick %v", rev, side)
	}
	resp, body = c.PostForm("/projects/safety/data/records/"+recordID(1)+"/resolve", url.Values{"rev": {rev[1]}, "pick-0": {side[0][1]}})
	if resp.StatusCode != http.StatusSeeOther {
		t.Fatalf("resolve: %d %s", resp.StatusCode, body)
	}
	rec, _, err := e.Records.Get(t.Context(), analystCaller(), "safety", recordID(1), false)
	if err != nil || len(rec.Conflicts) != 0 || !strings.Contains(string(rec.Data), `"age":35`) {
		t.Errorf("after resolve: %s, %d conflicts, %v", rec.Data, len(rec.Conflicts), err)
	}
	// The same form again: the rev is stale now.
	resp, body = c.PostForm("/projects/safety/data/records/"+recordID(1)+"/resolve", url.Values{"rev": {rev[1]}, "pick-0": {side[0][1]}})
	if resp.StatusCode != http.StatusPreconditionFailed || !strings.Contains(body, "rev_mismatch") {
		t.Errorf("stale resolve: %d", resp.StatusCode)
	}

	// Quarantine: the item with its finding.
	_, body = c.Get("/projects/safety/data/quarantine")
	qid := regexp.MustCompile(`id="q-([0-9a-f]+)"`).FindStringSubmatch(body)
	if qid == nil || !strings.Contains(body, "/age") || !strings.Contains(body, "Dandora") || !strings.Contains(body, "Tablet South") {
		t.Fatalf("quarantine page: no item with its finding\n%s", body)
	}
	if !strings.Contains(body, ", 1 attempt") || strings.Contains(body, "1 attempts") {
		t.Error(`quarantine page: want "1 attempt" (the count's singular)`)
	}
	reapply := "/projects/safety/data/quarantine/" + qid[1] + "/reapply"
	// Not JSON: shown again with the text kept.
	resp, body = c.PostForm(reapply, url.Values{"data": {`{"village": "Dandora", "age": 43`}})
	if resp.StatusCode != http.StatusUnprocessableEntity || !strings.Contains(body, `{&#34;village&#34;: &#34;Dandora&#34;, &#34;age&#34;: 43</textarea>`) {
		t.Errorf("not JSON: %d, text not kept", resp.StatusCode)
	}
	// Still wrong: refused, the entry open with the new finding and the text.
	resp, _ = c.PostForm(reapply, url.Values{"data": {`{"village":"Dandora","age":-4}`}})
	if resp.StatusCode != http.StatusSeeOther {
		t.Fatalf("refused reapply: %d", resp.StatusCode)
	}
	_, body = c.Get("/projects/safety/data/quarantine")
	if !strings.Contains(body, "was refused") || !strings.Contains(body, "-4") || !strings.Contains(body, "minimum") {
		t.Error("refused correction: the findings or the text are missing")
	}
	resp, _ = c.PostForm(reapply, url.Values{"data": {`{"village":"Dandora","age":43}`}})
	if resp.StatusCode != http.StatusSeeOther || !strings.Contains(resp.Header.Get("Location"), "msg=reapplied") {
		t.Fatalf("reapply: %d %s", resp.StatusCode, resp.Header.Get("Location"))
	}
	_, body = c.Get("/projects/safety/data/forms/household")
	if !strings.Contains(body, "Dandora") {
		t.Error("the corrected item is not in the table")
	}

	// Dismissal needs a reason (the service's rule, shown as its error).
	e.push(t, e.tablets[0], sub(5, `{"village":"Test interview","age":999}`, time.Now()))
	_, body = c.Get("/projects/safety/data/quarantine")
	qid = regexp.MustCompile(`id="q-([0-9a-f]+)"`).FindStringSubmatch(body)
	if qid == nil {
		t.Fatal("the second bad item is not in the quarantine")
	}
	resp, body = c.PostForm("/projects/safety/data/quarantine/"+qid[1]+"/dismiss", url.Values{"reason": {"  "}})
	if resp.StatusCode != http.StatusUnprocessableEntity || !strings.Contains(body, "invalid_dismissal") {
		t.Errorf("dismiss without a reason: %d", resp.StatusCode)
	}
	resp, _ = c.PostForm("/projects/safety/data/quarantine/"+qid[1]+"/dismiss", url.Values{"reason": {"a test interview"}})
	if resp.StatusCode != http.StatusSeeOther {
		t.Fatalf("dismiss: %d", resp.StatusCode)
	}
	_, body = c.Get("/projects/safety/data/quarantine?state=dismissed")
	if !strings.Contains(body, "a test interview") || strings.Contains(body, `class="reapply"`) {
		t.Error("dismissed list: no reason, or still a re-apply form")
	}

	// Every export format downloads, through the API's export.
	for _, f := range []string{"csv", "csv.zip", "xlsx", "ndjson", "geojson"} {
		resp, body := c.Get("/projects/safety/data/forms/household/export?format=" + url.QueryEscape(f) + "&labels=true&bom=&review_state=")
		if resp.StatusCode != http.StatusOK || len(body) == 0 || !strings.Contains(resp.Header.Get("Content-Disposition"), "household."+f) {
			t.Errorf("export %s: %d, %d bytes, %q", f, resp.StatusCode, len(body), resp.Header.Get("Content-Disposition"))
			continue
		}
		switch f {
		case "csv":
			if !strings.Contains(body, "Gender-based violence") || !strings.Contains(body, "Dandora") {
				t.Errorf("csv with labels: %.300s", body)
			}
		case "csv.zip", "xlsx":
			if _, err := zip.NewReader(bytes.NewReader([]byte(body)), int64(len(body))); err != nil {
				t.Errorf("%s is not a zip: %v", f, err)
			}
		case "geojson":
			var fc struct{ Features []json.RawMessage }
			if json.Unmarshal([]byte(body), &fc) != nil || len(fc.Features) != 4 {
				t.Errorf("geojson: %d features", len(fc.Features))
			}
		}
	}
	resp, body = c.Get("/projects/safety/data/forms/household/export?format=pdf")
	if resp.StatusCode != http.StatusBadRequest || !strings.Contains(body, `id="error"`) {
		t.Errorf("unknown format: %d", resp.StatusCode)
	}

	// The map: two points (one record has no location), a scale bar.
	_, body = c.Get("/projects/safety/data/forms/household/map")
	if n := strings.Count(body, `class="map-point"`); n != 2 {
		t.Errorf("map: %d points, want 2", n)
	}
	if !strings.Contains(body, `id="map-scale"`) || !strings.Contains(body, "2 submissions have no location") {
		t.Error("map: no scale bar or no note of the records without a location")
	}
	// Its way back to the table keeps the filters (html/template would
	// percent-encode a query written after a literal "?").
	_, body = c.Get("/projects/safety/data/forms/household/map?review_state=received")
	if want := `href="/projects/safety/data/forms/household?review_state=received"`; !strings.Contains(body, want) {
		t.Errorf("map: the link back to the table lost its filters; want %s", want)
	}
}

// TestAnalystPagesRefuseOthers: an enumerator and a designer see no data of
// the analysts' pages (the role table checks every route; this checks the
// page bodies carry nothing).
func TestAnalystPagesRefuseOthers(t *testing.T) {
	e := startAnalystEnv(t)
	e.seed(t)
	e.AddUser(t, "erin", analystPassword, "safety", domain.RoleEnumerator)
	e.AddUser(t, "dora", analystPassword, "safety", domain.RoleDesigner)
	for _, who := range []string{"erin", "dora"} {
		c := e.SignIn(t, who, analystPassword)
		for _, p := range []string{"/projects/safety/data/forms/household", "/projects/safety/data/records/" + recordID(1),
			"/projects/safety/data/forms/household/export?format=csv", "/projects/safety/data/forms/household/map"} {
			resp, body := c.Get(p)
			if resp.StatusCode != http.StatusForbidden || strings.Contains(body, "Kibera") {
				t.Errorf("%s on %s: %d", who, p, resp.StatusCode)
			}
		}
		_, body := c.Get("/projects/safety")
		if strings.Contains(body, `href="/projects/safety/data"`) {
			t.Errorf("%s sees the Data link", who)
		}
	}
}
