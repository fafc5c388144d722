package console_test

import (
	"strings"
	"testing"
)

// TestBrowserAnalyst: an analyst signs in, opens the data of the project,
// sees the records pushed through the API in the table and filters them by
// device, opens a record, resolves its conflict, corrects and re-applies a
// quarantined item, downloads exports with the session, and sees the map.
// An enumerator then sees none of it.
func TestBrowserAnalyst(t *testing.T) {
	e := startAnalystEnv(t)
	e.seed(t)
	e.AddUser(t, "erin", analystPassword, "safety", "enumerator")
	b := e.NewBrowser(t)

	b.SignIn("alice", analystPassword)
	b.Visit("/projects/safety")
	b.Submit(`header nav a[href="/projects/safety/data"]`)
	b.Submit(`#data-forms a[href="/projects/safety/data/forms/household"]`)
	table := b.Text("#submissions tbody")
	for _, want := range []string{"Kibera", "Mathare", "Korogocho", "Theft, Gender-based violence", "Tablet North", "⚠ 1 to resolve"} {
		if !strings.Contains(table, want) {
			t.Errorf("table lacks %q:\n%s", want, table)
		}
	}
	b.CheckAccessible()
	shot(t, b, "analyst-submissions")

	// Filter by the south tablet (the last to write record 1, Kibera, too).
	b.Fill("#f-device", e.tablets[1].id)
	b.Submit("#apply-filters")
	if got := b.Text("#submissions tbody"); !strings.Contains(got, "Korogocho") || strings.Contains(got, "Mathare") {
		t.Errorf("filtered by device: %q", got)
	}
	b.Submit("#clear-filters")

	// Newest first unless asked, said in words; the sort control switches.
	if got := b.Text("#sort-note"); !strings.Contains(got, "newest first") {
		t.Errorf("sort note: %q", got)
	}
	if got := b.Text("#submissions tbody tr:first-child"); !strings.Contains(got, "Korogocho") {
		t.Errorf("newest first: the first row is %q", got)
	}
	b.Fill("#f-order", "asc")
	b.Submit("#apply-filters")
	if got := b.Text("#submissions tbody tr:first-child"); !strings.Contains(got, "Kibera") || !strings.Contains(b.Text("#sort-note"), "oldest first") {
		t.Errorf("oldest first: the first row is %q", got)
	}
	b.CheckAccessible()

	// The record, then its conflict.
	b.Submit(`#submissions tr[data-id="` + recordID(1) + `"] th a`)
	if got := b.Text("#answers"); !strings.Contains(got, "Feels safe at night") || !strings.Contains(got, "No") {
		t.Errorf("answers: %q", got)
	}
	if got := b.Text("#diff"); !strings.Contains(got, "Age of the respondent") {
		t.Errorf("diff: %q", got)
	}
	b.CheckAccessible()
	shot(t, b, "analyst-record")
	b.Submit("#conflicts-link")
	if got := b.Text("#conflict-0"); !strings.Contains(got, "Tablet North") || !strings.Contains(got, "Tablet South") {
		t.Errorf("conflict sides: %q", got)
	}
	b.CheckAccessible()
	shot(t, b, "analyst-conflict")
	b.Click(`#conflict-0 input[name="pick-0"][value^="v"]`)
	b.Submit("#resolve")
	if got := b.Text(".flash"); !strings.Contains(got, "resolved") {
		t.Errorf("after resolve: %q", got)
	}
	if got := b.Text("#record-facts"); !strings.Contains(got, "none") {
		t.Errorf("conflicts left after resolve: %q", got)
	}

	// The quarantine: correct the age and re-apply.
	b.Submit(`header nav a[href="/projects/safety/data/quarantine"]`)
	if got := b.Text(".quarantine-item"); !strings.Contains(got, "must be <= 120") {
		t.Errorf("quarantine item: %q", got)
	}
	// The version to re-apply against: the submitted one unless changed.
	if got := b.Eval(`document.querySelector(".quarantine-item select[name=form_version]").value`); got != "1" {
		t.Errorf("re-apply version: %v, want the submitted 1", got)
	}
	b.CheckAccessible()
	shot(t, b, "analyst-quarantine")
	b.Fill(".quarantine-item textarea", `{"village": "Dandora", "age": 43}`)
	b.Submit(".quarantine-item form.reapply button")
	if got := b.Text(".flash"); !strings.Contains(got, "applied") || b.Exists(".quarantine-item") {
		t.Errorf("after re-apply: %q", got)
	}

	// Downloads with the browser's session: the bytes arrive.
	b.Visit("/projects/safety/data/forms/household")
	for _, f := range []string{"csv", "xlsx"} {
		got, _ := b.Eval(`(() => {
  const x = new XMLHttpRequest();
  x.open("GET", "/projects/safety/data/forms/household/export?format=` + f + `&labels=true", false);
  x.send();
  return x.status + " " + x.getResponseHeader("Content-Disposition") + " " + (x.responseText.length > 100);
})()`).(string)
		if got != `200 attachment; filename="household.`+f+`" true` {
			t.Errorf("download %s: %q", f, got)
		}
	}
	if !b.Exists(`#downloads button[value="csv.zip"]`) || !b.Exists(`#downloads button[value="geojson"]`) {
		t.Error("a download button is missing")
	}

	// The map.
	b.Submit(`#form-title a`)
	if n, _ := b.Eval(`document.querySelectorAll("#map circle").length`).(float64); n != 2 {
		t.Errorf("map: %v points, want 2 (two records have no location)", n)
	}
	b.CheckAccessible()
	shot(t, b, "analyst-map")

	// An enumerator sees no data.
	b.Submit("#signout")
	b.SignIn("erin", analystPassword)
	b.Visit("/projects/safety/data/forms/household")
	if got := b.Eval(`document.querySelector("#error").dataset.code`); got != "forbidden" {
		t.Errorf("enumerator on the table: %v", got)
	}
	if strings.Contains(b.Text("main"), "Kibera") {
		t.Error("the enumerator sees a record")
	}
}
