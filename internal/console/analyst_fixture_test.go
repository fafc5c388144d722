package console_test

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"testing"
	"time"

	"github.com/fieldsync/fieldsync/api"
	"github.com/fieldsync/fieldsync/internal/console"
	"github.com/fieldsync/fieldsync/internal/console/consoletest"
	"github.com/fieldsync/fieldsync/internal/domain"
	"github.com/fieldsync/fieldsync/internal/records"
)

// surveyDefinition is a small household survey (shared, so both tablets may
// edit a record; labels in English and French): text, a choice with labels,
// a multiple choice, a number and a geopoint, in that order.
const surveyDefinition = `{
  "title": "Household safety",
  "conflict_policy": "merge",
  "shared": true,
  "schema": {
    "$schema": "https://json-schema.org/draft/2020-12/schema",
    "type": "object",
    "properties": {
      "village": {"title": "Village", "type": "string"},
      "feels_safe": {"title": "Feels safe at night", "oneOf": [{"const": "yes", "title": "Yes"}, {"const": "no", "title": "No"}]},
      "threats": {"title": "Threats", "type": "array", "items": {"enum": ["theft", "gbv", "flood"]}},
      "age": {"title": "Age of the respondent", "type": "integer", "minimum": 0, "maximum": 120},
      "location": {"title": "Location", "type": "object", "format": "geopoint"}
    },
    "required": ["village"]
  },
  "ui": {
    "language": "en",
    "choices": {"/threats": {"gbv": "Gender-based violence", "theft": "Theft", "flood": "Flood"}},
    "translations": {"fr": {"labels": {"/feels_safe": "Se sent en sécurité la nuit"}, "choices": {"/feels_safe": {"no": "Non"}, "/threats": {"theft": "Vol"}}}}
  }
}`

// analystEnv is a project "safety" with the published form "household", an
// analyst (alice), and two enrolled tablets that push through the API.
type analystEnv struct {
	*consoletest.Env
	tablets [2]tablet
}

// tablet is an enrolled device with its access token.
type tablet struct {
	id, name, token string
}

const analystPassword = "analyst-password-123"

// startAnalystEnv starts a console with the safety project, its household
// form, analyst alice and two tablets; opts change the console's
// configuration (a map tile layer, say).
func startAnalystEnv(t *testing.T, opts ...func(*console.Config)) *analystEnv {
	t.Helper()
	ctx := context.Background()
	env := consoletest.StartConsole(t, func(c *console.Config) {
		for _, o := range opts {
			o(c)
		}
	})
	env.CreateProject(t, "safety", "Community safety survey")
	env.AddUser(t, "alice", analystPassword, "safety", domain.RoleAnalyst)
	if _, _, err := env.Forms.PutVersion(ctx, "safety", "household", "1", []byte(surveyDefinition)); err != nil {
		t.Fatal(err)
	}
	if _, err := env.Forms.Publish(ctx, "safety", "household", "1"); err != nil {
		t.Fatal(err)
	}
	ae := &analystEnv{Env: env}
	for i, name := range []string{"Tablet North", "Tablet South"} {
		d, code, err := env.Identity.CreateDevice(ctx, env.Admin, "safety", name)
		if err != nil {
			t.Fatal(err)
		}
		pair, _, err := env.Identity.Enroll(ctx, code, nil, "")
		if err != nil {
			t.Fatal(err)
		}
		ae.tablets[i] = tablet{id: d.ID, name: name, token: pair.AccessToken}
	}
	return ae
}

// push sends submissions through POST /v1/projects/safety/sync/push as the
// tablet and returns the results.
func (e *analystEnv) push(t *testing.T, tab tablet, subs ...api.Submission) []api.PushResult {
	t.Helper()
	for i := range subs {
		if subs[i].Form == "" {
			subs[i].Form, subs[i].FormVersion = "household", "1"
		}
	}
	body, _ := json.Marshal(api.PushRequest{Submissions: subs})
	req, _ := http.NewRequest(http.MethodPost, e.URL+"/v1/projects/safety/sync/push", bytes.NewReader(body))
	req.Header.Set("Authorization", "Bearer "+tab.token)
	req.Header.Set("Content-Type", "application/json")
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	var out api.PushResponse
	if resp.StatusCode != http.StatusOK || json.NewDecoder(resp.Body).Decode(&out) != nil {
		t.Fatalf("push: %d", resp.StatusCode)
	}
	return out.Results
}

// recordID is the n-th test record's UUID.
func recordID(n int) string { return fmt.Sprintf("00000000-0000-4000-8000-%012d", n) }

// sub is a new record's submission.
func sub(n int, data string, at time.Time) api.Submission {
	return api.Submission{ID: recordID(n), Data: json.RawMessage(data), ClientModifiedAt: at}
}

// seed pushes three records from the two tablets (one in the north with a
// point, one in the south with a point, one without), a conflicting pair of
// edits of the first, and one item the schema refuses (quarantined). It
// returns the quarantined item's record id.
func (e *analystEnv) seed(t *testing.T) {
	t.Helper()
	t0 := time.Date(2026, 3, 1, 8, 0, 0, 0, time.UTC)
	res := e.push(t, e.tablets[0],
		sub(1, `{"village":"Kibera","feels_safe":"no","threats":["theft","gbv"],"age":34,"location":{"latitude":-1.3133,"longitude":36.7892}}`, t0),
		sub(2, `{"village":"Mathare","feels_safe":"yes","threats":[],"age":51,"location":{"latitude":-1.2620,"longitude":36.8590}}`, t0.Add(time.Minute)))
	for _, r := range res {
		if r.Status != api.PushCreated {
			t.Fatalf("seed push: %+v", r)
		}
	}
	e.push(t, e.tablets[1], sub(3, `{"village":"Korogocho","feels_safe":"yes","age":29}`, t0.Add(2*time.Minute)))
	// Both tablets edit record 1's age from the same base: a clash.
	base := res[0].Rev
	a := sub(1, `{"village":"Kibera","feels_safe":"no","threats":["theft","gbv"],"age":35,"location":{"latitude":-1.3133,"longitude":36.7892}}`, t0.Add(time.Hour))
	a.BaseRev = &base
	b := sub(1, `{"village":"Kibera","feels_safe":"no","threats":["theft","gbv"],"age":43,"location":{"latitude":-1.3133,"longitude":36.7892}}`, t0.Add(2*time.Hour))
	b.BaseRev = &base
	if r := e.push(t, e.tablets[0], a); r[0].Status != api.PushUpdated {
		t.Fatalf("first edit: %+v", r[0])
	}
	if r := e.push(t, e.tablets[1], b); r[0].Status != api.PushConflict {
		t.Fatalf("second edit: %+v", r[0])
	}
	// An age the schema refuses: quarantined.
	if r := e.push(t, e.tablets[1], sub(4, `{"village":"Dandora","age":430}`, t0.Add(3*time.Minute))); r[0].Status != api.PushRejected {
		t.Fatalf("bad item: %+v", r[0])
	}
}

// analystCaller reads records as the admin, for checks after an action.
func analystCaller() records.Caller {
	return records.Caller{Principal: domain.Principal{Subject: "admin", Username: "admin", Admin: true}}
}
