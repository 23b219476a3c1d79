package test

// The SDK (pkg/client) against the real ledger, under the invariants of the unary Debit tests:
// random mixes, concurrency, replays across the SDK and unary calls, a ledger restart with
// nothing lost or doubled, and credit leases that never overspend.
//
// Debits go over the ledger's DebitStream (requireStreamed checks it). The stream mechanics
// that need a server misbehaving on cue (a break between commit and ack, Unavailable acks, a
// small window, no stream at all) are tested in pkg/client against an in-test server.

import (
	"context"
	"fmt"
	"math/rand/v2"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/stretchr/testify/require"
	"google.golang.org/grpc"
	"google.golang.org/grpc/resolver"
	"google.golang.org/grpc/resolver/manual"

	"github.com/tallyhq/tally/pkg/client"
	ledgerv1 "github.com/tallyhq/tally/pkg/gen/tally/ledger/v1"
	"github.com/tallyhq/tally/pkg/money"
	"github.com/tallyhq/tally/pkg/testenv"
	"github.com/tallyhq/tally/services/ledger/ledgertest"
)

// sdkClient is a pkg/client Client of the ledger at target with a backend's service token.
func sdkClient(t *testing.T, target string, opts ...grpc.DialOption) *client.Client {
	t.Helper()
	c, _ := sdkClientWithMetrics(t, target, opts...)
	return c
}

func sdkClientWithMetrics(t *testing.T, target string, opts ...grpc.DialOption) (*client.Client, *prometheus.Registry) {
	t.Helper()
	reg := prometheus.NewRegistry()
	c, err := client.New(client.Config{Target: target, Token: ledgertest.ServiceToken(t, "model-backend"), DialOptions: opts,
		Registerer: reg, Retry: client.RetryPolicy{InitialBackoff: 5 * time.Millisecond, MaxBackoff: 200 * time.Millisecond}})
	require.NoError(t, err)
	t.Cleanup(func() { require.NoError(t, c.Close(context.WithoutCancel(t.Context()))) })
	return c, reg
}

// requireStreamed requires that the client sent debits on DebitStream (not the unary fallback).
func requireStreamed(t *testing.T, reg *prometheus.Registry) {
	t.Helper()
	mfs, err := reg.Gather()
	require.NoError(t, err)
	for _, mf := range mfs {
		if mf.GetName() == "tally_client_stream_batch_size" {
			require.Positive(t, mf.GetMetric()[0].GetHistogram().GetSampleCount(), "debits went over DebitStream")
			return
		}
	}
	require.Fail(t, "no stream batch metric")
}

func usdMoney(n money.Nanos) money.Money { return money.Money{Nanos: n, Currency: "USD"} }

// movableLedger is a resolver the test points at whichever replica runs: the SDK's
// connection follows it the way it follows DNS in production.
func movableLedger(t *testing.T, addr string) (*manual.Resolver, string) {
	t.Helper()
	r := manual.NewBuilderWithScheme(fmt.Sprintf("ledger%d", rand.Uint64())) //nolint:gosec // a name
	r.InitialState(resolver.State{Addresses: []resolver.Address{{Addr: addr}}})
	return r, r.Scheme() + ":///ledger"
}

func countTransactions(t *testing.T, c ledgerv1.LedgerServiceClient, org string) int {
	t.Helper()
	n, token := 0, ""
	for {
		r, err := c.ListTransactions(t.Context(), &ledgerv1.ListTransactionsRequest{OrgId: org, PageSize: 500, PageToken: token})
		require.NoError(t, err)
		n += len(r.GetTransactions())
		if token = r.GetNextPageToken(); token == "" {
			return n
		}
	}
}

// mixOp is one debit of the random mix and the path it takes.
type mixOp struct {
	org    string
	amount money.Nanos
	key    string
	via    int // 0 SDK, 1 unary, 2 SDK then unary replay, 3 unary then SDK replay, 4 SDK require_funds too big
}

// mixOps draws n debits over orgs and returns them with the expected change of each balance and
// the number of transactions each org gets.
func mixOps(orgs []string, n int) ([]mixOp, map[string]money.Nanos, map[string]int) {
	r := rand.New(rand.NewPCG(7, 8)) //nolint:gosec // a test's mix
	out := make([]mixOp, n)
	want := map[string]money.Nanos{}
	txs := map[string]int{}
	for i := range out {
		o := mixOp{org: orgs[r.IntN(len(orgs))], amount: money.Nanos(r.Int64N(int64(unit)) + 1), key: fmt.Sprintf("mix-%d", i), via: r.IntN(5)}
		if o.via == 4 {
			o.amount = 1000 * unit
		} else {
			want[o.org] -= o.amount
			txs[o.org]++
		}
		out[i] = o
	}
	return out, want, txs
}

func TestSDKRandomMixWithUnaryReplays(t *testing.T) {
	t.Parallel()
	l := ledgertest.Start(t, ledgertest.Options{})
	ops := l.Client(t, ledgertest.OpsToken(t))
	unary := l.Client(t, ledgertest.ServiceToken(t, "model-backend"))
	sdk, reg := sdkClientWithMetrics(t, l.Addr)
	orgs := []string{"m1", "m2", "m3"}
	for _, org := range orgs {
		credit(t, ops, org, 100*unit, "seed")
	}
	ops1, want, txs := mixOps(orgs, 400)
	sdkDebit := func(o mixOp, requireFunds bool) (client.Debited, error) {
		return sdk.Debit(t.Context(), client.Debit{OrgID: o.org, Amount: usdMoney(o.amount), IdempotencyKey: o.key, RequireFunds: requireFunds, Description: "call"})
	}
	unaryDebit := func(o mixOp) (*ledgerv1.DebitResponse, error) {
		return unary.Debit(t.Context(), &ledgerv1.DebitRequest{OrgId: o.org, Amount: usd(o.amount), IdempotencyKey: o.key, Description: "call"})
	}
	var wg sync.WaitGroup
	sem := make(chan struct{}, 64)
	for _, o := range ops1 {
		sem <- struct{}{}
		wg.Go(func() {
			defer func() { <-sem }()
			switch o.via {
			case 0:
				d, err := sdkDebit(o, false)
				require.NoError(t, err)
				require.False(t, d.Replayed)
				require.Equal(t, o.amount, d.Amount.Nanos)
			case 1:
				_, err := unaryDebit(o)
				require.NoError(t, err)
			case 2:
				d, err := sdkDebit(o, false)
				require.NoError(t, err)
				u, err := unaryDebit(o)
				require.NoError(t, err)
				require.True(t, u.GetReplayed())
				require.Equal(t, d.TransactionID, u.GetTransactionId())
			case 3:
				u, err := unaryDebit(o)
				require.NoError(t, err)
				d, err := sdkDebit(o, false)
				require.NoError(t, err)
				require.True(t, d.Replayed)
				require.Equal(t, u.GetTransactionId(), d.TransactionID)
			case 4:
				_, err := sdkDebit(o, true)
				require.ErrorIs(t, err, client.ErrFailedPrecondition)
			}
		})
	}
	wg.Wait()
	for _, org := range orgs {
		require.Equal(t, 100*unit+want[org], nanos(t, balance(t, ops, org).GetBalance()), org)
		require.Equal(t, 1+txs[org], countTransactions(t, ops, org), "one transaction per key, the seed included")
	}
	// The same key with another amount is refused whichever path sent the first.
	_, err := sdk.Debit(t.Context(), client.Debit{OrgID: ops1[0].org, Amount: usdMoney(ops1[0].amount + 1), IdempotencyKey: ops1[0].key, Description: "call"})
	if ops1[0].via == 4 {
		require.NoError(t, err)
	} else {
		require.ErrorIs(t, err, client.ErrKeyReused)
	}
	requireStreamed(t, reg)
	requireBalanced(t, l.DatabaseURL)
}

// TestSDKConcurrentDebitsOnOneHotOrg: 2,000 callers debit one organization at once through one
// client; the SDK batches them onto its stream and each gets its own committed transaction.
func TestSDKConcurrentDebitsOnOneHotOrg(t *testing.T) {
	t.Parallel()
	l := ledgertest.Start(t, ledgertest.Options{})
	ops := l.Client(t, ledgertest.OpsToken(t))
	credit(t, ops, "hot", 1000*unit, "seed")
	sdk, reg := sdkClientWithMetrics(t, l.Addr)
	const n = 2000
	ids := make([]string, n)
	var wg sync.WaitGroup
	for i := range n {
		wg.Go(func() {
			d, err := sdk.Debit(t.Context(), client.Debit{OrgID: "hot", Amount: usdMoney(money.Nanos(i + 1)), IdempotencyKey: fmt.Sprintf("h-%d", i)})
			require.NoError(t, err)
			require.Equal(t, money.Nanos(i+1), d.Amount.Nanos)
			ids[i] = d.TransactionID
		})
	}
	wg.Wait()
	seen := map[string]bool{}
	for _, id := range ids {
		require.False(t, seen[id], "one transaction per debit")
		seen[id] = true
	}
	require.Equal(t, 1000*unit-sumNanos(n), nanos(t, balance(t, ops, "hot").GetBalance()))
	require.Equal(t, n+1, countTransactions(t, ops, "hot"))
	requireStreamed(t, reg)
	requireBalanced(t, l.DatabaseURL)
}

func TestSDKAuthorizeReserveCaptureRelease(t *testing.T) {
	t.Parallel()
	l := ledgertest.Start(t, ledgertest.Options{})
	ops := l.Client(t, ledgertest.OpsToken(t))
	credit(t, ops, "h", 10*unit, "seed")
	sdk := sdkClient(t, l.Addr)

	az, err := sdk.Authorize(t.Context(), client.AuthorizeRequest{OrgID: "h", Amount: usdMoney(3 * unit)})
	require.NoError(t, err)
	require.True(t, az.Allowed)
	require.Equal(t, 10*unit, az.Available.Nanos)
	r, err := sdk.Reserve(t.Context(), client.ReserveRequest{OrgID: "h", Amount: usdMoney(4 * unit), TTL: time.Minute, IdempotencyKey: "r1"})
	require.NoError(t, err)
	require.Equal(t, 6*unit, r.Available.Nanos)
	require.Equal(t, client.HoldActive, r.Hold.Status)
	az, err = sdk.Authorize(t.Context(), client.AuthorizeRequest{OrgID: "h", Amount: usdMoney(7 * unit)})
	require.NoError(t, err)
	require.False(t, az.Allowed, "the hold counts against available")
	c1, err := sdk.Capture(t.Context(), client.CaptureRequest{HoldID: r.Hold.ID, Amount: usdMoney(unit), IdempotencyKey: "c1"})
	require.NoError(t, err)
	require.Equal(t, 9*unit, c1.Balance.Nanos)
	again, err := sdk.Capture(t.Context(), client.CaptureRequest{HoldID: r.Hold.ID, Amount: usdMoney(unit), IdempotencyKey: "c1"})
	require.NoError(t, err)
	require.True(t, again.Replayed)
	require.Equal(t, c1.TransactionID, again.TransactionID)
	r2, err := sdk.Reserve(t.Context(), client.ReserveRequest{OrgID: "h", Amount: usdMoney(unit), IdempotencyKey: "r2"})
	require.NoError(t, err)
	h, err := sdk.Release(t.Context(), r2.Hold.ID)
	require.NoError(t, err)
	require.Equal(t, client.HoldReleased, h.Status)
	_, err = sdk.Capture(t.Context(), client.CaptureRequest{HoldID: r2.Hold.ID, Amount: usdMoney(unit), IdempotencyKey: "c2"})
	require.ErrorIs(t, err, client.ErrFailedPrecondition)
	b, err := sdk.Balance(t.Context(), "h")
	require.NoError(t, err)
	require.Equal(t, 9*unit, b.Available.Nanos)
	require.Zero(t, b.Held.Nanos)
	requireBalanced(t, l.DatabaseURL)
}

// restartLedger stops replica a and starts another on the same PostgreSQL and Redis, and points
// the resolver at it.
func restartLedger(t *testing.T, a *ledgertest.Ledger, r *manual.Resolver) *ledgertest.Ledger {
	t.Helper()
	a.Stop(t)
	b := ledgertest.Start(t, ledgertest.Options{DatabaseURL: a.DatabaseURL, RedisURL: a.RedisURL})
	r.UpdateState(resolver.State{Addresses: []resolver.Address{{Addr: b.Addr}}})
	return b
}

// TestSDKDebitsAcrossALedgerRestart: callers debit without pause while the ledger is stopped and
// another replica starts; a caller that gets Unavailable retries with the same key, as a
// backend would. Every debit is committed exactly once.
func TestSDKDebitsAcrossALedgerRestart(t *testing.T) {
	t.Parallel()
	a := ledgertest.Start(t, ledgertest.Options{DatabaseURL: testenv.PostgresURL(t), RedisURL: testenv.RedisURL(t)})
	ops := a.Client(t, ledgertest.OpsToken(t))
	credit(t, ops, "r", 1000*unit, "seed")
	res, target := movableLedger(t, a.Addr)
	sdk, reg := sdkClientWithMetrics(t, target, grpc.WithResolvers(res))

	var (
		next, done atomic.Int64
		wg         sync.WaitGroup
		unavail    atomic.Int64
	)
	stop := make(chan struct{})
	for range 16 {
		wg.Go(func() {
			for {
				select {
				case <-stop:
					return
				default:
				}
				i := next.Add(1)
				d := client.Debit{OrgID: "r", Amount: usdMoney(money.Nanos(i)), IdempotencyKey: fmt.Sprintf("rs-%d", i)}
				for {
					_, err := sdk.Debit(t.Context(), d)
					if err == nil {
						break
					}
					require.ErrorIs(t, err, client.ErrUnavailable, "only an outage, never another answer")
					unavail.Add(1)
					pollPause(t) // a backend's own backoff before it sends the same key again
				}
				done.Add(1)
			}
		})
	}
	require.Eventually(t, func() bool { return done.Load() >= 200 }, time.Minute, time.Millisecond)
	b := restartLedger(t, a, res)
	before := done.Load()
	require.Eventually(t, func() bool { return done.Load() >= before+200 }, time.Minute, time.Millisecond, "debits flow again")
	close(stop)
	wg.Wait()
	n := next.Load()
	opsB := b.Client(t, ledgertest.OpsToken(t))
	require.Equal(t, 1000*unit-sumNanos(n), nanos(t, balance(t, opsB, "r").GetBalance()), "every debit once")
	require.Equal(t, int(n)+1, countTransactions(t, opsB, "r"))
	t.Logf("%d debits, %d Unavailable answers retried by the callers", n, unavail.Load())
	requireStreamed(t, reg)
	requireBalanced(t, b.DatabaseURL)
}

func sumNanos(n int64) money.Nanos { return money.Nanos(n * (n + 1) / 2) }

// drawLease debits the lease in steps of amount until it has been exhausted misses times in a
// row (the organization's credits are all held or spent), and returns what it drew.
func drawLease(t *testing.T, l *client.Lease, prefix string, amount money.Nanos, misses int, pause <-chan struct{}) money.Nanos {
	t.Helper()
	var drawn money.Nanos
	miss := 0
	for i := 0; miss < misses; i++ {
		if pause != nil {
			select {
			case <-pause:
				pause = nil
			default:
			}
		}
		if !l.Authorize(amount) {
			miss++
			pollPause(t)
			continue
		}
		if _, err := l.Debit(fmt.Sprintf("%s-%d", prefix, i), amount); err != nil {
			require.ErrorIs(t, err, client.ErrLeaseExhausted)
			miss++
			pollPause(t)
			continue
		}
		miss = 0
		drawn += amount
		pollPause(t) // a paced caller: the test spans the lease's rotations
	}
	return drawn
}

// pollPause lets a lease's background rotation run between two polls.
func pollPause(t *testing.T) {
	select {
	case <-t.Context().Done():
	case <-time.After(2 * time.Millisecond):
	}
}

// TestSDKConcurrentLeasesNeverOverspend: four clients, each with a lease on one organization,
// draw far more than its balance between them; the local debits add up to no more than the
// balance, and the captures to exactly the local debits.
func TestSDKConcurrentLeasesNeverOverspend(t *testing.T) {
	t.Parallel()
	l := ledgertest.Start(t, ledgertest.Options{})
	ops := l.Client(t, ledgertest.OpsToken(t))
	credit(t, ops, "lease", 10*unit, "seed")
	var (
		mu    sync.Mutex
		drawn money.Nanos
		wg    sync.WaitGroup
	)
	leases := make([]*client.Lease, 4)
	for i := range leases {
		sdk := sdkClient(t, l.Addr)
		lease, err := sdk.Lease(t.Context(), client.LeaseConfig{OrgID: "lease", HoldAmount: 2 * unit, CaptureInterval: 20 * time.Millisecond})
		require.NoError(t, err)
		leases[i] = lease
	}
	for i, lease := range leases {
		for w := range 3 {
			wg.Go(func() {
				d := drawLease(t, lease, fmt.Sprintf("l%d-w%d", i, w), unit/20, 250, nil)
				mu.Lock()
				drawn += d
				mu.Unlock()
			})
		}
	}
	wg.Wait()
	for _, lease := range leases {
		require.NoError(t, lease.Close(t.Context()))
	}
	require.LessOrEqual(t, drawn, 10*unit, "local authorisation never spends more than the balance")
	require.Greater(t, drawn, 8*unit, "the leases drew (nearly) everything between them")
	b := balance(t, ops, "lease")
	require.Equal(t, 10*unit-drawn, nanos(t, b.GetBalance()), "captured = sum of the local debits")
	require.Zero(t, nanos(t, b.GetHeld()), "every hold captured or released")
	var stats money.Nanos
	for _, lease := range leases {
		s := lease.Stats()
		require.Equal(t, s.Drawn, s.Captured)
		stats += s.Captured
	}
	require.Equal(t, drawn, stats)
	requireBalanced(t, l.DatabaseURL)
}

// TestSDKLeaseAcrossALedgerRestart: a lease keeps authorising locally while the ledger
// restarts; its captures, retried with their derived keys across the restart, charge exactly
// what was drawn.
func TestSDKLeaseAcrossALedgerRestart(t *testing.T) {
	t.Parallel()
	a := ledgertest.Start(t, ledgertest.Options{DatabaseURL: testenv.PostgresURL(t), RedisURL: testenv.RedisURL(t)})
	ops := a.Client(t, ledgertest.OpsToken(t))
	credit(t, ops, "lr", 5*unit, "seed")
	res, target := movableLedger(t, a.Addr)
	sdk := sdkClient(t, target, grpc.WithResolvers(res))
	lease, err := sdk.Lease(t.Context(), client.LeaseConfig{OrgID: "lr", HoldAmount: unit / 5, CaptureInterval: 10 * time.Millisecond})
	require.NoError(t, err)
	var wg sync.WaitGroup
	var drawn atomic.Int64
	for w := range 4 {
		wg.Go(func() {
			drawn.Add(int64(drawLease(t, lease, fmt.Sprintf("w%d", w), unit/1000, 1500, nil)))
		})
	}
	require.Eventually(t, func() bool { return lease.Stats().Captured > 0 }, time.Minute, time.Millisecond)
	b := restartLedger(t, a, res)
	wg.Wait()
	err = lease.Close(t.Context())
	require.NoError(t, err)
	opsB := b.Client(t, ledgertest.OpsToken(t))
	bal := balance(t, opsB, "lr")
	require.LessOrEqual(t, money.Nanos(drawn.Load()), 5*unit)
	require.Equal(t, 5*unit-money.Nanos(drawn.Load()), nanos(t, bal.GetBalance()), "nothing lost, nothing doubled")
	require.Zero(t, nanos(t, bal.GetHeld()))
	require.Equal(t, money.Nanos(drawn.Load()), lease.Stats().Captured)
	requireBalanced(t, b.DatabaseURL)
}
