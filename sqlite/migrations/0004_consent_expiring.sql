-- When the consent.expiring webhook was sent for the consent's current
-- authorization period. A value before authorized_at belongs to an earlier
-- period: re-authorization makes the consent due for a new notice.

ALTER TABLE consents ADD COLUMN expiring_notified_at TEXT;
