package api

import (
	"bytes"
	"context"
	"encoding/json"
	"io"
	"net/http"
	"reflect"
	"testing"
	"time"
)

// TestPageDecodesAsEncodingJSON: the client (json/v2) decodes a page with
// every shape the server writes (null data, conflicts, escapes, attachments,
// history) to what encoding/json makes of it.
func TestPageDecodesAsEncodingJSON(t *testing.T) {
	in := []byte(`{"changes":[` +
		`{"id":"a","form":"f","form_version":"1","rev":"1-x","deleted":true,"data":null,"created_by":"user:\u00e9<","client_modified_at":"2026-01-01T00:00:00.123+03:00","created_at":"2026-01-01T00:00:00Z","updated_at":"2026-01-01T00:00:00Z","review_state":"received","conflicts":[],"assigned_to":[]},` +
		`{"id":"b","form":"f","form_version":"2","rev":"2-y","deleted":false,"data":{"n":12345678901234567891,"s":"\n"},"created_by":"device:d","device_id":"d","client_modified_at":"2026-01-01T00:00:00Z","created_at":"2026-01-01T00:00:00Z","updated_at":"2026-01-01T00:00:00Z","review_state":"has_issues","review_comment":"x\u2028","conflicts":[{"path":"/n","base":null,"values":[{"rev":"2-y","value":1,"client_modified_at":"2026-01-01T00:00:00Z","by":"user:u"},{"rev":"2-z","value":null,"deleted":true,"client_modified_at":"2026-01-01T00:00:00Z","device_id":"e"}]}],"assigned_to":["user:u"],"attachments":[{"name":"p.jpg","sha256":"00","size":3,"content_type":"image/jpeg"}],"revs":[{"rev":"1-x","deleted":false,"data":{}}]}` +
		`],"next":"c1","more":true}` + "\n")
	c, err := NewClient("http://fieldsync.invalid", WithHTTPClient(&http.Client{Transport: answer(in)}))
	if err != nil {
		t.Fatal(err)
	}
	var got, want PullResponse
	if err := c.Do(context.Background(), http.MethodGet, "/v1/projects/p/sync/pull", nil, &got); err != nil {
		t.Fatal(err)
	}
	if err := json.Unmarshal(in, &want); err != nil {
		t.Fatal(err)
	}
	if !reflect.DeepEqual(got, want) {
		t.Errorf("client decodes\n%+v\nencoding/json\n%+v", got, want)
	}
}

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
