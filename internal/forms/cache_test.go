package forms

import (
	"errors"
	"sync"
	"sync/atomic"
	"testing"

	"github.com/fieldsync/fieldsync/internal/domain"
)

// countingCache returns a cache whose compilations are counted.
func countingCache() (*Cache, *atomic.Int64) {
	c := NewCache()
	var n atomic.Int64
	c.parse = func(b []byte) (*Definition, error) {
		n.Add(1)
		return ParseDefinition(b)
	}
	return c, &n
}

// holdCompilations makes c's compilations of a hash wait until waiters other
// callers wait for it, so that the test's callers surely overlap: sleeping in
// the compilation would only make that likely.
func holdCompilations(c *Cache, waiters int) {
	var mu sync.Mutex
	waiting := map[string]int{}
	arrived := map[string]chan struct{}{}
	ch := func(hash string) chan struct{} { // under mu
		if arrived[hash] == nil {
			arrived[hash] = make(chan struct{})
		}
		return arrived[hash]
	}
	c.onWait = func(hash string) {
		mu.Lock()
		defer mu.Unlock()
		if waiting[hash]++; waiting[hash] == waiters {
			close(ch(hash))
		}
	}
	parse := c.parse
	c.parse = func(b []byte) (*Definition, error) {
		d, err := parse(b)
		if err != nil {
			return d, err
		}
		mu.Lock()
		done := ch(d.Hash)
		mu.Unlock()
		<-done
		return d, err
	}
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
	const callers = 100 // per definition
	c, compiles := countingCache()
	holdCompilations(c, callers-1)
	var wg sync.WaitGroup
	errs := make(chan error, callers*len(forms))
	for i := range callers {
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
	c, compiles := countingCache()

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
	compiling, release, waiting := make(chan struct{}), make(chan struct{}), make(chan struct{})
	c.parse = func([]byte) (*Definition, error) {
		close(compiling)
		<-release
		panic("boom")
	}
	c.onWait = func(string) { close(waiting) }
	var wg sync.WaitGroup
	var waiterErr atomic.Value
	wg.Go(func() {
		defer func() { _ = recover() }()
		_, _ = c.Get("h", nil)
	})
	<-compiling
	wg.Go(func() {
		_, err := c.Get("h", nil)
		waiterErr.Store(err)
	})
	<-waiting
	close(release)
	wg.Wait()
	if err, _ := waiterErr.Load().(error); err == nil {
		t.Error("the waiter got no error")
	}
}
