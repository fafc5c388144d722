package e2e

import (
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/google/uuid"

	"github.com/fieldsync/fieldsync/api"
	"github.com/fieldsync/fieldsync/internal/domain"
	"github.com/fieldsync/fieldsync/internal/syncer"
)

// The benchmarks run on SQLite files in b.TempDir(), through the same wiring as
// the tests (newCluster: two instances on one file; only the first serves).
// Run them in one go, so that their ratios compare like with like:
//
//	go test -run x -bench . -benchtime 20x ./internal/e2e/

const benchBatch = 1000 // submissions per push, records per pull page

// BenchmarkPushHTTP pushes batches of 1000 new survey records (~600 bytes each,
// validated against the perception survey's schema) through HTTP over TCP, as a
// tablet's full outbox would. Building the request body is not timed; sending
// it, the server's whole work and decoding the answer are.
func BenchmarkPushHTTP(b *testing.B) {
	c := newCluster(b, openSQLitePair(b))
	c.publish("perception", "1", surveyForm(b))
	dev := c.addDevice("bench-tablet")
	cl := c.client(0, dev.token)
	ctx := context.Background()
	path := "/v1/projects/" + c.project + "/sync/push"
	n, pushes := 0, 0
	var cpu time.Duration
	for b.Loop() {
		b.StopTimer()
		req := api.PushRequest{Submissions: make([]api.Submission, benchBatch)}
		now := time.Now().UTC()
		for i := range req.Submissions {
			req.Submissions[i] = api.Submission{ID: uuid.NewString(), Form: "perception", FormVersion: "1",
				ClientModifiedAt: now, Data: surveyRecord(n)}
			n++
		}
		body, err := json.Marshal(req)
		if err != nil {
			b.Fatal(err)
		}
		b.StartTimer()
		c0 := cpuTime()
		var out api.PushResponse
		if err := cl.Do(ctx, http.MethodPost, path, body, &out); err != nil {
			b.Fatal(err)
		}
		cpu += cpuTime() - c0
		pushes++
		for _, r := range out.Results {
			if r.Status != api.PushCreated {
				b.Fatalf("push result %+v", r)
			}
		}
	}
	b.ReportMetric(float64(pushes*benchBatch)/b.Elapsed().Seconds(), "submissions/s")
	reportCPU(b, cpu, pushes*benchBatch, "submission")
	b.Log(c.inst[0].storeTimings("GetRecords", "WriteRecords", "ResolveQuarantine", "GetForm", "GetFormVersion", "GetMembership", "GetDevice"))
}

// BenchmarkPushHTTPConcurrent is BenchmarkPushHTTP with four tablets pushing at
// once (each op is one push of 1000): the server then overlaps one push's
// validation with another's commit.
func BenchmarkPushHTTPConcurrent(b *testing.B) {
	const clients = 4
	c := newCluster(b, openSQLitePair(b))
	c.publish("perception", "1", surveyForm(b))
	var cls [clients]*api.Client
	for i := range cls {
		cls[i] = c.client(0, c.addDevice(fmt.Sprintf("bench-tablet-%d", i)).token)
	}
	ctx := context.Background()
	path := "/v1/projects/" + c.project + "/sync/push"
	var (
		mu     sync.Mutex
		n      int
		pushes atomic.Int64
		cpu    time.Duration
	)
	for b.Loop() {
		b.StopTimer()
		var bodies [clients][]byte
		for k := range bodies {
			req := api.PushRequest{Submissions: make([]api.Submission, benchBatch)}
			now := time.Now().UTC()
			mu.Lock()
			for i := range req.Submissions {
				req.Submissions[i] = api.Submission{ID: uuid.NewString(), Form: "perception", FormVersion: "1",
					ClientModifiedAt: now, Data: surveyRecord(n)}
				n++
			}
			mu.Unlock()
			var err error
			if bodies[k], err = json.Marshal(req); err != nil {
				b.Fatal(err)
			}
		}
		b.StartTimer()
		c0 := cpuTime()
		var wg sync.WaitGroup
		for k := range clients {
			wg.Go(func() {
				var out api.PushResponse
				if err := cls[k].Do(ctx, http.MethodPost, path, bodies[k], &out); err != nil {
					b.Error(err)
					return
				}
				pushes.Add(1)
			})
		}
		wg.Wait()
		cpu += cpuTime() - c0
	}
	b.ReportMetric(float64(pushes.Load()*benchBatch)/b.Elapsed().Seconds(), "submissions/s")
	reportCPU(b, cpu, int(pushes.Load())*benchBatch, "submission")
}

// BenchmarkRawInsert writes the same documents as BenchmarkPushHTTP straight
// into the store, in 1000-write batches shaped as the sync service shapes a
// create (canonical data, its revision): no HTTP, no validation, no decisions.
// Building the writes is not timed.
func BenchmarkRawInsert(b *testing.B) {
	st := openSQLitePair(b)[0]
	ctx := context.Background()
	n, batches := 0, 0
	var cpu time.Duration
	for b.Loop() {
		b.StopTimer()
		writes := surveyWrites(b, "bench", n, benchBatch, "device:bench")
		n += benchBatch
		b.StartTimer()
		c0 := cpuTime()
		results, err := st.WriteRecords(ctx, writes)
		if err != nil {
			b.Fatal(err)
		}
		cpu += cpuTime() - c0
		for _, r := range results {
			if r != nil {
				b.Fatal(r)
			}
		}
		batches++
	}
	b.ReportMetric(float64(batches*benchBatch)/b.Elapsed().Seconds(), "submissions/s")
	reportCPU(b, cpu, batches*benchBatch, "submission")
}

// BenchmarkPull pulls 1000 records a page through HTTP from a project of 100 000
// survey records (written straight into the store beforehand), as an analyst
// who sees all of them and as a tablet that sees the tenth of them it made
// (both asking for gzip, as Go's transport and tablets do), and as the analyst
// without compression. Each op is one page; at the end of the feed the puller
// starts again.
func BenchmarkPull(b *testing.B) {
	const total = 100_000
	stores := openSQLitePair(b)
	c := newCluster(b, stores)
	c.publish("perception", "1", surveyForm(b))
	var devs []device
	for i := range 10 {
		devs = append(devs, c.addDevice(fmt.Sprintf("tablet-%d", i)))
	}
	analyst := c.addAnalyst("analyst1")
	ctx := context.Background()
	start := time.Now()
	for n := 0; n < total; n += benchBatch {
		writes := surveyWrites(b, c.project, n, benchBatch, "")
		for i := range writes {
			writes[i].Record.CreatedBy = devs[(n+i)%len(devs)].subject
			writes[i].Record.DeviceID = devs[(n+i)%len(devs)].id
		}
		if _, err := stores[0].WriteRecords(ctx, writes); err != nil {
			b.Fatal(err)
		}
	}
	b.Logf("prefilled %d records in %v", total, time.Since(start).Round(time.Millisecond))

	plain := &http.Client{Transport: &http.Transport{DisableCompression: true, MaxIdleConnsPerHost: 4}}
	b.Cleanup(plain.CloseIdleConnections)
	for _, who := range []struct {
		name, token string
		hc          *http.Client
	}{{"analyst", analyst, c.hc}, {"tablet", devs[0].token, c.hc}, {"analyst-no-gzip", analyst, plain}} {
		b.Run(who.name, func(b *testing.B) {
			cl, err := api.NewClient(c.inst[0].srv.URL, api.WithHTTPClient(who.hc), api.WithToken(who.token))
			if err != nil {
				b.Fatal(err)
			}
			cursor, records := "", 0
			c0 := cpuTime()
			for b.Loop() {
				page, err := pull(ctx, cl, c.project, cursor, benchBatch)
				if err != nil {
					b.Fatal(err)
				}
				records += len(page.Changes)
				cursor = page.Next
				if !page.More {
					cursor = ""
				}
			}
			b.ReportMetric(float64(records)/b.Elapsed().Seconds(), "records/s")
			reportCPU(b, cpuTime()-c0, records, "record")
		})
		b.Log(c.inst[0].storeTimings("Changes", "GetMembership", "GetDevice"))
	}
}

// surveyWrites makes count creates of surveyRecord(from…), shaped as the sync
// service shapes a create. createdBy "" leaves the caller to set it.
func surveyWrites(tb testing.TB, project string, from, count int, createdBy string) []domain.RecordWrite {
	now := time.Now().UTC().Truncate(time.Millisecond)
	writes := make([]domain.RecordWrite, count)
	for i := range writes {
		data, err := syncer.Canonical(surveyRecord(from + i))
		if err != nil {
			tb.Fatal(err)
		}
		rev, err := syncer.NewRev("", data, false)
		if err != nil {
			tb.Fatal(err)
		}
		id := uuid.NewString()
		rec := domain.Record{ProjectID: project, ID: id, FormID: "perception", FormVersion: "1", Rev: rev, Data: data,
			CreatedBy: createdBy, DeviceID: "bench", ClientModifiedAt: now, CreatedAt: now, UpdatedAt: now,
			ReviewState: domain.ReviewReceived}
		writes[i] = domain.RecordWrite{Record: rec, Revisions: []domain.Revision{{ProjectID: project, RecordID: id,
			Rev: rev, Data: data, FormVersion: "1", ClientModifiedAt: now, CreatedBy: createdBy, DeviceID: "bench", CreatedAt: now}}}
	}
	return writes
}

// reportCPU reports the process's CPU time per item (server and client alike:
// both run in this process), which a machine busy with other work distorts less
// than the wall-clock rates.
func reportCPU(b *testing.B, cpu time.Duration, items int, unit string) {
	if cpu > 0 && items > 0 {
		b.ReportMetric(float64(cpu.Microseconds())/float64(items), "cpu-µs/"+unit)
	}
}
