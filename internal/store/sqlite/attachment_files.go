package sqlite

import (
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"time"

	"github.com/fieldsync/fieldsync/internal/domain"
)

// fileBlobs keeps attachment bytes as files under a directory beside the
// database:
//
//	blobs/ab/abcdef…   one file per distinct sha256, never changed once there
//	uploads/<h>.part   a partial upload (h: sha256 of its id); its size is its offset
//
// A blob appears by renaming a complete, fsynced part file into place, so a
// reader never sees a partial file, and a crash leaves at most a part file
// that expires. Appends to one upload take turns through busy (one process
// serves a SQLite deployment); a second append at the same time is refused
// with ErrStale, as tus asks, instead of waiting behind the first.
type fileBlobs struct {
	dir string

	mu   sync.Mutex
	busy map[string]bool // uploads with an append or commit under way
	// freed is signalled (under mu) when an upload stops being busy.
	freed *sync.Cond
	// blobMu orders a commit that reuses a blob against the collector
	// removing it.
	blobMu sync.Mutex
}

func newFileBlobs(dir string) *fileBlobs {
	f := &fileBlobs{dir: dir, busy: map[string]bool{}}
	f.freed = sync.NewCond(&f.mu)
	return f
}

func (f *fileBlobs) partPath(id string) string {
	h := sha256.Sum256([]byte(id))
	return filepath.Join(f.dir, "uploads", hex.EncodeToString(h[:])+".part")
}

func (f *fileBlobs) blobPath(sum string) (string, error) {
	if len(sum) != 64 || strings.Trim(sum, "0123456789abcdef") != "" {
		return "", domain.ErrNotFound // not a sha256 we could hold
	}
	return filepath.Join(f.dir, "blobs", sum[:2], sum), nil
}

// claim marks an upload busy; false when it already is.
func (f *fileBlobs) claim(id string) bool {
	f.mu.Lock()
	defer f.mu.Unlock()
	if f.busy[id] {
		return false
	}
	f.busy[id] = true
	return true
}

// claimWait marks an upload busy, waiting while it is. Only commit waits:
// it runs once the upload holds every byte, when any other append is
// refused at once (its offset is not the size, or it has nothing left to
// write), so the wait is short; refusing instead would fail the request that
// completed the upload because a late duplicate was being turned away.
func (f *fileBlobs) claimWait(id string) {
	f.mu.Lock()
	defer f.mu.Unlock()
	for f.busy[id] {
		f.freed.Wait()
	}
	f.busy[id] = true
}

func (f *fileBlobs) release(id string) {
	f.mu.Lock()
	delete(f.busy, id)
	f.freed.Broadcast()
	f.mu.Unlock()
}

func (f *fileBlobs) offset(id string) (int64, error) {
	st, err := os.Stat(f.partPath(id))
	if errors.Is(err, fs.ErrNotExist) {
		return 0, nil
	}
	if err != nil {
		return 0, fileErr(err)
	}
	return st.Size(), nil
}

func (f *fileBlobs) append(id string, offset int64, r io.Reader, now time.Time) (int64, error) {
	if !f.claim(id) {
		cur, err := f.offset(id)
		if err != nil {
			return 0, err
		}
		return cur, fmt.Errorf("sqlite: another append to this upload is under way: %w", domain.ErrStale)
	}
	defer f.release(id)
	p := f.partPath(id)
	if err := os.MkdirAll(filepath.Dir(p), 0o700); err != nil {
		return 0, fileErr(err)
	}
	flag := os.O_RDWR
	if offset == 0 {
		flag |= os.O_CREATE // only a first append starts an upload
	}
	file, err := os.OpenFile(p, flag, 0o600)
	if errors.Is(err, fs.ErrNotExist) {
		return 0, fmt.Errorf("sqlite: no upload to resume at %d: %w", offset, domain.ErrStale)
	}
	if err != nil {
		return 0, fileErr(err)
	}
	defer file.Close()
	st, err := file.Stat()
	if err != nil {
		return 0, fileErr(err)
	}
	if st.Size() != offset {
		return st.Size(), fmt.Errorf("sqlite: upload holds %d bytes, not %d: %w", st.Size(), offset, domain.ErrStale)
	}
	if _, err := file.Seek(offset, io.SeekStart); err != nil {
		return offset, fileErr(err)
	}
	n, copyErr := io.Copy(file, r)
	// What arrived is kept (and made durable) even when the client dropped:
	// the next request resumes after it.
	if err := file.Sync(); err != nil {
		return offset, fileErr(err)
	}
	_ = os.Chtimes(p, now, now)
	if copyErr != nil {
		var pe *fs.PathError
		if errors.As(copyErr, &pe) {
			return offset + n, fileErr(copyErr)
		}
		return offset + n, copyErr
	}
	return offset + n, nil
}

func (f *fileBlobs) commit(id, sum string, size int64, now time.Time) error {
	f.claimWait(id)
	defer f.release(id)
	p := f.partPath(id)
	file, err := os.Open(p)
	if errors.Is(err, fs.ErrNotExist) {
		return domain.ErrNotFound
	}
	if err != nil {
		return fileErr(err)
	}
	h := sha256.New()
	n, err := io.Copy(h, file)
	file.Close()
	if err != nil {
		return fileErr(err)
	}
	got := hex.EncodeToString(h.Sum(nil))
	if got != sum || n != size {
		_ = os.Remove(p)
		return &domain.MismatchError{SHA256: got, Size: n}
	}
	dst, err := f.blobPath(sum)
	if err != nil {
		return err
	}
	f.blobMu.Lock()
	defer f.blobMu.Unlock()
	if _, err := os.Stat(dst); err == nil {
		// Held already: keep that copy, mark it freshly committed so the
		// collector leaves it to the link about to be written.
		_ = os.Chtimes(dst, now, now)
		return fileErr(os.Remove(p))
	}
	if err := os.MkdirAll(filepath.Dir(dst), 0o700); err != nil {
		return fileErr(err)
	}
	_ = os.Chtimes(p, now, now)
	if err := os.Rename(p, dst); err != nil {
		return fileErr(err)
	}
	return fileErr(syncDir(filepath.Dir(dst)))
}

// syncDir makes a rename into dir durable.
func syncDir(dir string) error {
	d, err := os.Open(dir)
	if err != nil {
		return err
	}
	defer d.Close()
	if err := d.Sync(); err != nil && !errors.Is(err, os.ErrInvalid) {
		return err
	}
	return nil
}

func (f *fileBlobs) remove(id string) error {
	err := os.Remove(f.partPath(id))
	if errors.Is(err, fs.ErrNotExist) {
		return nil
	}
	return fileErr(err)
}

func (f *fileBlobs) expire(before time.Time) (int, error) {
	entries, err := os.ReadDir(filepath.Join(f.dir, "uploads"))
	if errors.Is(err, fs.ErrNotExist) {
		return 0, nil
	}
	if err != nil {
		return 0, fileErr(err)
	}
	n := 0
	for _, e := range entries {
		info, err := e.Info()
		if err != nil || !info.ModTime().Before(before) {
			continue
		}
		if os.Remove(filepath.Join(f.dir, "uploads", e.Name())) == nil {
			n++
		}
	}
	return n, nil
}

// fileBlob is an open blob file.
type fileBlob struct {
	*os.File
	size int64
}

func (b fileBlob) Size() int64 { return b.size }

func (f *fileBlobs) open(sum string) (domain.Blob, error) {
	p, err := f.blobPath(sum)
	if err != nil {
		return nil, err
	}
	file, err := os.Open(p)
	if errors.Is(err, fs.ErrNotExist) {
		return nil, domain.ErrNotFound
	}
	if err != nil {
		return nil, fileErr(err)
	}
	st, err := file.Stat()
	if err != nil {
		file.Close()
		return nil, fileErr(err)
	}
	return fileBlob{file, st.Size()}, nil
}

func (f *fileBlobs) has(sum string) bool {
	p, err := f.blobPath(sum)
	if err != nil {
		return false
	}
	_, err = os.Stat(p)
	return err == nil
}

// collect removes the blobs older than before for which referenced says no.
func (f *fileBlobs) collect(before time.Time, referenced func(sum string) (bool, error)) (int, error) {
	root := filepath.Join(f.dir, "blobs")
	n := 0
	err := filepath.WalkDir(root, func(p string, d fs.DirEntry, err error) error {
		if errors.Is(err, fs.ErrNotExist) {
			return nil
		}
		if err != nil || d.IsDir() {
			return err
		}
		info, err := d.Info()
		if err != nil || !info.ModTime().Before(before) {
			return nil
		}
		ref, err := referenced(d.Name())
		if err != nil || ref {
			return err
		}
		f.blobMu.Lock()
		defer f.blobMu.Unlock()
		// Look again under the lock: a commit may have reused it meanwhile.
		if info, err := os.Stat(p); err == nil && info.ModTime().Before(before) && os.Remove(p) == nil {
			n++
		}
		return nil
	})
	return n, fileErr(err)
}

// fileErr reports a failing disk as ErrUnavailable: the write was not
// acknowledged and the client may retry later.
func fileErr(err error) error {
	if err == nil {
		return nil
	}
	return fmt.Errorf("sqlite: attachment files: %w: %s", domain.ErrUnavailable, err.Error())
}

func (f *fileBlobs) count() (int, error) {
	n := 0
	err := filepath.WalkDir(filepath.Join(f.dir, "blobs"), func(p string, d fs.DirEntry, err error) error {
		if errors.Is(err, fs.ErrNotExist) {
			return nil
		}
		if err == nil && !d.IsDir() {
			n++
		}
		return err
	})
	return n, fileErr(err)
}
