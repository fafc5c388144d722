package api

import (
	"bytes"
	"encoding/json"
	"io"
	"net/http"
	"time"
	"unicode/utf8"

	"github.com/fieldsync/fieldsync/internal/jsonscan"
)

// Pages of records (PullResponse, RecordPage) are the large answers a client
// decodes: up to 1000 records of survey answers each. encoding/json spent more
// CPU decoding them than the server spent reading and encoding them, most of it
// validating and copying each record's data byte by byte. The decoder here
// reads the page as the server writes it: it validates each value once, takes
// the strings that need no unescaping as they are, and lets every Data slice
// the page's body instead of copying it (capacity capped, so an append to one
// record's Data never runs into the next one's).
//
// It gives exactly what json.NewDecoder(body).Decode(out) gives, or it gives
// up and lets encoding/json decode the page: whenever the answer has a shape
// the server does not write (a key it does not know, a key twice, a key in
// another case, a number where a string belongs, escapes in a key), and
// whenever out is not a zero value (encoding/json merges into what is there).
// Errors therefore are encoding/json's own. pulldecode_test.go checks the
// equivalence, a fuzz test included.

// errAfter is a reader that fails with err: it replays a read error after the
// bytes read before it.
type errAfter struct{ err error }

func (e errAfter) Read([]byte) (int, error) { return 0, e.err }

// decodePage decodes a 2xx answer into out, a *PullResponse or *RecordPage
// (ok false for anything else, nothing read). err is what
// json.NewDecoder(resp.Body).Decode(out) would return.
func (c *Client) decodePage(resp *http.Response, out any) (ok bool, err error) {
	switch o := out.(type) {
	case *PullResponse:
		if o == nil || o.Changes != nil || o.Next != "" || o.More {
			return false, nil
		}
	case *RecordPage:
		if o == nil || o.Records != nil || o.Next != "" {
			return false, nil
		}
	default:
		return false, nil
	}
	// The records slice the body, so it is read into a buffer of its own, of
	// the size of the page before (a gzipped answer has no length).
	size := resp.ContentLength
	if size <= 0 || size > maxPageHint {
		size = c.pageSize.Load()
	}
	body, rerr := readAll(resp.Body, make([]byte, 0, max(size+size/16, 16<<10)))
	c.pageSize.Store(min(int64(len(body)), maxPageHint))
	if rerr != nil {
		// What a streaming decoder would have made of the same bytes and error.
		return true, json.NewDecoder(io.MultiReader(bytes.NewReader(body), errAfter{rerr})).Decode(out)
	}
	d := pageDecoder{b: body}
	switch o := out.(type) {
	case *PullResponse:
		if d.pullResponse(o) {
			return true, nil
		}
		*o = PullResponse{}
	case *RecordPage:
		if d.recordPage(o) {
			return true, nil
		}
		*o = RecordPage{}
	}
	return true, json.NewDecoder(bytes.NewReader(body)).Decode(out)
}

// maxPageHint bounds the buffer decodePage sets aside before reading.
const maxPageHint = 16 << 20

// readAll is io.ReadAll into b.
func readAll(r io.Reader, b []byte) ([]byte, error) {
	for {
		if len(b) == cap(b) {
			b = append(b, 0)[:len(b)]
		}
		n, err := r.Read(b[len(b):cap(b)])
		b = b[:len(b)+n]
		if err != nil {
			if err == io.EOF {
				err = nil
			}
			return b, err
		}
	}
}

// pageDecoder reads one page from b. Its methods return false when the input
// is not valid JSON or not of the shape the fast path takes; the page is then
// decoded again by encoding/json.
type pageDecoder struct {
	b []byte
	i int
	// Strings repeated from record to record (form, version, device, state)
	// share one copy.
	form, formVersion, createdBy, deviceID, reviewState string
}

// ws skips whitespace.
func (d *pageDecoder) ws() {
	for d.i < len(d.b) {
		switch d.b[d.i] {
		case ' ', '\n', '\r', '\t':
			d.i++
		default:
			return
		}
	}
}

// byte consumes c, after whitespace.
func (d *pageDecoder) byte(c byte) bool {
	d.ws()
	if d.i < len(d.b) && d.b[d.i] == c {
		d.i++
		return true
	}
	return false
}

// peek reports the next byte after whitespace, 0 at the end.
func (d *pageDecoder) peek() byte {
	d.ws()
	if d.i < len(d.b) {
		return d.b[d.i]
	}
	return 0
}

// key reads the next key of an object whose '{' is consumed (first tells
// whether one was read before) and the ':' after it, leaving d at the value.
// It returns done at the closing '}'. Keys with escapes give up.
func (d *pageDecoder) key(first bool) (key []byte, done, ok bool) {
	c := d.peek()
	switch {
	case c == '}':
		d.i++
		return nil, true, true
	case first:
	case c == ',':
		d.i++
		c = d.peek()
	default:
		return nil, false, false
	}
	if c != '"' {
		return nil, false, false
	}
	start := d.i + 1
	end := jsonscan.String(d.b, d.i)
	if end < 0 || bytes.IndexByte(d.b[start:end-1], '\\') >= 0 {
		return nil, false, false
	}
	d.i = end
	if !d.byte(':') {
		return nil, false, false
	}
	d.ws()
	return d.b[start : end-1], false, true
}

// value reads any value and returns its bytes.
func (d *pageDecoder) value() ([]byte, bool) {
	d.ws()
	start := d.i
	end := jsonscan.Value(d.b, d.i)
	if end < 0 {
		return nil, false
	}
	d.i = end
	return d.b[start:end:end], true
}

// unmarshal reads any value into v, a zero value, with encoding/json: for the
// parts of a page that are rare or small, where speed does not matter.
func (d *pageDecoder) unmarshal(v any) bool {
	raw, ok := d.value()
	return ok && json.Unmarshal(raw, v) == nil
}

// str reads a string into *s (null leaves it). cache, when not nil, holds the
// string read last in this place, reused when the bytes are the same.
func (d *pageDecoder) str(s *string, cache *string) bool {
	if d.i >= len(d.b) || d.b[d.i] != '"' {
		return d.unmarshal(s)
	}
	start := d.i + 1
	j := start
	for j < len(d.b) && jsonASCIIPlain[d.b[j]] {
		j++
	}
	if j < len(d.b) && d.b[j] == '"' {
		raw := d.b[start:j]
		d.i = j + 1
		switch {
		case cache == nil:
			*s = string(raw)
		case string(raw) == *cache:
			*s = *cache
		default:
			*s = string(raw)
			*cache = *s
		}
		return true
	}
	end := jsonscan.String(d.b, d.i)
	if end < 0 {
		return false
	}
	raw := d.b[start : end-1]
	d.i = end
	if bytes.IndexByte(raw, '\\') < 0 && utf8.Valid(raw) {
		*s = string(raw)
		return true
	}
	// Escapes, or invalid UTF-8 (which encoding/json turns into U+FFFD).
	return json.Unmarshal(d.b[start-1:end], s) == nil
}

// boolean reads true or false into *v (null leaves it).
func (d *pageDecoder) boolean(v *bool) bool {
	switch {
	case jsonscan.Literal(d.b, d.i, "true") > 0:
		*v, d.i = true, d.i+4
	case jsonscan.Literal(d.b, d.i, "false") > 0:
		*v, d.i = false, d.i+5
	default:
		return d.unmarshal(v)
	}
	return true
}

// time reads a time as encoding/json does: Time.UnmarshalJSON on the value as
// written.
func (d *pageDecoder) time(t *time.Time) bool {
	raw, ok := d.value()
	return ok && t.UnmarshalJSON(raw) == nil
}

// object reads an object, handing each member's key to member, which reads
// the value and reports whether it took it. A key member does not take, a
// duplicate (member's once) or anything unexpected gives up.
func (d *pageDecoder) object(member func(key []byte) bool) bool {
	if !d.byte('{') {
		return false
	}
	for first := true; ; first = false {
		key, done, ok := d.key(first)
		switch {
		case !ok:
			return false
		case done:
			return true
		}
		if !member(key) {
			return false
		}
	}
}

// pullResponse reads a PullResponse.
func (d *pageDecoder) pullResponse(out *PullResponse) bool {
	var seen uint8
	return d.object(func(key []byte) bool {
		switch string(key) {
		case "changes":
			return once(&seen, 1) && d.records(&out.Changes)
		case "next":
			return once(&seen, 2) && d.str(&out.Next, nil)
		case "more":
			return once(&seen, 4) && d.boolean(&out.More)
		}
		return false
	})
}

// recordPage reads a RecordPage.
func (d *pageDecoder) recordPage(out *RecordPage) bool {
	var seen uint8
	return d.object(func(key []byte) bool {
		switch string(key) {
		case "records":
			return once(&seen, 1) && d.records(&out.Records)
		case "next":
			return once(&seen, 2) && d.str(&out.Next, nil)
		}
		return false
	})
}

// once marks bit in *seen and reports whether it was clear: a key seen twice
// gives up (encoding/json would merge the two values).
func once[T uint8 | uint32](seen *T, bit T) bool {
	if *seen&bit != 0 {
		return false
	}
	*seen |= bit
	return true
}

// records reads an array of records (null leaves *out nil).
func (d *pageDecoder) records(out *[]Record) bool {
	if d.peek() != '[' {
		return d.unmarshal(out)
	}
	d.i++
	recs := []Record{}
	if d.peek() == ']' {
		d.i++
		*out = recs
		return true
	}
	for {
		if d.peek() != '{' {
			return false
		}
		start := d.i
		recs = append(recs, Record{})
		if !d.record(&recs[len(recs)-1]) {
			return false
		}
		if len(recs) == 1 {
			// Size the page after its first record, rather than grow it
			// record by record.
			est := min((len(d.b)-d.i)/(d.i-start+1), MaxPullLimit) + 1
			recs = append(make([]Record, 0, est), recs[0])
		}
		switch d.peek() {
		case ',':
			d.i++
		case ']':
			d.i++
			*out = recs
			return true
		default:
			return false
		}
	}
}

// record reads one Record.
func (d *pageDecoder) record(r *Record) bool {
	var seen uint32
	return d.object(func(key []byte) bool {
		ok := false
		switch string(key) {
		case "id":
			ok = once(&seen, 1<<0) && d.str(&r.ID, nil)
		case "form":
			ok = once(&seen, 1<<1) && d.str(&r.Form, &d.form)
		case "form_version":
			ok = once(&seen, 1<<2) && d.str(&r.FormVersion, &d.formVersion)
		case "rev":
			ok = once(&seen, 1<<3) && d.str(&r.Rev, nil)
		case "deleted":
			ok = once(&seen, 1<<4) && d.boolean(&r.Deleted)
		case "data":
			ok = once(&seen, 1<<5)
			if ok {
				r.Data, ok = d.value()
			}
		case "created_by":
			ok = once(&seen, 1<<6) && d.str(&r.CreatedBy, &d.createdBy)
		case "device_id":
			ok = once(&seen, 1<<7) && d.str(&r.DeviceID, &d.deviceID)
		case "client_modified_at":
			ok = once(&seen, 1<<8) && d.time(&r.ClientModifiedAt)
		case "created_at":
			ok = once(&seen, 1<<9) && d.time(&r.CreatedAt)
		case "updated_at":
			ok = once(&seen, 1<<10) && d.time(&r.UpdatedAt)
		case "review_state":
			ok = once(&seen, 1<<11) && d.str(&r.ReviewState, &d.reviewState)
		case "review_comment":
			ok = once(&seen, 1<<12) && d.str(&r.ReviewComment, nil)
		case "conflicts":
			ok = once(&seen, 1<<13)
			if ok && d.emptyArray() {
				r.Conflicts = []Conflict{}
			} else if ok {
				ok = d.unmarshal(&r.Conflicts)
			}
		case "assigned_to":
			ok = once(&seen, 1<<14) && d.strings(&r.AssignedTo)
		case "attachments":
			ok = once(&seen, 1<<15) && d.unmarshal(&r.Attachments)
		case "revs":
			ok = once(&seen, 1<<16) && d.unmarshal(&r.Revs)
		}
		return ok
	})
}

// emptyArray consumes [] and reports whether it was there.
func (d *pageDecoder) emptyArray() bool {
	if d.i+1 < len(d.b) && d.b[d.i] == '[' && d.b[d.i+1] == ']' {
		d.i += 2
		return true
	}
	return false
}

// strings reads an array of strings (null leaves *out nil).
func (d *pageDecoder) strings(out *[]string) bool {
	if d.peek() != '[' {
		return d.unmarshal(out)
	}
	start := d.i
	d.i++
	ss := []string{}
	if d.peek() == ']' {
		d.i++
		*out = ss
		return true
	}
	for {
		var s string
		if d.peek() != '"' {
			// null elements and the like: encoding/json decides.
			d.i = start
			return d.unmarshal(out)
		}
		if !d.str(&s, nil) {
			return false
		}
		ss = append(ss, s)
		switch d.peek() {
		case ',':
			d.i++
		case ']':
			d.i++
			*out = ss
			return true
		default:
			return false
		}
	}
}

// jsonASCIIPlain marks the bytes a JSON string holds as they are and a Go
// string takes unchanged: printable ASCII but " and \.
var jsonASCIIPlain = func() (t [256]bool) {
	for c := 0x20; c < utf8.RuneSelf; c++ {
		t[c] = true
	}
	t['"'], t['\\'] = false, false
	return t
}()
