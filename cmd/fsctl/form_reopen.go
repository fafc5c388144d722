package main

import (
	"context"
	"fmt"

	"github.com/fieldsync/fieldsync/api"
)

// runFormReopen is fsctl form reopen --project P --form F (designers): a
// closed form takes new records again. Unlike close it asks nothing: it
// refuses nothing a tablet sends.
func runFormReopen(ctx context.Context, e *env, args []string) error {
	fs := newFlags(e, "form reopen", "--project P --form F")
	project := fs.String("project", "", "the project (required)")
	form := fs.String("form", "", "the form id (required)")
	if _, err := parse(fs, args, 0, 0); err != nil {
		return err
	}
	if err := requireFlags(fs, map[string]string{"project": *project, "form": *form}); err != nil {
		return err
	}
	s, err := e.session(ctx)
	if err != nil {
		return err
	}
	var f api.FormListEntry
	err = s.do(ctx, func(c *api.Client) error {
		f, err = c.ReopenForm(ctx, *project, *form)
		return err
	})
	if err != nil {
		return err
	}
	fmt.Fprintf(e.stdout, "Reopened %s in %s: it takes new records again. Items refused while it was closed wait in the quarantine (fsctl quarantine list --project %s --form %s).\n", f.ID, *project, *project, f.ID)
	return nil
}
