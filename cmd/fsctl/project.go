package main

import (
	"context"
	"fmt"
	"text/tabwriter"

	"github.com/fieldsync/fieldsync/api"
)

// projectVerbs is fsctl project create|list.
var projectVerbs = map[string]verb{
	"create": {"create ID --title TITLE: a new project (admins)", runProjectCreate},
	"list":   {"list: your projects and your role in each", runProjectList},
}

// runProjectCreate is fsctl project create ID --title TITLE (admins).
func runProjectCreate(ctx context.Context, e *env, args []string) error {
	fs := newFlags(e, "project create", "ID --title TITLE")
	title := fs.String("title", "", "the project's title (required)")
	pos, err := parse(fs, args, 1, 1)
	if err != nil {
		return err
	}
	if *title == "" {
		return fs.usageErrorf("--title is required")
	}
	s, err := e.session(ctx)
	if err != nil {
		return err
	}
	var p api.Project
	err = s.do(ctx, func(c *api.Client) error {
		p, err = c.CreateProject(ctx, pos[0], *title)
		return err
	})
	if err != nil {
		return err
	}
	fmt.Fprintf(e.stdout, "Created project %s (%s).\n", p.ID, p.Title)
	return nil
}

// runProjectList is fsctl project list: the caller's projects and roles.
func runProjectList(ctx context.Context, e *env, args []string) error {
	fs := newFlags(e, "project list", "")
	if _, err := parse(fs, args, 0, 0); err != nil {
		return err
	}
	s, err := e.session(ctx)
	if err != nil {
		return err
	}
	var list []api.Project
	err = s.do(ctx, func(c *api.Client) error {
		list, err = c.ListProjects(ctx)
		return err
	})
	if err != nil {
		return err
	}
	if len(list) == 0 {
		fmt.Fprintln(e.stdout, "No projects.")
		return nil
	}
	tw := tabwriter.NewWriter(e.stdout, 0, 0, 2, ' ', 0)
	fmt.Fprintln(tw, "ID\tROLE\tTITLE")
	for _, p := range list {
		fmt.Fprintf(tw, "%s\t%s\t%s\n", p.ID, p.Role, p.Title)
	}
	return tw.Flush()
}

// memberVerbs is fsctl member set|list|remove (managers).
var memberVerbs = map[string]verb{
	"set":    {"set PROJECT USERNAME ROLE: give a user a role (manager, designer, analyst or enumerator)", runMemberSet},
	"list":   {"list PROJECT [--json]: the project's members and their roles", runMemberList},
	"remove": {"remove PROJECT USERNAME: the user loses access to the project at once", runMemberRemove},
}

func runMemberSet(ctx context.Context, e *env, args []string) error {
	fs := newFlags(e, "member set", "PROJECT USERNAME ROLE (manager, designer, analyst or enumerator)")
	pos, err := parse(fs, args, 3, 3)
	if err != nil {
		return err
	}
	s, err := e.session(ctx)
	if err != nil {
		return err
	}
	var m api.Member
	err = s.do(ctx, func(c *api.Client) error {
		m, err = c.SetMember(ctx, pos[0], pos[1], pos[2])
		return err
	})
	if err != nil {
		return err
	}
	fmt.Fprintf(e.stdout, "%s is now %s of %s.\n", m.Username, m.Role, m.Project)
	return nil
}
