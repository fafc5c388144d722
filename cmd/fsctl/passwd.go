package main

import (
	"context"
	"fmt"

	"github.com/fieldsync/fieldsync/api"
)

// runPasswd is fsctl passwd: change your own password. The current password
// comes from FSCTL_PASSWORD, the new one from FSCTL_NEW_PASSWORD, or each from
// a prompt without echo (the new one asked twice), or each from one line of
// standard input (current first). Every other session of yours is signed out
// unless --keep-other-sessions: a password is changed because someone else may
// know it. This session stays.
func runPasswd(ctx context.Context, e *env, args []string) error {
	fs := newFlags(e, "passwd", "[--keep-other-sessions]")
	keep := fs.Bool("keep-other-sessions", false, "do not sign out your other sessions (other machines, other fsctl configs)")
	if _, err := parse(fs, args, 0, 0); err != nil {
		return err
	}
	s, err := e.session(ctx)
	if err != nil {
		return err
	}
	current, err := e.readPassword("FSCTL_PASSWORD", fmt.Sprintf("Current password of %s: ", s.cfg.Username), false)
	if err != nil {
		return err
	}
	next, err := e.readPassword("FSCTL_NEW_PASSWORD", "New password: ", true)
	if err != nil {
		return err
	}
	err = s.do(ctx, func(c *api.Client) error {
		return c.ChangePassword(ctx, api.ChangePasswordRequest{CurrentPassword: current, NewPassword: next, RevokeOtherSessions: !*keep})
	})
	if err != nil {
		return err
	}
	if *keep {
		fmt.Fprintln(e.stdout, "Password changed. Your other sessions go on.")
	} else {
		fmt.Fprintln(e.stdout, "Password changed. Your other sessions are signed out; this one goes on.")
	}
	return nil
}

// runUserResetPassword is fsctl user reset-password USERNAME (admins): the
// new password comes from FSCTL_NEW_PASSWORD, a prompt (asked twice) or a line
// of standard input. Every session of the user ends.
func runUserResetPassword(ctx context.Context, e *env, args []string) error {
	fs := newFlags(e, "user reset-password", "USERNAME")
	pos, err := parse(fs, args, 1, 1)
	if err != nil {
		return err
	}
	s, err := e.session(ctx)
	if err != nil {
		return err
	}
	password, err := e.readPassword("FSCTL_NEW_PASSWORD", fmt.Sprintf("New password for %s: ", pos[0]), true)
	if err != nil {
		return err
	}
	if err := s.do(ctx, func(c *api.Client) error { return c.ResetPassword(ctx, pos[0], password) }); err != nil {
		return err
	}
	fmt.Fprintf(e.stdout, "The password of %s is reset and every session of theirs has ended.\n", pos[0])
	fmt.Fprintf(e.stdout, "Hand them the new password; they can change it with: fsctl passwd\n")
	return nil
}

// runUserAdmin is fsctl user make-admin|remove-admin USERNAME (admins).
func runUserAdmin(admin bool) func(context.Context, *env, []string) error {
	verb := map[bool]string{true: "make-admin", false: "remove-admin"}[admin]
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
			_, err := c.UpdateUser(ctx, pos[0], api.UpdateUserRequest{Admin: &admin})
			return err
		})
		if err != nil {
			return err
		}
		if admin {
			fmt.Fprintf(e.stdout, "%s is now an admin.\n", pos[0])
		} else {
			fmt.Fprintf(e.stdout, "%s is no longer an admin.\n", pos[0])
		}
		return nil
	}
}
