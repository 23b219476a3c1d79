package app_test

import (
	"context"
	"fmt"
	"io"
	"log/slog"
	"os"
	"sync"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	ledgerv1 "github.com/tallyhq/tally/pkg/gen/tally/ledger/v1"
	"github.com/tallyhq/tally/pkg/ledgerclient"
	"github.com/tallyhq/tally/pkg/money"
	"github.com/tallyhq/tally/pkg/pg"
	"github.com/tallyhq/tally/pkg/rpcclient"
	"github.com/tallyhq/tally/pkg/testenv"
	"github.com/tallyhq/tally/services/ledger/ledgertest"
	"github.com/tallyhq/tally/services/notifications/internal/app"
	"github.com/tallyhq/tally/services/notifications/internal/notify"
	"github.com/tallyhq/tally/services/notifications/internal/store"
	"github.com/tallyhq/tally/services/notifications/migrations"
)

func TestMain(m *testing.M) { os.Exit(testenv.Main(m)) }

// noLease lets every follower consume at once, so that only the cursor check and the
// conditional updates of store.UpdateOrgMembers keep them from sending twice.
type noLease struct{}

func (noLease) Acquire(ctx context.Context) (context.Context, func(), error) {
	return ctx, func() {}, nil
}

// Three followers consuming the same stream concurrently, without the lease, still queue exactly
// one alert per crossing.
func TestConcurrentEvaluatorsWithoutLeaseQueueOneAlertPerCrossing(t *testing.T) {
	l := ledgertest.Start(t, ledgertest.Options{})
	ops := l.Client(t, ledgertest.OpsToken(t))
	pool, err := pg.Connect(t.Context(), l.DatabaseURL, "notifications", 10)
	require.NoError(t, err)
	t.Cleanup(pool.Close)
	require.NoError(t, pg.Migrate(t.Context(), pool, "notifications", migrations.FS))
	st, err := store.New(pool)
	require.NoError(t, err)
	logger := slog.New(slog.NewTextHandler(io.Discard, nil))

	const org = "fenced"
	usd := func(units int64) *ledgerv1.DebitRequest {
		return &ledgerv1.DebitRequest{OrgId: org, Amount: money.ToProto(money.Nanos(units)*1_000_000_000, "USD")}
	}
	_, err = ops.Credit(t.Context(), &ledgerv1.CreditRequest{OrgId: org, Amount: money.ToProto(100_000_000_000, "USD"), IdempotencyKey: "c0"})
	require.NoError(t, err)
	a, err := app.New(app.Config{Store: st, Ledger: ledger(t, l), Logger: logger})
	require.NoError(t, err)
	_, _, err = a.UpdateSettings(t.Context(), notify.Member{OrgID: org, MemberID: "alice", AccountEmail: "alice@example.com"}, app.SettingsEdit{
		Apply: func(p notify.Preferences) notify.Preferences {
			p.LowCreditEnabled, p.Threshold = true, money.Money{Nanos: 50_000_000_000, Currency: "USD"}
			return p
		},
		TouchesAlert: true,
	})
	require.NoError(t, err)

	ctx, cancel := context.WithCancel(t.Context())
	var wg sync.WaitGroup
	for range 3 {
		ev, err := app.NewFollower(app.FollowerConfig{
			Ledger: ledger(t, l), Store: st, Lease: noLease{}, Logger: logger,
			MaxBatch: 3, RetryDelay: 10 * time.Millisecond,
		})
		require.NoError(t, err)
		wg.Go(func() { _ = ev.Run(ctx) })
	}
	t.Cleanup(func() { cancel(); wg.Wait() })

	const crossings = 5
	n := 0
	for i := range crossings {
		for j := range 10 { // 100 → 20 in steps of 8: one crossing of 50
			req := usd(8)
			req.IdempotencyKey = "d" + string(rune('a'+i)) + string(rune('a'+j))
			_, err := ops.Debit(t.Context(), req)
			require.NoError(t, err)
			n++
		}
		_, err := ops.Credit(t.Context(), &ledgerv1.CreditRequest{OrgId: org, Amount: money.ToProto(80_000_000_000, "USD"), IdempotencyKey: "c" + string(rune('a'+i))})
		require.NoError(t, err)
	}
	var last int64
	require.NoError(t, pool.QueryRow(t.Context(), `SELECT max(seq) FROM ledger.events`).Scan(&last))
	require.Eventually(t, func() bool {
		cur, err := st.Cursor(t.Context())
		return err == nil && cur == fmt.Sprintf("main:%d", last)
	}, time.Minute, 20*time.Millisecond)

	var alerts int
	var gen int64
	require.NoError(t, pool.QueryRow(t.Context(), `SELECT count(*) FROM emails WHERE kind = 'low_credit'`).Scan(&alerts))
	require.NoError(t, pool.QueryRow(t.Context(), `SELECT alert_generation FROM member_settings WHERE member_id = 'alice'`).Scan(&gen))
	require.Equal(t, crossings, alerts)
	require.Equal(t, int64(crossings), gen)
}

// ledger is the ledger as the notifications service calls it.
func ledger(t *testing.T, l *ledgertest.Ledger) app.Ledger {
	t.Helper()
	conn, err := rpcclient.Dial(l.Addr, ledgertest.ServiceToken(t, "notifications"))
	require.NoError(t, err)
	t.Cleanup(func() { _ = conn.Close() })
	c, err := ledgerclient.New(ledgerclient.Config{Conn: conn})
	require.NoError(t, err)
	return app.Ledger{Client: c}
}
