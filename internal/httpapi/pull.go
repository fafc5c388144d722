package httpapi

import (
	"net/http"
	"slices"

	"github.com/fieldsync/fieldsync/internal/domain"
	"github.com/fieldsync/fieldsync/internal/records"
)

// handlePull is GET /v1/projects/{project}/sync/pull?since=&limit=. It is the
// hottest answer of the server: the page is read with one store call and
// written by a pageStream (recordjson.go), chunk by chunk (pageStream.page).
func (s *Server) handlePull(w http.ResponseWriter, r *http.Request) error {
	limit, err := queryLimit(r)
	if err != nil {
		return err
	}
	page, err := s.records.Pull(r.Context(), caller(r), pathVar(r, "project"), r.URL.Query().Get("since"), limit, "")
	if err != nil {
		return err
	}
	s.deviceSynced(r)
	ps := newPageStream(w, `{"changes":[`)
	ps.names = page.DeviceNames
	defer ps.release()
	if ps.present, err = s.records.Presence(r.Context(), pathVar(r, "project"), page.Records); err != nil {
		return err
	}
	if err := ps.page(page.Records); err != nil {
		return err
	}
	return ps.finish(pullTail(page.Next, page.More))
}

// handleFormRecords is GET /v1/projects/{project}/forms/{form}/records: one
// form's records in receive order (records.Service.FormRecords), oldest first
// or, with order=desc, newest first (records.ParseOrder), with the dataset
// filters of parseRecordQuery, and next only when more records follow.
func (s *Server) handleFormRecords(w http.ResponseWriter, r *http.Request) error {
	q, err := parseRecordQuery(r, "cursor", "limit", "order")
	if err != nil {
		return err
	}
	if q.Descending, err = records.ParseOrder(r.URL.Query().Get("order")); err != nil {
		return err
	}
	limit, err := queryLimit(r)
	if err != nil {
		return err
	}
	page, err := s.records.FormRecords(r.Context(), q, r.URL.Query().Get("cursor"), limit)
	if err != nil {
		return err
	}
	ps := newPageStream(w, `{"records":[`)
	ps.names = page.DeviceNames
	defer ps.release()
	if ps.present, err = s.records.Presence(r.Context(), pathVar(r, "project"), page.Records); err != nil {
		return err
	}
	if err := ps.page(page.Records); err != nil {
		return err
	}
	return ps.finish(recordPageTail(page.Next))
}

// page encodes and sends a page's records pullChunk at a time, so that the
// encoding buffer stays small and the client receives the first records
// while the rest are encoded.
//
// The page itself is one store read (records.Service.Pull): each record at
// most once, in one state. Reading it in chunks while sending, as the feeds
// did, let a record updated between two chunk reads appear twice in a page;
// and a read kept open until the page is sent would hold the store's read
// snapshot for as long as a slow 2G client takes to receive it.
func (p *pageStream) page(recs []domain.Record) error {
	for c := range slices.Chunk(recs, pullChunk) {
		if err := p.records(c); err != nil {
			return err
		}
	}
	return nil
}
