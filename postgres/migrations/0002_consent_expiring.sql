-- When the consent.expiring webhook was sent for the consent's current
-- authorization period (mirrors sqlite 0004_consent_expiring).

ALTER TABLE consents ADD COLUMN expiring_notified_at timestamptz;
