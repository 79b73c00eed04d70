-- Schema version 5 to 6: Web sessions survive a restart and end with their access key; a
-- recipient's request to stop messages is recorded once per delivery.
CREATE TABLE sessions (
    id_hash       TEXT PRIMARY KEY,
    token_id      INTEGER NOT NULL REFERENCES tokens(id),
    csrf          TEXT NOT NULL,
    created_at_ms INTEGER NOT NULL,
    expires_at_ms INTEGER NOT NULL
) WITHOUT ROWID;
CREATE INDEX sessions_by_token ON sessions(token_id, created_at_ms);
ALTER TABLE deliveries ADD COLUMN unsubscribe_requested_at_ms INTEGER;
