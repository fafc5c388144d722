package console

import (
	"net/http"
	"net/url"
	"time"

	"github.com/gorilla/mux"

	"github.com/fieldsync/fieldsync/internal/domain"
	"github.com/fieldsync/fieldsync/internal/export"
	"github.com/fieldsync/fieldsync/internal/records"
)

// analystIndexView is the data of analyst/index.
type analystIndexView struct {
	Forms []domain.Form
	// Counts are the forms' records (tombstones left out), by form id.
	Counts map[string]int
}

// analystIndex lists the project's forms, each with its submissions, map and
// exports.
func (c *Console) analystIndex(w http.ResponseWriter, r *http.Request) error {
	project := pageFrom(r.Context()).project
	forms, err := c.cfg.Forms.List(r.Context(), project, false)
	if err != nil {
		return err
	}
	v := analystIndexView{Forms: forms, Counts: map[string]int{}}
	for _, f := range forms {
		// One indexed count each: what a manager checks first during
		// fieldwork ("how many interviews so far?").
		if v.Counts[f.ID], err = c.cfg.Store.CountRecords(r.Context(), domain.RecordQuery{ProjectID: project, FormID: f.ID}); err != nil {
			return err
		}
	}
	c.render(w, r, http.StatusOK, "analyst/index", "analyst.index.title", v)
	return nil
}

// submissionColumns is how many answer columns the submissions table shows
// (the first ones in the form's order); the record page shows them all.
const submissionColumns = 6

// submissionsPage is how many records a page of the table holds: a few
// dozen rows read well and load fast on a slow link.
const submissionsPage = 50

// recordFilter is the filter of the submissions table, as the records
// listing's query parameters (review_state, device, version, since, until).
// Lang is the form language of the answers (not a filter: the export
// does not take it).
type recordFilter struct {
	ReviewState, Device, Version, Since, Until string
	Lang                                       string
}

// query is the filter Query is the filter as the URL query of the listing and the export.
func (f recordFilter) Query() url.Values {
	q := url.Values{}
	for k, v := range map[string]string{"review_state": f.ReviewState, "device": f.Device, "version": f.Version, "since": f.Since, "until": f.Until, "lang": f.Lang} {
		if v != "" {
			q.Set(k, v)
		}
	}
	return q
}

// parseFilter reads the filter of a page's query; the dates are those of
// the API (a date is midnight UTC; since is inclusive, until exclusive).
func parseFilter(r *http.Request, project, form string) (recordFilter, domain.RecordQuery, error) {
	v := r.URL.Query()
	f := recordFilter{ReviewState: v.Get("review_state"), Device: v.Get("device"), Version: v.Get("version"), Since: v.Get("since"), Until: v.Get("until"), Lang: v.Get("lang")}
	q := domain.RecordQuery{ProjectID: project, FormID: form}
	if f.ReviewState != "" {
		q.ReviewStates = []string{f.ReviewState}
	}
	if f.Device != "" {
		q.Devices = []string{f.Device}
	}
	if f.Version != "" {
		q.Versions = []string{f.Version}
	}
	for _, d := range []struct {
		s   string
		dst *time.Time
		key string
	}{{f.Since, &q.Since, "since"}, {f.Until, &q.Until, "until"}} {
		if d.s == "" {
			continue
		}
		t, err := time.Parse(time.DateOnly, d.s)
		if err != nil {
			if t, err = time.Parse(time.RFC3339Nano, d.s); err != nil {
				return f, q, &domain.Error{Kind: domain.KindBadRequest, Code: "invalid_query", Title: d.key + " must be a date (2026-03-01)"}
			}
		}
		*d.dst = t.UTC()
	}
	return f, q, nil
}

// submissionsOrder reads the table's order parameter, the records listing's
// (records.ParseOrder: asc or desc), except that the table shows the newest
// first when the page names none: analysts look for the latest submissions.
func submissionsOrder(r *http.Request) (descending bool, err error) {
	o := r.URL.Query().Get("order")
	if o == "" {
		return true, nil
	}
	return records.ParseOrder(o)
}

// withOrder is "?" and the filter's query with the order (and the cursor,
// when not ""): the links of the table's pages, which keep both.
func (f recordFilter) withOrder(descending bool, cursor string) string {
	q := f.Query()
	q.Set("order", records.OrderAsc)
	if descending {
		q.Set("order", records.OrderDesc)
	}
	if cursor != "" {
		q.Set("cursor", cursor)
	}
	return "?" + q.Encode()
}

// linkQuery is "?" and q encoded, or "" for no parameter.
func linkQuery(q url.Values) string {
	if len(q) == 0 {
		return ""
	}
	return "?" + q.Encode()
}

// submissionRow is one row of the submissions table.
type submissionRow struct {
	ID, Version, CreatedBy, Device, ReviewState string
	Received                                    time.Time
	Deleted                                     bool
	Conflicts                                   int
	Cells                                       []string
}

// submissionsView is the data of analyst/submissions.
type submissionsView struct {
	Form         domain.Form
	Titles       []string
	Rows         []submissionRow
	Filter       recordFilter
	ReviewStates []string
	Versions     []string
	Devices      []domain.Device
	// Next, Query (the filters, for the map), FirstQuery (the first page:
	// filters and order), FlipQuery (the same filters in the other order)
	// and ClearQuery (no filter, the same order) are the query parts of the
	// page's links, each "?…" or "": with the "?" inside the value,
	// html/template leaves a query's "=" and "&" as they are (after a
	// literal "?" it would escape them, and the link would lose them).
	Next, Query                       string
	FirstQuery, FlipQuery, ClearQuery string
	First                             bool
	// Descending is the order shown: newest first.
	Descending bool
	Formats    []string
	Labels     *labels
	// Total is how many records the filters select, on every page (the
	// store counts them; tombstones included, as the table lists them).
	Total int
	// OData is the form's OData feed address, for Power BI's and Excel's
	// "OData feed" connector ("" for a caller the feed's route refuses).
	OData string
}

// analystSubmissions is a form's submissions table: a page of the records
// listing (records.Service.FormRecords, the same filters, order and cursor),
// by receive date, newest first unless the page asks for the oldest, the
// first answer columns in the form's order.
func (c *Console) analystSubmissions(w http.ResponseWriter, r *http.Request) error {
	ctx := r.Context()
	project, formID := pageFrom(ctx).project, mux.Vars(r)["form"]
	filter, q, err := parseFilter(r, project, formID)
	if err != nil {
		return err
	}
	if q.Descending, err = submissionsOrder(r); err != nil {
		return err
	}
	cursor := r.URL.Query().Get("cursor")
	page, err := c.cfg.Records.FormRecords(ctx, q, cursor, submissionsPage)
	if err != nil {
		return err
	}
	// FormRecords checked the query; the total counts what it lists,
	// tombstones included.
	cq := q
	cq.IncludeDeleted = true
	total, err := c.cfg.Store.CountRecords(ctx, cq)
	if err != nil {
		return err
	}
	form, model, lb, err := c.formModel(r, project, formID)
	if err != nil {
		return err
	}
	devices, err := c.cfg.Store.ListDevices(ctx, project)
	if err != nil {
		return err
	}
	v := submissionsView{Form: form, Filter: filter, ReviewStates: records.ReviewStates, Devices: devices,
		First: cursor == "", Query: linkQuery(filter.Query()), Formats: export.Formats, Labels: lb, Total: total,
		Descending: q.Descending, FirstQuery: filter.withOrder(q.Descending, ""), FlipQuery: filter.withOrder(!q.Descending, "")}
	if !q.Descending {
		v.ClearQuery = recordFilter{}.withOrder(false, "")
	}
	for _, fv := range form.Versions {
		if fv.State == domain.VersionPublished {
			v.Versions = append(v.Versions, fv.Version)
		}
	}
	var cols []*export.Column
	for _, col := range model.Main.Columns {
		if len(cols) == submissionColumns {
			break
		}
		cols = append(cols, col)
		v.Titles = append(v.Titles, lb.title(col))
	}
	for _, rec := range page.Records {
		data := decodeData(rec.Data)
		row := submissionRow{ID: rec.ID, Version: rec.FormVersion, CreatedBy: rec.CreatedBy, Device: page.DeviceNames[rec.DeviceID],
			ReviewState: rec.ReviewState, Received: rec.CreatedAt, Deleted: rec.Deleted, Conflicts: len(rec.Conflicts)}
		if row.Device == "" {
			row.Device = rec.DeviceID
		}
		for _, col := range cols {
			val, ok := lookup(data, col.Pointer)
			row.Cells = append(row.Cells, cellText(lb, col, val, ok))
		}
		v.Rows = append(v.Rows, row)
	}
	if page.Next != "" {
		v.Next = filter.withOrder(q.Descending, page.Next)
	}
	if c.may(r, mirrorOData) {
		v.OData = c.cfg.API.BaseURL(r) + "/v1/projects/" + url.PathEscape(project) + "/forms/" + url.PathEscape(formID) + "/odata"
	}
	c.render(w, r, http.StatusOK, "analyst/submissions", "analyst.submissions.title", v)
	return nil
}

// analystExport streams an export file: the API's own export handler
// (httpapi.Server.ServeExport) with the session's user and role, so the
// file, its checks and its audit event are the API's. The page's query is the
// API route's (format, labels, bom, attachments and the filters).
func (c *Console) analystExport(w http.ResponseWriter, r *http.Request) error {
	pc := pageFrom(r.Context())
	q := r.URL.Query()
	for k, vs := range q {
		// The download form sends its empty filters and unticked options
		// too; the API route reads an empty value as none already, but an
		// empty format or flag is simply left out. The form language is the
		// page's, not the export's (labels=true writes the form's own).
		if (len(vs) == 1 && vs[0] == "") || k == "lang" {
			q.Del(k)
		}
	}
	r.URL.RawQuery = q.Encode()
	return c.cfg.API.ServeExport(w, r, principal(r), pc.role, pc.project, mux.Vars(r)["form"])
}
