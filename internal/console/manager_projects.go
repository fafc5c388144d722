package console

import (
	"net/http"
	"net/url"
)

// createProject is the home page's form for admins, as POST /v1/projects.
func (c *Console) createProject(w http.ResponseWriter, r *http.Request) error {
	p, err := c.cfg.Identity.CreateProject(r.Context(), principal(r), r.PostFormValue("id"), r.PostFormValue("title"))
	if err != nil {
		return c.formFailed(w, r, err, c.home)
	}
	http.Redirect(w, r, "/projects/"+url.PathEscape(p.ID)+"?msg=project_created", http.StatusSeeOther)
	return nil
}
