package app_test

import (
	"context"
	"fmt"
	"io"
	"log/slog"
	"sync"
	"testing"
	"time"

	"github.com/jackc/pgx/v5/pgxpool"
	"github.com/stretchr/testify/require"

	ledgerv1 "github.com/tallyhq/tally/pkg/gen/tally/ledger/v1"
	"github.com/tallyhq/tally/pkg/money"
	"github.com/tallyhq/tally/pkg/pg"
	"github.com/tallyhq/tally/pkg/testenv"
	"github.com/tallyhq/tally/services/ledger/ledgertest"
	"github.com/tallyhq/tally/services/notifications/internal/app"
	"github.com/tallyhq/tally/services/notifications/internal/notify"
	"github.com/tallyhq/tally/services/notifications/internal/store"
	"github.com/tallyhq/tally/services/notifications/migrations"
)

// shardedStack is a ledger sharded across two private PostgreSQL clusters ("a", "b") and the
// notifications store of a follower of it.
type shardedStack struct {
	ops    ledgerv1.LedgerServiceClient
	ledger app.Ledger
	shards map[string]*pgxpool.Pool
	st     *store.Store
	pool   *pgxpool.Pool
}

func startSharded(t *testing.T) *shardedStack {
	t.Helper()
	urls, shards := ledgertest.TwoShards(t)
	l := ledgertest.Start(t, ledgertest.Options{DatabaseURL: urls["a"], Shards: shards})
	s := &shardedStack{ops: l.Client(t, ledgertest.OpsToken(t)), ledger: ledger(t, l), shards: map[string]*pgxpool.Pool{}}
	for n, u := range urls {
		p, err := pgxpool.New(context.WithoutCancel(t.Context()), u)
		require.NoError(t, err)
		t.Cleanup(p.Close)
		s.shards[n] = p
	}
	pool, err := pg.Connect(t.Context(), testenv.PostgresURL(t), "notifications", 5)
	require.NoError(t, err)
	t.Cleanup(pool.Close)
	require.NoError(t, pg.Migrate(t.Context(), pool, "notifications", migrations.FS))
	s.pool = pool
	s.st, err = store.New(pool)
	require.NoError(t, err)
	return s
}

// follow runs a follower until the returned stop is called (a notifications restart).
func (s *shardedStack) follow(t *testing.T) (stop func()) {
	t.Helper()
	f, err := app.NewFollower(app.FollowerConfig{
		Ledger: s.ledger, Store: s.st, Lease: noLease{}, Logger: slog.New(slog.NewTextHandler(io.Discard, nil)),
		MaxBatch: 4, RetryDelay: 10 * time.Millisecond,
	})
	require.NoError(t, err)
	ctx, cancel := context.WithCancel(t.Context())
	done := make(chan error, 1)
	go func() { done <- f.Run(ctx) }()
	var once sync.Once
	stop = func() { once.Do(func() { cancel(); require.NoError(t, <-done) }) }
	t.Cleanup(stop)
	return stop
}

// orgOn returns an organization (with 100 USD credited) that the ledger put on shard.
func (s *shardedStack) orgOn(t *testing.T, shard string) string {
	t.Helper()
	for i := range 64 {
		org := fmt.Sprintf("org-%s-%d", shard, i)
		_, err := s.ops.Credit(t.Context(), &ledgerv1.CreditRequest{OrgId: org, Amount: money.ToProto(100*money.NanosPerUnit, "USD"), IdempotencyKey: "c0"})
		require.NoError(t, err)
		var n int
		require.NoError(t, s.shards[shard].QueryRow(t.Context(), `SELECT count(*) FROM ledger.accounts WHERE org_id = $1`, org).Scan(&n))
		if n > 0 {
			return org
		}
	}
	t.Fatalf("no organization on shard %s", shard)
	return ""
}

// cross moves org's balance below the 50 USD threshold and back above it: one crossing.
func (s *shardedStack) cross(t *testing.T, org, key string) {
	t.Helper()
	_, err := s.ops.Debit(t.Context(), &ledgerv1.DebitRequest{OrgId: org, Amount: money.ToProto(60*money.NanosPerUnit, "USD"), IdempotencyKey: key + "-d"})
	require.NoError(t, err)
	_, err = s.ops.Credit(t.Context(), &ledgerv1.CreditRequest{OrgId: org, Amount: money.ToProto(60*money.NanosPerUnit, "USD"), IdempotencyKey: key + "-c"})
	require.NoError(t, err)
}

// settle waits until the stored cursor is at the last event of every shard (a move's marker,
// never sent to watchers, is not one).
func (s *shardedStack) settle(t *testing.T) {
	t.Helper()
	require.Eventually(t, func() bool {
		want := map[string]int64{}
		for n, p := range s.shards {
			var last int64
			if err := p.QueryRow(t.Context(), `SELECT coalesce(max(seq), 0) FROM ledger.events WHERE kind <> 'moved_in'`).Scan(&last); err != nil {
				return false
			}
			want[n] = last
		}
		cur, err := s.st.Cursor(t.Context())
		return err == nil && cur == fmt.Sprintf("a:%d,b:%d", want["a"], want["b"])
	}, time.Minute, 20*time.Millisecond, "follower did not reach the end of both shards")
}

func (s *shardedStack) alerts(t *testing.T, org string) int {
	t.Helper()
	var n int
	require.NoError(t, s.pool.QueryRow(t.Context(), `SELECT count(*) FROM emails WHERE kind = 'low_credit' AND org_id = $1`, org).Scan(&n))
	return n
}

// Against a ledger sharded across two PostgreSQL clusters the follower (which may not use
// after_sequence there) queues one low-credit alert per crossing for organizations on both
// shards, resumes after a restart from its stored cursor without missing or doubling one, and
// keeps one alert per crossing for an organization moved between shards, whose sequences on
// the new shard are unrelated to those on the old one.
func TestShardedLedgerOneAlertPerCrossing(t *testing.T) {
	s := startSharded(t)
	orgs := map[string]string{"a": s.orgOn(t, "a"), "b": s.orgOn(t, "b")}
	a, err := app.New(app.Config{Store: s.st, Ledger: s.ledger, Logger: slog.New(slog.NewTextHandler(io.Discard, nil))})
	require.NoError(t, err)
	for _, org := range orgs {
		_, _, err := a.UpdateSettings(t.Context(), notify.Member{OrgID: org, MemberID: "alice", AccountEmail: "alice@example.com"}, app.SettingsEdit{
			Apply: func(p notify.Preferences) notify.Preferences {
				p.LowCreditEnabled, p.Threshold = true, money.Money{Nanos: 50 * money.NanosPerUnit, Currency: "USD"}
				return p
			},
			TouchesAlert: true,
		})
		require.NoError(t, err)
	}

	stop := s.follow(t)
	for _, org := range orgs {
		s.cross(t, org, "x1")
	}
	s.settle(t)
	stop() // a restart: the crossings meanwhile are read from the stored cursor
	for _, org := range orgs {
		s.cross(t, org, "x2")
	}
	s.follow(t)
	s.settle(t)
	for shard, org := range orgs {
		require.Equal(t, 2, s.alerts(t, org), "alerts of the organization on %s", shard)
	}

	moved := orgs["a"]
	res, err := s.ops.MoveOrganization(t.Context(), &ledgerv1.MoveOrganizationRequest{OrgId: moved, ToShard: "b", IdempotencyKey: "move-1"})
	require.NoError(t, err)
	require.Equal(t, "a", res.GetFromShard())
	s.cross(t, moved, "x3")
	s.cross(t, orgs["b"], "x3")
	s.settle(t)
	require.Equal(t, 3, s.alerts(t, moved), "alerts of the moved organization")
	require.Equal(t, 3, s.alerts(t, orgs["b"]))
	var shard string
	require.NoError(t, s.pool.QueryRow(t.Context(), `SELECT last_shard FROM org_balances WHERE org_id = $1`, moved).Scan(&shard))
	require.Equal(t, "b", shard)
}

// A position stored before cursors existed (a bare sequence of the one-shard ledger) resumes
// with after_sequence from exactly there: the events after it are applied once, the ones before
// it not again, and the stored position becomes the one shard's cursor.
func TestBareSequenceResumesOnceThenStoresTheCursor(t *testing.T) {
	l := ledgertest.Start(t, ledgertest.Options{})
	ops := l.Client(t, ledgertest.OpsToken(t))
	pool, err := pg.Connect(t.Context(), l.DatabaseURL, "notifications", 5)
	require.NoError(t, err)
	t.Cleanup(pool.Close)
	require.NoError(t, pg.Migrate(t.Context(), pool, "notifications", migrations.FS))
	st, err := store.New(pool)
	require.NoError(t, err)
	for i, units := range []int64{100, 5, 7} {
		_, err := ops.Credit(t.Context(), &ledgerv1.CreditRequest{OrgId: "legacy", Amount: money.ToProto(money.Nanos(units)*money.NanosPerUnit, "USD"), IdempotencyKey: fmt.Sprint("c", i)})
		require.NoError(t, err)
	}
	var first, last int64 // not first+2: event sequences grow but are not dense
	require.NoError(t, pool.QueryRow(t.Context(), `SELECT min(seq), max(seq) FROM ledger.events`).Scan(&first, &last))
	// As the migration leaves a pre-cursor position: the first event was applied.
	_, err = pool.Exec(t.Context(), `UPDATE event_cursors SET position = $1`, fmt.Sprint(first))
	require.NoError(t, err)

	s := &shardedStack{ledger: ledger(t, l), st: st, pool: pool}
	s.follow(t)
	require.Eventually(t, func() bool {
		cur, err := st.Cursor(t.Context())
		return err == nil && cur == fmt.Sprintf("main:%d", last)
	}, time.Minute, 20*time.Millisecond)
	bal, err := st.OrgBalance(t.Context(), "legacy")
	require.NoError(t, err)
	require.Equal(t, money.Nanos(112*money.NanosPerUnit), bal.Balance)
	require.Equal(t, "main", func() string {
		var shard string
		require.NoError(t, pool.QueryRow(t.Context(), `SELECT last_shard FROM org_balances WHERE org_id = 'legacy'`).Scan(&shard))
		return shard
	}())
}
