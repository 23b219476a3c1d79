-- Event sequence numbers without a lock held to commit (issue 17, lean durable write).
--
-- Until now every batch ended with UPDATE event_sequence ... RETURNING last, whose row lock was
-- held until COMMIT: sequence order was commit order, and every commit worker of every replica
-- waited for the one before it to commit. From here on an event's seq is derived from the top
-- transaction id of the transaction that writes it:
--
--     seq = xid * 2^20 + n,   n = 1 … 2^20 - 1, distinct within the transaction
--
-- (event_seq_base below hands out n, across every statement of the transaction). Two writers
-- take no common lock, so their batches commit concurrently. Seq order is no longer commit
-- order: a transaction that took its xid earlier may commit later. Readers (store.Events,
-- store.UpdateUsage) therefore return only events below the horizon
--
--     pg_snapshot_xmin(pg_current_snapshot()) * 2^20
--
-- of their own statement's snapshot: every transaction with a lower xid has ended (its events
-- are visible or never will be), and every later one gets a higher xid. A cursor never passes
-- an event that becomes visible afterwards, the stream stays gap-free and resumable in seq
-- order, and existing cursors stay valid: the dense seqs written so far are below every xid-
-- derived seq (asserted below).
--
-- The cost: an event is delivered only once every transaction of the cluster that took its
-- xid before the event's transaction has ended, whatever it writes and in whichever database
-- or schema (xids are cluster-wide). Short write transactions delay delivery by their own
-- length. A long one, such as a shard move (MoveIn copies an organization's history in one
-- transaction), a migration, or a session idle in a transaction, holds back every event
-- committed after it started until it ends (the pools' idle_in_transaction_session_timeout
-- bounds the last). Read-only transactions (no xid) delay nothing.
--
-- xid8 is 64-bit (epoch and xid, never wraps), so seqs fit bigint while the cluster has used
-- fewer than 2^43 transaction ids.
DO $$
BEGIN
    IF (SELECT coalesce(max(seq), 0) FROM events) >= pg_current_xact_id()::text::bigint * 1048576 THEN
        RAISE EXCEPTION 'existing event seqs reach % and would not stay below the xid-derived ones',
            (SELECT max(seq) FROM events);
    END IF;
END $$;

-- event_seq_base(n) returns the base b of the next n events of the calling transaction: they
-- take the seqs b + 1 … b + n. A transaction writing events in several statements gets distinct
-- seqs, each statement's above the last (the previous ones are visible to it). More than
-- 2^20 - 1 events in one transaction are refused.
CREATE FUNCTION event_seq_base(n bigint) RETURNS bigint LANGUAGE plpgsql VOLATILE AS $$
DECLARE
    first bigint := pg_current_xact_id()::text::bigint * 1048576;
    used  bigint;
BEGIN
    SELECT coalesce(max(seq) - first, 0) INTO used FROM events WHERE seq > first AND seq < first + 1048576;
    IF used + n >= 1048576 THEN
        RAISE EXCEPTION 'a transaction may write at most 1048575 events, this one % more after %', n, used
            USING ERRCODE = 'program_limit_exceeded';
    END IF;
    RETURN first + used;
END $$;

-- event_sequence keeps the last dense seq handed out, and refuses every further update: a
-- replica still running the code before this migration fails its writes loudly instead of
-- writing events below the cursors its consumers already passed.
CREATE FUNCTION refuse_event_sequence() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    RAISE EXCEPTION 'event_sequence is retired: event seqs are xid-derived (migration 20261224000010)'
        USING ERRCODE = 'feature_not_supported';
END $$;
CREATE TRIGGER event_sequence_retired BEFORE UPDATE OR INSERT OR DELETE ON event_sequence
    FOR EACH STATEMENT EXECUTE FUNCTION refuse_event_sequence();
