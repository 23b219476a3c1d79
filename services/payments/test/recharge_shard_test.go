package test

import (
	"context"
	"fmt"
	"io/fs"
	"testing"
	"testing/fstest"
	"time"

	"github.com/jackc/pgx/v5/pgxpool"
	"github.com/stretchr/testify/require"

	"github.com/tallyhq/tally/pkg/pg"
	"github.com/tallyhq/tally/pkg/testenv"
	"github.com/tallyhq/tally/services/ledger/ledgertest"
	"github.com/tallyhq/tally/services/payments/internal/payment"
	"github.com/tallyhq/tally/services/payments/internal/store"
	"github.com/tallyhq/tally/services/payments/migrations"
)

// migrationsBefore is the embedded migrations named before version.
func migrationsBefore(t *testing.T, version string) fs.FS {
	t.Helper()
	names, err := fs.Glob(migrations.FS, "*.up.sql")
	require.NoError(t, err)
	out := fstest.MapFS{}
	for _, n := range names {
		if n < version {
			b, err := fs.ReadFile(migrations.FS, n)
			require.NoError(t, err)
			out[n] = &fstest.MapFile{Data: b}
		}
	}
	return out
}

func TestRechargeCursorMigrationKeepsTheStoredSequence(t *testing.T) {
	t.Parallel()
	ctx := t.Context()
	pool, err := pg.Connect(ctx, testenv.PostgresURL(t), "payments", 2)
	require.NoError(t, err)
	t.Cleanup(pool.Close)
	require.NoError(t, pg.Migrate(ctx, pool, "payments", migrationsBefore(t, "20261222090400")))
	_, err = pool.Exec(ctx, `INSERT INTO recharge_cursor (id, seq) VALUES (1, 42)`)
	require.NoError(t, err)
	_, err = pool.Exec(ctx, `INSERT INTO recharge_rules (org_id, currency, last_seq, updated_at) VALUES ('org-a', 'USD', 40, now()),
('org-b', 'USD', 0, now())`)
	require.NoError(t, err)

	require.NoError(t, pg.Migrate(ctx, pool, "payments", migrations.FS))
	var cursor []string
	require.NoError(t, pool.QueryRow(ctx, `SELECT array_agg(shard || ':' || seq) FROM recharge_cursors`).Scan(&cursor))
	require.Equal(t, []string{payment.SingleShard + ":42"}, cursor, "a one-shard ledger resumes after main:<seq>, as after the sequence")
	var seqs []string
	require.NoError(t, pool.QueryRow(ctx, `SELECT array_agg(org_id || '/' || shard || ':' || seq ORDER BY org_id) FROM recharge_rule_seqs`).Scan(&seqs))
	require.Equal(t, []string{"org-a/main:40"}, seqs)
}

// shardedLedger starts a ledger on two shards, a and b, each a private PostgreSQL cluster, and
// returns it with the shards' database URLs.
func shardedLedger(t *testing.T) (*ledgertest.Ledger, map[string]string) {
	t.Helper()
	urls, shards := ledgertest.TwoShards(t)
	l := ledgertest.Start(t, ledgertest.Options{DatabaseURL: urls["a"], Shards: shards})
	return l, urls
}

func shardDB(t *testing.T, url string) *pgxpool.Pool {
	t.Helper()
	pool, err := pgxpool.New(context.WithoutCancel(t.Context()), url)
	require.NoError(t, err)
	t.Cleanup(pool.Close)
	return pool
}

// shardSettled waits until the trigger's cursor reached every shard's last event (a move's
// marker, never sent to watchers, is not one) and no recharge of orgs is in flight, charge or
// credit due.
func (e *env) shardSettled(t *testing.T, shards map[string]*pgxpool.Pool, orgs ...string) {
	t.Helper()
	require.Eventually(t, func() bool {
		for name, db := range shards {
			var last, at int64
			if err := db.QueryRow(t.Context(), `SELECT coalesce(max(seq), 0) FROM ledger.events WHERE kind <> 'moved_in'`).Scan(&last); err != nil {
				return false
			}
			if err := e.sql(t, `SELECT coalesce((SELECT seq FROM payments.recharge_cursors WHERE shard = $1), 0)`, name).Scan(&at); err != nil {
				return false
			}
			if at < last {
				return false
			}
		}
		var busy bool
		if err := e.sql(t, `SELECT EXISTS (SELECT 1 FROM payments.payments WHERE org_id = ANY($1) AND automatic AND
(charge_after IS NOT NULL OR (fulfil_after IS NOT NULL AND credited_at IS NULL)))
OR EXISTS (SELECT 1 FROM payments.recharge_rules WHERE org_id = ANY($1) AND in_flight IS NOT NULL)`, orgs).Scan(&busy); err != nil {
			return false
		}
		return !busy
	}, 30*time.Second, 20*time.Millisecond)
}

// orgsByShard seeds candidate organizations until one lives on each shard, and returns them by shard.
func (e *env) orgsByShard(t *testing.T, shards map[string]*pgxpool.Pool) map[string]string {
	t.Helper()
	out := map[string]string{}
	for i := 0; len(out) < len(shards); i++ {
		require.Less(t, i, 64, "no organization hashed to every shard")
		org := fmt.Sprintf("org-rc-shard-%d", i)
		e.seed(t, org, 60*unit, "seed")
		for name, db := range shards {
			var here bool
			require.NoError(t, db.QueryRow(t.Context(), `SELECT EXISTS (SELECT 1 FROM ledger.events WHERE org_id = $1)`, org).Scan(&here))
			if here && out[name] == "" {
				out[name] = org
			}
		}
	}
	return out
}

func TestAutoRechargeOnATwoShardLedger(t *testing.T) {
	t.Parallel()
	l, urls := shardedLedger(t)
	shards := map[string]*pgxpool.Pool{"a": shardDB(t, urls["a"]), "b": shardDB(t, urls["b"])}
	e := start(t, options{ledger: l, dbURL: testenv.PostgresURL(t), retry: 100 * time.Millisecond})
	orgs := e.orgsByShard(t, shards)
	for _, org := range orgs {
		e.saveCard(t, org, payment.TestCardVisa)
		e.rule(t, org, 50*unit, 20*unit, 0, 500*unit)
		debit(t, e.ledgerOps, org, 20*unit, "use-1")
	}
	e.shardSettled(t, shards, orgs["a"], orgs["b"])

	// A restart resumes after the cursor of both shards: the crossings are not claimed again,
	// and the next ones (after the recharges re-armed the rules) are claimed once.
	e.stop()
	for _, org := range orgs {
		debit(t, e.ledgerOps, org, 40*unit, "use-2")
	}
	e2 := start(t, options{ledger: l, dbURL: e.dbURL, retry: 100 * time.Millisecond})
	e2.shardSettled(t, shards, orgs["a"], orgs["b"])
	for shard, org := range orgs {
		auto := e2.automatic(t, org)
		require.Len(t, auto, 2, "shard %s: one recharge per crossing", shard)
		require.Equal(t, 40*unit, nanos(t, e2.balance(t, org).GetBalance()), "shard %s: 60 - 20 + 20 - 40 + 20", shard)
	}
	var cursor []string
	require.NoError(t, e2.sql(t, `SELECT array_agg(shard ORDER BY shard) FROM payments.recharge_cursors`).Scan(&cursor))
	require.Equal(t, []string{"a", "b"}, cursor)
}

// TestApplyBalanceGuardsEachShardApart: an organization moved between shards gets events whose
// sequences are unrelated to its old shard's; each shard's replays are still no-ops.
func TestApplyBalanceGuardsEachShardApart(t *testing.T) {
	t.Parallel()
	ctx := t.Context()
	pool, err := pg.Connect(ctx, testenv.PostgresURL(t), "payments", 2)
	require.NoError(t, err)
	t.Cleanup(pool.Close)
	require.NoError(t, pg.Migrate(ctx, pool, "payments", migrations.FS))
	st, err := store.New(pool, nil)
	require.NoError(t, err)
	const org = "org-moved"
	_, err = st.PutRule(ctx, org, payment.RuleSettings{Currency: "USD", Threshold: 50 * unit, Amount: 20 * unit, MonthlyCap: 500 * unit},
		payment.Member{ID: "admin"})
	require.NoError(t, err)

	// decide re-arms or fires by the balance, as DecideRecharge does, and records what it saw.
	var saw []int64
	observe := func(shard string, seq int64) store.Claim {
		t.Helper()
		c, err := st.ApplyBalance(ctx, store.BalanceEvent{OrgID: org, Shard: shard, Seq: seq}, func(r payment.RechargeRule, _ bool) payment.RechargeDecision {
			if seq <= r.LastSeq {
				return payment.RechargeDecision{Action: payment.RechargeNone}
			}
			saw = append(saw, seq)
			if r.State == payment.RuleArmed {
				return payment.RechargeDecision{Action: payment.RechargeCapped}
			}
			return payment.RechargeDecision{Action: payment.RechargeRearm}
		}, time.Now())
		require.NoError(t, err)
		return c
	}
	tests := []struct {
		shard string
		seq   int64
		state payment.RuleState
		saw   bool
	}{
		{"a", 100, payment.RuleFired, true},
		{"a", 100, payment.RuleFired, false}, // a replay
		{"b", 3, payment.RuleArmed, true},    // moved: a lower sequence of another shard
		{"b", 2, payment.RuleArmed, false},   // b's replay
		{"a", 99, payment.RuleArmed, false},  // a's late replay
		{"b", 4, payment.RuleFired, true},
	}
	for i, tt := range tests {
		saw = nil
		c := observe(tt.shard, tt.seq)
		require.True(t, c.Found)
		require.Equal(t, tt.state, c.State, "step %d", i)
		require.Equal(t, tt.saw, len(saw) == 1, "step %d", i)
	}
}
