-- Event order across a move (internal/shard, docs/scaling.md). A move-in commits a 'moved_in'
-- event on the target (the marker: where the organization's events there begin) and records its
-- sequence here, on the 'in' row, beside last_event (the organization's newest event on the
-- source). The merged WatchEvents stream holds the target's events at the marker until the
-- source's stream has passed last_event, so a consumer never applies an organization's new-shard
-- event before its last old-shard one. Moves recorded before this migration have no marker.
ALTER TABLE shard_moves ADD COLUMN marker_seq bigint;
CREATE UNIQUE INDEX shard_moves_marker ON shard_moves (marker_seq) WHERE marker_seq IS NOT NULL;
