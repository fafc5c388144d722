package httpapi

import (
	"net/http"
)

// handlePull is GET /v1/projects/{project}/sync/pull?since=&limit=. The page is
// read from the store in chunks and written by a pageStream (recordjson.go)
// while the next chunk is read: it is the hottest answer of the server.
func (s *Server) handlePull(w http.ResponseWriter, r *http.Request) error {
	limit, err := queryLimit(r)
	if err != nil {
		return err
	}
	ps := newPageStream(w, `{"changes":[`)
	defer ps.release()
	next, more, err := s.records.PullChunked(r.Context(), caller(r), pathVar(r, "project"), r.URL.Query().Get("since"), limit, "",
		pullChunk, ps.records)
	if err != nil {
		return err
	}
	return ps.finish(pullTail(next, more))
}

// handleFormRecords is GET /v1/projects/{project}/forms/{form}/records: the
// feed of one form, with next only when more records follow.
func (s *Server) handleFormRecords(w http.ResponseWriter, r *http.Request) error {
	limit, err := queryLimit(r)
	if err != nil {
		return err
	}
	ps := newPageStream(w, `{"records":[`)
	defer ps.release()
	next, more, err := s.records.PullChunked(r.Context(), caller(r), pathVar(r, "project"), r.URL.Query().Get("cursor"), limit,
		pathVar(r, "form"), pullChunk, ps.records)
	if err != nil {
		return err
	}
	if !more {
		next = ""
	}
	return ps.finish(recordPageTail(next))
}
