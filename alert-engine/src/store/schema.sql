-- The SQLite store's schema, whole: what a new database is made of (schema version 10).
--
-- A database written by an earlier LDIS is brought here by the files in migrations/,
-- one per version, each in its own transaction with the PRAGMA user_version bump. The
-- test UpgradeTest.* checks that every earlier version, upgraded, has exactly this
-- schema (columns in order, types, defaults, keys and indexes). To change the schema:
-- add migrations/NNNN.sql taking version N-1 to N, write the result here (a column that
-- ALTER TABLE adds goes last in its table, as SQLite puts it there), and raise
-- ReportStore::kSchemaVersion.
--
-- Times are milliseconds since the Unix epoch (_ms); JSON is stored as text.

-- Every report as received, whole. `seq` is the order of commit; `reference` is the
-- receipt's (KM-R000042). The document keeps the free text and the contact until
-- retention removes them (purged_at_ms); the indexed fields stay. `drill` is '' for a real
-- report, else 'exercise' or 'test' (report.hpp, Drill).
CREATE TABLE reports (
    seq            INTEGER PRIMARY KEY,
    id             TEXT NOT NULL UNIQUE,
    reference      TEXT NOT NULL UNIQUE,
    received_at_ms INTEGER NOT NULL,
    channel        TEXT NOT NULL,
    submitted_at   TEXT NOT NULL,
    observed_at    TEXT,
    source_type    TEXT NOT NULL,
    organisation   TEXT NOT NULL,
    authority      TEXT NOT NULL,
    district       TEXT NOT NULL,
    ward           TEXT,
    ward_current   TEXT,
    establishment  TEXT,
    evidence       TEXT NOT NULL,
    document       TEXT NOT NULL,
    purged_at_ms   INTEGER,
    drill          TEXT NOT NULL DEFAULT ''
);
CREATE INDEX reports_by_area ON reports(district, received_at_ms);
CREATE INDEX reports_to_purge ON reports(received_at_ms) WHERE purged_at_ms IS NULL;
-- The dashboard's trends and the quarterly report count reports by when they came (issue 17).
CREATE INDEX reports_by_time ON reports(received_at_ms);

-- Photos of a batch (issue 17 §3): JPEGs written anew from an upload's pixels alone (no
-- EXIF, GPS or comments), with the database's durability and backup. report_id is set when
-- a report names the upload; one never named is purged after a day.
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

-- Signals: reports of one family of substance in one district, seen within the
-- correlation window of each other (pipeline.hpp, Correlate). `level` is what the rules
-- give on all its reports, `facts` their sum (grading.hpp); a coordinator's override
-- (override_*) holds until lifted, and the alert shows it. `drill` is its reports' (a
-- drill's reports never join a real signal) and its alerts' (CAP <status>).
CREATE TABLE signals (
    id              INTEGER PRIMARY KEY,
    family          TEXT NOT NULL,
    authority       TEXT NOT NULL,
    district        TEXT NOT NULL,
    opened_at_ms    INTEGER NOT NULL,
    first_seen_ms   INTEGER NOT NULL,
    last_seen_ms    INTEGER NOT NULL,
    level           TEXT NOT NULL DEFAULT 'none',
    confidence      TEXT NOT NULL DEFAULT 'anecdotal',
    facts           TEXT NOT NULL DEFAULT '{}',
    override_level  TEXT,
    override_reason TEXT,
    override_by     TEXT,
    override_at_ms  INTEGER,
    drill           TEXT NOT NULL DEFAULT ''
);
CREATE INDEX signals_by_key ON signals(family, district, last_seen_ms);
-- Which reports a signal has (each report is in one signal) ...
CREATE TABLE signal_reports (
    signal_id  INTEGER NOT NULL REFERENCES signals(id),
    report_seq INTEGER NOT NULL UNIQUE REFERENCES reports(seq),
    PRIMARY KEY (signal_id, report_seq)
);
-- ... and from which organisations: independent sources are distinct organisations.
CREATE TABLE signal_sources (
    signal_id    INTEGER NOT NULL REFERENCES signals(id),
    organisation TEXT NOT NULL,
    PRIMARY KEY (signal_id, organisation)
) WITHOUT ROWID;

-- Alerts: one live alert per signal at most (draft, issued, updated), then cancelled or
-- expired. `version` is its latest; `routed_version` the latest partners were sent (the
-- update throttle holds the others); `wording` the sections its coordinators wrote, kept
-- over every later version.
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
    valid_until_ms INTEGER,
    routed_version INTEGER NOT NULL DEFAULT 0,
    routed_at_ms   INTEGER NOT NULL DEFAULT 0,
    wording        TEXT NOT NULL DEFAULT '{}'
);
CREATE INDEX alerts_by_signal ON alerts(signal_id, status);
-- Every version of an alert as partners read it: the grade and the rules that fired, the
-- facts behind them, and the rendered text (body, JSON) with how many things the scrubber
-- removed from it.
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
    photos        TEXT,  -- the photos a coordinator chose for this version: a JSON array of ids
    PRIMARY KEY (alert_id, version)
);

-- The audit log: a hash chain. Each entry's hash covers every field and the hash before
-- (AuditHash in sqlite.hpp); `ldisctl audit verify` walks it.
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

-- The outbox: one row per message to send (delivery.hpp's kinds), queued in the
-- transaction that decided it (PlanDeliveries) and claimed by the dispatcher.
-- queued -> sending -> delivered | retrying | failed. `slot` is the partner's contact
-- first used, kept by a fallback (fallback_of names the row that failed); ack_due_ms is
-- when the escalation contact is told if no one acknowledged. A notice about no alert (a
-- feed fallen silent, or back) has no alert_id, and version 0.
CREATE TABLE deliveries (
    id                          INTEGER PRIMARY KEY,
    alert_id                    INTEGER REFERENCES alerts(id),
    version                     INTEGER NOT NULL,
    kind                        TEXT NOT NULL,
    partner                     TEXT NOT NULL,
    contact                     TEXT NOT NULL,
    slot                        TEXT NOT NULL,
    channel                     TEXT NOT NULL,
    address                     TEXT NOT NULL,
    status                      TEXT NOT NULL,
    attempts                    INTEGER NOT NULL DEFAULT 0,
    next_attempt_ms             INTEGER NOT NULL,
    created_at_ms               INTEGER NOT NULL,
    updated_at_ms               INTEGER NOT NULL,
    delivered_at_ms             INTEGER,
    last_error                  TEXT,
    ack_due_ms                  INTEGER,
    acknowledged_at_ms          INTEGER,
    escalated                   INTEGER NOT NULL DEFAULT 0,
    fallback_of                 INTEGER,
    detail                      TEXT NOT NULL DEFAULT '{}',
    unsubscribe_requested_at_ms INTEGER,
    -- What the partner said it did (issue 17 §4): received, shared, actions, not_relevant,
    -- seen_too (engine::Answer); a scrubbed note with "actions"; when it last said so.
    answer                      TEXT,
    answer_note                 TEXT,
    answered_at_ms              INTEGER
);
CREATE INDEX deliveries_due ON deliveries(status, next_attempt_ms);
CREATE INDEX deliveries_by_alert ON deliveries(alert_id, partner);
CREATE INDEX deliveries_ack_due ON deliveries(ack_due_ms) WHERE escalated = 0;
-- A peer's forwarded versions' deliveries, for the acknowledgement counts sent back to it.
CREATE INDEX deliveries_federated ON deliveries(created_at_ms) WHERE kind = 'federated';

-- A fan-out's deliveries after its first few (deferred_deliveries.planned, a JSON array of
-- what PlanDeliveries decided), written in the transaction that decided them as this one
-- row, and turned into `deliveries` rows just after it commits (at start, if ldisd stopped
-- in between): the first emails of a red alert wait for eight rows, not 101.
CREATE TABLE deferred_deliveries (
    id            INTEGER PRIMARY KEY,
    alert_id      INTEGER REFERENCES alerts(id),
    version       INTEGER NOT NULL,
    created_at_ms INTEGER NOT NULL,
    planned       TEXT NOT NULL
);

-- The store's own values: the key that signs acknowledgement links, retention's marks.
CREATE TABLE settings (
    key   TEXT PRIMARY KEY,
    value TEXT NOT NULL
) WITHOUT ROWID;

-- Access keys for the API and the pages (`ldisctl token`): only their SHA-256 is kept.
CREATE TABLE tokens (
    id            INTEGER PRIMARY KEY,
    name          TEXT NOT NULL,
    role          TEXT NOT NULL,
    hash          TEXT NOT NULL UNIQUE,
    created_at_ms INTEGER NOT NULL,
    revoked_at_ms INTEGER
);

-- Signed-in web sessions: they survive a restart and end with their access key. Only the
-- session id's hash is kept.
CREATE TABLE sessions (
    id_hash       TEXT PRIMARY KEY,
    token_id      INTEGER NOT NULL REFERENCES tokens(id),
    csrf          TEXT NOT NULL,
    created_at_ms INTEGER NOT NULL,
    expires_at_ms INTEGER NOT NULL
) WITHOUT ROWID;
CREATE INDEX sessions_by_token ON sessions(token_id, created_at_ms);

-- Alert versions other LDIS instances offered this one (issue 16 §1), verified: one row per
-- version (peer, identifier), whatever the bridge delivered twice, with what this
-- instance's policy or its coordinators made of it (decision: forwarded, review, recorded,
-- adopted, declined). `detail` is what a forwarded message renders (federated.hpp); `cap`
-- the document as its peer signed it.
CREATE TABLE federated (
    id             INTEGER PRIMARY KEY,
    peer           TEXT NOT NULL,
    identifier     TEXT NOT NULL,
    reference      TEXT NOT NULL,
    version        INTEGER NOT NULL,
    msg_type       TEXT NOT NULL,
    cap_status     TEXT NOT NULL,
    level          TEXT NOT NULL,
    authority      TEXT NOT NULL,
    district       TEXT NOT NULL,
    headline       TEXT NOT NULL,
    sequence       INTEGER NOT NULL,
    received_at_ms INTEGER NOT NULL,
    decision       TEXT NOT NULL,
    decided_by     TEXT,
    decided_at_ms  INTEGER,
    detail         TEXT NOT NULL,
    cap            TEXT NOT NULL,
    UNIQUE (peer, identifier)
);
CREATE INDEX federated_by_reference ON federated(peer, reference);
