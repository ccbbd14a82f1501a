-- Where a consent was granted from: the IP address and user agent of the
-- browser whose callback activated it (mirrors sqlite 0005_consent_grant_origin).

ALTER TABLE consents ADD COLUMN granted_ip text NOT NULL DEFAULT '';
ALTER TABLE consents ADD COLUMN granted_user_agent text NOT NULL DEFAULT '';
