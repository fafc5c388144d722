package api

import (
	"context"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"strconv"
	"time"
)

// Export headers: the receive-time bound an export applied (the next
// incremental export's since), and the trailer that counts its records.
const (
	ExportUntilHeader   = "Fieldsync-Until"
	ExportRecordsHeader = "Fieldsync-Records"
)

// ExportQuery selects and shapes an export (GET …/forms/{form}/export).
type ExportQuery struct {
	// Format is csv (the default), csv.zip, xlsx, ndjson or geojson.
	Format string
	// Since and Until bound the time the server first received a record
	// (Since inclusive, Until exclusive); zero is no bound.
	Since, Until time.Time
	// ReviewStates, Versions and Devices keep only the records with one of
	// the values; empty keeps all.
	ReviewStates, Versions, Devices []string
	// Labels writes choice labels instead of codes; BOM starts csv files
	// with the UTF-8 byte order mark (for Excel).
	Labels, BOM bool
}

// ExportInfo is what an export's answer says besides its bytes.
type ExportInfo struct {
	// Until is the receive-time bound the server applied: pass it as Since
	// next time to export only the records received since.
	Until time.Time
	// Records is how many records the export holds (-1 when the server did
	// not say).
	Records int64
	// Bytes is how many bytes were copied to the writer.
	Bytes int64
}

// Values is the query string of q.
func (q ExportQuery) Values() url.Values {
	v := url.Values{}
	if q.Format != "" {
		v.Set("format", q.Format)
	}
	if !q.Since.IsZero() {
		v.Set("since", q.Since.UTC().Format(time.RFC3339Nano))
	}
	if !q.Until.IsZero() {
		v.Set("until", q.Until.UTC().Format(time.RFC3339Nano))
	}
	for _, s := range q.ReviewStates {
		v.Add("review_state", s)
	}
	for _, s := range q.Versions {
		v.Add("version", s)
	}
	for _, s := range q.Devices {
		v.Add("device", s)
	}
	if q.Labels {
		v.Set("labels", "true")
	}
	if q.BOM {
		v.Set("bom", "true")
	}
	return v
}

// Export calls GET /v1/projects/{project}/forms/{form}/export and copies the
// dataset to w as it arrives. An answer outside 2xx is a *Problem, as for Do;
// an export the server cut half-way is an error of the copy (the server
// aborts the connection rather than end a truncated file cleanly).
func (c *Client) Export(ctx context.Context, project, form string, q ExportQuery, w io.Writer) (ExportInfo, error) {
	path := "/v1/projects/" + url.PathEscape(project) + "/forms/" + url.PathEscape(form) + "/export?" + q.Values().Encode()
	req, err := c.newRequest(ctx, http.MethodGet, path, nil)
	if err != nil {
		return ExportInfo{}, err
	}
	req.Header.Set("Accept", "*/*")
	resp, err := c.hc.Do(req)
	if err != nil {
		return ExportInfo{}, err
	}
	defer resp.Body.Close()
	if resp.StatusCode < 200 || resp.StatusCode > 299 {
		return ExportInfo{}, readProblem(resp)
	}
	info := ExportInfo{Records: -1}
	info.Until, _ = time.Parse(time.RFC3339Nano, resp.Header.Get(ExportUntilHeader))
	info.Bytes, err = io.Copy(w, resp.Body)
	if err != nil {
		return info, fmt.Errorf("api: export cut after %d bytes: %w", info.Bytes, err)
	}
	if n, err := strconv.ParseInt(resp.Trailer.Get(ExportRecordsHeader), 10, 64); err == nil {
		info.Records = n
	}
	return info, nil
}
