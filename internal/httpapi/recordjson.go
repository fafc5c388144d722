package httpapi

import (
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"strconv"
	"time"

	"github.com/fieldsync/fieldsync/internal/canonjson"
	"github.com/fieldsync/fieldsync/internal/domain"
)

// The pull feeds (sync/pull and forms/{form}/records) answer up to 1000 whole
// records a page, and encoding them dominated a pull's CPU: apiRecord copied
// every record into an api.Record, and encoding/json re-scanned and re-compacted
// each json.RawMessage (the answers, stored as canonical compact JSON already).
// The encoder here writes the JSON of api.Record straight from domain.Record into
// a pooled buffer and copies the stored JSON verbatim after a fast validity
// check. Its output decodes to exactly what encoding/json's encoding of
// apiRecord(r) decodes to (recordjson_test.go checks that, a fuzz test
// included): the same fields in the same order, the same omitempty rules, the
// same strings, times as Time.MarshalJSON writes them. Only bytes may differ:
// the raw JSON values are copied as stored, where encoding/json would compact
// them, and strings are escaped as the canonical form of record data escapes
// them (canonjson.AppendString), without encoding/json's \u003c for <, > and
// &: the pages are served as application/json with nosniff, and the stored
// data in them never had that escaping anyway.

// pageBufs recycles the buffers pages are encoded into, a chunk at a time.
var pageBufs = newFreeList(4, func() *[]byte {
	b := make([]byte, 0, 256<<10)
	return &b
})

// maxPooledPage is the largest buffer put back into pageBufs: a chunk of huge
// records should not pin its memory for ever.
const maxPooledPage = 2 << 20

// freeList keeps up to a fixed number of costly values for reuse. Unlike a
// sync.Pool it keeps them across garbage collections, which a busy pull feed
// causes every few pages.
type freeList[T any] struct {
	free    chan T
	newItem func() T
}

func newFreeList[T any](size int, newItem func() T) *freeList[T] {
	return &freeList[T]{free: make(chan T, size), newItem: newItem}
}

// get returns a kept value, or a new one.
func (l *freeList[T]) get() T {
	select {
	case v := <-l.free:
		return v
	default:
		return l.newItem()
	}
}

// put keeps v, or drops it when the list is full.
func (l *freeList[T]) put(v T) {
	select {
	case l.free <- v:
	default:
	}
}

// pullChunk is how many records of a page the feeds encode and send at a time
// (pageStream.page), which bounds the encoding buffer.
const pullChunk = 250

// pageStream writes a page of records chunk by chunk: head, the records comma-separated, then the tail given to finish. The first
// chunk is encoded before anything is sent, so a failure up to then is still
// a clean error; a later failure leaves the JSON unfinished, which no client
// can mistake for a page (the adapter then only logs the error).
type pageStream struct {
	w    http.ResponseWriter
	head string
	// names are the device names of the page (records.Page.DeviceNames):
	// each record's device_name; nil for none.
	names map[string]string
	bp    *[]byte
	n     int // records written
	sent  bool
	// present says which declared attachments are held, by record id and
	// name (records.Service.Presence); nil when the page declares none.
	present map[string]map[string]bool
}

func newPageStream(w http.ResponseWriter, head string) *pageStream {
	return &pageStream{w: w, head: head, bp: pageBufs.get()}
}

// records encodes and sends one chunk.
func (p *pageStream) records(recs []domain.Record) error {
	if len(recs) == 0 {
		return nil
	}
	b := (*p.bp)[:0]
	if !p.sent {
		b = append(b, p.head...)
	}
	for i := range recs {
		if p.n > 0 {
			b = append(b, ',')
		}
		p.n++
		var err error
		if b, err = appendRecordJSONNamed(b, &recs[i], p.names[recs[i].DeviceID], p.present[recs[i].ID]); err != nil {
			return fmt.Errorf("encoding record %q: %w", recs[i].ID, err)
		}
	}
	*p.bp = b
	if !p.sent {
		h := p.w.Header()
		h.Set("Content-Type", "application/json")
		h.Set("X-Content-Type-Options", "nosniff")
		p.w.WriteHeader(http.StatusOK)
		p.sent = true
	}
	if _, err := p.w.Write(b); err != nil {
		return fmt.Errorf("writing answer: %w", err)
	}
	return nil
}

// finish sends the tail, or the whole page when no chunk came.
func (p *pageStream) finish(tail []byte) error {
	if !p.sent {
		b := append(append((*p.bp)[:0], p.head...), tail...)
		*p.bp = b
		return writeEncoded(p.w, http.StatusOK, "application/json", b)
	}
	if _, err := p.w.Write(tail); err != nil {
		return fmt.Errorf("writing answer: %w", err)
	}
	return nil
}

// release returns the buffer; p is not used after.
func (p *pageStream) release() {
	putPageBuf(p.bp)
	p.bp = nil
}

// pullTail is the end of a sync/pull page after its records.
func pullTail(next string, more bool) []byte {
	b := canonjson.AppendString(append(make([]byte, 0, 64), `],"next":`...), next)
	if more {
		b = append(b, `,"more":true}`...)
	} else {
		b = append(b, `,"more":false}`...)
	}
	return append(b, '\n')
}

// recordPageTail is the end of a forms/{form}/records page after its records:
// "next" only when it is not empty.
func recordPageTail(next string) []byte {
	b := append(make([]byte, 0, 64), ']')
	if next != "" {
		b = canonjson.AppendString(append(b, `,"next":`...), next)
	}
	return append(b, '}', '\n')
}

func putPageBuf(bp *[]byte) {
	if cap(*bp) <= maxPooledPage {
		pageBufs.put(bp)
	}
}

// appendRecordJSON appends the JSON of apiRecord(*r), in api.Record's field
// order and with its omitempty rules, each attachment's present taken from
// present (by name).
func appendRecordJSON(b []byte, r *domain.Record, present map[string]bool) ([]byte, error) {
	return appendRecordJSONNamed(b, r, "", present)
}

// appendRecordJSONNamed is appendRecordJSON with the record's device_name
// (omitted when "").
func appendRecordJSONNamed(b []byte, r *domain.Record, deviceName string, present map[string]bool) ([]byte, error) {
	var err error
	b = append(b, `{"id":`...)
	b = canonjson.AppendString(b, r.ID)
	b = append(b, `,"form":`...)
	b = canonjson.AppendString(b, r.FormID)
	b = append(b, `,"form_version":`...)
	b = canonjson.AppendString(b, r.FormVersion)
	b = append(b, `,"rev":`...)
	b = canonjson.AppendString(b, r.Rev)
	if r.Deleted {
		b = append(b, `,"deleted":true,"data":`...)
	} else {
		b = append(b, `,"deleted":false,"data":`...)
	}
	if b, err = appendRawJSON(b, r.Data); err != nil {
		return nil, fmt.Errorf("data: %w", err)
	}
	b = append(b, `,"created_by":`...)
	b = canonjson.AppendString(b, r.CreatedBy)
	if r.DeviceID != "" {
		b = append(b, `,"device_id":`...)
		b = canonjson.AppendString(b, r.DeviceID)
	}
	if deviceName != "" {
		b = append(b, `,"device_name":`...)
		b = canonjson.AppendString(b, deviceName)
	}
	b = append(b, `,"client_modified_at":`...)
	if b, err = appendJSONTime(b, r.ClientModifiedAt); err != nil {
		return nil, err
	}
	b = append(b, `,"created_at":`...)
	if b, err = appendJSONTime(b, r.CreatedAt); err != nil {
		return nil, err
	}
	b = append(b, `,"updated_at":`...)
	if b, err = appendJSONTime(b, r.UpdatedAt); err != nil {
		return nil, err
	}
	b = append(b, `,"review_state":`...)
	b = canonjson.AppendString(b, r.ReviewState)
	if r.ReviewComment != "" {
		b = append(b, `,"review_comment":`...)
		b = canonjson.AppendString(b, r.ReviewComment)
	}
	b = append(b, `,"conflicts":[`...)
	for i := range r.Conflicts {
		if i > 0 {
			b = append(b, ',')
		}
		if b, err = appendConflictJSON(b, &r.Conflicts[i]); err != nil {
			return nil, fmt.Errorf("conflict %d: %w", i, err)
		}
	}
	b = append(b, `],"assigned_to":[`...)
	for i, s := range r.AssignedTo {
		if i > 0 {
			b = append(b, ',')
		}
		b = canonjson.AppendString(b, s)
	}
	b = append(b, ']')
	if len(r.Attachments) > 0 {
		b = append(b, `,"attachments":[`...)
		for i, a := range r.Attachments {
			if i > 0 {
				b = append(b, ',')
			}
			b = append(b, `{"name":`...)
			b = canonjson.AppendString(b, a.Name)
			b = append(b, `,"sha256":`...)
			b = canonjson.AppendString(b, a.SHA256)
			b = append(b, `,"size":`...)
			b = strconv.AppendInt(b, a.Size, 10)
			if a.ContentType != "" {
				b = append(b, `,"content_type":`...)
				b = canonjson.AppendString(b, a.ContentType)
			}
			if present[a.Name] {
				b = append(b, `,"present":true}`...)
			} else {
				b = append(b, `,"present":false}`...)
			}
		}
		b = append(b, ']')
	}
	return append(b, '}'), nil
}

// appendConflictJSON appends an api.Conflict as apiRecord makes it: an absent
// base or value is null.
func appendConflictJSON(b []byte, c *domain.Conflict) ([]byte, error) {
	var err error
	b = append(b, `{"path":`...)
	b = canonjson.AppendString(b, c.Path)
	b = append(b, `,"base":`...)
	if b, err = appendRawJSON(b, c.Base); err != nil {
		return nil, fmt.Errorf("base: %w", err)
	}
	b = append(b, `,"values":[`...)
	for i := range c.Values {
		v := &c.Values[i]
		if i > 0 {
			b = append(b, ',')
		}
		b = append(b, `{"rev":`...)
		b = canonjson.AppendString(b, v.Rev)
		b = append(b, `,"value":`...)
		if b, err = appendRawJSON(b, v.Value); err != nil {
			return nil, fmt.Errorf("value %d: %w", i, err)
		}
		if v.Deleted {
			b = append(b, `,"deleted":true`...)
		}
		b = append(b, `,"client_modified_at":`...)
		if b, err = appendJSONTime(b, v.ClientModifiedAt); err != nil {
			return nil, err
		}
		if v.DeviceID != "" {
			b = append(b, `,"device_id":`...)
			b = canonjson.AppendString(b, v.DeviceID)
		}
		if v.By != "" {
			b = append(b, `,"by":`...)
			b = canonjson.AppendString(b, v.By)
		}
		b = append(b, '}')
	}
	return append(b, `]}`...), nil
}

var errNotJSON = errors.New("stored value is not valid JSON")

// appendRawJSON appends a stored JSON value as it is: null when it is nil, an
// error when it is empty or not valid JSON (where encoding/json fails too).
func appendRawJSON(b []byte, raw json.RawMessage) ([]byte, error) {
	if raw == nil {
		return append(b, "null"...), nil
	}
	if !canonjson.Valid(raw) && !json.Valid(raw) { // json.Valid: past canonjson.MaxDepth
		return nil, errNotJSON
	}
	return append(b, raw...), nil
}

// appendJSONTime appends t as Time.MarshalJSON writes it (and fails where it fails).
func appendJSONTime(b []byte, t time.Time) ([]byte, error) {
	b = append(b, '"')
	b2, err := t.AppendText(b)
	if err != nil {
		return nil, err
	}
	return append(b2, '"'), nil
}
