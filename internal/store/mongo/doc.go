// Package mongo is the MongoDB store: domain.Store on the official Go driver
// (v2), for deployments that outgrow one machine. Any number of server instances
// share one database.
//
// # Single-document operations only
//
// Every operation is a single-document atomic write: an insert (whose unique
// indexes decide races), a conditional update or findAndModify, an upsert. There
// are no multi-document transactions and no change streams, so the store runs on
// a standalone mongod, a replica set, a sharded cluster and MongoDB-compatible
// servers (the tests run on FerretDB v1). Writes use write concern majority with
// journaling, reads use read concern majority from the primary: an acknowledged
// write survives a failover, and nothing a reader acts on (in particular a feed
// position it moves its cursor past) can be rolled back. Indexes are created at
// Open, idempotently. Driver errors become domain sentinels in one place
// (translate).
//
// Where a decision must have exactly one winner and a conditional update would
// suffice on MongoDB, the store still decides by inserting a document with a
// unique _id (using an enrollment code, spending a refresh token, creating a
// setting): FerretDB v1 evaluates a findAndModify's filter and writes the
// document in two steps, so several conditional updates racing on one document
// can all succeed there, while a unique index holds everywhere.
//
// # Collections and shard keys
//
// Documents that belong to a project carry project_id, and their _id starts with
// the project ("<project>/<record id>", "<project>/<form>/<version>", …; project,
// form and version ids cannot contain '/'), so _id alone determines the shard key
// below and the _id index enforces uniqueness across shards too.
//
//	collection            _id                          shard key (sharded deployments)
//	records               project/record               {project_id: 1, _id: 1}
//	revisions             project/record/rev           {project_id: 1, record_id: 1}
//	changes               project/seq (20 digits)      {project_id: 1, seq: 1}   unique (project_id, seq)
//	counters              project                      unsharded (one small document per project)
//	forms, form_versions  project/form[/version]       {project_id: 1, _id: 1}
//	quarantine            project/item                 {project_id: 1, _id: 1}
//	memberships           project/username             unsharded
//	users, projects, devices, device_enrollments, token_families, refresh_tokens,
//	refresh_token_spends, signing_keys, settings, audit   unsharded (small)
//
// Records of one project stay together and split into chunks by record id; a
// project's feed is one range of changes. JSON values (record data, revisions,
// definitions, submissions) are stored as BSON documents an analyst can query;
// see json.go for the mapping and its exact round trip.
//
// # The changes feed
//
// The feed must never skip a committed change, with several instances writing at
// once and no transactions. Positions come from a per-project counter (counters,
// $inc with upsert); the feed itself is the changes collection, one document per
// position {project_id, seq, record_id} under a unique index on (project_id,
// seq). A write of a record (WriteRecords) takes these steps:
//
//	(a) insert its revisions, unconfirmed (a duplicate means already held);
//	(b) apply the record: a create inserts it (duplicate: ErrExists); an update is
//	    a findOneAndUpdate filtered on {_id, rev: ExpectRev[, version:
//	    ExpectVersion]} (no match: ErrStale, or ErrNotFound if the record does not
//	    exist). Either way the record is marked pending with a token of this write;
//	(c) append the change: take a position s from the counter and insert
//	    {project_id, seq: s, record_id}; if s is taken (a reader voided it, see
//	    below) take a new position and insert again;
//	(d) confirm the revisions, then raise the record's seq to s ($max: a
//	    record's seq is the largest position that names it) and clear the
//	    marker if it is still this write's.
//
// The write is acknowledged (WriteRecords returns) only after (c). Before (c)
// runs, the allocator also reads the project's largest position and never uses
// one at or below it, so a write acknowledged before another began has the
// smaller position (on MongoDB the counter guarantees this already; the check
// also covers servers whose $inc is not atomic).
//
// A reader (Changes) reads the positions after its cursor in order and takes
// their contiguous run since+1, since+2, …, stopping at the first missing
// position g. Positions are dense: every position up to the counter was handed
// to some writer, so a larger position in the collection means g was allocated
// and its change is in flight (or its writer died). The reader polls for g
// (after 2 ms, then backing off to 100 ms). If g is still missing after
// Config.VoidGrace, measured on the reader's
// own clock from when it first saw the gap (no clocks are compared across
// machines), the reader inserts a void {project_id, seq: g, void: true}. The
// unique index lets exactly one of the writer's insert and the void win; a
// writer that loses takes a new, larger position. (A reader that already holds
// part of a page answers that part instead, with More set, after a short wait.)
// The page holds the current state of the records named in the run, read after
// the run; Next is the end of the run; More reports positions beyond it.
//
// Why no change is skipped. A reader moves its cursor past a position only when
// it has read a document at that position: a change, or a void, both durable
// (majority). Documents are never deleted and a position holds at most one, so a
// position at or below a cursor that any reader was given can never receive a
// change later: the writer's insert there fails and it moves above. Hence every
// change a writer inserts lands above every cursor already handed out, and a
// reader that pages until More is false reads every change inserted before its
// first call, in particular the change of every write acknowledged by then (the
// acknowledgement comes after (c)). At that change's position the reader reads
// the record as it is then, which is no older than that write, because (b)
// precedes (c). (A record is listed at the last position of the page that names
// it, and skipped at a position below the seq its document records: that later
// position holds a change too, written before the seq was, and will list it. The
// record is read after the positions, so the later position may lie beyond what
// the reader saw of the feed; the page then reports More, so the reader goes on
// to it.) Nor does a reader ever
// wait for ever: a writer that died after allocating leaves a gap that the first
// reader to reach it voids after VoidGrace, so no separate sweep for abandoned
// allocations is needed — voiding covers them, lazily and only where a reader
// actually waits.
//
// A writer that dies between (b) and (c) leaves a record that shows a state no
// change announces (the write was never acknowledged, but GetRecord shows it).
// A sweep, at Open and every Config.SweepInterval (stopped by Close), and early
// when a write finds such a record, takes records pending for longer than
// Config.PendingGrace and completes their writes: it appends a change, confirms
// their revisions and clears the marker. A later write of the record also covers
// it, since that write's change announces the current state. A slow writer may
// race the sweep and both append a change; a record twice in the feed is
// harmless.
//
// Revisions are inserted before the record is touched (a), so the history always
// holds the record's current rev. A revision counts as history only once a write
// carrying it applied: it is confirmed in (d), and until then readers see it
// because the record names it among its pending revisions. The revision of a
// write that failed its condition stays unconfirmed and invisible, since the sync
// service reads "my revision is in the history" as "my edit was processed".
// A write that replaces an earlier, interrupted one keeps that write's pending
// revisions on the record ($addToSet) and confirms them too.
//
// # FerretDB v1
//
// The tests run on FerretDB v1 (SQLite handler), whose limitations shaped a few
// choices. Its update and findAndModify are not atomic (FerretDB issue #3040:
// the filter is evaluated and the document written back in separate steps), so
// conditional updates racing on one document can all win and concurrent $inc can
// lose increments; hence the insert-decided winners above and the allocator's
// floor check, which keep those guarantees on such a server. Record writes
// themselves rely on single-document atomicity, which MongoDB provides; the
// tests run FerretDB behind a proxy (mongotest) that serializes modifying
// commands per collection to provide it too. FerretDB does not implement
// findAndModify's "fields" (projection), so none is sent; and it panics on a
// createIndexes that names more than one existing index, so indexes are created
// one per command.
package mongo
