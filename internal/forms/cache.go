package forms

import (
	"fmt"
	"sync"

	"github.com/fieldsync/fieldsync/internal/domain"
)

// Cache holds compiled definitions by hash, shared by every request of a server
// process, so that validating a record never recompiles its schema. It is safe
// for concurrent use.
//
// The cache is not bounded: an entry is a few hundred KiB at most, and a
// deployment has hundreds of form versions, not millions. Entries of replaced
// drafts stay until the process restarts; a hash names immutable content, so an
// entry is never stale.
type Cache struct {
	// parse compiles a definition; ParseDefinition except in tests, which count
	// calls.
	parse func([]byte) (*Definition, error)
	// onWait, when set (by tests), is called when a caller starts waiting for
	// another's compilation of hash: tests hold a compilation until the callers
	// they expect are waiting, instead of sleeping.
	onWait func(hash string)

	// done maps hash → *Definition for finished compilations; read without
	// locking, because every pushed record looks its form up here.
	done sync.Map

	mu       sync.Mutex
	inflight map[string]*cacheCall
}

// cacheCall is one compilation in progress; latecomers wait for it.
type cacheCall struct {
	ready chan struct{}
	def   *Definition
	err   error
}

// NewCache returns an empty cache.
func NewCache() *Cache {
	return &Cache{parse: ParseDefinition, inflight: map[string]*cacheCall{}}
}

// Get returns the compiled definition with the given hash, compiling
// definition (its stored JSON: Source or Canonical, both give the same hash)
// if the cache does not hold it yet. Concurrent calls for one hash compile it
// once; the others wait and share the result. definition is only read on a
// miss.
//
// Errors are those of ParseDefinition, or an internal error when definition
// does not hash to hash (a corrupt store or a caller mixing up versions);
// failures are not cached, so a later call may succeed.
func (c *Cache) Get(hash string, definition []byte) (*Definition, error) {
	if d, ok := c.done.Load(hash); ok {
		return d.(*Definition), nil
	}
	c.mu.Lock()
	if d, ok := c.done.Load(hash); ok { // finished while we took the lock
		c.mu.Unlock()
		return d.(*Definition), nil
	}
	if call, ok := c.inflight[hash]; ok {
		c.mu.Unlock()
		if c.onWait != nil {
			c.onWait(hash)
		}
		<-call.ready
		return call.def, call.err
	}
	call := &cacheCall{ready: make(chan struct{})}
	c.inflight[hash] = call
	c.mu.Unlock()

	// The deferred function also runs if parse panics, so waiters are released
	// and the hash does not stay blocked forever.
	defer func() {
		c.mu.Lock()
		if call.err == nil && call.def != nil {
			c.done.Store(hash, call.def)
		} else if call.err == nil {
			call.err = fmt.Errorf("forms: compiling definition %s did not finish", hash)
		}
		delete(c.inflight, hash)
		c.mu.Unlock()
		close(call.ready)
	}()
	def, err := c.parse(definition)
	if err == nil && !def.hasHash(hash) {
		err = &domain.Error{Kind: domain.KindInternal, Code: "definition_hash_mismatch",
			Title: "Stored form definition does not match its hash",
			Err:   fmt.Errorf("forms: definition hashes to %s, expected %s", def.Hash, hash)}
		def = nil
	}
	call.def, call.err = def, err
	return def, err
}

// Add puts an already compiled definition into the cache (for example the one
// ParseDefinition returned when it was uploaded), so its first record does not
// compile it again. An entry already present for the hash is kept.
func (c *Cache) Add(d *Definition) {
	c.done.LoadOrStore(d.Hash, d)
}

// Len returns the number of compiled definitions held.
func (c *Cache) Len() int {
	n := 0
	c.done.Range(func(any, any) bool { n++; return true })
	return n
}
