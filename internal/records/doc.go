// Package records is the sync service: push (per-item statuses, replays,
// conflict policies, quarantine), pull (the changes feed with the protocol's
// visibility rules) and the analysts' record operations (read with history,
// correct, resolve, review and assign, quarantine list).
//
// The decisions about revisions and merges are pure functions of package syncer;
// this package loads what they need from the store, applies their outcome with
// conditional writes, and retries an item whose record moved on in between
// (another instance wrote it), so two devices editing one record at the same
// moment through two instances never lose an edit.
//
// History: every revision of a record is kept (the store appends it with the
// write), so a device can merge from any base it may still hold, however long it
// was offline. A base the server does not hold (a revision made on a device that
// never reached the server, or lost with a restored backup) is treated as
// missing: the merge then counts every field where the two sides differ as a
// clash, so nothing is overwritten silently.
package records
