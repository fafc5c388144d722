-- 0009: which record holds which attachment file (issue 13). The bytes live
-- under the data directory (attachments/blobs, content-addressed by sha256);
-- a link says they were uploaded for (project, record, name).

CREATE TABLE attachment_links (
    project_id   TEXT    NOT NULL,
    record_id    TEXT    NOT NULL,
    name         TEXT    NOT NULL,
    sha256       TEXT    NOT NULL,
    size         INTEGER NOT NULL,
    content_type TEXT    NOT NULL DEFAULT '',
    created_at   INTEGER NOT NULL,
    PRIMARY KEY (project_id, record_id, name)
);

CREATE INDEX attachment_links_by_sha256 ON attachment_links (sha256);
