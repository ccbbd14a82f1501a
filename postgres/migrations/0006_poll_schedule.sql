-- The payment poller's schedule (mirrors sqlite 0006_poll_schedule): each
-- pending payment carries when it is next looked at. SQLite's '' (before
-- every time: due at once) is '-infinity' here.

ALTER TABLE payments ADD COLUMN next_check_at timestamptz NOT NULL DEFAULT '-infinity';

CREATE INDEX payments_due ON payments (next_check_at, id) WHERE status = 'pending';
CREATE INDEX payments_due_unbanked ON payments (next_check_at, id)
    WHERE status = 'pending' AND bunq_id IS NULL;
CREATE INDEX payments_pending_key ON payments (client_id, idempotency_key) WHERE status = 'pending';
CREATE INDEX idempotency_in_flight ON idempotency_records (created_at) WHERE state = 'in_flight';
