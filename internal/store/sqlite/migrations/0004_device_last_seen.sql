-- 0004: when each device last pushed or pulled (TouchDevice), for managers'
-- device lists. NULL until its first sync.

ALTER TABLE devices ADD COLUMN last_seen_at INTEGER;
