package forms

import (
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	"github.com/fieldsync/fieldsync/internal/domain"
	"github.com/fieldsync/fieldsync/schemas"
)

// want is one expected finding: where and which keyword.
type want struct{ path, keyword string }

// badSamples lists, per example form, every bad sample and exactly the findings
// it must produce.
var badSamples = map[string]map[string][]want{
	"perception-survey": {
		"bad-age-out-of-range.json": {{"/respondent/age", "minimum"}},
		"bad-age-wrong-type.json":   {{"/respondent/age", "type"}},
		"bad-missing-consent.json":  {{"/consent", "required"}},
		"bad-consent-false.json":    {{"/consent", "const"}},
		"bad-gender-enum.json":      {{"/respondent/gender", "enum"}},
		"bad-incident-date.json":    {{"/incidents/1/date", "format"}},
		"bad-interview-start.json":  {{"/interview_start", "format"}},
		"bad-geopoint.json": {
			{"/incidents/0/location", "format"},
			{"/interview_location", "format"},
		},
		"bad-threats.json": {
			{"/feeling_safe/night", "minimum"},
			{"/main_threats", "uniqueItems"},
			{"/main_threats/1", "enum"},
			{"/main_threats_other", "required"}, // "other" chosen: if/then
		},
		"bad-several.json": {
			{"/enumerator_notes", "additionalProperties"},
			{"/feeling_safe/night", "required"},
			{"/priorities", "maxItems"},
			{"/respondent/age", "type"},
			{"/respondent/community", "minLength"},
			{"/respondent/gender", "required"},
			{"/respondent/phone", "additionalProperties"},
			{"/trust/police", "maximum"},
		},
	},
	"incident-report": {
		"bad-severity-enum.json": {{"/severity", "enum"}},
		"bad-victims.json": {
			{"/follow_up_needed", "type"},
			{"/victims_count", "minimum"},
		},
		"bad-location.json": {{"/location", "format"}},
		"bad-missing-required.json": {
			{"/description", "minLength"},
			{"/follow_up_needed", "required"},
			{"/incident_id", "pattern"},
			{"/location", "type"},
			{"/occurred_at", "required"},
			{"/photo", "pattern"},
			{"/type_other", "required"},
		},
	},
	"action-plan-followup": {
		"bad-progress.json":          {{"/progress_percent", "maximum"}},
		"bad-completed-not-100.json": {{"/progress_percent", "const"}},
		"bad-review-date.json":       {{"/review_date", "format"}, {"/status", "enum"}},
		"bad-participants.json": {
			{"/evidence", "uniqueItems"},
			{"/evidence/0", "pattern"},
			{"/evidence/1", "pattern"},
			{"/meeting_location", "format"},
			{"/participants/men", "required"},
			{"/participants/total", "additionalProperties"},
		},
	},
}

func TestExampleForms(t *testing.T) {
	names := schemas.ExampleNames()
	if want := []string{"action-plan-followup", "incident-report", "perception-survey"}; !slices.Equal(names, want) {
		t.Fatalf("examples %v, want %v", names, want)
	}
	for _, name := range names {
		t.Run(name, func(t *testing.T) {
			d := mustParseExample(t, name)
			files, err := filepath.Glob(filepath.Join(samplesDir, name, "*.json"))
			if err != nil || len(files) == 0 {
				t.Fatalf("no samples for %s: %v", name, err)
			}
			var goods, bads int
			for _, f := range files {
				base := filepath.Base(f)
				data, err := os.ReadFile(f)
				if err != nil {
					t.Fatal(err)
				}
				switch {
				case strings.HasPrefix(base, "good-"):
					goods++
					t.Run(base, func(t *testing.T) {
						if got := d.ValidateJSON(data); len(got) != 0 {
							t.Errorf("findings for a good record: %v", got)
						}
					})
				case strings.HasPrefix(base, "bad-"):
					bads++
					t.Run(base, func(t *testing.T) {
						expected, ok := badSamples[name][base]
						if !ok {
							t.Fatalf("no expectation for %s in badSamples", base)
						}
						assertFindings(t, d.ValidateJSON(data), expected)
					})
				default:
					t.Errorf("sample %s is neither good-* nor bad-*", base)
				}
			}
			if goods < 2 || bads < 4 {
				t.Errorf("%d good and %d bad samples; want at least 2 and 4", goods, bads)
			}
			if len(badSamples[name]) != bads {
				t.Errorf("badSamples lists %d files for %s, the directory has %d", len(badSamples[name]), name, bads)
			}
		})
	}
}

// assertFindings checks that got holds exactly the expected path+keyword pairs,
// each with a message.
func assertFindings(t *testing.T, got []domain.Finding, expected []want) {
	t.Helper()
	var have []want
	for _, f := range got {
		have = append(have, want{f.Path, f.Keyword})
		if f.Message == "" {
			t.Errorf("finding %s [%s] has no message", f.Path, f.Keyword)
		}
	}
	sortWants(have)
	exp := slices.Clone(expected)
	sortWants(exp)
	if !slices.Equal(have, exp) {
		t.Errorf("findings\n got  %v\n want %v\n(all: %v)", have, exp, got)
	}
}

func sortWants(w []want) {
	slices.SortFunc(w, func(a, b want) int {
		if c := strings.Compare(a.path, b.path); c != 0 {
			return c
		}
		return strings.Compare(a.keyword, b.keyword)
	})
}

func TestExampleDefinitionsFields(t *testing.T) {
	tests := []struct {
		name   string
		title  string
		policy string
		shared bool
		hasUI  bool
	}{
		{"perception-survey", "Community safety perception survey", domain.PolicyMerge, false, true},
		{"incident-report", "Security incident report", domain.PolicyReject, true, true},
		{"action-plan-followup", "Community action plan follow-up", domain.PolicyLastWriteWins, true, false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			d := mustParseExample(t, tt.name)
			if d.Title != tt.title || d.Policy != tt.policy || d.Shared != tt.shared || (d.UI != nil) != tt.hasUI {
				t.Errorf("got title %q policy %q shared %v ui %v", d.Title, d.Policy, d.Shared, d.UI != nil)
			}
			if d.Description == "" {
				t.Error("example has no description")
			}
			if len(d.Hash) != 64 {
				t.Errorf("hash %q", d.Hash)
			}
		})
	}
}

// TestMetaSchemaFile checks the embedded meta-schema is what ParseDefinition
// uses and is itself a valid draft 2020-12 schema.
func TestMetaSchemaFile(t *testing.T) {
	raw := schemas.FormDefinition()
	if _, err := Canonicalize(raw); err != nil {
		t.Fatalf("meta-schema is not strict JSON: %v", err)
	}
	if _, err := metaSchema(); err != nil {
		t.Fatalf("meta-schema does not compile: %v", err)
	}
	if _, err := schemas.Example("no-such-form"); err == nil {
		t.Error("Example of an unknown name succeeded")
	}
}
