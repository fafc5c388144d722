package mongo_test

import (
	"context"
	"fmt"
	"sync"
	"testing"

	"go.mongodb.org/mongo-driver/v2/event"

	"github.com/fieldsync/fieldsync/internal/domain"
	"github.com/fieldsync/fieldsync/internal/store/mongo"
	"github.com/fieldsync/fieldsync/internal/store/mongo/mongotest"
)

// docCounter is a command monitor that counts the commands a client sends and
// the documents its queries return, by collection.
type docCounter struct {
	mu       sync.Mutex
	commands int
	docs     map[string]int
	colls    map[int64]string // request id → collection of a find or getMore
}

func newDocCounter() *docCounter {
	return &docCounter{docs: map[string]int{}, colls: map[int64]string{}}
}

func (c *docCounter) monitor() *event.CommandMonitor {
	return &event.CommandMonitor{
		Started: func(_ context.Context, e *event.CommandStartedEvent) {
			c.mu.Lock()
			defer c.mu.Unlock()
			c.commands++
			switch e.CommandName {
			case "find":
				c.colls[e.RequestID], _ = e.Command.Lookup("find").StringValueOK()
			case "getMore":
				c.colls[e.RequestID], _ = e.Command.Lookup("collection").StringValueOK()
			}
		},
		Succeeded: func(_ context.Context, e *event.CommandSucceededEvent) {
			c.mu.Lock()
			defer c.mu.Unlock()
			coll, ok := c.colls[e.RequestID]
			if !ok {
				return
			}
			delete(c.colls, e.RequestID)
			for _, batch := range []string{"firstBatch", "nextBatch"} {
				if arr, ok := e.Reply.Lookup("cursor", batch).ArrayOK(); ok {
					vals, _ := arr.Values()
					c.docs[coll] += len(vals)
				}
			}
		},
	}
}

func (c *docCounter) snapshot() (commands int, docs map[string]int) {
	c.mu.Lock()
	defer c.mu.Unlock()
	docs = map[string]int{}
	for k, v := range c.docs {
		docs[k] = v
	}
	return c.commands, docs
}

// BenchmarkTabletFirstSync pulls, from the start, the records one tablet sees
// in a project of benchRecords records spread over ten tablets (40 each), in
// pages of 10, and reports per sync the commands sent and the change and
// record documents read (FerretDB's speed is not MongoDB's: the counts are what
// carries over). The project's writes are followed by one background sweep, as
// in a running deployment.
func BenchmarkTabletFirstSync(b *testing.B) {
	const (
		benchRecords = 400
		tablets      = 10
		limit        = 10
	)
	counter := newDocCounter()
	st, err := mongo.OpenMonitored(context.Background(), mongotest.Config(b), counter.monitor())
	if err != nil {
		b.Fatal(err)
	}
	b.Cleanup(func() { st.Close() })
	ctx := context.Background()
	const p = "bench"
	var batch []domain.RecordWrite
	for i := range benchRecords {
		batch = append(batch, rec(p, fmt.Sprintf("r%04d", i), fmt.Sprintf("device:d%d", i%tablets), 1, ""))
		// Batches of 50: FerretDB v1 keeps a query open per statement of an
		// update command until the command ends, and deadlocks on its pool of
		// 100 SQLite connections when one command holds more.
		if len(batch) == 50 {
			if _, err := st.WriteRecords(ctx, batch); err != nil {
				b.Fatal(err)
			}
			batch = nil
		}
	}
	// One pass of the background sweep, when the store has one.
	if sw, ok := any(st).(interface{ Sweep(context.Context) error }); ok {
		if err := sw.Sweep(ctx); err != nil {
			b.Fatal(err)
		}
	}
	cmd0, docs0 := counter.snapshot()
	b.ResetTimer()
	for range b.N {
		q := domain.ChangesQuery{ProjectID: p, Subjects: []string{"device:d3"}, Limit: limit}
		n := 0
		for {
			page, err := st.Changes(ctx, q)
			if err != nil {
				b.Fatal(err)
			}
			n += len(page.Records)
			q.Since = page.Next
			if !page.More {
				break
			}
		}
		if n != benchRecords/tablets {
			b.Fatalf("pulled %d records, want %d", n, benchRecords/tablets)
		}
	}
	b.StopTimer()
	cmd1, docs1 := counter.snapshot()
	per := func(a, z int) float64 { return float64(z-a) / float64(b.N) }
	b.ReportMetric(per(cmd0, cmd1), "commands/sync")
	b.ReportMetric(per(docs0["changes"], docs1["changes"]), "changes/sync")
	b.ReportMetric(per(docs0["records"], docs1["records"]), "records/sync")
}

// BenchmarkWriteRecords applies batches of 10 updates, as a push of 10 edits
// does, and reports the commands sent per batch.
func BenchmarkWriteRecords(b *testing.B) {
	counter := newDocCounter()
	st, err := mongo.OpenMonitored(context.Background(), mongotest.Config(b), counter.monitor())
	if err != nil {
		b.Fatal(err)
	}
	b.Cleanup(func() { st.Close() })
	ctx := context.Background()
	const p, n = "bench", 10
	revs := make([]string, n)
	var batch []domain.RecordWrite
	for i := range n {
		batch = append(batch, rec(p, fmt.Sprintf("r%02d", i), "device:d1", 1, ""))
		revs[i] = batch[i].Record.Rev
	}
	if _, err := st.WriteRecords(ctx, batch); err != nil {
		b.Fatal(err)
	}
	cmd0, _ := counter.snapshot()
	b.ResetTimer()
	for i := range b.N {
		batch = batch[:0]
		for k := range n {
			batch = append(batch, rec(p, fmt.Sprintf("r%02d", k), "device:d1", i+2, revs[k]))
		}
		res, err := st.WriteRecords(ctx, batch)
		if err != nil {
			b.Fatal(err)
		}
		for k := range n {
			if res[k] != nil {
				b.Fatal(res[k])
			}
			revs[k] = batch[k].Record.Rev
		}
	}
	b.StopTimer()
	cmd1, _ := counter.snapshot()
	b.ReportMetric(float64(cmd1-cmd0)/float64(b.N), "commands/batch")
}
