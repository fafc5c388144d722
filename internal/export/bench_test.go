package export

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"testing"
	"time"

	"github.com/fieldsync/fieldsync/internal/domain"
	"github.com/fieldsync/fieldsync/schemas"
)

// BenchmarkWrite measures the writers alone (no store, no HTTP) on 20,000
// perception-survey records:
//
//	go test -run x -bench Write ./internal/export/
func BenchmarkWrite(b *testing.B) {
	def, err := schemas.Example("perception-survey")
	if err != nil {
		b.Fatal(err)
	}
	m, err := Build("perception", []Version{{Version: "1", Definition: def}})
	if err != nil {
		b.Fatal(err)
	}
	const n = 20_000
	recs := make([]domain.Record, n)
	now := time.Now().UTC()
	for i := range recs {
		recs[i] = domain.Record{ID: fmt.Sprintf("rec-%08d", i), FormID: "perception", FormVersion: "1", Rev: "1-abc",
			CreatedBy: "device:x", DeviceID: "x", CreatedAt: now, UpdatedAt: now, ReviewState: "received",
			Data: json.RawMessage(fmt.Sprintf(`{"consent":true,"interview_start":"2024-05-01T08:10:10+03:00","interview_location":{"latitude":-1.3,"longitude":36.7,"accuracy":3.5},"respondent":{"age":%d,"gender":"female","community":"Kibera","village":"Laini Saba 3","role":"women_group_member"},"feeling_safe":{"day":2,"night":3},"main_threats":["theft","gbv","youth_gangs"],"trust":{"police":1,"chiefs":2,"community_watch":3,"ngos":4},"incidents":[{"date":"2024-02-03","type":"theft","reported_to":"nobody","location":{"latitude":-1.3,"longitude":36.7}}],"priorities":["street_lighting","gbv_services"],"comments":"Lights near the water point, household %d."}`, 18+i%80, i))}
	}
	for _, format := range []string{FormatCSV, FormatXLSX} {
		b.Run(format, func(b *testing.B) {
			for b.Loop() {
				seq := func(yield func(domain.Record, error) bool) {
					for _, r := range recs {
						if !yield(r, nil) {
							return
						}
					}
				}
				if _, err := Write(context.Background(), io.Discard, m, seq, Options{Format: format}); err != nil {
					b.Fatal(err)
				}
			}
			b.ReportMetric(float64(n*b.N)/b.Elapsed().Seconds(), "records/s")
		})
	}
}
