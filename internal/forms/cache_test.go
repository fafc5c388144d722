package forms

import (
	"errors"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/fieldsync/fieldsync/internal/domain"
)

// countingCache returns a cache whose compilations are counted (and slowed
// down, to make the concurrent callers overlap).
func countingCache(delay time.Duration) (*Cache, *atomic.Int64) {
	c := NewCache()
	var n atomic.Int64
	c.parse = func(b []byte) (*Definition, error) {
		n.Add(1)
		time.Sleep(delay)
		return ParseDefinition(b)
	}
	return c, &n
}

func TestCacheCompilesOnceUnderConcurrency(t *testing.T) {
	forms := map[string]*Definition{}
	good := map[string][]byte{}
	for name, file := range map[string]string{
		"perception-survey":    "good-full.json",
		"incident-report":      "good-full.json",
		"action-plan-followup": "good-in-progress.json",
	} {
		forms[name] = mustParseExample(t, name)
		good[name] = readSample(t, name, file)
	}
	c, compiles := countingCache(20 * time.Millisecond)
	var wg sync.WaitGroup
	errs := make(chan error, 300)
	for i := 0; i < 100; i++ {
		for name, d := range forms {
			wg.Go(func() {
				// Half of the callers pass the source, half the canonical form:
				// both hash alike.
				body := d.Source
				if i%2 == 0 {
					body = d.Canonical
				}
				got, err := c.Get(d.Hash, body)
				if err != nil {
					errs <- err
					return
				}
				if got.Hash != d.Hash {
					errs <- errors.New(name + ": wrong definition")
					return
				}
				if f := got.ValidateJSON(good[name]); len(f) != 0 {
					errs <- errors.New(name + ": good record rejected")
				}
			})
		}
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Error(err)
	}
	if n := compiles.Load(); n != int64(len(forms)) {
		t.Errorf("%d compilations for %d definitions", n, len(forms))
	}
	if c.Len() != len(forms) {
		t.Errorf("Len %d", c.Len())
	}
	// Later calls are hits and do not even read the definition.
	for _, d := range forms {
		if got, err := c.Get(d.Hash, nil); err != nil || got.Hash != d.Hash {
			t.Errorf("hit: %v", err)
		}
	}
	if n := compiles.Load(); n != int64(len(forms)) {
		t.Errorf("hits compiled again: %d", n)
	}
}

func TestCacheErrors(t *testing.T) {
	d := mustParseExample(t, "incident-report")
	c, compiles := countingCache(0)

	t.Run("hash mismatch", func(t *testing.T) {
		_, err := c.Get(d.Hash, []byte(`{"title": "other", "schema": {"type": "object"}}`))
		domainErr(t, err, domain.KindInternal, "definition_hash_mismatch")
	})
	t.Run("invalid definition", func(t *testing.T) {
		_, err := c.Get("0000", []byte(`{"title": ""}`))
		domainErr(t, err, domain.KindInvalid, CodeInvalidDefinition)
	})
	t.Run("failures are not cached", func(t *testing.T) {
		before := compiles.Load()
		got, err := c.Get(d.Hash, d.Source)
		if err != nil || got.Hash != d.Hash {
			t.Fatalf("after a failure: %v", err)
		}
		if compiles.Load() != before+1 {
			t.Errorf("compilations %d → %d", before, compiles.Load())
		}
	})
	t.Run("Add", func(t *testing.T) {
		p := mustParseExample(t, "perception-survey")
		c.Add(p)
		before := compiles.Load()
		if got, err := c.Get(p.Hash, nil); err != nil || got != p {
			t.Errorf("Get after Add: %v", err)
		}
		if compiles.Load() != before {
			t.Error("Add did not prevent a compilation")
		}
	})
}

func TestCachePanicReleasesWaiters(t *testing.T) {
	c := NewCache()
	release := make(chan struct{})
	c.parse = func([]byte) (*Definition, error) {
		<-release
		panic("boom")
	}
	var wg sync.WaitGroup
	var waiterErr atomic.Value
	wg.Go(func() {
		defer func() { _ = recover() }()
		_, _ = c.Get("h", nil)
	})
	time.Sleep(10 * time.Millisecond)
	wg.Go(func() {
		_, err := c.Get("h", nil)
		waiterErr.Store(err)
	})
	time.Sleep(10 * time.Millisecond)
	close(release)
	wg.Wait()
	if err, _ := waiterErr.Load().(error); err == nil {
		t.Error("the waiter got no error")
	}
}
