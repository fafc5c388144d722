-- 0011: record and revision data stored compressed, and old revisions as deltas
-- of newer ones (issue 16: ~1 KB of answers took 3.4 KB of disk, 8 KB once
-- edited). The data columns are TEXT of a STRICT table and cannot hold bytes,
-- so the new forms go in a BLOB column beside them; a row has one or the other
-- (see record_data.go). Rows written before keep their JSON text and read as
-- before: this migration rewrites nothing, so it is instant on any store.

ALTER TABLE records ADD COLUMN zdata BLOB;
ALTER TABLE revisions ADD COLUMN zdata BLOB;
