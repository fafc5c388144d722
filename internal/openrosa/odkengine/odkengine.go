// Package odkengine runs ODK's own form engine, @getodk/xforms-engine, headless
// in Node (openrosa.md §5), as ODK Collect's stand-in in tests: it loads an
// XForm, fills it in as an enumerator would, and gives the submission XML
// exactly as a device sends it. The harness is internal/openrosa/testdata/engine
// (harness.mjs, with its package.json and package-lock.json); .ci/run installs
// it with npm ci.
package odkengine

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"testing"
)

// RequireEnv, when set to 1, turns a missing engine from a skip into a
// failure: CI sets it, so the engine tests cannot be skipped silently there.
const RequireEnv = "FIELDSYNC_REQUIRE_ODK_ENGINE"

// Step is one action of an enumerator.
type Step struct {
	Ref    string   `json:"ref"`
	Value  string   `json:"value,omitempty"`
	Values []string `json:"values,omitempty"`
	Add    *int     `json:"add,omitempty"` // add this many repeat instances
	File   string   `json:"file,omitempty"`
	Type   string   `json:"type,omitempty"`
	Text   string   `json:"text,omitempty"`
}

// Job is one run of the engine.
type Job struct {
	XForm string `json:"xform"`
	// Edit is a submitted instance to open for editing, as Collect does
	// when an enumerator edits a sent form.
	Edit  string `json:"edit,omitempty"`
	Steps []Step `json:"steps"`
}

// File is one attachment of a submission.
type File struct {
	Name string `json:"name"`
	Type string `json:"type"`
	Text string `json:"text"`
}

// Answer is what the engine made.
type Answer struct {
	Status     string            `json:"status"` // "ready", or "pending" with violations
	Violations []json.RawMessage `json:"violations"`
	XML        string            `json:"xml"`
	Files      []File            `json:"files"`
	Refs       []string          `json:"refs"`
	Error      string            `json:"error"`
}

// dir is the harness folder.
func dir() string {
	_, file, _, _ := runtime.Caller(0)
	return filepath.Join(filepath.Dir(file), "..", "testdata", "engine")
}

// Require skips tb, with the reason, when Node or the installed engine is
// missing, unless RequireEnv is set, when it fails tb instead.
func Require(tb testing.TB) {
	tb.Helper()
	var why string
	if _, err := exec.LookPath("node"); err != nil {
		why = "node is not installed (ODK's form engine runs in Node 20+)"
	} else if _, err := os.Stat(filepath.Join(dir(), "node_modules", "@getodk", "xforms-engine")); err != nil {
		why = "the ODK engine is not installed: run `npm ci` in internal/openrosa/testdata/engine (.ci/run does)"
	}
	if why == "" {
		return
	}
	if os.Getenv(RequireEnv) == "1" {
		tb.Fatalf("%s, and %s=1 requires it", why, RequireEnv)
	}
	tb.Skipf("skipped: %s", why)
}

// Run runs one job. An error is the engine's (a form it cannot load, a step
// it refuses) or the harness's.
func Run(ctx context.Context, job Job) (Answer, error) {
	in, err := json.Marshal(job)
	if err != nil {
		return Answer{}, err
	}
	cmd := exec.CommandContext(ctx, "node", "harness.mjs")
	cmd.Dir = dir()
	cmd.Stdin = bytes.NewReader(in)
	var out, errOut bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &errOut
	runErr := cmd.Run()
	var a Answer
	if err := json.Unmarshal(out.Bytes(), &a); err != nil {
		return Answer{}, fmt.Errorf("odkengine: %v (%v): %s", runErr, err, errOut.String())
	}
	if a.Error != "" {
		return a, errors.New("odkengine: " + a.Error)
	}
	return a, runErr
}

// RunAll runs jobs in one Node process (starting the engine takes seconds);
// each answer carries its own Error.
func RunAll(ctx context.Context, jobs []Job) ([]Answer, error) {
	in, err := json.Marshal(jobs)
	if err != nil {
		return nil, err
	}
	cmd := exec.CommandContext(ctx, "node", "harness.mjs")
	cmd.Dir = dir()
	cmd.Stdin = bytes.NewReader(in)
	var out, errOut bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &errOut
	runErr := cmd.Run()
	var as []Answer
	if err := json.Unmarshal(out.Bytes(), &as); err != nil || len(as) != len(jobs) {
		return nil, fmt.Errorf("odkengine: %v (%v): %s", runErr, err, errOut.String())
	}
	return as, nil
}
