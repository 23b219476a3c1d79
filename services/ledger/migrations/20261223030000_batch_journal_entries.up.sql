-- A lean durable write: the platform leg of a batch's debits is one posting. The debits of one
-- batch that post to one platform account form one journal entry: each debit keeps its
-- transaction row and its organization's posting, which names the entry in entry_id, and the
-- entry's platform posting (transaction_id = the entry's id, which no transactions row has)
-- carries the sum of their counter-amounts. Every journal entry still sums to zero; a posting
-- without entry_id is its own transaction's entry, as before. That saves a heap row and a primary
-- key insertion (and their WAL) per debit on the platform side.
--
-- A debit's counter-leg, as ListTransactions shows it, is its entry's platform account with the
-- negated amount of its organization's posting.
ALTER TABLE postings ADD COLUMN entry_id uuid;

-- Every statement inserts whole journal entries; this checks each sums to zero.
CREATE OR REPLACE FUNCTION check_postings_balanced() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    IF EXISTS (SELECT 1 FROM new_postings GROUP BY coalesce(entry_id, transaction_id) HAVING sum(amount) <> 0) THEN
        RAISE EXCEPTION 'unbalanced ledger transaction' USING ERRCODE = 'check_violation';
    END IF;
    RETURN NULL;
END $$;
