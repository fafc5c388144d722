package main

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"strings"
	"time"

	"github.com/fieldsync/fieldsync/api"
)

// quarantineVerbs is fsctl quarantine list|reapply|dismiss: the pushed items
// the server could not apply (protocol.md §3), for analysts and managers
// (designers may list).
var quarantineVerbs = map[string]verb{
	"list":    {"list --project P [--state S] [--form F] [--json]: the entries (open ones unless --state)", runQuarantineList},
	"reapply": {"reapply ID --project P [--data FILE] [--form-version V]: apply an entry again, corrected or not", runQuarantineReapply},
	"dismiss": {"dismiss ID --project P --reason TEXT: keep an entry, marked not to be applied", runQuarantineDismiss},
}

// runQuarantineList is fsctl quarantine list --project P [--state S] [--form
// F] [--json]: every page of the entries, as a table or as JSON lines.
func runQuarantineList(ctx context.Context, e *env, args []string) error {
	fs := newFlags(e, "quarantine list", "--project P [--state open|resolved|dismissed|all] [--form F] [--json]")
	project := fs.String("project", "", "the project (required)")
	state := fs.String("state", "", "the states to list, comma-separated, or all (default open)")
	form := fs.String("form", "", "only the entries of this form")
	asJSON := fs.Bool("json", false, "print one JSON object per line (the whole entry, with its submission) instead of a table")
	if _, err := parse(fs, args, 0, 0); err != nil {
		return err
	}
	if err := requireFlags(fs, map[string]string{"project": *project}); err != nil {
		return err
	}
	q := api.QuarantineQuery{Form: *form}
	switch *state {
	case "":
	case "all":
		q.State = []string{api.QuarantineOpen, api.QuarantineResolved, api.QuarantineDismissed}
	default:
		q.State = strings.Split(*state, ",")
	}
	s, err := e.session(ctx)
	if err != nil {
		return err
	}
	var items []api.QuarantineItem
	err = allPages(ctx, s, func(c *api.Client, cursor string) (string, error) {
		q.Cursor = cursor
		l, err := c.ListQuarantine(ctx, *project, q)
		items = append(items, l.Items...)
		return l.Next, err
	})
	if err != nil {
		return err
	}
	if *asJSON {
		return writeJSONLines(e.stdout, items)
	}
	if len(items) == 0 {
		fmt.Fprintf(e.stdout, "No %s quarantine entries in %s.\n", orWord(*state, "open"), *project)
		return nil
	}
	rows := make([]string, len(items))
	for i, it := range items {
		rows[i] = fmt.Sprintf("%s\t%s\t%s\t%s/%s\t%s\t%s\t%s\t%s", it.ID, it.State, it.Reason, it.Form, it.FormVersion,
			orDash(it.RecordID), orDash(it.SubmittedBy), it.LastSeen.UTC().Format(time.RFC3339), why(it))
	}
	return table(e.stdout, "ID\tSTATE\tREASON\tFORM\tRECORD\tSUBMITTED BY\tLAST SEEN\tWHY", rows)
}

// why is one line on an entry: its first finding, or what was decided.
func why(it api.QuarantineItem) string {
	switch it.State {
	case api.QuarantineDismissed:
		return fmt.Sprintf("dismissed by %s: %s", it.DismissedBy, it.DismissReason)
	case api.QuarantineResolved:
		if it.ResolvedBy != "" {
			return "re-applied by " + it.ResolvedBy
		}
		return "its record was stored by a later push"
	}
	if len(it.Errors) == 0 {
		return "-"
	}
	f := it.Errors[0]
	msg := f.Message
	if f.Path != "" {
		msg = f.Path + ": " + msg
	}
	if n := len(it.Errors) - 1; n > 0 {
		msg += fmt.Sprintf(" (and %d more)", n)
	}
	return msg
}

func orWord(s, word string) string {
	if s == "" {
		return word
	}
	return s
}

// errRefused ends a re-apply the server refused again; the command has
// printed the findings.
var errRefused = errors.New("refused")

// runQuarantineReapply is fsctl quarantine reapply ID --project P [--data
// FILE] [--form-version V] (analysts, managers): the entry's item goes
// through validation and the form's policy again, with the data of FILE ("-"
// for standard input) in place of what was submitted. A refusal exits 1 with
// the findings; the entry stays open, and keeps the data tried.
func runQuarantineReapply(ctx context.Context, e *env, args []string) error {
	fs := newFlags(e, "quarantine reapply", "ID --project P [--data FILE] [--form-version V] [--json]")
	project := fs.String("project", "", "the project (required)")
	dataFile := fs.String("data", "", "a `FILE` holding the corrected data (a JSON object; - for standard input); without it the submitted data is applied")
	version := fs.String("form-version", "", "apply the item against this version of its form instead of the one it names")
	asJSON := fs.Bool("json", false, "print the server's answer as JSON")
	pos, err := parse(fs, args, 1, 1)
	if err != nil {
		return err
	}
	if err := requireFlags(fs, map[string]string{"project": *project}); err != nil {
		return err
	}
	req := api.ReapplyRequest{FormVersion: *version}
	if *dataFile != "" {
		var b []byte
		if *dataFile == "-" {
			b, err = io.ReadAll(e.stdin)
		} else {
			b, err = os.ReadFile(*dataFile)
		}
		if err != nil {
			return err
		}
		if !json.Valid(b) {
			return fs.usageErrorf("%s does not hold JSON: put the corrected data in it as a JSON object", *dataFile)
		}
		req.Data = b
	}
	s, err := e.session(ctx)
	if err != nil {
		return err
	}
	var res api.ReapplyResult
	err = s.do(ctx, func(c *api.Client) error {
		res, err = c.ReapplyQuarantine(ctx, *project, pos[0], req)
		return err
	})
	if err != nil {
		return err
	}
	if *asJSON {
		enc := json.NewEncoder(e.stdout)
		enc.SetIndent("", "  ")
		if err := enc.Encode(res); err != nil {
			return err
		}
	}
	if res.Status == api.PushRejected || res.Status == api.PushForbidden {
		fmt.Fprintf(e.stderr, "fsctl: refused again (%s); the entry stays open with these findings:\n", res.Status)
		for _, f := range res.Errors {
			fmt.Fprintf(e.stderr, "  %s: %s\n", orWord(f.Path, "/"), f.Message)
		}
		return errRefused
	}
	if !*asJSON {
		fmt.Fprintf(e.stdout, "Applied: record %s %s (rev %s); the entry is resolved.\n", res.ID, res.Status, orDash(res.Rev))
	}
	return nil
}

// runQuarantineDismiss is fsctl quarantine dismiss ID --project P --reason
// TEXT (analysts, managers).
func runQuarantineDismiss(ctx context.Context, e *env, args []string) error {
	fs := newFlags(e, "quarantine dismiss", "ID --project P --reason TEXT")
	project := fs.String("project", "", "the project (required)")
	reason := fs.String("reason", "", "why the entry is not to be applied, kept with it (required)")
	pos, err := parse(fs, args, 1, 1)
	if err != nil {
		return err
	}
	if err := requireFlags(fs, map[string]string{"project": *project, "reason": strings.TrimSpace(*reason)}); err != nil {
		return err
	}
	s, err := e.session(ctx)
	if err != nil {
		return err
	}
	if err := s.do(ctx, func(c *api.Client) error { return c.DismissQuarantine(ctx, *project, pos[0], *reason) }); err != nil {
		return err
	}
	fmt.Fprintf(e.stdout, "Dismissed entry %s of %s; it is kept, listed with --state dismissed.\n", pos[0], *project)
	return nil
}
