package console

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"strings"

	"github.com/fieldsync/fieldsync/api"
	"github.com/fieldsync/fieldsync/internal/forms"
	"github.com/fieldsync/fieldsync/internal/httpapi"
)

// designerUploadView is the data of designer/upload.
type designerUploadView struct {
	// Form, Version and Definition are the fields as the user sent them (or
	// as prefilled), so that an error loses nothing typed or pasted.
	Form, Version, Definition string
	// Missing lists the catalogue keys of required fields left empty.
	Missing []string
	// Problem is the forms service's refusal (nil before an upload), with
	// its findings: JSON pointers into the definition and what is wrong
	// there.
	Problem *api.Problem
	// Dropped is true when an uploaded file was too large to show back.
	Dropped bool
	// MaxKiB is the largest definition accepted, in KiB.
	MaxKiB int
}

// designerUploadPage shows the upload form. ?form= and ?version= prefill the
// form id and version, and ?from=<version> the definition of that version of
// the form, pretty-printed, to start a new version from (or to edit a draft,
// with ?version= the same).
func (c *Console) designerUploadPage(w http.ResponseWriter, r *http.Request) error {
	q := r.URL.Query()
	v := designerUploadView{Form: q.Get("form"), Version: q.Get("version"), MaxKiB: forms.MaxDefinitionSize / 1024}
	if from := q.Get("from"); from != "" && v.Form != "" {
		fv, err := c.cfg.Forms.Version(r.Context(), pageFrom(r.Context()).project, v.Form, from, false)
		if err != nil {
			return err
		}
		var buf bytes.Buffer
		if json.Indent(&buf, fv.Definition, "", "  ") == nil {
			v.Definition = buf.String()
		} else {
			v.Definition = string(fv.Definition)
		}
	}
	c.render(w, r, http.StatusOK, "designer/upload", "designer.upload.title", v)
	return nil
}

// designerUpload stores a draft through forms.Service.PutVersion, as PUT
// /v1/projects/{project}/forms/{form}/versions/{version}. The definition is
// the chosen file when there is one, else the text pasted in the textarea. A
// refusal shows the upload page again with the service's findings beside
// their pointers and the text kept; success goes to the draft's preview.
func (c *Console) designerUpload(w http.ResponseWriter, r *http.Request) error {
	v := designerUploadView{
		Form:       strings.TrimSpace(r.PostFormValue("form")),
		Version:    strings.TrimSpace(r.PostFormValue("version")),
		Definition: r.PostFormValue("definition"),
		MaxKiB:     forms.MaxDefinitionSize / 1024,
	}
	raw := []byte(v.Definition)
	if file, fh, err := r.FormFile("file"); err == nil {
		defer file.Close()
		if fh.Size > 0 {
			// As the API's readDefinition: one byte past the limit is enough
			// for the service to refuse the size.
			b, err := io.ReadAll(io.LimitReader(file, forms.MaxDefinitionSize+1))
			if err != nil {
				return fmt.Errorf("reading the uploaded definition: %w", err)
			}
			raw = b
			if len(b) <= forms.MaxDefinitionSize {
				v.Definition = string(b)
			} else {
				v.Definition, v.Dropped = "", true
			}
		}
	} else if !errors.Is(err, http.ErrMissingFile) && !errors.Is(err, http.ErrNotMultipart) {
		return err
	}
	if v.Form == "" {
		v.Missing = append(v.Missing, "designer.upload.form_id")
	}
	if v.Version == "" {
		v.Missing = append(v.Missing, "designer.upload.version")
	}
	if len(bytes.TrimSpace(raw)) == 0 {
		v.Missing = append(v.Missing, "designer.upload.definition")
	}
	if len(v.Missing) > 0 {
		c.render(w, r, http.StatusUnprocessableEntity, "designer/upload", "designer.upload.title", v)
		return nil
	}
	project := pageFrom(r.Context()).project
	_, created, err := c.cfg.Forms.PutVersion(c.designerActor(r), project, v.Form, v.Version, raw)
	if err != nil {
		p, _, internal := httpapi.ProblemFor(err)
		if internal || p.Status >= 500 {
			return err
		}
		v.Problem = &p
		c.render(w, r, p.Status, "designer/upload", "designer.upload.title", v)
		return nil
	}
	msg := "flash.form_draft_replaced"
	if created {
		msg = "flash.form_draft_created"
	}
	designerRedirect(w, r, designerVersionPath(project, v.Form, v.Version), msg, "")
	return nil
}

// designerVersionPath is the preview page of a version.
func designerVersionPath(project, form, version string) string {
	return "/projects/" + project + "/forms/" + form + "/versions/" + version
}
