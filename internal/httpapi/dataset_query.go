package httpapi

import (
	"fmt"
	"net/http"
	"slices"
	"sort"
	"strings"
	"time"

	"github.com/fieldsync/fieldsync/internal/domain"
)

// recordQueryParams are the query parameters that select records in the
// datasets' routes (the records listing and the export): protocol.md §3, §4.
var recordQueryParams = []string{"since", "until", "review_state", "version", "device"}

// parseRecordQuery reads the dataset filters of r's query into a RecordQuery of
// the route's project and form. A parameter outside recordQueryParams and the
// route's own (extra) answers 400 unknown_parameter: a misspelt filter
// ("review_sate=approved") would otherwise export every record without a word.
// Lists (review_state, version, device) may repeat the parameter or separate
// values with commas; since and until are RFC 3339 times or dates (midnight
// UTC). Malformed values answer 400 invalid_query.
func parseRecordQuery(r *http.Request, extra ...string) (domain.RecordQuery, error) {
	q := domain.RecordQuery{ProjectID: pathVar(r, "project"), FormID: pathVar(r, "form")}
	vals := r.URL.Query()
	names := make([]string, 0, len(vals))
	for k := range vals {
		names = append(names, k)
	}
	sort.Strings(names)
	for _, k := range names {
		if !slices.Contains(recordQueryParams, k) && !slices.Contains(extra, k) {
			allowed := append(slices.Clone(recordQueryParams), extra...)
			sort.Strings(allowed)
			return q, &domain.Error{Kind: domain.KindBadRequest, Code: "unknown_parameter", Title: "Unknown query parameter",
				Detail: fmt.Sprintf("%q is not a parameter of this route; it takes %s", k, strings.Join(allowed, ", "))}
		}
	}
	var err error
	if q.Since, err = recordQueryTime(vals.Get("since"), "since"); err != nil {
		return q, err
	}
	if q.Until, err = recordQueryTime(vals.Get("until"), "until"); err != nil {
		return q, err
	}
	q.ReviewStates = queryList(vals["review_state"])
	q.Versions = queryList(vals["version"])
	q.Devices = queryList(vals["device"])
	return q, nil
}

// recordQueryTime reads an RFC 3339 time or a date (2026-03-01, midnight UTC); ""
// is no bound.
func recordQueryTime(v, name string) (time.Time, error) {
	if v == "" {
		return time.Time{}, nil
	}
	for _, layout := range []string{time.RFC3339Nano, time.DateOnly} {
		if t, err := time.Parse(layout, v); err == nil {
			return t.UTC(), nil
		}
	}
	return time.Time{}, &domain.Error{Kind: domain.KindBadRequest, Code: "invalid_query", Title: name + " must be an RFC 3339 time or a date",
		Detail: fmt.Sprintf("%s=%q: write for example 2026-03-01T08:00:00Z or 2026-03-01", name, v)}
}

// queryList joins repeated and comma-separated values, dropping empty ones.
func queryList(vs []string) []string {
	var out []string
	for _, v := range vs {
		for _, p := range strings.Split(v, ",") {
			if p = strings.TrimSpace(p); p != "" && !slices.Contains(out, p) {
				out = append(out, p)
			}
		}
	}
	return out
}
