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
// own (forms.go, records.go…) and add one line to commands below, or to the
// verbs of a group (formVerbs…). Parse its flags with newFlags and parse, which
// give it -h and --help. A command that talks to the server gets its client from
// e.session. Return a usage error (fs.usageErrorf) for bad arguments, and any
// error of the client as it comes: run prints a problem's title, detail and
// findings, a network failure as one sentence (neterr.go), and exits 1.
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

	"golang.org/x/term"

	"github.com/fieldsync/fieldsync/api"
)

// command is one top-level subcommand: a command of its own (run), or a group
// of verbs (fsctl GROUP VERB ARGS…).
type command struct {
	// summary is the line shown by fsctl help.
	summary string
	run     func(ctx context.Context, e *env, args []string) error
	verbs   map[string]verb
}

// verb is one subcommand of a group.
type verb struct {
	// summary is the line shown by fsctl GROUP -h.
	summary string
	run     func(ctx context.Context, e *env, args []string) error
}

// commands maps each subcommand to its implementation; each group lives in its
// own file.
var commands = map[string]command{
	"version": {summary: "print the version of fsctl (also fsctl --version)", run: runVersion},
	"health":  {summary: "check that the server is up and its store answers", run: runHealth},
	"login":   {summary: "log in and keep the session in the config file", run: runLogin},
	"logout":  {summary: "end the session and forget its tokens", run: runLogout},
	"passwd":  {summary: "change your own password (and sign out your other sessions)", run: runPasswd},
	"user":    {summary: "add, list and reset users; sign them out, disable or enable them; make admins (admins)", verbs: userVerbs},
	"project": {summary: "create projects, list yours", verbs: projectVerbs},
	"member":  {summary: "give a user a role in a project, list and remove members (managers)", verbs: memberVerbs},
	"device":  {summary: "enroll, list and revoke tablets (managers)", verbs: deviceVerbs},
	"audit":   {summary: "read the security audit log (admins)", run: runAudit},
	"form":    {summary: "upload, publish, list, close and reopen forms (designers)", verbs: formVerbs},
	"record":  {summary: "comment on a record and read its review thread (analysts)", verbs: recordVerbs},
	"push":    {summary: "push FILE.ndjson --project P: send submissions (one per line) as a tablet does", run: runPush},
	"pull":    {summary: "pull --project P [--cursor-file F] [--out FILE.ndjson]: every change since the cursor", run: runPull},
	"export":  {summary: "export --project P --form F [--format csv|csv.zip|xlsx|ndjson|geojson] [--since-last]: a form's records as a dataset file", run: runExport},
	"load":    {summary: "load --project P --form F --version V --sample FILE [--tablets N] [--total N] [--pull]: load-test a server", run: runLoad},

	// The quarantine (issue 11).
	"quarantine": {summary: "list the pushed items not applied; re-apply or dismiss them (analysts, managers)", verbs: quarantineVerbs},
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
	// httpClient is used for every request; nil means one with the timeout.
	httpClient *http.Client
	// timeout bounds one exchange with the server (fsctl --timeout); 0 means
	// requestTimeout.
	timeout time.Duration
	// now is the clock; nil means time.Now.
	now func() time.Time
	// tty reports whether stdin, stdout or stderr is a terminal, for the
	// progress bars and the confirmation of form close; nil means isTTY.
	tty func(f any) bool
	// sleep waits between retries; nil means a timer that ctx cancels.
	sleep func(ctx context.Context, d time.Duration) error
	// bar is the progress bar on the terminal, if any, for messages to clear
	// it first.
	bar *progress
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

func (e *env) requestTimeout() time.Duration {
	if e.timeout > 0 {
		return e.timeout
	}
	return requestTimeout
}

// client is the HTTP client of every request. Its transport recognises a
// plain HTTP request answered by an HTTPS server (neterr.go).
func (e *env) client() *http.Client {
	c := &http.Client{}
	if e.httpClient != nil {
		*c = *e.httpClient
	}
	if e.timeout > 0 || c.Timeout == 0 {
		c.Timeout = e.requestTimeout()
	}
	base := c.Transport
	if base == nil {
		base = http.DefaultTransport
	}
	c.Transport = schemeCheck{base}
	return c
}

// isTerminal reports whether f (stdin, stdout or stderr) is a terminal.
func (e *env) isTerminal(f any) bool {
	if e.tty != nil {
		return e.tty(f)
	}
	return isTTY(f)
}

// isTTY reports whether f is an *os.File open on a terminal (not merely a
// character device such as /dev/null).
func isTTY(f any) bool {
	file, ok := f.(*os.File)
	return ok && term.IsTerminal(int(file.Fd()))
}

// wait sleeps d, or less if ctx ends first.
func (e *env) wait(ctx context.Context, d time.Duration) error {
	if e.sleep != nil {
		return e.sleep(ctx, d)
	}
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-ctx.Done():
		return ctx.Err()
	case <-t.C:
		return nil
	}
}

// exit codes.
const (
	exitOK    = 0
	exitError = 1
	exitUsage = 2
)

// run runs one command line and returns the exit code.
//
// Help (-h, --help, help) goes to standard output and exits 0; a command line
// that cannot be run prints what is wrong and the usage of the nearest command
// on standard error, and exits 2.
func run(ctx context.Context, args []string, e *env) int {
	top := flag.NewFlagSet("fsctl", flag.ContinueOnError)
	top.SetOutput(io.Discard)
	showVersion := top.Bool("version", false, "print the version of fsctl")
	top.DurationVar(&e.timeout, "timeout", requestTimeout, "give up on a server that has not answered one request after this `duration` (also a flag of every command)")
	if err := top.Parse(args); err != nil {
		if errors.Is(err, flag.ErrHelp) {
			usage(e.stdout, top)
			return exitOK
		}
		fmt.Fprintf(e.stderr, "fsctl: %v\n\n", err)
		usage(e.stderr, top)
		return exitUsage
	}
	if e.timeout <= 0 {
		fmt.Fprintf(e.stderr, "fsctl: --timeout must be more than 0\n")
		return exitUsage
	}
	args = top.Args()
	if *showVersion {
		args = []string{"version"}
	}
	if len(args) == 0 {
		usage(e.stderr, top)
		return exitUsage
	}
	if args[0] == "help" {
		if len(args) == 1 {
			usage(e.stdout, top)
			return exitOK
		}
		// fsctl help push = fsctl push -h
		args = append(args[1:2:2], "-h")
	}
	name := args[0]
	cmd, ok := commands[name]
	if !ok {
		fmt.Fprintf(e.stderr, "fsctl: unknown command %q%s\n\n", name, didYouMean(name, commands))
		usage(e.stderr, top)
		return exitUsage
	}
	var err error
	if cmd.verbs != nil {
		err = subcommands(ctx, e, name, args[1:], cmd.verbs)
	} else {
		err = cmd.run(ctx, e, args[1:])
	}
	if err == nil {
		return exitOK
	}
	if errors.Is(err, flag.ErrHelp) {
		return exitOK
	}
	if len(args) > 1 {
		if _, ok := cmd.verbs[args[1]]; ok {
			name += " " + args[1] // fsctl form close: …
		}
	}
	var ue *usageError
	if errors.As(err, &ue) {
		fmt.Fprintf(e.stderr, "fsctl %s: %s\n", name, ue.msg)
		if ue.usage != nil {
			fmt.Fprintln(e.stderr)
			ue.usage(e.stderr)
		}
		return exitUsage
	}
	if !errors.Is(err, errNotConfirmed) && !errors.Is(err, errRefused) {
		e.printError(err)
	}
	return exitError
}

func usage(w io.Writer, top *flag.FlagSet) {
	fmt.Fprintln(w, "usage: fsctl [--timeout D] COMMAND [ARGS]")
	fmt.Fprintln(w)
	for _, name := range sortedKeys(commands) {
		fmt.Fprintf(w, "  %-8s %s\n", name, commands[name].summary)
	}
	fmt.Fprintln(w)
	fmt.Fprintln(w, "flags:")
	top.SetOutput(w)
	top.PrintDefaults()
	top.SetOutput(io.Discard)
	fmt.Fprintln(w)
	fmt.Fprintln(w, "Run fsctl COMMAND -h for the usage and flags of a command.")
}

// didYouMean names the key of m nearest to s, when one is close enough to be a
// typo, as ` (did you mean "x"?)`.
func didYouMean[V any](s string, m map[string]V) string {
	best, bestD := "", 3 // at most two letters off
	for _, k := range sortedKeys(m) {
		d := editDistance(s, k)
		if len(s) >= 2 && strings.HasPrefix(k, s) {
			d = min(d, 1) // "dev" for "device"
		}
		if d < bestD {
			best, bestD = k, d
		}
	}
	if best == "" {
		return ""
	}
	return fmt.Sprintf(" (did you mean %q?)", best)
}

// editDistance is the Levenshtein distance of a and b.
func editDistance(a, b string) int {
	prev := make([]int, len(b)+1)
	cur := make([]int, len(b)+1)
	for j := range prev {
		prev[j] = j
	}
	for i := 1; i <= len(a); i++ {
		cur[0] = i
		for j := 1; j <= len(b); j++ {
			cost := 1
			if a[i-1] == b[j-1] {
				cost = 0
			}
			cur[j] = min(prev[j]+1, cur[j-1]+1, prev[j-1]+cost)
		}
		prev, cur = cur, prev
	}
	return prev[len(b)]
}

func sortedKeys[V any](m map[string]V) []string {
	names := make([]string, 0, len(m))
	for name := range m {
		names = append(names, name)
	}
	sort.Strings(names)
	return names
}

// printError prints a failure for a person: a network failure as one sentence
// saying what to check, a problem document's title, detail and findings (and
// the request id, for a support ticket), or the error text.
func (e *env) printError(err error) {
	w := e.stderr
	if msg, ok := e.explainNetError(err); ok {
		fmt.Fprintf(w, "fsctl: %s\n", msg)
		return
	}
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
type usageError struct {
	msg string
	// usage prints the usage of the command concerned, if known.
	usage func(io.Writer)
}

func (e *usageError) Error() string { return e.msg }

func usageErrorf(format string, args ...any) error {
	return &usageError{msg: fmt.Sprintf(format, args...)}
}

// flagSet is the flag set of a (sub)command, which knows how to print its
// usage.
type flagSet struct {
	*flag.FlagSet
	e              *env
	name, synopsis string
}

// newFlags makes a flag set for a (sub)command. Flag errors are not printed by
// package flag: parse returns them as usage errors, which run prints with the
// command's usage.
func newFlags(e *env, name, synopsis string) *flagSet {
	fs := &flagSet{FlagSet: flag.NewFlagSet("fsctl "+name, flag.ContinueOnError), e: e, name: name, synopsis: synopsis}
	fs.SetOutput(io.Discard)
	if name != "version" { // the one command that never talks to a server
		fs.Var((*timeoutFlag)(&e.timeout), "timeout", "give up on a server that has not answered one request after this `duration`")
	}
	return fs
}

// timeoutFlag is --timeout of every command, the same as fsctl --timeout
// before the command; it keeps what that one set.
type timeoutFlag time.Duration

func (t *timeoutFlag) String() string { return time.Duration(*t).String() }

func (t *timeoutFlag) Set(s string) error {
	d, err := time.ParseDuration(s)
	if err != nil {
		return err
	}
	if d <= 0 {
		return errors.New("must be more than 0")
	}
	*t = timeoutFlag(d)
	return nil
}

// printUsage prints the command's synopsis and flags.
func (fs *flagSet) printUsage(w io.Writer) {
	fmt.Fprintln(w, strings.TrimSpace("usage: fsctl "+fs.name+" "+fs.synopsis))
	n := 0
	fs.VisitAll(func(*flag.Flag) { n++ })
	if n > 0 {
		fmt.Fprintln(w)
		fmt.Fprintln(w, "flags:")
		fs.SetOutput(w)
		fs.PrintDefaults()
		fs.SetOutput(io.Discard)
	}
}

// usageErrorf is a usage error that prints this command's usage.
func (fs *flagSet) usageErrorf(format string, args ...any) error {
	return &usageError{msg: fmt.Sprintf(format, args...), usage: fs.printUsage}
}

// parse parses flags that may come before, between or after the positional
// arguments ("device add north T1 --public-url …"), and checks the number of
// positional arguments. For -h or --help it prints the usage on standard
// output and returns flag.ErrHelp, which exits 0.
func parse(fs *flagSet, args []string, minArgs, maxArgs int) ([]string, error) {
	var pos []string
	for {
		if err := fs.Parse(args); err != nil {
			if errors.Is(err, flag.ErrHelp) {
				fs.printUsage(fs.e.stdout)
				return nil, err
			}
			return nil, fs.usageErrorf("%v", err)
		}
		args = fs.Args()
		if len(args) == 0 {
			break
		}
		pos = append(pos, args[0])
		args = args[1:]
	}
	if len(pos) < minArgs || (maxArgs >= 0 && len(pos) > maxArgs) {
		return nil, fs.usageErrorf("wrong number of arguments")
	}
	return pos, nil
}

// subcommands dispatches "fsctl GROUP VERB ARGS…" to the verb's function.
func subcommands(ctx context.Context, e *env, group string, args []string, verbs map[string]verb) error {
	printUsage := func(w io.Writer) {
		fmt.Fprintf(w, "usage: fsctl %s VERB [ARGS]\n\n", group)
		for _, name := range sortedKeys(verbs) {
			fmt.Fprintf(w, "  %-8s %s\n", name, verbs[name].summary)
		}
		fmt.Fprintf(w, "\nRun fsctl %s VERB -h for the usage and flags of a verb.\n", group)
	}
	if len(args) == 0 {
		return &usageError{msg: "want one of: " + strings.Join(sortedKeys(verbs), ", "), usage: printUsage}
	}
	switch args[0] {
	case "-h", "-help", "--help", "help":
		printUsage(e.stdout)
		return flag.ErrHelp
	}
	v, ok := verbs[args[0]]
	if !ok {
		return &usageError{msg: fmt.Sprintf("unknown %s command %q%s", group, args[0], didYouMean(args[0], verbs)), usage: printUsage}
	}
	return v.run(ctx, e, args[1:])
}
