package httpapi

import (
	"archive/zip"
	"bytes"
	"io"
	"net/http"
	"sort"
	"testing"

	"github.com/google/uuid"

	"github.com/fieldsync/fieldsync/api"
)

// TestExportAttachments: a csv.zip with attachments=true holds each record's
// uploaded files, byte for byte, under attachments/<record id>/<name>, and
// leaves out a file declared but not uploaded yet (the export does not fail
// for it). On both stores: files under the data directory, and GridFS.
func TestExportAttachments(t *testing.T) {
	t.Parallel()
	for _, kind := range storeKinds {
		t.Run(kind, func(t *testing.T) {
			e := newAttEnv(t, kind)
			photo := jpegBytes(120_000, 7)
			held, missing := uuid.NewString(), uuid.NewString()
			e.pushVisit(t, held, "site.jpg", api.Attachment{Name: "site.jpg", SHA256: sha(photo), Size: int64(len(photo)), ContentType: "image/jpeg"})
			other := jpegBytes(50_000, 8)
			e.pushVisit(t, missing, "gone.jpg", api.Attachment{Name: "gone.jpg", SHA256: sha(other), Size: int64(len(other)), ContentType: "image/jpeg"})
			if resp, raw := e.put(t, e.ts, attPath(held, "site.jpg"), photo); resp.StatusCode != http.StatusCreated {
				t.Fatalf("PUT: %d %s", resp.StatusCode, raw)
			}

			resp, body := e.ts.call(t, http.MethodGet, "/v1/projects/"+syncProject+"/forms/visit/export?format=csv.zip&attachments=true", e.analyst, nil)
			if resp.StatusCode != http.StatusOK {
				t.Fatalf("export: %d %s", resp.StatusCode, body)
			}
			zr, err := zip.NewReader(bytes.NewReader(body), int64(len(body)))
			if err != nil {
				t.Fatal(err)
			}
			var names []string
			files := map[string][]byte{}
			for _, f := range zr.File {
				names = append(names, f.Name)
				rc, err := f.Open()
				if err != nil {
					t.Fatal(err)
				}
				b, err := io.ReadAll(rc)
				rc.Close()
				if err != nil {
					t.Fatal(err)
				}
				files[f.Name] = b
			}
			sort.Strings(names)
			if got := files["attachments/"+held+"/site.jpg"]; !bytes.Equal(got, photo) {
				t.Errorf("the uploaded photo is not in the zip as sent (%d bytes of %d); entries %v", len(got), len(photo), names)
			}
			if _, ok := files["attachments/"+missing+"/gone.jpg"]; ok {
				t.Errorf("a file never uploaded is in the zip: %v", names)
			}

			// Without attachments=true the zip holds the tables only.
			resp, body = e.ts.call(t, http.MethodGet, "/v1/projects/"+syncProject+"/forms/visit/export?format=csv.zip", e.analyst, nil)
			if resp.StatusCode != http.StatusOK {
				t.Fatalf("export: %d %s", resp.StatusCode, body)
			}
			zr, err = zip.NewReader(bytes.NewReader(body), int64(len(body)))
			if err != nil {
				t.Fatal(err)
			}
			for _, f := range zr.File {
				if bytes.HasPrefix([]byte(f.Name), []byte("attachments/")) {
					t.Errorf("attachments without attachments=true: %s", f.Name)
				}
			}
		})
	}
}
