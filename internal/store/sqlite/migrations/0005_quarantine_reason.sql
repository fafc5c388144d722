-- 0005: why an item is in the quarantine: 'rejected' (it failed its checks)
-- or 'forbidden' (its device may not write that record). Only rejected items
-- are resolved by a later write of their record.

ALTER TABLE quarantine ADD COLUMN reason TEXT NOT NULL DEFAULT 'rejected';
