package console

import (
	"encoding/json"
	"errors"
	"net/http"
	"net/url"
	"slices"
	"strings"

	"github.com/gorilla/mux"

	"github.com/fieldsync/fieldsync/internal/domain"
	"github.com/fieldsync/fieldsync/internal/records"
)

// quarantinePage is how many entries a page of the quarantine shows: each
// carries its data, so fewer than the table's rows.
const quarantinePage = 20

// quarantineEntry is one entry of the quarantine page.
type quarantineEntry struct {
	Item domain.QuarantineItem
	// Findings are the checks that failed: the latest re-apply's when it was
	// refused, else the submission's.
	Findings []domain.Finding
	// Data is the text of the correction box: what was last tried (kept
	// when it was refused), else the submitted data.
	Data string
	// Error is a catalogue key for the correction box (the text was not JSON).
	Error string
	State string
	// Device is the name of the tablet that sent it ("" for none).
	Device string
	// Versions are the choices of the form version to re-apply against:
	// the form's published versions (what a push may name), and the
	// submitted version in any case, chosen by default.
	Versions []versionOption
}

// versionOption is one choice of the re-apply form's version select.
type versionOption struct {
	Value             string
	Submitted, Chosen bool
}

// quarantineView is the data of analyst/quarantine.
type quarantineView struct {
	Items     []quarantineEntry
	State     string
	States    []string
	Form      string
	Next      string
	First     bool
	CanDecide bool
}

// analystQuarantine lists the project's quarantine (records.Service.Quarantine,
// as GET /v1/projects/{project}/quarantine: open entries unless ?state= says
// otherwise, ?form= for one form), each with its findings, a box to correct
// its data and re-apply it, and a form to dismiss it with a reason. Those
// two show only to whom their API routes let in (designers read).
func (c *Console) analystQuarantine(w http.ResponseWriter, r *http.Request) error {
	return c.renderQuarantine(w, r, http.StatusOK, "", "", "", "")
}

// renderQuarantine renders the quarantine page; keptID's box holds kept (the
// text a refused re-apply sent) with the message errKey, and its version
// select keptVersion.
func (c *Console) renderQuarantine(w http.ResponseWriter, r *http.Request, status int, keptID, kept, keptVersion, errKey string) error {
	ctx := r.Context()
	project := pageFrom(ctx).project
	q := r.URL.Query()
	v := quarantineView{State: q.Get("state"), States: domain.QuarantineStates, Form: q.Get("form"), First: q.Get("cursor") == "",
		CanDecide: c.may(r, mirrorReapply)}
	if v.State == "" {
		v.State = domain.QuarantineOpen
	}
	items, next, err := c.cfg.Records.Quarantine(ctx, project, domain.QuarantineFilter{States: []string{v.State}, FormID: v.Form}, q.Get("cursor"), quarantinePage)
	if err != nil {
		return err
	}
	if next != "" {
		nq := url.Values{"state": {v.State}, "cursor": {next}}
		if v.Form != "" {
			nq.Set("form", v.Form)
		}
		v.Next = nq.Encode()
	}
	devs := make([]domain.Record, len(items))
	for i, it := range items {
		devs[i].DeviceID = it.DeviceID
	}
	names, err := c.cfg.Records.DeviceNames(ctx, c.recordsCaller(r), project, devs)
	if err != nil {
		return err
	}
	published := map[string][]string{} // by form, read once a page
	for _, it := range items {
		e := quarantineEntry{Item: it, Findings: it.Errors, State: it.State(), Device: names[it.DeviceID]}
		e.Data = submittedData(it.Submission)
		version := it.FormVersion
		if lr := it.LastReapply; lr != nil && !lr.Applied {
			if len(lr.Errors) > 0 {
				e.Findings = lr.Errors
			}
			if len(lr.Data) > 0 {
				e.Data = indentJSON(lr.Data)
			}
			version = lr.FormVersion
		}
		if it.ID == keptID {
			e.Data, e.Error, version = kept, errKey, keptVersion
		}
		if v.CanDecide && e.State == domain.QuarantineOpen {
			vs, ok := published[it.FormID]
			if !ok {
				if vs, err = c.publishedVersions(r, project, it.FormID); err != nil {
					return err
				}
				published[it.FormID] = vs
			}
			e.Versions = versionOptions(vs, it.FormVersion, version)
		}
		v.Items = append(v.Items, e)
	}
	c.render(w, r, status, "analyst/quarantine", "analyst.quarantine.title", v)
	return nil
}

// publishedVersions lists the published versions of a form, the ones a push
// (and so a re-apply) may name; none for a form the project does not have.
func (c *Console) publishedVersions(r *http.Request, project, formID string) ([]string, error) {
	form, err := c.cfg.Store.GetForm(r.Context(), project, formID)
	if errors.Is(err, domain.ErrNotFound) {
		return nil, nil
	}
	if err != nil {
		return nil, err
	}
	var out []string
	for _, fv := range form.Versions {
		if fv.State == domain.VersionPublished {
			out = append(out, fv.Version)
		}
	}
	return out, nil
}

// versionOptions are the choices of an entry's version select: the submitted
// version (even when it is no published one, so re-applying as it was stays
// possible), then the published ones in the order they were made; chosen is the last one tried when it is
// among them, else the submitted one.
func versionOptions(published []string, submitted, chosen string) []versionOption {
	out := []versionOption{{Value: submitted, Submitted: true}}
	for _, v := range published {
		if v != submitted {
			out = append(out, versionOption{Value: v})
		}
	}
	i := slices.IndexFunc(out, func(o versionOption) bool { return o.Value == chosen })
	out[max(i, 0)].Chosen = true
	return out
}

// submittedData is the data member of a quarantined submission, indented;
// the whole submission when it has none (it was not even an item).
func submittedData(sub json.RawMessage) string {
	var w struct {
		Data json.RawMessage `json:"data"`
	}
	if json.Unmarshal(sub, &w) == nil && len(w.Data) > 0 {
		return indentJSON(w.Data)
	}
	return indentJSON(sub)
}

// analystReapply re-applies a quarantine entry with the corrected data of
// its box, through records.Service.ReapplyQuarantine as POST
// /v1/projects/{project}/quarantine/{id}/reapply. Text that is not JSON is
// shown again, kept, with the error; a correction the checks refuse leaves
// the entry open with the new findings and the text (the service keeps it).
func (c *Console) analystReapply(w http.ResponseWriter, r *http.Request) error {
	project, id := pageFrom(r.Context()).project, mux.Vars(r)["id"]
	if err := r.ParseForm(); err != nil {
		return &domain.Error{Kind: domain.KindBadRequest, Code: "invalid_form", Title: "The form could not be read"}
	}
	text, ok := r.PostForm["data"]
	if !ok {
		return domain.Invalid("invalid_reapply", "data is required",
			[]domain.Finding{{Path: "/data", Keyword: "required", Message: "send the corrected data (the form's box)"}})
	}
	// The version select: "" (an older page without it) keeps the
	// submitted version, as the API's absent form_version does; a version
	// the form lacks is the service's to refuse, with its finding.
	version := strings.TrimSpace(r.PostForm.Get("form_version"))
	raw := json.RawMessage(strings.TrimSpace(text[0]))
	var probe any
	if err := json.Unmarshal(raw, &probe); err != nil {
		// Shown on the same page, the text kept as typed.
		return c.renderQuarantine(w, r, http.StatusUnprocessableEntity, id, text[0], version, "analyst.quarantine.not_json")
	}
	res, _, err := c.cfg.Records.ReapplyQuarantine(r.Context(), c.recordsCaller(r), project, id, records.Reapply{Data: raw, FormVersion: version})
	if err != nil {
		return err
	}
	// A refused correction leaves the entry open, its box holding the
	// text and the new findings (the entry's last re-apply): no flash.
	target := "/projects/" + project + "/data/quarantine"
	if !slices.Contains([]string{"rejected", "forbidden"}, res.Status) {
		target += "?msg=reapplied"
	}
	http.Redirect(w, r, target+"#q-"+id, http.StatusSeeOther)
	return nil
}

// analystDismiss dismisses a quarantine entry with a reason, through
// records.Service.DismissQuarantine as POST .../quarantine/{id}/dismiss
// (422 invalid_dismissal without a reason).
func (c *Console) analystDismiss(w http.ResponseWriter, r *http.Request) error {
	project, id := pageFrom(r.Context()).project, mux.Vars(r)["id"]
	if _, err := c.cfg.Records.DismissQuarantine(r.Context(), c.recordsCaller(r), project, id, r.PostFormValue("reason")); err != nil {
		return err
	}
	http.Redirect(w, r, "/projects/"+project+"/data/quarantine?msg=dismissed", http.StatusSeeOther)
	return nil
}
