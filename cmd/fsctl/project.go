package main

import (
	"context"
	"fmt"
	"text/tabwriter"

	"github.com/fieldsync/fieldsync/api"
)

// runProject is fsctl project create|list.
func runProject(ctx context.Context, e *env, args []string) error {
	return subcommands(ctx, e, "project", args, map[string]func(context.Context, *env, []string) error{
		"create": runProjectCreate,
		"list":   runProjectList,
	})
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
		fs.Usage()
		return usageErrorf("--title is required")
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

// runMember is fsctl member set PROJECT USERNAME ROLE (managers).
func runMember(ctx context.Context, e *env, args []string) error {
	return subcommands(ctx, e, "member", args, map[string]func(context.Context, *env, []string) error{
		"set": runMemberSet,

		"list":   runMemberList,
		"remove": runMemberRemove,
	})
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
