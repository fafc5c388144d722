package httpapi

import (
	"bytes"
	"encoding/json"
	"reflect"
	"testing"
)

// pushItemSeeds are pushed items of every shape the decoders meet: ordinary,
// tombstones, null and "" bases, attachments, and the items encoding/json and
// encoding/json/v2 could disagree on (case, repeats, UTF-8, times, nulls).
var pushItemSeeds = []string{
	`{"id":"3f0c5c1e-9a7b-4c1d-8e2f-0a1b2c3d4e5f","form":"perception","form_version":"1","base_rev":null,"client_modified_at":"2024-05-01T10:00:00+03:00","data":{"a":1}}`,
	`{"id":"3f0c5c1e-9a7b-4c1d-8e2f-0a1b2c3d4e5f","form":"perception","form_version":"1","base_rev":"1-abc","deleted":true}`,
	`{"id":"x","form":"f","form_version":"1","base_rev":"","data":null}`,
	`{"id":"x","form":"f","form_version":"1","data":{"photo":"a.jpg"},"attachments":[{"name":"a.jpg","sha256":"00","size":3,"content_type":"image/jpeg"}]}`,
	`{"id":"x","form":"f","form_version":"1","data":{},"attachments":[]}`,
	`{"id":"x","form":"f","form_version":"1","data":{},"attachments":null}`,
	`{"ID":"x","Form":"f","form_version":"1","data":{}}`,
	`{"id":"x","id":"y","form":"f","form_version":"1","data":{}}`,
	`{"id":"x\xff","form":"f","form_version":"1","data":{}}`,
	`{"id":"x","form":"f","form_version":"1","data":{"s":"\xff"}}`,
	`{"id":"x","form":"f","form_version":"1","client_modified_at":"2024-05-01T10:00:00Z","data":{}}`,
	`{"id":"x","form":"f","form_version":"1","client_modified_at":"2024-05-01 10:00:00Z","data":{}}`,
	`{"id":"x","form":"f","form_version":"1","client_modified_at":"2024-05-01T10:00:00.123456789-00:00","data":{}}`,
	`{"id":"x","form":"f","form_version":"1","client_modified_at":null,"deleted":null,"data":{}}`,
	`{"id":"x","form":"f","form_version":"1","bse_rev":"1-a","data":{}}`,
	`{"id":1,"form":"f","form_version":"1","data":{}}`,
	`{"id":"x","form":"f","form_version":"1","data":  { "b" : [1, 2.5e3, "\u00e9"] } }`,
	`{"id":"x","form":"f","form_version":"1","data":{},"attachments":[{"name":"a","size":1.5}]}`,
	`{"id":"x","form":"f","form_version":"1","data":{},"attachments":[{"name":"a","extra":1}]}`,
	`[]`, `null`, `"x"`, `{}`,
}

// TestDecodeSubmissionFastAgrees checks the seeds by the rule the fuzz test
// checks on any input, and that the fast decoder takes the ordinary items (the
// fast path must not silently be dead).
func TestDecodeSubmissionFastAgrees(t *testing.T) {
	for _, seed := range pushItemSeeds {
		checkSubmissionDecoders(t, []byte(seed))
	}
	for _, seed := range pushItemSeeds[:6] {
		if _, ok := decodeSubmissionFast(json.RawMessage(seed)); !ok {
			t.Errorf("fast decoder refused an ordinary item %s", seed)
		}
	}
}

// FuzzDecodeSubmissionFast: whatever the encoding/json/v2 path accepts, the
// encoding/json path accepts with the same values.
func FuzzDecodeSubmissionFast(f *testing.F) {
	for _, seed := range pushItemSeeds {
		f.Add([]byte(seed))
	}
	f.Fuzz(func(t *testing.T, raw []byte) { checkSubmissionDecoders(t, raw) })
}

func checkSubmissionDecoders(t *testing.T, raw []byte) {
	t.Helper()
	fast, ok := decodeSubmissionFast(json.RawMessage(raw))
	if !ok {
		return
	}
	slow, findings := decodeSubmission(json.RawMessage(raw))
	if findings != nil {
		t.Fatalf("fast decoder took %q, encoding/json refuses it: %v", raw, findings)
	}
	if !bytes.Equal(fast.Data, slow.Data) || (fast.Data == nil) != (slow.Data == nil) {
		t.Fatalf("data of %q: fast %q, encoding/json %q", raw, fast.Data, slow.Data)
	}
	fast.Data, slow.Data = nil, nil
	if !fast.ClientModifiedAt.Equal(slow.ClientModifiedAt) {
		t.Fatalf("client_modified_at of %q: fast %v, encoding/json %v", raw, fast.ClientModifiedAt, slow.ClientModifiedAt)
	}
	fast.ClientModifiedAt = slow.ClientModifiedAt
	if !reflect.DeepEqual(fast, slow) {
		t.Fatalf("%q: fast %+v, encoding/json %+v", raw, fast, slow)
	}
}

// pushBodySeeds are push bodies for the envelope split.
var pushBodySeeds = []string{
	`{"submissions":[{"id":"a"},{"id":"b","data":{"x":[1,2]}}]}`,
	` { "submissions" : [ ] } `,
	`{"submissions":null}`,
	`{}`,
	`{"Submissions":[{}]}`,
	`{"submissions":[{}],"submissions":[{},{}]}`,
	`{"submissions":[{}],"extra":1}`,
	`{"submissions":[{}]} []`,
	`{"submissions":[{}]`,
	`{"submissions":{}}`,
	`{"submissions":[1,"x",null,[]]}`,
	`{"submissions":["\xff"]}`,
	`[]`,
}

// TestSplitPushAgrees checks the seeds by the fuzz test's rule, and that the
// ordinary shapes take the fast split.
func TestSplitPushAgrees(t *testing.T) {
	for _, seed := range pushBodySeeds {
		checkSplitPush(t, []byte(seed))
	}
	for _, seed := range pushBodySeeds[:3] {
		if _, ok := splitPush([]byte(seed)); !ok {
			t.Errorf("split refused an ordinary body %s", seed)
		}
	}
}

// FuzzSplitPush: whatever splitPush takes, encoding/json decodes to the same
// items, byte for byte.
func FuzzSplitPush(f *testing.F) {
	for _, seed := range pushBodySeeds {
		f.Add([]byte(seed))
	}
	f.Fuzz(func(t *testing.T, body []byte) { checkSplitPush(t, body) })
}

func checkSplitPush(t *testing.T, body []byte) {
	t.Helper()
	items, ok := splitPush(body)
	if !ok {
		return
	}
	var env pushEnvelope
	if err := decodeJSONBytes(body, &env); err != nil {
		t.Fatalf("split took %q, encoding/json refuses it: %v", body, err)
	}
	if (items == nil) != (env.Submissions == nil) || len(items) != len(env.Submissions) {
		t.Fatalf("%q: split %q, encoding/json %q", body, items, env.Submissions)
	}
	for i := range items {
		if !bytes.Equal(items[i], env.Submissions[i]) {
			t.Fatalf("%q item %d: split %q, encoding/json %q", body, i, items[i], env.Submissions[i])
		}
	}
}
