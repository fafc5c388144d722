package mongo_test

import (
	"fmt"
	"os"
	"sync"
	"testing"

	"github.com/fieldsync/fieldsync/internal/store/mongo"
	"github.com/fieldsync/fieldsync/internal/store/mongo/mongotest"
	"github.com/fieldsync/fieldsync/internal/store/storetest"
)

func TestDebugFeed(t *testing.T) {
	var mu sync.Mutex
	var lines []string
	mongo.DebugLog = func(f string, a ...any) {
		mu.Lock()
		lines = append(lines, fmt.Sprintf(f, a...))
		mu.Unlock()
	}
	defer func() {
		mongo.DebugLog = nil
		if t.Failed() {
			f, _ := os.Create("/tmp/feed-debug.log")
			mu.Lock()
			for _, l := range lines {
				fmt.Fprintln(f, l)
			}
			mu.Unlock()
			f.Close()
		}
	}()
	storetest.RunConcurrentFeed(t, mongotest.Open(t))
}
