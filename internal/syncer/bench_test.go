package syncer

import (
	"encoding/json"
	"testing"
	"time"

	"github.com/fieldsync/fieldsync/internal/domain"
)

// surveyRecord is a realistic pushed record of a community safety survey, about
// 600 bytes as a collector app sends it: keys in form order (not sorted),
// spacing, a nested respondent, a geopoint, multiple choices and a repeat group.
const surveyRecord = `{
  "interview_date": "2025-03-14",
  "consent": true,
  "location": {"latitude": -1.3131, "longitude": 36.7923, "accuracy": 12.5, "altitude": 1702.0},
  "respondent": {"age": 34, "gender": "female", "household_size": 6,
                 "village": "Laini Saba \u2014 Kibera", "languages": ["sw", "en"], "head_of_household": false},
  "safety": {"feels_safe_day": 4, "feels_safe_night": 2, "incidents_last_month": 1,
             "incident_types": ["theft", "harassment"], "reported_to": ["chief", "community_police"]},
  "services": [{"name": "police", "trust": 2}, {"name": "chief", "trust": 4}],
  "notes": "Interview paused once; respondent asked to continue in Swahili.",
  "photo": "site.jpg"
}`

// surveyRecordOurs and surveyRecordTheirs are two devices' edits of it: disjoint
// changes plus one clash on /safety/feels_safe_night.
const surveyRecordOurs = `{
  "interview_date": "2025-03-14",
  "consent": true,
  "location": {"latitude": -1.3131, "longitude": 36.7923, "accuracy": 12.5, "altitude": 1702.0},
  "respondent": {"age": 35, "gender": "female", "household_size": 6,
                 "village": "Laini Saba \u2014 Kibera", "languages": ["sw", "en"], "head_of_household": false},
  "safety": {"feels_safe_day": 4, "feels_safe_night": 3, "incidents_last_month": 1,
             "incident_types": ["theft", "harassment"], "reported_to": ["chief", "community_police"]},
  "services": [{"name": "police", "trust": 2}, {"name": "chief", "trust": 4}],
  "notes": "Interview paused once; respondent asked to continue in Swahili.",
  "photo": "site.jpg"
}`

const surveyRecordTheirs = `{
  "interview_date": "2025-03-14",
  "consent": true,
  "location": {"latitude": -1.3131, "longitude": 36.7923, "accuracy": 12.5, "altitude": 1702.0},
  "respondent": {"age": 34, "gender": "female", "household_size": 7,
                 "village": "Laini Saba \u2014 Kibera", "languages": ["sw", "en", "luo"], "head_of_household": false},
  "safety": {"feels_safe_day": 4, "feels_safe_night": 1, "incidents_last_month": 1,
             "incident_types": ["theft", "harassment"], "reported_to": ["chief", "community_police"]},
  "services": [{"name": "police", "trust": 2}, {"name": "chief", "trust": 4}],
  "notes": "Interview paused once; respondent asked to continue in Swahili.",
  "photo": "site.jpg",
  "review_note": "checked"
}`

func BenchmarkCanonical(b *testing.B) {
	in := []byte(surveyRecord)
	b.SetBytes(int64(len(in)))
	b.ReportAllocs()
	for b.Loop() {
		if _, err := Canonical(in); err != nil {
			b.Fatal(err)
		}
	}
}

// BenchmarkCanonicalSorted is the common case of a record already in canonical
// form (as stored, or as a client that sorts keys sends it).
func BenchmarkCanonicalSorted(b *testing.B) {
	in, err := Canonical([]byte(surveyRecord))
	if err != nil {
		b.Fatal(err)
	}
	b.SetBytes(int64(len(in)))
	b.ReportAllocs()
	for b.Loop() {
		if _, err := Canonical(in); err != nil {
			b.Fatal(err)
		}
	}
}

// BenchmarkEncodingJSONRoundTrip is a yardstick: decoding into any and encoding
// again with encoding/json (which sorts map keys) is the obvious slow way.
func BenchmarkEncodingJSONRoundTrip(b *testing.B) {
	in := []byte(surveyRecord)
	b.SetBytes(int64(len(in)))
	b.ReportAllocs()
	for b.Loop() {
		var v any
		if err := json.Unmarshal(in, &v); err != nil {
			b.Fatal(err)
		}
		if _, err := json.Marshal(v); err != nil {
			b.Fatal(err)
		}
	}
}

func BenchmarkNewRev(b *testing.B) {
	in := []byte(surveyRecord)
	parent := mustRev(b, "", surveyRecord, false)
	b.SetBytes(int64(len(in)))
	b.ReportAllocs()
	for b.Loop() {
		if _, err := NewRev(parent, in, false); err != nil {
			b.Fatal(err)
		}
	}
}

func BenchmarkMerge(b *testing.B) {
	base, ours, theirs := []byte(surveyRecord), []byte(surveyRecordOurs), []byte(surveyRecordTheirs)
	b.ReportAllocs()
	for b.Loop() {
		_, clashes, err := Merge(base, ours, theirs)
		if err != nil || len(clashes) != 1 {
			b.Fatal(clashes, err)
		}
	}
}

func BenchmarkResolveMerge(b *testing.B) {
	baseRev := mustRev(b, "", surveyRecord, false)
	in := ResolveInput{
		Policy:   domain.PolicyMerge,
		Base:     Version{Rev: baseRev, Data: json.RawMessage(surveyRecord)},
		Current:  Version{Rev: mustRev(b, baseRev, surveyRecordOurs, false), Data: json.RawMessage(surveyRecordOurs), ClientModifiedAt: t0},
		Incoming: Version{Data: json.RawMessage(surveyRecordTheirs), ClientModifiedAt: t0.Add(time.Minute)},
	}
	b.ReportAllocs()
	for b.Loop() {
		out, err := Resolve(in)
		if err != nil || len(out.Conflicts) != 1 {
			b.Fatal(out, err)
		}
	}
}

func TestSurveyRecordSize(t *testing.T) {
	c, err := Canonical([]byte(surveyRecord))
	if err != nil {
		t.Fatal(err)
	}
	if n := len(surveyRecord); n < 550 || n > 750 {
		t.Errorf("benchmark record is %d bytes (canonical %d), want about 600", n, len(c))
	}
}
