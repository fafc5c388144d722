package readmetest

import (
	"context"
	"encoding/json"
	"fmt"
	"net/http/httptest"
	"os"
	"os/exec"
	"path/filepath"
	"reflect"
	"regexp"
	"runtime"
	"strings"
	"sync"
	"testing"
	"time"

	"mvdan.cc/sh/v3/interp"
	"mvdan.cc/sh/v3/syntax"
)

// TestREADME runs every example of README.md in order, as a reader following it
// would, against the real fieldsync and fsctl: see the package comment. A
// statement fails the test when it exits non-zero, when a request of a curl
// command answers 4xx or 5xx (curl without --fail exits 0 then) unless the
// comment below the command names that status, when a curl command that says
// it sends JSON sends something else, or when its output differs from the JSON
// or status shown in the comment below it ("…" in a string stands for any
// string, and keys the comment leaves out are not compared).
func TestREADME(t *testing.T) {
	if testing.Short() {
		t.Skip("builds and runs fieldsync and fsctl")
	}
	if runtime.GOOS == "windows" {
		t.Skip("the README's examples are POSIX shell")
	}
	for _, tool := range []string{"curl", "jq"} {
		if _, err := exec.LookPath(tool); err != nil {
			if os.Getenv("CI") != "" {
				t.Fatalf("%s is not installed; the README's examples use it (.ci/run installs it)", tool)
			}
			t.Skipf("%s is not installed; the README's examples use it", tool)
		}
	}
	md, err := os.ReadFile(filepath.Join("..", "..", "README.md"))
	if err != nil {
		t.Fatal(err)
	}
	blocks, err := parseBlocks(string(md))
	if err != nil {
		t.Fatalf("README.md has blocks the test cannot run:\n%v", err)
	}
	for _, b := range blocks {
		if b.mark == markNotRun {
			t.Logf("README.md:%d: not run: %s", b.line, b.why)
		}
	}

	w := newWalk(t)
	for _, b := range blocks {
		w.block(b)
	}
	w.checkTablesUsed()
}

// walk is one reader going through the README: their working directory (with
// the repository's schemas/ and the files they bring), their shell, the server
// they run, and what they learnt on the way (passwords, tablets).
type walk struct {
	t        *testing.T
	work     string
	srv      *server
	rec      *recorder
	public   string // the address https://sync.example.org stands for
	config   string // fsctl's session file (FSCTL_CONFIG)
	sh       *interp.Runner
	stdout   syncBuffer
	stderr   syncBuffer
	mu       sync.Mutex      // guards ran and failure: a pipeline's programs start at once
	ran      map[string]bool // the programs the current statement ran
	failure  string          // why the test refused a command before it ran
	blockTxt string          // the block being run

	passwords map[string]string // every user's password as the walk set it
	user      string            // whom fsctl is logged in as
	tablet    tablet            // the tablet of "the tablet's loop"
	outputs   []string          // every statement's standard output, in order
	tablets   int

	placeholders []*placeholder
	interludes   []*interlude
	brought      []*broughtFile
}

// tablet is an enrolled device with its access token.
type tablet struct{ id, token string }

func newWalk(t *testing.T) *walk {
	t.Helper()
	base := t.TempDir()
	bin := filepath.Join(base, "bin")
	work := filepath.Join(base, "work")
	srvDir := filepath.Join(base, "server")
	for _, d := range []string{bin, work, srvDir, filepath.Join(base, "home")} {
		if err := os.MkdirAll(d, 0o700); err != nil {
			t.Fatal(err)
		}
	}
	buildBinaries(t, bin)
	copyDir(t, filepath.Join("..", "..", "schemas"), filepath.Join(work, "schemas"))

	w := &walk{t: t, work: work, config: filepath.Join(base, "home", "fsctl.json"), passwords: map[string]string{}}
	w.srv = &server{t: t, bin: filepath.Join(bin, "fieldsync"), dir: srvDir}
	w.srv.start()
	t.Cleanup(func() {
		if w.srv.cmd != nil {
			_ = w.srv.cmd.Process.Kill()
			<-w.srv.done
		}
	})
	// The first start wrote the admin's password where the README says.
	pw, err := os.ReadFile(filepath.Join(srvDir, "data", "admin-password"))
	if err != nil {
		t.Fatalf("the README says the first start writes ./data/admin-password: %v", err)
	}
	w.passwords["admin"] = strings.TrimSpace(string(pw))

	w.rec = &recorder{}
	w.rec.setTarget(w.srv.url)
	proxy := httptest.NewServer(w.rec)
	t.Cleanup(proxy.Close)
	w.public = proxy.URL

	env := []string{
		"PATH=" + bin + string(os.PathListSeparator) + os.Getenv("PATH"),
		"HOME=" + filepath.Join(base, "home"),
		"FSCTL_CONFIG=" + w.config,
		"TMPDIR=" + os.TempDir(),
		"LANG=C.UTF-8",
	}
	w.sh, err = newShell(work, env, &w.stdout, &w.stderr, w.execHandler)
	if err != nil {
		t.Fatal(err)
	}
	// Like a careful script: a failing curl in "curl … | jq" fails the line.
	w.shell(0, "set -o pipefail")

	w.placeholders = placeholders()
	w.interludes = interludes()
	w.brought = broughtFiles()
	for _, f := range w.brought {
		f.write(w)
	}
	return w
}

// block runs one README block (or says why not).
func (w *walk) block(b block) {
	t := w.t
	t.Helper()
	switch {
	case b.mark == markNotRun:
		return
	case b.lang == "json":
		t.Logf("README.md:%d: checked: valid JSON", b.line)
		return
	}
	for _, in := range w.interludes {
		if !in.used && strings.Contains(b.text, in.before) {
			in.used = true
			t.Logf("README.md:%d: meanwhile: %s", b.line, in.why)
			in.do(w, b.text)
		}
	}
	if b.mark == markUndone {
		restore := w.snapshot()
		defer func() {
			restore()
			t.Logf("README.md:%d: undone (%s)", b.line, b.why)
		}()
	}
	w.blockTxt = b.text
	for _, f := range w.brought {
		f.used = f.used || strings.Contains(b.text, f.name)
	}
	f, err := syntax.NewParser(syntax.Variant(syntax.LangBash)).Parse(strings.NewReader(b.text), "README.md")
	if err != nil {
		t.Fatalf("README.md:%d: the block is not valid shell: %v", b.line, err)
	}
	lines := strings.Split(b.text, "\n")
	for i, st := range f.Stmts {
		src := strings.TrimRight(b.text[st.Pos().Offset():st.End().Offset()], "; \t")
		// The comment lines right below a statement show its output.
		next := len(lines) + 1
		if i+1 < len(f.Stmts) {
			next = int(f.Stmts[i+1].Pos().Line())
		}
		var shown []string
		for l := int(st.End().Line()) + 1; l < next && l <= len(lines); l++ {
			if c, ok := strings.CutPrefix(strings.TrimSpace(lines[l-1]), "#"); ok {
				shown = append(shown, strings.TrimSpace(c))
			}
		}
		w.statement(b.first+int(st.Pos().Line())-1, src, shown)
	}
}

// statement runs one command line of the README after putting in the values
// of its placeholders, and checks what it did.
func (w *walk) statement(line int, src string, shown []string) {
	t := w.t
	t.Helper()
	cmd := w.substitute(line, src)
	mark := w.rec.mark()
	w.mu.Lock()
	w.ran, w.failure = map[string]bool{}, ""
	w.mu.Unlock()
	out, errOut, err := w.run(cmd)
	w.outputs = append(w.outputs, out)
	t.Logf("README.md:%d: $ %s\n%s%s", line, cmd, clip(out), clip(errOut))
	w.mu.Lock()
	ranCurl, failure := w.ran["curl"], w.failure
	w.mu.Unlock()
	if failure != "" {
		t.Fatalf("README.md:%d: %s\n%s", line, cmd, failure)
	}
	if err != nil {
		t.Fatalf("README.md:%d: %s\nfailed: %v\nstdout:\n%s\nstderr:\n%s", line, cmd, err, out, errOut)
	}
	if ranCurl {
		for _, x := range w.rec.since(mark) {
			if x.status >= 400 && !mentions(shown, fmt.Sprint(x.status)) {
				t.Fatalf("README.md:%d: %s\n%s %s answered %d: %s", line, cmd, x.method, x.path, x.status, x.body)
			}
		}
	}
	for _, s := range shown {
		if err := checkShown(s, out); err != nil {
			t.Fatalf("README.md:%d: %s\nthe output is not what the README shows below it (%s): %v\noutput:\n%s", line, cmd, s, err, out)
		}
	}
}

// shell runs a line of the walk's own (not from the README) in the reader's shell.
func (w *walk) shell(line int, cmd string) {
	w.t.Helper()
	if out, errOut, err := w.run(cmd); err != nil {
		w.t.Fatalf("README.md:%d: %s: %v\n%s%s", line, cmd, err, out, errOut)
	}
}

func (w *walk) run(cmd string) (stdout, stderr string, err error) {
	f, err := syntax.NewParser(syntax.Variant(syntax.LangBash)).Parse(strings.NewReader(cmd), "README.md")
	if err != nil {
		return "", "", err
	}
	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Minute)
	defer cancel()
	err = w.sh.Run(ctx, f)
	return w.stdout.take(), w.stderr.take(), err
}

// execHandler runs the programs of the README's commands: fsctl with what the
// reader types at its password prompts, curl once its JSON body is checked,
// the rest as they are.
func (w *walk) execHandler(next interp.ExecHandlerFunc) interp.ExecHandlerFunc {
	return func(ctx context.Context, args []string) error {
		name := filepath.Base(args[0])
		w.mu.Lock()
		w.ran[name] = true
		w.mu.Unlock()
		refuse := func(err error) error {
			w.mu.Lock()
			w.failure = err.Error()
			w.mu.Unlock()
			return interp.ExitStatus(1)
		}
		switch name {
		case "fsctl":
			typed, after, err := w.typedFor(args[1:])
			if err != nil {
				return refuse(err)
			}
			err = runTyped(ctx, args, typed)
			if err == nil && after != nil {
				after()
			}
			return err
		case "curl":
			if err := checkCurlJSON(interp.HandlerCtx(ctx).Dir, args); err != nil {
				return refuse(err)
			}
		}
		return next(ctx, args)
	}
}

// typedFor returns what the reader types for an fsctl command (its password
// prompts) and what the walk learns once it succeeded.
func (w *walk) typedFor(args []string) (typed string, after func(), err error) {
	flag := func(name string) string {
		for i, a := range args {
			for _, p := range []string{"-" + name, "--" + name} {
				if a == p && i+1 < len(args) {
					return args[i+1]
				}
				if v, ok := strings.CutPrefix(a, p+"="); ok {
					return v
				}
			}
		}
		return ""
	}
	verb := func(i int) string {
		if i < len(args) {
			return args[i]
		}
		return ""
	}
	switch {
	case verb(0) == "login":
		user := flag("username")
		pw, ok := w.passwords[user]
		if !ok {
			return "", nil, fmt.Errorf("the README logs in as %q, whom no earlier step created", user)
		}
		return pw + "\n", func() { w.user = user }, nil
	case verb(0) == "user" && verb(1) == "add", verb(0) == "user" && verb(1) == "reset-password":
		user, pw := verb(2), w.newPassword()
		return pw + "\n", func() { w.passwords[user] = pw }, nil
	case verb(0) == "passwd":
		user, pw := w.user, w.newPassword()
		return w.passwords[user] + "\n" + pw + "\n", func() { w.passwords[user] = pw }, nil
	}
	return "", nil, nil
}

func (w *walk) newPassword() string {
	return fmt.Sprintf("readme-walk-%d-%d", len(w.passwords), time.Now().UnixNano())
}

// snapshot stops the server, copies its data directory and the fsctl session
// and starts it again; the function it returns puts both back as they were.
func (w *walk) snapshot() (restore func()) {
	t := w.t
	t.Helper()
	data := filepath.Join(w.srv.dir, "data")
	snap := filepath.Join(t.TempDir(), "data")
	cfg, cfgErr := os.ReadFile(w.config)
	passwords := make(map[string]string, len(w.passwords))
	for k, v := range w.passwords {
		passwords[k] = v
	}
	user, tab := w.user, w.tablet

	w.srv.stop()
	copyDir(t, data, snap)
	w.srv.start()
	w.rec.setTarget(w.srv.url)
	return func() {
		w.srv.stop()
		if err := os.RemoveAll(data); err != nil {
			t.Fatal(err)
		}
		copyDir(t, snap, data)
		if cfgErr == nil {
			if err := os.WriteFile(w.config, cfg, 0o600); err != nil {
				t.Fatal(err)
			}
		}
		w.passwords, w.user, w.tablet = passwords, user, tab
		w.srv.start()
		w.rec.setTarget(w.srv.url)
	}
}

// substitute puts the walk's values in the README's placeholders.
func (w *walk) substitute(line int, src string) string {
	for _, p := range w.placeholders {
		src = p.re.ReplaceAllStringFunc(src, func(s string) string {
			p.used = true
			v, err := p.fill(w, p.re.FindStringSubmatch(s))
			if err != nil {
				w.t.Fatalf("README.md:%d: the placeholder %s (%s): %v", line, s, p.why, err)
			}
			return v
		})
	}
	return src
}

// checkTablesUsed fails when a placeholder, interlude or brought file of this
// test no longer matches anything in the README: the table must follow it.
func (w *walk) checkTablesUsed() {
	for _, p := range w.placeholders {
		if !p.used {
			w.t.Errorf("no README example has the placeholder %s (%s) any more: remove it from the test", p.re, p.why)
		}
	}
	for _, in := range w.interludes {
		if !in.used {
			w.t.Errorf("no README block contains %q any more, before which the test %s: update the test", in.before, in.why)
		}
	}
	for _, f := range w.brought {
		if !f.used {
			w.t.Errorf("no README example uses %s (%s) any more: remove it from the test", f.name, f.why)
		}
	}
}

// mentions reports whether one of the comments names the status.
func mentions(shown []string, status string) bool {
	for _, s := range shown {
		for _, f := range strings.FieldsFunc(s, func(r rune) bool { return r < '0' || r > '9' }) {
			if f == status {
				return true
			}
		}
	}
	return false
}

var statusRE = regexp.MustCompile(`^[1-5][0-9][0-9]$`)

// checkShown compares a comment below a command with its output: a JSON value
// with the output's JSON, a bare status with a bare status. Other comments are
// prose.
func checkShown(shown, out string) error {
	out = strings.TrimSpace(out)
	switch {
	case statusRE.MatchString(shown) && statusRE.MatchString(out):
		if shown != out {
			return fmt.Errorf("status %s", out)
		}
	case (strings.HasPrefix(shown, "{") || strings.HasPrefix(shown, "[")) && json.Valid([]byte(shown)):
		var want, got any
		_ = json.Unmarshal([]byte(shown), &want)
		if err := json.Unmarshal([]byte(out), &got); err != nil {
			return fmt.Errorf("the output is not JSON: %v", err)
		}
		return matchJSON("", want, got)
	}
	return nil
}

// matchJSON reports where got differs from want: a string with "…" in want
// stands for any string; an object in want names the keys compared.
func matchJSON(path string, want, got any) error {
	switch w := want.(type) {
	case string:
		if strings.Contains(w, "…") {
			if _, ok := got.(string); !ok {
				return fmt.Errorf("%s: %v is not a string", path, got)
			}
			return nil
		}
	case map[string]any:
		g, ok := got.(map[string]any)
		if !ok {
			return fmt.Errorf("%s: %v is not an object", path, got)
		}
		for k, v := range w {
			gv, ok := g[k]
			if !ok {
				return fmt.Errorf("%s/%s is missing", path, k)
			}
			if err := matchJSON(path+"/"+k, v, gv); err != nil {
				return err
			}
		}
		return nil
	case []any:
		g, ok := got.([]any)
		if !ok || len(g) != len(w) {
			return fmt.Errorf("%s: %v is not an array of %d", path, got, len(w))
		}
		for i := range w {
			if err := matchJSON(fmt.Sprintf("%s/%d", path, i), w[i], g[i]); err != nil {
				return err
			}
		}
		return nil
	}
	if !reflect.DeepEqual(want, got) {
		return fmt.Errorf("%s: %v, the README shows %v", path, got, want)
	}
	return nil
}

// clip shortens long output for the test log.
func clip(s string) string {
	if len(s) > 3000 {
		return s[:3000] + "…\n"
	}
	return s
}
