-- Schema version 8 to 9: a coordinator's override of a signal's level, with the reason;
-- the level column stays what the rules give.
ALTER TABLE signals ADD COLUMN override_level TEXT;
ALTER TABLE signals ADD COLUMN override_reason TEXT;
ALTER TABLE signals ADD COLUMN override_by TEXT;
ALTER TABLE signals ADD COLUMN override_at_ms INTEGER;
