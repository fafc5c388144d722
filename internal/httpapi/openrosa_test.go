package httpapi

import (
	"bytes"
	"compress/zlib"
	"context"
	"crypto/md5"
	"encoding/base64"
	"encoding/hex"
	"encoding/json"
	"encoding/xml"
	"fmt"
	"io"
	"mime/multipart"
	"net/http"
	"net/url"
	"os"
	"strings"
	"testing"

	"github.com/getkin/kin-openapi/openapi3filter"
	"github.com/google/uuid"

	"github.com/fieldsync/fieldsync/api"
	"github.com/fieldsync/fieldsync/internal/domain"
)

func init() {
	// The bridge answers XML; the spec describes its bodies as strings.
	openapi3filter.RegisterBodyDecoder("text/xml", openapi3filter.FileBodyDecoder)
}

// orEnv is a test server with project "safety", the example forms published,
// and a device with an OpenRosa key: the set-up of a tablet running ODK Collect.
type orEnv struct {
	ts        *testServer
	admin     string
	deviceID  string
	serverURL string // Collect's server URL, holding the key
}

func newOREnv(t *testing.T) *orEnv {
	t.Helper()
	// The files go to the media service, as in a real server.
	ts := newTestServer(t)
	e := &orEnv{ts: ts, admin: ts.adminToken(t)}
	ts.want(t, http.StatusCreated, http.MethodPost, "/v1/projects", e.admin, api.CreateProjectRequest{ID: "safety", Title: "Safety"}, nil)
	for _, f := range []string{"incident-report", "perception-survey", "action-plan-followup"} {
		raw, err := os.ReadFile("../../schemas/examples/" + f + ".json")
		if err != nil {
			t.Fatal(err)
		}
		e.publish(t, f, "1", raw)
	}
	var dev api.CreateDeviceResponse
	ts.want(t, http.StatusCreated, http.MethodPost, "/v1/projects/safety/devices", e.admin, api.CreateDeviceRequest{Name: "Collect tablet"}, &dev)
	e.deviceID = dev.DeviceID
	e.serverURL = e.newKey(t).ServerURL
	return e
}

func (e *orEnv) publish(t *testing.T, form, version string, def []byte) api.FormVersionEntry {
	t.Helper()
	e.ts.want(t, http.StatusCreated, http.MethodPut, "/v1/projects/safety/forms/"+form+"/versions/"+version, e.admin, string(def), nil)
	var out api.FormVersionEntry
	e.ts.want(t, http.StatusOK, http.MethodPost, "/v1/projects/safety/forms/"+form+"/versions/"+version+"/publish", e.admin, nil, &out)
	return out
}

func (e *orEnv) newKey(t *testing.T) api.OpenRosaKeyResponse {
	t.Helper()
	var k api.OpenRosaKeyResponse
	e.ts.want(t, http.StatusCreated, http.MethodPost, "/v1/projects/safety/devices/"+e.deviceID+"/openrosa-key", e.admin, nil, &k)
	return k
}

// path is the server-relative path of a URL the bridge handed out.
func (e *orEnv) path(t *testing.T, u string) string {
	t.Helper()
	p, err := url.Parse(u)
	if err != nil {
		t.Fatal(err)
	}
	return p.RequestURI()
}

// collect sends a request as Collect does: X-OpenRosa-Version and ?deviceID=.
func (e *orEnv) collect(t *testing.T, method, u string, body io.Reader, contentType string) (*http.Response, []byte) {
	t.Helper()
	sep := "?"
	if strings.Contains(u, "?") {
		sep = "&"
	}
	req := e.ts.newRequest(t, method, e.path(t, u)+sep+"deviceID=collect%3Atest", body)
	req.Header.Set("X-OpenRosa-Version", "1.0")
	if contentType != "" {
		req.Header.Set("Content-Type", contentType)
	}
	resp, raw := e.ts.do(t, req)
	if resp.Header.Get("X-OpenRosa-Version") != "1.0" {
		t.Errorf("%s %s: %d without X-OpenRosa-Version", method, u, resp.StatusCode)
	}
	if resp.StatusCode != http.StatusNoContent && resp.StatusCode != http.StatusNotModified && !strings.HasPrefix(resp.Header.Get("Content-Type"), "text/xml") {
		t.Errorf("%s %s: Content-Type %q", method, u, resp.Header.Get("Content-Type"))
	}
	return resp, raw
}

type xformsList struct {
	XMLName xml.Name `xml:"http://openrosa.org/xforms/xformsList xforms"`
	Forms   []struct {
		FormID      string `xml:"formID"`
		Name        string `xml:"name"`
		Version     string `xml:"version"`
		Hash        string `xml:"hash"`
		DownloadURL string `xml:"downloadUrl"`
		ManifestURL string `xml:"manifestUrl"`
	} `xml:"xform"`
}

func (e *orEnv) formList(t *testing.T, serverURL string) xformsList {
	t.Helper()
	resp, raw := e.collect(t, http.MethodGet, serverURL+"/formList", nil, "")
	if resp.StatusCode != http.StatusOK {
		t.Fatalf("formList: %d %s", resp.StatusCode, raw)
	}
	var l xformsList
	if err := xml.Unmarshal(raw, &l); err != nil {
		t.Fatalf("formList: %v\n%s", err, raw)
	}
	return l
}

// orMessage is the first message of an OpenRosaResponse.
func orMessage(t *testing.T, raw []byte) string {
	t.Helper()
	var r struct {
		XMLName xml.Name `xml:"http://openrosa.org/http/response OpenRosaResponse"`
		Message []string `xml:"message"`
	}
	if err := xml.Unmarshal(raw, &r); err != nil || len(r.Message) == 0 {
		t.Fatalf("not an OpenRosaResponse with a message: %v\n%s", err, raw)
	}
	return r.Message[0]
}

type part struct {
	field, filename, contentType string
	data                         []byte
}

// submit POSTs a submission as Collect does: multipart with
// xml_submission_file first, then the files.
func (e *orEnv) submit(t *testing.T, serverURL string, xmlDoc string, parts ...part) (*http.Response, []byte) {
	t.Helper()
	var b bytes.Buffer
	mw := multipart.NewWriter(&b)
	if xmlDoc != "" {
		w, err := mw.CreateFormFile("xml_submission_file", "submission.xml")
		if err != nil {
			t.Fatal(err)
		}
		_, _ = w.Write([]byte(xmlDoc))
	}
	for _, p := range parts {
		var w io.Writer
		var err error
		if p.filename == "" {
			w, err = mw.CreateFormField(p.field)
		} else {
			h := make(map[string][]string)
			h["Content-Disposition"] = []string{fmt.Sprintf(`form-data; name=%q; filename=%q`, p.field, p.filename)}
			h["Content-Type"] = []string{p.contentType}
			w, err = mw.CreatePart(h)
		}
		if err != nil {
			t.Fatal(err)
		}
		_, _ = w.Write(p.data)
	}
	_ = mw.Close()
	return e.collect(t, http.MethodPost, serverURL+"/submission", &b, mw.FormDataContentType())
}

// incident is an instance of incident-report as Collect writes it.
func incident(instanceID, deprecatedID, description string) string {
	dep := ""
	if deprecatedID != "" {
		dep = "<deprecatedID>uuid:" + deprecatedID + "</deprecatedID>"
	}
	return `<?xml version='1.0' ?><data id="incident-report" version="1" xmlns:jr="http://openrosa.org/javarosa">` +
		`<incident_id>AKM-2024-017</incident_id><occurred_at>2024-04-02T21:40:00.000+03:00</occurred_at>` +
		`<type>armed_attack</type><type_other/><severity>high</severity><location>3.1167 35.6 1200 12</location>` +
		`<location_description>Near the borehole</location_description><description>` + description + `</description>` +
		`<victims_count>2</victims_count><reported_to>police chief</reported_to><follow_up_needed>true</follow_up_needed>` +
		`<reporter_anonymous>false</reporter_anonymous><photo>market-road-01.jpg</photo>` +
		`<meta><instanceID>uuid:` + instanceID + `</instanceID><timeStart>2024-04-02T21:30:00.000+03:00</timeStart>` +
		`<timeEnd>2024-04-02T21:50:00.000+03:00</timeEnd>` + dep + `</meta></data>`
}

func (e *orEnv) record(t *testing.T, id string) api.Record {
	t.Helper()
	var r api.Record
	e.ts.want(t, http.StatusOK, http.MethodGet, "/v1/projects/safety/records/"+id, e.admin, nil, &r)
	return r
}

func (e *orEnv) quarantine(t *testing.T) []api.QuarantineItem {
	t.Helper()
	var q api.QuarantineList
	e.ts.want(t, http.StatusOK, http.MethodGet, "/v1/projects/safety/quarantine", e.admin, nil, &q)
	return q.Items
}

// TestOpenRosaFormListAndDownload performs Collect's form update: the list
// (with the OpenRosa header Collect checks), the download, and md5 equality
// of what was listed and what was served, stable across requests.
func TestOpenRosaFormListAndDownload(t *testing.T) {
	e := newOREnv(t)
	l := e.formList(t, e.serverURL)
	if len(l.Forms) != 3 {
		t.Fatalf("formList has %d forms, want the 3 examples: %+v", len(l.Forms), l)
	}
	for _, f := range l.Forms {
		if f.FormID == "" || f.Name == "" || f.DownloadURL == "" || !strings.HasPrefix(f.Hash, "md5:") || f.ManifestURL != "" {
			t.Errorf("form list entry %+v: Collect needs formID, name, downloadUrl and an md5 hash (and no manifest without media)", f)
		}
		resp, x := e.collect(t, http.MethodGet, f.DownloadURL, nil, "")
		if resp.StatusCode != http.StatusOK {
			t.Fatalf("download %s: %d %s", f.FormID, resp.StatusCode, x)
		}
		sum := md5.Sum(x)
		if "md5:"+hex.EncodeToString(sum[:]) != f.Hash {
			t.Errorf("%s: the listed hash %s is not the md5 of the served bytes", f.FormID, f.Hash)
		}
		_, again := e.collect(t, http.MethodGet, f.DownloadURL, nil, "")
		if !bytes.Equal(x, again) {
			t.Errorf("%s: two downloads differ", f.FormID)
		}
		req := e.ts.newRequest(t, http.MethodGet, e.path(t, f.DownloadURL), nil)
		req.Header.Set("If-None-Match", resp.Header.Get("ETag"))
		if r, _ := e.ts.do(t, req); r.StatusCode != http.StatusNotModified {
			t.Errorf("%s: If-None-Match with the ETag: %d, want 304", f.FormID, r.StatusCode)
		}
		if !bytes.Contains(x, []byte(`<data id="`+f.FormID+`" version="1">`)) {
			t.Errorf("%s: the XForm's instance root does not name the form and version", f.FormID)
		}
	}
	one := e.formList(t, e.serverURL+"/formList?formID=incident-report")
	_ = one
	resp, raw := e.collect(t, http.MethodGet, e.serverURL+"/formList?formID=incident-report", nil, "")
	var only xformsList
	if err := xml.Unmarshal(raw, &only); err != nil || resp.StatusCode != 200 || len(only.Forms) != 1 {
		t.Errorf("formList?formID=: %d %d forms", resp.StatusCode, len(only.Forms))
	}
	// The manifest route answers an empty manifest.
	resp, raw = e.collect(t, http.MethodGet, e.serverURL+"/forms/incident-report/versions/1/manifest", nil, "")
	if resp.StatusCode != 200 || !bytes.Contains(raw, []byte("xformsManifest")) {
		t.Errorf("manifest: %d %s", resp.StatusCode, raw)
	}
	resp, raw = e.collect(t, http.MethodGet, e.serverURL+"/forms/nope/versions/1.xml", nil, "")
	if resp.StatusCode != http.StatusNotFound {
		t.Errorf("download of an unknown form: %d %s", resp.StatusCode, raw)
	}
	orMessage(t, raw)
}

// TestOpenRosaPublishAnswer: the publish answer says what the XForm cannot
// check and why a form is not offered to Collect; such a form stays out of
// the list.
func TestOpenRosaPublishAnswer(t *testing.T) {
	e := newOREnv(t)
	raw, _ := os.ReadFile("../../schemas/examples/incident-report.json")
	got := e.publish(t, "incident-2", "1", raw)
	if got.OpenRosa == nil || len(got.OpenRosa.Reasons) != 0 || len(got.OpenRosa.Warnings) == 0 {
		t.Fatalf("publish answer openrosa = %+v, want warnings (if/then, dependentRequired) and no reasons", got.OpenRosa)
	}
	tuple := `{"title": "Tuples", "schema": {"type": "object", "properties": {"pair": {"type": "array", "prefixItems": [{"type": "string"}, {"type": "integer"}]}}}}`
	got = e.publish(t, "tuples", "1", []byte(tuple))
	if got.OpenRosa == nil || len(got.OpenRosa.Reasons) == 0 {
		t.Fatalf("a tuple form: openrosa = %+v, want a reason", got.OpenRosa)
	}
	for _, f := range e.formList(t, e.serverURL).Forms {
		if f.FormID == "tuples" {
			t.Error("a form with reasons is in Collect's form list")
		}
	}
	resp, _ := e.collect(t, http.MethodGet, e.serverURL+"/forms/tuples/versions/1.xml", nil, "")
	if resp.StatusCode != http.StatusNotFound {
		t.Errorf("download of a form with reasons: %d, want 404", resp.StatusCode)
	}
}

// TestOpenRosaKeys: the key is shown once in the server URL and the QR
// payload, a new key replaces the old, revoking the device stops it, a bad key
// answers 403 (not 401), and logs and audit events never hold a key.
func TestOpenRosaKeys(t *testing.T) {
	e := newOREnv(t)
	k := e.newKey(t)
	if !strings.Contains(k.ServerURL, "/v1/key/") || !strings.HasSuffix(k.ServerURL, "/projects/safety/openrosa") {
		t.Fatalf("server_url %q", k.ServerURL)
	}
	zr, err := zlib.NewReader(base64.NewDecoder(base64.StdEncoding, strings.NewReader(k.QR)))
	if err != nil {
		t.Fatalf("qr is not base64 of zlib: %v", err)
	}
	var settings struct {
		General map[string]any `json:"general"`
		Admin   map[string]any `json:"admin"`
		Project map[string]any `json:"project"`
	}
	if err := json.NewDecoder(zr).Decode(&settings); err != nil {
		t.Fatal(err)
	}
	if settings.General["server_url"] != k.ServerURL || settings.Project["name"] == "" || settings.Admin == nil {
		t.Errorf("QR settings %+v, want server_url %s and a project name", settings, k.ServerURL)
	}

	old := e.serverURL
	resp, raw := e.collect(t, http.MethodGet, old+"/formList", nil, "")
	if resp.StatusCode != http.StatusForbidden || resp.Header.Get("WWW-Authenticate") != "" {
		t.Errorf("a replaced key: %d %s, want 403 without a challenge", resp.StatusCode, raw)
	}
	orMessage(t, raw)
	if got := e.formList(t, k.ServerURL); len(got.Forms) == 0 {
		t.Error("the new key lists no forms")
	}
	resp, _ = e.collect(t, http.MethodHead, strings.Replace(k.ServerURL, "/projects/safety/", "/projects/elsewhere/", 1)+"/submission", nil, "")
	if resp.StatusCode != http.StatusForbidden {
		t.Errorf("a key used for another project: %d, want 403", resp.StatusCode)
	}

	// Roles: an analyst may not make keys.
	analyst := e.ts.addUser(t, e.admin, "ana", "safety", api.RoleAnalyst)
	e.ts.wantProblem(t, http.StatusForbidden, api.CodeForbidden, http.MethodPost, "/v1/projects/safety/devices/"+e.deviceID+"/openrosa-key", analyst, nil)

	e.ts.want(t, http.StatusNoContent, http.MethodDelete, "/v1/projects/safety/devices/"+e.deviceID, e.admin, nil, nil)
	resp, raw = e.collect(t, http.MethodGet, k.ServerURL+"/formList", nil, "")
	if resp.StatusCode != http.StatusForbidden {
		t.Errorf("the key of a revoked device: %d %s, want 403", resp.StatusCode, raw)
	}
	e.ts.wantProblem(t, http.StatusConflict, "device_revoked", http.MethodPost, "/v1/projects/safety/devices/"+e.deviceID+"/openrosa-key", e.admin, nil)

	key := strings.Split(strings.SplitAfter(k.ServerURL, "/v1/key/")[1], "/")[0]
	if strings.Contains(e.ts.logs.String(), key) {
		t.Error("the access log holds a key")
	}
	if !strings.Contains(e.ts.logs.String(), "/v1/key/***/projects/{project}/openrosa/formList") {
		t.Error("the access log does not name the bridge route with the key masked")
	}
	events, _, err := e.ts.store.ListAudit(context.Background(), domain.AuditFilter{Type: "openrosa_key_created"}, "", 10)
	if err != nil || len(events) != 2 {
		t.Fatalf("audit: %v, %d events", err, len(events))
	}
	for _, ev := range events {
		if strings.Contains(fmt.Sprint(ev.Detail), key) || !strings.Contains(ev.Detail["server_url"], "/v1/key/***/") {
			t.Errorf("audit event detail %v: the key is not masked", ev.Detail)
		}
	}
}

// TestOpenRosaSubmissions performs Collect's upload: HEAD 204, then POSTs
// answered 201 (stored) or 202 (kept in quarantine), nothing lost.
func TestOpenRosaSubmissions(t *testing.T) {
	e := newOREnv(t)
	resp, _ := e.collect(t, http.MethodHead, e.serverURL+"/submission", nil, "")
	if resp.StatusCode != http.StatusNoContent || resp.Header.Get("X-OpenRosa-Accept-Content-Length") == "" {
		t.Fatalf("HEAD submission: %d %v", resp.StatusCode, resp.Header)
	}

	id := uuid.NewString()
	photo := []byte("\xff\xd8\xff a jpeg")
	resp, raw := e.submit(t, e.serverURL, incident(id, "", "Three armed men attacked two traders."),
		part{field: "market-road-01.jpg", filename: "market-road-01.jpg", contentType: "image/jpeg", data: photo})
	if resp.StatusCode != http.StatusCreated {
		t.Fatalf("submission: %d %s", resp.StatusCode, raw)
	}
	rec := e.record(t, id)
	want := `{"incident_id":"AKM-2024-017","occurred_at":"2024-04-02T21:40:00.000+03:00","type":"armed_attack","severity":"high",
		"location":{"latitude":3.1167,"longitude":35.6,"altitude":1200,"accuracy":12},"location_description":"Near the borehole",
		"description":"Three armed men attacked two traders.","victims_count":2,"reported_to":["police","chief"],
		"follow_up_needed":true,"reporter_anonymous":false,"photo":"market-road-01.jpg"}`
	if !sameJSONRaw(rec.Data, want) {
		t.Errorf("record data = %s\nwant %s", rec.Data, want)
	}
	if rec.Form != "incident-report" || rec.FormVersion != "1" || len(rec.Attachments) != 1 || rec.Attachments[0].Size != int64(len(photo)) {
		t.Errorf("record %+v", rec)
	}
	// The photo is the record's attachment, downloadable like one pushed
	// through the JSON protocol.
	if resp, body := e.ts.call(t, http.MethodGet, "/v1/projects/safety/records/"+id+"/attachments/market-road-01.jpg", e.admin, nil); resp.StatusCode != http.StatusOK || !bytes.Equal(body, photo) {
		t.Errorf("the photo: %d, %q", resp.StatusCode, body)
	}

	// A resend (Collect lost our answer) is 201 and changes nothing.
	resp, raw = e.submit(t, e.serverURL, incident(id, "", "Three armed men attacked two traders."))
	if resp.StatusCode != http.StatusCreated {
		t.Errorf("resend: %d %s", resp.StatusCode, raw)
	}
	if again := e.record(t, id); again.Rev != rec.Rev {
		t.Errorf("a resend changed the record: %s → %s", rec.Rev, again.Rev)
	}

	// Other answers under the same instance id: kept for review, 202.
	resp, raw = e.submit(t, e.serverURL, incident(id, "", "Something else entirely happened."))
	if resp.StatusCode != http.StatusAccepted {
		t.Errorf("instance id reused: %d %s, want 202", resp.StatusCode, raw)
	}
	// An answer that does not fit the schema: 202 with the reason, in quarantine.
	bad := uuid.NewString()
	resp, raw = e.submit(t, e.serverURL, strings.Replace(incident(bad, "", "Short"), "<victims_count>2<", "<victims_count>5000<", 1))
	if resp.StatusCode != http.StatusAccepted || !strings.Contains(orMessage(t, raw), "Kept for review") {
		t.Errorf("an invalid submission: %d %s, want 202 with the reason", resp.StatusCode, raw)
	}
	// A value that does not coerce: 202, in quarantine.
	resp, raw = e.submit(t, e.serverURL, strings.Replace(incident(uuid.NewString(), "", "Long enough description."), "<victims_count>2<", "<victims_count>two<", 1))
	if resp.StatusCode != http.StatusAccepted {
		t.Errorf("a value that is not a number: %d %s, want 202", resp.StatusCode, raw)
	}
	// Not XML: 400 (Collect keeps it), and kept here too.
	resp, raw = e.submit(t, e.serverURL, "this is not < xml")
	if resp.StatusCode != http.StatusBadRequest {
		t.Errorf("not XML: %d %s, want 400", resp.StatusCode, raw)
	}
	orMessage(t, raw)
	// No instance at all: 400, nothing to keep.
	resp, raw = e.submit(t, e.serverURL, "", part{field: "x.jpg", filename: "x.jpg", contentType: "image/jpeg", data: photo})
	if resp.StatusCode != http.StatusBadRequest {
		t.Errorf("no xml_submission_file: %d %s, want 400", resp.StatusCode, raw)
	}
	// An edit of an instance the server never stored.
	resp, raw = e.submit(t, e.serverURL, incident(uuid.NewString(), uuid.NewString(), "An edit of something unknown."))
	if resp.StatusCode != http.StatusAccepted {
		t.Errorf("unknown deprecatedID: %d %s, want 202", resp.StatusCode, raw)
	}

	q := e.quarantine(t)
	var keywords []string
	for _, it := range q {
		for _, f := range it.Errors {
			keywords = append(keywords, f.Keyword)
		}
		if !strings.Contains(string(it.Submission), "openrosa_xml") {
			t.Errorf("quarantine item %s does not keep the XML: %s", it.ID, it.Submission)
		}
	}
	for _, kw := range []string{"instance_id_reused", "maximum", "type", "xml", "unknown_deprecated_id"} {
		found := false
		for _, k := range keywords {
			found = found || k == kw
		}
		if !found {
			t.Errorf("quarantine has no item with keyword %s: %v", kw, keywords)
		}
	}
}

// TestOpenRosaEdits: an edit made as Collect makes it (a new instanceID,
// meta/deprecatedID = the old one) updates the record; a second edit from the
// same old instance (another tablet's stale copy) is merged by the form's
// policy, where ODK Central would refuse it.
func TestOpenRosaEdits(t *testing.T) {
	e := newOREnv(t)
	first := uuid.NewString()
	if resp, raw := e.submit(t, e.serverURL, incident(first, "", "Three armed men attacked two traders.")); resp.StatusCode != http.StatusCreated {
		t.Fatalf("submission: %d %s", resp.StatusCode, raw)
	}
	rec := e.record(t, first)

	edit1 := uuid.NewString()
	doc := strings.Replace(incident(edit1, first, "Three armed men attacked two traders."), "<victims_count>2<", "<victims_count>3<", 1)
	resp, raw := e.submit(t, e.serverURL, doc)
	if resp.StatusCode != http.StatusCreated {
		t.Fatalf("edit: %d %s", resp.StatusCode, raw)
	}
	got := e.record(t, first)
	if got.Rev == rec.Rev || !strings.Contains(string(got.Data), `"victims_count":3`) {
		t.Fatalf("the edit did not update the record: %s %s", got.Rev, got.Data)
	}
	if resp, _ := e.submit(t, e.serverURL, doc); resp.StatusCode != http.StatusCreated {
		t.Errorf("a resent edit: %d", resp.StatusCode)
	}

	// incident-report's policy is reject: a stale edit is a conflict kept on
	// the record for review (201: stored, awaiting review).
	stale := uuid.NewString()
	doc2 := strings.Replace(incident(stale, first, "Three armed men attacked two traders."), "<severity>high<", "<severity>critical<", 1)
	resp, raw = e.submit(t, e.serverURL, doc2)
	if resp.StatusCode != http.StatusCreated || !strings.Contains(orMessage(t, raw), "review") {
		t.Errorf("a stale edit under policy reject: %d %s, want 201 awaiting review", resp.StatusCode, raw)
	}
	if got := e.record(t, first); len(got.Conflicts) == 0 {
		t.Errorf("the stale edit left no conflict entry: %+v", got)
	}
}

// TestOpenRosaMergedEdit: under policy merge, two tablets' edits of the same
// instance that change different questions both land (updated, then merged).
func TestOpenRosaMergedEdit(t *testing.T) {
	e := newOREnv(t)
	e.publish(t, "visits", "1", []byte(`{"title": "Visits", "conflict_policy": "merge", "schema": {"type": "object",
		"properties": {"name": {"type": "string"}, "age": {"type": "integer"}, "village": {"type": "string"}}, "required": ["name"]}}`))
	doc := func(id, dep, name, age, village string) string {
		d := ""
		if dep != "" {
			d = "<deprecatedID>uuid:" + dep + "</deprecatedID>"
		}
		return `<data id="visits" version="1"><name>` + name + `</name><age>` + age + `</age><village>` + village + `</village>` +
			`<meta><instanceID>uuid:` + id + `</instanceID>` + d + `</meta></data>`
	}
	first := uuid.NewString()
	if resp, raw := e.submit(t, e.serverURL, doc(first, "", "Amina", "30", "Gudele")); resp.StatusCode != http.StatusCreated {
		t.Fatalf("submission: %d %s", resp.StatusCode, raw)
	}
	if resp, raw := e.submit(t, e.serverURL, doc(uuid.NewString(), first, "Amina", "31", "Gudele")); resp.StatusCode != http.StatusCreated {
		t.Fatalf("edit: %d %s", resp.StatusCode, raw)
	}
	resp, raw := e.submit(t, e.serverURL, doc(uuid.NewString(), first, "Amina", "30", "Munuki"))
	if resp.StatusCode != http.StatusCreated || !strings.Contains(orMessage(t, raw), "merged") {
		t.Fatalf("stale edit: %d %s, want 201 merged", resp.StatusCode, raw)
	}
	if got := e.record(t, first); !sameJSONRaw(got.Data, `{"name":"Amina","age":31,"village":"Munuki"}`) {
		t.Errorf("merged data = %s", got.Data)
	}
}

// TestOpenRosaSplitSubmission: when files exceed what one POST may carry,
// Collect sends the same XML several times, each with some files and
// *isIncomplete*=yes on all but the last; every file is kept, the record is
// made once.
func TestOpenRosaSplitSubmission(t *testing.T) {
	e := newOREnv(t)
	e.publish(t, "media", "1", []byte(`{"title": "Media", "schema": {"type": "object", "properties": {
		"photo": {"type": "string", "contentMediaType": "image/jpeg"}, "voice": {"type": "string", "contentMediaType": "audio/mp4"}}}}`))
	id := uuid.NewString()
	doc := `<data id="media" version="1"><photo>p.jpg</photo><voice>v.m4a</voice><meta><instanceID>uuid:` + id + `</instanceID></meta></data>`
	resp, raw := e.submit(t, e.serverURL, doc,
		part{field: "p.jpg", filename: "p.jpg", contentType: "image/jpeg", data: []byte("photo bytes")},
		part{field: "*isIncomplete*", data: []byte("yes")})
	if resp.StatusCode != http.StatusCreated {
		t.Fatalf("first part: %d %s", resp.StatusCode, raw)
	}
	rec := e.record(t, id)
	present := func(r api.Record) map[string]bool {
		m := map[string]bool{}
		for _, a := range r.Attachments {
			m[a.Name] = a.Present
		}
		return m
	}
	if p := present(rec); !p["p.jpg"] || p["v.m4a"] {
		t.Errorf("after the first part: present %v, want p.jpg only", p)
	}
	resp, raw = e.submit(t, e.serverURL, doc, part{field: "v.m4a", filename: "v.m4a", contentType: "audio/mp4", data: []byte("voice bytes")})
	if resp.StatusCode != http.StatusCreated {
		t.Fatalf("last part: %d %s", resp.StatusCode, raw)
	}
	if got := e.record(t, id); got.Rev != rec.Rev || !sameJSONRaw(got.Data, `{"photo":"p.jpg","voice":"v.m4a"}`) {
		t.Errorf("record after the last part: %s %s", got.Rev, got.Data)
	}
	names := map[string]bool{}
	for _, a := range rec.Attachments {
		names[a.Name] = true
	}
	if !names["p.jpg"] || !names["v.m4a"] {
		t.Errorf("the record does not declare both files: %+v", rec.Attachments)
	}
	if p := present(e.record(t, id)); !p["p.jpg"] || !p["v.m4a"] {
		t.Errorf("after the last part: present %v, want both", p)
	}
	// Both download, the later part's too (declared without a hash).
	for name, want := range map[string]string{"p.jpg": "photo bytes", "v.m4a": "voice bytes"} {
		resp, body := e.ts.call(t, http.MethodGet, "/v1/projects/safety/records/"+id+"/attachments/"+name, e.admin, nil)
		if resp.StatusCode != http.StatusOK || string(body) != want {
			t.Errorf("GET %s: %d %q, want %q", name, resp.StatusCode, body, want)
		}
	}
	links, err := e.ts.store.ListAttachmentLinks(t.Context(), "safety", []string{id})
	if err != nil || len(links[id]) != 2 {
		t.Errorf("files kept: %v %+v, want both parts", err, links[id])
	}
}

// sameJSONText compares a JSON value with JSON text.
func sameJSONRaw(got json.RawMessage, want string) bool {
	var g, w any
	if json.Unmarshal(got, &g) != nil || json.Unmarshal([]byte(want), &w) != nil {
		return false
	}
	gb, _ := json.Marshal(g)
	wb, _ := json.Marshal(w)
	return bytes.Equal(gb, wb)
}
