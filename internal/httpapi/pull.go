package httpapi

import (
	"net/http"

	"github.com/fieldsync/fieldsync/api"
)

// handlePull is GET /v1/projects/{project}/sync/pull?since=&limit=.
func (s *Server) handlePull(w http.ResponseWriter, r *http.Request) error {
	limit, err := queryLimit(r)
	if err != nil {
		return err
	}
	page, err := s.records.Pull(r.Context(), caller(r), pathVar(r, "project"), r.URL.Query().Get("since"), limit, "")
	if err != nil {
		return err
	}
	out := api.PullResponse{Changes: make([]api.Record, len(page.Records)), Next: page.Next, More: page.More}
	for i, rec := range page.Records {
		out.Changes[i] = apiRecord(rec)
	}
	return writeJSON(w, http.StatusOK, out)
}

// handleFormRecords is GET /v1/projects/{project}/forms/{form}/records: the
// feed of one form, with next only when more records follow.
func (s *Server) handleFormRecords(w http.ResponseWriter, r *http.Request) error {
	limit, err := queryLimit(r)
	if err != nil {
		return err
	}
	page, err := s.records.Pull(r.Context(), caller(r), pathVar(r, "project"), r.URL.Query().Get("cursor"), limit, pathVar(r, "form"))
	if err != nil {
		return err
	}
	out := api.RecordPage{Records: make([]api.Record, len(page.Records))}
	for i, rec := range page.Records {
		out.Records[i] = apiRecord(rec)
	}
	if page.More {
		out.Next = page.Next
	}
	return writeJSON(w, http.StatusOK, out)
}
