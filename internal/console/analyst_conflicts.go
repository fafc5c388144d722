package console

import (
	"bytes"
	"encoding/json"
	"net/http"
	"net/url"
	"strconv"
	"strings"
	"time"

	"github.com/gorilla/mux"

	"github.com/fieldsync/fieldsync/internal/domain"
	"github.com/fieldsync/fieldsync/internal/export"
)

// conflictSide is one side of a clash as the page shows it.
type conflictSide struct {
	Key, Text, Rev, By, Device string
	At                         time.Time
	Deleted                    bool
	Current                    bool
}

// conflictView is one clash.
type conflictView struct {
	Index          int
	Pointer, Title string
	Whole          bool
	Base, Current  string
	CurrentIsASide bool
	Sides          []conflictSide
	EditValue      string
}

// conflictsView is the data of analyst/conflicts.
type conflictsView struct {
	Record    domain.Record
	FormTitle string
	Conflicts []conflictView
}

// analystConflicts shows a record's recorded clashes: for each, the base
// value, what the record holds now, and each side's value with who made it
// (user, device name) and when; and a form to settle them, a side per field
// or an edited value, sent to resolve.
func (c *Console) analystConflicts(w http.ResponseWriter, r *http.Request) error {
	ctx := r.Context()
	caller := c.recordsCaller(r)
	project, id := pageFrom(ctx).project, mux.Vars(r)["id"]
	rec, _, err := c.cfg.Records.Get(ctx, caller, project, id, false)
	if err != nil {
		return err
	}
	form, model, lb, err := c.formModel(r, project, rec.FormID)
	if err != nil {
		return err
	}
	var devs []domain.Record
	for _, cf := range rec.Conflicts {
		for _, s := range cf.Values {
			devs = append(devs, domain.Record{DeviceID: s.DeviceID})
		}
	}
	names, err := c.cfg.Records.DeviceNames(ctx, caller, project, devs)
	if err != nil {
		return err
	}
	cols := map[string]*export.Column{}
	for _, col := range model.Main.Columns {
		cols[col.Pointer] = col
	}
	data := decodeData(rec.Data)
	v := conflictsView{Record: rec, FormTitle: form.Title}
	for i, cf := range rec.Conflicts {
		text := func(raw json.RawMessage) string {
			val := decodeData(raw)
			if col := cols[cf.Path]; col != nil {
				return cellText(lb, col, val, val != nil)
			}
			return jsonIf(val, val != nil)
		}
		cur, _ := lookup(data, cf.Path)
		curRaw, _ := json.Marshal(cur)
		cv := conflictView{Index: i, Pointer: cf.Path, Title: cf.Path, Whole: cf.Path == "", Base: text(cf.Base), EditValue: indentJSON(curRaw)}
		if col := cols[cf.Path]; col != nil {
			cv.Title = lb.title(col)
		}
		if cv.Whole {
			cv.Current = "" // the record's answers are on its page
		} else {
			cv.Current = text(curRaw)
		}
		for j, s := range cf.Values {
			side := conflictSide{Key: "v" + strconv.Itoa(j), Text: text(s.Value), Rev: s.Rev, By: s.By, Device: names[s.DeviceID],
				At: s.ClientModifiedAt, Deleted: s.Deleted}
			if side.Device == "" {
				side.Device = s.DeviceID
			}
			if !s.Deleted && sameJSON(s.Value, curRaw) {
				side.Current, cv.CurrentIsASide = true, true
			}
			cv.Sides = append(cv.Sides, side)
		}
		v.Conflicts = append(v.Conflicts, cv)
	}
	c.render(w, r, http.StatusOK, "analyst/conflicts", "analyst.conflicts.title", v)
	return nil
}

// sameJSON reports whether two JSON texts are the same value.
func sameJSON(a, b json.RawMessage) bool {
	return compactJSON(decodeData(a)) == compactJSON(decodeData(b))
}

// analystResolve settles a record's conflicts through records.Service.Resolve,
// as POST /v1/projects/{project}/records/{id}/resolve: the record's data
// with, for each clash, the value picked (pick-<i>: "current", a side
// "v<j>", or "edit" with the JSON of edit-<i>). The revision the page showed
// (rev) guards against an edit made meanwhile (412 rev_mismatch).
func (c *Console) analystResolve(w http.ResponseWriter, r *http.Request) error {
	ctx := r.Context()
	caller := c.recordsCaller(r)
	project, id := pageFrom(ctx).project, mux.Vars(r)["id"]
	rev := r.PostFormValue("rev")
	if rev == "" {
		return domain.Invalid("invalid_resolution", "rev is required", []domain.Finding{{Path: "/rev", Keyword: "required", Message: "rev is required"}})
	}
	rec, _, err := c.cfg.Records.Get(ctx, caller, project, id, false)
	if err != nil {
		return err
	}
	// The data comes from the record as it is now: if it moved on since
	// the page showed rev, Resolve refuses (412 rev_mismatch) anyway.
	data := decodeData(rec.Data)
	deleted := false
	for i, cf := range rec.Conflicts {
		pick := r.PostFormValue("pick-" + strconv.Itoa(i))
		var val any
		remove := false
		switch {
		case pick == "" || pick == "current":
			continue
		case pick == "edit":
			d := json.NewDecoder(strings.NewReader(r.PostFormValue("edit-" + strconv.Itoa(i))))
			d.UseNumber()
			if err := d.Decode(&val); err != nil {
				return domain.Invalid("invalid_resolution", "The edited value is not JSON",
					[]domain.Finding{{Path: cf.Path, Keyword: "json", Message: "write the value as JSON: \"text\", 12, true, null"}})
			}
		case strings.HasPrefix(pick, "v"):
			j, err := strconv.Atoi(pick[1:])
			if err != nil || j < 0 || j >= len(cf.Values) {
				return domain.Invalid("invalid_resolution", "Unknown side", []domain.Finding{{Path: cf.Path, Keyword: "enum", Message: "pick one of the listed sides"}})
			}
			s := cf.Values[j]
			if s.Deleted {
				if cf.Path == "" {
					deleted = true
					continue
				}
				remove = true
			}
			val = decodeData(s.Value)
			if val == nil && cf.Path != "" {
				remove = true
			}
		default:
			return domain.Invalid("invalid_resolution", "Unknown choice", []domain.Finding{{Path: cf.Path, Keyword: "enum", Message: "pick one of the listed sides"}})
		}
		data = setPointer(data, cf.Path, val, remove)
	}
	raw, err := json.Marshal(data)
	if err != nil {
		return err
	}
	if _, err := c.cfg.Records.Resolve(ctx, caller, project, id, rev, raw, deleted); err != nil {
		return err
	}
	http.Redirect(w, r, "/projects/"+project+"/data/records/"+url.PathEscape(id)+"?msg=resolved", http.StatusSeeOther)
	return nil
}

// setPointer returns root with the value at ptr replaced by v (or removed),
// making the objects on the way as needed; "" replaces the whole.
func setPointer(root any, ptr string, v any, remove bool) any {
	if ptr == "" {
		return v
	}
	toks := strings.Split(strings.TrimPrefix(ptr, "/"), "/")
	m, ok := root.(map[string]any)
	if !ok {
		m = map[string]any{}
	}
	cur := m
	for i, tok := range toks {
		tok = strings.ReplaceAll(strings.ReplaceAll(tok, "~1", "/"), "~0", "~")
		if i == len(toks)-1 {
			if remove {
				delete(cur, tok)
			} else {
				cur[tok] = v
			}
			break
		}
		next, ok := cur[tok].(map[string]any)
		if !ok {
			next = map[string]any{}
			cur[tok] = next
		}
		cur = next
	}
	return m
}

// indentJSON is raw indented for a textarea, keeping its members' order;
// raw as it is when it is not JSON.
func indentJSON(raw json.RawMessage) string {
	var buf bytes.Buffer
	if json.Indent(&buf, raw, "", "  ") != nil {
		return string(raw)
	}
	return buf.String()
}
