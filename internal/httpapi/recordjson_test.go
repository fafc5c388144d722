package httpapi

import (
	"bytes"
	"encoding/json"
	"net/http"
	"net/http/httptest"
	"reflect"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/fieldsync/fieldsync/api"
	"github.com/fieldsync/fieldsync/internal/domain"
)

// referencePull is what handlePull answered before recordjson.go: apiRecord and
// encoding/json (writeJSON's encoder).
func referencePull(recs []domain.Record, next string, more bool) ([]byte, error) {
	return referencePullNamed(recs, nil, next, more)
}

// referencePullNamed is referencePull with the page's device names
// (records.Page.DeviceNames) in each record's device_name.
func referencePullNamed(recs []domain.Record, names map[string]string, next string, more bool) ([]byte, error) {
	out := api.PullResponse{Changes: make([]api.Record, len(recs)), Next: next, More: more}
	for i, r := range recs {
		out.Changes[i] = apiRecord(r)
		out.Changes[i].DeviceName = names[r.DeviceID]
	}
	var buf bytes.Buffer
	err := json.NewEncoder(&buf).Encode(out)
	return buf.Bytes(), err
}

// referenceRecordPage is what handleFormRecords answered before recordjson.go.
func referenceRecordPage(recs []domain.Record, next string) ([]byte, error) {
	return referenceRecordPageNamed(recs, nil, next)
}

// referenceRecordPageNamed is referenceRecordPage with device names.
func referenceRecordPageNamed(recs []domain.Record, names map[string]string, next string) ([]byte, error) {
	out := api.RecordPage{Records: make([]api.Record, len(recs)), Next: next}
	for i, r := range recs {
		out.Records[i] = apiRecord(r)
		out.Records[i].DeviceName = names[r.DeviceID]
	}
	var buf bytes.Buffer
	err := json.NewEncoder(&buf).Encode(out)
	return buf.Bytes(), err
}

// encodedPull runs a pageStream as handlePull does, the records coming in
// chunks of chunk (0: all at once), and returns the body, or the error.
func encodedPull(recs []domain.Record, next string, more bool, chunk int) ([]byte, http.Header, error) {
	w := httptest.NewRecorder()
	err := streamPage(w, `{"changes":[`, recs, pullTail(next, more), chunk)
	return w.Body.Bytes(), w.Header(), err
}

// encodedRecordPage is encodedPull for handleFormRecords.
func encodedRecordPage(recs []domain.Record, next string, chunk int) ([]byte, error) {
	w := httptest.NewRecorder()
	err := streamPage(w, `{"records":[`, recs, recordPageTail(next), chunk)
	return w.Body.Bytes(), err
}

func streamPage(w http.ResponseWriter, head string, recs []domain.Record, tail []byte, chunk int) error {
	ps := newPageStream(w, head)
	defer ps.release()
	if chunk <= 0 {
		chunk = max(1, len(recs))
	}
	for c := range slices.Chunk(recs, chunk) {
		if err := ps.records(c); err != nil {
			return err
		}
	}
	return ps.finish(tail)
}

// decodedValue decodes JSON into generic values, numbers kept as written.
func decodedValue(t testing.TB, b []byte) any {
	t.Helper()
	dec := json.NewDecoder(bytes.NewReader(b))
	dec.UseNumber()
	var v any
	if err := dec.Decode(&v); err != nil {
		t.Fatalf("invalid JSON: %v\n%s", err, b)
	}
	if dec.More() {
		t.Fatalf("data after the value:\n%s", b)
	}
	return v
}

// samePageJSON fails unless got and want decode to equal values (and both end in
// a newline, as writeJSON's answers do).
func samePageJSON(t testing.TB, got, want []byte) {
	t.Helper()
	if !bytes.HasSuffix(got, []byte("\n")) {
		t.Errorf("answer does not end in a newline: %q", got)
	}
	g, w := decodedValue(t, got), decodedValue(t, want)
	if !reflect.DeepEqual(g, w) {
		t.Fatalf("encoded page differs from encoding/json's\n got: %s\nwant: %s", got, want)
	}
}

// checkPage compares both page encoders with the reference for recs, the
// records coming all at once and one by one.
func checkPage(t testing.TB, recs []domain.Record, next string, more bool) {
	t.Helper()
	for _, chunk := range []int{0, 1} {
		want, werr := referencePull(recs, next, more)
		got, h, gerr := encodedPull(recs, next, more, chunk)
		if (werr != nil) != (gerr != nil) {
			t.Fatalf("pull page: encoding/json error %v, encoder error %v", werr, gerr)
		}
		if werr == nil {
			samePageJSON(t, got, want)
			if h.Get("Content-Type") != "application/json" || h.Get("X-Content-Type-Options") != "nosniff" {
				t.Fatalf("headers %v", h)
			}
		}
		want, werr = referenceRecordPage(recs, next)
		got, gerr = encodedRecordPage(recs, next, chunk)
		if (werr != nil) != (gerr != nil) {
			t.Fatalf("record page: encoding/json error %v, encoder error %v", werr, gerr)
		}
		if werr == nil {
			samePageJSON(t, got, want)
		}
	}
}

func mustMarshal(v any) []byte {
	b, err := json.Marshal(v)
	if err != nil {
		panic(err)
	}
	return b
}

// variedRecords covers the shapes a page holds.
func variedRecords() []domain.Record {
	t0 := time.Date(2026, 3, 4, 5, 6, 7, 891_000_000, time.UTC)
	plain := domain.Record{ProjectID: "north", ID: "3f0c5c1e-0000-4000-8000-000000000001", FormID: "perception", FormVersion: "2",
		Rev: "1-9c1f", Data: json.RawMessage(`{"age":34,"safe":true,"threats":["theft","flood"],"note":"ok"}`),
		CreatedBy: "device:tab-1", DeviceID: "tab-1", ClientModifiedAt: t0, CreatedAt: t0, UpdatedAt: t0.Add(time.Second),
		ReviewState: domain.ReviewReceived, Seq: 7, Version: 1}
	tomb := plain
	tomb.ID, tomb.Rev, tomb.Deleted, tomb.Data = "tomb", "2-aa", true, nil
	conflicted := plain
	conflicted.ID = "conflicted"
	conflicted.Conflicts = []domain.Conflict{
		{Path: "/age", Base: json.RawMessage(`30`), Values: []domain.ConflictValue{
			{Rev: "2-a", Value: json.RawMessage(`31`), ClientModifiedAt: t0, DeviceID: "tab-1", By: "device:tab-1"},
			{Rev: "2-b", Value: nil, Deleted: true, ClientModifiedAt: time.Time{}},
		}},
		{Path: "", Base: nil, Values: nil},
		{Path: "/note", Base: json.RawMessage(" \"a\\u00e9<b>\" "), Values: []domain.ConflictValue{{Rev: "3-c", Value: json.RawMessage(`null`)}}},
	}
	assigned := plain
	assigned.ID, assigned.AssignedTo = "assigned", []string{"device:tab-2", "user:amina"}
	assignedEmpty := plain
	assignedEmpty.ID, assignedEmpty.AssignedTo = "assigned-empty", []string{}
	attached := plain
	attached.ID = "attached"
	attached.Attachments = []domain.Attachment{{Name: "site.jpg", SHA256: strings.Repeat("ab", 32), Size: 48213, ContentType: "image/jpeg"},
		{Name: "sig.png", SHA256: strings.Repeat("0", 64), Size: 0}}
	attachedEmpty := plain
	attachedEmpty.ID, attachedEmpty.Attachments = "attached-empty", []domain.Attachment{}
	odd := plain
	odd.ID = "odd \"quoted\" \\ <tag> & \u2028\u2029 \x00\x01\x1f\t\n\r\b\f é 日本 \xff\xfe bad"
	odd.FormID = "form\x7f"
	odd.CreatedBy = "user:zoë"
	odd.DeviceID = ""
	odd.ReviewComment = "check \"age\" — <script>"
	odd.ReviewState = domain.ReviewHasIssues
	odd.Data = json.RawMessage("{\n  \"k\": [1, 2.5e-3, -0, {\"x\": null}],\t\"s\": \"<&>\\u2028\\ud83d\\ude00\"\n}")
	zero := domain.Record{ID: "zero", Data: json.RawMessage(`{}`)}
	nanos := plain
	nanos.ID = "nanos"
	nanos.ClientModifiedAt = time.Date(1999, 12, 31, 23, 59, 59, 123456789, time.FixedZone("x", -(3*3600+30*60)))
	nanos.UpdatedAt = time.Date(2026, 1, 1, 0, 0, 0, 1, time.FixedZone("y", 14*3600))
	scalars := plain
	scalars.ID, scalars.Data = "scalars", json.RawMessage(`"just a string"`)
	deep := plain
	deep.ID, deep.Data = "deep", json.RawMessage(strings.Repeat("[", 300)+strings.Repeat("]", 300))
	return []domain.Record{plain, tomb, conflicted, assigned, assignedEmpty, attached, attachedEmpty, odd, zero, nanos, scalars, deep}
}

func TestRecordJSONMatchesEncodingJSON(t *testing.T) {
	recs := variedRecords()
	checkPage(t, recs, "c1AAAAAAAAAAAB", true)
	checkPage(t, recs, "", false)
	checkPage(t, nil, "c1AAAAAAAAAAAA", false)
	for _, r := range recs {
		t.Run(r.ID, func(t *testing.T) { checkPage(t, []domain.Record{r}, "n", false) })
	}
}

func TestRecordJSONErrorsWhereEncodingJSONDoes(t *testing.T) {
	base := variedRecords()[0]
	bad := map[string]func(r *domain.Record){
		"data not JSON":   func(r *domain.Record) { r.Data = json.RawMessage(`{"a":}`) },
		"data empty":      func(r *domain.Record) { r.Data = json.RawMessage{} },
		"data two values": func(r *domain.Record) { r.Data = json.RawMessage(`1 2`) },
		"data too deep": func(r *domain.Record) {
			r.Data = json.RawMessage(strings.Repeat("[", 10001) + strings.Repeat("]", 10001))
		},
		"base not JSON": func(r *domain.Record) { r.Conflicts = []domain.Conflict{{Base: json.RawMessage(`tru`)}} },
		"value empty": func(r *domain.Record) {
			r.Conflicts = []domain.Conflict{{Values: []domain.ConflictValue{{Value: json.RawMessage{}}}}}
		},
		"year out of range": func(r *domain.Record) { r.CreatedAt = time.Date(10000, 1, 1, 0, 0, 0, 0, time.UTC) },
		"negative year":     func(r *domain.Record) { r.UpdatedAt = time.Date(-1, 1, 1, 0, 0, 0, 0, time.UTC) },
		"zone of 24 hours":  func(r *domain.Record) { r.ClientModifiedAt = r.ClientModifiedAt.In(time.FixedZone("s", 24*3600)) },
		"conflict time": func(r *domain.Record) {
			r.Conflicts = []domain.Conflict{{Values: []domain.ConflictValue{{ClientModifiedAt: time.Date(12345, 1, 1, 0, 0, 0, 0, time.UTC)}}}}
		},
		"control char in data": func(r *domain.Record) { r.Data = json.RawMessage("\"a\x01\"") },
	}
	for name, spoil := range bad {
		t.Run(name, func(t *testing.T) {
			r := base
			spoil(&r)
			if _, err := referencePull([]domain.Record{r}, "", false); err == nil {
				t.Fatal("encoding/json accepts it; the case is wrong")
			}
			if _, _, err := encodedPull([]domain.Record{r}, "", false, 0); err == nil {
				t.Fatal("encoder accepts it")
			}
			if _, err := encodedRecordPage([]domain.Record{r}, "", 0); err == nil {
				t.Fatal("record page encoder accepts it")
			}
		})
	}
}

// TestRecordStringsDecodeAsEncodingJSON: the page escapes strings as canonical
// JSON does, not as encoding/json does (no \u003c for <, no \u2028), and a
// client decodes the same text either way, invalid UTF-8 included (U+FFFD).
// The answer is application/json with nosniff, so no browser reads the
// unescaped < as HTML.
func TestRecordStringsDecodeAsEncodingJSON(t *testing.T) {
	for _, s := range []string{"", "plain", "\"\\/", "<script>&</script>", "\u2028\u2029\u2027", "\x00\x07\x08\x0c\x1b\x7f", "é日本😀", "\xff", "a\xc3", "\xed\xa0\x80", "\xf4\x90\x80\x80"} {
		r := variedRecords()[0]
		r.ID, r.ReviewComment = s, s
		page, header, err := encodedPull([]domain.Record{r}, s, false, 0)
		if err != nil {
			t.Fatal(err)
		}
		if ct, nosniff := header.Get("Content-Type"), header.Get("X-Content-Type-Options"); ct != "application/json" || nosniff != "nosniff" {
			t.Fatalf("Content-Type %q, X-Content-Type-Options %q", ct, nosniff)
		}
		var got, want api.PullResponse
		if err := json.Unmarshal(page, &got); err != nil {
			t.Fatalf("%q: %v\n%s", s, err, page)
		}
		if err := json.Unmarshal(mustMarshal(api.PullResponse{Changes: []api.Record{apiRecord(r)}, Next: s}), &want); err != nil {
			t.Fatal(err)
		}
		if got.Next != want.Next || got.Changes[0].ID != want.Changes[0].ID || got.Changes[0].ReviewComment != want.Changes[0].ReviewComment {
			t.Errorf("%q decodes to %q, encoding/json's to %q", s, got.Changes[0].ID, want.Changes[0].ID)
		}
		if strings.Contains(s, "<") && !bytes.Contains(page, []byte("<script>")) {
			t.Errorf("< escaped: %s", page)
		}
	}
}

// FuzzRecordJSON checks, for records made of arbitrary strings, JSON values and
// times, that the page encoder fails where encoding/json does and otherwise
// writes what decodes to the same values.
func FuzzRecordJSON(f *testing.F) {
	f.Add("id", "user:amina", []byte(`{"a":1}`), []byte(`2`), "comment", "tab-1", int64(1767225600123), false, uint8(0))
	f.Add("\xff<\u2028>", "", []byte(" [1, \"x\"] "), []byte(nil), "", "", int64(-62135596800000), true, uint8(255))
	f.Add("", "\x00", []byte(``), []byte(`{`), "\"", "é", int64(253402300800000), false, uint8(7))
	f.Fuzz(func(t *testing.T, id, by string, data, base []byte, comment, device string, ms int64, deleted bool, shape uint8) {
		at := time.UnixMilli(ms).UTC()
		r := domain.Record{ID: id, FormID: by, FormVersion: comment, Rev: device, Deleted: deleted, CreatedBy: by, DeviceID: device,
			ClientModifiedAt: at, CreatedAt: at.Add(time.Duration(ms % 1000)), UpdatedAt: at, ReviewState: id, ReviewComment: comment}
		if shape&1 != 0 {
			r.Data = data
		}
		if shape&2 != 0 {
			r.Conflicts = []domain.Conflict{{Path: comment, Base: base, Values: []domain.ConflictValue{{Rev: id, Value: data, Deleted: deleted, ClientModifiedAt: at, DeviceID: device, By: by}}}}
		}
		if shape&4 != 0 {
			r.Conflicts = append(r.Conflicts, domain.Conflict{Path: by})
		}
		if shape&8 != 0 {
			r.AssignedTo = []string{by, device}
		} else if shape&16 != 0 {
			r.AssignedTo = []string{}
		}
		if shape&32 != 0 {
			r.Attachments = []domain.Attachment{{Name: id, SHA256: by, Size: ms, ContentType: device}}
		}
		if shape&64 != 0 && len(data) == 0 {
			r.Data = json.RawMessage{}
		}
		if shape&128 != 0 {
			r.ClientModifiedAt = at.In(time.FixedZone("z", int(ms%100_000)))
		}
		checkPage(t, []domain.Record{r, r}, comment, deleted)
	})
}

func BenchmarkRecordJSON(b *testing.B) {
	recs := make([]domain.Record, 1000)
	base := variedRecords()[0]
	base.Data = json.RawMessage(`{"consent":true,"district":"north","village":"Kibera West","respondent":{"age":34,"gender":"female","household_size":6},"safety":{"day":4,"night":2,"change":"worse"},"threats":["theft","harassment","flooding"],"trusted":["elders","police","ngo"],"incidents":[{"kind":"theft","month":"2026-01","reported":false}],"comments":"Roads unlit after dark; patrols stopped in December.","gps":{"lat":-1.3133,"lon":36.7836,"accuracy":12.5}}`)
	for i := range recs {
		recs[i] = base
	}
	b.Run("encoder", func(b *testing.B) {
		var buf []byte
		for b.Loop() {
			buf = buf[:0]
			for i := range recs {
				var err error
				if buf, err = appendRecordJSON(buf, &recs[i], nil); err != nil {
					b.Fatal(err)
				}
			}
		}
		b.ReportMetric(float64(b.Elapsed().Nanoseconds())/float64(b.N*len(recs)), "ns/record")
	})
	b.Run("encoding-json", func(b *testing.B) {
		for b.Loop() {
			if _, err := referencePull(recs, "c1AAAAAAAAAAAB", true); err != nil {
				b.Fatal(err)
			}
		}
		b.ReportMetric(float64(b.Elapsed().Nanoseconds())/float64(b.N*len(recs)), "ns/record")
	})
}

// TestAppendRawJSONMatchesJSONValid: the encoder takes stored data exactly when
// json.Valid does (canonjson.Valid first, json.Valid past its depth).
func TestAppendRawJSONMatchesJSONValid(t *testing.T) {
	for _, s := range []string{`null`, `{"a":[1,2,{"b":"\u00e9"}]}`, `{"a":1,}`, `[1 2]`, `"\x"`, "\"\x7f\xff\"",
		`{"`, `{"a`, strings.Repeat("[", 300) + strings.Repeat("]", 300), strings.Repeat("[", 300),
		strings.Repeat("[", 1001) + strings.Repeat("]", 1001)} {
		checkAppendRawJSON(t, []byte(s))
	}
}

// FuzzAppendRawJSON is TestAppendRawJSONMatchesJSONValid on any input.
func FuzzAppendRawJSON(f *testing.F) {
	f.Add([]byte(`{"a":[1,2]}`))
	f.Add([]byte(strings.Repeat("[", 300) + strings.Repeat("]", 300)))
	f.Fuzz(func(t *testing.T, b []byte) {
		if len(b) > 0 {
			checkAppendRawJSON(t, b)
		}
	})
}

func checkAppendRawJSON(t *testing.T, b []byte) {
	t.Helper()
	_, err := appendRawJSON(nil, b)
	if got, want := err == nil, json.Valid(b); got != want {
		t.Fatalf("encoder takes %q: %v, json.Valid: %v", b, got, want)
	}
}
