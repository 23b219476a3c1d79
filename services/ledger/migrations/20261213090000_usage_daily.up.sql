-- The Usage page's summary: what each organization consumed per UTC day and per item (a model, an
-- instance type, or "other"), maintained by the ledger's usage follower from its own outbox
-- (internal/app/usage.go). The follower reads the events after usage_cursor.last_seq, adds their
-- debits and captures here and moves the cursor in the same transaction, so a page of events is
-- counted exactly once whatever crashes or replicas race. Nothing on the Debit path writes here.
--
-- Backfill: the cursor starts at 0, so the first replica that runs this version reads the whole
-- outbox once (events are never deleted and every debit and capture has one) and catches up.
CREATE TABLE usage_daily (
    org_id   text          NOT NULL,
    day      date          NOT NULL,
    kind     text          NOT NULL CHECK (kind IN ('model', 'instance', 'other')),
    item_id  text          NOT NULL,
    currency text          NOT NULL,
    -- Nanos consumed; numeric because a day's sum of int64 charges may exceed int64.
    amount   numeric(1000, 0) NOT NULL CHECK (amount >= 0),
    count    bigint        NOT NULL CHECK (count > 0),
    PRIMARY KEY (org_id, day, kind, item_id, currency)
);

-- The follower's position in the outbox: the last event sequence counted in usage_daily.
CREATE TABLE usage_cursor (
    id       smallint PRIMARY KEY CHECK (id = 1),
    last_seq bigint   NOT NULL CHECK (last_seq >= 0)
);
INSERT INTO usage_cursor (id, last_seq) VALUES (1, 0);
