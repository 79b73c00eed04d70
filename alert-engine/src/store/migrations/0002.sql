-- Schema version 1 to 2: Signals, their reports and sources; alerts and their versions;
-- the audit log.
CREATE TABLE signals (
    id             INTEGER PRIMARY KEY,
    family         TEXT NOT NULL,
    authority      TEXT NOT NULL,
    district       TEXT NOT NULL,
    opened_at_ms   INTEGER NOT NULL,
    first_seen_ms  INTEGER NOT NULL,
    last_seen_ms   INTEGER NOT NULL,
    level          TEXT NOT NULL DEFAULT 'none',
    confidence     TEXT NOT NULL DEFAULT 'anecdotal',
    facts          TEXT NOT NULL DEFAULT '{}'
);
CREATE INDEX signals_by_key ON signals(family, district, last_seen_ms);
CREATE TABLE signal_reports (
    signal_id  INTEGER NOT NULL REFERENCES signals(id),
    report_seq INTEGER NOT NULL UNIQUE REFERENCES reports(seq),
    PRIMARY KEY (signal_id, report_seq)
);
CREATE TABLE signal_sources (
    signal_id    INTEGER NOT NULL REFERENCES signals(id),
    organisation TEXT NOT NULL,
    PRIMARY KEY (signal_id, organisation)
) WITHOUT ROWID;
CREATE TABLE alerts (
    id             INTEGER PRIMARY KEY,
    reference      TEXT NOT NULL UNIQUE,
    signal_id      INTEGER NOT NULL REFERENCES signals(id),
    status         TEXT NOT NULL,
    level          TEXT NOT NULL,
    confidence     TEXT NOT NULL,
    audience       TEXT NOT NULL,
    version        INTEGER NOT NULL,
    provisional    INTEGER NOT NULL,
    created_at_ms  INTEGER NOT NULL,
    updated_at_ms  INTEGER NOT NULL,
    issued_at_ms   INTEGER,
    valid_until_ms INTEGER
);
CREATE INDEX alerts_by_signal ON alerts(signal_id, status);
CREATE TABLE alert_versions (
    alert_id      INTEGER NOT NULL REFERENCES alerts(id),
    version       INTEGER NOT NULL,
    status        TEXT NOT NULL,
    level         TEXT NOT NULL,
    confidence    TEXT NOT NULL,
    rules         TEXT NOT NULL,
    facts         TEXT NOT NULL,
    body          TEXT NOT NULL DEFAULT '{}',
    scrubbed      INTEGER NOT NULL DEFAULT 0,
    created_at_ms INTEGER NOT NULL,
    PRIMARY KEY (alert_id, version)
);
CREATE TABLE audit (
    seq       INTEGER PRIMARY KEY,
    at_ms     INTEGER NOT NULL,
    actor     TEXT NOT NULL,
    action    TEXT NOT NULL,
    subject   TEXT NOT NULL,
    detail    TEXT NOT NULL,
    prev_hash TEXT NOT NULL,
    hash      TEXT NOT NULL
);
