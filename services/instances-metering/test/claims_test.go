package test

import (
	"context"
	"io"
	"log/slog"
	"os"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgxpool"
	"github.com/stretchr/testify/require"

	"github.com/tallyhq/tally/pkg/catalog"
	"github.com/tallyhq/tally/pkg/clock"
	pricingv1 "github.com/tallyhq/tally/pkg/gen/tally/pricing/v1"
	"github.com/tallyhq/tally/pkg/ledgerclient"
	"github.com/tallyhq/tally/pkg/money"
	"github.com/tallyhq/tally/pkg/pg"
	"github.com/tallyhq/tally/pkg/rpcclient"
	"github.com/tallyhq/tally/pkg/testenv"
	"github.com/tallyhq/tally/services/instances-metering/internal/app"
	"github.com/tallyhq/tally/services/instances-metering/internal/rental"
	"github.com/tallyhq/tally/services/instances-metering/internal/store"
	"github.com/tallyhq/tally/services/instances-metering/migrations"
	"github.com/tallyhq/tally/services/ledger/ledgertest"
)

// These tests drive app.Meter replicas directly (real PostgreSQL, a real ledger and pricing
// service over gRPC) with a clock they move themselves, so that leases expire without waiting.

// hourPrice is what one hour of gpu-a10g-small costs (1.20 USD).
const hourPrice = money.Nanos(1_200_000_000)

func newTestClock() *clock.Manual { return clock.NewManual(time.Now().UTC()) }

// replicaPool opens a pool on the instances schema whose sessions carry application_name app,
// so that pg_stat_activity tells this replica's sessions apart.
func replicaPool(t *testing.T, url, app string) *pgxpool.Pool {
	t.Helper()
	cfg, err := pgxpool.ParseConfig(url)
	require.NoError(t, err)
	cfg.ConnConfig.RuntimeParams["search_path"] = "instances"
	cfg.ConnConfig.RuntimeParams["application_name"] = app
	pool, err := pgxpool.NewWithConfig(t.Context(), cfg)
	require.NoError(t, err)
	t.Cleanup(pool.Close)
	return pool
}

// meterReplica is one in-process app.Meter with its own pool and name.
type meterReplica struct {
	name  string
	meter *app.Meter
}

// replicaOptions tune newReplica.
type replicaOptions struct {
	// ledgerAddr replaces the real ledger's address (a stalled listener).
	ledgerAddr    string
	ledgerTimeout time.Duration
	// wrap wraps the ledger client (a gate that freezes the replica around a call).
	wrap func(app.Ledger) app.Ledger
}

// lease is the claim lease of the replicas of these tests.
const lease = time.Minute

func (s *stack) newReplica(t *testing.T, name string, clock *clock.Manual, opts replicaOptions) *meterReplica {
	t.Helper()
	ctx := t.Context()
	migratePool, err := pg.Connect(ctx, s.ledger.DatabaseURL, "instances", 2)
	require.NoError(t, err)
	require.NoError(t, pg.Migrate(ctx, migratePool, "instances", migrations.FS))
	migratePool.Close()
	st, err := store.New(replicaPool(t, s.ledger.DatabaseURL, name))
	require.NoError(t, err)

	addr := s.ledger.Addr
	if opts.ledgerAddr != "" {
		addr = opts.ledgerAddr
	}
	ledgerTimeout := opts.ledgerTimeout
	if ledgerTimeout == 0 {
		ledgerTimeout = 10 * time.Second
	}
	conn, err := rpcclient.Dial(addr, ledgertest.ServiceToken(t, "instances-metering"))
	require.NoError(t, err)
	t.Cleanup(func() { _ = conn.Close() })
	var ledger app.Ledger
	ledger, err = ledgerclient.New(ledgerclient.Config{Conn: conn, Timeout: ledgerTimeout})
	require.NoError(t, err)
	if opts.wrap != nil {
		ledger = opts.wrap(ledger)
	}

	pconn, err := rpcclient.Dial(s.pricing.Addr, ledgertest.ServiceToken(t, "instances-metering"))
	require.NoError(t, err)
	t.Cleanup(func() { _ = pconn.Close() })
	out := io.Discard
	if os.Getenv("TALLY_TEST_LOG") != "" {
		out = os.Stderr
	}
	logger := slog.New(slog.NewTextHandler(out, &slog.HandlerOptions{Level: slog.LevelDebug})).With("replica", name)
	prices, err := catalog.NewWatcher(catalog.WatcherConfig{Client: pricingv1.NewPricingServiceClient(pconn), Logger: logger})
	require.NoError(t, err)
	wctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() { defer close(done); _ = prices.Run(wctx) }()
	t.Cleanup(func() { cancel(); <-done })
	require.NoError(t, prices.Ready(ctx))

	m, err := app.New(app.Config{
		Store: st, Ledger: ledger, Prices: prices, Logger: logger, Period: time.Hour, PollInterval: 200 * time.Millisecond,
		LedgerTimeout: ledgerTimeout, ClaimLease: lease, Replica: name, Now: clock.Now,
	})
	require.NoError(t, err)
	return &meterReplica{name: name, meter: m}
}

// gate freezes a replica around the ledger debit of one idempotency key, as SIGSTOP would: the
// debit reaches the real ledger (after, or before the freeze), and the replica goes on only once
// the test opens the gate.
type gate struct {
	app.Ledger
	key          string
	freezeBefore bool
	reached      chan struct{}
	open         chan struct{}
	once, thaw   sync.Once
	txID         atomic.Value // string: what the frozen replica's debit returned
}

// newGate returns a closed gate on key; it opens at the end of the test at the latest.
func newGate(t *testing.T, key string, freezeBefore bool) *gate {
	g := &gate{key: key, freezeBefore: freezeBefore, reached: make(chan struct{}), open: make(chan struct{})}
	t.Cleanup(g.release)
	return g
}

// release lets the frozen replica go on.
func (g *gate) release() { g.thaw.Do(func() { close(g.open) }) }

func (g *gate) wrap(l app.Ledger) app.Ledger { g.Ledger = l; return g }

func (g *gate) Debit(ctx context.Context, d ledgerclient.Debit) (string, error) {
	if d.IdempotencyKey != g.key {
		return g.Ledger.Debit(ctx, d)
	}
	if g.freezeBefore {
		g.once.Do(func() { close(g.reached) })
		<-g.open
		return g.Ledger.Debit(context.WithoutCancel(ctx), d)
	}
	id, err := g.Ledger.Debit(ctx, d)
	g.txID.Store(id)
	g.once.Do(func() { close(g.reached) })
	<-g.open
	return id, err
}

func waitClosed(t *testing.T, ch <-chan struct{}, what string) {
	t.Helper()
	select {
	case <-ch:
	case <-time.After(wait):
		require.FailNow(t, what)
	}
}

// requireNoOpenTransaction asserts that no session of replica app holds a transaction open while
// it waits (idle in transaction: what a network call inside a transaction looks like), and
// that the rental's row is not locked by anybody.
//
// The replica's own background loops run short transactions of their own, so a snapshot may
// catch one between two statements; a transaction held across the hung call stays open for the
// whole ledger timeout (3 s). So the check waits, up to a second, for a moment with no session of
// the replica inside a transaction: it cannot pass while the call holds one.
func (s *stack) requireNoOpenTransaction(t *testing.T, app, instanceID string) {
	t.Helper()
	var open int
	require.Eventually(t, func() bool {
		require.NoError(t, s.pool.QueryRow(t.Context(), `SELECT count(*) FROM pg_stat_activity
WHERE application_name = $1 AND state LIKE 'idle in transaction%'`, app).Scan(&open))
		return open == 0
	}, time.Second, 5*time.Millisecond, "sessions of %s inside a transaction during the ledger call", app)
	err := pgx.BeginFunc(t.Context(), s.pool, func(tx pgx.Tx) error {
		_, err := tx.Exec(t.Context(), `SELECT 1 FROM instances.rentals WHERE instance_id = $1 FOR UPDATE NOWAIT`, instanceID)
		return err
	})
	require.NoError(t, err, "the rental's row is locked during the ledger call")
}

// claimRow is a rental's claim columns.
type claimRow struct {
	state          string
	periods        int64
	claimedBy      string
	recordedPeriod int
}

func (s *stack) claimRow(t *testing.T, instanceID string) claimRow {
	t.Helper()
	var c claimRow
	require.NoError(t, s.pool.QueryRow(t.Context(), `SELECT r.state, r.periods_charged, coalesce(r.claimed_by, ''),
(SELECT count(*) FROM instances.charges c WHERE c.instance_id = r.instance_id)
FROM instances.rentals r WHERE r.instance_id = $1`, instanceID).Scan(&c.state, &c.periods, &c.claimedBy, &c.recordedPeriod))
	return c
}

// eventCount counts the events of an instance of kind, sequenced or still pending.
func (s *stack) eventCount(t *testing.T, instanceID string, kind rental.EventKind) int {
	t.Helper()
	var n int
	require.NoError(t, s.pool.QueryRow(t.Context(), `SELECT
(SELECT count(*) FROM instances.events WHERE instance_id = $1 AND kind = $2) +
(SELECT count(*) FROM instances.pending_events WHERE instance_id = $1 AND kind = $2)`, instanceID, string(kind)).Scan(&n))
	return n
}

// A replica that claimed a charge and called the ledger but never recorded the outcome (frozen
// or dead between the call and the record) holds the rental only until its lease expires; then
// another replica takes it over, the ledger replays the same debit, and the period is recorded
// exactly once. The first replica's late record is fenced out by the claim token.
func TestAClaimedButUnrecordedChargeIsCompletedOnceByAnotherReplica(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name string
		// period is the frozen charge: 0 is the start itself, 1 the scheduler's first boundary.
		period       int64
		freezeBefore bool
	}{
		{"scheduled period, debited, frozen before the record", 1, false},
		{"scheduled period, frozen before the ledger call", 1, true},
		{"start, debited, frozen before the record", 0, false},
	}
	for i, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			s := newStack(t)
			org := "crash-" + string(rune('a'+i))
			instance := "i-" + org
			s.credit(t, org, 100*unit)
			clock := newTestClock()
			g := newGate(t, rental.ChargeKey(instance, tt.period), tt.freezeBefore)
			a := s.newReplica(t, "meter-a-"+org, clock, replicaOptions{wrap: g.wrap})
			b := s.newReplica(t, "meter-b-"+org, clock, replicaOptions{})

			frozen := make(chan error, 1)
			if tt.period == 0 {
				go func() {
					_, _, err := a.meter.Start(context.Background(), app.StartRequest{InstanceID: instance, OrgID: org, InstanceType: a10g, IdempotencyKey: "k"})
					frozen <- err
				}()
			} else {
				_, _, err := a.meter.Start(t.Context(), app.StartRequest{InstanceID: instance, OrgID: org, InstanceType: a10g, IdempotencyKey: "k"})
				require.NoError(t, err)
				clock.Advance(time.Hour)
				go func() { frozen <- a.meter.ChargeDueOnce(context.Background()) }()
			}
			waitClosed(t, g.reached, "replica a never reached the ledger call")
			s.requireNoOpenTransaction(t, a.name, instance)

			// While a's lease is live, b leaves the rental alone.
			require.NoError(t, b.meter.ChargeDueOnce(t.Context()))
			c := s.claimRow(t, instance)
			require.Equal(t, a.name, c.claimedBy)
			require.Equal(t, tt.period, c.periods)

			// The lease expires: b takes over and completes the charge.
			clock.Advance(lease + time.Second)
			require.NoError(t, b.meter.ChargeDueOnce(t.Context()))
			c = s.claimRow(t, instance)
			require.Equal(t, string(rental.StateRunning), c.state)
			require.Equal(t, tt.period+1, c.periods)
			require.Empty(t, c.claimedBy)

			// a wakes up: its record is fenced out, nothing changes.
			g.release()
			select {
			case err := <-frozen:
				require.NoError(t, err, "a's late record ends quietly")
			case <-time.After(wait):
				require.FailNow(t, "replica a did not finish")
			}
			c = s.claimRow(t, instance)
			require.Equal(t, tt.period+1, c.periods)
			require.Equal(t, int(tt.period+1), c.recordedPeriod)

			charges := s.charges(t, org, instance) // fails on a period charged twice
			require.Len(t, charges, int(tt.period+1))
			if id, ok := g.txID.Load().(string); ok {
				require.Equal(t, id, charges[tt.period].GetId(), "the ledger replayed a's debit to b")
			}
			require.Equal(t, int(tt.period+1), s.eventCount(t, instance, rental.EventPeriodCharged))
			require.Equal(t, 1, s.eventCount(t, instance, rental.EventStarted))
			require.Equal(t, 100*unit-money.Nanos(tt.period+1)*hourPrice, s.balance(t, org))
		})
	}
}

// A stop while another replica is frozen in the middle of charging the same rental takes the
// rental over at once: the periods before the stop are charged once and the frozen replica's
// record is fenced out.
func TestStopTakesOverAChargeInProgress(t *testing.T) {
	t.Parallel()
	s := newStack(t)
	s.credit(t, "acme", 100*unit)
	clock := newTestClock()
	g := newGate(t, rental.ChargeKey("i-stop", 1), false)
	a := s.newReplica(t, "meter-a", clock, replicaOptions{wrap: g.wrap})
	b := s.newReplica(t, "meter-b", clock, replicaOptions{})
	_, _, err := a.meter.Start(t.Context(), app.StartRequest{InstanceID: "i-stop", OrgID: "acme", InstanceType: a10g, IdempotencyKey: "k"})
	require.NoError(t, err)
	clock.Advance(time.Hour + time.Minute)
	frozen := make(chan error, 1)
	go func() { frozen <- a.meter.ChargeDueOnce(context.Background()) }()
	waitClosed(t, g.reached, "replica a never reached the ledger call")

	stopped, err := b.meter.Stop(t.Context(), "i-stop")
	require.NoError(t, err)
	require.Equal(t, rental.StateStopped, stopped.State)
	require.Equal(t, int64(2), stopped.PeriodsCharged)
	require.True(t, stopped.NextPeriodAt().IsZero())

	g.release()
	require.NoError(t, <-frozen)
	c := s.claimRow(t, "i-stop")
	require.Equal(t, string(rental.StateStopped), c.state)
	require.Equal(t, int64(2), c.periods)
	require.Equal(t, 2, c.recordedPeriod)
	require.Len(t, s.charges(t, "acme", "i-stop"), 2)
	require.Equal(t, 1, s.eventCount(t, "i-stop", rental.EventStopped))
	require.Equal(t, 100*unit-2*hourPrice, s.balance(t, "acme"))
}

// While a replica's start hangs on a ledger that accepts and never answers, it holds no
// transaction and no row lock: another replica starts and charges other rentals meanwhile. The
// hung start ends Unavailable with its outcome pending, and the other replica completes it.
func TestAHungLedgerCallHoldsNoTransaction(t *testing.T) {
	t.Parallel()
	s := newStack(t)
	s.credit(t, "acme", 100*unit)
	clock := newTestClock()
	stalled := testenv.StartStalled(t)
	addr, accepted := stalled.Addr, stalled.Accepted
	a := s.newReplica(t, "meter-hung", clock, replicaOptions{ledgerAddr: addr, ledgerTimeout: 3 * time.Second})
	b := s.newReplica(t, "meter-ok", clock, replicaOptions{})
	_, _, err := b.meter.Start(t.Context(), app.StartRequest{InstanceID: "i-other", OrgID: "acme", InstanceType: a10g, IdempotencyKey: "k"})
	require.NoError(t, err)

	hung := make(chan error, 1)
	go func() {
		_, _, err := a.meter.Start(context.Background(), app.StartRequest{InstanceID: "i-hung", OrgID: "acme", InstanceType: a10g, IdempotencyKey: "k"})
		hung <- err
	}()
	waitClosed(t, accepted, "replica a never called the ledger")
	s.requireNoOpenTransaction(t, a.name, "i-hung")
	// Other work proceeds: b starts a rental, stops another and runs its scheduler.
	_, _, err = b.meter.Start(t.Context(), app.StartRequest{InstanceID: "i-meanwhile", OrgID: "acme", InstanceType: a10g, IdempotencyKey: "k"})
	require.NoError(t, err)
	stopped, err := b.meter.Stop(t.Context(), "i-other")
	require.NoError(t, err)
	require.Equal(t, rental.StateStopped, stopped.State)
	require.NoError(t, b.meter.ChargeDueOnce(t.Context()))
	c := s.claimRow(t, "i-hung")
	require.Equal(t, string(rental.StateStarting), c.state)
	require.Equal(t, a.name, c.claimedBy, "b leaves a's live claim alone")
	s.requireNoOpenTransaction(t, a.name, "i-hung")

	select {
	case err = <-hung:
	case <-time.After(wait):
		require.FailNow(t, "the hung start did not end at its deadline")
	}
	require.ErrorIs(t, err, ledgerclient.ErrUnavailable)
	_, err = b.meter.Get(t.Context(), "i-hung")
	require.ErrorIs(t, err, rental.ErrNotFound, "a start in doubt is not visible")

	// Its retry pause over, b completes the start through the real ledger.
	clock.Advance(time.Second)
	require.NoError(t, b.meter.ChargeDueOnce(t.Context()))
	r, err := b.meter.Get(t.Context(), "i-hung")
	require.NoError(t, err)
	require.Equal(t, rental.StateRunning, r.State)
	require.Equal(t, int64(1), r.PeriodsCharged)
	require.Len(t, s.charges(t, "acme", "i-hung"), 1)
	require.Equal(t, 1, s.eventCount(t, "i-hung", rental.EventStarted))
	require.Equal(t, 100*unit-3*hourPrice, s.balance(t, "acme"))
}

// A stop of a rental whose start is in doubt decides the start first, like a start followed by
// the stop; a refused one was never started.
func TestStopOfAStartInDoubt(t *testing.T) {
	t.Parallel()
	s := newStack(t)
	clock := newTestClock()
	addr := testenv.StartStalled(t).Addr
	hung := s.newReplica(t, "meter-hung", clock, replicaOptions{ledgerAddr: addr, ledgerTimeout: time.Second})
	b := s.newReplica(t, "meter-ok", clock, replicaOptions{})
	tests := []struct {
		name    string
		credit  money.Nanos
		wantErr error
		periods int64
	}{
		{"paid", 10 * unit, nil, 1},
		{"refused", 0, rental.ErrNotFound, 0},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			org, instance := "doubt-"+tt.name, "i-doubt-"+tt.name
			if tt.credit > 0 {
				s.credit(t, org, tt.credit)
			}
			_, _, err := hung.meter.Start(t.Context(), app.StartRequest{InstanceID: instance, OrgID: org, InstanceType: a10g, IdempotencyKey: "k"})
			require.ErrorIs(t, err, ledgerclient.ErrUnavailable)
			// The start's retry pause is not a claim: the stop decides it at once.
			r, err := b.meter.Stop(t.Context(), instance)
			if tt.wantErr != nil {
				require.ErrorIs(t, err, tt.wantErr)
				_, err = b.meter.Get(t.Context(), instance)
				require.ErrorIs(t, err, rental.ErrNotFound)
				require.Empty(t, s.charges(t, org, instance))
				return
			}
			require.NoError(t, err)
			require.Equal(t, rental.StateStopped, r.State)
			require.Equal(t, tt.periods, r.PeriodsCharged)
			require.Len(t, s.charges(t, org, instance), int(tt.periods))
			require.Equal(t, 1, s.eventCount(t, instance, rental.EventStarted))
			require.Equal(t, 1, s.eventCount(t, instance, rental.EventStopped))
		})
	}
}
