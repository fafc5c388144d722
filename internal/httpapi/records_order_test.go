package httpapi

import (
	"encoding/json"
	"net/http"
	"net/url"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/google/uuid"

	"github.com/fieldsync/fieldsync/api"
)

// listingPages pages through the household records listing with query and
// page size limit, calling between(page) after each page but the last, and
// returns the records' ids in the order listed.
func listingPages(t *testing.T, e *exportEnv, query string, limit int, between func(page int)) []string {
	t.Helper()
	var got []string
	cursor := ""
	for page := range 1000 {
		var p api.RecordPage
		path := "/v1/projects/" + syncProject + "/forms/household/records?limit=" + strconv.Itoa(limit) + "&cursor=" + url.QueryEscape(cursor)
		if query != "" {
			path += "&" + query
		}
		e.ts.want(t, http.StatusOK, http.MethodGet, path, e.analyst, nil, &p)
		if len(p.Records) > limit {
			t.Fatalf("%s: a page of %d records for limit %d", query, len(p.Records), limit)
		}
		for _, r := range p.Records {
			got = append(got, r.ID)
		}
		if p.Next == "" {
			return got
		}
		if between != nil {
			between(page)
		}
		cursor = p.Next
	}
	t.Fatal("no end")
	return nil
}

// TestFormRecordsOrder: order=desc lists a form's records newest first, the
// exact reverse of the default order (records received together in
// descending id order), filters included, with every record exactly once
// while records are edited between pages; a cursor only continues the order
// it was handed out for; an unknown order is a 400 invalid_order.
func TestFormRecordsOrder(t *testing.T) {
	clock := &odataClock{t: time.Date(2026, 3, 1, 8, 0, 0, 0, time.UTC)}
	e := newExportEnv(t, "sqlite", withConfig(func(c *Config) { c.Now = clock.Now }))
	// Five pushes a minute apart, three records each: three records share
	// each receive time, so the id breaks ties.
	received := map[string]time.Time{}
	for b := range 5 {
		clock.Advance(time.Minute)
		var batch []any
		for i := range 3 {
			n := b*3 + i
			s := api.Submission{ID: uuid.NewString(), Form: "household", FormVersion: "1", ClientModifiedAt: clockBase, Data: json.RawMessage(householdData(n))}
			received[s.ID] = clock.Now()
			batch = append(batch, s)
		}
		e.push(t, e.devB.token, batch...)
	}
	asc := listingPages(t, e, "", 1000, nil)
	if len(asc) != 15 {
		t.Fatalf("%d records listed, want 15", len(asc))
	}
	for i := 1; i < len(asc); i++ {
		a, b := asc[i-1], asc[i]
		if received[a].After(received[b]) || (received[a].Equal(received[b]) && a > b) {
			t.Fatalf("ascending listing out of (received, id) order at %d: %v", i, asc)
		}
	}
	want := slices.Clone(asc)
	slices.Reverse(want)
	for _, limit := range []int{1, 2, 4, 1000} {
		if got := listingPages(t, e, "order=desc", limit, nil); !slices.Equal(got, want) {
			t.Errorf("order=desc, limit %d: %v, want the ascending order reversed %v", limit, got, want)
		}
		if got := listingPages(t, e, "order=asc", limit, nil); !slices.Equal(got, asc) {
			t.Errorf("order=asc, limit %d: %v, want the default order", limit, got)
		}
	}

	// Edits between pages (a review and a correction of records on both
	// sides of the cursor) move nothing: every record once, in order.
	state := api.ReviewApproved
	got := listingPages(t, e, "order=desc", 4, func(page int) {
		for _, id := range []string{want[page], want[len(want)-1-page]} {
			e.ts.want(t, http.StatusOK, http.MethodPatch, recordPath(id), e.analyst, api.RecordPatch{ReviewState: &state}, nil)
		}
	})
	if !slices.Equal(got, want) {
		t.Errorf("order=desc while editing: %v, want %v", got, want)
	}

	// Filters: the approved records (those edited above), newest first.
	var approvedAsc []string
	for _, id := range asc {
		if slices.Contains([]string{want[0], want[1], want[2], want[14], want[13], want[12]}, id) {
			approvedAsc = append(approvedAsc, id)
		}
	}
	approvedDesc := slices.Clone(approvedAsc)
	slices.Reverse(approvedDesc)
	if got := listingPages(t, e, "order=desc&review_state=approved", 2, nil); !slices.Equal(got, approvedDesc) {
		t.Errorf("approved, newest first: %v, want %v", got, approvedDesc)
	}
	since := url.QueryEscape(received[want[3]].Format(time.RFC3339Nano)) // the fourth push: the last two pushes
	if got := listingPages(t, e, "order=desc&since="+since, 4, nil); !slices.Equal(got, want[:6]) {
		t.Errorf("since, newest first: %v, want %v", got, want[:6])
	}

	// A cursor carries its order.
	path := "/v1/projects/" + syncProject + "/forms/household/records?limit=2"
	var ascPage, descPage api.RecordPage
	e.ts.want(t, http.StatusOK, http.MethodGet, path, e.analyst, nil, &ascPage)
	e.ts.want(t, http.StatusOK, http.MethodGet, path+"&order=desc", e.analyst, nil, &descPage)
	if ascPage.Next == "" || descPage.Next == "" {
		t.Fatal("no next cursor")
	}
	for _, tc := range []struct{ query, code string }{
		{"order=desc&cursor=" + url.QueryEscape(ascPage.Next), "invalid_cursor"},
		{"cursor=" + url.QueryEscape(descPage.Next), "invalid_cursor"},
		{"order=asc&cursor=" + url.QueryEscape(descPage.Next), "invalid_cursor"},
		{"order=newest", "invalid_order"},
		{"order=DESC", "invalid_order"},
		{"sort=desc", "unknown_parameter"},
	} {
		resp, body := e.ts.call(t, http.MethodGet, path+"&"+tc.query, e.analyst, nil)
		p := problemOf(t, resp, body, http.StatusBadRequest, tc.code)
		if tc.code == "invalid_cursor" && !strings.Contains(p.Detail, "order=") {
			t.Errorf("%s: the problem does not say which order the cursor is for: %+v", tc.query, p)
		}
	}
	var next api.RecordPage
	e.ts.want(t, http.StatusOK, http.MethodGet, path+"&order=desc&cursor="+url.QueryEscape(descPage.Next), e.analyst, nil, &next)
	if len(next.Records) != 2 || next.Records[0].ID != want[2] {
		t.Errorf("second page newest first: %+v, want %s first", next.Records, want[2])
	}
}
