-- The payment poller's schedule: each pending payment carries when it is
-- next looked at, so rounds of a bounded size walk the whole pending set
-- (oldest due first) instead of re-reading the newest payments every round.
-- '' sorts before every time: new and existing payments are due at once.

ALTER TABLE payments ADD COLUMN next_check_at TEXT NOT NULL DEFAULT '';

CREATE INDEX payments_due ON payments (next_check_at, id) WHERE status = 'pending';
-- Payments whose create ended without a bank id come first in every round.
CREATE INDEX payments_due_unbanked ON payments (next_check_at, id)
    WHERE status = 'pending' AND bunq_id IS NULL;
-- Pending payments by idempotency key, and in-flight keys, so a round also
-- finds payments whose key is still in flight although the bank id is known.
CREATE INDEX payments_pending_key ON payments (client_id, idempotency_key) WHERE status = 'pending';
CREATE INDEX idempotency_in_flight ON idempotency_records (created_at) WHERE state = 'in_flight';
