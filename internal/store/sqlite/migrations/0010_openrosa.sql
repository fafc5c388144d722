-- 0010: the OpenRosa bridge (ODK Collect). A published version keeps the XForm
-- made from it, byte-identical forever, with its md5 and the generator's notes;
-- a device may hold one OpenRosa key (stored as its sha256 only); every
-- submission that became a revision is remembered by its instance id.

ALTER TABLE form_versions ADD COLUMN xform BLOB;
ALTER TABLE form_versions ADD COLUMN xform_md5 TEXT NOT NULL DEFAULT '';
ALTER TABLE form_versions ADD COLUMN openrosa TEXT;

ALTER TABLE devices ADD COLUMN openrosa_key_hash TEXT NOT NULL DEFAULT '';
-- A key names one device; a request finds its device by the key's hash.
CREATE UNIQUE INDEX devices_openrosa_key ON devices (openrosa_key_hash) WHERE openrosa_key_hash <> '';

CREATE TABLE openrosa_instances (
	project_id  TEXT NOT NULL,
	instance_id TEXT NOT NULL,
	record_id   TEXT NOT NULL,
	rev         TEXT NOT NULL,
	xml_hash    TEXT NOT NULL,
	created_at  INTEGER,
	PRIMARY KEY (project_id, instance_id)
) STRICT;
