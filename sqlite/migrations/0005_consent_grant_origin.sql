-- Where a consent was granted from (PSD2 record of the authorization): the
-- IP address and user agent of the browser whose callback activated it,
-- set at each (re-)authorization. Kept with the consent and in its audit
-- record; not shown to fintechs (docs/OPERATIONS.md, Security model).

ALTER TABLE consents ADD COLUMN granted_ip TEXT NOT NULL DEFAULT '';
ALTER TABLE consents ADD COLUMN granted_user_agent TEXT NOT NULL DEFAULT '';
