package store_test

import (
	"context"
	"math"
	"math/big"
	"os"
	"testing"
	"time"

	"github.com/google/uuid"
	"github.com/jackc/pgx/v5/pgxpool"
	"github.com/stretchr/testify/require"

	"github.com/tallyhq/tally/pkg/config"
	"github.com/tallyhq/tally/pkg/money"
	"github.com/tallyhq/tally/pkg/pg"
	"github.com/tallyhq/tally/pkg/testenv"
	"github.com/tallyhq/tally/services/ledger/internal/ledger"
	"github.com/tallyhq/tally/services/ledger/internal/store"
	"github.com/tallyhq/tally/services/ledger/migrations"
)

func TestMain(m *testing.M) { os.Exit(testenv.Main(m)) }

const maxI, minI = money.Nanos(math.MaxInt64), money.Nanos(math.MinInt64)

func newStore(t *testing.T) (*store.Store, *pgxpool.Pool) {
	t.Helper()
	pool, err := pg.Connect(t.Context(), testenv.PostgresURL(t), "ledger", 4)
	require.NoError(t, err)
	t.Cleanup(pool.Close)
	require.NoError(t, pg.Migrate(t.Context(), pool, "ledger", migrations.FS))
	// One shard (see apply): every batch posts to the same platform rows, the worst case for their balances.
	st, err := store.New(pool, store.Config{})
	require.NoError(t, err)
	return st, pool
}

func req(op ledger.Operation, org string, amount money.Nanos, key string) *ledger.Request {
	return &ledger.Request{Op: op, OrgID: org, Amount: amount, IdempotencyKey: key, Reason: "test", Actor: "test"}
}

// platformBalance reads a platform row's exact balance.
func platformBalance(t *testing.T, pool *pgxpool.Pool, name string) *big.Int {
	t.Helper()
	ctx, cancel := context.WithTimeout(t.Context(), 10*time.Second)
	defer cancel()
	var s string
	require.NoError(t, pool.QueryRow(ctx, `SELECT balance::text FROM accounts WHERE name = $1`, name).Scan(&s))
	n, ok := new(big.Int).SetString(s, 10)
	require.True(t, ok, s)
	return n
}

func sumOf(ns ...money.Nanos) *big.Int {
	s := new(big.Int)
	for _, n := range ns {
		s.Add(s, big.NewInt(int64(n)))
	}
	return s
}

// requireConsistent checks, in PostgreSQL, that every account's stored balance (platform rows
// included, as exact numerics) is the sum of its postings and that all postings sum to zero.
func requireConsistent(t *testing.T, pool *pgxpool.Pool) {
	t.Helper()
	ctx, cancel := context.WithTimeout(t.Context(), 10*time.Second)
	defer cancel()
	var bad int
	require.NoError(t, pool.QueryRow(ctx, `SELECT count(*) FROM (SELECT a.id FROM accounts a LEFT JOIN postings p ON p.account_id = a.id
GROUP BY a.id HAVING a.balance <> coalesce(sum(p.amount), 0)) x`).Scan(&bad))
	require.Zero(t, bad, "accounts whose balance differs from the sum of their postings")
	var total string
	require.NoError(t, pool.QueryRow(ctx, `SELECT coalesce(sum(amount), 0)::text FROM postings`).Scan(&total))
	require.Equal(t, "0", total, "all postings sum to zero")
}

// TestApplyRefusesOverflowForThatRequestAlone runs one batch, in one database transaction, that
// mixes requests of int64-extreme amounts: those that would overflow an organization's balance
// are refused with ErrOverflow and write nothing, the others commit, and the platform rows they
// post to go past the int64 range, exactly.
func TestApplyRefusesOverflowForThatRequestAlone(t *testing.T) {
	t.Parallel()
	st, pool := newStore(t)
	batch := []struct {
		req     *ledger.Request
		wantErr error
	}{
		{req(ledger.OpCredit, "a", maxI-10, "a1"), nil},
		{req(ledger.OpCredit, "a", 11, "a2"), ledger.ErrOverflow},
		{req(ledger.OpDebit, "b", maxI, "b1"), nil},
		{req(ledger.OpDebit, "b", 2, "b2"), ledger.ErrOverflow},
		{req(ledger.OpDebit, "c", maxI, "c1"), nil},
		{req(ledger.OpAdjust, "d", minI, "d1"), ledger.ErrOverflow},
		{req(ledger.OpAdjust, "d", minI+1, "d2"), nil},
		{req(ledger.OpDebit, "e", maxI, "e1"), nil},
		{req(ledger.OpAdjust, "e", -1, "e2"), nil},
	}
	reqs := make([]*ledger.Request, len(batch))
	for i, b := range batch {
		reqs[i] = b.req
	}
	applied, err := apply(t.Context(), st, reqs)
	require.NoError(t, err, "the batch commits")
	for i, b := range batch {
		got := applied.Outcomes[i].Err
		if b.wantErr != nil {
			require.ErrorIs(t, got, b.wantErr, b.req.IdempotencyKey)
			continue
		}
		require.NoError(t, got, b.req.IdempotencyKey)
	}

	ctx, cancel := context.WithTimeout(t.Context(), 10*time.Second)
	defer cancel()
	for _, key := range []string{"a2", "b2", "d1"} {
		var txs, keys int
		require.NoError(t, pool.QueryRow(ctx, `SELECT (SELECT count(*) FROM transactions WHERE idempotency_key = $1), (SELECT count(*) FROM idempotency_keys WHERE key = $1)`, key).Scan(&txs, &keys))
		require.Zero(t, txs+keys, "refused %s left a row", key)
	}
	wantOrg := map[string]money.Nanos{"a": maxI - 10, "b": -maxI, "c": -maxI, "d": minI + 1, "e": -maxI - 1}
	for org, want := range wantOrg {
		acct, found, err := st.Account(ctx, org)
		require.NoError(t, err)
		require.True(t, found)
		require.Equal(t, want, acct.Balance, org)
	}
	// Revenue took three debits of int64 max in one batch: beyond int64, summed exactly.
	require.Equal(t, sumOf(maxI, maxI, maxI).String(), platformBalance(t, pool, "platform:revenue:USD:00").String())
	require.Equal(t, sumOf(-(minI+1), 1).String(), platformBalance(t, pool, "platform:adjustments:USD:00").String())
	requireConsistent(t, pool)

	// The next batch posts to rows already past int64 and still commits.
	applied, err = apply(t.Context(), st, []*ledger.Request{req(ledger.OpDebit, "f", maxI, "f1"), req(ledger.OpDebit, "g", 1, "g1")})
	require.NoError(t, err)
	require.NoError(t, applied.Outcomes[0].Err)
	require.NoError(t, applied.Outcomes[1].Err)
	require.Equal(t, sumOf(maxI, maxI, maxI, maxI, 1).String(), platformBalance(t, pool, "platform:revenue:USD:00").String())
	requireConsistent(t, pool)
}

// TestOrgBalanceStaysInt64InTheDatabase checks the database's own guard: an organization's
// balance cannot be stored outside int64 even by a statement that bypasses the ledger's rules.
func TestOrgBalanceStaysInt64InTheDatabase(t *testing.T) {
	t.Parallel()
	st, pool := newStore(t)
	_, err := apply(t.Context(), st, []*ledger.Request{req(ledger.OpCredit, "a", 1, "a1")})
	require.NoError(t, err)
	ctx, cancel := context.WithTimeout(t.Context(), 10*time.Second)
	defer cancel()
	_, err = pool.Exec(ctx, `UPDATE accounts SET balance = 9223372036854775808 WHERE org_id = 'a'`)
	require.ErrorContains(t, err, "accounts_org_balance_int64")
	_, err = pool.Exec(ctx, `UPDATE accounts SET balance = 9223372036854775808 WHERE name = 'platform:payment_clearing:USD:00'`)
	require.NoError(t, err, "platform rows are not bounded by int64")
}

// apply runs reqs as one batch, the way the ledger's app does (app.Batches): locked by the
// store, decided by ledger.Decide, on platform shard 0, valid for 3 months.
func apply(ctx context.Context, st *store.Store, reqs []*ledger.Request) (ledger.Applied, error) {
	return applyOnShard(ctx, st, reqs, 0)
}

// applyOnShard is apply posting to the platform rows of shard.
func applyOnShard(ctx context.Context, st *store.Store, reqs []*ledger.Request, shard int) (ledger.Applied, error) {
	cfg := ledger.BatchConfig{
		Now:             time.Now().UTC().Truncate(time.Microsecond),
		Validity:        config.Period{Months: 3},
		PlatformAccount: func(kind, currency string) string { return ledger.PlatformAccountName(kind, currency, shard) },
		NewID:           func() string { return uuid.Must(uuid.NewV7()).String() },
	}
	var outcomes []ledger.Outcome
	applied, err := st.UpdateAccounts(ctx, ledger.LockSetOf(reqs), func(l *ledger.Locked) (*ledger.Batch, error) {
		b, out := ledger.Decide(cfg, reqs, l)
		outcomes = out
		return b, nil
	})
	applied.Outcomes = outcomes
	return applied, err
}
