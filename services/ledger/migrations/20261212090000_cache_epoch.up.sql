-- The balance cache's epoch (see internal/app/freshness.go). Redis entries are stamped with the
-- epoch that was current when their state was read from PostgreSQL; Authorize trusts an entry only
-- while its stamp is the current epoch. The epoch is bumped whenever the cache may have missed a
-- change (a ledger replica starts or is lost, Redis is a different server than before, a cache
-- write failed or was dropped), which retires every entry at once, on every replica.
CREATE TABLE cache_epoch (
    id    smallint PRIMARY KEY CHECK (id = 1),
    epoch bigint   NOT NULL CHECK (epoch > 0)
);
INSERT INTO cache_epoch (id, epoch) VALUES (1, 1);

-- Ledger replicas alive, by heartbeat. A replica that stops beating (killed, partitioned from
-- PostgreSQL) may have committed changes whose cache writes never happened: whoever removes its
-- row bumps the epoch in the same statement.
CREATE TABLE cache_replicas (
    id      uuid        PRIMARY KEY,
    seen_at timestamptz NOT NULL
);
