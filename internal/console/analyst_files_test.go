package console_test

import (
	"bytes"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"html"
	"net/http"
	"net/url"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/fieldsync/fieldsync/api"
)

// TestAnalystRecordFiles: a record's page lists the files it declares, says
// in words which have arrived, and links the ones that have to a download
// that is the API's (the bytes, typed as declared, as an attachment, never
// sniffed), names with ? # and spaces included; a file not yet uploaded has
// no link and its download answers 404.
func TestAnalystRecordFiles(t *testing.T) {
	e := startAnalystEnv(t)
	photo := []byte("\xff\xd8\xff\xe0 not really a jpeg")
	sum := sha256.Sum256(photo)
	odd := "photo 1?#.jpg"
	s := sub(7, `{"village":"Kibera"}`, time.Date(2026, 3, 1, 8, 0, 0, 0, time.UTC))
	s.Attachments = []api.Attachment{
		{Name: odd, SHA256: hex.EncodeToString(sum[:]), Size: int64(len(photo)), ContentType: "image/jpeg"},
		{Name: "voice.m4a", SHA256: strings.Repeat("a", 64), Size: 2048, ContentType: "audio/mp4"},
	}
	if r := e.push(t, e.tablets[0], s); r[0].Status != api.PushCreated {
		t.Fatalf("push: %+v", r[0])
	}
	// The tablet uploads the photo, not the recording.
	req, _ := http.NewRequest(http.MethodPut, e.URL+"/v1/projects/safety/records/"+recordID(7)+"/attachments/"+url.PathEscape(odd), bytes.NewReader(photo))
	req.Header.Set("Authorization", "Bearer "+e.tablets[0].token)
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusCreated {
		t.Fatalf("upload: %d", resp.StatusCode)
	}

	c := e.SignIn(t, "alice", analystPassword)
	_, body := c.Get("/projects/safety/data/records/" + recordID(7))
	link := "/projects/safety/data/records/" + recordID(7) + "/attachments/" + url.PathEscape(odd)
	for _, want := range []string{`id="files"`, `href="` + link + `"`, "✔ received", "voice.m4a", "⚠ not received yet", "2048 bytes"} {
		if !strings.Contains(body, want) {
			t.Errorf("record page lacks %q", want)
		}
	}
	if strings.Contains(body, "/attachments/voice.m4a") {
		t.Error("the file not received yet has a download link")
	}

	resp, got := c.Get(link)
	if resp.StatusCode != http.StatusOK || got != string(photo) {
		t.Fatalf("download: %d, %d bytes", resp.StatusCode, len(got))
	}
	for h, want := range map[string]string{"Content-Type": "image/jpeg", "X-Content-Type-Options": "nosniff"} {
		if v := resp.Header.Get(h); v != want {
			t.Errorf("download %s: %q, want %q", h, v, want)
		}
	}
	if cd := resp.Header.Get("Content-Disposition"); !strings.HasPrefix(cd, "attachment") {
		t.Errorf("download Content-Disposition %q: want an attachment, never inline", cd)
	}
	if resp, _ := c.Get("/projects/safety/data/records/" + recordID(7) + "/attachments/voice.m4a"); resp.StatusCode != http.StatusNotFound {
		t.Errorf("the recording not received yet: %d, want 404", resp.StatusCode)
	}

	// The table's total takes the singular for one.
	if _, body := c.Get("/projects/safety/data/forms/household"); !strings.Contains(body, "1 submission matches the filters.") {
		t.Error(`the table of one record does not say "1 submission matches the filters."`)
	}

	// A record without files has no section.
	e.push(t, e.tablets[0], sub(8, `{"village":"Mathare"}`, time.Date(2026, 3, 1, 9, 0, 0, 0, time.UTC)))
	if _, body := c.Get("/projects/safety/data/records/" + recordID(8)); strings.Contains(body, `id="files"`) {
		t.Error("a record without files shows a files table")
	}
}

// TestAnalystODataAddress: the submissions page gives the form's OData feed
// address, and that address is the feed: Power BI's Basic sign-in with the
// analyst's password reads it.
func TestAnalystODataAddress(t *testing.T) {
	e := startAnalystEnv(t)
	e.seed(t)
	c := e.SignIn(t, "alice", analystPassword)
	_, body := c.Get("/projects/safety/data/forms/household")
	m := regexp.MustCompile(`id="odata-url" value="([^"]+)"`).FindStringSubmatch(body)
	if m == nil {
		t.Fatal("the submissions page gives no OData address")
	}
	addr := html.UnescapeString(m[1])
	if want := e.URL + "/v1/projects/safety/forms/household/odata"; addr != want {
		t.Fatalf("OData address %q, want %q", addr, want)
	}
	req, _ := http.NewRequest(http.MethodGet, addr+"/Submissions", nil)
	req.SetBasicAuth("alice", analystPassword)
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	var feed struct {
		Value []map[string]any `json:"value"`
	}
	if resp.StatusCode != http.StatusOK || json.NewDecoder(resp.Body).Decode(&feed) != nil || len(feed.Value) != 3 {
		t.Fatalf("the address as Power BI reads it: %d, %d rows (want 3)", resp.StatusCode, len(feed.Value))
	}
}
