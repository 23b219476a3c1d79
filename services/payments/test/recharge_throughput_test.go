package test

import (
	"fmt"
	"sync"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/tallyhq/tally/services/ledger/ledgertest"
	"github.com/tallyhq/tally/services/payments/internal/payment"
)

// TestRechargeTriggerThroughput measures how fast a restarted trigger catches up with a backlog
// of ledger events, most of them of organizations without a rule. It asserts only that every
// event is applied; the rate is logged (no timed assertion).
func TestRechargeTriggerThroughput(t *testing.T) {
	if testing.Short() {
		t.Skip("measures the trigger's catch-up rate")
	}
	t.Parallel()
	l := ledgertest.Start(t, ledgertest.Options{})
	e := startRecharge(t, options{ledger: l, retry: 100 * time.Millisecond})
	const ruled = "org-rc-tput-rule"
	e.seed(t, ruled, 1000*unit, "seed")
	e.saveCard(t, ruled, payment.TestCardVisa)
	e.rule(t, ruled, 50*unit, 25*unit, 0, 500*unit)
	e.settled(t, ruled)
	e.stop()

	const orgs, perOrg = 50, 60
	var wg sync.WaitGroup
	for i := range orgs {
		org := fmt.Sprintf("org-rc-tput-%d", i)
		if i == 0 {
			org = ruled
		}
		wg.Go(func() {
			e.seed(t, org, 1000*unit, "seed-"+org)
			for j := range perOrg {
				debit(t, e.ledgerOps, org, unit, fmt.Sprintf("use-%s-%d", org, j))
			}
		})
	}
	wg.Wait()
	var from, last int64
	require.NoError(t, e.sql(t, `SELECT coalesce(max(seq), 0) FROM ledger.events`).Scan(&last))
	from = e.triggerPosition(t)

	// The time includes the replica's start (some 0.1-0.3 s here): the backlog is large enough
	// for the catch-up to dominate.
	commits := func() int64 {
		var n int64
		require.NoError(t, e.sql(t, `SELECT pg_stat_force_next_flush()`).Scan(new(any)))
		require.NoError(t, e.sql(t, `SELECT xact_commit FROM pg_stat_database WHERE datname = current_database()`).Scan(&n))
		return n
	}
	before := commits()
	began := time.Now()
	e2 := start(t, options{ledger: l, dbURL: e.dbURL, retry: 100 * time.Millisecond})
	require.Eventually(t, func() bool { return e2.triggerPosition(t) >= last }, time.Minute, 2*time.Millisecond)
	took := time.Since(began)
	e2.stop()
	n := last - from
	t.Logf("recharge trigger applied %d events in %s: %.0f events/s; %d transactions committed on the database meanwhile (the replica's start included)",
		n, took, float64(n)/took.Seconds(), commits()-before)
}

// triggerPosition is the last event sequence of the one-shard ledger the recharge trigger
// recorded applying.
func (e *env) triggerPosition(t *testing.T) int64 {
	t.Helper()
	var n int64
	require.NoError(t, e.sql(t, `SELECT coalesce((SELECT seq FROM payments.recharge_cursors WHERE shard = 'main'), 0)`).Scan(&n))
	return n
}
