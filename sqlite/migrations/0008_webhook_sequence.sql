-- Each client's webhook events are numbered 1, 2, 3, … in the order they
-- were recorded; the number is in the payload as "sequence". Deliveries are
-- retried independently, so receivers order by it. Events recorded before
-- this migration keep 0 (their payloads were already signed without it).

ALTER TABLE webhook_events ADD COLUMN sequence INTEGER NOT NULL DEFAULT 0;

CREATE INDEX webhook_events_client_sequence ON webhook_events (client_id, sequence);
