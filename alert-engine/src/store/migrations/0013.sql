-- Schema version 12 to 13 (issue 14, the first email's latency): a fan-out's deliveries
-- after its first few, kept as one row in the transaction that decided them and written out
-- into `deliveries` just after it commits (routing.cpp, DeferDeliveries).
CREATE TABLE deferred_deliveries (
    id            INTEGER PRIMARY KEY,
    alert_id      INTEGER REFERENCES alerts(id),
    version       INTEGER NOT NULL,
    created_at_ms INTEGER NOT NULL,
    planned       TEXT NOT NULL
);
