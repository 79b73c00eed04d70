-- Schema version 11 to 12, as SQLite's migrations/0012.sql: photos of a batch (issue 17 §3).
CREATE TABLE photos (
    id            TEXT PRIMARY KEY,
    report_id     TEXT,
    uploaded_by   TEXT NOT NULL,
    sha256        TEXT NOT NULL,
    sha1          TEXT NOT NULL,
    width         BIGINT NOT NULL,
    height        BIGINT NOT NULL,
    bytes         BIGINT NOT NULL,
    created_at_ms BIGINT NOT NULL,
    jpeg          BYTEA NOT NULL
);
CREATE INDEX photos_by_report ON photos(report_id);
ALTER TABLE alert_versions ADD COLUMN photos TEXT;
INSERT INTO ldis_schema (version) VALUES (12);
