-- 0011: record and revision data stored compressed, and old revisions as deltas
-- of newer ones (issue 16: ~1 KB of answers took 3.4 KB of disk, 8 KB once
-- edited). The data columns are TEXT of a STRICT table and cannot hold bytes,
-- so the new forms go in a BLOB column beside them; a row has one or the other
-- (see record_data.go). Rows written before keep their JSON text and read as
-- before: this migration rewrites nothing, so it is instant on any store.

ALTER TABLE records ADD COLUMN zdata BLOB;
ALTER TABLE revisions ADD COLUMN zdata BLOB;

-- A dictionary per form (issue 16): JSON of records of the form, against which
-- the data of later records of the form is encoded (see record_data.go). A
-- dictionary is made once, never changes and is never deleted, as every datum
-- encoded with it names it by id.
CREATE TABLE data_dicts (
	id         INTEGER PRIMARY KEY,
	project_id TEXT NOT NULL,
	form_id    TEXT NOT NULL,
	dict       BLOB NOT NULL,
	created_at INTEGER
) STRICT;
CREATE UNIQUE INDEX data_dicts_form ON data_dicts (project_id, form_id);
