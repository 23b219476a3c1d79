package test

import (
	"testing"
	"time"

	"github.com/jackc/pgx/v5/pgxpool"
	"github.com/stretchr/testify/require"
)

// TestReconciliationRunsOncePerPass runs two replicas over one database, then restarts one: of
// all their claims of a period's pass exactly one runs it, and each pass is recorded finished.
func TestReconciliationRunsOncePerPass(t *testing.T) {
	t.Parallel()
	a := start(t, options{})
	b := start(t, options{ledger: a.ledger, dbURL: a.dbURL})
	// An interval no other test or loop uses; a period boundary may fall within the test (then
	// two passes ran, one each period).
	const interval = 97 * time.Minute
	runs := 0
	claim := func(e *env) {
		ran, _, err := e.svc.ReconcileClaimed(t.Context(), interval)
		require.NoError(t, err)
		if ran {
			runs++
		}
	}
	claim(a)
	claim(b)
	claim(a)
	a.stop()
	c := start(t, options{ledger: a.ledger, dbURL: a.dbURL})
	claim(c)
	claim(b)

	pool, err := pgxpool.New(t.Context(), a.dbURL)
	require.NoError(t, err)
	defer pool.Close()
	var passes, unfinished int
	require.NoError(t, pool.QueryRow(t.Context(), `SELECT count(*), count(*) FILTER (WHERE finished_at IS NULL OR NOT ok)
		FROM payments.reconcile_passes WHERE interval_ms = $1`, interval.Milliseconds()).Scan(&passes, &unfinished))
	require.Equal(t, passes, runs, "each claimed pass ran on exactly one replica")
	require.True(t, runs == 1 || runs == 2, "one pass per period of the test: %d", runs)
	require.Zero(t, unfinished)
}
