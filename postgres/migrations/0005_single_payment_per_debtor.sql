-- At most one unfinished single payment per debtor IBAN, whatever the client
-- (mirrors sqlite 0007_single_payment_per_debtor): replicas agree through
-- the index, not a check in memory.

CREATE UNIQUE INDEX payments_single_pending_debtor ON payments (debtor_iban)
    WHERE kind = 'single' AND status = 'pending';
