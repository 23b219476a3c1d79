-- ListTransactions' kind filter. Credits, adjustments (refunds included) and expiries are a small
-- part of an organization's transactions, which are mostly debits and captures: a partial index of
-- only those finds them without walking every charge. Debits and captures are outside its
-- predicate, so the per-call write path inserts nothing into it; debits and captures filtered by
-- kind use transactions_org_newest, where they are dense. The build scans transactions once, holding
-- writes to it meanwhile (migrations run in a transaction, so not CONCURRENTLY).
CREATE INDEX transactions_org_rare_kinds ON transactions (org_id, kind, seq DESC) WHERE kind NOT IN ('debit', 'capture');
