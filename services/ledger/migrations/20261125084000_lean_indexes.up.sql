-- Fewer index insertions on the per-call write path:
-- transactions.seq needs no unique index of its own (it is a bigserial; transactions_org_newest
-- serves the listing), and no read looks postings up by account (balances are stored and checked
-- by a full scan in the invariant check).
ALTER TABLE transactions DROP CONSTRAINT transactions_seq_key;
DROP INDEX postings_account;
