package main

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"strings"
	"text/tabwriter"
	"time"

	"github.com/fieldsync/fieldsync/api"
)

// The administration lists print every page, as a table for a person or as
// JSON lines (--json) for a script.

// allPages calls list with each cursor until the last page.
func allPages(ctx context.Context, s *session, list func(c *api.Client, cursor string) (next string, err error)) error {
	cursor := ""
	for {
		var next string
		err := s.do(ctx, func(c *api.Client) error {
			var err error
			next, err = list(c, cursor)
			return err
		})
		if err != nil || next == "" {
			return err
		}
		cursor = next
	}
}

// table writes rows aligned in columns.
func table(w io.Writer, header string, rows []string) error {
	tw := tabwriter.NewWriter(w, 0, 4, 2, ' ', 0)
	fmt.Fprintln(tw, header)
	for _, r := range rows {
		fmt.Fprintln(tw, r)
	}
	return tw.Flush()
}

// listFlags parses the flags of a list command: --json, and the positional
// arguments.
func listFlags(e *env, name, usage string, args []string, nargs int) (pos []string, asJSON bool, err error) {
	fs := newFlags(e, name, usage+" [--json]")
	j := fs.Bool("json", false, "print one JSON object per line instead of a table")
	pos, err = parse(fs, args, nargs, nargs)
	return pos, *j, err
}

// writeJSONLines prints each item as one JSON line.
func writeJSONLines[T any](w io.Writer, items []T) error {
	enc := json.NewEncoder(w)
	for _, it := range items {
		if err := enc.Encode(it); err != nil {
			return err
		}
	}
	return nil
}

func timeOrDash(t *time.Time) string {
	if t == nil {
		return "-"
	}
	return t.UTC().Format(time.RFC3339)
}

// runUserList is fsctl user list [--json] (admins).
func runUserList(ctx context.Context, e *env, args []string) error {
	_, asJSON, err := listFlags(e, "user list", "", args, 0)
	if err != nil {
		return err
	}
	s, err := e.session(ctx)
	if err != nil {
		return err
	}
	var users []api.UserEntry
	err = allPages(ctx, s, func(c *api.Client, cursor string) (string, error) {
		l, err := c.ListUsers(ctx, api.Page{Cursor: cursor})
		users = append(users, l.Items...)
		return l.Next, err
	})
	if err != nil {
		return err
	}
	if asJSON {
		return writeJSONLines(e.stdout, users)
	}
	rows := make([]string, len(users))
	for i, u := range users {
		var flags []string
		if u.Admin {
			flags = append(flags, "admin")
		}
		if u.Disabled {
			flags = append(flags, "disabled")
		}
		rows[i] = fmt.Sprintf("%s\t%s\t%s\t%s", u.Username, orDash(u.DisplayName), orDash(strings.Join(flags, ",")), u.CreatedAt.UTC().Format(time.RFC3339))
	}
	return table(e.stdout, "USERNAME\tDISPLAY NAME\tFLAGS\tCREATED", rows)
}

// runMemberList is fsctl member list PROJECT [--json] (managers).
func runMemberList(ctx context.Context, e *env, args []string) error {
	pos, asJSON, err := listFlags(e, "member list", "PROJECT", args, 1)
	if err != nil {
		return err
	}
	s, err := e.session(ctx)
	if err != nil {
		return err
	}
	var members []api.ProjectMember
	err = allPages(ctx, s, func(c *api.Client, cursor string) (string, error) {
		l, err := c.ListMembers(ctx, pos[0], api.Page{Cursor: cursor})
		members = append(members, l.Items...)
		return l.Next, err
	})
	if err != nil {
		return err
	}
	if asJSON {
		return writeJSONLines(e.stdout, members)
	}
	rows := make([]string, len(members))
	for i, m := range members {
		rows[i] = fmt.Sprintf("%s\t%s\t%s", m.Username, orDash(m.DisplayName), m.Role)
	}
	return table(e.stdout, "USERNAME\tDISPLAY NAME\tROLE", rows)
}

// runMemberRemove is fsctl member remove PROJECT USERNAME (managers).
func runMemberRemove(ctx context.Context, e *env, args []string) error {
	fs := newFlags(e, "member remove", "PROJECT USERNAME")
	pos, err := parse(fs, args, 2, 2)
	if err != nil {
		return err
	}
	s, err := e.session(ctx)
	if err != nil {
		return err
	}
	if err := s.do(ctx, func(c *api.Client) error { return c.RemoveMember(ctx, pos[0], pos[1]) }); err != nil {
		return err
	}
	fmt.Fprintf(e.stdout, "%s is no longer a member of %s; their access to it has ended.\n", pos[1], pos[0])
	return nil
}

// runDeviceList is fsctl device list PROJECT [--json] (managers): each tablet
// with its state and last sync, to find the silent ones.
func runDeviceList(ctx context.Context, e *env, args []string) error {
	pos, asJSON, err := listFlags(e, "device list", "PROJECT", args, 1)
	if err != nil {
		return err
	}
	s, err := e.session(ctx)
	if err != nil {
		return err
	}
	var devices []api.ProjectDevice
	err = allPages(ctx, s, func(c *api.Client, cursor string) (string, error) {
		l, err := c.ListDevices(ctx, pos[0], api.Page{Cursor: cursor})
		devices = append(devices, l.Items...)
		return l.Next, err
	})
	if err != nil {
		return err
	}
	if asJSON {
		return writeJSONLines(e.stdout, devices)
	}
	rows := make([]string, len(devices))
	for i, d := range devices {
		rows[i] = fmt.Sprintf("%s\t%s\t%s\t%s", d.DeviceID, d.Name, d.State, timeOrDash(d.LastSeenAt))
	}
	return table(e.stdout, "DEVICE ID\tNAME\tSTATE\tLAST SYNC", rows)
}
