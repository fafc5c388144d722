package api

import (
	"context"
	"net/http"
	"time"
)

// MaxCommentChars bounds the text of a review comment (a longer one is a
// *Problem with Status 422 and Code "invalid_comment", or "invalid_patch" in
// a PATCH).
const MaxCommentChars = 4000

// Comment is one entry of a record's review thread: a comment, a change of the
// record's review state, or both at once. A state change made without a
// comment (a PATCH with review_state only, or the server flagging a record)
// is an entry with an empty Text.
type Comment struct {
	// ID orders the thread; it is unique within the record.
	ID        string    `json:"id"`
	Author    string    `json:"author"`
	CreatedAt time.Time `json:"created_at"`
	Text      string    `json:"text"`
	// ReviewState is the record's review state once the entry was made.
	ReviewState string `json:"review_state"`
	// PreviousState is the state before, when the entry changed it; absent
	// when the entry is a comment that left the state as it was.
	PreviousState string `json:"previous_state,omitempty"`
}

// CommentList answers GET /v1/projects/{project}/records/{id}/comments: one
// page of the thread, oldest first; Next is the cursor of the following page,
// "" on the last one.
type CommentList struct {
	Items []Comment `json:"items"`
	Next  string    `json:"next,omitempty"`
}

// CommentRequest is the body of POST /v1/projects/{project}/records/{id}/comments:
// the comment, and optionally the review state the record takes with it.
type CommentRequest struct {
	Text        string  `json:"text"`
	ReviewState *string `json:"review_state,omitempty"`
}

// ListComments calls GET /v1/projects/{project}/records/{id}/comments: one
// page of the record's review thread, oldest first.
func (c *Client) ListComments(ctx context.Context, project, id string, p Page) (CommentList, error) {
	var out CommentList
	err := c.Do(ctx, http.MethodGet, p.withPage(recordPath(project, id)+"/comments"), nil, &out)
	return out, err
}

// AddComment calls POST /v1/projects/{project}/records/{id}/comments and
// returns the new entry of the thread.
func (c *Client) AddComment(ctx context.Context, project, id string, req CommentRequest) (Comment, error) {
	var out Comment
	err := c.Do(ctx, http.MethodPost, recordPath(project, id)+"/comments", req, &out)
	return out, err
}
