package api

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"reflect"
	"strings"
	"testing"
	"testing/iotest"
	"time"
)

// samplePage is a pull page as encoding/json writes it, with every kind of
// field the server sends.
func samplePage(t testing.TB) []byte {
	t0 := time.Date(2026, 3, 4, 5, 6, 7, 891_000_000, time.UTC)
	recs := []Record{
		{ID: "3f0c5c1e-0000-4000-8000-000000000001", Form: "perception", FormVersion: "2", Rev: "1-9c1f",
			Data: json.RawMessage(`{"age":34,"safe":true,"threats":["theft","flood"],"note":"a <b> & é \u2028"}`), CreatedBy: "device:tab-1",
			DeviceID: "tab-1", ClientModifiedAt: t0, CreatedAt: t0, UpdatedAt: t0.Add(time.Second), ReviewState: ReviewReceived,
			Conflicts: []Conflict{}, AssignedTo: []string{}},
		{ID: "tomb", Form: "perception", FormVersion: "2", Rev: "2-aa", Deleted: true, Data: nil, CreatedBy: "user:zoë",
			ClientModifiedAt: t0, CreatedAt: t0, UpdatedAt: t0, ReviewState: ReviewHasIssues, ReviewComment: "check \"age\"\n",
			Conflicts: []Conflict{{Path: "/age", Base: json.RawMessage(`null`), Values: []ConflictValue{
				{Rev: "2-a", Value: json.RawMessage(`31`), ClientModifiedAt: t0, DeviceID: "tab-1", By: "device:tab-1"},
				{Rev: "2-b", Value: json.RawMessage(`null`), Deleted: true}}}},
			AssignedTo:  []string{"device:tab-2", "user:amina"},
			Attachments: []Attachment{{Name: "site.jpg", SHA256: strings.Repeat("ab", 32), Size: 48213, ContentType: "image/jpeg"}}},
		{ID: "zero", Data: json.RawMessage(`[]`), Conflicts: []Conflict{}, AssignedTo: []string{},
			Revs: []Revision{{Rev: "1-x", Data: json.RawMessage(`{}`), CreatedAt: t0}}},
	}
	b, err := json.Marshal(PullResponse{Changes: recs, Next: "c1AAAAAAAAAAAB", More: true})
	if err != nil {
		t.Fatal(err)
	}
	return b
}

// pullSeeds are pages of shapes the fast path takes and of many it does not.
func pullSeeds(t testing.TB) []string {
	page := string(samplePage(t))
	rec := `{"id":"a","form":"f","form_version":"1","rev":"1-a","deleted":false,"data":{"x":1},"created_by":"u","client_modified_at":"2026-01-01T00:00:00Z","created_at":"2026-01-01T00:00:00.5Z","updated_at":"2026-01-01T00:00:00Z","review_state":"received","conflicts":[],"assigned_to":[]}`
	return []string{
		page,
		page + "\n",
		page + "garbage",
		"  \n" + page,
		page[:len(page)/2],
		page[:len(page)-1],
		`{"changes":[],"next":"c1","more":false}`,
		`{"changes":[` + rec + `,` + rec + `],"next":"n","more":true}` + "\n",
		`{"changes":null,"next":null,"more":null}`,
		`{}`, `null`, ``, ` `, `[]`, `{"changes":[null]}`, `{"changes":[{}]}`, `{"changes":{}}`,
		`{ "changes" : [ { "id" : "a" , "data" : [ 1 , 2 ] , "deleted" : true } ] , "more" : true }`,
		`{"Changes":[],"NEXT":"x"}`, `{"changes":[],"other":1}`, `{"changes":[],"changes":[]}`, `{"next":"a","next":"b"}`,
		`{"changes":[{"id":"a","id":"b"}]}`, `{"changes":[{"ID":"a"}]}`, `{"changes":[{"id":"a","extra":{"y":[1]}}]}`,
		`{"chang\u0065s":[]}`, `{"changes":[{"id":"\u00e9\n\"x\""}]}`, "{\"changes\":[{\"id\":\"\xff\xfe\"}]}",
		`{"changes":[{"id":5}]}`, `{"changes":[{"id":"a","deleted":"yes"}]}`, `{"changes":[{"id":"a","deleted":null}]}`,
		`{"changes":[{"id":null,"form":null}]}`, `{"changes":[{"created_at":"yesterday"}]}`, `{"changes":[{"created_at":null}]}`,
		`{"changes":[{"created_at":"2026-01-01T00:00:00+02:00"}]}`, `{"changes":[{"created_at":"2026-01-01T00:00:00\u005a"}]}`,
		`{"changes":[{"created_at":12}]}`, `{"changes":[{"data":nul}]}`, `{"changes":[{"data":01}]}`, `{"changes":[{"data":"\x01"}]}`,
		`{"changes":[{"data":null}]}`, `{"changes":[{"data":  {"a" : [ ] }  }]}`, `{"changes":[{"data":` + strings.Repeat("[", 300) + strings.Repeat("]", 300) + `}]}`,
		`{"changes":[{"assigned_to":null}]}`, `{"changes":[{"assigned_to":["a",null]}]}`, `{"changes":[{"assigned_to":[1]}]}`,
		`{"changes":[{"assigned_to":[ "a" , "b" ]}]}`, `{"changes":[{"conflicts":null}]}`, `{"changes":[{"conflicts":[ ]}]}`,
		`{"changes":[{"conflicts":[{"path":"/a","base":1,"values":[{"rev":"r","value":{"z":true}}]}]}]}`, `{"changes":[{"conflicts":[{"path":1}]}]}`,
		`{"changes":[{"attachments":[{"name":"a","size":1.5}]}]}`, `{"changes":[{"attachments":[]}]}`, `{"changes":[{"revs":[{"rev":"1"}]}]}`,
		`{"more":true,"more":false}`, `{"more":1}`, `{"next":7}`, `{"changes":[],}`, `{"changes":[,]}`, `{"changes":[{"id":"a"},]}`,
		`{"changes":[{"id":"a"}{"id":"b"}]}`, `{"changes":[]"next":""}`, `{"changes" []}`,
	}
}

// refDecode is what the client did before pulldecode.go.
func refDecode(in []byte, out any) error {
	return json.NewDecoder(bytes.NewReader(in)).Decode(out)
}

// viaExchange decodes in as Exchange does, through decodePage.
func viaExchange(in []byte, out any, body io.Reader) error {
	if body == nil {
		body = bytes.NewReader(in)
	}
	resp := &http.Response{StatusCode: 200, Body: io.NopCloser(body), ContentLength: -1}
	paged, err := new(Client).decodePage(resp, out)
	if !paged {
		return errors.New("decodePage declined")
	}
	return err
}

// checkDecode fails unless the fast decoder and decodePage agree with
// encoding/json on in, for both page types.
func checkDecode(t testing.TB, in []byte) {
	t.Helper()
	var want, got, fast PullResponse
	werr := refDecode(in, &want)
	gerr := viaExchange(in, &got, nil)
	if fmt.Sprint(werr) != fmt.Sprint(gerr) {
		t.Fatalf("%q: decodePage error %v, encoding/json %v", in, gerr, werr)
	}
	if !reflect.DeepEqual(got, want) {
		t.Fatalf("%q: decodePage gives\n%#v\nencoding/json\n%#v", in, got, want)
	}
	d := pageDecoder{b: bytes.Clone(in)}
	if d.pullResponse(&fast) {
		if werr != nil {
			t.Fatalf("%q: fast path accepts what encoding/json refuses: %v", in, werr)
		}
		if !reflect.DeepEqual(fast, want) {
			t.Fatalf("%q: fast path gives\n%#v\nencoding/json\n%#v", in, fast, want)
		}
	}

	// The same bytes as a RecordPage, "changes" renamed.
	in2 := bytes.ReplaceAll(in, []byte(`"changes"`), []byte(`"records"`))
	var want2, got2 RecordPage
	werr = refDecode(in2, &want2)
	gerr = viaExchange(in2, &got2, nil)
	if fmt.Sprint(werr) != fmt.Sprint(gerr) {
		t.Fatalf("%q: decodePage error %v, encoding/json %v", in2, gerr, werr)
	}
	if !reflect.DeepEqual(got2, want2) {
		t.Fatalf("%q: decodePage gives\n%#v\nencoding/json\n%#v", in2, got2, want2)
	}
}

func TestPageDecodeMatchesEncodingJSON(t *testing.T) {
	for _, s := range pullSeeds(t) {
		checkDecode(t, []byte(s))
	}
}

// TestPageDecodeFastPath makes sure the server's pages do take the fast path.
func TestPageDecodeFastPath(t *testing.T) {
	in := samplePage(t)
	var out PullResponse
	d := pageDecoder{b: in}
	if !d.pullResponse(&out) {
		t.Fatal("the fast path gives up on a page as the server writes it")
	}
	if len(out.Changes) != 3 || out.Next != "c1AAAAAAAAAAAB" || !out.More {
		t.Fatalf("decoded %+v", out)
	}
}

// TestPageDecodeDataIsItsOwn: appending to one record's Data must not touch the
// body the next record's Data slices.
func TestPageDecodeDataIsItsOwn(t *testing.T) {
	in := []byte(`{"changes":[{"id":"a","data":{"x":1}},{"id":"b","data":{"y":2}}],"next":"n","more":false}`)
	var out PullResponse
	if err := viaExchange(in, &out, nil); err != nil {
		t.Fatal(err)
	}
	_ = append(out.Changes[0].Data, "XXXXXXXXXXXXXXXX"...)
	if string(out.Changes[1].Data) != `{"y":2}` {
		t.Fatalf("second record's data now %s", out.Changes[1].Data)
	}
}

// TestPageDecodeNotZero: decoding into a page that holds values merges, as
// encoding/json does, so the fast path stays out.
func TestPageDecodeNotZero(t *testing.T) {
	out := PullResponse{Next: "old"}
	if paged, _ := new(Client).decodePage(&http.Response{Body: io.NopCloser(strings.NewReader(`{}`))}, &out); paged {
		t.Fatal("decodePage took a non-zero PullResponse")
	}
	if paged, _ := new(Client).decodePage(&http.Response{Body: io.NopCloser(strings.NewReader(`{}`))}, &Record{}); paged {
		t.Fatal("decodePage took a *Record")
	}
}

// TestPageDecodeReadError: a body that breaks off gives what encoding/json
// reading it as a stream gives.
func TestPageDecodeReadError(t *testing.T) {
	page := samplePage(t)
	boom := errors.New("connection reset")
	for _, n := range []int{0, 10, len(page) / 2, len(page)} {
		var want, got PullResponse
		werr := json.NewDecoder(io.MultiReader(bytes.NewReader(page[:n]), iotest.ErrReader(boom))).Decode(&want)
		gerr := viaExchange(nil, &got, io.MultiReader(bytes.NewReader(page[:n]), iotest.ErrReader(boom)))
		if fmt.Sprint(werr) != fmt.Sprint(gerr) || !reflect.DeepEqual(got, want) {
			t.Fatalf("cut at %d: got %v %+v, want %v %+v", n, gerr, got, werr, want)
		}
	}
}

func FuzzPageDecode(f *testing.F) {
	for _, s := range pullSeeds(f) {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, in []byte) {
		checkDecode(t, in)
	})
}

func BenchmarkPageDecode(b *testing.B) {
	rec := Record{ID: "3f0c5c1e-0000-4000-8000-000000000001", Form: "perception", FormVersion: "1", Rev: "1-9c1f0a9c1f0a9c1f0a9c1f0a9c1f0a9c",
		Data:      json.RawMessage(`{"consent":true,"district":"north","village":"Kibera West","respondent":{"age":34,"gender":"female","household_size":6},"safety":{"day":4,"night":2,"change":"worse"},"threats":["theft","harassment","flooding"],"trusted":["elders","police","ngo"],"incidents":[{"kind":"theft","month":"2026-01","reported":false}],"comments":"Roads unlit after dark; patrols stopped in December.","gps":{"lat":-1.3133,"lon":36.7836,"accuracy":12.5}}`),
		CreatedBy: "device:0f1e2d3c", DeviceID: "0f1e2d3c", ClientModifiedAt: time.Now().UTC(), CreatedAt: time.Now().UTC(), UpdatedAt: time.Now().UTC(),
		ReviewState: ReviewReceived, Conflicts: []Conflict{}, AssignedTo: []string{}}
	page := PullResponse{Changes: make([]Record, 1000), Next: "c1AAAAAAAAAAAB", More: true}
	for i := range page.Changes {
		page.Changes[i] = rec
	}
	in, err := json.Marshal(page)
	if err != nil {
		b.Fatal(err)
	}
	b.Run("fast", func(b *testing.B) {
		for b.Loop() {
			var out PullResponse
			if err := viaExchange(in, &out, nil); err != nil {
				b.Fatal(err)
			}
		}
		b.ReportMetric(float64(b.Elapsed().Nanoseconds())/float64(b.N*len(page.Changes)), "ns/record")
	})
	b.Run("encoding-json", func(b *testing.B) {
		for b.Loop() {
			var out PullResponse
			if err := refDecode(in, &out); err != nil {
				b.Fatal(err)
			}
		}
		b.ReportMetric(float64(b.Elapsed().Nanoseconds())/float64(b.N*len(page.Changes)), "ns/record")
	})
}
