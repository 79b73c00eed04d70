-- Schema version 2 to 3: The outbox (deliveries) and the store's settings.
CREATE TABLE deliveries (
    id                 INTEGER PRIMARY KEY,
    alert_id           INTEGER NOT NULL REFERENCES alerts(id),
    version            INTEGER NOT NULL,
    kind               TEXT NOT NULL,
    partner            TEXT NOT NULL,
    contact            TEXT NOT NULL,
    slot               TEXT NOT NULL,
    channel            TEXT NOT NULL,
    address            TEXT NOT NULL,
    status             TEXT NOT NULL,
    attempts           INTEGER NOT NULL DEFAULT 0,
    next_attempt_ms    INTEGER NOT NULL,
    created_at_ms      INTEGER NOT NULL,
    updated_at_ms      INTEGER NOT NULL,
    delivered_at_ms    INTEGER,
    last_error         TEXT,
    ack_due_ms         INTEGER,
    acknowledged_at_ms INTEGER,
    escalated          INTEGER NOT NULL DEFAULT 0,
    fallback_of        INTEGER,
    detail             TEXT NOT NULL DEFAULT '{}'
);
CREATE INDEX deliveries_due ON deliveries(status, next_attempt_ms);
CREATE INDEX deliveries_by_alert ON deliveries(alert_id, partner);
CREATE INDEX deliveries_ack_due ON deliveries(ack_due_ms) WHERE escalated = 0;
CREATE TABLE settings (
    key   TEXT PRIMARY KEY,
    value TEXT NOT NULL
) WITHOUT ROWID;
