package main

import (
	"bytes"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"sync/atomic"
	"testing"

	"github.com/google/uuid"
)

// cutBody fails after n bytes, as a dropped 2G link does.
type cutBody struct {
	r    io.ReadCloser
	left int
}

func (c *cutBody) Read(p []byte) (int, error) {
	if c.left <= 0 {
		return 0, errors.New("link dropped")
	}
	if len(p) > c.left {
		p = p[:c.left]
	}
	n, err := c.r.Read(p)
	c.left -= n
	return n, err
}

func (c *cutBody) Close() error { return c.r.Close() }

// TestFsctlPushUploadsFiles: fsctl push sends the files the records declare
// from the attachments folder beside the NDJSON; an upload whose link drops
// resumes from the server's offset, so every byte crosses the link once.
func TestFsctlPushUploadsFiles(t *testing.T) {
	var patched atomic.Int64 // body bytes of PATCH requests that reached the server
	var once sync.Once
	c, dir := newSyncCLIWith(t, func(h http.Handler) http.Handler {
		return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			if r.Method == http.MethodPatch {
				once.Do(func() { r.Body = &cutBody{r: r.Body, left: 100_000} })
				r.Body = &countBody{ReadCloser: r.Body, n: &patched}
			}
			h.ServeHTTP(w, r)
		})
	})
	photo := bytes.Repeat([]byte("a photo of the market, "), 20_000)
	sum := sha256.Sum256(photo)
	sig := []byte("a signature")
	sigSum := sha256.Sum256(sig)
	ids := []string{uuid.NewString(), uuid.NewString()}
	att := func(name string, s [32]byte, n int) string {
		return fmt.Sprintf(`[{"name": %q, "sha256": %q, "size": %d, "content_type": "image/jpeg"}]`, name, hex.EncodeToString(s[:]), n)
	}
	line := func(id, attachments string) string {
		return fmt.Sprintf(`{"id": %q, "form": "visits", "form_version": "1", "client_modified_at": "2026-03-01T09:00:00Z", "data": {"name": "Amina"}, "attachments": %s}`, id, attachments)
	}
	file := writeLines(t, filepath.Join(dir, "outbox.ndjson"), line(ids[0], att("site.jpg", sum, len(photo))), line(ids[1], att("sig.png", sigSum, len(sig))))
	if err := os.MkdirAll(filepath.Join(dir, "attachments", ids[0]), 0o700); err != nil {
		t.Fatal(err)
	}
	for p, b := range map[string][]byte{filepath.Join(dir, "attachments", ids[0], "site.jpg"): photo, filepath.Join(dir, "attachments", "sig.png"): sig} {
		if err := os.WriteFile(p, b, 0o600); err != nil {
			t.Fatal(err)
		}
	}
	code, out, errOut := c.run("", "push", file, "--project", "north")
	if code != 0 || !strings.Contains(out, "Uploaded 2 of 2 files") {
		t.Fatalf("push: exit %d\n%s\n%s", code, out, errOut)
	}
	if !strings.Contains(errOut, "resuming") {
		t.Errorf("no resume after the dropped link:\n%s", errOut)
	}
	if got, want := patched.Load(), int64(len(photo)+len(sig)); got != want {
		t.Errorf("%d bytes sent in PATCH bodies for %d bytes of files: the resume sent some twice", got, want)
	}
	// Pushing again finds both files held: nothing to upload.
	code, out, errOut = c.run("", "push", file, "--project", "north")
	if code != 0 || strings.Contains(out, "Uploaded") {
		t.Fatalf("push again: exit %d\n%s\n%s", code, out, errOut)
	}
	recFile := filepath.Join(dir, "records.ndjson")
	c.must("", "pull", "--project", "north", "--out", recFile)
	data, err := os.ReadFile(recFile)
	if err != nil {
		t.Fatal(err)
	}
	for _, r := range readRecords(t, string(data)) {
		if len(r.Attachments) != 1 || !r.Attachments[0].Present {
			t.Errorf("record %s: attachments %+v; want present", r.ID, r.Attachments)
		}
	}
}

// countBody counts the bytes read.
type countBody struct {
	io.ReadCloser
	n *atomic.Int64
}

func (c *countBody) Read(p []byte) (int, error) {
	n, err := c.ReadCloser.Read(p)
	c.n.Add(int64(n))
	return n, err
}
