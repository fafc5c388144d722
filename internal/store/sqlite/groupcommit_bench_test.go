package sqlite

import (
	"context"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/fieldsync/fieldsync/internal/domain"
)

// BenchmarkWriteRecordsSmallConcurrent is the store's side of many tablets
// each pushing one record: 100 callers at once, each call one 1-item batch.
// Each op is one acknowledged call (synchronous=FULL); concurrent calls share
// transactions and fsyncs (groupcommit.go).
func BenchmarkWriteRecordsSmallConcurrent(b *testing.B) {
	const callers = 100
	s := openBench(b)
	ctx := context.Background()
	at := time.Now().UTC().Truncate(time.Millisecond)
	var n atomic.Int64
	c0 := processCPU()
	b.ResetTimer()
	var wg sync.WaitGroup
	for range callers {
		wg.Go(func() {
			for i := n.Add(1); i <= int64(b.N); i = n.Add(1) {
				res, err := s.WriteRecords(ctx, []domain.RecordWrite{benchWrite("bench", int(i), at)})
				if err != nil || res[0] != nil {
					b.Errorf("write: %v %v", res, err)
					return
				}
			}
		})
	}
	wg.Wait()
	b.StopTimer()
	b.ReportMetric(float64(b.N)/b.Elapsed().Seconds(), "writes/s")
	if cpu := processCPU() - c0; cpu > 0 {
		b.ReportMetric(float64(cpu.Microseconds())/float64(b.N), "cpu-µs/write")
	}
}
