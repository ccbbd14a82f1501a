-- Initial schema: fintech clients, consents, payments, idempotency records,
-- the append-only audit log and the webhook outbox.
-- Times are TEXT in UTC, fixed width ("2006-01-02T15:04:05.000000Z"), so text
-- order is time order. Tables are STRICT so a wrong type is an error.

CREATE TABLE clients (
    id                    TEXT PRIMARY KEY,
    name                  TEXT NOT NULL CHECK (name <> ''),
    return_urls           TEXT NOT NULL,               -- JSON array of exact-match URLs
    webhook_url           TEXT NOT NULL DEFAULT '',
    webhook_secret_sealed TEXT NOT NULL,               -- seal AD "client:<id>:webhook"
    status                TEXT NOT NULL CHECK (status IN ('active', 'revoked')),
    api_key_id            TEXT NOT NULL UNIQUE,
    api_key_hash          BLOB NOT NULL,               -- SHA-256 of the key's secret part
    created_at            TEXT NOT NULL,
    updated_at            TEXT NOT NULL,
    revoked_at            TEXT
) STRICT;

CREATE INDEX clients_created ON clients (created_at, id);

CREATE TABLE consents (
    id                  TEXT PRIMARY KEY,
    client_id           TEXT NOT NULL REFERENCES clients (id),
    user_ref            TEXT NOT NULL,
    scopes              TEXT NOT NULL,                 -- space-separated, sorted
    return_url          TEXT NOT NULL,
    status              TEXT NOT NULL CHECK (status IN
                          ('pending', 'active', 'rejected', 'expired', 'revoked', 'reauth_required')),
    created_at          TEXT NOT NULL,
    updated_at          TEXT NOT NULL,
    expires_at          TEXT NOT NULL,
    authorized_at       TEXT,
    reauth_due_at       TEXT,
    bunq_user_id        INTEGER,
    bunq_display_name   TEXT NOT NULL DEFAULT '',
    access_token_sealed TEXT,                          -- seal AD "consent:<id>:access_token"
    error_code          TEXT NOT NULL DEFAULT '',
    revoked_at          TEXT
) STRICT;

CREATE INDEX consents_client_created ON consents (client_id, created_at, id);
CREATE INDEX consents_client_user_created ON consents (client_id, user_ref, created_at, id);
CREATE INDEX consents_bunq_user ON consents (bunq_user_id) WHERE bunq_user_id IS NOT NULL;
CREATE INDEX consents_pending_expires ON consents (expires_at) WHERE status = 'pending';
CREATE INDEX consents_active_reauth ON consents (reauth_due_at) WHERE status = 'active';

CREATE TABLE payments (
    id                TEXT PRIMARY KEY,
    consent_id        TEXT NOT NULL REFERENCES consents (id),
    client_id         TEXT NOT NULL REFERENCES clients (id),
    kind              TEXT NOT NULL CHECK (kind IN ('draft', 'single')),
    account_id        INTEGER,                         -- bunq monetary account id (draft payments)
    amount_minor      INTEGER NOT NULL CHECK (amount_minor > 0),
    currency          TEXT NOT NULL CHECK (length(currency) = 3),
    debtor_iban       TEXT NOT NULL DEFAULT '',
    debtor_name       TEXT NOT NULL DEFAULT '',
    counterparty_iban TEXT NOT NULL,
    counterparty_name TEXT NOT NULL,
    description       TEXT NOT NULL DEFAULT '',
    reference         TEXT NOT NULL DEFAULT '',
    return_url        TEXT NOT NULL DEFAULT '',
    bunq_id           INTEGER,                         -- draft-payment or PSP draft-payment id
    status            TEXT NOT NULL CHECK (status IN
                        ('pending', 'executed', 'rejected', 'cancelled', 'failed')),
    error_code        TEXT NOT NULL DEFAULT '',
    idempotency_key   TEXT NOT NULL DEFAULT '',
    created_at        TEXT NOT NULL,
    updated_at        TEXT NOT NULL
) STRICT;

CREATE INDEX payments_client_created ON payments (client_id, created_at, id);
CREATE INDEX payments_consent_created ON payments (consent_id, created_at, id);
CREATE INDEX payments_status ON payments (status, created_at, id);
CREATE UNIQUE INDEX payments_bunq_id ON payments (kind, bunq_id) WHERE bunq_id IS NOT NULL;

-- One row per status a payment has had, in order; append-only like the audit log.
CREATE TABLE payment_status_history (
    payment_id TEXT NOT NULL REFERENCES payments (id),
    seq        INTEGER NOT NULL,
    status     TEXT NOT NULL,
    at         TEXT NOT NULL,
    PRIMARY KEY (payment_id, seq)
) STRICT;

CREATE TRIGGER payment_status_history_no_update BEFORE UPDATE ON payment_status_history
BEGIN SELECT RAISE(ABORT, 'payment_status_history is append-only'); END;
CREATE TRIGGER payment_status_history_no_delete BEFORE DELETE ON payment_status_history
BEGIN SELECT RAISE(ABORT, 'payment_status_history is append-only'); END;

CREATE TABLE idempotency_records (
    client_id       TEXT NOT NULL REFERENCES clients (id),
    key             TEXT NOT NULL,
    fingerprint     TEXT NOT NULL,
    state           TEXT NOT NULL CHECK (state IN ('in_flight', 'done')),
    response_status INTEGER NOT NULL DEFAULT 0,
    response_body   BLOB,
    created_at      TEXT NOT NULL,
    expires_at      TEXT NOT NULL,
    PRIMARY KEY (client_id, key)
) STRICT;

CREATE INDEX idempotency_expires ON idempotency_records (expires_at);

-- Append-only: no code updates or deletes it, and the triggers make sure.
-- No foreign keys, so a record outlives anything it names.
CREATE TABLE audit_log (
    seq         INTEGER PRIMARY KEY AUTOINCREMENT,
    at          TEXT NOT NULL,
    actor       TEXT NOT NULL CHECK (actor <> ''),
    action      TEXT NOT NULL CHECK (action <> ''),
    request_id  TEXT NOT NULL DEFAULT '',
    client_id   TEXT NOT NULL DEFAULT '',
    consent_id  TEXT NOT NULL DEFAULT '',
    payment_id  TEXT NOT NULL DEFAULT '',
    from_status TEXT NOT NULL DEFAULT '',
    to_status   TEXT NOT NULL DEFAULT '',
    detail      TEXT NOT NULL DEFAULT ''
) STRICT;

CREATE INDEX audit_consent ON audit_log (consent_id, seq) WHERE consent_id <> '';
CREATE INDEX audit_payment ON audit_log (payment_id, seq) WHERE payment_id <> '';
CREATE INDEX audit_client ON audit_log (client_id, seq) WHERE client_id <> '';

CREATE TRIGGER audit_log_no_update BEFORE UPDATE ON audit_log
BEGIN SELECT RAISE(ABORT, 'audit_log is append-only'); END;
CREATE TRIGGER audit_log_no_delete BEFORE DELETE ON audit_log
BEGIN SELECT RAISE(ABORT, 'audit_log is append-only'); END;

CREATE TABLE webhook_events (
    id         TEXT PRIMARY KEY,
    client_id  TEXT NOT NULL REFERENCES clients (id),
    type       TEXT NOT NULL,
    payload    TEXT NOT NULL,                          -- the exact JSON body that is signed and sent
    created_at TEXT NOT NULL
) STRICT;

CREATE INDEX webhook_events_client_created ON webhook_events (client_id, created_at, id);

-- One delivery per event; the URL is read from the client at send time.
CREATE TABLE webhook_deliveries (
    event_id        TEXT PRIMARY KEY REFERENCES webhook_events (id),
    attempts        INTEGER NOT NULL DEFAULT 0,
    next_attempt_at TEXT NOT NULL,
    last_error      TEXT NOT NULL DEFAULT '',
    delivered_at    TEXT,
    abandoned_at    TEXT,                              -- gave up after the last retry
    lease_token     TEXT NOT NULL DEFAULT '',
    lease_until     TEXT
) STRICT;

CREATE INDEX webhook_deliveries_due ON webhook_deliveries (next_attempt_at)
    WHERE delivered_at IS NULL AND abandoned_at IS NULL;
