package records

import (
	"context"
	"encoding/base64"
	"encoding/binary"
	"errors"
	"fmt"

	"github.com/fieldsync/fieldsync/internal/domain"
)

// Cursor encoding: opaque to clients; "c1" then the feed position, base64url.
// The version prefix lets the encoding change without breaking stored cursors.

// EncodeCursor makes the opaque cursor of a feed position.
func EncodeCursor(seq int64) string {
	var b [10]byte
	b[0], b[1] = 'c', '1'
	binary.BigEndian.PutUint64(b[2:], uint64(seq))
	return base64.RawURLEncoding.EncodeToString(b[:])
}

// DecodeCursor reads a cursor made by EncodeCursor; "" is the start of the feed.
func DecodeCursor(s string) (int64, error) {
	if s == "" {
		return 0, nil
	}
	b, err := base64.RawURLEncoding.DecodeString(s)
	if err != nil || len(b) != 10 || b[0] != 'c' || b[1] != '1' || b[2]&0x80 != 0 {
		return 0, &domain.Error{Kind: domain.KindBadRequest, Code: "invalid_cursor", Title: "The cursor is not one this server handed out",
			Detail: "pass the value of \"next\" from the previous page, or no cursor to start from the beginning"}
	}
	return int64(binary.BigEndian.Uint64(b[2:])), nil
}

// Page is one page of a pull.
type Page struct {
	Records []domain.Record
	Next    string
	More    bool
}

// Pull returns the changes visible to the caller after the cursor, in commit
// order, each record in its current state (tombstones included). formID
// restricts the page to one form ("" for all); an unknown form answers 404
// form_not_found. A cursor this server did not make answers 400
// invalid_cursor, a limit outside 1..MaxPullLimit 400 invalid_limit (0 means
// DefaultPullLimit).
func (s *Service) Pull(ctx context.Context, c Caller, projectID, cursor string, limit int, formID string) (Page, error) {
	since, limit, err := s.pullArgs(ctx, projectID, cursor, limit, formID)
	if err != nil {
		return Page{}, err
	}
	p, err := s.store.Changes(ctx, domain.ChangesQuery{ProjectID: projectID, Since: since, Limit: limit, Subjects: c.subjects(), FormID: formID})
	if err != nil {
		return Page{}, err
	}
	return Page{Records: p.Records, Next: EncodeCursor(p.Next), More: p.More}, nil
}

// PullChunked is Pull for a caller that handles the page while it is read, to
// overlap reading the store with encoding and sending (the HTTP feeds). The
// page is read in chunks of chunk records (chunk <= 0: in one go), each one
// from where the one before ended, exactly as a client pulling pages of that
// size would read them, so the feed's guarantee holds for the page as a
// whole. emit gets the chunks in order, in the calling goroutine, while the
// next chunk is being read. PullChunked returns the page's cursor and more
// after the last chunk.
//
// The errors of the arguments (as Pull's) come before any emit. A store error,
// or an error of emit, stops the reading and is returned; chunks emitted before
// it stay emitted.
func (s *Service) PullChunked(ctx context.Context, c Caller, projectID, cursor string, limit int, formID string, chunk int,
	emit func([]domain.Record) error) (next string, more bool, err error) {
	since, limit, err := s.pullArgs(ctx, projectID, cursor, limit, formID)
	if err != nil {
		return "", false, err
	}
	if chunk <= 0 {
		chunk = limit
	}
	type result struct {
		page domain.ChangesPage
		err  error
	}
	ctx, cancel := context.WithCancel(ctx)
	pages := make(chan result, 1)
	defer func() {
		// The reader stops at its next step; wait for it, so no store call
		// outlives the request.
		cancel()
		for range pages {
		}
	}()
	go func() {
		defer close(pages)
		q := domain.ChangesQuery{ProjectID: projectID, Since: since, Subjects: c.subjects(), FormID: formID}
		for left := limit; left > 0; {
			q.Limit = min(chunk, left)
			p, err := s.store.Changes(ctx, q)
			select {
			case pages <- result{p, err}:
			case <-ctx.Done():
				return
			}
			// A chunk that is not full ends the visible feed (its Next is past
			// everything the store examined); More false ends it too.
			if err != nil || len(p.Records) < q.Limit || !p.More {
				return
			}
			left -= len(p.Records)
			q.Since = p.Next
		}
	}()
	last := domain.ChangesPage{Next: since}
	for res := range pages {
		if res.err != nil {
			return "", false, res.err
		}
		if err := emit(res.page.Records); err != nil {
			return "", false, err
		}
		last = res.page
	}
	if err := ctx.Err(); err != nil {
		// The request ended (only the deferred cancel is ours): the reader may
		// have stopped early.
		return "", false, err
	}
	return EncodeCursor(last.Next), last.More, nil
}

// pullArgs checks Pull's arguments: the position of the cursor, the limit to
// use, and the form when one is named.
func (s *Service) pullArgs(ctx context.Context, projectID, cursor string, limit int, formID string) (int64, int, error) {
	since, err := DecodeCursor(cursor)
	if err != nil {
		return 0, 0, err
	}
	if limit == 0 {
		limit = DefaultPullLimit
	}
	if limit < 1 || limit > MaxPullLimit {
		return 0, 0, &domain.Error{Kind: domain.KindBadRequest, Code: "invalid_limit", Title: fmt.Sprintf("limit must be between 1 and %d", MaxPullLimit)}
	}
	if formID != "" {
		if _, err := s.store.GetForm(ctx, projectID, formID); errors.Is(err, domain.ErrNotFound) {
			return 0, 0, &domain.Error{Kind: domain.KindNotFound, Code: "form_not_found", Title: "No such form in this project", Detail: fmt.Sprintf("form %q", formID)}
		} else if err != nil {
			return 0, 0, err
		}
	}
	return since, limit, nil
}
