-- Schema version 9 to 10: exercises and tests (issue 16 §2), and notices about no alert
-- (issue 16 §3). A report's drill ('' when real, 'exercise', 'test'), and its signal's: a
-- drill's reports make signals of their own, and the signal's drill is its alerts' (CAP
-- <status>).
ALTER TABLE reports ADD COLUMN drill TEXT NOT NULL DEFAULT '';
ALTER TABLE signals ADD COLUMN drill TEXT NOT NULL DEFAULT '';
-- A notice about no alert (a feed fallen silent, or back) is a delivery without an alert:
-- deliveries.alert_id may be NULL. SQLite cannot drop a NOT NULL, so the table is made again
-- (https://sqlite.org/lang_altertable.html#otheralter); nothing refers to it.
CREATE TABLE deliveries_10 (
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
    unsubscribe_requested_at_ms INTEGER
);
INSERT INTO deliveries_10 SELECT * FROM deliveries;
DROP TABLE deliveries;
ALTER TABLE deliveries_10 RENAME TO deliveries;
CREATE INDEX deliveries_due ON deliveries(status, next_attempt_ms);
CREATE INDEX deliveries_by_alert ON deliveries(alert_id, partner);
CREATE INDEX deliveries_ack_due ON deliveries(ack_due_ms) WHERE escalated = 0;
CREATE INDEX deliveries_federated ON deliveries(created_at_ms) WHERE kind = 'federated';
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
