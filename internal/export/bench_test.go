package export

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"runtime"
	"runtime/metrics"
	"testing"
	"time"

	"github.com/fieldsync/fieldsync/internal/domain"
	"github.com/fieldsync/fieldsync/schemas"
)

// BenchmarkWrite measures the writers alone (no store, no HTTP) on 20,000
// perception-survey records, with the peak growth of the heap:
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
	seq := func(yield func(domain.Record, error) bool) {
		for _, r := range recs {
			if !yield(r, nil) {
				return
			}
		}
	}
	// xlsx-excelize is the reference the xlsx writer replaced (every row
	// through excelize's StreamWriter): the peak heap shows why.
	for _, format := range []string{FormatCSV, FormatXLSX, "xlsx-excelize"} {
		b.Run(format, func(b *testing.B) {
			var peak float64
			for b.Loop() {
				peak = max(peak, peakHeap(b, func() error {
					if format == "xlsx-excelize" {
						_, err := writeRefXLSX(io.Discard, m, seq, Options{})
						return err
					}
					_, err := Write(context.Background(), io.Discard, m, seq, Options{Format: format})
					return err
				}))
			}
			b.ReportMetric(float64(n*b.N)/b.Elapsed().Seconds(), "records/s")
			b.ReportMetric(peak, "peak-heap-MiB")
		})
	}
}

// peakHeap runs f and returns how far the heap grew meanwhile, in MiB,
// sampled every millisecond: the live and the not yet collected objects,
// which is what the process's RSS follows.
func peakHeap(b *testing.B, f func() error) float64 {
	b.Helper()
	runtime.GC()
	s := []metrics.Sample{{Name: "/memory/classes/heap/objects:bytes"}}
	metrics.Read(s)
	base := s[0].Value.Uint64()
	done, peak := make(chan struct{}), make(chan uint64)
	go func() {
		tick := time.NewTicker(time.Millisecond)
		defer tick.Stop()
		var p uint64
		sample := []metrics.Sample{{Name: s[0].Name}}
		for {
			select {
			case <-done:
				peak <- p
				return
			case <-tick.C:
				metrics.Read(sample)
				p = max(p, sample[0].Value.Uint64())
			}
		}
	}()
	err := f()
	close(done)
	p := <-peak
	if err != nil {
		b.Fatal(err)
	}
	if p < base {
		return 0
	}
	return float64(p-base) / (1 << 20)
}
