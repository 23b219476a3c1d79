-- The ledger may be sharded (issue 16): its event stream's position is a cursor, one sequence per
-- shard in text ("main:42" or "a:3,b:9"), and a sequence alone means nothing across shards.
--
-- A position stored before this migration is a sequence of the one-shard ledger of the time. It is
-- kept as a bare number ("42"): the follower resumes it with after_sequence, which a one-shard
-- ledger answers from exactly that point, and stores the cursor of the first event it applies, so
-- no event is missed or applied twice and this service never has to guess the shard's name. ''
-- is the start of the stream.
ALTER TABLE event_cursors ADD COLUMN position text;
UPDATE event_cursors SET position = CASE WHEN seq > 0 THEN seq::text ELSE '' END;
ALTER TABLE event_cursors ALTER COLUMN position SET NOT NULL, ALTER COLUMN position SET DEFAULT '';
ALTER TABLE event_cursors DROP COLUMN seq;

-- The shard of the organization's last applied event: its last_seq is a sequence of that shard
-- ('' for the rows written before, all from the one-shard ledger, or from GetBalance).
ALTER TABLE org_balances ADD COLUMN last_shard text NOT NULL DEFAULT '';
