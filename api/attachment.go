package api

import (
	"context"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"strconv"
)

// Attachments over links that drop: the tus 1.0 core methods of the
// attachment route (protocol.md §3 "Attachments"). The upload URL is the
// route itself, known in advance; the declared size is its length.

// AttachmentPath is the route of a record's file.
func AttachmentPath(project, recordID, name string) string {
	return "/v1/projects/" + url.PathEscape(project) + "/records/" + url.PathEscape(recordID) + "/attachments/" + url.PathEscape(name)
}

// TusVersion is the tus protocol version the server speaks.
const TusVersion = "1.0.0"

// AttachmentOffset asks how many bytes of a declared file the server holds
// (tus HEAD), and the declared length. offset == length: the file is stored.
func (c *Client) AttachmentOffset(ctx context.Context, project, recordID, name string) (offset, length int64, err error) {
	h := http.Header{"Tus-Resumable": {TusVersion}}
	_, rh, err := c.Exchange(ctx, http.MethodHead, AttachmentPath(project, recordID, name), h, nil, nil)
	if err != nil {
		return 0, 0, err
	}
	if offset, err = strconv.ParseInt(rh.Get("Upload-Offset"), 10, 64); err != nil {
		return 0, 0, fmt.Errorf("api: HEAD of an attachment: bad Upload-Offset %q", rh.Get("Upload-Offset"))
	}
	if length, err = strconv.ParseInt(rh.Get("Upload-Length"), 10, 64); err != nil {
		return 0, 0, fmt.Errorf("api: HEAD of an attachment: bad Upload-Length %q", rh.Get("Upload-Length"))
	}
	return offset, length, nil
}

// AppendAttachment sends body from offset (tus PATCH) and returns the
// server's offset after it. When the connection drops, ask AttachmentOffset
// where to resume: the bytes that arrived are kept.
func (c *Client) AppendAttachment(ctx context.Context, project, recordID, name string, offset int64, body io.Reader) (int64, error) {
	h := http.Header{"Tus-Resumable": {TusVersion}, "Content-Type": {"application/offset+octet-stream"},
		"Upload-Offset": {strconv.FormatInt(offset, 10)}}
	_, rh, err := c.Exchange(ctx, http.MethodPatch, AttachmentPath(project, recordID, name), h, body, nil)
	if err != nil {
		return 0, err
	}
	return strconv.ParseInt(rh.Get("Upload-Offset"), 10, 64)
}
