-- Schema version 4 to 5: The update throttle: which version partners were last sent, and
-- when.
ALTER TABLE alerts ADD COLUMN routed_version INTEGER NOT NULL DEFAULT 0;
ALTER TABLE alerts ADD COLUMN routed_at_ms INTEGER NOT NULL DEFAULT 0;
UPDATE alerts SET routed_version = version, routed_at_ms = updated_at_ms;
