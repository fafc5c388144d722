package records

import (
	"context"
	"fmt"
	"slices"
	"sync"
	"sync/atomic"
	"testing"
	"time"
)

// TestRecordLocks: overlapping sets taken from many goroutines never deadlock
// and never overlap; a caller whose context ends holds nothing; idle locks are
// dropped.
func TestRecordLocks(t *testing.T) {
	var l recordLocks
	ctx := context.Background()
	inside := make([]atomic.Int32, 6)
	var wg sync.WaitGroup
	for g := range 16 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := range 200 {
				// Each goroutine takes three of six ids, in its own order.
				set := []int{(g + i) % 6, (g + 2*i + 1) % 6, (5*g + i + 3) % 6}
				ids := make([]string, len(set))
				for j, n := range set {
					ids[len(ids)-1-j] = fmt.Sprint("r", n)
				}
				unlock, err := l.lock(ctx, "p", ids)
				if err != nil {
					t.Error(err)
					return
				}
				set = slices.Compact(slices.Sorted(slices.Values(set)))
				for _, n := range set {
					if inside[n].Add(1) != 1 {
						t.Error("two holders of one record")
					}
				}
				for _, n := range set {
					inside[n].Add(-1)
				}
				unlock()
			}
		}()
	}
	done := make(chan struct{})
	go func() { wg.Wait(); close(done) }()
	select {
	case <-done:
	case <-time.After(30 * time.Second):
		t.Fatal("deadlock")
	}

	unlock, err := l.lock(ctx, "p", []string{"a", "b"})
	if err != nil {
		t.Fatal(err)
	}
	cctx, cancel := context.WithTimeout(ctx, 20*time.Millisecond)
	defer cancel()
	if _, err := l.lock(cctx, "p", []string{"c", "b"}); err == nil {
		t.Fatal("took a held lock")
	}
	// The canceled caller let go of "c".
	u2, err := l.lock(ctx, "p", []string{"c"})
	if err != nil {
		t.Fatal(err)
	}
	u2()
	// The same id in another project is another record.
	u3, err := l.lock(ctx, "q", []string{"a"})
	if err != nil {
		t.Fatal(err)
	}
	u3()
	unlock()
	if n := len(l.m); n != 0 {
		t.Errorf("%d idle locks kept", n)
	}
}
