// Command fsctl is the command-line client of a fieldsync server, for admins,
// managers, designers and analysts: log in, create users and projects, give
// roles, enroll and revoke tablets, read the audit log.
//
//	fsctl login --server https://sync.example.org --username admin
//	fsctl project create north --title "North district"
//	fsctl device add north "Tablet 07"
//
// The server URL and the tokens of the last login are kept in
// os.UserConfigDir()/fieldsync/fsctl.json (mode 0600; FSCTL_CONFIG names another
// file). An expired access token is renewed with the refresh token on the fly.
//
// Passwords are read from a terminal without echo, or as one line from standard
// input when it is not a terminal, or from FSCTL_PASSWORD (login) and
// FSCTL_NEW_PASSWORD (user add) when set: see password.go.
//
// # Adding a command
//
// Write func(ctx context.Context, e *env, args []string) error in a file of its
// own (forms.go, records.go…) and add one line to commands below. A command
// that talks to the server gets its client from e.session. Return a usage error
// (usageErrorf) for bad arguments, and any *api.Problem as it comes: run prints
// its title, detail and findings and exits 1.
package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"net/http"
	"os"
	"os/signal"
	"sort"
	"strings"
	"syscall"
	"time"

	"github.com/fieldsync/fieldsync/api"
)

// command is one top-level subcommand.
type command struct {
	// summary is the line shown by fsctl help.
	summary string
	run     func(ctx context.Context, e *env, args []string) error
}

// commands maps each subcommand to its implementation; each group lives in its
// own file.
var commands = map[string]command{
	"version": {"print the version of fsctl", runVersion},
	"health":  {"check that the server is up and its store answers", runHealth},
	"login":   {"log in and keep the session in the config file", runLogin},
	"logout":  {"end the session and forget its tokens", runLogout},
	"passwd":  {"change your own password (and sign out your other sessions)", runPasswd},
	"user":    {"user add USERNAME | user revoke|disable|enable USERNAME", runUser},
	"project": {"project create ID --title T | project list", runProject},
	"member":  {"member set PROJECT USERNAME ROLE", runMember},
	"device":  {"device add PROJECT NAME | device revoke PROJECT DEVICE_ID", runDevice},
	"audit":   {"read the security audit log (admins)", runAudit},
	"form":    {"form push FILE --project P --form F --version V [--publish] | form list --project P | form close --project P --form F", runForm},
	"push":    {"push FILE.ndjson --project P: send submissions (one per line) as a tablet does", runPush},
	"pull":    {"pull --project P [--since CURSOR] [--out FILE.ndjson]: every change since the cursor", runPull},
	"load":    {"load --project P --form F --version V --sample FILE [--tablets N] [--total N] [--pull]: load-test a server", runLoad},
}

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	code := run(ctx, os.Args[1:], &env{stdin: os.Stdin, stdout: os.Stdout, stderr: os.Stderr, getenv: os.Getenv})
	stop()
	os.Exit(code)
}

// env is everything a command touches outside itself, so tests can run
// commands in-process.
type env struct {
	stdin          io.Reader
	stdout, stderr io.Writer
	getenv         func(string) string
	// httpClient is used for every request; nil means one with a timeout.
	httpClient *http.Client
	// now is the clock; nil means time.Now.
	now func() time.Time
}

func (e *env) clock() time.Time {
	if e.now != nil {
		return e.now()
	}
	return time.Now()
}

// requestTimeout bounds one exchange with the server: long enough for a slow
// link, short enough that a hung server does not hang a script.
const requestTimeout = 60 * time.Second

func (e *env) client() *http.Client {
	if e.httpClient != nil {
		return e.httpClient
	}
	return &http.Client{Timeout: requestTimeout}
}

// exit codes.
const (
	exitOK    = 0
	exitError = 1
	exitUsage = 2
)

// run runs one command line and returns the exit code.
func run(ctx context.Context, args []string, e *env) int {
	if len(args) == 0 || args[0] == "help" || args[0] == "-h" || args[0] == "--help" || args[0] == "-help" {
		usage(e.stdout)
		if len(args) == 0 {
			return exitUsage
		}
		return exitOK
	}
	cmd, ok := commands[args[0]]
	if !ok {
		fmt.Fprintf(e.stderr, "fsctl: unknown command %q\n\n", args[0])
		usage(e.stderr)
		return exitUsage
	}
	err := cmd.run(ctx, e, args[1:])
	if err == nil {
		return exitOK
	}
	if errors.Is(err, flag.ErrHelp) {
		return exitOK
	}
	var ue *usageError
	if errors.As(err, &ue) {
		fmt.Fprintf(e.stderr, "fsctl %s: %s\n", args[0], ue.msg)
		return exitUsage
	}
	printError(e.stderr, err)
	return exitError
}

func usage(w io.Writer) {
	fmt.Fprintln(w, "usage: fsctl COMMAND [ARGS]")
	fmt.Fprintln(w)
	names := make([]string, 0, len(commands))
	for name := range commands {
		names = append(names, name)
	}
	sort.Strings(names)
	for _, name := range names {
		fmt.Fprintf(w, "  %-8s %s\n", name, commands[name].summary)
	}
	fmt.Fprintln(w)
	fmt.Fprintln(w, "Run fsctl COMMAND -h for the flags of a command.")
}

// printError prints a failure for a person: a problem document's title, detail
// and findings (and the request id, for a support ticket), or the error text.
func printError(w io.Writer, err error) {
	var p *api.Problem
	if !errors.As(err, &p) {
		fmt.Fprintf(w, "fsctl: %v\n", err)
		return
	}
	msg := p.Title
	if p.Detail != "" {
		msg += ": " + p.Detail
	}
	fmt.Fprintf(w, "fsctl: %s\n", msg)
	for _, f := range p.Errors {
		if f.Path != "" {
			fmt.Fprintf(w, "  %s: %s\n", f.Path, f.Message)
		} else {
			fmt.Fprintf(w, "  %s\n", f.Message)
		}
	}
	if p.RetryAfter > 0 {
		fmt.Fprintf(w, "  try again in %s\n", p.RetryAfter.Round(time.Second))
	}
	detail := fmt.Sprintf("(%d %s", p.Status, p.Code)
	if p.RequestID != "" {
		detail += ", request id " + p.RequestID
	}
	fmt.Fprintln(w, "  "+detail+")")
}

// usageError is a command line that cannot be run; it exits 2.
type usageError struct{ msg string }

func (e *usageError) Error() string { return e.msg }

func usageErrorf(format string, args ...any) error {
	return &usageError{msg: fmt.Sprintf(format, args...)}
}

// newFlags makes a flag set for a (sub)command that reports to stderr and
// whose errors run turns into a usage exit.
func newFlags(e *env, name, args string) *flag.FlagSet {
	fs := flag.NewFlagSet("fsctl "+name, flag.ContinueOnError)
	fs.SetOutput(e.stderr)
	fs.Usage = func() {
		fmt.Fprintf(e.stderr, "usage: fsctl %s %s\n", name, args)
		fs.PrintDefaults()
	}
	return fs
}

// parse parses flags that may come before, between or after the positional
// arguments ("device add north T1 --public-url …"), and checks the number of
// positional arguments.
func parse(fs *flag.FlagSet, args []string, minArgs, maxArgs int) ([]string, error) {
	var pos []string
	for {
		if err := fs.Parse(args); err != nil {
			if errors.Is(err, flag.ErrHelp) {
				return nil, err
			}
			return nil, usageErrorf("%v", err)
		}
		args = fs.Args()
		if len(args) == 0 {
			break
		}
		pos = append(pos, args[0])
		args = args[1:]
	}
	if len(pos) < minArgs || (maxArgs >= 0 && len(pos) > maxArgs) {
		fs.Usage()
		return nil, usageErrorf("wrong number of arguments")
	}
	return pos, nil
}

// subcommands dispatches "fsctl GROUP VERB ARGS…" to the verb's function.
func subcommands(ctx context.Context, e *env, group string, args []string, verbs map[string]func(context.Context, *env, []string) error) error {
	names := make([]string, 0, len(verbs))
	for v := range verbs {
		names = append(names, v)
	}
	sort.Strings(names)
	if len(args) == 0 {
		return usageErrorf("want one of: %s", strings.Join(names, ", "))
	}
	f, ok := verbs[args[0]]
	if !ok {
		return usageErrorf("unknown %s command %q; want one of: %s", group, args[0], strings.Join(names, ", "))
	}
	return f(ctx, e, args[1:])
}
