-- The recharge trigger follows a sharded ledger: its cursor is a position per shard (the text
-- "a:3,b:9" WatchEvents resumes after), and a rule's guard against replayed events is the last
-- sequence applied per shard (an organization moved between shards gets events whose numbers
-- have nothing to do with the old shard's).

-- Every replica advances these rows, never back: resuming after the greatest of each shard
-- replays nothing that no replica applied.
CREATE TABLE recharge_cursors (
    shard text PRIMARY KEY,
    seq   bigint NOT NULL CHECK (seq >= 0)
);
-- A one-shard ledger names its shard "main" (and keeps that name when it grows): the stored
-- sequence resumes as "main:<seq>", neither skipping nor repeating an event.
INSERT INTO recharge_cursors (shard, seq) SELECT 'main', seq FROM recharge_cursor WHERE seq > 0;
DROP TABLE recharge_cursor;

CREATE TABLE recharge_rule_seqs (
    org_id text   NOT NULL REFERENCES recharge_rules (org_id) ON DELETE CASCADE,
    shard  text   NOT NULL,
    seq    bigint NOT NULL CHECK (seq >= 0),
    PRIMARY KEY (org_id, shard)
);
INSERT INTO recharge_rule_seqs (org_id, shard, seq) SELECT org_id, 'main', last_seq FROM recharge_rules WHERE last_seq > 0;
ALTER TABLE recharge_rules DROP COLUMN last_seq;

-- The trigger keeps the enabled rules in memory.
CREATE INDEX recharge_rules_enabled_idx ON recharge_rules (org_id) WHERE enabled;
