-- 0008: one form's records in (created_at, id) order, for the datasets'
-- record query (QueryRecords: exports, the records listing): a page is an
-- index range after its cursor, and since/until bound the same range.

CREATE INDEX records_form_created ON records (project_id, form_id, created_at, id);
