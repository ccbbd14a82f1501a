-- The TPP's registration with bunq, one row per environment (API base URL).
-- context_sealed and client_secret_sealed are seal.Keyring values (base64),
-- sealed with associated data "registration:<api_base_url>:context" and
-- "registration:<api_base_url>:oauth-secret".

CREATE TABLE registration (
    api_base_url         TEXT PRIMARY KEY CHECK (api_base_url <> ''),
    context_sealed       TEXT NOT NULL,
    user_id              INTEGER NOT NULL DEFAULT 0,
    session_expiry       TEXT,
    oauth_client_id      INTEGER NOT NULL DEFAULT 0,
    client_id            TEXT NOT NULL DEFAULT '',
    client_secret_sealed TEXT NOT NULL DEFAULT '',
    callback_url         TEXT NOT NULL DEFAULT '',
    notification_url     TEXT NOT NULL DEFAULT '',
    cert_subject         TEXT NOT NULL DEFAULT '',
    cert_fingerprint     TEXT NOT NULL DEFAULT '',
    cert_not_after       TEXT,
    created_at           TEXT NOT NULL,
    updated_at           TEXT NOT NULL
) STRICT;
