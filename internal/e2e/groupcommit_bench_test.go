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
)

// BenchmarkPushSmallConcurrent is the load of many tablets each sending what it
// just saved: 100 enrolled devices push at once, each push holding one new
// survey record, over HTTP through the real router, on SQLite with
// synchronous=FULL. Each op is one acknowledged push; pushes/s is what the
// store's group commit (internal/store/sqlite/groupcommit.go) is for, since
// without it every push would cost one fsync of its own.
//
//	go test -run x -bench PushSmallConcurrent -benchtime 4000x ./internal/e2e/
func BenchmarkPushSmallConcurrent(b *testing.B) {
	const devices = 100
	c := newCluster(b, openSQLitePair(b))
	c.publish("perception", "1", surveyForm(b))
	// One keep-alive connection per device, as 100 tablets would hold.
	tr := http.DefaultTransport.(*http.Transport).Clone()
	tr.MaxIdleConnsPerHost = devices
	hc := &http.Client{Transport: tr, Timeout: 2 * time.Minute}
	b.Cleanup(tr.CloseIdleConnections)
	cls := make([]*api.Client, devices)
	for i := range cls {
		d := c.addDevice(fmt.Sprintf("tablet-%d", i))
		cl, err := api.NewClient(c.inst[0].srv.URL, api.WithHTTPClient(hc), api.WithToken(d.token))
		if err != nil {
			b.Fatal(err)
		}
		cls[i] = cl
	}
	ctx := context.Background()
	path := "/v1/projects/" + c.project + "/sync/push"
	// The bodies are made before the clock starts: what a tablet spends
	// building its request is not the server's cost (the load tool and the
	// server share this machine's two cores).
	bodies := make([][]byte, b.N)
	for i := range bodies {
		body, err := json.Marshal(api.PushRequest{Submissions: []api.Submission{{ID: uuid.NewString(),
			Form: "perception", FormVersion: "1", ClientModifiedAt: time.Now().UTC(), Data: surveyRecord(i + 1)}}})
		if err != nil {
			b.Fatal(err)
		}
		bodies[i] = body
	}
	var n atomic.Int64
	c0 := cpuTime()
	b.ResetTimer()
	var wg sync.WaitGroup
	for k := range devices {
		wg.Go(func() {
			for i := n.Add(1); i <= int64(b.N); i = n.Add(1) {
				var out api.PushResponse
				if err := cls[k].Do(ctx, http.MethodPost, path, bodies[i-1], &out); err != nil {
					b.Error(err)
					return
				}
				if len(out.Results) != 1 || out.Results[0].Status != api.PushCreated {
					b.Errorf("push result %+v", out.Results)
					return
				}
			}
		})
	}
	wg.Wait()
	b.StopTimer()
	b.ReportMetric(float64(b.N)/b.Elapsed().Seconds(), "pushes/s")
	reportCPU(b, cpuTime()-c0, b.N, "push")
	b.Log(c.inst[0].storeTimings("GetRecords", "WriteRecords", "ResolveQuarantine", "TouchDevice"))
}
