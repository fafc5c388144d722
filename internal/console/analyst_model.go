package console

import (
	"bytes"
	"encoding/json"
	"errors"
	"net/http"
	"slices"
	"strconv"
	"strings"

	"github.com/fieldsync/fieldsync/internal/domain"
	"github.com/fieldsync/fieldsync/internal/export"
)

// formModel is the column model of a form, made by internal/export from its
// published versions (those of versions when given), as the export does:
// the answers in the schema's order with their titles and choice labels. The
// pages lay answers out with it rather than walking the schema a second time.
//
// The labels are those of the language the page asks for (?lang=), else the
// console's language when the form has it, else the form's own: the latest
// version's ui.translations (protocol.md §2) over the model's titles.
func (c *Console) formModel(r *http.Request, project, formID string) (domain.Form, *export.Model, *labels, error) {
	ctx := r.Context()
	form, err := c.cfg.Store.GetForm(ctx, project, formID)
	if err != nil {
		if errors.Is(err, domain.ErrNotFound) {
			return form, nil, nil, &domain.Error{Kind: domain.KindNotFound, Code: "form_not_found", Title: "No such form in this project"}
		}
		return form, nil, nil, err
	}
	var vs []export.Version
	for _, v := range form.Versions {
		if v.State != domain.VersionPublished {
			continue
		}
		fv, err := c.cfg.Store.GetFormVersion(ctx, project, formID, v.Version)
		if err != nil {
			return form, nil, nil, err
		}
		vs = append(vs, export.Version{Version: fv.Version, Definition: fv.Definition})
	}
	m, err := export.Build(formID, vs)
	if err != nil {
		return form, nil, nil, err
	}
	lb := &labels{}
	if len(vs) > 0 {
		lb = formLabels(vs[len(vs)-1].Definition, r.URL.Query().Get("lang"), pageFrom(ctx).lang.Code)
	}
	return form, m, lb, nil
}

// labels are a form's question titles and choice labels in one language:
// the translation's where it has one, else the model's (the schema's
// titles and the form's default labels).
type labels struct {
	// Lang is the language shown; Languages the form's, its own first.
	Lang      string
	Languages []string
	titles    map[string]string
	choices   map[string]map[string]string
}

// formLabels reads the ui of a definition and picks the language: want
// when the form has it, else console when it has that, else its own.
func formLabels(def json.RawMessage, want, console string) *labels {
	var d struct {
		UI struct {
			Language     string          `json:"language"`
			Translations json.RawMessage `json:"translations"`
		} `json:"ui"`
	}
	_ = json.Unmarshal(def, &d)
	// translations is an object by language; a plain list of languages
	// names no labels, and is read as none.
	var tr map[string]struct {
		Labels  map[string]string            `json:"labels"`
		Choices map[string]map[string]string `json:"choices"`
	}
	_ = json.Unmarshal(d.UI.Translations, &tr)
	own := d.UI.Language
	if own == "" {
		own = "default"
	}
	lb := &labels{Lang: own, Languages: []string{own}}
	var codes []string
	for code := range tr {
		if code != own {
			codes = append(codes, code)
		}
	}
	slices.Sort(codes)
	lb.Languages = append(lb.Languages, codes...)
	for _, code := range []string{want, console} {
		if t, ok := tr[code]; ok && code != "" && code != own {
			lb.Lang, lb.titles, lb.choices = code, t.Labels, t.Choices
			break
		}
		if code != "" && code == own {
			break
		}
	}
	return lb
}

// title is a question's title in the language shown.
func (l *labels) title(col *export.Column) string {
	if l != nil {
		if t, ok := l.titles[col.Pointer]; ok {
			return t
		}
	}
	return col.Title
}

// label is a choice's label in the language shown.
func (l *labels) label(col *export.Column, code string) string {
	if l != nil {
		if t, ok := l.choices[col.Pointer][code]; ok {
			return t
		}
	}
	return col.Label(code)
}

// decodeData decodes a record's data for display (numbers kept as written);
// data that is not JSON is nil.
func decodeData(raw json.RawMessage) any {
	if len(raw) == 0 {
		return nil
	}
	d := json.NewDecoder(bytes.NewReader(raw))
	d.UseNumber()
	var v any
	if d.Decode(&v) != nil {
		return nil
	}
	return v
}

// lookup follows a JSON pointer (RFC 6901) in decoded data.
func lookup(v any, ptr string) (any, bool) {
	if ptr == "" {
		return v, true
	}
	for _, tok := range strings.Split(strings.TrimPrefix(ptr, "/"), "/") {
		tok = strings.ReplaceAll(strings.ReplaceAll(tok, "~1", "/"), "~0", "~")
		switch n := v.(type) {
		case map[string]any:
			var ok bool
			if v, ok = n[tok]; !ok {
				return nil, false
			}
		case []any:
			i, err := strconv.Atoi(tok)
			if err != nil || i < 0 || i >= len(n) {
				return nil, false
			}
			v = n[i]
		default:
			return nil, false
		}
	}
	return v, true
}

// compactJSON is v as one line of JSON.
func compactJSON(v any) string {
	b, err := json.Marshal(v)
	if err != nil {
		return ""
	}
	return string(b)
}

// cellText is an answer as people read it: a choice's label, a multiple
// choice's labels, a scalar as written, anything else as JSON. A value the
// record does not have is "".
func cellText(lb *labels, col *export.Column, v any, ok bool) string {
	if !ok || v == nil {
		return ""
	}
	switch col.Kind {
	case export.KindChoice:
		if s, isStr := scalar(v); isStr {
			return lb.label(col, s)
		}
	case export.KindChoices:
		if arr, isArr := v.([]any); isArr {
			out := make([]string, 0, len(arr))
			for _, x := range arr {
				s, _ := scalar(x)
				out = append(out, lb.label(col, s))
			}
			return strings.Join(out, ", ")
		}
	}
	if s, isScalar := scalar(v); isScalar {
		return s
	}
	return compactJSON(v)
}

// scalar is a string, number or boolean as text; ok is false for objects
// and arrays.
func scalar(v any) (string, bool) {
	switch x := v.(type) {
	case string:
		return x, true
	case json.Number:
		return x.String(), true
	case bool:
		return strconv.FormatBool(x), true
	case nil:
		return "", true
	}
	return "", false
}

// answer is one question and the record's answer to it.
type answer struct {
	Pointer string
	Title   string
	Text    string
	// Repeat holds the items of a repeat group, each its answers.
	Repeat [][]answer
}

// answers lays out data in the table's column order (the form's order) with
// titles and labels; repeat groups hold their items' answers.
func answers(lb *labels, t *export.Table, data any) []answer {
	out := make([]answer, 0, len(t.Columns))
	for _, col := range t.Columns {
		v, ok := lookup(data, col.Pointer)
		if t.Parent != nil {
			// Inside a repeat the column's name is relative to the item.
			v, ok = lookup(data, "/"+col.Name)
		}
		a := answer{Pointer: col.Pointer, Title: lb.title(col)}
		if col.Kind == export.KindRepeat && col.Table != nil {
			items, _ := v.([]any)
			for _, it := range items {
				a.Repeat = append(a.Repeat, answers(lb, col.Table, it))
			}
		} else {
			a.Text = cellText(lb, col, v, ok)
		}
		out = append(out, a)
	}
	return out
}
