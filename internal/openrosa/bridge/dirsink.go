package bridge

import (
	"context"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"regexp"

	"github.com/fieldsync/fieldsync/internal/domain"
)

// DirSink is the AttachmentSink of a server without the media service: it
// holds each file under Dir/<project>/<record>/<sha256> (the name is not
// trusted as a path), written to a temporary file and renamed, so a file is
// either whole or absent. See AttachmentSink's TODO.
type DirSink struct {
	Dir string
}

var safeSegment = regexp.MustCompile(`^[A-Za-z0-9][A-Za-z0-9_.-]{0,127}$`)

// PutAttachment implements AttachmentSink.
func (d DirSink) PutAttachment(ctx context.Context, projectID, recordID string, a domain.Attachment, body io.Reader) error {
	if !safeSegment.MatchString(projectID) || !safeSegment.MatchString(recordID) || !safeSegment.MatchString(a.SHA256) {
		return fmt.Errorf("bridge: DirSink: unsafe path segment")
	}
	dir := filepath.Join(d.Dir, projectID, recordID)
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return err
	}
	final := filepath.Join(dir, a.SHA256)
	if _, err := os.Stat(final); err == nil {
		return nil
	}
	tmp, err := os.CreateTemp(dir, ".part-*")
	if err != nil {
		return err
	}
	defer os.Remove(tmp.Name())
	if _, err := io.Copy(tmp, body); err != nil {
		tmp.Close()
		return err
	}
	if err := tmp.Sync(); err != nil {
		tmp.Close()
		return err
	}
	if err := tmp.Close(); err != nil {
		return err
	}
	return os.Rename(tmp.Name(), final)
}
