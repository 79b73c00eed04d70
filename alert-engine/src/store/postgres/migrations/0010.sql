-- Schema version 9 to 10, as SQLite's migrations/0010.sql: a report's and a signal's drill
-- ('' when real, 'exercise', 'test'; issue 16 §2).
ALTER TABLE reports ADD COLUMN drill TEXT NOT NULL DEFAULT '';
ALTER TABLE signals ADD COLUMN drill TEXT NOT NULL DEFAULT '';
-- A notice about no alert (a silent feed's) is a delivery without one (issue 16 §3).
ALTER TABLE deliveries ALTER COLUMN alert_id DROP NOT NULL;
INSERT INTO ldis_schema (version) VALUES (10);
