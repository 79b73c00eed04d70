-- Schema version 11 to 12 (issue 17 §3): photos of a batch. Each is a JPEG written anew by
-- ldis_photos from an upload's pixels alone (no EXIF, GPS or comments), kept here so that it
-- has the database's durability and backup. An upload names no report until a report names
-- it (report_id); one never named is purged after a day. alert_versions.photos lists the
-- photos a coordinator chose to go out with that version (a JSON array of ids), never set by
-- an automatic version.
CREATE TABLE photos (
    id            TEXT PRIMARY KEY,
    report_id     TEXT,
    uploaded_by   TEXT NOT NULL,
    sha256        TEXT NOT NULL,
    sha1          TEXT NOT NULL,
    width         INTEGER NOT NULL,
    height        INTEGER NOT NULL,
    bytes         INTEGER NOT NULL,
    created_at_ms INTEGER NOT NULL,
    jpeg          BLOB NOT NULL
);
CREATE INDEX photos_by_report ON photos(report_id);
ALTER TABLE alert_versions ADD COLUMN photos TEXT;
