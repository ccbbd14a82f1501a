-- Each client's webhook events are numbered 1, 2, 3, … in the order they
-- were recorded (mirrors sqlite 0008_webhook_sequence).

ALTER TABLE webhook_events ADD COLUMN sequence bigint NOT NULL DEFAULT 0;

CREATE INDEX webhook_events_client_sequence ON webhook_events (client_id, sequence);
