package console

import (
	"net/http"
	"time"

	"github.com/fieldsync/fieldsync/internal/domain"
	"github.com/gorilla/mux"
)

// designerFormsView is the data of designer/forms.
type designerFormsView struct {
	Forms []designerFormRow
	// CanUpload, CanPublish and CanClose say which actions the user's role
	// has (the API's rules of the routes that do them).
	CanUpload, CanPublish, CanClose bool
}

// designerFormRow is one form of the list with its versions.
type designerFormRow struct {
	ID, Title string
	// Closed is true for a form that takes no new records.
	Closed         bool
	ClosedAt       *time.Time
	CurrentVersion string
	// Latest is the version uploaded last, the one a new version starts from.
	Latest   string
	Versions []designerVersionRow
}

// designerVersionRow is one version in the forms list.
type designerVersionRow struct {
	Version string
	// Published is false for a draft.
	Published   bool
	PublishedAt *time.Time
	// Current is the form's latest published version (the one tablets get).
	Current bool
	// Hash is the start of the content hash, enough to tell versions apart.
	Hash string
}

// designerForms lists the project's forms with their versions, as GET
// /v1/projects/{project}/forms: enumerators see published versions only.
func (c *Console) designerForms(w http.ResponseWriter, r *http.Request) error {
	list, err := c.cfg.Forms.List(r.Context(), pageFrom(r.Context()).project, designerPublishedOnly(r))
	if err != nil {
		return err
	}
	v := designerFormsView{
		CanUpload:  c.designerMay(r, mirrorPutVersion),
		CanPublish: c.designerMay(r, mirrorPublish),
		CanClose:   c.designerMay(r, mirrorCloseForm),
	}
	for _, f := range list {
		row := designerFormRow{ID: f.ID, Title: f.Title, Closed: f.State == domain.FormClosed, ClosedAt: f.ClosedAt,
			CurrentVersion: f.CurrentVersion}
		for _, fv := range f.Versions {
			row.Versions = append(row.Versions, designerVersionRow{Version: fv.Version,
				Published: fv.State == domain.VersionPublished, PublishedAt: fv.PublishedAt,
				Current: fv.Version == f.CurrentVersion, Hash: designerShortHash(fv.Hash)})
		}
		if n := len(row.Versions); n > 0 {
			row.Latest = row.Versions[n-1].Version
		}
		v.Forms = append(v.Forms, row)
	}
	c.render(w, r, http.StatusOK, "designer/forms", "designer.forms.title", v)
	return nil
}

// designerClose closes a form, as POST /v1/projects/{project}/forms/{form}/close.
func (c *Console) designerClose(w http.ResponseWriter, r *http.Request) error {
	form := mux.Vars(r)["form"]
	if _, err := c.cfg.Forms.Close(c.designerActor(r), pageFrom(r.Context()).project, form); err != nil {
		return err
	}
	designerRedirect(w, r, designerPath(r, designerFormsPath), "flash.form_closed", "form-"+form)
	return nil
}

// designerReopen reopens a closed form, as POST
// /v1/projects/{project}/forms/{form}/reopen.
func (c *Console) designerReopen(w http.ResponseWriter, r *http.Request) error {
	form := mux.Vars(r)["form"]
	if _, err := c.cfg.Forms.Reopen(c.designerActor(r), pageFrom(r.Context()).project, form); err != nil {
		return err
	}
	designerRedirect(w, r, designerPath(r, designerFormsPath), "flash.form_reopened", "form-"+form)
	return nil
}

// designerShortHash is the first 12 hex digits of a content hash.
func designerShortHash(h string) string {
	if len(h) > 12 {
		return h[:12]
	}
	return h
}
