-- Schema version 10 to 11 (issue 17): what a partner said it did with an alert (issue 17 §4), on the
-- acknowledgement page: received, shared, actions, not_relevant or seen_too
-- (engine::Answer), a scrubbed note with "actions", and when it last said so.
ALTER TABLE deliveries ADD COLUMN answer TEXT;
ALTER TABLE deliveries ADD COLUMN answer_note TEXT;
ALTER TABLE deliveries ADD COLUMN answered_at_ms INTEGER;
-- The dashboard's trends and the quarterly report count reports by when they came.
CREATE INDEX reports_by_time ON reports(received_at_ms);
