package readmetest

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"

	"mvdan.cc/sh/v3/expand"
	"mvdan.cc/sh/v3/interp"
)

// syncBuffer is a buffer the processes of one pipeline may write at once.
type syncBuffer struct {
	mu  sync.Mutex
	buf bytes.Buffer
}

func (b *syncBuffer) Write(p []byte) (int, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.Write(p)
}

func (b *syncBuffer) take() string {
	b.mu.Lock()
	defer b.mu.Unlock()
	s := b.buf.String()
	b.buf.Reset()
	return s
}

// newShell makes the reader's shell: POSIX shell semantics from mvdan.cc/sh's
// interpreter, real programs (curl, jq, cp, fsctl…) found on path, variables
// kept from one statement and block to the next as in one terminal session.
func newShell(dir string, env []string, stdout, stderr io.Writer, mw func(interp.ExecHandlerFunc) interp.ExecHandlerFunc) (*interp.Runner, error) {
	r, err := interp.New(
		interp.Env(expand.ListEnviron(env...)),
		interp.Dir(dir),
		interp.StdIO(nil, stdout, stderr),
		interp.ExecHandlers(mw),
	)
	if err != nil {
		return nil, err
	}
	return r, nil
}

// environ is the environment a program started by the shell gets: the
// exported variables.
func environ(env expand.Environ) []string {
	var list []string
	env.Each(func(name string, vr expand.Variable) bool {
		if vr.Exported && vr.IsSet() && vr.Kind == expand.String {
			list = append(list, name+"="+vr.Str)
		}
		return true
	})
	return list
}

// runTyped runs a program as the shell would, with input as what the reader
// types at its prompts (fsctl reads a password as one line of standard input
// when that is not a terminal).
func runTyped(ctx context.Context, args []string, input string) error {
	hc := interp.HandlerCtx(ctx)
	path, err := interp.LookPathDir(hc.Dir, hc.Env, args[0])
	if err != nil {
		fmt.Fprintln(hc.Stderr, err)
		return interp.ExitStatus(127)
	}
	cmd := exec.CommandContext(ctx, path, args[1:]...)
	cmd.Env = environ(hc.Env)
	cmd.Dir = hc.Dir
	cmd.Stdin = strings.NewReader(input)
	cmd.Stdout, cmd.Stderr = hc.Stdout, hc.Stderr
	err = cmd.Run()
	var ee *exec.ExitError
	if errors.As(err, &ee) {
		if code := ee.ExitCode(); code >= 0 {
			return interp.ExitStatus(uint8(code))
		}
		return interp.ExitStatus(255)
	}
	return err
}

// curlBodies returns the request bodies of a curl command line: the values of
// -d, --data, --data-binary and --data-raw, a file's content for @FILE.
func curlBodies(dir string, args []string) ([][]byte, error) {
	var out [][]byte
	for i := 1; i < len(args); i++ {
		a := args[i]
		var name, val string
		switch {
		case a == "-d" || a == "--data" || a == "--data-binary" || a == "--data-raw":
			if i+1 >= len(args) {
				return nil, fmt.Errorf("%s without a value", a)
			}
			name, val = a, args[i+1]
			i++
		case strings.HasPrefix(a, "--data") && strings.Contains(a, "="):
			name, val, _ = strings.Cut(a, "=")
		case strings.HasPrefix(a, "-d") && len(a) > 2:
			name, val = "-d", a[2:]
		default:
			continue
		}
		if strings.HasPrefix(val, "@") && name != "--data-raw" {
			b, err := os.ReadFile(filepath.Join(dir, val[1:]))
			if err != nil {
				return nil, err
			}
			out = append(out, b)
			continue
		}
		out = append(out, []byte(val))
	}
	return out, nil
}

// sendsJSON reports whether a curl command line sends a JSON body.
func sendsJSON(args []string) bool {
	for i := 1; i+1 < len(args); i++ {
		if args[i] == "-H" && strings.EqualFold(strings.TrimSpace(args[i+1]), "Content-Type: application/json") {
			return true
		}
	}
	return false
}

// checkCurlJSON refuses a curl command that says it sends JSON and sends
// something else, before it reaches the server.
func checkCurlJSON(dir string, args []string) error {
	if !sendsJSON(args) {
		return nil
	}
	bodies, err := curlBodies(dir, args)
	if err != nil {
		return err
	}
	for _, b := range bodies {
		if !json.Valid(b) {
			return fmt.Errorf("the JSON body is not valid JSON:\n%s", b)
		}
	}
	return nil
}
