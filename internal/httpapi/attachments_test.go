package httpapi

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"math/rand/v2"
	"net/http"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/google/uuid"

	"github.com/fieldsync/fieldsync/api"
	"github.com/fieldsync/fieldsync/internal/domain"
	"github.com/fieldsync/fieldsync/internal/media"
	"github.com/fieldsync/fieldsync/internal/store/mongo"
	"github.com/fieldsync/fieldsync/internal/store/mongo/mongotest"
)

// The attachment tests run on both stores: SQLite (files under the data
// directory) and MongoDB (GridFS, over the wire to FerretDB).

// visitSchema: a site visit with a photo and an optional audio statement.
const visitSchema = `{"type": "object", "required": ["name"], "properties": {
	"name": {"type": "string"},
	"photo": {"type": "string", "contentMediaType": "image/*"},
	"statements": {"type": "array", "items": {"type": "object", "properties": {
		"audio": {"type": "string", "contentMediaType": "audio/*"}}}}}}`

// attEnv is a server with project "safety", form "visit" v1 published, a
// tablet and an analyst.
type attEnv struct {
	ts      *testServer
	admin   string
	tablet  device
	analyst string
}

// storeKinds are the stores the attachment tests run on.
var storeKinds = []string{"sqlite", "mongodb"}

// newAttEnv starts a test server on the given store kind; with a shared
// MongoDB database (see newAttServer), a second server is a second instance.
func newAttEnv(t testing.TB, kind string, opts ...testOption) *attEnv {
	t.Helper()
	ts := newAttServer(t, kind, "", opts...)
	e := &attEnv{ts: ts, admin: ts.adminToken(t)}
	ts.want(t, http.StatusCreated, http.MethodPost, "/v1/projects", e.admin, api.CreateProjectRequest{ID: syncProject, Title: "Safety"}, nil)
	def := `{"title": "Visit", "schema": ` + visitSchema + `}`
	ctx := context.Background()
	if _, _, err := ts.srv.forms.PutVersion(ctx, syncProject, "visit", "1", []byte(def)); err != nil {
		t.Fatal(err)
	}
	if _, err := ts.srv.forms.Publish(ctx, syncProject, "visit", "1"); err != nil {
		t.Fatal(err)
	}
	var dev api.CreateDeviceResponse
	ts.want(t, http.StatusCreated, http.MethodPost, "/v1/projects/"+syncProject+"/devices", e.admin, api.CreateDeviceRequest{Name: "tablet"}, &dev)
	var pair api.TokenResponse
	ts.want(t, http.StatusOK, http.MethodPost, "/v1/devices/enroll", "", api.EnrollRequest{EnrollmentCode: dev.EnrollmentCode}, &pair)
	e.tablet = device{token: pair.AccessToken, id: dev.DeviceID, subject: domain.DeviceSubject(dev.DeviceID)}
	e.analyst = ts.addUser(t, e.admin, "ana", syncProject, api.RoleAnalyst)
	return e
}

// newAttServer starts a server on sqlite, or on MongoDB database db (a fresh
// one when db is "").
func newAttServer(t testing.TB, kind, db string, opts ...testOption) *testServer {
	t.Helper()
	if kind == "sqlite" {
		return newTestServer(t, opts...)
	}
	cfg := mongotest.Config(t)
	if db != "" {
		cfg.Database = db
	}
	st, err := mongo.Open(t.Context(), cfg)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { st.Close() })
	return newTestServer(t, append([]testOption{withConfig(func(c *Config) { c.Store = st })}, opts...)...)
}

// jpegBytes makes n bytes that sniff as JPEG.
func jpegBytes(n int, seed uint64) []byte {
	b := make([]byte, n)
	r := rand.New(rand.NewPCG(seed, seed))
	for i := range b {
		b[i] = byte(r.Uint32())
	}
	copy(b, "\xff\xd8\xff\xe0\x00\x10JFIF\x00")
	return b
}

func sha(b []byte) string {
	h := sha256.Sum256(b)
	return hex.EncodeToString(h[:])
}

// pushVisit pushes a visit whose photo is name, declaring files.
func (e *attEnv) pushVisit(t *testing.T, id, photo string, files ...api.Attachment) api.PushResult {
	t.Helper()
	data := `{"name": "market"}`
	if photo != "" {
		data = fmt.Sprintf(`{"name": "market", "photo": %q}`, photo)
	}
	sub := api.Submission{ID: id, Form: "visit", FormVersion: "1", ClientModifiedAt: clockBase, Data: json.RawMessage(data), Attachments: files}
	se := &syncEnv{ts: e.ts}
	return se.push(t, e.tablet.token, sub)[0]
}

func attPath(id, name string) string {
	return "/v1/projects/" + syncProject + "/records/" + id + "/attachments/" + name
}

// tus sends one tus request with body (nil for none).
func (e *attEnv) tus(t *testing.T, ts *testServer, method, path, token string, offset int64, body io.Reader) (*http.Response, []byte) {
	t.Helper()
	req := ts.newRequest(t, method, path, body)
	req.Header.Set("Tus-Resumable", "1.0.0")
	req.Header.Set("Authorization", "Bearer "+token)
	if method == http.MethodPatch {
		req.Header.Set("Content-Type", "application/offset+octet-stream")
		req.Header.Set("Upload-Offset", strconv.FormatInt(offset, 10))
	}
	if method == http.MethodHead || method == http.MethodOptions {
		resp, err := rawClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		return resp, nil
	}
	return ts.do(t, req)
}

func headerInt(t *testing.T, resp *http.Response, name string) int64 {
	t.Helper()
	n, err := strconv.ParseInt(resp.Header.Get(name), 10, 64)
	if err != nil {
		t.Fatalf("%s %q: %v", name, resp.Header.Get(name), err)
	}
	return n
}

// failingBody sends its bytes, then fails: the client's connection drops
// mid-upload.
type failingBody struct{ r io.Reader }

func (f *failingBody) Read(p []byte) (int, error) {
	n, err := f.r.Read(p)
	if errors.Is(err, io.EOF) {
		return n, errors.New("link dropped")
	}
	return n, err
}

// interruptedPatch sends a PATCH that declares the rest of the file but
// breaks off after part bytes, and waits until the server has dealt with it.
func (e *attEnv) interruptedPatch(t *testing.T, ts *testServer, path string, offset int64, part []byte, rest int64) {
	t.Helper()
	req := ts.newRequest(t, http.MethodPatch, path, &failingBody{bytes.NewReader(part)})
	req.ContentLength = rest
	req.Header.Set("Tus-Resumable", "1.0.0")
	req.Header.Set("Authorization", "Bearer "+e.tablet.token)
	req.Header.Set("Content-Type", "application/offset+octet-stream")
	req.Header.Set("Upload-Offset", strconv.FormatInt(offset, 10))
	if resp, err := rawClient.Do(req); err == nil {
		resp.Body.Close()
		t.Fatalf("interrupted PATCH answered %d", resp.StatusCode)
	}
	ts.logs.waitFor(t, "client closed request")
}

// TestAttachmentResumeAndDownload: a photo's upload breaks off halfway,
// resumes where it stopped (on a second server instance with MongoDB), and
// then downloads whole, by range and as not modified; the record shows it
// present.
func TestAttachmentResumeAndDownload(t *testing.T) {
	t.Parallel()
	for _, kind := range storeKinds {
		t.Run(kind, func(t *testing.T) {
			e := newAttEnv(t, kind)
			photo := jpegBytes(300_000, 1)
			id := uuid.NewString()
			decl := api.Attachment{Name: "site.jpg", SHA256: sha(photo), Size: int64(len(photo)), ContentType: "image/jpeg"}
			res := e.pushVisit(t, id, "site.jpg", decl)
			if res.Status != api.PushCreated || len(res.MissingAttachments) != 1 || res.MissingAttachments[0] != "site.jpg" {
				t.Fatalf("push: %+v; want created, site.jpg missing", res)
			}
			se := &syncEnv{ts: e.ts}
			if rec := se.record(t, e.analyst, id); len(rec.Attachments) != 1 || rec.Attachments[0].Present {
				t.Fatalf("record before upload: %+v", rec.Attachments)
			}
			path := attPath(id, "site.jpg")

			resp, _ := e.tus(t, e.ts, http.MethodOptions, path, e.tablet.token, 0, nil)
			if resp.StatusCode != http.StatusNoContent || resp.Header.Get("Tus-Version") != "1.0.0" || headerInt(t, resp, "Tus-Max-Size") <= 0 || resp.Header.Get("Tus-Resumable") != "1.0.0" {
				t.Fatalf("OPTIONS: %d %v", resp.StatusCode, resp.Header)
			}
			resp, _ = e.tus(t, e.ts, http.MethodHead, path, e.tablet.token, 0, nil)
			if resp.StatusCode != http.StatusOK || headerInt(t, resp, "Upload-Offset") != 0 || headerInt(t, resp, "Upload-Length") != decl.Size {
				t.Fatalf("HEAD before upload: %d %v", resp.StatusCode, resp.Header)
			}

			e.interruptedPatch(t, e.ts, path, 0, photo[:150_000], decl.Size)

			// The resume: on SQLite the same server; on MongoDB another
			// instance on the same database.
			resumeTS := e.ts
			if kind == "mongodb" {
				resumeTS = newAttServer(t, kind, e.ts.srv.store.(*mongo.Store).DatabaseName())
			}
			resp, _ = e.tus(t, resumeTS, http.MethodHead, path, e.tablet.token, 0, nil)
			off := headerInt(t, resp, "Upload-Offset")
			if resp.StatusCode != http.StatusOK || off <= 0 || off > 150_000 {
				t.Fatalf("HEAD after the drop: %d, offset %d; want the bytes that arrived kept", resp.StatusCode, off)
			}
			resp, raw := e.tus(t, resumeTS, http.MethodPatch, path, e.tablet.token, off, bytes.NewReader(photo[off:]))
			if resp.StatusCode != http.StatusNoContent || headerInt(t, resp, "Upload-Offset") != decl.Size || resp.Header.Get("Tus-Resumable") != "1.0.0" {
				t.Fatalf("resumed PATCH: %d %v %s", resp.StatusCode, resp.Header, raw)
			}

			if rec := se.record(t, e.analyst, id); len(rec.Attachments) != 1 || !rec.Attachments[0].Present {
				t.Fatalf("record after upload: %+v", rec.Attachments)
			}
			if res := e.pushVisit(t, id, "site.jpg", decl); res.Status != api.PushUnchanged || len(res.MissingAttachments) != 0 {
				t.Fatalf("replayed push: %+v; want unchanged, nothing missing", res)
			}
			pulled := se.pull(t, e.tablet.token, "", 100)
			if len(pulled.Changes) != 1 || len(pulled.Changes[0].Attachments) != 1 || !pulled.Changes[0].Attachments[0].Present {
				t.Fatalf("pull: %+v", pulled.Changes)
			}

			resp, body := e.ts.get(t, path, "Authorization", "Bearer "+e.analyst)
			if resp.StatusCode != http.StatusOK || !bytes.Equal(body, photo) || resp.Header.Get("ETag") != `"`+decl.SHA256+`"` || resp.Header.Get("Content-Type") != "image/jpeg" {
				t.Fatalf("GET: %d, %d bytes, headers %v", resp.StatusCode, len(body), resp.Header)
			}
			resp, body = e.ts.get(t, path, "Authorization", "Bearer "+e.analyst, "Range", "bytes=261000-262000")
			if resp.StatusCode != http.StatusPartialContent || !bytes.Equal(body, photo[261000:262001]) {
				t.Fatalf("range GET: %d, %d bytes", resp.StatusCode, len(body))
			}
			resp, _ = e.ts.get(t, path, "Authorization", "Bearer "+e.analyst, "If-None-Match", decl.SHA256)
			if resp.StatusCode != http.StatusNotModified {
				t.Fatalf("If-None-Match: %d", resp.StatusCode)
			}
			// A whole-file PUT of what is held: 200, nothing more stored.
			resp, raw = e.put(t, e.ts, path, photo)
			if resp.StatusCode != http.StatusOK {
				t.Fatalf("PUT of held bytes: %d %s", resp.StatusCode, raw)
			}
		})
	}
}

func (e *attEnv) put(t *testing.T, ts *testServer, path string, body []byte) (*http.Response, []byte) {
	t.Helper()
	req := ts.newRequest(t, http.MethodPut, path, body)
	req.Header.Set("Authorization", "Bearer "+e.tablet.token)
	req.Header.Set("Content-Type", "application/octet-stream")
	return ts.do(t, req)
}

// blobCount counts the distinct files the store holds.
func blobCount(t *testing.T, ts *testServer) int {
	t.Helper()
	n, err := ts.srv.store.(interface {
		CountBlobs(context.Context) (int, error)
	}).CountBlobs(t.Context())
	if err != nil {
		t.Fatal(err)
	}
	return n
}

// TestAttachmentChecks: bytes that are not the declared file are refused
// and nothing is kept; an undeclared file, an oversized one and one whose
// bytes are of another type are refused; answers must name declared files.
func TestAttachmentChecks(t *testing.T) {
	t.Parallel()
	for _, kind := range storeKinds {
		t.Run(kind, func(t *testing.T) {
			e := newAttEnv(t, kind)
			photo := jpegBytes(50_000, 2)
			id := uuid.NewString()
			decl := api.Attachment{Name: "site.jpg", SHA256: sha(photo), Size: int64(len(photo)), ContentType: "image/jpeg"}
			e.pushVisit(t, id, "site.jpg", decl)
			path := attPath(id, "site.jpg")

			other := append([]byte(nil), photo...)
			other[40_000] ^= 1
			resp, raw := e.put(t, e.ts, path, other)
			if resp.StatusCode != http.StatusConflict || problemCode(raw) != "attachment_mismatch" ||
				!strings.Contains(string(raw), decl.SHA256) || !strings.Contains(string(raw), sha(other)) {
				t.Fatalf("PUT of other bytes: %d %s; want 409 attachment_mismatch naming both hashes", resp.StatusCode, raw)
			}
			resp, _ = e.tus(t, e.ts, http.MethodPatch, path, e.tablet.token, 0, bytes.NewReader(other))
			if resp.StatusCode != http.StatusConflict {
				t.Fatalf("PATCH of other bytes: %d", resp.StatusCode)
			}
			resp, raw = e.ts.get(t, path, "Authorization", "Bearer "+e.analyst)
			if resp.StatusCode != http.StatusNotFound || problemCode(raw) != "attachment_not_found" {
				t.Fatalf("GET after refusals: %d %s", resp.StatusCode, raw)
			}
			resp, _ = e.tus(t, e.ts, http.MethodHead, path, e.tablet.token, 0, nil)
			if headerInt(t, resp, "Upload-Offset") != 0 {
				t.Fatalf("refused bytes kept: offset %s", resp.Header.Get("Upload-Offset"))
			}
			if n := blobCount(t, e.ts); n != 0 {
				t.Fatalf("%d files stored after refusals", n)
			}
			// Longer than declared.
			resp, raw = e.put(t, e.ts, path, append(append([]byte(nil), photo...), 0))
			if resp.StatusCode != http.StatusConflict || problemCode(raw) != "attachment_mismatch" {
				t.Fatalf("PUT of a longer body: %d %s", resp.StatusCode, raw)
			}

			resp, raw = e.put(t, e.ts, attPath(id, "other.jpg"), photo)
			if resp.StatusCode != http.StatusConflict || problemCode(raw) != "attachment_not_declared" {
				t.Fatalf("PUT of an undeclared file: %d %s", resp.StatusCode, raw)
			}

			pdf := []byte("%PDF-1.4\n% a statement, not a photo\n")
			id2 := uuid.NewString()
			e.pushVisit(t, id2, "x.jpg", api.Attachment{Name: "x.jpg", SHA256: sha(pdf), Size: int64(len(pdf)), ContentType: "image/jpeg"})
			resp, raw = e.put(t, e.ts, attPath(id2, "x.jpg"), pdf)
			if resp.StatusCode != http.StatusUnsupportedMediaType || problemCode(raw) != "content_type_mismatch" {
				t.Fatalf("PUT of a PDF declared as JPEG: %d %s", resp.StatusCode, raw)
			}

			// An answer naming a file the item does not declare, or one of
			// another kind, is a finding: the item is rejected.
			se := &syncEnv{ts: e.ts}
			bad := api.Submission{ID: uuid.NewString(), Form: "visit", FormVersion: "1", ClientModifiedAt: clockBase,
				Data:        json.RawMessage(`{"name": "x", "photo": "missing.jpg", "statements": [{"audio": "site.jpg"}]}`),
				Attachments: []api.Attachment{decl}}
			res := se.push(t, e.tablet.token, bad)[0]
			if res.Status != api.PushRejected || len(res.Errors) != 2 ||
				res.Errors[0].Path != "/data/photo" || res.Errors[0].Keyword != "attachment" ||
				res.Errors[1].Path != "/data/statements/0/audio" || res.Errors[1].Keyword != "contentMediaType" {
				t.Fatalf("push naming undeclared files: %+v", res)
			}
			badDecl := api.Submission{ID: uuid.NewString(), Form: "visit", FormVersion: "1", ClientModifiedAt: clockBase,
				Data: json.RawMessage(`{"name": "x"}`), Attachments: []api.Attachment{{Name: "a/b.jpg", SHA256: "not-hex", Size: -1}}}
			res = se.push(t, e.tablet.token, badDecl)[0]
			if res.Status != api.PushRejected || len(res.Errors) != 3 || res.Errors[0].Path != "/attachments/0/name" {
				t.Fatalf("push with a malformed declaration: %+v", res)
			}
		})
	}
}

// TestAttachmentTooLarge: a file declared over the limit is refused before
// any byte is read.
func TestAttachmentTooLarge(t *testing.T) {
	e := newAttEnv(t, "sqlite")
	e.ts.srv.media = newMediaWithMax(e.ts, 1000)
	big := jpegBytes(2000, 3)
	id := uuid.NewString()
	e.pushVisit(t, id, "", api.Attachment{Name: "big.jpg", SHA256: sha(big), Size: 2000, ContentType: "image/jpeg"})
	resp, raw := e.put(t, e.ts, attPath(id, "big.jpg"), big)
	if resp.StatusCode != http.StatusRequestEntityTooLarge || problemCode(raw) != "attachment_too_large" {
		t.Fatalf("PUT over the limit: %d %s", resp.StatusCode, raw)
	}
}

// TestAttachmentSameBytesStoredOnce: two records with the same photo hold
// one file; a concurrent upload of one file by two clients ends with one
// file too.
func TestAttachmentSameBytesStoredOnce(t *testing.T) {
	t.Parallel()
	for _, kind := range storeKinds {
		t.Run(kind, func(t *testing.T) {
			e := newAttEnv(t, kind)
			photo := jpegBytes(300_000, 4)
			decl := api.Attachment{Name: "site.jpg", SHA256: sha(photo), Size: int64(len(photo)), ContentType: "image/jpeg"}
			var recs []string
			for range 2 {
				id := uuid.NewString()
				e.pushVisit(t, id, "site.jpg", decl)
				recs = append(recs, id)
			}
			for _, id := range recs {
				if resp, raw := e.put(t, e.ts, attPath(id, "site.jpg"), photo); resp.StatusCode != http.StatusCreated {
					t.Fatalf("PUT: %d %s", resp.StatusCode, raw)
				}
			}
			if n := blobCount(t, e.ts); n != 1 {
				t.Fatalf("%d files stored for two records with the same bytes; want 1", n)
			}

			// Two clients send one new file at once, each over tus from 0.
			other := jpegBytes(300_000, 5)
			id := uuid.NewString()
			e.pushVisit(t, id, "b.jpg", api.Attachment{Name: "b.jpg", SHA256: sha(other), Size: int64(len(other)), ContentType: "image/jpeg"})
			path := attPath(id, "b.jpg")
			var wg sync.WaitGroup
			codes := make([]int, 2)
			for i := range 2 {
				wg.Go(func() {
					req := e.ts.newRequest(t, http.MethodPatch, path, bytes.NewReader(other))
					req.Header.Set("Tus-Resumable", "1.0.0")
					req.Header.Set("Authorization", "Bearer "+e.tablet.token)
					req.Header.Set("Content-Type", "application/offset+octet-stream")
					req.Header.Set("Upload-Offset", "0")
					resp, err := rawClient.Do(req)
					if err != nil {
						t.Error(err)
						return
					}
					resp.Body.Close()
					codes[i] = resp.StatusCode
				})
			}
			wg.Wait()
			ok := 0
			for _, c := range codes {
				switch c {
				case http.StatusNoContent:
					ok++
				case http.StatusConflict: // the other came first: HEAD, then resume
				default:
					t.Fatalf("concurrent PATCH answered %d", c)
				}
			}
			if ok == 0 {
				t.Fatalf("no concurrent PATCH succeeded: %v", codes)
			}
			resp, _ := e.tus(t, e.ts, http.MethodHead, path, e.tablet.token, 0, nil)
			if headerInt(t, resp, "Upload-Offset") != int64(len(other)) {
				t.Fatalf("after the race: offset %s", resp.Header.Get("Upload-Offset"))
			}
			if n := blobCount(t, e.ts); n != 2 {
				t.Fatalf("%d files stored; want 2", n)
			}
			_, body := e.ts.get(t, path, "Authorization", "Bearer "+e.analyst)
			if !bytes.Equal(body, other) {
				t.Fatal("the raced file's bytes differ")
			}
		})
	}
}

// TestAttachmentSweep: an upload left unfinished expires, and a file no
// record names any more is collected.
func TestAttachmentSweep(t *testing.T) {
	now := time.Date(2026, 3, 1, 9, 0, 0, 0, time.UTC)
	var mu sync.Mutex
	clock := func() time.Time { mu.Lock(); defer mu.Unlock(); return now }
	e := newAttEnv(t, "sqlite", withConfig(func(c *Config) { c.Now = clock }))
	photo := jpegBytes(10_000, 6)
	id := uuid.NewString()
	decl := api.Attachment{Name: "site.jpg", SHA256: sha(photo), Size: int64(len(photo)), ContentType: "image/jpeg"}
	e.pushVisit(t, id, "site.jpg", decl)
	e.tus(t, e.ts, http.MethodPatch, attPath(id, "site.jpg"), e.tablet.token, 0, bytes.NewReader(photo[:5000]))
	mu.Lock()
	now = now.Add(8 * 24 * time.Hour)
	mu.Unlock()
	exp, _, err := e.ts.srv.media.Sweep(t.Context())
	if err != nil || exp != 1 {
		t.Fatalf("Sweep expired %d, %v; want the unfinished upload", exp, err)
	}
	resp, _ := e.tus(t, e.ts, http.MethodHead, attPath(id, "site.jpg"), e.tablet.token, 0, nil)
	if headerInt(t, resp, "Upload-Offset") != 0 {
		t.Fatalf("expired upload still holds %s bytes", resp.Header.Get("Upload-Offset"))
	}
}

// newMediaWithMax is the test server's media service with another limit.
func newMediaWithMax(ts *testServer, max int64) *media.Service {
	return media.New(media.Config{Store: ts.srv.store, Records: ts.srv.records, MaxBytes: max})
}
