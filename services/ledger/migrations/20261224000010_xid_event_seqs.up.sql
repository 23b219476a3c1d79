-- Event sequence numbers without a lock held to commit (issue 17, lean durable write).
--
-- Until now every batch ended with UPDATE event_sequence ... RETURNING last, whose row lock was
-- held until COMMIT: sequence order was commit order, and every commit worker of every replica
-- waited for the one before it to commit. From here on an event's seq is derived from a
-- transaction id taken by the statement that writes the events:
--
--     seq = x * 2^20 + n,   n = 1 … 2^20 - 1, the event's ordinal in the statement
--
-- where x is a fresh xid (event_seq_base below takes one in a subtransaction it rolls back),
-- newer than the writing transaction's own xid. Two writers take no common lock, so their
-- batches commit concurrently. Seq order is no longer commit order, so readers (store.Events,
-- store.UpdateUsage) return only events below the horizon
--
--     pg_snapshot_xmin(pg_current_snapshot()) * 2^20
--
-- of their own statement's snapshot: every transaction whose xid is lower has ended, an open
-- transaction's events carry an x above its own xid (so at or above the horizon), and every
-- later statement takes a higher x. A cursor never passes an event that becomes visible
-- afterwards; the stream stays gap-free, resumable and in seq order; existing cursors stay
-- valid, the dense seqs written so far being below every xid-derived seq (asserted below).
--
-- Why a fresh xid and not the writing transaction's own (pg_current_xact_id()): a batch takes
-- its xid when it locks its first account, and may then wait for the lock of another account,
-- held by a batch that took its xid later and commits first. With its own xid the waiting batch's
-- events would sort before those of the batch it waited for, though they come after it in that
-- organization's history (its balance): one organization's events would be reordered. x is taken
-- in the events insert, the batch's last statement, while the batch holds every lock it takes, so
-- any batch it waited for has committed, with a lower x: each organization's events stay in their
-- commit order.
--
-- The cost: an event is delivered only once every transaction of the cluster that took its xid
-- before the event's x has ended, whatever it writes and in whichever database or schema (xids
-- are cluster-wide). Short write transactions delay delivery by their own length. A long one,
-- such as a shard move (MoveIn copies an organization's history in one transaction), a
-- migration, or a session idle in a transaction, holds back every event committed after it
-- started until it ends (the pools' idle_in_transaction_session_timeout bounds the last).
-- Read-only transactions (no xid) delay nothing. Each events insert also uses one more xid.
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

-- event_xid_probe is where event_seq_base takes a fresh xid: a row it inserts in a subtransaction
-- and rolls back (unlogged: nothing of it is worth WAL).
CREATE UNLOGGED TABLE event_xid_probe (x int);

-- event_seq_base(n) returns the base b of the next n events of the calling statement: they take
-- the seqs b + 1 … b + n, b = x * 2^20 for a fresh xid x (see the top of this file). More than
-- 2^20 - 1 events in one call are refused.
CREATE FUNCTION event_seq_base(n bigint) RETURNS bigint LANGUAGE plpgsql VOLATILE AS $$
DECLARE
    top bigint := pg_current_xact_id()::text::bigint;
    x   bigint;
BEGIN
    IF n >= 1048576 THEN
        RAISE EXCEPTION 'one statement may write at most 1048575 events, not %', n
            USING ERRCODE = 'program_limit_exceeded';
    END IF;
    BEGIN
        INSERT INTO event_xid_probe VALUES (0) RETURNING xmin::text::bigint INTO x;
        RAISE EXCEPTION USING ERRCODE = 'TLX01';
    EXCEPTION WHEN SQLSTATE 'TLX01' THEN
        -- rolled back; x, the subtransaction's 32-bit xid, is kept
    END;
    -- Widened with the epoch of the transaction's own xid, which x follows by less than 2^31.
    x := (top >> 32 << 32) | x;
    IF x < top THEN
        x := x + 4294967296;
    END IF;
    RETURN x * 1048576;
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
