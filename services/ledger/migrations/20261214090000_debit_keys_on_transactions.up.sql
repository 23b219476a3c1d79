-- A debit's idempotency key is kept on its transaction row instead of a row of its own in
-- idempotency_keys: transactions already held the key; request_hash joins it, and a partial
-- unique index enforces one debit per (org, key) in the database. That saves a heap row (and its
-- WAL) per debit, the most frequent write; every other operation's keys stay in idempotency_keys.
-- A key is unique per organization across both tables because every write locks its
-- organization's account row before it reads the keys (store.UpdateAccounts): a credit and a
-- debit with one key are serialised and the second sees the first.
-- Rows written before this migration have no request_hash (their keys are in idempotency_keys),
-- so the index starts empty; building it scans transactions once, holding writes meanwhile.
ALTER TABLE transactions ADD COLUMN request_hash bytea;
CREATE UNIQUE INDEX transactions_debit_key ON transactions (org_id, idempotency_key) WHERE request_hash IS NOT NULL;
