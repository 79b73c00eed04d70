-- Schema version 6 to 7: Retention: when a report's free text and contact were removed.
ALTER TABLE reports ADD COLUMN purged_at_ms INTEGER;
CREATE INDEX reports_to_purge ON reports(received_at_ms) WHERE purged_at_ms IS NULL;
