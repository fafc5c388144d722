package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net/http"
	"os"
	"path/filepath"

	"github.com/fieldsync/fieldsync/api"
)

// Attachments of fsctl push (issue 13): after the records, the files they
// declare and the server does not hold yet, from a folder beside the NDJSON
// (--files): DIR/<record id>/<name> when it exists, else DIR/<name>.

// pendingFile is one declared file the server asked for.
type pendingFile struct {
	line     int
	recordID string
	name     string
	path     string
	size     int64
}

// findFile looks for a record's file in dir.
func findFile(dir, recordID, name string) (string, int64, error) {
	var firstErr error
	for _, p := range []string{filepath.Join(dir, recordID, name), filepath.Join(dir, name)} {
		fi, err := os.Stat(p)
		if err == nil && fi.Mode().IsRegular() {
			return p, fi.Size(), nil
		}
		if firstErr == nil {
			firstErr = err
		}
	}
	return "", 0, firstErr
}

// uploadRetryable is retryable for uploads, which also resume after an
// answer that says the request broke off or raced another: the server kept
// what arrived, and HEAD says where to go on.
func uploadRetryable(err error, attempt int) bool {
	if _, ok := retryable(err, attempt); ok {
		return true
	}
	var p *api.Problem
	if errors.As(err, &p) {
		return p.Code == "offset_mismatch" || p.Code == api.CodeBodyTooSlow || p.Status == 499
	}
	return err != nil && !errors.Is(err, context.Canceled) && !errors.Is(err, context.DeadlineExceeded) && !permanentNetError(err)
}

// uploadFiles sends the files, each resumed from the offset the server
// holds; it returns how many could not be sent.
func uploadFiles(ctx context.Context, e *env, s *session, project string, files []pendingFile) (failed int, err error) {
	var total int64
	for _, f := range files {
		total += f.size
	}
	bar := e.newProgress(total, "uploading files", "bytes", true)
	defer bar.done()
	for _, f := range files {
		if err := uploadFile(ctx, e, s, project, f, bar); err != nil {
			if ctx.Err() != nil {
				return failed, ctx.Err()
			}
			bar.clear()
			fmt.Fprintf(e.stderr, "line %d: %s: file %q not uploaded: %s\n", f.line, f.recordID, f.name, e.describe(err))
			failed++
		}
	}
	return failed, nil
}

// countingReader tells the bar of each byte read.
type countingReader struct {
	r   io.Reader
	bar *progress
}

func (c *countingReader) Read(p []byte) (int, error) {
	n, err := c.r.Read(p)
	c.bar.add(n)
	return n, err
}

// uploadFile sends one file: HEAD, then the rest in one PATCH; after a
// failure worth another try, the same again from the server's offset.
func uploadFile(ctx context.Context, e *env, s *session, project string, f pendingFile, bar *progress) error {
	file, err := os.Open(f.path)
	if err != nil {
		return err
	}
	defer file.Close()
	counted := int64(0) // bytes the bar was told of, so a resume does not count twice
	for attempt := 1; ; attempt++ {
		err := s.do(ctx, func(c *api.Client) error {
			off, length, err := c.AttachmentOffset(ctx, project, f.recordID, f.name)
			if err != nil {
				return err
			}
			if length != f.size {
				return fmt.Errorf("the record declares %d bytes, the file %s has %d", length, f.path, f.size)
			}
			if off > counted {
				bar.add(int(off - counted))
				counted = off
			}
			if off == length {
				return nil
			}
			body := &countingReader{r: io.NewSectionReader(file, off, length-off), bar: bar}
			_, err = c.AppendAttachment(ctx, project, f.recordID, f.name, off, body)
			return err
		})
		if err == nil {
			bar.add(int(f.size - counted))
			return nil
		}
		if !uploadRetryable(err, attempt) || attempt == maxAttempts || ctx.Err() != nil {
			return err
		}
		wait, _ := retryable(&api.Problem{Status: http.StatusServiceUnavailable}, attempt)
		bar.clear()
		fmt.Fprintf(e.stderr, "fsctl push: uploading %q of %s: %s; resuming in %s\n", f.name, f.recordID, e.describe(err), wait)
		if err := e.wait(ctx, wait); err != nil {
			return err
		}
	}
}
