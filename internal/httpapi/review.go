package httpapi

import (
	"net/http"

	"github.com/fieldsync/fieldsync/api"
	"github.com/fieldsync/fieldsync/internal/domain"
	"github.com/fieldsync/fieldsync/internal/records"
)

// auditCaller is caller with the client's address, for the routes whose
// changes go to the audit log.
func (s *Server) auditCaller(r *http.Request) records.Caller {
	c := caller(r)
	c.RemoteAddr = s.clientIP(r)
	return c
}

// namedRecord is apiRecord with the name of the record's tablet, for people
// (records.Service.DeviceNames).
func (s *Server) namedRecord(r *http.Request, rec domain.Record) (api.Record, error) {
	out := apiRecord(rec)
	names, err := s.records.DeviceNames(r.Context(), caller(r), pathVar(r, "project"), []domain.Record{rec})
	if err != nil {
		return api.Record{}, err
	}
	out.DeviceName = names[rec.DeviceID]
	return out, nil
}

// writeRecord answers a written record (200) with its rev as the ETag.
func (s *Server) writeRecord(w http.ResponseWriter, r *http.Request, rec domain.Record) error {
	out, err := s.namedRecord(r, rec)
	if err != nil {
		return err
	}
	w.Header().Set("ETag", quoteETag(rec.Rev))
	return writeJSON(w, http.StatusOK, out)
}

// handleListComments is GET /v1/projects/{project}/records/{id}/comments?cursor=&limit=:
// the record's review thread, oldest first.
func (s *Server) handleListComments(w http.ResponseWriter, r *http.Request) error {
	limit, err := queryLimit(r)
	if err != nil {
		return err
	}
	entries, next, err := s.records.Comments(r.Context(), caller(r), pathVar(r, "project"), pathVar(r, "id"), r.URL.Query().Get("cursor"), limit)
	if err != nil {
		return err
	}
	out := api.CommentList{Items: make([]api.Comment, len(entries)), Next: next}
	for i, e := range entries {
		out.Items[i] = apiComment(e)
	}
	return writeJSON(w, http.StatusOK, out)
}

// handleAddComment is POST /v1/projects/{project}/records/{id}/comments: a
// comment, and optionally a new review state; 201 with the thread's new entry.
func (s *Server) handleAddComment(w http.ResponseWriter, r *http.Request) error {
	var body api.CommentRequest
	if err := decodeJSON(r, &body); err != nil {
		return err
	}
	e, err := s.records.AddComment(r.Context(), s.auditCaller(r), pathVar(r, "project"), pathVar(r, "id"), body.Text, body.ReviewState)
	if err != nil {
		return err
	}
	return writeJSON(w, http.StatusCreated, apiComment(e))
}

func apiComment(e domain.ReviewEntry) api.Comment {
	return api.Comment{ID: e.ID, Author: e.Author, CreatedAt: e.CreatedAt, Text: e.Text, ReviewState: e.ReviewState, PreviousState: e.PreviousState}
}
