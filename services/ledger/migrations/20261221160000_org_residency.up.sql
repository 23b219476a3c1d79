-- Sharding by organization (internal/shard, docs/scaling.md). Every shard is its own PostgreSQL
-- with this same schema; an organization lives on one shard at a time.
--
-- Residency fence: an organization's account row on a shard it moved away from keeps
-- moved_to = the shard it went to, set in the same transaction that moved its balance out; one
-- being moved in is frozen until its move-in commits. The write path reads both with the row
-- it already locks (FOR UPDATE), so a replica whose shard map is stale is refused ("moved") and
-- retries on the new shard: an organization is never written on two shards.
ALTER TABLE accounts
    ADD COLUMN moved_to text,
    ADD COLUMN frozen boolean NOT NULL DEFAULT false;

-- shard_transfer: the platform account a move books against (source: org → shard_transfer,
-- target: shard_transfer → org), so every shard's postings still sum to zero and the sum of the
-- shard_transfer balances over all shards is zero.
ALTER TABLE accounts DROP CONSTRAINT accounts_kind_check;
ALTER TABLE accounts ADD CONSTRAINT accounts_kind_check
    CHECK (kind IN ('org', 'revenue', 'expired', 'payment_clearing', 'grants', 'adjustments', 'shard_transfer'));

-- A hold copied to another shard by a move stays on the source as 'moved' (not swept there).
ALTER TABLE holds DROP CONSTRAINT holds_status_check;
ALTER TABLE holds ADD CONSTRAINT holds_status_check
    CHECK (status IN ('active', 'captured', 'released', 'expired', 'moved'));

-- The moves this shard took part in, by the move's idempotency key: direction 'out' on the
-- source, 'in' on the target. A move run again with its key finds its rows and does nothing twice.
CREATE TABLE shard_moves (
    move_key    text        NOT NULL,
    direction   text        NOT NULL CHECK (direction IN ('out', 'in')),
    org_id      text        NOT NULL,
    from_shard  text        NOT NULL,
    to_shard    text        NOT NULL,
    currency    text        NOT NULL,
    amount      bigint      NOT NULL,
    held        bigint      NOT NULL,
    expires_at  timestamptz,
    -- The newest outbox event of the organization on the source when it moved out: the move
    -- copies its usage rows once the usage follower has counted that far.
    last_event  bigint      NOT NULL DEFAULT 0,
    created_at  timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (move_key, direction)
);

-- The shard map's explicit overrides (org → shard), read from the first shard of the map only
-- (the directory); an organization without a row lives where the hash puts it.
CREATE TABLE shard_overrides (
    org_id     text        PRIMARY KEY,
    shard      text        NOT NULL,
    updated_at timestamptz NOT NULL DEFAULT now()
);
