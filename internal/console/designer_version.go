package console

import (
	"encoding/json"
	"net/http"
	"slices"
	"strings"
	"time"

	"github.com/gorilla/mux"

	"github.com/fieldsync/fieldsync/internal/domain"
	"github.com/fieldsync/fieldsync/internal/export"
	"github.com/fieldsync/fieldsync/internal/openrosa"
)

// designerQuestion is one question of a version, as the exports see it
// (export.Build: schema order, titles, choice labels from oneOf titles and
// ui.choices), so the preview shows the columns an analyst will get.
type designerQuestion struct {
	// N numbers the questions from 1.
	N int
	// Depth is 0 for the form's own questions, 1 inside a repeat, ...
	Depth int
	// Name is the answer's path (respondent/age; inside a repeat, from the
	// repeat's name).
	Name string
	// Pointer is the JSON pointer of the answer in a record (the key of the
	// form's ui labels).
	Pointer  string
	Title    string
	Kind     export.Kind
	Required bool
	Choices  []export.Choice
}

// Nest marks a question inside a repeat, one arrow a level.
func (q designerQuestion) Nest() string { return strings.Repeat("↳ ", q.Depth) }

// KindKey is the catalogue key of the question's type.
func (q designerQuestion) KindKey() string { return designerKindKey(q.Kind) }

// designerKindKey is the catalogue key of an answer type ("designer.kind.date_time").
func designerKindKey(k export.Kind) string {
	return "designer.kind." + strings.NewReplacer(" ", "_", "-", "_").Replace(k.String())
}

// designerQuestions lists a version's questions in schema order, the
// questions of a repeat after it, one level deeper.
func designerQuestions(fv domain.FormVersion) ([]designerQuestion, error) {
	m, err := export.Build(fv.FormID, []export.Version{{Version: fv.Version, Definition: fv.Definition}})
	if err != nil {
		return nil, err
	}
	var out []designerQuestion
	var walk func(t *export.Table, depth int)
	walk = func(t *export.Table, depth int) {
		for _, col := range t.Columns {
			name := col.Name
			if t.Name != "" {
				name = t.Name + "/" + col.Name
			}
			out = append(out, designerQuestion{N: len(out) + 1, Depth: depth, Name: name, Pointer: col.Pointer, Title: col.Title,
				Kind: col.Kind, Required: col.Required, Choices: col.Choices})
			if col.Kind == export.KindRepeat && col.Table != nil {
				walk(col.Table, depth+1)
			}
		}
	}
	walk(m.Main, 0)
	return out, nil
}

// designerVersionView is the data of designer/version.
type designerVersionView struct {
	FormID, FormTitle string
	FormClosed        bool
	Version           string
	Title             string
	Description       string
	Published         bool
	PublishedAt       *time.Time
	Current           bool
	Hash              string
	Policy            string
	Shared            bool
	Questions         []designerQuestion
	// OpenRosa is what the XForm generator said of a published version (the
	// openrosa member of the publish answer); nil for a draft.
	OpenRosa *designerOpenRosa
	// Others are the form's other versions the user may see, to compare with.
	Others []string
	// CanPublish, CanUpload say which actions the user's role has.
	CanPublish, CanUpload bool
}

// designerOpenRosa is the openrosa member of a publish answer.
type designerOpenRosa struct {
	// Warnings are keywords the XForm cannot express (the server still
	// checks them); Reasons are shapes ODK Collect cannot produce, which keep
	// the version out of Collect's form list.
	Warnings, Reasons []string
}

// designerVersion previews a version's questions in order, as GET
// /v1/projects/{project}/forms/{form}/versions/{version} reads it
// (enumerators see published versions only).
func (c *Console) designerVersion(w http.ResponseWriter, r *http.Request) error {
	project, vars := pageFrom(r.Context()).project, mux.Vars(r)
	fv, err := c.cfg.Forms.Version(r.Context(), project, vars["form"], vars["version"], designerPublishedOnly(r))
	if err != nil {
		return err
	}
	form, err := c.designerForm(r, fv.FormID)
	if err != nil {
		return err
	}
	qs, err := designerQuestions(fv)
	if err != nil {
		return err
	}
	var head struct {
		Description string `json:"description"`
	}
	_ = json.Unmarshal(fv.Definition, &head)
	v := designerVersionView{
		FormID: form.ID, FormTitle: form.Title, FormClosed: form.State == domain.FormClosed,
		Version: fv.Version, Title: fv.Title, Description: head.Description,
		Published: fv.State == domain.VersionPublished, PublishedAt: fv.PublishedAt,
		Current: fv.Version == form.CurrentVersion, Hash: fv.Hash, Policy: fv.Policy, Shared: fv.Shared,
		Questions:  qs,
		CanPublish: c.designerMay(r, mirrorPublish),
		CanUpload:  c.designerMay(r, mirrorPutVersion),
	}
	v.OpenRosa = designerOpenRosaOf(fv)
	for _, o := range form.Versions {
		if o.Version != fv.Version {
			v.Others = append(v.Others, o.Version)
		}
	}
	c.render(w, r, http.StatusOK, "designer/version", "designer.version.title", v)
	return nil
}

// designerOpenRosaOf reads the generator's report stored with a published
// version's XForm, as the API's publish answer does (nil when there is none:
// a draft, or a form the generator failed on).
func designerOpenRosaOf(fv domain.FormVersion) *designerOpenRosa {
	if fv.State != domain.VersionPublished || len(fv.XForm) == 0 {
		return nil
	}
	meta, err := openrosa.ParseMeta(fv.OpenRosa)
	if err != nil {
		return nil
	}
	return &designerOpenRosa{Warnings: meta.Warnings, Reasons: meta.Reasons}
}

// designerForm returns a form with the versions the user may see, from the
// service's list (the same filter as the API's form list).
func (c *Console) designerForm(r *http.Request, formID string) (domain.Form, error) {
	list, err := c.cfg.Forms.List(r.Context(), pageFrom(r.Context()).project, designerPublishedOnly(r))
	if err != nil {
		return domain.Form{}, err
	}
	for _, f := range list {
		if f.ID == formID {
			return f, nil
		}
	}
	return domain.Form{}, &domain.Error{Kind: domain.KindNotFound, Code: "form_not_found", Title: "No such form in this project"}
}

// designerPublish publishes a draft, as POST
// /v1/projects/{project}/forms/{form}/versions/{version}/publish, and shows
// it with the OpenRosa generator's warnings.
func (c *Console) designerPublish(w http.ResponseWriter, r *http.Request) error {
	project, vars := pageFrom(r.Context()).project, mux.Vars(r)
	fv, err := c.cfg.Forms.Publish(c.designerActor(r), project, vars["form"], vars["version"])
	if err != nil {
		return err
	}
	designerRedirect(w, r, designerVersionPath(project, fv.FormID, fv.Version), "flash.form_published", "")
	return nil
}

// designerChange is one question that differs between two versions.
type designerChange struct {
	// What is "added", "removed" or "changed".
	What    string
	Pointer string
	Title   string
	// Details say what changed (for "changed"): catalogue key, then the
	// old and the new value.
	Details []designerDetail
}

// designerDetail is one difference of a changed question.
type designerDetail struct {
	Key      string
	From, To string
	// Translated is true when From and To are catalogue keys (a type, a
	// yes or no) rather than the form's own text.
	Translated bool
}

// designerCompareView is the data of designer/compare.
type designerCompareView struct {
	FormID, FormTitle string
	Versions          []string
	// A and B are the versions compared (B the newer, as chosen); Done is
	// false until both are chosen.
	A, B      string
	Done      bool
	Changes   []designerChange
	Unchanged int
}

// designerCompare compares the questions of two versions (?a=&b=): the
// questions added, removed, and those whose type, required, choices or label
// changed. Each version is read as GET .../versions/{version} reads it.
func (c *Console) designerCompare(w http.ResponseWriter, r *http.Request) error {
	project, formID := pageFrom(r.Context()).project, mux.Vars(r)["form"]
	form, err := c.designerForm(r, formID)
	if err != nil {
		return err
	}
	v := designerCompareView{FormID: form.ID, FormTitle: form.Title, A: r.URL.Query().Get("a"), B: r.URL.Query().Get("b")}
	for _, fv := range form.Versions {
		v.Versions = append(v.Versions, fv.Version)
	}
	if v.A == "" && v.B == "" && len(v.Versions) >= 2 {
		v.A, v.B = v.Versions[len(v.Versions)-2], v.Versions[len(v.Versions)-1]
	}
	if v.A != "" && v.B != "" {
		var sides [2][]designerQuestion
		for i, ver := range []string{v.A, v.B} {
			fv, err := c.cfg.Forms.Version(r.Context(), project, formID, ver, designerPublishedOnly(r))
			if err != nil {
				return err
			}
			if sides[i], err = designerQuestions(fv); err != nil {
				return err
			}
		}
		v.Changes, v.Unchanged = designerDiff(sides[0], sides[1])
		v.Done = true
	}
	c.render(w, r, http.StatusOK, "designer/compare", "designer.compare.title", v)
	return nil
}

// designerDiff compares questions by their pointer: those of a missing
// from b are removed, those of b missing from a added (in b's order, after
// the removed ones), and those in both whose type, required, choice codes,
// choice labels or label differ are changed.
func designerDiff(a, b []designerQuestion) ([]designerChange, int) {
	index := func(qs []designerQuestion) map[string]designerQuestion {
		m := make(map[string]designerQuestion, len(qs))
		for _, q := range qs {
			m[q.Pointer] = q
		}
		return m
	}
	ia, ib := index(a), index(b)
	var out []designerChange
	unchanged := 0
	for _, qa := range a {
		qb, ok := ib[qa.Pointer]
		if !ok {
			out = append(out, designerChange{What: "removed", Pointer: qa.Pointer, Title: qa.Title})
			continue
		}
		var d []designerDetail
		if qa.Kind != qb.Kind {
			d = append(d, designerDetail{Key: "designer.compare.type", From: qa.KindKey(), To: qb.KindKey(), Translated: true})
		}
		if qa.Required != qb.Required {
			d = append(d, designerDetail{Key: "designer.compare.required", From: designerYesNo(qa.Required), To: designerYesNo(qb.Required), Translated: true})
		}
		codes := func(cs []export.Choice) []string {
			out := make([]string, len(cs))
			for i, ch := range cs {
				out[i] = ch.Code
			}
			return out
		}
		if ca, cb := codes(qa.Choices), codes(qb.Choices); !slices.Equal(ca, cb) {
			d = append(d, designerDetail{Key: "designer.compare.choices", From: strings.Join(ca, ", "), To: strings.Join(cb, ", ")})
		} else if !slices.Equal(qa.Choices, qb.Choices) {
			d = append(d, designerDetail{Key: "designer.compare.choice_labels", From: designerLabels(qa.Choices), To: designerLabels(qb.Choices)})
		}
		if qa.Title != qb.Title {
			d = append(d, designerDetail{Key: "designer.compare.label", From: qa.Title, To: qb.Title})
		}
		if d == nil {
			unchanged++
			continue
		}
		out = append(out, designerChange{What: "changed", Pointer: qb.Pointer, Title: qb.Title, Details: d})
	}
	for _, qb := range b {
		if _, ok := ia[qb.Pointer]; !ok {
			out = append(out, designerChange{What: "added", Pointer: qb.Pointer, Title: qb.Title})
		}
	}
	return out, unchanged
}

// designerYesNo is the catalogue key of a yes or a no.
func designerYesNo(b bool) string {
	if b {
		return "designer.yes"
	}
	return "designer.no"
}

// designerLabels lists choices as "code: label".
func designerLabels(cs []export.Choice) string {
	parts := make([]string, len(cs))
	for i, ch := range cs {
		parts[i] = ch.Code + ": " + ch.Label
	}
	return strings.Join(parts, "; ")
}
