package main

import (
	"path/filepath"
	"strings"
	"testing"
)

// TestFsctlHelp: -h and --help work for every command and every verb of a
// group, on standard output, exit 0, with the command's flags.
func TestFsctlHelp(t *testing.T) {
	c := &cli{t: t, env: map[string]string{"FSCTL_CONFIG": filepath.Join(t.TempDir(), "fsctl.json")}}
	check := func(want string, args ...string) string {
		t.Helper()
		code, out, errOut := c.run("", args...)
		if code != exitOK || !strings.HasPrefix(out, want) || errOut != "" {
			t.Errorf("fsctl %s: exit %d\nstdout: %s\nstderr: %s\nwant exit 0 and stdout starting with %q", strings.Join(args, " "), code, out, errOut, want)
		}
		return out
	}
	for _, name := range sortedKeys(commands) {
		for _, h := range []string{"-h", "--help"} {
			if verbs := commands[name].verbs; verbs != nil {
				out := check("usage: fsctl "+name+" VERB", name, h)
				for _, v := range sortedKeys(verbs) {
					if !strings.Contains(out, "  "+v+" ") {
						t.Errorf("fsctl %s %s does not list %s:\n%s", name, h, v, out)
					}
					check("usage: fsctl "+name+" "+v, name, v, h)
				}
			} else {
				check("usage: fsctl "+name, name, h)
			}
		}
	}
	// The flags are listed, wherever -h stands.
	for _, tc := range []struct {
		args []string
		want []string
	}{
		{[]string{"pull", "--project", "p", "-h"}, []string{"-cursor-file", "when the whole pull succeeded", "-since", "-out", "-limit"}},
		{[]string{"form", "close", "-h"}, []string{"-yes", "-project", "-form"}},
		{[]string{"device", "add", "north", "-h"}, []string{"-public-url"}},
		{[]string{"help", "push"}, []string{"usage: fsctl push", "-fail-on-conflict"}},
		{[]string{"--help"}, []string{"usage: fsctl", "-timeout", "-version", "pull"}},
		{[]string{"help"}, []string{"usage: fsctl", "device"}},
	} {
		out := check("usage: fsctl", tc.args...)
		for _, w := range tc.want {
			if !strings.Contains(out, w) {
				t.Errorf("fsctl %s lacks %q:\n%s", strings.Join(tc.args, " "), w, out)
			}
		}
	}
	for _, args := range [][]string{{"--version"}, {"-version"}, {"version"}} {
		if code, out, _ := c.run("", args...); code != exitOK || !strings.HasPrefix(out, "fsctl ") {
			t.Errorf("fsctl %v: %d %q", args, code, out)
		}
	}
}

// TestFsctlUnknown: an unknown command, verb or flag says what is wrong and
// prints the usage of the nearest command on standard error, exit 2.
func TestFsctlUnknown(t *testing.T) {
	c := &cli{t: t, env: map[string]string{"FSCTL_CONFIG": filepath.Join(t.TempDir(), "fsctl.json")}}
	for _, tc := range []struct {
		args []string
		want []string
	}{
		{[]string{"pul"}, []string{`unknown command "pul" (did you mean "pull"?)`, "usage: fsctl [--timeout D] COMMAND"}},
		{[]string{"--frob"}, []string{"flag provided but not defined: -frob", "usage: fsctl [--timeout D] COMMAND"}},
		{[]string{"user", "frob"}, []string{`unknown user command "frob"`, "usage: fsctl user VERB", "disable"}},
		{[]string{"form", "clos"}, []string{`(did you mean "close"?)`, "usage: fsctl form VERB"}},
		{[]string{"form"}, []string{"want one of: close, list, push, reopen", "usage: fsctl form VERB"}},
		{[]string{"push", "x.ndjson", "--project", "p", "--frob"}, []string{"fsctl push: flag provided but not defined: -frob", "usage: fsctl push FILE.ndjson", "-fail-on-conflict"}},
		{[]string{"form", "close", "--project", "p"}, []string{"fsctl form close: --form is required", "usage: fsctl form close", "-yes"}},
		{[]string{"device", "add", "north"}, []string{"fsctl device add: wrong number of arguments", "usage: fsctl device add PROJECT NAME"}},
		{[]string{"--timeout", "0s", "health"}, []string{"--timeout must be more than 0"}},
	} {
		code, out, errOut := c.run("", tc.args...)
		if code != exitUsage || out != "" {
			t.Errorf("fsctl %s: exit %d, stdout %q; want exit 2 and nothing on stdout", strings.Join(tc.args, " "), code, out)
		}
		for _, w := range tc.want {
			if !strings.Contains(errOut, w) {
				t.Errorf("fsctl %s: stderr lacks %q:\n%s", strings.Join(tc.args, " "), w, errOut)
			}
		}
	}
}
