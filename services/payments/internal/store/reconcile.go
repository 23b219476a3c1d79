package store

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/jackc/pgx/v5"
)

// reconcileKeep is how many periods of claims ClaimReconcilePass keeps.
const reconcileKeep = 10_000

// ClaimReconcilePass claims the reconciliation pass of the current period of interval for
// replica and returns its period, or false when another claim of that period (another replica's,
// or this one's before a restart) came first. Periods are cut on the database's clock. Claims
// older than reconcileKeep periods are removed.
func (s *Store) ClaimReconcilePass(ctx context.Context, interval time.Duration, replica string) (int64, bool, error) {
	ms := interval.Milliseconds()
	if ms <= 0 {
		return 0, false, errors.New("claiming a reconciliation pass: the interval must be at least a millisecond")
	}
	var period int64
	err := s.pool.QueryRow(ctx, `INSERT INTO reconcile_passes (period, interval_ms, replica, claimed_at)
SELECT floor(extract(epoch FROM clock_timestamp()) * 1000 / $1)::bigint, $1, $2, clock_timestamp()
ON CONFLICT (interval_ms, period) DO NOTHING RETURNING period`, ms, replica).Scan(&period)
	if errors.Is(err, pgx.ErrNoRows) {
		return 0, false, nil
	}
	if err != nil {
		return 0, false, fmt.Errorf("claiming a reconciliation pass: %w", err)
	}
	if _, err := s.pool.Exec(ctx, `DELETE FROM reconcile_passes WHERE interval_ms = $1 AND period < $2`, ms, period-reconcileKeep); err != nil {
		return 0, false, fmt.Errorf("pruning reconciliation passes: %w", err)
	}
	return period, true, nil
}

// FinishReconcilePass records that the pass of period (of interval) ended, and whether it did all its work.
func (s *Store) FinishReconcilePass(ctx context.Context, interval time.Duration, period int64, ok bool) error {
	if _, err := s.pool.Exec(ctx, `UPDATE reconcile_passes SET finished_at = clock_timestamp(), ok = $3 WHERE interval_ms = $1 AND period = $2`,
		interval.Milliseconds(), period, ok); err != nil {
		return fmt.Errorf("recording the end of reconciliation pass %d: %w", period, err)
	}
	return nil
}
