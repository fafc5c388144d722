// Package mongo is the MongoDB store: domain.Store on the official Go driver
// (v2), for deployments that outgrow one machine. Any number of server instances
// share one database.
//
// # Supported servers
//
// MongoDB 6.0 or later, as a replica set or a sharded cluster (a standalone
// mongod has no majority to speak of; use a one-member replica set). The tests
// run on FerretDB v1 behind a proxy (mongotest) that gives it the
// single-document atomicity MongoDB has; FerretDB is for tests only.
//
// # Single-document operations only
//
// Every operation is a single-document atomic write: an insert (whose unique
// indexes decide races), a conditional update or findAndModify, an upsert. There
// are no multi-document transactions and no change streams. Writes use write
// concern majority with journaling, reads use read concern majority from the
// primary: an acknowledged write survives a failover, and nothing a reader acts
// on (in particular a feed position it moves its cursor past) can be rolled
// back. Indexes are created at Open, idempotently. Driver errors become domain
// sentinels in one place (translate).
//
// Where a decision must have exactly one winner the store decides by inserting
// a document with a unique _id (using an enrollment code, spending a refresh
// token, creating a setting) or by a conditional update of one document; both
// hold on MongoDB.
//
// # Collections and shard keys
//
// Documents that belong to a project carry project_id, and their _id starts with
// the project ("<project>/<record id>", "<project>/<form>/<version>", …; project,
// form and version ids cannot contain '/'), so the _id index enforces
// uniqueness across shards too.
//
//	collection            _id                          shard key (sharded deployments)
//	records               project/record               {project_id: 1, _id: 1}
//	revisions             project/record/rev           {project_id: 1, record_id: 1}
//	changes               project/seq (20 digits)      {project_id: 1, seq: 1}   unique (project_id, seq)
//	counters              project                      unsharded (one small document per project)
//	forms, form_versions  project/form[/version]       {project_id: 1, _id: 1}
//	quarantine            project/item                 {project_id: 1, _id: 1}
//	record_reviews        project/record/entry         {project_id: 1, _id: 1}
//	memberships           project/username             unsharded
//	users, projects, devices, device_enrollments, token_families, refresh_tokens,
//	refresh_token_spends, signing_keys, settings, audit   unsharded (small)
//
// Every query, update and delete on the sharded collections names project_id
// in its filter (TestStore checks it with a command monitor): a single-document update
// or findAndModify must target one shard (MongoDB before 7.1 refuses it
// otherwise), and a project's queries go to the shards that hold it. Records
// of one project stay together and split into chunks by record id; a project's
// feed is one range of changes. JSON values (record data, revisions,
// definitions, submissions) are stored as BSON documents an analyst can query;
// see json.go for the mapping and its exact round trip.
//
// # The changes feed
//
// The feed must never skip a committed change, with several instances writing at
// once and no transactions. Positions come from a per-project counter (counters,
// $inc with upsert); the feed itself is the changes collection, one document per
// position {project_id, seq, record_id, form_id, subjects, prev} under a unique
// index on (project_id, seq). A change carries what visibility needs, as of the
// write it announces: the record's form and its subjects (created_by, every
// assignee, and "*" when shared); prev is the record's seq before the write. A
// write of a record (WriteRecords) takes these steps:
//
//	(b) apply the record: a create inserts it (duplicate: ErrExists); an update is
//	    a findOneAndUpdate filtered on {_id, project_id, rev: ExpectRev[,
//	    version: ExpectVersion], no pending write} (no match: ErrStale, or
//	    ErrNotFound if the record does not exist; a pending write is completed
//	    first, as by a reader below, and the update tried again). Either way the
//	    record gets a write id (write_id) and is marked pending with it, the
//	    write's revisions riding in the marker (pending_revs);
//	(c) append the change: take a position s from the counter and insert the
//	    change there; if s is taken (a reader voided it, see below) take a new
//	    position and insert again;
//	(d) complete: insert the revisions into the history (content-addressed: a
//	    duplicate is a no-op), then, only if the record still holds this write
//	    (write_id), raise its seq to s ($max) and clear the marker.
//
// The write is acknowledged (WriteRecords returns) after (d) was tried; a
// failure in (d) is left to the readers and the sweep below.
//
// A pending write never counts as settled. GetRecord and GetRecords complete
// any pending write they meet ((c) and (d), for the state they read) before
// returning the record: the sync service answers a resend whose rev it finds
// on the record "unchanged", and the tablet must then find the change in the
// feed. The history holds a revision only once its write reached (d), so
// GetRevision and ListRevisions never show a revision whose write may have
// failed or is not in the feed (the service takes "my revision is in the
// history" to mean "my edit was processed"). A record carries at most one
// pending write, since (b) requires none. Several completers of one write (its
// writer, readers, the sweep) may each append a change: a record twice in the
// feed is harmless, and the write_id condition in (d) keeps a change that
// announces an older state from becoming the record's seq.
//
// Invariant: the change at a record's seq announces its current state, or the
// record is pending and the pending write's change is yet to come. (d) raises
// seq only while the record holds the write it completes; no other update
// touches seq.
//
// The settled watermark. The counter document also holds W (settled), only
// ever raised ($max): every position at or below W is filled — it holds a
// change or a void, or held a change that compaction removed. A reader that
// verified that the positions from W up to n are all taken raises W to n; the
// sweep does too. No change can ever land at or below W: only the writer that
// allocated a position inserts there, once, and every such position is filled.
//
// A reader (Changes) first finds top, the end of the contiguous run of taken
// positions after its cursor: positions at or below max(cursor, W) are known
// filled, so it reads only the positions above, in order (nothing when the
// counter shows nothing allocated above). At the first missing position g it
// re-reads W (g may have been compacted away: then it goes on from W). Else g
// was allocated and its change is in flight (or its writer died): positions
// are dense, every position up to the counter was handed to some writer. The
// reader polls for g (after 2 ms, backing off to 100 ms). If g is still
// missing after Config.VoidGrace, measured on the reader's own clock from when
// it first saw the gap (no clocks are compared across machines), and W is
// still below g, the reader inserts a void {project_id, seq: g, void: true}.
// The unique index lets exactly one of the writer's insert and the void win; a
// writer that loses takes a new, larger position. (A reader that already has a
// run to serve answers that instead, with More set, after a short wait.) Then
// it reads the changes in (cursor, top] it may see — one query, filtered by
// subjects and form, sorted by seq, limited to what the page still needs, on
// the indexes {project_id, subjects, seq} and {project_id, form_id, seq} —
// and the records they name, read after the changes. A page of L records
// costs about L changes and L records, however few of the project's records
// the caller sees. A record is listed at the last position of the page that
// names it, and skipped at a position below the seq its document records (the
// change at that seq announces the current state: if the caller may see it, it
// lists the record there; if that position lies beyond what the page covers,
// the page reports More; since the position is taken, a later call's top
// reaches it, so this cannot keep a reader going for ever). Next is top, or,
// when the page is full, the last position examined; More is read last:
// whether a position beyond Next is taken.
//
// Why no change is skipped. A reader moves its cursor past a position only when
// it knows the position filled: it read a document there, or the position is
// at or below W. A filled position never receives a change later (the writer's
// insert there fails and it moves above), so every change a writer inserts
// lands above every cursor already handed out, and a reader that pages until
// More is false reads every change inserted before its first call, in
// particular the change of every write acknowledged by then (acknowledged after
// (c)), unless compaction removed it; compaction removes a change only when a
// later change of the record exists (below), which the reader reaches instead:
// the removal happened after that later change was inserted, and a page that
// missed the removed change reads More after it, so it sees the later change
// or reports More. At the change it reads, the reader reads the record as it
// is then, no older than that write, because (b) precedes (c); an enumerator
// is given the record when its current state is visible to it. Nor does a
// reader ever wait for ever: a writer that died after allocating leaves a gap
// that the first reader to reach it voids after VoidGrace.
//
// Compaction. A change at p whose record has a later change at q > p naming p
// as prev is superseded. The sweep (at Open and every Config.SweepInterval,
// stopped by Close) raises W over the filled positions (without waiting at a
// gap), then reads the changes from the project's compaction cursor up to W in
// bounded batches and deletes the changes their prev names (never a void: a
// slow writer whose position was voided must still fail its insert there),
// and moves the cursor. Since q ≤ W, the record's latest change remains, and
// p ≤ W, so no reader waits for or voids p. Readers may meet a removed
// position above their stale copy of W; they re-read W before waiting. A
// change whose write was also completed by another completer is named by no
// prev and stays (rare: a reader met the write in flight).
//
// A writer that dies between (b) and (c) leaves a record pending. The first
// reader to read it completes the write; the sweep completes those pending for
// longer than Config.PendingGrace that nobody read.
//
// # FerretDB v1
//
// The tests run on FerretDB v1 (SQLite handler). Its update and findAndModify
// are not atomic (FerretDB issue #3040: the filter is evaluated and the
// document written back in separate steps), and its $inc can lose increments;
// the store is written for MongoDB, and the tests run FerretDB behind a proxy
// (mongotest) that serializes modifying commands per collection to provide
// single-document atomicity. FerretDB does not implement findAndModify's
// "fields" (projection), so none is sent; and it panics on a createIndexes that
// names more than one existing index, so indexes are created one per command.
package mongo
