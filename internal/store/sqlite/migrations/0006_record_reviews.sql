-- 0006: the review thread of each record: comments and review-state changes,
-- with who and when, appended and never overwritten (records.review_comment
-- keeps only the latest comment, for the record's JSON).

CREATE TABLE record_reviews (
	seq            INTEGER PRIMARY KEY AUTOINCREMENT,
	project_id     TEXT NOT NULL,
	record_id      TEXT NOT NULL,
	author         TEXT NOT NULL,
	created_at     INTEGER,
	text           TEXT NOT NULL DEFAULT '',
	review_state   TEXT NOT NULL DEFAULT '',
	previous_state TEXT NOT NULL DEFAULT ''
);

CREATE INDEX record_reviews_by_record ON record_reviews (project_id, record_id, seq);
