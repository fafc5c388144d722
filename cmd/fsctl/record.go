package main

import (
	"context"
	"encoding/json"
	"fmt"
	"strings"
	"text/tabwriter"
	"time"

	"github.com/fieldsync/fieldsync/api"
)

// recordVerbs are the analysts' commands on one record.
var recordVerbs = map[string]verb{
	"comment":  {"comment ID --project P --text T [--state S]: comment on a record (and set its review state)", runRecordComment},
	"comments": {"comments ID --project P [--limit N] [--cursor C] [--json]: a record's review thread, oldest first", runRecordComments},
}

// runRecordComment is fsctl record comment ID --project P --text T [--state S]
// (analysts, managers): add a comment to the record's review thread, setting
// its review state with it when --state is given.
func runRecordComment(ctx context.Context, e *env, args []string) error {
	fs := newFlags(e, "record comment", "ID --project P --text T [--state received|approved|has_issues|rejected]")
	project := fs.String("project", "", "the project (required)")
	text := fs.String("text", "", fmt.Sprintf("the comment (required; at most %d characters)", api.MaxCommentChars))
	state := fs.String("state", "", "the review state the record takes with the comment: received, approved, has_issues or rejected")
	pos, err := parse(fs, args, 1, 1)
	if err != nil {
		return err
	}
	if err := requireFlags(fs, map[string]string{"project": *project, "text": *text}); err != nil {
		return err
	}
	req := api.CommentRequest{Text: *text}
	if *state != "" {
		req.ReviewState = state
	}
	s, err := e.session(ctx)
	if err != nil {
		return err
	}
	var c api.Comment
	err = s.do(ctx, func(cl *api.Client) error {
		c, err = cl.AddComment(ctx, *project, pos[0], req)
		return err
	})
	if err != nil {
		return err
	}
	if c.PreviousState != "" {
		fmt.Fprintf(e.stdout, "Commented on %s; its review state went from %s to %s.\n", pos[0], c.PreviousState, c.ReviewState)
	} else {
		fmt.Fprintf(e.stdout, "Commented on %s (review state %s).\n", pos[0], c.ReviewState)
	}
	return nil
}

// runRecordComments is fsctl record comments ID --project P [--limit N]
// [--cursor C] [--json]: one page of the record's review thread, comments and
// review-state changes with who and when.
func runRecordComments(ctx context.Context, e *env, args []string) error {
	fs := newFlags(e, "record comments", "ID --project P [--limit N] [--cursor C] [--json]")
	project := fs.String("project", "", "the project (required)")
	var p api.Page
	fs.IntVar(&p.Limit, "limit", 100, "entries per page (at most 1000)")
	fs.StringVar(&p.Cursor, "cursor", "", "the page after this cursor (printed under the previous page)")
	asJSON := fs.Bool("json", false, `print the server's answer as JSON ({"items": […]}), for scripts`)
	pos, err := parse(fs, args, 1, 1)
	if err != nil {
		return err
	}
	if err := requireFlags(fs, map[string]string{"project": *project}); err != nil {
		return err
	}
	s, err := e.session(ctx)
	if err != nil {
		return err
	}
	var page api.CommentList
	err = s.do(ctx, func(cl *api.Client) error {
		page, err = cl.ListComments(ctx, *project, pos[0], p)
		return err
	})
	if err != nil {
		return err
	}
	if *asJSON {
		enc := json.NewEncoder(e.stdout)
		enc.SetIndent("", "  ")
		return enc.Encode(page)
	}
	if len(page.Items) == 0 {
		fmt.Fprintf(e.stdout, "No comments on %s.\n", pos[0])
		return nil
	}
	tw := tabwriter.NewWriter(e.stdout, 0, 0, 2, ' ', 0)
	fmt.Fprintln(tw, "TIME\tAUTHOR\tSTATE\tCOMMENT")
	for _, c := range page.Items {
		st := c.ReviewState
		if c.PreviousState != "" {
			st = c.PreviousState + " -> " + c.ReviewState
		}
		// One line per entry: a comment's own line breaks would break the table.
		text := strings.Join(strings.Fields(c.Text), " ")
		fmt.Fprintf(tw, "%s\t%s\t%s\t%s\n", c.CreatedAt.UTC().Format(time.RFC3339), c.Author, st, dash(text))
	}
	if err := tw.Flush(); err != nil {
		return err
	}
	if page.Next != "" {
		fmt.Fprintf(e.stdout, "\nMore: add --cursor %s\n", page.Next)
	}
	return nil
}
