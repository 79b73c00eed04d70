-- Schema version 10 to 11, as SQLite's migrations/0011.sql: what a partner said it did with
-- an alert (issue 17 §4).
ALTER TABLE deliveries ADD COLUMN answer TEXT;
ALTER TABLE deliveries ADD COLUMN answer_note TEXT;
ALTER TABLE deliveries ADD COLUMN answered_at_ms BIGINT;
-- The dashboard's trends and the quarterly report count reports by when they came.
CREATE INDEX reports_by_time ON reports(received_at_ms);
INSERT INTO ldis_schema (version) VALUES (11);
