package httpapi

import (
	"context"
	"net/http"
	"regexp"
	"strings"
	"testing"

	"github.com/fieldsync/fieldsync/internal/openrosa/odkengine"
)

func add(n int) *int { return &n }

// filled is one form filled in ODK's engine: the steps of the enumerator and
// the record data the JSON API must give back for them.
type filled struct {
	form  string
	steps []odkengine.Step
	want  string
}

var engineFilled = []filled{
	{form: "incident-report", steps: []odkengine.Step{
		{Ref: "/data/incident_id", Value: "AKM-2024-017"},
		{Ref: "/data/occurred_at", Value: "2024-04-02T21:40:00.000+03:00"},
		{Ref: "/data/type", Value: "other"},
		{Ref: "/data/type_other", Value: "Cattle theft"},
		{Ref: "/data/severity", Value: "high"},
		{Ref: "/data/location", Value: "3.1167 35.6 1200 12"},
		{Ref: "/data/description", Value: "Three armed men took 12 head of cattle at night."},
		{Ref: "/data/victims_count", Value: "2"},
		{Ref: "/data/reported_to", Values: []string{"police", "chief"}},
		{Ref: "/data/follow_up_needed", Value: "true"},
		{Ref: "/data/reporter_anonymous", Value: "false"},
		{Ref: "/data/photo", File: "kraal-01.jpg", Type: "image/jpeg", Text: "JPEG bytes stand-in"},
	}, want: `{"incident_id":"AKM-2024-017","occurred_at":"2024-04-02T21:40:00.000+03:00","type":"other","type_other":"Cattle theft",
		"severity":"high","location":{"latitude":3.1167,"longitude":35.6,"altitude":1200,"accuracy":12},
		"description":"Three armed men took 12 head of cattle at night.","victims_count":2,"reported_to":["police","chief"],
		"follow_up_needed":true,"reporter_anonymous":false,"photo":"kraal-01.jpg"}`},
	{form: "perception-survey", steps: []odkengine.Step{
		{Ref: "/data/consent", Value: "true"},
		{Ref: "/data/interview_start", Value: "2024-05-01T10:00:00.000+03:00"},
		{Ref: "/data/interview_location", Value: "4.85 31.6"},
		{Ref: "/data/respondent/age", Value: "34"},
		{Ref: "/data/respondent/gender", Value: "female"},
		{Ref: "/data/respondent/community", Value: "Gudele"},
		{Ref: "/data/respondent/role", Value: "trader"},
		{Ref: "/data/feeling_safe/day", Value: "4"},
		{Ref: "/data/feeling_safe/night", Value: "2"},
		{Ref: "/data/main_threats", Values: []string{"theft", "other"}},
		{Ref: "/data/main_threats_other", Value: "Drunk drivers"},
		{Ref: "/data/trust/police", Value: "2"},
		{Ref: "/data/trust/chiefs", Value: "4"},
		{Ref: "/data/trust/community_watch", Value: "3"},
		{Ref: "/data/trust/ngos", Value: "5"},
		{Ref: "/data/incidents", Add: add(2)},
		{Ref: "/data/incidents[1]/date", Value: "2024-02-10"},
		{Ref: "/data/incidents[1]/type", Value: "theft"},
		{Ref: "/data/incidents[1]/reported_to", Value: "police"},
		{Ref: "/data/incidents[2]/date", Value: "2024-03-05"},
		{Ref: "/data/incidents[2]/type", Value: "gbv"},
		{Ref: "/data/incidents[2]/reported_to", Value: "nobody"},
		{Ref: "/data/incidents[2]/location", Value: "4.86 31.61 0 5"},
		{Ref: "/data/priorities", Values: []string{"street_lighting", "youth_employment"}},
		{Ref: "/data/comments", Value: "Lights at the market, please."},
	}, want: `{"consent":true,"interview_start":"2024-05-01T10:00:00.000+03:00","interview_location":{"latitude":4.85,"longitude":31.6},
		"respondent":{"age":34,"gender":"female","community":"Gudele","role":"trader"},"feeling_safe":{"day":4,"night":2},
		"main_threats":["theft","other"],"main_threats_other":"Drunk drivers","trust":{"police":2,"chiefs":4,"community_watch":3,"ngos":5},
		"incidents":[{"date":"2024-02-10","type":"theft","reported_to":"police"},
			{"date":"2024-03-05","type":"gbv","reported_to":"nobody","location":{"latitude":4.86,"longitude":31.61,"altitude":0,"accuracy":5}}],
		"priorities":["street_lighting","youth_employment"],"comments":"Lights at the market, please."}`},
}

// engineSubmit submits what the engine made through the bridge, as Collect
// posts it.
func (e *orEnv) engineSubmit(t *testing.T, a odkengine.Answer) (*http.Response, []byte) {
	t.Helper()
	var parts []part
	for _, f := range a.Files {
		parts = append(parts, part{field: f.Name, filename: f.Name, contentType: f.Type, data: []byte(f.Text)})
	}
	return e.submit(t, e.serverURL, a.XML, parts...)
}

var instanceIDPattern = regexp.MustCompile(`<instanceID>uuid:([0-9a-f-]{36})</instanceID>`)

func instanceID(t *testing.T, xml string) string {
	t.Helper()
	m := instanceIDPattern.FindStringSubmatch(xml)
	if m == nil {
		t.Fatalf("no instanceID in %s", xml)
	}
	return m[1]
}

// TestODKEngineRoundTrip: forms downloaded as Collect downloads them, filled
// in ODK's own engine, and submitted through the bridge come back from the
// JSON API equal to what was filled; an edit made in the engine (a new
// instanceID, meta/deprecatedID = the old one) lands as updated, and a second
// edit of the same old instance is merged by the form's policy.
func TestODKEngineRoundTrip(t *testing.T) {
	odkengine.Require(t)
	e := newOREnv(t)
	xforms := map[string]string{}
	for _, f := range e.formList(t, e.serverURL).Forms {
		_, x := e.collect(t, http.MethodGet, f.DownloadURL, nil, "")
		xforms[f.FormID] = string(x)
	}
	var jobs []odkengine.Job
	for _, f := range engineFilled {
		jobs = append(jobs, odkengine.Job{XForm: xforms[f.form], Steps: f.steps})
	}
	answers, err := odkengine.RunAll(context.Background(), jobs)
	if err != nil {
		t.Fatal(err)
	}
	var survey odkengine.Answer
	for i, a := range answers {
		f := engineFilled[i]
		if a.Error != "" || a.Status != "ready" {
			t.Fatalf("%s: the engine did not finish the form: %s %s %s", f.form, a.Error, a.Status, a.Violations)
		}
		resp, raw := e.engineSubmit(t, a)
		if resp.StatusCode != http.StatusCreated {
			t.Fatalf("%s: %d %s\n%s", f.form, resp.StatusCode, raw, a.XML)
		}
		rec := e.record(t, instanceID(t, a.XML))
		if !sameJSONRaw(rec.Data, f.want) {
			t.Errorf("%s: the JSON API gives\n%s\nwant\n%s\n(the engine sent %s)", f.form, rec.Data, f.want, a.XML)
		}
		if f.form == "perception-survey" {
			survey = a
		}
		if len(a.Files) > 0 && (len(rec.Attachments) != len(a.Files) || rec.Attachments[0].Size != int64(len(a.Files[0].Text))) {
			t.Errorf("%s: attachments %+v, want the engine's files %+v", f.form, rec.Attachments, a.Files)
		}
	}

	// Two edits of the sent survey, as Collect makes them: the first
	// updates, the second (from the same sent instance) merges.
	edits, err := odkengine.RunAll(context.Background(), []odkengine.Job{
		{XForm: xforms["perception-survey"], Edit: survey.XML, Steps: []odkengine.Step{{Ref: "/data/comments", Value: "Lights and patrols."}}},
		{XForm: xforms["perception-survey"], Edit: survey.XML, Steps: []odkengine.Step{{Ref: "/data/respondent/village", Value: "Block 4"}}},
	})
	if err != nil {
		t.Fatal(err)
	}
	first := instanceID(t, survey.XML)
	for i, want := range []string{"Received.", "merged"} {
		a := edits[i]
		if a.Error != "" || a.Status != "ready" {
			t.Fatalf("edit %d: %s %s %s", i, a.Error, a.Status, a.Violations)
		}
		if instanceID(t, a.XML) == first || !strings.Contains(a.XML, "<deprecatedID>uuid:"+first+"</deprecatedID>") {
			t.Fatalf("edit %d is not an edit as Collect makes it (new instanceID, deprecatedID %s):\n%s", i, first, a.XML)
		}
		resp, raw := e.engineSubmit(t, a)
		if resp.StatusCode != http.StatusCreated || !strings.Contains(orMessage(t, raw), want) {
			t.Errorf("edit %d: %d %s, want 201 %q", i, resp.StatusCode, raw, want)
		}
	}
	rec := e.record(t, first)
	if !strings.Contains(string(rec.Data), `"comments":"Lights and patrols."`) || !strings.Contains(string(rec.Data), `"village":"Block 4"`) {
		t.Errorf("after both edits the record holds %s, want both changes", rec.Data)
	}
}
