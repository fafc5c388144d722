package console_test

import (
	"cmp"
	"context"
	"fmt"
	"html"
	"net/http"
	"net/url"
	"regexp"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/fieldsync/fieldsync/api"
)

var (
	rowID    = regexp.MustCompile(`<tr data-id="([^"]+)"`)
	nextLink = regexp.MustCompile(`href="([^"]+)" id="next-page"`)
)

// tablePages follows the submissions table from path through its "Next page"
// links, calling between(page) after each page but the last, and returns
// the rows' record ids in the order shown and the pages' bodies.
func tablePages(t *testing.T, c interface {
	Get(string) (*http.Response, string)
}, path string, between func(page int)) (ids []string, bodies []string) {
	t.Helper()
	for page := 0; page < 100; page++ {
		resp, body := c.Get(path)
		if resp.StatusCode != http.StatusOK {
			t.Fatalf("%s: %d\n%s", path, resp.StatusCode, body)
		}
		bodies = append(bodies, body)
		for _, m := range rowID.FindAllStringSubmatch(body, -1) {
			ids = append(ids, m[1])
		}
		m := nextLink.FindStringSubmatch(body)
		if m == nil {
			return ids, bodies
		}
		if between != nil {
			between(page)
		}
		path = html.UnescapeString(m[1])
	}
	t.Fatal("no last page")
	return nil, nil
}

// TestAnalystTableOrder: the submissions table shows the newest submissions
// first unless asked for the oldest, says which in words, and keeps the
// order and the filters from page to page, every record exactly once even
// while tablets edit records between pages; the filter form's sort control
// and the link beside the table switch the order; a cursor of one order
// used with the other, or an unknown order, is a 400 page.
func TestAnalystTableOrder(t *testing.T) {
	e := startAnalystEnv(t)
	e.seed(t)
	// 110 more records in four pushes from both tablets: three pages of
	// the table (50 rows each) with the seed's three.
	t0 := time.Date(2026, 3, 2, 8, 0, 0, 0, time.UTC)
	revs := map[string]string{}
	n := 100
	for p, size := range []int{30, 30, 30, 20} {
		var subs []api.Submission
		for range size {
			subs = append(subs, sub(n, fmt.Sprintf(`{"village":"Village %03d","age":%d}`, n, 20+n%50), t0))
			n++
		}
		for _, r := range e.push(t, e.tablets[p%2], subs...) {
			if r.Status != api.PushCreated {
				t.Fatalf("push: %+v", r)
			}
			revs[r.ID] = r.Rev
		}
	}
	// The oracle: the stored records sorted by (receive time, id).
	var all []string
	for i := 1; i <= 3; i++ {
		all = append(all, recordID(i))
	}
	for i := 100; i < n; i++ {
		all = append(all, recordID(i))
	}
	stored, err := e.Store.GetRecords(context.Background(), "safety", all)
	if err != nil || len(stored) != len(all) {
		t.Fatalf("stored records: %d, %v", len(stored), err)
	}
	byReceipt := func(ids []string) []string {
		out := slices.Clone(ids)
		slices.SortFunc(out, func(a, b string) int {
			return cmp.Or(stored[a].CreatedAt.Compare(stored[b].CreatedAt), strings.Compare(a, b))
		})
		return out
	}
	asc := byReceipt(all)
	desc := slices.Clone(asc)
	slices.Reverse(desc)

	c := e.SignIn(t, "alice", analystPassword)
	base := "/projects/safety/data/forms/household"

	// The default: newest first, said in words, the control showing it.
	// Between pages a tablet edits a record already shown and one not yet
	// shown: neither moves.
	got, bodies := tablePages(t, c, base, func(page int) {
		for _, id := range []string{desc[page], desc[len(desc)-1-page-3]} {
			if id == recordID(1) || id == recordID(2) || id == recordID(3) {
				continue // the seed's records have revisions of their own
			}
			r := e.push(t, e.tablets[0], editOf(id, revs[id], t0))
			if r[0].Status != api.PushUpdated {
				t.Fatalf("edit %s: %+v", id, r[0])
			}
			revs[id] = r[0].Rev
		}
	})
	if !slices.Equal(got, desc) {
		t.Errorf("default order: %d rows %v\nwant newest first %v", len(got), got, desc)
	}
	if len(bodies) != 3 || strings.Count(bodies[0], "<tr data-id=") != 50 {
		t.Errorf("%d pages, %d rows on the first", len(bodies), strings.Count(bodies[0], "<tr data-id="))
	}
	for i, b := range bodies {
		if !strings.Contains(b, "Sorted by the date received, newest first.") || !strings.Contains(b, `aria-sort="descending"`) ||
			!regexp.MustCompile(`<option value="desc" selected>Newest first</option>`).MatchString(b) {
			t.Errorf("page %d does not say newest first in words and in the control", i+1)
		}
		if i > 0 && !strings.Contains(b, `id="first-page"`) {
			t.Errorf("page %d has no link to the first page", i+1)
		}
		// Every page says how many the filters select in all.
		if want := fmt.Sprintf("%d submissions match the filters.", len(desc)); !strings.Contains(b, want) {
			t.Errorf("page %d does not say %q", i+1, want)
		}
	}
	if _, b := c.Get(base + "?device=" + e.tablets[1].id); !strings.Contains(b, "submissions match the filters.") ||
		strings.Contains(b, fmt.Sprintf("%d submissions match", len(desc))) {
		t.Error("the total does not follow the device filter")
	}

	if !strings.Contains(bodies[1], `order=desc`) {
		t.Error("the second page's links do not keep the order")
	}

	// Oldest first, as the sort control sends it: every page too.
	got, bodies = tablePages(t, c, base+"?review_state=&device=&version=&since=&until=&order=asc", nil)
	if !slices.Equal(got, asc) {
		t.Errorf("order=asc: %v\nwant oldest first %v", got, asc)
	}
	for i, b := range bodies {
		if !strings.Contains(b, "Sorted by the date received, oldest first") || !strings.Contains(b, `aria-sort="ascending"`) ||
			!strings.Contains(b, `<option value="asc" selected>Oldest first</option>`) {
			t.Errorf("page %d (oldest first) does not say so", i+1)
		}
	}
	// The link beside the table switches back, keeping the filters; the
	// clear link keeps the order.
	if !strings.Contains(bodies[0], `id="clear-filters"`) || !regexp.MustCompile(`href="[^"]*\?order=asc" id="clear-filters"`).MatchString(bodies[0]) {
		t.Error("clearing the filters loses the order")
	}

	// Filters and order together, paged both ways: the north tablet's
	// records (the seed's second, the first and third bulk pushes, and the
	// records it edited above).
	if stored, err = e.Store.GetRecords(context.Background(), "safety", all); err != nil {
		t.Fatal(err)
	}
	north := e.tablets[0].id
	var northAsc []string
	for _, id := range asc {
		if stored[id].DeviceID == north {
			northAsc = append(northAsc, id)
		}
	}
	northDesc := slices.Clone(northAsc)
	slices.Reverse(northDesc)
	if len(northAsc) <= 50 {
		t.Fatalf("%d records of the north tablet: want more than a page", len(northAsc))
	}
	got, bodies = tablePages(t, c, base+"?device="+url.QueryEscape(north), nil)
	if !slices.Equal(got, northDesc) {
		t.Errorf("device, newest first: %v\nwant %v", got, northDesc)
	}
	flip := regexp.MustCompile(`href="([^"]+)" id="sort-flip"`).FindStringSubmatch(bodies[0])
	if flip == nil || !strings.Contains(flip[1], "device=") || !strings.Contains(flip[1], "order=asc") {
		t.Fatalf("the link to the other order: %v", flip)
	}
	if got, _ = tablePages(t, c, html.UnescapeString(flip[1]), nil); !slices.Equal(got, northAsc) {
		t.Errorf("device, oldest first (through the link): %v\nwant %v", got, northAsc)
	}

	// A cursor continues only its own order; an unknown order is refused.
	next := html.UnescapeString(nextLink.FindStringSubmatch(bodies[0])[1])
	for _, p := range []string{strings.Replace(next, "order=desc", "order=asc", 1), base + "?order=newest"} {
		resp, body := c.Get(p)
		if resp.StatusCode != http.StatusBadRequest || !(strings.Contains(body, `data-code="invalid_cursor"`) || strings.Contains(body, `data-code="invalid_order"`)) {
			t.Errorf("%s: %d", p, resp.StatusCode)
		}
	}
	// The export and the map take the filters, not the order.
	if strings.Contains(regexp.MustCompile(`(?s)<form [^>]*id="downloads".*?</form>`).FindString(bodies[0]), `name="order"`) {
		t.Error("the download form sends the order, which the export refuses")
	}
}

// editOf is a tablet's edit of a bulk record (a new village and age) from
// its revision rev.
func editOf(id, rev string, at time.Time) api.Submission {
	s := sub(0, `{"village":"Edited","age":77}`, at.Add(time.Hour))
	s.ID, s.BaseRev = id, &rev
	return s
}
