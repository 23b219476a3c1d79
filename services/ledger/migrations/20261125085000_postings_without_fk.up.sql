-- The foreign keys of postings took a KEY SHARE row lock on every account a batch posted to,
-- including the platform accounts that concurrent batches update: PostgreSQL then builds
-- multixacts on those rows, and inserting postings cost milliseconds. Postings are written only
-- by the ledger's batch, in the same statement sequence as their transaction and for accounts it
-- has just locked or created, so the references hold by construction; the balance trigger stays.
ALTER TABLE postings DROP CONSTRAINT postings_transaction_id_fkey;
ALTER TABLE postings DROP CONSTRAINT postings_account_id_fkey;
