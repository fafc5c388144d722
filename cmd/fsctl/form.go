package main

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"strings"
	"text/tabwriter"
	"time"

	"github.com/fieldsync/fieldsync/api"
)

// formVerbs is fsctl form push|list|close: a designer's round trip with form
// definitions (protocol.md §2).
var formVerbs = map[string]verb{
	"push":  {"push FILE --project P --form F --version V [--publish]: upload a draft, and publish it", runFormPush},
	"list":  {"list --project P [--json]: the forms and their versions", runFormList},
	"close": {"close --project P --form F [--yes]: the form takes no new records", runFormClose},

	// Reopening (issue 11): form_reopen.go.
	"reopen": {"reopen --project P --form F: a closed form takes new records again", runFormReopen},
}

// runFormPush is fsctl form push FILE --project P --form F --version V
// [--publish] (designers): upload FILE ("-" for standard input) as a draft of
// the version, and publish it with --publish.
//
// Re-running a push that already went through succeeds: when the version is
// published with exactly this definition, there is nothing to do. That makes
// the command safe in a script or a CI job that publishes forms from a
// repository.
func runFormPush(ctx context.Context, e *env, args []string) error {
	fs := newFlags(e, "form push", "FILE --project P --form F --version V [--publish]")
	project := fs.String("project", "", "the project (required)")
	form := fs.String("form", "", "the form id, e.g. perception (required)")
	version := fs.String("version", "", "the version, e.g. 1 or 2024.05 (required)")
	publish := fs.Bool("publish", false, "publish the version once uploaded: it can then never change")
	pos, err := parse(fs, args, 1, 1)
	if err != nil {
		return err
	}
	if err := requireFlags(fs, map[string]string{"project": *project, "form": *form, "version": *version}); err != nil {
		return err
	}
	def, err := readDefinitionFile(e, pos[0])
	if err != nil {
		return err
	}
	s, err := e.session(ctx)
	if err != nil {
		return err
	}

	var entry api.FormVersionEntry
	var created bool
	err = s.do(ctx, func(c *api.Client) error {
		entry, created, err = c.PutFormVersion(ctx, *project, *form, *version, def)
		return err
	})
	if api.IsCode(err, "version_published") {
		same, serr := samePublished(ctx, s, *project, *form, *version, def)
		if serr != nil || !same {
			return err // the 409 says what to do: upload a new version
		}
		fmt.Fprintf(e.stdout, "Version %s of %s is already published with this definition; nothing to do.\n", *version, *form)
		return nil
	}
	if err != nil {
		return err
	}
	what := "Replaced the draft"
	if created {
		what = "Uploaded a new draft:"
	}
	fmt.Fprintf(e.stdout, "%s %s version %s (%s, hash %s).\n", what, *form, *version, entry.Title, shortHash(entry.Hash))
	if !*publish {
		return nil
	}
	err = s.do(ctx, func(c *api.Client) error {
		entry, err = c.PublishFormVersion(ctx, *project, *form, *version)
		return err
	})
	if err != nil {
		return err
	}
	fmt.Fprintf(e.stdout, "Published %s version %s; enumerators get it at their next sync.\n", *form, *version)
	return nil
}

// samePublished reports whether the published version holds def, byte for
// byte once whitespace is removed (what the server stores of an upload).
func samePublished(ctx context.Context, s *session, project, form, version string, def []byte) (bool, error) {
	var stored []byte
	err := s.do(ctx, func(c *api.Client) error {
		var err error
		stored, _, err = c.GetFormVersion(ctx, project, form, version)
		return err
	})
	if err != nil {
		return false, err
	}
	var local bytes.Buffer
	if err := json.Compact(&local, def); err != nil {
		return false, nil
	}
	return bytes.Equal(local.Bytes(), stored), nil
}

// readDefinitionFile reads a definition from a file, or from standard input
// for "-".
func readDefinitionFile(e *env, name string) ([]byte, error) {
	if name == "-" {
		return io.ReadAll(e.stdin)
	}
	return os.ReadFile(name)
}

// runFormList is fsctl form list --project P [--json] (members): the forms and
// their versions. Enumerators see published versions only.
func runFormList(ctx context.Context, e *env, args []string) error {
	fs := newFlags(e, "form list", "--project P [--json]")
	project := fs.String("project", "", "the project (required)")
	asJSON := fs.Bool("json", false, `print the server's answer as JSON ({"forms": […]}), for scripts`)
	if _, err := parse(fs, args, 0, 0); err != nil {
		return err
	}
	if err := requireFlags(fs, map[string]string{"project": *project}); err != nil {
		return err
	}
	s, err := e.session(ctx)
	if err != nil {
		return err
	}
	var list []api.FormListEntry
	err = s.do(ctx, func(c *api.Client) error {
		list, err = c.ListForms(ctx, *project)
		return err
	})
	if err != nil {
		return err
	}
	if *asJSON {
		enc := json.NewEncoder(e.stdout)
		enc.SetIndent("", "  ")
		return enc.Encode(api.FormList{Forms: list})
	}
	if len(list) == 0 {
		fmt.Fprintf(e.stdout, "No forms in %s.\n", *project)
		return nil
	}
	tw := tabwriter.NewWriter(e.stdout, 0, 0, 2, ' ', 0)
	fmt.Fprintln(tw, "FORM\tSTATE\tCURRENT\tTITLE")
	for _, f := range list {
		fmt.Fprintf(tw, "%s\t%s\t%s\t%s\n", f.ID, f.State, orDash(f.CurrentVersion), f.Title)
	}
	fmt.Fprintln(tw)
	fmt.Fprintln(tw, "FORM\tVERSION\tSTATE\tPUBLISHED\tHASH")
	for _, f := range list {
		for _, v := range f.Versions {
			published := "-"
			if v.PublishedAt != nil {
				published = v.PublishedAt.UTC().Format(time.RFC3339)
			}
			fmt.Fprintf(tw, "%s\t%s\t%s\t%s\t%s\n", f.ID, v.Version, v.State, published, shortHash(v.Hash))
		}
	}
	return tw.Flush()
}

// runFormClose is fsctl form close --project P --form F [--yes] (designers).
// Closing takes effect at once on every tablet, so it is confirmed first: on
// a terminal by answering y, elsewhere (a script) by --yes; without either it
// is refused, never done by default.
func runFormClose(ctx context.Context, e *env, args []string) error {
	fs := newFlags(e, "form close", "--project P --form F [--yes]")
	project := fs.String("project", "", "the project (required)")
	form := fs.String("form", "", "the form id (required)")
	yes := fs.Bool("yes", false, "close without asking (required when standard input is not a terminal)")
	if _, err := parse(fs, args, 0, 0); err != nil {
		return err
	}
	if err := requireFlags(fs, map[string]string{"project": *project, "form": *form}); err != nil {
		return err
	}
	if !*yes {
		if !e.isTerminal(e.stdin) {
			return usageErrorf("not closing form %s of project %s without confirmation: standard input is not a terminal to ask on; add --yes to close it", *form, *project)
		}
		fmt.Fprintf(e.stderr, "Close form %s of project %s? It will take no new records. [y/N] ", *form, *project)
		answer, err := e.stdinLine()
		if err != nil && !errors.Is(err, errNoPassword) {
			return err
		}
		if a := strings.ToLower(strings.TrimSpace(answer)); a != "y" && a != "yes" {
			fmt.Fprintf(e.stdout, "Not closed: form %s of project %s still takes new records.\n", *form, *project)
			return errNotConfirmed
		}
	}
	s, err := e.session(ctx)
	if err != nil {
		return err
	}
	var f api.FormListEntry
	err = s.do(ctx, func(c *api.Client) error {
		f, err = c.CloseForm(ctx, *project, *form)
		return err
	})
	if err != nil {
		return err
	}
	fmt.Fprintf(e.stdout, "Closed %s in %s: no new records from now on; edits of existing records still sync.\n", f.ID, *project)
	return nil
}

// errNotConfirmed ends a command the user declined; the command has said so.
var errNotConfirmed = errors.New("not confirmed")

// requireFlags is a usage error naming the first required flag left empty,
// in the order of the flag set.
func requireFlags(fs *flagSet, values map[string]string) error {
	var missing string
	fs.VisitAll(func(f *flag.Flag) {
		if v, ok := values[f.Name]; ok && v == "" && missing == "" {
			missing = f.Name
		}
	})
	if missing == "" {
		return nil
	}
	return fs.usageErrorf("--%s is required", missing)
}

// shortHash is enough of a content hash to tell versions apart on a screen.
func shortHash(h string) string {
	if len(h) > 12 {
		return h[:12]
	}
	return h
}

func orDash(s string) string {
	if s == "" {
		return "-"
	}
	return s
}
