-- At most one unfinished single payment per debtor IBAN, whatever the client:
-- bunq shows all of a PSP's pending drafts for a user on its authorization
-- page and decides them together, so a second one would be approved inside
-- another flow. The index makes replicas agree (a compare-and-set in the
-- store, not a check in memory).

CREATE UNIQUE INDEX payments_single_pending_debtor ON payments (debtor_iban)
    WHERE kind = 'single' AND status = 'pending';
