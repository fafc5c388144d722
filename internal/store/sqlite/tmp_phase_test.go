package sqlite

import (
	"context"
	"os"
	"path/filepath"
	"runtime"
	"slices"
	"syscall"
	"testing"
	"time"

	"github.com/fieldsync/fieldsync/internal/domain"
)

func TestTmpPhases(t *testing.T) {
	if os.Getenv("TMPPHASE") == "" {
		t.Skip()
	}
	dir := t.TempDir()
	s, err := Open(context.Background(), filepath.Join(dir, "x.db"))
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	ctx := context.Background()
	at := time.Now().UTC()
	const nb = 100
	batches := make([][]domain.RecordWrite, nb)
	n := 0
	for b := range batches {
		batches[b] = make([]domain.RecordWrite, 1000)
		for i := range batches[b] {
			batches[b][i] = benchWrite("bench", n, at)
			n++
		}
	}
	runtime.GC()
	cpu := func() time.Duration {
		var ru syscall.Rusage
		syscall.Getrusage(syscall.RUSAGE_SELF, &ru)
		return time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
	}
	var walls, cpus []time.Duration
	for b := range batches {
		t0, c0 := time.Now(), cpu()
		if _, err := s.WriteRecords(ctx, batches[b]); err != nil {
			t.Fatal(err)
		}
		walls = append(walls, time.Since(t0))
		cpus = append(cpus, cpu()-c0)
	}
	slices.Sort(walls)
	slices.Sort(cpus)
	t.Logf("median wall %v (%.0f rec/s), median cpu %v (%.0f rec/cpu-s), p10 wall %v", walls[nb/2], 1000/walls[nb/2].Seconds(), cpus[nb/2], 1000/cpus[nb/2].Seconds(), walls[nb/10])
}
