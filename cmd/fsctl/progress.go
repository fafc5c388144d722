package main

import (
	"time"

	"github.com/schollz/progressbar/v3"
)

// progress is a progress bar on standard error when standard error is a
// terminal, and nothing at all otherwise: a script's log or a pipe gets no
// carriage returns. add may be called concurrently; clear and done only when
// no add runs.
type progress struct{ bar *progressbar.ProgressBar }

// newProgress starts a bar counting up to max units (bytes when bytes is
// set); max -1 is a spinner with a count, for a total not known in advance.
func (e *env) newProgress(max int64, description, unit string, bytes bool) *progress {
	if !e.isTerminal(e.stderr) {
		return &progress{}
	}
	opts := []progressbar.Option{
		progressbar.OptionSetWriter(e.stderr),
		progressbar.OptionSetDescription(description),
		progressbar.OptionThrottle(100 * time.Millisecond),
		progressbar.OptionClearOnFinish(),
		progressbar.OptionSetRenderBlankState(true),
		progressbar.OptionShowIts(),
		// No spinner of its own: its goroutine would write to the terminal
		// while Clear, which takes no lock, does too. The bar moves with
		// each add instead.
		progressbar.OptionSetSpinnerChangeInterval(0),
	}
	if bytes {
		opts = append(opts, progressbar.OptionShowBytes(true))
	} else {
		opts = append(opts, progressbar.OptionShowCount(), progressbar.OptionSetItsString(unit))
	}
	p := &progress{bar: progressbar.NewOptions64(max, opts...)}
	e.bar = p
	return p
}

// clear takes the bar off its line for a message; it comes back with the
// next add.
func (p *progress) clear() {
	if p != nil && p.bar != nil {
		_ = p.bar.Clear()
	}
}

// add counts n more units done.
func (p *progress) add(n int) {
	if p.bar != nil {
		_ = p.bar.Add(n)
	}
}

// describe changes the text before the bar.
func (p *progress) describe(s string) {
	if p.bar != nil {
		p.bar.Describe(s)
	}
}

// done clears the bar from the terminal, so that the summary that follows
// stands alone, and stops the bar's spinner. Call it after the last add; it
// may be called again (deferred, for an early return).
func (p *progress) done() {
	if p.bar != nil {
		_ = p.bar.Finish()
		_ = p.bar.Clear()
		p.bar = nil
	}
}
