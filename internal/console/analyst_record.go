package console

import (
	"net/http"
	"net/url"
	"sort"
	"strings"
	"time"

	"github.com/gorilla/mux"

	"github.com/fieldsync/fieldsync/internal/domain"
	"github.com/fieldsync/fieldsync/internal/export"
	"github.com/fieldsync/fieldsync/internal/media"
	"github.com/fieldsync/fieldsync/internal/records"
)

// revisionRow is one revision of a record's history.
type revisionRow struct {
	Rev, Parent, By, Device, Version string
	At                               time.Time
	Deleted                          bool
	Current                          bool
}

// fieldChange is one field that differs between two revisions.
type fieldChange struct {
	Pointer, Title, Before, After string
}

// recordView is the data of analyst/record.
type recordView struct {
	Record       domain.Record
	FormTitle    string
	DeviceName   string
	Answers      []answer
	Revisions    []revisionRow
	DiffA, DiffB string
	Diff         []fieldChange
	Diffed       bool
	Thread       []domain.ReviewEntry
	ReviewStates []string
	Assigned     string
	CanReview    bool
	CanResolve   bool
	Labels       *labels
	// Files are the record's declared attachments, each marked present
	// when its bytes have arrived.
	Files []fileRow
}

// fileRow is one of a record's files, with its name escaped for the path of
// its download link (a name may hold ? # % or spaces, which html/template
// leaves as they are in a URL's path).
type fileRow struct {
	media.File
	PathName string
}

// loadRecord reads a record with its history and its form's model, as the
// caller may see it (records.Service.Get: 404 record_not_found otherwise).
func (c *Console) loadRecord(r *http.Request, caller records.Caller, project, id string) (domain.Record, []domain.Revision, *export.Model, *labels, domain.Form, error) {
	rec, revs, err := c.cfg.Records.Get(r.Context(), caller, project, id, true)
	if err != nil {
		return rec, nil, nil, nil, domain.Form{}, err
	}
	form, model, lb, err := c.formModel(r, project, rec.FormID)
	return rec, revs, model, lb, form, err
}

// analystRecord is a record's page: its answers in the form's order with
// titles and labels, its history with a diff of two revisions (?a=&b=), its
// review thread and state, its assignment and a link to its conflicts.
func (c *Console) analystRecord(w http.ResponseWriter, r *http.Request) error {
	ctx := r.Context()
	caller := c.recordsCaller(r)
	project, id := pageFrom(ctx).project, mux.Vars(r)["id"]
	rec, revs, model, lb, form, err := c.loadRecord(r, caller, project, id)
	if err != nil {
		return err
	}
	thread, _, err := c.cfg.Records.Comments(ctx, caller, project, id, "", records.MaxCommentLimit)
	if err != nil {
		return err
	}
	names, err := c.cfg.Records.DeviceNames(ctx, caller, project, []domain.Record{rec})
	if err != nil {
		return err
	}
	v := recordView{Record: rec, FormTitle: form.Title, DeviceName: names[rec.DeviceID], Answers: answers(lb, model.Main, decodeData(rec.Data)), Labels: lb,
		Thread: thread, ReviewStates: records.ReviewStates, Assigned: strings.Join(rec.AssignedTo, ", "),
		CanReview: c.may(r, mirrorPatch), CanResolve: c.may(r, mirrorResolve)}
	if c.cfg.Media != nil {
		// The record was read as the caller may see it (loadRecord), as
		// RecordFiles asks.
		files, err := c.cfg.Media.RecordFiles(ctx, rec)
		if err != nil {
			return err
		}
		for _, f := range files {
			v.Files = append(v.Files, fileRow{File: f, PathName: url.PathEscape(f.Name)})
		}
	}
	byRev := map[string]domain.Revision{}
	for _, rv := range revs {
		byRev[rv.Rev] = rv
		v.Revisions = append(v.Revisions, revisionRow{Rev: rv.Rev, Parent: rv.Parent, By: rv.CreatedBy, Device: rv.DeviceID,
			Version: rv.FormVersion, At: rv.CreatedAt, Deleted: rv.Deleted, Current: rv.Rev == rec.Rev})
	}
	// The diff: two revisions chosen, else the current one against its parent.
	q := r.URL.Query()
	v.DiffA, v.DiffB = q.Get("a"), q.Get("b")
	if v.DiffA == "" && v.DiffB == "" {
		if cur, ok := byRev[rec.Rev]; ok && cur.Parent != "" {
			v.DiffA, v.DiffB = cur.Parent, cur.Rev
		}
	}
	a, okA := byRev[v.DiffA]
	b, okB := byRev[v.DiffB]
	if (v.DiffA != "" || v.DiffB != "") && (!okA || !okB) {
		return &domain.Error{Kind: domain.KindBadRequest, Code: "invalid_query", Title: "a and b must be revisions of this record"}
	}
	if okA && okB {
		v.Diffed = true
		v.Diff = diffData(lb, model.Main, decodeData(a.Data), decodeData(b.Data))
	}
	c.render(w, r, http.StatusOK, "analyst/record", "analyst.record.title", v)
	return nil
}

// diffData lists the fields that differ between two versions of a record's
// data: every leaf (an array is one value, as the merge sees it), titled by
// the form's question where the pointer is a column, in pointer order.
func diffData(lb *labels, t *export.Table, a, b any) []fieldChange {
	fa, fb := map[string]any{}, map[string]any{}
	flatten(a, "", fa)
	flatten(b, "", fb)
	cols := map[string]*export.Column{}
	for _, col := range t.Columns {
		cols[col.Pointer] = col
	}
	keys := map[string]bool{}
	for k := range fa {
		keys[k] = true
	}
	for k := range fb {
		keys[k] = true
	}
	var out []fieldChange
	for k := range keys {
		va, inA := fa[k]
		vb, inB := fb[k]
		if inA && inB && compactJSON(va) == compactJSON(vb) {
			continue
		}
		ch := fieldChange{Pointer: k, Title: k}
		if col := cols[k]; col != nil {
			ch.Title = lb.title(col)
			ch.Before, ch.After = cellText(lb, col, va, inA), cellText(lb, col, vb, inB)
		} else {
			ch.Before, ch.After = jsonIf(va, inA), jsonIf(vb, inB)
		}
		out = append(out, ch)
	}
	sort.Slice(out, func(i, j int) bool { return out[i].Pointer < out[j].Pointer })
	return out
}

func jsonIf(v any, ok bool) string {
	if !ok {
		return ""
	}
	if s, isScalar := scalar(v); isScalar {
		return s
	}
	return compactJSON(v)
}

// flatten puts the leaves of v into out by JSON pointer.
func flatten(v any, ptr string, out map[string]any) {
	if m, ok := v.(map[string]any); ok && (len(m) > 0 || ptr == "") {
		for k, x := range m {
			flatten(x, ptr+"/"+strings.ReplaceAll(strings.ReplaceAll(k, "~", "~0"), "/", "~1"), out)
		}
		return
	}
	if ptr != "" {
		out[ptr] = v
	}
}

// analystReview sets a record's review state and adds a comment to its
// thread, as PATCH /v1/projects/{project}/records/{id} with review_state and
// comment (records.Service.Update).
func (c *Console) analystReview(w http.ResponseWriter, r *http.Request) error {
	project, id := pageFrom(r.Context()).project, mux.Vars(r)["id"]
	state, comment := r.PostFormValue("review_state"), strings.TrimSpace(r.PostFormValue("comment"))
	if state == "" && comment == "" {
		return domain.Invalid("invalid_patch", "Choose a review state or write a comment",
			[]domain.Finding{{Path: "/review_state", Keyword: "required", Message: "choose a review state or write a comment"}})
	}
	var p records.Patch
	if state != "" {
		p.ReviewState = &state
	}
	if comment != "" {
		p.Comment = &comment
	}
	if _, err := c.cfg.Records.Update(r.Context(), c.recordsCaller(r), project, id, p); err != nil {
		return err
	}
	http.Redirect(w, r, "/projects/"+project+"/data/records/"+url.PathEscape(id)+"?msg=reviewed", http.StatusSeeOther)
	return nil
}

// analystAssign hands a record to users or devices (assigned_to), as PATCH
// /v1/projects/{project}/records/{id} with assigned_to. The form always sends
// the field; an empty one clears the assignment.
func (c *Console) analystAssign(w http.ResponseWriter, r *http.Request) error {
	project, id := pageFrom(r.Context()).project, mux.Vars(r)["id"]
	if err := r.ParseForm(); err != nil {
		return &domain.Error{Kind: domain.KindBadRequest, Code: "invalid_form", Title: "The form could not be read"}
	}
	if _, ok := r.PostForm["assigned_to"]; !ok {
		return domain.Invalid("invalid_patch", "assigned_to is required",
			[]domain.Finding{{Path: "/assigned_to", Keyword: "required", Message: "list usernames or device:<id>, or leave empty to clear"}})
	}
	list := []string{}
	for _, s := range strings.FieldsFunc(r.PostForm.Get("assigned_to"), func(r rune) bool { return r == ',' || r == '\n' || r == ' ' }) {
		if s = strings.TrimSpace(s); s != "" {
			list = append(list, s)
		}
	}
	if _, err := c.cfg.Records.Update(r.Context(), c.recordsCaller(r), project, id, records.Patch{AssignedTo: &list}); err != nil {
		return err
	}
	http.Redirect(w, r, "/projects/"+project+"/data/records/"+url.PathEscape(id)+"?msg=assigned", http.StatusSeeOther)
	return nil
}

// analystAttachment downloads one of a record's files through the API's own
// handler (Server.ServeAttachment): the media service's checks, a download
// typed as declared, never shown inline (the bytes come from a tablet).
func (c *Console) analystAttachment(w http.ResponseWriter, r *http.Request) error {
	pc, vars := pageFrom(r.Context()), mux.Vars(r)
	return c.cfg.API.ServeAttachment(w, r, principal(r), pc.role, pc.project, vars["id"], vars["name"])
}
