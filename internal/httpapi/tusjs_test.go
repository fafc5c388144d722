package httpapi

import (
	"bytes"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"

	"github.com/google/uuid"

	"github.com/fieldsync/fieldsync/api"
)

// tusjsDir holds the real tus client the test drives: tus-js-client, pinned
// by package-lock.json and installed by .ci/run (npm ci).
const tusjsDir = "testdata/tusjs"

// TestTusJSClientResumes uploads a photo with tus-js-client, a maintained tus
// client, to the record's attachment URL (its uploadUrl option: the server
// knows the URL, no creation step), aborts it mid-request, and resumes it
// with a new client: the server's file is the photo, byte for byte.
func TestTusJSClientResumes(t *testing.T) {
	node, err := exec.LookPath("node")
	if err != nil {
		t.Skip("node is not installed; .ci/run installs Node's packages and runs this")
	}
	if _, err := os.Stat(filepath.Join(tusjsDir, "node_modules", "tus-js-client")); err != nil {
		t.Skip("tus-js-client is not installed: run npm ci in " + tusjsDir + " (.ci/run does)")
	}
	t.Parallel()
	for _, kind := range storeKinds {
		t.Run(kind, func(t *testing.T) {
			e := newAttEnv(t, kind)
			photo := jpegBytes(1_000_000, 7)
			id := uuid.NewString()
			decl := api.Attachment{Name: "site.jpg", SHA256: sha(photo), Size: int64(len(photo)), ContentType: "image/jpeg"}
			e.pushVisit(t, id, "site.jpg", decl)
			file := filepath.Join(t.TempDir(), "site.jpg")
			if err := os.WriteFile(file, photo, 0o600); err != nil {
				t.Fatal(err)
			}
			url := e.ts.URL + attPath(id, "site.jpg")
			run := func(args ...string) string {
				t.Helper()
				cmd := exec.CommandContext(t.Context(), node, append([]string{"upload.mjs", url, e.tablet.token, file}, args...)...)
				cmd.Dir = tusjsDir
				out, err := cmd.CombinedOutput()
				if err != nil {
					t.Fatalf("tus-js-client: %v\n%s", err, out)
				}
				return strings.TrimSpace(string(out))
			}
			if out := run("300000"); !strings.HasPrefix(out, "aborted ") {
				t.Fatalf("first run: %q; want aborted", out)
			}
			resp, _ := e.tus(t, e.ts, http.MethodHead, attPath(id, "site.jpg"), e.tablet.token, 0, nil)
			if off := headerInt(t, resp, "Upload-Offset"); off <= 0 || off >= decl.Size {
				t.Fatalf("after the abort the server holds %d of %d bytes; want a part", off, decl.Size)
			}
			if out := run(); out != "done" {
				t.Fatalf("resumed run: %q", out)
			}
			_, body := e.ts.get(t, attPath(id, "site.jpg"), "Authorization", "Bearer "+e.analyst)
			if !bytes.Equal(body, photo) {
				t.Fatalf("downloaded %d bytes that differ from the photo", len(body))
			}
		})
	}
}
