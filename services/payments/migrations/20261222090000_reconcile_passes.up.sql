-- Reconciliation runs once per pass across replicas: time is cut into periods of the
-- reconciliation interval (on the database's clock, so that replicas' clocks do not matter), and
-- the replica whose claim of a period's row lands first runs that pass; the others, and a replica
-- restarted within the period, find the row and skip it.
CREATE TABLE reconcile_passes (
    interval_ms bigint NOT NULL,
    period      bigint NOT NULL, -- floor(epoch milliseconds / interval_ms)
    replica     text NOT NULL,
    claimed_at  timestamptz NOT NULL,
    finished_at timestamptz, -- NULL: still running, or its replica died during it
    ok          boolean,
    PRIMARY KEY (interval_ms, period)
);
