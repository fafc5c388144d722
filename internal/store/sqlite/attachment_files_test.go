package sqlite

import (
	"bytes"
	"crypto/sha256"
	"encoding/hex"
	"testing"
	"time"
)

// TestCommitWaitsForARefusedAppend: the request that completed an upload
// commits it even while a late duplicate append holds the upload for the
// instant it takes to be refused. Before, the commit was refused too, and
// both clients were told 409 (seen in TestAttachmentSameBytesStoredOnce).
func TestCommitWaitsForARefusedAppend(t *testing.T) {
	f := newFileBlobs(t.TempDir())
	data := []byte("the bytes of a photo")
	now := time.Now()
	if n, err := f.append("u", 0, bytes.NewReader(data), now); err != nil || n != int64(len(data)) {
		t.Fatalf("append: %d %v", n, err)
	}
	if !f.claim("u") { // the late duplicate, being turned away
		t.Fatal("claim")
	}
	done := make(chan error, 1)
	sum := sha256.Sum256(data)
	go func() { done <- f.commit("u", hex.EncodeToString(sum[:]), int64(len(data)), now) }()
	f.release("u")
	if err := <-done; err != nil {
		t.Fatalf("commit: %v", err)
	}
	if !f.has(hex.EncodeToString(sum[:])) {
		t.Fatal("the blob is not held after the commit")
	}
}
