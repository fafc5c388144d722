package api

import (
	"bytes"
	"context"
	"encoding/json"
	"io"
	"net/http"
	"testing"
	"time"
)

// BenchmarkPageDecode decodes a pull page of 1000 survey records through
// Client.Do (json/v2), next to encoding/json on the same bytes: the figures
// behind choosing json/v2 over a hand-written page decoder (issue 9).
func BenchmarkPageDecode(b *testing.B) {
	now := time.Now().UTC()
	rec := Record{ID: "3f0c5c1e-0000-4000-8000-000000000001", Form: "perception", FormVersion: "1", Rev: "1-9c1f0a9c1f0a9c1f0a9c1f0a9c1f0a9c",
		Data:      json.RawMessage(`{"consent":true,"district":"north","village":"Kibera West","respondent":{"age":34,"gender":"female","household_size":6},"safety":{"day":4,"night":2,"change":"worse"},"threats":["theft","harassment","flooding"],"trusted":["elders","police","ngo"],"incidents":[{"kind":"theft","month":"2026-01","reported":false}],"comments":"Roads unlit after dark; patrols stopped in December.","gps":{"lat":-1.3133,"lon":36.7836,"accuracy":12.5}}`),
		CreatedBy: "device:0f1e2d3c", DeviceID: "0f1e2d3c", ClientModifiedAt: now, CreatedAt: now, UpdatedAt: now,
		ReviewState: ReviewReceived, Conflicts: []Conflict{}, AssignedTo: []string{}}
	page := PullResponse{Changes: make([]Record, 1000), Next: "c1AAAAAAAAAAAB", More: true}
	for i := range page.Changes {
		page.Changes[i] = rec
	}
	in, err := json.Marshal(page)
	if err != nil {
		b.Fatal(err)
	}
	perRecord := func(b *testing.B) {
		b.ReportMetric(float64(b.Elapsed().Nanoseconds())/float64(b.N*len(page.Changes)), "ns/record")
	}
	b.Run("client", func(b *testing.B) {
		c, err := NewClient("http://fieldsync.invalid", WithHTTPClient(&http.Client{Transport: answer(in)}))
		if err != nil {
			b.Fatal(err)
		}
		for b.Loop() {
			var out PullResponse
			if err := c.Do(context.Background(), http.MethodGet, "/v1/projects/p/sync/pull", nil, &out); err != nil {
				b.Fatal(err)
			}
		}
		perRecord(b)
	})
	b.Run("encoding-json", func(b *testing.B) {
		for b.Loop() {
			var out PullResponse
			if err := json.NewDecoder(bytes.NewReader(in)).Decode(&out); err != nil {
				b.Fatal(err)
			}
		}
		perRecord(b)
	})
}

// answer is a transport that answers every request 200 with body.
type answer []byte

func (a answer) RoundTrip(*http.Request) (*http.Response, error) {
	return &http.Response{StatusCode: http.StatusOK, Header: http.Header{"Content-Type": {"application/json"}},
		Body: io.NopCloser(bytes.NewReader(a)), ContentLength: int64(len(a))}, nil
}
