package sqlite

import (
	"context"
	"encoding/json"
	"fmt"
	"path/filepath"
	"testing"
	"time"

	"github.com/google/uuid"

	"github.com/fieldsync/fieldsync/internal/domain"
)

// surveyData returns the answers of a realistic community-safety interview,
// about 600 bytes of JSON.
func surveyData(i int) json.RawMessage {
	d := map[string]any{
		"respondent": map[string]any{"age": 18 + i%60, "gender": []string{"female", "male", "other"}[i%3],
			"household_size": 1 + i%9, "displaced": i%4 == 0, "village": fmt.Sprintf("village-%03d", i%200)},
		"location":             map[string]any{"latitude": 4.85 + float64(i%1000)/1e4, "longitude": 31.58 + float64(i%777)/1e4, "accuracy": 8.5},
		"feels_safe_day":       []string{"very_safe", "safe", "unsafe", "very_unsafe"}[i%4],
		"feels_safe_night":     []string{"very_safe", "safe", "unsafe", "very_unsafe"}[(i+1)%4],
		"threats":              []string{"theft", "armed_groups", "gbv", "land_disputes"}[:1+i%4],
		"trusted_actors":       []string{"community_leaders", "police", "ngo", "religious_leaders"}[:1+i%3],
		"incident_last_month":  i%5 == 0,
		"incident_reported_to": "community_leaders",
		"comments":             "Respondent mentioned that the road to the market is unsafe after dark and that patrols are rare.",
		"interview_duration_s": 900 + i%600,
		"consent":              true,
	}
	b, err := json.Marshal(d)
	if err != nil {
		panic(err)
	}
	return b
}

// benchWrite makes the create of one realistic record with its first revision.
func benchWrite(project string, i int, at time.Time) domain.RecordWrite {
	id := uuid.NewString()
	rev := fmt.Sprintf("1-%064x", i)
	data := surveyData(i)
	device := fmt.Sprintf("dev-%02d", i%20)
	r := domain.Record{
		ProjectID: project, ID: id, FormID: "perception", FormVersion: "3", Rev: rev, Data: data,
		CreatedBy: domain.DeviceSubject(device), DeviceID: device, ClientModifiedAt: at, CreatedAt: at,
		UpdatedAt: at, ReviewState: domain.ReviewReceived,
	}
	return domain.RecordWrite{Record: r, Revisions: []domain.Revision{{
		ProjectID: project, RecordID: id, Rev: rev, Data: data, FormVersion: "3", ClientModifiedAt: at,
		CreatedBy: r.CreatedBy, DeviceID: device, CreatedAt: at,
	}}}
}

func openBench(b *testing.B) *Store {
	b.Helper()
	s, err := Open(context.Background(), filepath.Join(b.TempDir(), "fieldsync.db"))
	if err != nil {
		b.Fatal(err)
	}
	b.Cleanup(func() { s.Close() })
	return s
}

// BenchmarkWriteRecords pushes batches of 1000 creates of ~600-byte records, as a
// full push of a tablet's outbox would.
func BenchmarkWriteRecords(b *testing.B) {
	const batch = 1000
	s := openBench(b)
	ctx := context.Background()
	at := time.Now().UTC().Truncate(time.Millisecond)
	n := 0
	b.ResetTimer()
	for b.Loop() {
		b.StopTimer()
		writes := make([]domain.RecordWrite, batch)
		for i := range writes {
			writes[i] = benchWrite("bench", n, at)
			n++
		}
		b.StartTimer()
		results, err := s.WriteRecords(ctx, writes)
		if err != nil {
			b.Fatal(err)
		}
		for _, r := range results {
			if r != nil {
				b.Fatal(r)
			}
		}
	}
	b.ReportMetric(float64(n)/b.Elapsed().Seconds(), "records/s")
}

// BenchmarkChanges pages through a 100k-record feed 1000 at a time, as an
// analyst's first pull would.
func BenchmarkChanges(b *testing.B) {
	const total, batch = 100_000, 1000
	s := openBench(b)
	ctx := context.Background()
	at := time.Now().UTC().Truncate(time.Millisecond)
	for i := 0; i < total; i += batch {
		writes := make([]domain.RecordWrite, batch)
		for j := range writes {
			writes[j] = benchWrite("bench", i+j, at)
		}
		if _, err := s.WriteRecords(ctx, writes); err != nil {
			b.Fatal(err)
		}
	}
	read := 0
	b.ResetTimer()
	for b.Loop() {
		var since int64
		for {
			page, err := s.Changes(ctx, domain.ChangesQuery{ProjectID: "bench", Since: since, Limit: batch})
			if err != nil {
				b.Fatal(err)
			}
			read += len(page.Records)
			since = page.Next
			if !page.More {
				break
			}
		}
	}
	b.ReportMetric(float64(read)/b.Elapsed().Seconds(), "records/s")
}
