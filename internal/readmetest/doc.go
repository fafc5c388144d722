// Package readmetest runs every example of README.md, in order, as a reader
// would: the real fieldsync and fsctl binaries are built from this module, the
// server is started on a fresh SQLite data directory, and each fenced sh block
// is run statement by statement in a POSIX shell (mvdan.cc/sh's interpreter,
// which calls the real curl, jq and fsctl), with the README's placeholders
// (sync.example.org, enrollment codes, tokens, revisions printed by an earlier
// step) replaced by the values the run made.
//
// A block that cannot run must say why just above its fence:
//
//	<!-- readme: not run — REASON -->
//
// and a block whose effects the rest of the walk must not see (closing the form
// that the next sections push to) is run and then undone, the server's data
// directory put back as it was before the block:
//
//	<!-- readme: run, then undone — REASON -->
//
// The shell's variables stay; the server's data and fsctl's session go back.
//
// The few things a reader has that the README does not make are in
// tables_test.go, each with its reason: the placeholders' values, the files
// the reader brings (a tablet's outbox), and what happens in the field between
// two blocks (a clash of two offline edits, for the analyst's block to
// settle). The test fails when an entry of these tables no longer matches the
// README, so they follow it.
//
// Any other block that is not sh fails the test, so an example cannot be added
// without being run or saying why not. `go test -v` lists the blocks not run
// with their reasons.
//
// The package has tests only.
package readmetest
