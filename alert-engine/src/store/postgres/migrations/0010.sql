-- Schema version 9 to 10, as SQLite's migrations/0010.sql: a report's and a signal's drill
-- ('' when real, 'exercise', 'test'; issue 16 §2).
ALTER TABLE reports ADD COLUMN drill TEXT NOT NULL DEFAULT '';
ALTER TABLE signals ADD COLUMN drill TEXT NOT NULL DEFAULT '';
INSERT INTO ldis_schema (version) VALUES (10);
