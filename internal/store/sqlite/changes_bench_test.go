package sqlite

import (
	"context"
	"testing"
	"time"

	"github.com/fieldsync/fieldsync/internal/domain"
)

// BenchmarkFeedEnumerator is BenchmarkChanges for a tablet: it pages through
// the records one device of 20 created (5 000 of the 100 000), 1000 at a time,
// through the enumerator's query (own, shared and assigned records).
func BenchmarkFeedEnumerator(b *testing.B) {
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
	subjects := []string{domain.DeviceSubject("dev-07")}
	read := 0
	c0 := processCPU()
	for b.Loop() {
		var since int64
		for {
			page, err := s.Changes(ctx, domain.ChangesQuery{ProjectID: "bench", Since: since, Limit: batch, Subjects: subjects})
			if err != nil {
				b.Fatal(err)
			}
			read += len(page.Records)
			since = page.Next
			if !page.More || len(page.Records) < batch {
				break
			}
		}
	}
	cpu := processCPU() - c0
	b.ReportMetric(float64(read)/b.Elapsed().Seconds(), "records/s")
	if cpu > 0 {
		b.ReportMetric(float64(read)/cpu.Seconds(), "records/cpu-s")
	}
}
