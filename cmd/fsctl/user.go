package main

import (
	"context"
	"fmt"

	"github.com/fieldsync/fieldsync/api"
)

// userVerbs is fsctl user add|revoke|disable|enable|list|reset-password|make-admin|remove-admin (admins).
var userVerbs = map[string]verb{
	"add":            {"add USERNAME [--display-name NAME]: a new user; the password is asked", runUserAdd},
	"revoke":         {"revoke USERNAME: sign the user out everywhere", runUserRevoke},
	"disable":        {"disable USERNAME: no more logins, and every session ends", runUserDisable(true)},
	"enable":         {"enable USERNAME: the user may log in again", runUserDisable(false)},
	"list":           {"list [--json]: every user, with admin and disabled flags", runUserList},
	"reset-password": {"reset-password USERNAME: a new password (asked); every session of the user ends", runUserResetPassword},
	"make-admin":     {"make-admin USERNAME: the user becomes an admin", runUserAdmin(true)},
	"remove-admin":   {"remove-admin USERNAME: the user is an admin no more (never the last one)", runUserAdmin(false)},
}

// runUserAdd is fsctl user add USERNAME [--display-name NAME] (admins). The new
// user's password comes from FSCTL_NEW_PASSWORD, a terminal prompt (asked
// twice) or a line of standard input.
func runUserAdd(ctx context.Context, e *env, args []string) error {
	fs := newFlags(e, "user add", "USERNAME [--display-name NAME]")
	display := fs.String("display-name", "", "the name shown for the user")
	pos, err := parse(fs, args, 1, 1)
	if err != nil {
		return err
	}
	s, err := e.session(ctx)
	if err != nil {
		return err
	}
	password, err := e.readPassword("FSCTL_NEW_PASSWORD", fmt.Sprintf("Password for the new user %s: ", pos[0]), true)
	if err != nil {
		return err
	}
	var u api.User
	err = s.do(ctx, func(c *api.Client) error {
		u, err = c.CreateUser(ctx, api.CreateUserRequest{Username: pos[0], Password: password, DisplayName: *display})
		return err
	})
	if err != nil {
		return err
	}
	fmt.Fprintf(e.stdout, "Created user %s.\n", u.Username)
	fmt.Fprintf(e.stdout, "Give a role with: fsctl member set PROJECT %s ROLE\n", u.Username)
	return nil
}

// runUserRevoke is fsctl user revoke USERNAME (admins): signed out everywhere.
func runUserRevoke(ctx context.Context, e *env, args []string) error {
	fs := newFlags(e, "user revoke", "USERNAME")
	pos, err := parse(fs, args, 1, 1)
	if err != nil {
		return err
	}
	s, err := e.session(ctx)
	if err != nil {
		return err
	}
	if err := s.do(ctx, func(c *api.Client) error { return c.RevokeUser(ctx, pos[0]) }); err != nil {
		return err
	}
	fmt.Fprintf(e.stdout, "%s is signed out everywhere; they can log in again with their password.\n", pos[0])
	return nil
}

// runUserDisable is fsctl user disable|enable USERNAME (admins). A disabled user
// cannot log in and is signed out everywhere.
func runUserDisable(disabled bool) func(context.Context, *env, []string) error {
	verb := map[bool]string{true: "disable", false: "enable"}[disabled]
	return func(ctx context.Context, e *env, args []string) error {
		fs := newFlags(e, "user "+verb, "USERNAME")
		pos, err := parse(fs, args, 1, 1)
		if err != nil {
			return err
		}
		s, err := e.session(ctx)
		if err != nil {
			return err
		}
		err = s.do(ctx, func(c *api.Client) error {
			if disabled {
				return c.DisableUser(ctx, pos[0])
			}
			return c.EnableUser(ctx, pos[0])
		})
		if err != nil {
			return err
		}
		if disabled {
			fmt.Fprintf(e.stdout, "%s is disabled: they cannot log in, and every session of theirs has ended.\n", pos[0])
		} else {
			fmt.Fprintf(e.stdout, "%s is enabled and may log in again.\n", pos[0])
		}
		return nil
	}
}
