-- 0003: the open quarantine entries of a project, found without reading the
-- resolved ones: every push asks whether its project has any open entry before
-- it resolves those of the records it wrote (ResolveQuarantine).

CREATE INDEX quarantine_open ON quarantine (project_id) WHERE resolved_at IS NULL;
