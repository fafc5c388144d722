-- 0001: the whole first schema. Times are INTEGER Unix milliseconds in UTC (NULL
-- for an unset time); JSON values are TEXT; booleans are INTEGER 0/1. No foreign
-- keys between entities the services create separately (users, projects,
-- devices, tokens): the MongoDB backend cannot enforce them, and both backends
-- must answer alike. Form versions do reference their form, which is created in
-- the same transaction.

CREATE TABLE users (
	username           TEXT PRIMARY KEY,
	display_name       TEXT NOT NULL DEFAULT '',
	password_hash      TEXT NOT NULL DEFAULT '',
	admin              INTEGER NOT NULL DEFAULT 0,
	disabled           INTEGER NOT NULL DEFAULT 0,
	tokens_valid_after INTEGER,
	created_at         INTEGER,
	updated_at         INTEGER
) STRICT;

CREATE TABLE projects (
	id         TEXT PRIMARY KEY,
	title      TEXT NOT NULL DEFAULT '',
	created_by TEXT NOT NULL DEFAULT '',
	created_at INTEGER
) STRICT;

CREATE TABLE memberships (
	project_id TEXT NOT NULL,
	username   TEXT NOT NULL,
	role       TEXT NOT NULL,
	updated_at INTEGER,
	PRIMARY KEY (project_id, username)
) STRICT, WITHOUT ROWID;
-- ListMemberships by user (the projects a caller may see).
CREATE INDEX memberships_user ON memberships (username, project_id);

CREATE TABLE devices (
	id                    TEXT PRIMARY KEY,
	project_id            TEXT NOT NULL,
	name                  TEXT NOT NULL DEFAULT '',
	enrollment_hash       TEXT NOT NULL DEFAULT '',
	enrollment_expires_at INTEGER,
	enrolled_at           INTEGER,
	info                  TEXT,
	revoked_at            INTEGER,
	created_by            TEXT NOT NULL DEFAULT '',
	created_at            INTEGER
) STRICT;
-- EnrollDevice looks a code up by its hash; two devices never share one.
CREATE UNIQUE INDEX devices_enrollment ON devices (enrollment_hash) WHERE enrollment_hash <> '';
CREATE INDEX devices_project ON devices (project_id, created_at, id);

CREATE TABLE token_families (
	id         TEXT PRIMARY KEY,
	subject    TEXT NOT NULL,
	device_id  TEXT NOT NULL DEFAULT '',
	revoked_at INTEGER,
	created_at INTEGER
) STRICT;
CREATE INDEX token_families_subject ON token_families (subject);

CREATE TABLE refresh_tokens (
	hash       TEXT PRIMARY KEY,
	family_id  TEXT NOT NULL,
	subject    TEXT NOT NULL DEFAULT '',
	expires_at INTEGER,
	spent_at   INTEGER,
	created_at INTEGER
) STRICT;
CREATE INDEX refresh_tokens_family ON refresh_tokens (family_id);

CREATE TABLE signing_keys (
	id          TEXT PRIMARY KEY,
	algorithm   TEXT NOT NULL,
	private_key BLOB NOT NULL,
	created_at  INTEGER,
	retired_at  INTEGER
) STRICT;
CREATE INDEX signing_keys_created ON signing_keys (created_at, id);

CREATE TABLE settings (
	key   TEXT PRIMARY KEY,
	value TEXT NOT NULL
) STRICT, WITHOUT ROWID;

CREATE TABLE forms (
	project_id      TEXT NOT NULL,
	id              TEXT NOT NULL,
	title           TEXT NOT NULL DEFAULT '',
	state           TEXT NOT NULL,
	current_version TEXT NOT NULL DEFAULT '',
	closed_at       INTEGER,
	created_at      INTEGER,
	updated_at      INTEGER,
	PRIMARY KEY (project_id, id)
) STRICT, WITHOUT ROWID;

-- A rowid table (definitions can be large); the rowid breaks ties of created_at
-- so "ordered by creation" is the insertion order.
CREATE TABLE form_versions (
	project_id   TEXT NOT NULL,
	form_id      TEXT NOT NULL,
	version      TEXT NOT NULL,
	state        TEXT NOT NULL,
	hash         TEXT NOT NULL DEFAULT '',
	title        TEXT NOT NULL DEFAULT '',
	policy       TEXT NOT NULL DEFAULT '',
	shared       INTEGER NOT NULL DEFAULT 0,
	definition   TEXT,
	published_at INTEGER,
	created_at   INTEGER,
	updated_at   INTEGER,
	PRIMARY KEY (project_id, form_id, version),
	FOREIGN KEY (project_id, form_id) REFERENCES forms (project_id, id)
) STRICT;

-- records holds the current state of every record, one row each. rk is a stable
-- row key (an explicit INTEGER PRIMARY KEY, so VACUUM keeps it): revisions and
-- assignees refer to it, so their keys grow at the end of their b-trees instead
-- of landing at random places, as keys made of client UUIDs would. seq is the
-- record's position in its project's changes feed, rewritten on every write, so
-- the feed is a range scan of records_seq and a record is in it once.
CREATE TABLE records (
	rk                 INTEGER PRIMARY KEY,
	project_id         TEXT NOT NULL,
	id                 TEXT NOT NULL,
	seq                INTEGER NOT NULL,
	version            INTEGER NOT NULL,
	form_id            TEXT NOT NULL DEFAULT '',
	form_version       TEXT NOT NULL DEFAULT '',
	rev                TEXT NOT NULL,
	deleted            INTEGER NOT NULL DEFAULT 0,
	data               TEXT,
	created_by         TEXT NOT NULL DEFAULT '',
	device_id          TEXT NOT NULL DEFAULT '',
	client_modified_at INTEGER,
	created_at         INTEGER,
	updated_at         INTEGER,
	review_state       TEXT NOT NULL DEFAULT '',
	review_comment     TEXT NOT NULL DEFAULT '',
	conflicts          TEXT,
	assigned_to        TEXT,
	shared             INTEGER NOT NULL DEFAULT 0,
	attachments        TEXT
) STRICT;
-- GetRecord and the conditional writes.
CREATE UNIQUE INDEX records_id ON records (project_id, id);
-- The feed, and max(seq) for the next position.
CREATE UNIQUE INDEX records_seq ON records (project_id, seq);
-- An enumerator's own records, in feed order.
CREATE INDEX records_creator ON records (project_id, created_by, seq);
-- Records of shared forms, in feed order (only those rows are indexed).
CREATE INDEX records_shared ON records (project_id, seq) WHERE shared = 1;
-- One form's records in feed order (exports, per-form listing).
CREATE INDEX records_form ON records (project_id, form_id, seq);

-- record_assignees mirrors records.assigned_to, one row per (record, subject), so
-- an enumerator's assigned records are an index range, not a JSON scan.
CREATE TABLE record_assignees (
	project_id TEXT NOT NULL,
	subject    TEXT NOT NULL,
	rk         INTEGER NOT NULL,
	PRIMARY KEY (project_id, subject, rk)
) STRICT, WITHOUT ROWID;

-- revisions is a record's history: rk names the record (see records). Clustered
-- on (rk, rev): one b-tree, and a new record's revisions land at its end.
-- data_in_record = 1 marks the revision the record holds now, when its data is
-- the record's data byte for byte: data is then NULL here and read from the
-- record, so a create writes its answers once, not twice. Before a record row
-- changes, its data is copied back into such a revision (see WriteRecords).
CREATE TABLE revisions (
	rk                 INTEGER NOT NULL,
	rev                TEXT NOT NULL,
	parent             TEXT NOT NULL DEFAULT '',
	deleted            INTEGER NOT NULL DEFAULT 0,
	data               TEXT,
	data_in_record     INTEGER NOT NULL DEFAULT 0,
	form_version       TEXT NOT NULL DEFAULT '',
	client_modified_at INTEGER,
	created_by         TEXT NOT NULL DEFAULT '',
	device_id          TEXT NOT NULL DEFAULT '',
	created_at         INTEGER,
	PRIMARY KEY (rk, rev)
) STRICT, WITHOUT ROWID;

CREATE TABLE quarantine (
	project_id   TEXT NOT NULL,
	id           TEXT NOT NULL,
	record_id    TEXT NOT NULL DEFAULT '',
	form_id      TEXT NOT NULL DEFAULT '',
	form_version TEXT NOT NULL DEFAULT '',
	submission   TEXT,
	errors       TEXT,
	submitted_by TEXT NOT NULL DEFAULT '',
	device_id    TEXT NOT NULL DEFAULT '',
	first_seen   INTEGER NOT NULL,
	last_seen    INTEGER NOT NULL,
	attempts     INTEGER NOT NULL,
	resolved_at  INTEGER,
	PRIMARY KEY (project_id, id)
) STRICT;
-- ListQuarantine pages in first-seen order; ResolveQuarantine goes by record.
CREATE INDEX quarantine_order ON quarantine (project_id, first_seen, id);
CREATE INDEX quarantine_record ON quarantine (project_id, record_id);

-- AUTOINCREMENT: an event's seq is never reused, even after the newest row is
-- gone, so IDs made from it keep increasing in commit order.
CREATE TABLE audit_events (
	seq         INTEGER PRIMARY KEY AUTOINCREMENT,
	time        INTEGER NOT NULL,
	type        TEXT NOT NULL DEFAULT '',
	actor       TEXT NOT NULL DEFAULT '',
	project_id  TEXT NOT NULL DEFAULT '',
	subject     TEXT NOT NULL DEFAULT '',
	remote_addr TEXT NOT NULL DEFAULT '',
	detail      TEXT
) STRICT;
CREATE INDEX audit_type ON audit_events (type, seq);
CREATE INDEX audit_actor ON audit_events (actor, seq);
CREATE INDEX audit_project ON audit_events (project_id, seq);
CREATE INDEX audit_time ON audit_events (time);
