package domain

import (
	"fmt"
	"io"
	"time"
)

// AttachmentLink says that a record holds the bytes of one of its files: the
// bytes of SHA256 were uploaded for (ProjectID, RecordID, Name). A declared
// attachment is present when a link of its name has its sha256.
type AttachmentLink struct {
	ProjectID   string
	RecordID    string
	Name        string
	SHA256      string
	Size        int64
	ContentType string
	CreatedAt   time.Time
}

// Blob is stored attachment bytes opened for reading, seekable so that a
// download can serve a range.
type Blob interface {
	io.ReadSeekCloser
	// Size is the length of the bytes.
	Size() int64
}

// MismatchError is returned when uploaded bytes are not the file that was
// declared: it carries what arrived (the declared values are the caller's).
type MismatchError struct {
	SHA256 string // of the bytes that arrived
	Size   int64  // how many arrived
}

func (e *MismatchError) Error() string {
	return fmt.Sprintf("uploaded bytes do not match the declaration: %d bytes with sha256 %s arrived", e.Size, e.SHA256)
}
