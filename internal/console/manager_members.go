package console

import (
	"net/http"
	"net/url"

	"github.com/fieldsync/fieldsync/internal/domain"
	"github.com/fieldsync/fieldsync/internal/identity"
)

// pageSize is the rows of one page of the managers' lists.
const pageSize = 50

// roles are the roles a member may have, for the role selects.
var roles = []domain.Role{domain.RoleManager, domain.RoleDesigner, domain.RoleAnalyst, domain.RoleEnumerator}

// membersView is the data of manager/members.
type membersView struct {
	Members []identity.MemberView
	Roles   []domain.Role
	// Cursor is this page's cursor ("" for the first); Next the next page's.
	Cursor, Next string
	// Username and Role are the add form's values after a refusal.
	Username string
	Role     string
}

// membersPage lists a project's members with their roles, as GET
// /v1/projects/{project}/members, with forms to add a member, change a role
// and remove a member.
func (c *Console) membersPage(w http.ResponseWriter, r *http.Request) error {
	pc := pageFrom(r.Context())
	cursor := r.URL.Query().Get("cursor")
	ms, next, err := c.cfg.Identity.ListMembers(r.Context(), principal(r), pc.project, cursor, pageSize)
	if err != nil {
		return err
	}
	v := membersView{Members: ms, Roles: roles, Cursor: cursor, Next: next}
	if r.Method == http.MethodPost {
		v.Username, v.Role = r.PostFormValue("username"), r.PostFormValue("role")
	}
	c.render(w, r, http.StatusOK, "manager/members", "manager.members.title", v)
	return nil
}

// setMember adds a member or changes a member's role, as PUT
// /v1/projects/{project}/members/{username}.
func (c *Console) setMember(w http.ResponseWriter, r *http.Request) error {
	pc := pageFrom(r.Context())
	username := r.PostFormValue("username")
	_, err := c.cfg.Identity.SetMember(r.Context(), principal(r), pc.project, username, domain.Role(r.PostFormValue("role")))
	if err != nil {
		return c.formFailed(w, r, err, c.membersPage)
	}
	http.Redirect(w, r, "/projects/"+url.PathEscape(pc.project)+"/members?msg=member_saved", http.StatusSeeOther)
	return nil
}

// removeMember removes a member, as DELETE
// /v1/projects/{project}/members/{username}.
func (c *Console) removeMember(w http.ResponseWriter, r *http.Request) error {
	pc := pageFrom(r.Context())
	if err := c.cfg.Identity.RemoveMember(r.Context(), principal(r), pc.project, pathVar(r, "username")); err != nil {
		return c.formFailed(w, r, err, c.membersPage)
	}
	http.Redirect(w, r, "/projects/"+url.PathEscape(pc.project)+"/members?msg=member_removed", http.StatusSeeOther)
	return nil
}
