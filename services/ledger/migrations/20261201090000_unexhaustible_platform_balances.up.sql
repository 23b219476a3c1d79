-- Platform accounts (revenue, expired, payment_clearing, grants, adjustments) are the counter-entry
-- of every organization's changes, so their balances grow with the number of requests, without
-- bound: as bigint, debits of large amounts could push a shard past the int64 limit, after which
-- every batch posting to it failed. Balances are now exact integers of up to 1000 digits (no
-- sequence of accepted requests can reach that: each is at most TALLY_MAX_REQUEST_AMOUNT, ≤ 2^63
-- nanos), and the store adds a batch's platform postings up in SQL, as numeric.
-- An organization's balance stays within int64 (decided per request, before commit, by the
-- ledger's batch rules; this constraint is the database's guarantee of it), and the reads of
-- organization rows cast it back to bigint.
ALTER TABLE accounts ALTER COLUMN balance TYPE numeric(1000, 0);
ALTER TABLE accounts ADD CONSTRAINT accounts_org_balance_int64
    CHECK (kind <> 'org' OR balance BETWEEN -9223372036854775808 AND 9223372036854775807);
