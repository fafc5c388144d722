package storetest

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"io"
	"sync"
	"testing"
	"time"

	"github.com/fieldsync/fieldsync/internal/domain"
)

// attachmentBytes makes n bytes that are not all alike, and their sha256.
func attachmentBytes(n int, seed byte) ([]byte, string) {
	b := make([]byte, n)
	for i := range b {
		b[i] = byte(i*7) ^ seed
	}
	h := sha256.Sum256(b)
	return b, hex.EncodeToString(h[:])
}

// brokenReader yields its bytes, then fails as a dropped connection does.
type brokenReader struct{ r io.Reader }

var errDropped = errors.New("connection dropped")

func (b *brokenReader) Read(p []byte) (int, error) {
	n, err := b.r.Read(p)
	if errors.Is(err, io.EOF) {
		return n, errDropped
	}
	return n, err
}

func readBlob(t *testing.T, ctx context.Context, st domain.Store, sum string) []byte {
	t.Helper()
	b, err := st.OpenBlob(ctx, sum)
	if err != nil {
		t.Fatalf("OpenBlob: %v", err)
	}
	defer b.Close()
	got, err := io.ReadAll(b)
	if err != nil {
		t.Fatalf("read blob: %v", err)
	}
	if int64(len(got)) != b.Size() {
		t.Fatalf("blob Size %d, read %d bytes", b.Size(), len(got))
	}
	return got
}

func (s suite) attachments(t *testing.T) {
	// Larger than a GridFS chunk (255 KiB), so chunk boundaries are crossed.
	const size = 700_000
	s.run(t, "InterruptedAppendResumes", func(t *testing.T, ctx context.Context, st domain.Store) {
		data, sum := attachmentBytes(size, 1)
		off, err := st.AppendUpload(ctx, "u1", 0, &brokenReader{bytes.NewReader(data[:300_001])}, t0)
		if !errors.Is(err, errDropped) || off != 300_001 {
			t.Fatalf("interrupted append = %d, %v; want 300001 and the reader's error", off, err)
		}
		if got, err := st.UploadOffset(ctx, "u1"); err != nil || got != 300_001 {
			t.Fatalf("UploadOffset = %d, %v", got, err)
		}
		if off, err := st.AppendUpload(ctx, "u1", off, bytes.NewReader(data[off:]), t0); err != nil || off != size {
			t.Fatalf("resume = %d, %v", off, err)
		}
		if _, err := st.OpenBlob(ctx, sum); !errors.Is(err, domain.ErrNotFound) {
			t.Fatalf("blob visible before commit: %v", err)
		}
		if err := st.CommitUpload(ctx, "u1", sum, size, t0); err != nil {
			t.Fatalf("CommitUpload: %v", err)
		}
		if got := readBlob(t, ctx, st, sum); !bytes.Equal(got, data) {
			t.Fatal("blob bytes differ from the upload")
		}
		if got, _ := st.UploadOffset(ctx, "u1"); got != 0 {
			t.Fatalf("upload left after commit: offset %d", got)
		}
	})
	s.run(t, "StaleOffsetKeepsNothing", func(t *testing.T, ctx context.Context, st domain.Store) {
		data, _ := attachmentBytes(1000, 2)
		if _, err := st.AppendUpload(ctx, "u", 0, bytes.NewReader(data[:400]), t0); err != nil {
			t.Fatal(err)
		}
		off, err := st.AppendUpload(ctx, "u", 100, bytes.NewReader(data[100:]), t0)
		if !errors.Is(err, domain.ErrStale) || off != 400 {
			t.Fatalf("append at a wrong offset = %d, %v; want 400, ErrStale", off, err)
		}
		if got, _ := st.UploadOffset(ctx, "u"); got != 400 {
			t.Fatalf("offset %d after a refused append", got)
		}
	})
	s.run(t, "WrongHashKeepsNothing", func(t *testing.T, ctx context.Context, st domain.Store) {
		data, sum := attachmentBytes(size, 3)
		bad := append([]byte(nil), data...)
		bad[size/2] ^= 0xff
		badSum := sha256.Sum256(bad)
		if _, err := st.AppendUpload(ctx, "u", 0, bytes.NewReader(bad), t0); err != nil {
			t.Fatal(err)
		}
		err := st.CommitUpload(ctx, "u", sum, size, t0)
		var me *domain.MismatchError
		if !errors.As(err, &me) || me.SHA256 != hex.EncodeToString(badSum[:]) || me.Size != size {
			t.Fatalf("CommitUpload of other bytes = %v; want a MismatchError with what arrived", err)
		}
		if _, err := st.OpenBlob(ctx, sum); !errors.Is(err, domain.ErrNotFound) {
			t.Fatalf("OpenBlob after a mismatch: %v", err)
		}
		if _, err := st.OpenBlob(ctx, me.SHA256); !errors.Is(err, domain.ErrNotFound) {
			t.Fatalf("the wrong bytes were kept: %v", err)
		}
		if got, _ := st.UploadOffset(ctx, "u"); got != 0 {
			t.Fatalf("upload kept after a mismatch: offset %d", got)
		}
		if n, err := st.CollectBlobs(ctx, t0.Add(time.Hour)); err != nil || n != 0 {
			t.Fatalf("CollectBlobs = %d, %v; want nothing to collect", n, err)
		}
		if err := st.CommitUpload(ctx, "nope", sum, size, t0); !errors.Is(err, domain.ErrNotFound) {
			t.Fatalf("CommitUpload of an unknown upload: %v", err)
		}
	})
	s.run(t, "SameBytesStoredOnce", func(t *testing.T, ctx context.Context, st domain.Store) {
		data, sum := attachmentBytes(size, 4)
		for _, id := range []string{"a", "b"} {
			if _, err := st.AppendUpload(ctx, id, 0, bytes.NewReader(data), t0); err != nil {
				t.Fatal(err)
			}
			if err := st.CommitUpload(ctx, id, sum, size, t0); err != nil {
				t.Fatalf("CommitUpload %s: %v", id, err)
			}
		}
		for _, rec := range []string{"r1", "r2"} {
			if err := st.PutAttachmentLink(ctx, domain.AttachmentLink{ProjectID: "p", RecordID: rec, Name: "site.jpg", SHA256: sum, Size: size, ContentType: "image/jpeg", CreatedAt: t0}); err != nil {
				t.Fatalf("PutAttachmentLink: %v", err)
			}
		}
		if n, err := st.CollectBlobs(ctx, t0.Add(time.Hour)); err != nil || n != 0 {
			t.Fatalf("CollectBlobs of a linked blob = %d, %v", n, err)
		}
		links, err := st.ListAttachmentLinks(ctx, "p", []string{"r1", "r2", "r3"})
		if err != nil || len(links["r1"]) != 1 || len(links["r2"]) != 1 || len(links["r3"]) != 0 {
			t.Fatalf("ListAttachmentLinks = %v, %v", links, err)
		}
		l, err := st.GetAttachmentLink(ctx, "p", "r2", "site.jpg")
		want := domain.AttachmentLink{ProjectID: "p", RecordID: "r2", Name: "site.jpg", SHA256: sum, Size: size, ContentType: "image/jpeg", CreatedAt: t0}
		if err != nil || l != want {
			t.Fatalf("GetAttachmentLink = %+v, %v; want %+v", l, err, want)
		}
		if _, err := st.GetAttachmentLink(ctx, "p", "r2", "other.jpg"); !errors.Is(err, domain.ErrNotFound) {
			t.Fatalf("GetAttachmentLink of an unknown name: %v", err)
		}
		// Both records name the one copy: re-pointing them leaves it to the
		// collector, which finds exactly one blob.
		other, otherSum := attachmentBytes(10, 5)
		if _, err := st.AppendUpload(ctx, "c", 0, bytes.NewReader(other), t0); err != nil {
			t.Fatal(err)
		}
		if err := st.CommitUpload(ctx, "c", otherSum, 10, t0); err != nil {
			t.Fatal(err)
		}
		for _, rec := range []string{"r1", "r2"} {
			if err := st.PutAttachmentLink(ctx, domain.AttachmentLink{ProjectID: "p", RecordID: rec, Name: "site.jpg", SHA256: otherSum, Size: 10, CreatedAt: t0}); err != nil {
				t.Fatal(err)
			}
		}
		if n, err := st.CollectBlobs(ctx, t0.Add(-time.Minute)); err != nil || n != 0 {
			t.Fatalf("CollectBlobs took a blob younger than its grace: %d, %v", n, err)
		}
		if n, err := st.CollectBlobs(ctx, t0.Add(time.Hour)); err != nil || n != 1 {
			t.Fatalf("CollectBlobs = %d, %v; want the one unreferenced copy", n, err)
		}
		if _, err := st.OpenBlob(ctx, sum); !errors.Is(err, domain.ErrNotFound) {
			t.Fatalf("collected blob still opens: %v", err)
		}
		if err := st.PutAttachmentLink(ctx, domain.AttachmentLink{ProjectID: "p", RecordID: "r9", Name: "x", SHA256: sum, Size: size, CreatedAt: t0}); !errors.Is(err, domain.ErrNotFound) {
			t.Fatalf("PutAttachmentLink to a blob not held: %v", err)
		}
	})
	s.run(t, "BlobSeeks", func(t *testing.T, ctx context.Context, st domain.Store) {
		data, sum := attachmentBytes(size, 6)
		if _, err := st.AppendUpload(ctx, "u", 0, bytes.NewReader(data), t0); err != nil {
			t.Fatal(err)
		}
		if err := st.CommitUpload(ctx, "u", sum, size, t0); err != nil {
			t.Fatal(err)
		}
		b, err := st.OpenBlob(ctx, sum)
		if err != nil {
			t.Fatal(err)
		}
		defer b.Close()
		for _, at := range []int64{600_000, 10, 261_119, 261_120} {
			if _, err := b.Seek(at, io.SeekStart); err != nil {
				t.Fatal(err)
			}
			got := make([]byte, 5000)
			if _, err := io.ReadFull(b, got); err != nil {
				t.Fatalf("read at %d: %v", at, err)
			}
			if !bytes.Equal(got, data[at:at+5000]) {
				t.Fatalf("bytes at %d differ", at)
			}
		}
		if end, err := b.Seek(0, io.SeekEnd); err != nil || end != size {
			t.Fatalf("Seek end = %d, %v", end, err)
		}
	})
	s.run(t, "ExpireUploads", func(t *testing.T, ctx context.Context, st domain.Store) {
		data, _ := attachmentBytes(1000, 7)
		if _, err := st.AppendUpload(ctx, "old", 0, bytes.NewReader(data), t0); err != nil {
			t.Fatal(err)
		}
		if _, err := st.AppendUpload(ctx, "new", 0, bytes.NewReader(data), t0.Add(2*time.Hour)); err != nil {
			t.Fatal(err)
		}
		if n, err := st.ExpireUploads(ctx, t0.Add(time.Hour)); err != nil || n != 1 {
			t.Fatalf("ExpireUploads = %d, %v; want 1", n, err)
		}
		if got, _ := st.UploadOffset(ctx, "old"); got != 0 {
			t.Fatalf("expired upload holds %d bytes", got)
		}
		if got, _ := st.UploadOffset(ctx, "new"); got != 1000 {
			t.Fatalf("live upload holds %d bytes", got)
		}
		if err := st.DeleteUpload(ctx, "new"); err != nil {
			t.Fatal(err)
		}
		if got, _ := st.UploadOffset(ctx, "new"); got != 0 {
			t.Fatalf("deleted upload holds %d bytes", got)
		}
	})
	s.run(t, "RacingAppendsOneWins", func(t *testing.T, ctx context.Context, st domain.Store) {
		RunRacingAppends(t, st, st)
	})
}

// RunRacingAppends appends the same bytes to one upload through a and b at
// once (two clients sending the same file, to one or two server
// instances): exactly one append is kept.
func RunRacingAppends(t *testing.T, a, b domain.Store) {
	t.Helper()
	ctx := t.Context()
	data, sum := attachmentBytes(300_000, 8)
	pr, pw := io.Pipe()
	var wg sync.WaitGroup
	var errA error
	var offA int64
	wg.Go(func() { offA, errA = a.AppendUpload(ctx, "race", 0, pr, t0) })
	// Once a took the first bytes it is inside its append.
	if _, err := pw.Write(data[:1000]); err != nil {
		t.Fatal(err)
	}
	offB, errB := b.AppendUpload(ctx, "race", 0, bytes.NewReader(data), t0)
	go func() {
		_, _ = pw.Write(data[1000:])
		pw.Close()
	}()
	wg.Wait()
	stale := 0
	for _, err := range []error{errA, errB} {
		if errors.Is(err, domain.ErrStale) {
			stale++
		} else if err != nil {
			t.Fatalf("append: %v", err)
		}
	}
	if stale != 1 {
		t.Fatalf("racing appends: %v, %v; want exactly one ErrStale", errA, errB)
	}
	if offA != int64(len(data)) && offB != int64(len(data)) {
		t.Fatalf("no append reached the end: %d, %d", offA, offB)
	}
	if got, _ := a.UploadOffset(ctx, "race"); got != int64(len(data)) {
		t.Fatalf("offset after the race = %d; want %d", got, len(data))
	}
	if err := b.CommitUpload(ctx, "race", sum, int64(len(data)), t0); err != nil {
		t.Fatalf("CommitUpload after the race: %v", err)
	}
	if got := readBlob(t, ctx, a, sum); !bytes.Equal(got, data) {
		t.Fatal("blob differs after racing appends")
	}
}

// RunSharedResume starts an upload through a, is cut off, resumes and
// commits it through b, and reads it through a: server instances that share
// one store share uploads.
func RunSharedResume(t *testing.T, a, b domain.Store) {
	t.Helper()
	ctx := t.Context()
	data, sum := attachmentBytes(600_000, 9)
	off, err := a.AppendUpload(ctx, "shared", 0, &brokenReader{bytes.NewReader(data[:123_457])}, t0)
	if !errors.Is(err, errDropped) {
		t.Fatalf("interrupted append: %v", err)
	}
	if got, err := b.UploadOffset(ctx, "shared"); err != nil || got != off {
		t.Fatalf("offset seen by the other instance = %d, %v; want %d", got, err, off)
	}
	if _, err := b.AppendUpload(ctx, "shared", off, bytes.NewReader(data[off:]), t0); err != nil {
		t.Fatal(err)
	}
	if err := b.CommitUpload(ctx, "shared", sum, int64(len(data)), t0); err != nil {
		t.Fatal(err)
	}
	if got := readBlob(t, ctx, a, sum); !bytes.Equal(got, data) {
		t.Fatal("blob differs")
	}
}
