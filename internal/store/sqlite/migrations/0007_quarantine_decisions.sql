-- 0007: what people decide about quarantine entries (issue 11): who re-applied
-- an entry (resolved_by) and its latest re-apply with the data tried
-- (last_reapply, JSON), a dismissal with who, when and why, and the claim of a
-- re-apply under way (claim, claimed_at), so that one entry is re-applied once.

ALTER TABLE quarantine ADD COLUMN resolved_by TEXT NOT NULL DEFAULT '';
ALTER TABLE quarantine ADD COLUMN dismissed_at INTEGER;
ALTER TABLE quarantine ADD COLUMN dismissed_by TEXT NOT NULL DEFAULT '';
ALTER TABLE quarantine ADD COLUMN dismiss_reason TEXT NOT NULL DEFAULT '';
ALTER TABLE quarantine ADD COLUMN last_reapply TEXT;
ALTER TABLE quarantine ADD COLUMN claim TEXT NOT NULL DEFAULT '';
ALTER TABLE quarantine ADD COLUMN claimed_at INTEGER;

-- Open now means neither resolved nor dismissed: the index every push asks
-- (ResolveQuarantine) must not count dismissed entries, or one dismissal would
-- cost every later push of the project a write transaction.
DROP INDEX quarantine_open;
CREATE INDEX quarantine_open ON quarantine (project_id) WHERE resolved_at IS NULL AND dismissed_at IS NULL;

-- The listing filtered by form (a designer looking at the entries of a form).
CREATE INDEX quarantine_form ON quarantine (project_id, form_id, first_seen, id);
