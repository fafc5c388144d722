package httpapi

import (
	"encoding/json"
	"net/http"
	"strings"
	"testing"

	"github.com/fieldsync/fieldsync/api"
)

// TestAnswersAreNotStored: answers carry survey data or tokens, so no browser,
// proxy or CDN may keep a copy: every answer says Cache-Control: no-store,
// errors included.
func TestAnswersAreNotStored(t *testing.T) {
	e := newSyncEnv(t)
	sub := e.newSub("survey", `{"name": "Amina"}`)
	e.wantStatuses(t, e.push(t, e.devA.token, sub), api.PushCreated)
	for _, tc := range []struct {
		name, method, path, token string
		body                      any
	}{
		{"token pair", http.MethodPost, "/v1/auth/token", "", api.TokenRequest{Username: "ana", Password: "pw-of-ana-1234"}},
		{"failed sign-in", http.MethodPost, "/v1/auth/token", "", api.TokenRequest{Username: "ana", Password: "wrong password"}},
		{"pull (survey data)", http.MethodGet, "/v1/projects/" + syncProject + "/sync/pull", e.analyst, nil},
		{"record (survey data)", http.MethodGet, "/v1/projects/" + syncProject + "/records/" + sub.ID, e.analyst, nil},
		{"push answer", http.MethodPost, "/v1/projects/" + syncProject + "/sync/push", e.devA.token, api.PushRequest{Submissions: []api.Submission{sub}}},
		{"problem", http.MethodGet, "/v1/projects/" + syncProject + "/records/nope", e.analyst, nil},
		{"unknown route", http.MethodGet, "/v1/nowhere", "", nil},
		{"health", http.MethodGet, "/healthz", "", nil},
	} {
		t.Run(tc.name, func(t *testing.T) {
			resp, _ := e.ts.call(t, tc.method, tc.path, tc.token, tc.body)
			if got := resp.Header.Get("Cache-Control"); got != "no-store" {
				t.Errorf("%s %s: %d, Cache-Control %q, want no-store", tc.method, tc.path, resp.StatusCode, got)
			}
		})
	}
}

// TestAccessLogNamesCallerAndProject: a request's log line says who made it
// and in which project (never with what token), and its duration's unit.
func TestAccessLogNamesCallerAndProject(t *testing.T) {
	e := newSyncEnv(t)
	e.wantStatuses(t, e.push(t, e.devA.token, e.newSub("survey", `{"name": "Amina"}`)), api.PushCreated)
	var line map[string]any
	for l := range strings.SplitSeq(e.ts.logs.String(), "\n") {
		if strings.Contains(l, `"route":"/v1/projects/{project}/sync/push"`) {
			if err := json.Unmarshal([]byte(l), &line); err != nil {
				t.Fatal(err)
			}
		}
	}
	if line == nil {
		t.Fatalf("no access log line of the push:\n%s", e.ts.logs.String())
	}
	if line["subject"] != e.devA.subject || line["project"] != syncProject {
		t.Errorf("subject %v, project %v; want %s in %s", line["subject"], line["project"], e.devA.subject, syncProject)
	}
	if _, ok := line["duration_ms"].(float64); !ok {
		t.Errorf("duration_ms %v", line["duration_ms"])
	}
}
