package readmetest

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"regexp"
	"sort"
	"strings"
	"testing"
	"time"

	"github.com/google/uuid"

	"github.com/fieldsync/fieldsync/api"
)

// The README shows values only the reader's own run has: its server, the
// code and ids fsctl printed, a token, a record's revision. Each placeholder
// below is replaced in a command before it runs; the test fails when one no
// longer occurs in the README.
type placeholder struct {
	re   *regexp.Regexp
	why  string
	fill func(w *walk, m []string) (string, error)
	used bool
}

func placeholders() []*placeholder {
	return []*placeholder{
		{
			re:   regexp.MustCompile(`https://sync\.example\.org`),
			why:  "the server: here the real fieldsync, behind a recording proxy on this machine",
			fill: func(w *walk, _ []string) (string, error) { return w.public, nil },
		},
		{
			re:  regexp.MustCompile(`7KQ2M-XR4PD-9VBTC-H3NWA`),
			why: "the enrollment code fsctl device add printed",
			fill: func(w *walk, _ []string) (string, error) {
				return w.printed(`enrollment code:\s+(\S+)`)
			},
		},
		{
			re:  regexp.MustCompile(`3fe17f7e-42c5-427a-aaf3-7a944570076d`),
			why: "the id of a lost tablet: the one fsctl device add made",
			fill: func(w *walk, _ []string) (string, error) {
				return w.printed(`device id:\s+(\S+)`)
			},
		},
		{
			re:  regexp.MustCompile(`"username":"([a-z0-9_-]+)","password":"…"`),
			why: "the user's password",
			fill: func(w *walk, m []string) (string, error) {
				pw, ok := w.passwords[m[1]]
				if !ok {
					return "", fmt.Errorf("no earlier step created %s", m[1])
				}
				return fmt.Sprintf(`"username":%q,"password":%q`, m[1], pw), nil
			},
		},
		{
			re:  regexp.MustCompile(`TOKEN=…`),
			why: "the tablet's access token: a tablet registered and enrolled as in step 4 (the one of step 4 was revoked in step 5)",
			fill: func(w *walk, _ []string) (string, error) {
				tab, err := w.enrollTablet()
				if err != nil {
					return "", err
				}
				return "TOKEN=" + tab.token, nil
			},
		},
		{
			re:  regexp.MustCompile(`\$ANALYST_TOKEN`),
			why: "an access token of the project's analyst, the one step 3 made",
			fill: func(w *walk, _ []string) (string, error) {
				return w.analystToken()
			},
		},
		{
			re:  regexp.MustCompile(`"([1-9][0-9]*)-…"`),
			why: "the record's revision, as the command before answered it",
			fill: func(w *walk, m []string) (string, error) {
				x, ok := w.rec.last(func(x exchange) bool {
					return recordPathRE.MatchString(x.path) && x.json()["rev"] != nil
				})
				if !ok {
					return "", fmt.Errorf("no record was answered before")
				}
				rev, _ := x.json()["rev"].(string)
				if gen, _, _ := strings.Cut(rev, "-"); gen != m[1] {
					return "", fmt.Errorf("the README shows generation %s, the record is at %s", m[1], rev)
				}
				return `"` + rev + `"`, nil
			},
		},
		{
			re:  regexp.MustCompile(`device:7f3c0b1e-…`),
			why: "the tablet the record is handed to: the tablet of the loop",
			fill: func(w *walk, _ []string) (string, error) {
				if w.tablet.id == "" {
					return "", fmt.Errorf("no tablet synced before")
				}
				return "device:" + w.tablet.id, nil
			},
		},
		{
			re:   regexp.MustCompile(`--devices 1000 --batch 50 --total 50000 --pace 60s`),
			why:  "the load test's size, scaled down to keep the test short",
			fill: func(*walk, []string) (string, error) { return "--devices 4 --batch 50 --total 200 --pace 0s", nil },
		},
	}
}

var (
	recordPathRE  = regexp.MustCompile(`^/v1/projects/[^/]+/records/[^/]+(/resolve)?$`)
	projectPathRE = regexp.MustCompile(`/v1/projects/([a-z0-9][a-z0-9_-]*)/`)
	recordIDRE    = regexp.MustCompile(`/records/([0-9a-f-]{36})`)
)

// printed returns the first group of re in the latest output that has it: a
// value the reader reads off the screen.
func (w *walk) printed(re string) (string, error) {
	r := regexp.MustCompile(re)
	for i := len(w.outputs) - 1; i >= 0; i-- {
		if m := r.FindStringSubmatch(w.outputs[i]); m != nil {
			return m[1], nil
		}
	}
	return "", fmt.Errorf("no earlier command printed %s", re)
}

// client is an API client through the recorder, with a user's token.
func (w *walk) client(username string) (*api.Client, error) {
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	c, err := api.NewClient(w.public)
	if err != nil {
		return nil, err
	}
	tok, err := c.Login(ctx, username, w.passwords[username])
	if err != nil {
		return nil, fmt.Errorf("login as %s: %w", username, err)
	}
	c.SetToken(tok.AccessToken)
	return c, nil
}

// enrollTablet does step 4 for a new tablet of the current block's project:
// the admin registers it, the tablet enrolls with the code.
func (w *walk) enrollTablet() (tablet, error) {
	m := projectPathRE.FindStringSubmatch(w.blockTxt)
	if m == nil {
		return tablet{}, fmt.Errorf("the block names no project")
	}
	admin, err := w.client("admin")
	if err != nil {
		return tablet{}, err
	}
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	w.tablets++
	d, err := admin.CreateDevice(ctx, m[1], fmt.Sprintf("Tablet %02d (readme walk)", 7+w.tablets))
	if err != nil {
		return tablet{}, err
	}
	anon, err := api.NewClient(w.public)
	if err != nil {
		return tablet{}, err
	}
	tok, err := anon.Enroll(ctx, d.EnrollmentCode, map[string]string{"model": "Tab A8"})
	if err != nil {
		return tablet{}, err
	}
	w.tablet = tablet{id: d.DeviceID, token: tok.AccessToken}
	return w.tablet, nil
}

// analystToken signs in as the user step 3 made analyst of the block's project.
func (w *walk) analystToken() (string, error) {
	x, ok := w.rec.last(func(x exchange) bool {
		return x.method == "PUT" && strings.Contains(x.path, "/members/") && x.json()["role"] == "analyst"
	})
	if !ok {
		return "", fmt.Errorf("no earlier step made an analyst")
	}
	username := filepath.Base(x.path)
	c, err := w.client(username)
	if err != nil {
		return "", err
	}
	return c.Token(), nil
}

// An interlude is what happens in the field between two README blocks and
// that a later block needs: the test does it through the API before the first
// block containing before.
type interlude struct {
	before string
	why    string
	do     func(w *walk, block string)
	used   bool
}

func interludes() []*interlude {
	return []*interlude{{
		before: `"$R?revs=true"`,
		why: "the record's tablet edits it twice from the same revision (a copy of the interview restored on the tablet), " +
			"and the second edit clashes with the first: a conflict for the analyst to settle",
		do: func(w *walk, block string) {
			t := w.t
			t.Helper()
			pm, rm := projectPathRE.FindStringSubmatch(block), recordIDRE.FindStringSubmatch(block)
			if pm == nil || rm == nil || w.tablet.token == "" {
				t.Fatalf("the reviewing block names no project or record, or no tablet synced before")
			}
			c, err := api.NewClient(w.public, api.WithToken(w.tablet.token))
			if err != nil {
				t.Fatal(err)
			}
			ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
			defer cancel()
			rec, err := c.GetRecord(ctx, pm[1], rm[1], false)
			if err != nil {
				t.Fatalf("the tablet reads its record: %v", err)
			}
			age := ageOf(t, rec.Data)
			var subs []api.Submission
			for i, age := range []int{age + 1, age + 2} {
				subs = append(subs, api.Submission{
					ID: rec.ID, Form: rec.Form, FormVersion: rec.FormVersion, BaseRev: &rec.Rev,
					ClientModifiedAt: rec.ClientModifiedAt.Add(time.Duration(i+1) * time.Hour),
					Data:             withAge(t, rec.Data, age),
				})
			}
			res, err := c.Push(ctx, pm[1], subs)
			if err != nil {
				t.Fatal(err)
			}
			if len(res.Results) != 2 || res.Results[0].Status != "updated" || res.Results[1].Status != "conflict" {
				t.Fatalf("the two edits answered %+v, want updated then conflict", res.Results)
			}
		},
	}}
}

// A broughtFile is a file the reader has before a README command reads it.
type broughtFile struct {
	name    string
	why     string
	content func(w *walk) string
	used    bool
}

func (f *broughtFile) write(w *walk) {
	if err := os.WriteFile(filepath.Join(w.work, f.name), []byte(f.content(w)), 0o600); err != nil {
		w.t.Fatal(err)
	}
}

func broughtFiles() []*broughtFile {
	return []*broughtFile{{
		name: "outbox.ndjson",
		why:  "a tablet's outbox for fsctl push: new interviews of the perception survey, the example test answers",
		content: func(w *walk) string {
			files, err := filepath.Glob(filepath.Join(w.work, "schemas", "examples", "testdata", "perception-survey", "good-*.json"))
			if err != nil || len(files) == 0 {
				w.t.Fatalf("no example answers: %v", err)
			}
			sort.Strings(files)
			var b strings.Builder
			for i, f := range files {
				data, err := os.ReadFile(f)
				if err != nil {
					w.t.Fatal(err)
				}
				line, err := json.Marshal(api.Submission{
					ID: uuid.NewString(), Form: "perception", FormVersion: "2",
					ClientModifiedAt: time.Date(2026, 3, 2, 10, i, 0, 0, time.UTC), Data: compact(w.t, data),
				})
				if err != nil {
					w.t.Fatal(err)
				}
				b.Write(line)
				b.WriteByte('\n')
			}
			return b.String()
		},
	}}
}

// ageOf reads the respondent's age of a perception survey answer.
func ageOf(t *testing.T, data json.RawMessage) int {
	t.Helper()
	var d struct {
		Respondent struct {
			Age int `json:"age"`
		} `json:"respondent"`
	}
	if err := json.Unmarshal(data, &d); err != nil || d.Respondent.Age == 0 {
		t.Fatalf("no respondent age in %s: %v", data, err)
	}
	return d.Respondent.Age
}

// withAge returns the answer with another respondent's age, every other
// answer kept (an edit sends the whole data).
func withAge(t *testing.T, data json.RawMessage, age int) json.RawMessage {
	t.Helper()
	var d map[string]any
	if err := json.Unmarshal(data, &d); err != nil {
		t.Fatal(err)
	}
	d["respondent"].(map[string]any)["age"] = age
	b, err := json.Marshal(d)
	if err != nil {
		t.Fatal(err)
	}
	return b
}

// compact makes one line of a JSON file.
func compact(t *testing.T, data []byte) json.RawMessage {
	t.Helper()
	var b bytes.Buffer
	if err := json.Compact(&b, data); err != nil {
		t.Fatal(err)
	}
	return b.Bytes()
}
