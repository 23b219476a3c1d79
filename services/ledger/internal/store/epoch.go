package store

import (
	"context"
	"fmt"
	"time"
)

// BumpCacheEpoch advances the balance-cache epoch, retiring every cache entry stamped before,
// and records replica as alive; it returns the new epoch.
func (s *Store) BumpCacheEpoch(parent context.Context, replica string) (int64, error) {
	ctx, cancel := s.deadline(parent)
	defer cancel()
	var epoch int64
	err := s.pool.QueryRow(ctx, `WITH beat AS (
    INSERT INTO cache_replicas (id, seen_at) VALUES ($1, now()) ON CONFLICT (id) DO UPDATE SET seen_at = now()
)
UPDATE cache_epoch SET epoch = epoch + 1 WHERE id = 1 RETURNING epoch`, replica).Scan(&epoch)
	if err != nil {
		return 0, fail(parent, fmt.Errorf("bumping the cache epoch: %w", err))
	}
	return epoch, nil
}

// BeatCacheEpoch records replica as alive and returns the current balance-cache epoch. Replicas
// not seen for lostAfter are removed, and when it removes any it bumps the epoch in the same
// statement (their cache writes may never have happened); lost says how many it removed.
func (s *Store) BeatCacheEpoch(parent context.Context, replica string, lostAfter time.Duration) (epoch int64, lost int, err error) {
	ctx, cancel := s.deadline(parent)
	defer cancel()
	// The statements of a WITH share one snapshot: the final SELECT sees cache_epoch as it was
	// before "bumped", hence the coalesce.
	err = s.pool.QueryRow(ctx, `WITH beat AS (
    INSERT INTO cache_replicas (id, seen_at) VALUES ($1, now()) ON CONFLICT (id) DO UPDATE SET seen_at = now()
), lost AS (
    DELETE FROM cache_replicas WHERE id <> $1 AND seen_at < now() - $2 * interval '1 microsecond' RETURNING id
), bumped AS (
    UPDATE cache_epoch SET epoch = epoch + 1 WHERE id = 1 AND EXISTS (SELECT 1 FROM lost) RETURNING epoch
)
SELECT coalesce((SELECT epoch FROM bumped), (SELECT epoch FROM cache_epoch WHERE id = 1)), (SELECT count(*) FROM lost)::int`,
		replica, lostAfter.Microseconds()).Scan(&epoch, &lost)
	if err != nil {
		return 0, 0, fail(parent, fmt.Errorf("reading the cache epoch: %w", err))
	}
	return epoch, lost, nil
}

// LeaveCacheEpoch removes replica from the replicas alive: a replica stopping cleanly, whose
// cache writes have all landed, does not bump the epoch for the others.
func (s *Store) LeaveCacheEpoch(parent context.Context, replica string) error {
	ctx, cancel := s.deadline(parent)
	defer cancel()
	if _, err := s.pool.Exec(ctx, `DELETE FROM cache_replicas WHERE id = $1`, replica); err != nil {
		return fail(parent, fmt.Errorf("leaving the cache epoch: %w", err))
	}
	return nil
}
