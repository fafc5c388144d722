package console

import (
	"net/http"
	"net/url"

	"github.com/fieldsync/fieldsync/internal/domain"
)

// usersView is the data of manager/users.
type usersView struct {
	Users        []domain.User
	Cursor, Next string
	// Username and DisplayName are the add form's values after a refusal.
	Username, DisplayName string
	// Self is the signed-in admin, whose own row has no disable button.
	Self string
}

// usersPage lists the users, as GET /v1/users (admins), with the forms that
// add one and act on one.
func (c *Console) usersPage(w http.ResponseWriter, r *http.Request) error {
	cursor := r.URL.Query().Get("cursor")
	us, next, err := c.cfg.Identity.ListUsers(r.Context(), principal(r), cursor, pageSize)
	if err != nil {
		return err
	}
	v := usersView{Users: us, Cursor: cursor, Next: next, Self: principal(r).Username}
	if r.Method == http.MethodPost && pathVar(r, "username") == "" {
		v.Username, v.DisplayName = r.PostFormValue("username"), r.PostFormValue("display_name")
	}
	c.render(w, r, http.StatusOK, "manager/users", "manager.users.title", v)
	return nil
}

func usersDone(w http.ResponseWriter, r *http.Request, msg string) error {
	http.Redirect(w, r, "/users?msg="+url.QueryEscape(msg), http.StatusSeeOther)
	return nil
}

// createUser adds a user, as POST /v1/users.
func (c *Console) createUser(w http.ResponseWriter, r *http.Request) error {
	_, err := c.cfg.Identity.CreateUser(r.Context(), principal(r), r.PostFormValue("username"), r.PostFormValue("password"), r.PostFormValue("display_name"))
	if err != nil {
		return c.formFailed(w, r, err, c.usersPage)
	}
	return usersDone(w, r, "user_created")
}

// updateUser changes a user's display name and admin flag, as PATCH
// /v1/users/{username}. The form sends display_name, and set_admin=1 with
// the admin checkbox (absent: not an admin) when it shows the checkbox (not
// on the admin's own row, whose flag the service does not let it change). A
// form with neither changes nothing and is refused.
func (c *Console) updateUser(w http.ResponseWriter, r *http.Request) error {
	var name *string
	var admin *bool
	if v := r.PostFormValue("display_name"); v != "" {
		name = &v
	}
	if r.PostFormValue("set_admin") == "1" {
		a := r.PostFormValue("admin") == "on"
		admin = &a
	}
	if name == nil && admin == nil {
		return c.formFailed(w, r, domain.Invalid("invalid_update", "Nothing to change",
			[]domain.Finding{{Path: "/display_name", Message: "give a display name"}}), c.usersPage)
	}
	if _, err := c.cfg.Identity.UpdateUser(r.Context(), principal(r), pathVar(r, "username"), name, admin); err != nil {
		return c.formFailed(w, r, err, c.usersPage)
	}
	return usersDone(w, r, "user_updated")
}

// resetPassword sets a user's password, as POST /v1/users/{username}/password:
// the user's sessions end.
func (c *Console) resetPassword(w http.ResponseWriter, r *http.Request) error {
	if err := c.cfg.Identity.ResetPassword(r.Context(), principal(r), pathVar(r, "username"), r.PostFormValue("new_password")); err != nil {
		return c.formFailed(w, r, err, c.usersPage)
	}
	return usersDone(w, r, "password_reset")
}

// revokeUser signs a user out everywhere, as POST /v1/users/{username}/revoke.
func (c *Console) revokeUser(w http.ResponseWriter, r *http.Request) error {
	if err := c.cfg.Identity.RevokeUser(r.Context(), principal(r), pathVar(r, "username")); err != nil {
		return c.formFailed(w, r, err, c.usersPage)
	}
	return usersDone(w, r, "user_revoked")
}

// setUserDisabled disables or enables a user, as POST
// /v1/users/{username}/disable and /enable.
func (c *Console) setUserDisabled(disabled bool) handlerFunc {
	return func(w http.ResponseWriter, r *http.Request) error {
		if err := c.cfg.Identity.SetUserDisabled(r.Context(), principal(r), pathVar(r, "username"), disabled); err != nil {
			return c.formFailed(w, r, err, c.usersPage)
		}
		if disabled {
			return usersDone(w, r, "user_disabled")
		}
		return usersDone(w, r, "user_enabled")
	}
}
