-- Consents revoked where neither Redis nor the bank is at hand ('tpp clients
-- revoke' revokes a client's consents in SQLite only): their bunq sessions
-- and Redis contexts are closed by the service's janitor, which deletes the
-- row when done. attempts and last_error show closes that keep failing.

CREATE TABLE consent_closes (
    consent_id TEXT PRIMARY KEY REFERENCES consents (id),
    queued_at  TEXT NOT NULL,
    attempts   INTEGER NOT NULL DEFAULT 0,
    last_error TEXT NOT NULL DEFAULT ''
) STRICT;

CREATE INDEX consent_closes_queued ON consent_closes (queued_at, consent_id);
