package records

import (
	"context"
	"slices"
	"sync"
)

// recordLocks serialises, inside one process, the read-decide-write of each
// record: a push round, a correction, a resolution and a review of one record
// never interleave here.
//
// Why, when every write is conditional anyway: a write that keeps the rev (a
// conflict entry under policy reject, a review, an assignment) is told apart
// from a concurrent one only by RecordWrite.ExpectVersion, and a store that
// does not check it would let the second such write erase the first (five
// tablets pushing stale edits at once leaving one conflict entry; a review
// lost to a concurrent push). The lock makes a single instance safe whatever
// the store; across instances, ExpectVersion in the store is what guards.
type recordLocks struct {
	mu sync.Mutex
	m  map[string]*recordLock
}

type recordLock struct {
	ch   chan struct{} // a token: held while the channel is full
	refs int           // holders and waiters, so idle locks are dropped
}

func lockKey(projectID, id string) string { return projectID + "\x00" + id }

// lock takes the locks of the given records in a fixed (sorted) order, so two
// callers with overlapping sets never deadlock. It gives up when ctx ends,
// holding nothing. unlock releases them all.
func (l *recordLocks) lock(ctx context.Context, projectID string, ids []string) (unlock func(), err error) {
	keys := make([]string, len(ids))
	for i, id := range ids {
		keys[i] = lockKey(projectID, id)
	}
	slices.Sort(keys)
	keys = slices.Compact(keys)

	l.mu.Lock()
	if l.m == nil {
		l.m = map[string]*recordLock{}
	}
	locks := make([]*recordLock, len(keys))
	for i, k := range keys {
		lk := l.m[k]
		if lk == nil {
			lk = &recordLock{ch: make(chan struct{}, 1)}
			l.m[k] = lk
		}
		lk.refs++
		locks[i] = lk
	}
	l.mu.Unlock()

	release := func(held int) {
		for _, lk := range locks[:held] {
			<-lk.ch
		}
		l.mu.Lock()
		for i, lk := range locks {
			if lk.refs--; lk.refs == 0 {
				delete(l.m, keys[i])
			}
		}
		l.mu.Unlock()
	}
	for i, lk := range locks {
		select {
		case lk.ch <- struct{}{}:
		case <-ctx.Done():
			release(i)
			return nil, ctx.Err()
		}
	}
	return func() { release(len(locks)) }, nil
}
