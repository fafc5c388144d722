package records

import (
	"context"
	"encoding/base64"
	"encoding/binary"
	"errors"
	"fmt"
	"slices"

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
	// DeviceNames names the tablets of the page's records by id, for a
	// person's pull (nil for a tablet's: see DeviceNames).
	DeviceNames map[string]string
}

// Pull returns the changes visible to the caller after the cursor, in commit
// order, each record in its current state (tombstones included). A page is
// one store read, so it holds each record at most once and in one state,
// however many writers there are: a caller that streams a page (the HTTP
// feeds) reads it whole first, rather than in chunks that each see another
// state of the feed. formID
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
	names, err := s.DeviceNames(ctx, c, projectID, p.Records)
	if err != nil {
		return Page{}, err
	}
	return Page{Records: p.Records, Next: EncodeCursor(p.Next), More: p.More, DeviceNames: names}, nil
}

// deviceLookups is how many distinct tablets DeviceNames looks up one by one;
// for more it reads the project's device list once.
const deviceLookups = 2

// DeviceNames returns the names of the tablets that last wrote recs (their
// DeviceID), keyed by id, so that people see "tablet 7 (Juba north)" and not
// only an id. It costs at most one store read per call, made only when a
// record names a tablet. A tablet's call gets nil: the app keys tablets by
// id, and the tablets' pulls are the hottest path of the server.
func (s *Service) DeviceNames(ctx context.Context, c Caller, projectID string, recs []domain.Record) (map[string]string, error) {
	if c.Principal.DeviceID != "" {
		return nil, nil
	}
	var ids []string
	for i := range recs {
		if id := recs[i].DeviceID; id != "" && !slices.Contains(ids, id) {
			ids = append(ids, id)
			if len(ids) > deviceLookups {
				break
			}
		}
	}
	if len(ids) == 0 {
		return nil, nil
	}
	names := make(map[string]string, len(ids))
	if len(ids) <= deviceLookups {
		for _, id := range ids {
			d, err := s.store.GetDevice(ctx, id)
			switch {
			case err == nil:
				if d.ProjectID == projectID {
					names[id] = d.Name
				}
			case !errors.Is(err, domain.ErrNotFound):
				return nil, err
			}
		}
		return names, nil
	}
	devs, err := s.store.ListDevices(ctx, projectID)
	if err != nil {
		return nil, err
	}
	for _, d := range devs {
		names[d.ID] = d.Name
	}
	return names, nil
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
