package odata

import (
	"context"
	"encoding/json"
	"fmt"
	"net/url"
	"path/filepath"
	"strconv"
	"testing"
	"time"

	"github.com/fieldsync/fieldsync/internal/domain"
	"github.com/fieldsync/fieldsync/internal/store/sqlite"
)

const benchForm = `{"schema": {"type": "object", "properties": {
  "village": {"type": "string"}, "age": {"type": "integer"}, "threats": {"type": "array", "items": {"type": "string"}},
  "members": {"type": "array", "items": {"type": "object", "properties": {"name": {"type": "string"}}}}}}}`

// BenchmarkFeedFullRead reads the whole Submissions set of n records page
// by page on SQLite, as a Power BI refresh does, and reports rows/s: through
// QuerySource over the dataset query (what the server uses: one indexed read
// per page) and through scanSource (the changes-feed scan it replaced, whose
// rate falls with n: records²/1000 reads in all).
func BenchmarkFeedFullRead(b *testing.B) {
	for _, n := range []int{2_000, 20_000} {
		b.Run(strconv.Itoa(n), func(b *testing.B) {
			ctx := context.Background()
			st, err := sqlite.Open(ctx, filepath.Join(b.TempDir(), "bench.db"))
			if err != nil {
				b.Fatal(err)
			}
			defer st.Close()
			t0 := time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)
			for i := 0; i < n; i += 500 {
				var ws []domain.RecordWrite
				for j := i; j < min(i+500, n); j++ {
					data, _ := json.Marshal(map[string]any{"village": fmt.Sprint("v", j), "age": j % 90,
						"threats": []string{"theft", "gbv"}, "members": []any{map[string]any{"name": "a"}}})
					at := t0.Add(time.Duration(j) * time.Second)
					r := domain.Record{ProjectID: "p", ID: fmt.Sprintf("%08d-0000-4000-8000-000000000000", j), FormID: "f", FormVersion: "1",
						Rev: "1-" + strconv.Itoa(j), Data: data, CreatedBy: "eve", ClientModifiedAt: at, CreatedAt: at, UpdatedAt: at, ReviewState: "received"}
					ws = append(ws, domain.RecordWrite{Record: r, Revisions: []domain.Revision{{ProjectID: "p", RecordID: r.ID, Rev: r.Rev, Data: data,
						FormVersion: "1", ClientModifiedAt: at, CreatedBy: "eve", CreatedAt: at}}})
				}
				if _, err := st.WriteRecords(ctx, ws); err != nil {
					b.Fatal(err)
				}
			}
			m, err := BuildModel("f", [][]byte{[]byte(benchForm)})
			if err != nil {
				b.Fatal(err)
			}
			qs := QuerySource{Query: func(ctx context.Context, f Filter, afterAt time.Time, afterID string, limit int) ([]domain.Record, bool, error) {
				p, err := st.QueryRecords(ctx, domain.RecordQuery{ProjectID: f.ProjectID, FormID: f.FormID, Since: f.Since, Until: f.Until,
					ReviewStates: f.ReviewStates, After: domain.RecordCursor{CreatedAt: afterAt, ID: afterID}, Limit: limit})
				return p.Records, p.More, err
			}}
			for _, src := range []struct {
				name string
				s    Source
			}{{"query", qs}, {"scan", scanSource{Store: st}}} {
				b.Run(src.name, func(b *testing.B) { benchFullRead(b, ctx, m, Feed{Source: src.s}, n) })
			}
		})
	}
}

// benchFullRead reads the Submissions set through feed b.N times.
func benchFullRead(b *testing.B, ctx context.Context, m *Model, feed Feed, n int) {
	b.ResetTimer()
	for range b.N {
		rows, q := 0, url.Values{}
		for {
			body, _, err := feed.EntitySet(ctx, m, Request{Base: "http://x/odata", ProjectID: "p", FormID: "f", Set: SubmissionsSet, Query: q})
			if err != nil {
				b.Fatal(err)
			}
			var page struct {
				Value []json.RawMessage `json:"value"`
				Next  string            `json:"@odata.nextLink"`
			}
			if err := json.Unmarshal(body, &page); err != nil {
				b.Fatal(err)
			}
			rows += len(page.Value)
			if page.Next == "" {
				break
			}
			u, _ := url.Parse(page.Next)
			q = u.Query()
		}
		if rows != n {
			b.Fatalf("%d rows, want %d", rows, n)
		}
	}
	b.ReportMetric(float64(n*b.N)/b.Elapsed().Seconds(), "rows/s")
}
