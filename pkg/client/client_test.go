package client_test

import (
	"context"
	"fmt"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/stretchr/testify/require"

	"github.com/tallyhq/tally/pkg/client"
	"github.com/tallyhq/tally/pkg/money"
)

const unit = money.Nanos(money.NanosPerUnit)

func newClient(t testing.TB, addr string, edit func(*client.Config)) *client.Client {
	t.Helper()
	cfg := client.Config{Target: addr, Token: "test-token", Timeout: 2 * time.Second,
		Retry: client.RetryPolicy{InitialBackoff: time.Millisecond, MaxBackoff: 20 * time.Millisecond}}
	if edit != nil {
		edit(&cfg)
	}
	c, err := client.New(cfg)
	require.NoError(t, err)
	t.Cleanup(func() { _ = c.Close(context.WithoutCancel(t.Context())) })
	return c
}

func usdAmount(n money.Nanos) money.Money { return money.Money{Nanos: n, Currency: "USD"} }

// debitMany runs n concurrent debits of 1..n nanos on org and returns their results by index.
func debitMany(t *testing.T, c *client.Client, org, prefix string, n int) []client.Debited {
	t.Helper()
	out := make([]client.Debited, n)
	var wg sync.WaitGroup
	for i := range n {
		wg.Go(func() {
			d, err := c.Debit(t.Context(), client.Debit{OrgID: org, Amount: usdAmount(money.Nanos(i + 1)), IdempotencyKey: fmt.Sprintf("%s-%d", prefix, i)})
			require.NoError(t, err, "debit %d", i)
			out[i] = d
		})
	}
	wg.Wait()
	return out
}

func sumTo(n int) money.Nanos { return money.Nanos(n * (n + 1) / 2) }

func TestStreamBatchesWithinTheLedgersWindow(t *testing.T) {
	t.Parallel()
	m := newMemLedger()
	m.maxInFlight = 16
	m.credit("acme", 100*unit)
	reg := prometheus.NewRegistry()
	c := newClient(t, m.serve(t), func(cfg *client.Config) {
		cfg.Registerer = reg
		cfg.Batch.Linger = 5 * time.Millisecond
	})
	const n = 500
	res := debitMany(t, c, "acme", "k", n)
	for i, d := range res {
		require.NotEmpty(t, d.TransactionID, i)
		require.Equal(t, money.Nanos(i+1), d.Amount.Nanos)
		require.False(t, d.Replayed)
	}
	bal, _ := m.bal("acme")
	require.Equal(t, 100*unit-sumTo(n), bal)
	require.LessOrEqual(t, m.maxSeenUnack.Load(), int64(16), "the client never exceeds max_in_flight")
	require.Less(t, m.batches.Load(), int64(n), "debits share stream messages")
	require.Equal(t, int64(1), m.streamsOpened.Load())
	require.InDelta(t, float64(n), debitCallsOK(t, reg), 0)
}

func TestStreamReconnectResendsUnacknowledgedDebitsWithTheirKeys(t *testing.T) {
	t.Parallel()
	m := newMemLedger()
	m.credit("acme", 100*unit)
	// The stream ends after the 40th debit is committed and before it is acknowledged, with
	// other debits in flight: a ledger crash between commit and ack.
	m.breakAfter.Store(40)
	c := newClient(t, m.serve(t), nil)
	const n = 300
	res := debitMany(t, c, "acme", "k", n)
	replayed := 0
	for _, d := range res {
		if d.Replayed {
			replayed++
		}
	}
	require.GreaterOrEqual(t, replayed, 1, "the debit committed before the break is answered as a replay")
	bal, _ := m.bal("acme")
	require.Equal(t, 100*unit-sumTo(n), bal, "nothing lost, nothing doubled")
	require.GreaterOrEqual(t, m.streamsOpened.Load(), int64(2))
}

func TestStreamRetriesUnavailableAcksButNeverADefinitiveAnswer(t *testing.T) {
	t.Parallel()
	m := newMemLedger()
	m.credit("acme", 10*unit)
	c := newClient(t, m.serve(t), nil)
	m.unavailableN.Store(2)
	d, err := c.Debit(t.Context(), client.Debit{OrgID: "acme", Amount: usdAmount(unit), IdempotencyKey: "flaky"})
	require.NoError(t, err)
	require.False(t, d.Replayed)
	require.Equal(t, 3, m.tries("flaky"), "two Unavailable acks, then the commit, all with the same key")

	_, err = c.Debit(t.Context(), client.Debit{OrgID: "acme", Amount: usdAmount(100 * unit), IdempotencyKey: "too-much", RequireFunds: true})
	require.ErrorIs(t, err, client.ErrFailedPrecondition)
	require.ErrorIs(t, err, client.ErrRefused)
	require.Equal(t, "INSUFFICIENT_FUNDS", client.Reason(err))
	require.Equal(t, map[string]string{"org_id": "acme"}, client.ErrorMetadata(err), "the refusal's details, as a unary status's ErrorInfo")
	require.Equal(t, 1, m.tries("too-much"), "a refusal is final")

	_, err = c.Debit(t.Context(), client.Debit{OrgID: "acme", Amount: usdAmount(2 * unit), IdempotencyKey: "flaky"})
	require.ErrorIs(t, err, client.ErrKeyReused)
	bal, _ := m.bal("acme")
	require.Equal(t, 9*unit, bal)
}

func TestStreamGivesUpAfterItsAttempts(t *testing.T) {
	t.Parallel()
	m := newMemLedger()
	c := newClient(t, m.serve(t), func(cfg *client.Config) { cfg.Retry.MaxAttempts = 3 })
	m.unavailableN.Store(3)
	_, err := c.Debit(t.Context(), client.Debit{OrgID: "acme", Amount: usdAmount(unit), IdempotencyKey: "down"})
	require.ErrorIs(t, err, client.ErrUnavailable)
	require.Equal(t, 3, m.tries("down"))
}

func TestLedgerWithoutStreamGetsUnaryDebits(t *testing.T) {
	t.Parallel()
	m := newMemLedger()
	m.noStream = true
	m.credit("acme", 10*unit)
	c := newClient(t, m.serve(t), nil)
	res := debitMany(t, c, "acme", "u", 50)
	require.Len(t, res, 50)
	bal, _ := m.bal("acme")
	require.Equal(t, 10*unit-sumTo(50), bal)
	require.Zero(t, m.batches.Load())
}

func TestUnaryCallsRetryUnavailableWithTheSameKey(t *testing.T) {
	t.Parallel()
	m := newMemLedger()
	m.credit("acme", 10*unit)
	c := newClient(t, m.serve(t), func(cfg *client.Config) { cfg.Batch.Disabled = true })
	m.unaryFailN.Store(2)
	d, err := c.Debit(t.Context(), client.Debit{OrgID: "acme", Amount: usdAmount(unit), IdempotencyKey: "u1"})
	require.NoError(t, err)
	require.Equal(t, 9*unit, d.Balance.Nanos)
	require.Equal(t, 1, m.tries("u1"), "the two failures never reached the commit")
	m.unaryFailN.Store(1)
	az, err := c.Authorize(t.Context(), client.AuthorizeRequest{OrgID: "acme", Amount: usdAmount(5 * unit)})
	require.NoError(t, err)
	require.True(t, az.Allowed)
	require.Equal(t, 9*unit, az.Available.Nanos)
	_, err = c.Debit(t.Context(), client.Debit{OrgID: "acme", Amount: usdAmount(-1), IdempotencyKey: "bad"})
	require.ErrorIs(t, err, client.ErrRefused)
	require.Equal(t, 1, m.tries("bad"))
	_, err = c.Debit(t.Context(), client.Debit{OrgID: "acme", Amount: usdAmount(1)})
	require.Error(t, err, "a debit without a key is refused before it is sent")
}

func TestCloseFlushesPendingDebits(t *testing.T) {
	t.Parallel()
	m := newMemLedger()
	m.credit("acme", 10*unit)
	c, err := client.New(client.Config{Target: m.serve(t), Token: "t", Batch: client.BatchPolicy{Linger: time.Hour, MaxSize: 1000}})
	require.NoError(t, err)
	done := make(chan error, 1)
	go func() {
		_, err := c.Debit(t.Context(), client.Debit{OrgID: "acme", Amount: usdAmount(unit), IdempotencyKey: "lingering"})
		done <- err
	}()
	// The debit lingers (an hour) until Close sends it.
	require.Eventually(t, func() bool { return m.streamsOpened.Load() == 1 }, 10*time.Second, time.Millisecond)
	require.NoError(t, c.Close(t.Context()))
	require.NoError(t, <-done)
	bal, _ := m.bal("acme")
	require.Equal(t, 9*unit, bal)
	_, err = c.Debit(t.Context(), client.Debit{OrgID: "acme", Amount: usdAmount(unit), IdempotencyKey: "late"})
	require.ErrorIs(t, err, client.ErrClosed)
}

func TestConfigIsValidated(t *testing.T) {
	t.Parallel()
	for name, cfg := range map[string]client.Config{
		"no target":     {Token: "t"},
		"no token":      {Target: "127.0.0.1:1"},
		"batch too big": {Target: "127.0.0.1:1", Token: "t", Batch: client.BatchPolicy{MaxSize: 1001}},
		"negative":      {Target: "127.0.0.1:1", Token: "t", Timeout: -1},
	} {
		t.Run(name, func(t *testing.T) {
			_, err := client.New(cfg)
			require.Error(t, err)
		})
	}
}

func TestMetricsAreRegisteredOnTheCallersRegistry(t *testing.T) {
	t.Parallel()
	reg := prometheus.NewRegistry()
	_, err := client.New(client.Config{Target: "127.0.0.1:1", Token: "t", Registerer: reg})
	require.NoError(t, err)
	_, err = client.New(client.Config{Target: "127.0.0.1:1", Token: "t", Registerer: reg})
	require.Error(t, err, "one registry per client: a second registration is refused, not merged")
	mfs, err := reg.Gather()
	require.NoError(t, err)
	for _, mf := range mfs {
		require.True(t, strings.HasPrefix(mf.GetName(), "tally_client_"), mf.GetName())
	}
}

func TestLeaseNeverDrawsMoreThanItsHolds(t *testing.T) {
	t.Parallel()
	m := newMemLedger()
	m.credit("acme", 10*unit)
	c := newClient(t, m.serve(t), nil)
	var leases []*client.Lease
	for range 3 {
		l, err := c.Lease(t.Context(), client.LeaseConfig{OrgID: "acme", HoldAmount: 2 * unit, CaptureInterval: 5 * time.Millisecond, TTL: time.Minute})
		require.NoError(t, err)
		leases = append(leases, l)
	}
	_, held := m.bal("acme")
	require.Equal(t, 6*unit, held, "every lease holds its amount against available")
	var (
		mu    sync.Mutex
		drawn money.Nanos
		wg    sync.WaitGroup
	)
	// Draw until every lease is exhausted for good: more demand than the balance.
	for w := range 12 {
		wg.Go(func() {
			l := leases[w%3]
			misses := 0
			for i := 0; misses < 2000; i++ {
				if !l.Authorize(unit / 10) {
					misses++
					if misses%100 == 0 {
						_ = waitFor(t, time.Millisecond)
					}
					continue
				}
				if _, err := l.Debit(fmt.Sprintf("w%d-%d", w, i), unit/10); err != nil {
					require.ErrorIs(t, err, client.ErrLeaseExhausted)
					continue
				}
				mu.Lock()
				drawn += unit / 10
				mu.Unlock()
			}
		})
	}
	wg.Wait()
	for _, l := range leases {
		require.NoError(t, l.Close(t.Context()))
	}
	bal, held := m.bal("acme")
	require.Zero(t, held, "every hold was captured or released")
	require.Equal(t, 10*unit-drawn, bal, "captured = sum of local debits")
	require.GreaterOrEqual(t, bal, money.Nanos(0), "never more than the balance")
	var stats money.Nanos
	for _, l := range leases {
		s := l.Stats()
		require.Equal(t, s.Drawn, s.Captured)
		stats += s.Drawn
	}
	require.Equal(t, drawn, stats)
}

func TestLeaseConfigIsValidated(t *testing.T) {
	t.Parallel()
	m := newMemLedger()
	c := newClient(t, m.serve(t), nil)
	for name, cfg := range map[string]client.LeaseConfig{
		"no org":                    {HoldAmount: unit},
		"no amount":                 {OrgID: "acme"},
		"ttl too short":             {OrgID: "acme", HoldAmount: unit, TTL: time.Second},
		"refill above the hold":     {OrgID: "acme", HoldAmount: unit, RefillBelow: 2 * unit},
		"captures too rare for ttl": {OrgID: "acme", HoldAmount: unit, TTL: time.Minute, CaptureInterval: 30 * time.Second},
	} {
		t.Run(name, func(t *testing.T) {
			_, err := c.Lease(t.Context(), cfg)
			require.Error(t, err)
		})
	}
}

func TestLeaseDebitKeysReplay(t *testing.T) {
	t.Parallel()
	m := newMemLedger()
	m.credit("acme", 10*unit)
	c := newClient(t, m.serve(t), nil)
	l, err := c.Lease(t.Context(), client.LeaseConfig{OrgID: "acme", HoldAmount: unit, CaptureInterval: time.Hour, TTL: 24 * time.Hour})
	require.NoError(t, err)
	d, err := l.Debit("call-1", 100)
	require.NoError(t, err)
	require.False(t, d.Replayed)
	again, err := l.Debit("call-1", 100)
	require.NoError(t, err)
	require.True(t, again.Replayed)
	_, err = l.Debit("call-1", 200)
	require.ErrorIs(t, err, client.ErrKeyReused)
	require.Equal(t, unit-100, l.Remaining())
	require.NoError(t, c.Close(t.Context()), "the client's Close closes its leases")
	bal, held := m.bal("acme")
	require.Equal(t, 10*unit-100, bal)
	require.Zero(t, held)
}

func TestLeaseCaptureRetriedAfterALostReplyIsNotDoubled(t *testing.T) {
	t.Parallel()
	m := newMemLedger()
	m.credit("acme", 10*unit)
	c := newClient(t, m.serve(t), nil)
	l, err := c.Lease(t.Context(), client.LeaseConfig{OrgID: "acme", HoldAmount: unit, CaptureInterval: time.Hour, TTL: 24 * time.Hour})
	require.NoError(t, err)
	_, err = l.Debit("a", 300)
	require.NoError(t, err)
	m.loseCaptureReply.Store(2) // the capture commits, its reply is lost, twice
	require.NoError(t, l.Close(t.Context()))
	bal, held := m.bal("acme")
	require.Equal(t, 10*unit-300, bal, "the retried capture (same derived key) is replayed")
	require.Zero(t, held)
	require.Equal(t, money.Nanos(300), l.Stats().Captured)
}

func TestLeaseUnreachableLedgerLeavesTheHoldToItsTTL(t *testing.T) {
	t.Parallel()
	m := newMemLedger()
	m.credit("acme", 10*unit)
	c := newClient(t, m.serve(t), func(cfg *client.Config) { cfg.Retry.MaxAttempts = 2 })
	l, err := c.Lease(t.Context(), client.LeaseConfig{OrgID: "acme", HoldAmount: unit, CaptureInterval: time.Hour, TTL: 24 * time.Hour})
	require.NoError(t, err)
	_, err = l.Debit("a", 300)
	require.NoError(t, err)
	m.unaryFailN.Store(1000)
	err = l.Close(t.Context())
	require.ErrorContains(t, err, "not captured")
	_, held := m.bal("acme")
	require.Equal(t, unit, held, "the hold stays until its TTL: never spent twice, 300 nanos not charged")
	require.Zero(t, l.Stats().Captured)
}

func debitCallsOK(t *testing.T, reg *prometheus.Registry) float64 {
	t.Helper()
	mfs, err := reg.Gather()
	require.NoError(t, err)
	for _, mf := range mfs {
		if mf.GetName() != "tally_client_calls_total" {
			continue
		}
		for _, mt := range mf.GetMetric() {
			labels := map[string]string{}
			for _, lp := range mt.GetLabel() {
				labels[lp.GetName()] = lp.GetValue()
			}
			if labels["method"] == "Debit" && labels["code"] == "OK" {
				return mt.GetCounter().GetValue()
			}
		}
	}
	return 0
}

// waitFor pauses a polling loop for d, bounded by the test.
func waitFor(t testing.TB, d time.Duration) error {
	select {
	case <-t.Context().Done():
		return t.Context().Err()
	case <-time.After(d):
		return nil
	}
}
