package test

import (
	"context"
	"fmt"
	"log/slog"
	"math"
	"math/big"
	"math/rand/v2"
	"sync"
	"testing"
	"time"

	"github.com/jackc/pgx/v5/pgxpool"
	"github.com/stretchr/testify/require"
	moneypb "google.golang.org/genproto/googleapis/type/money"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"

	"github.com/tallyhq/tally/pkg/auth"
	ledgerv1 "github.com/tallyhq/tally/pkg/gen/tally/ledger/v1"
	"github.com/tallyhq/tally/pkg/money"
	"github.com/tallyhq/tally/services/ledger/ledgertest"
	"github.com/tallyhq/tally/services/pricing/pricingtest"
)

// logRecorder is a slog.Handler keeping the messages logged at warn and above.
type logRecorder struct {
	mu   sync.Mutex
	msgs []string
}

func (r *logRecorder) Enabled(_ context.Context, l slog.Level) bool { return l >= slog.LevelWarn }

func (r *logRecorder) Handle(_ context.Context, rec slog.Record) error {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.msgs = append(r.msgs, rec.Message)
	return nil
}

func (r *logRecorder) WithAttrs([]slog.Attr) slog.Handler { return r }
func (r *logRecorder) WithGroup(string) slog.Handler      { return r }

func (r *logRecorder) messages() []string {
	r.mu.Lock()
	defer r.mu.Unlock()
	return append([]string(nil), r.msgs...)
}

func openPool(t *testing.T, dbURL string) *pgxpool.Pool {
	t.Helper()
	pool, err := pgxpool.New(t.Context(), dbURL)
	require.NoError(t, err)
	t.Cleanup(pool.Close)
	return pool
}

func dbCtx(t *testing.T) context.Context {
	ctx, cancel := context.WithTimeout(t.Context(), 10*time.Second)
	t.Cleanup(cancel)
	return ctx
}

// requireNothingWritten checks that no transaction and no idempotency key exist for key.
func requireNothingWritten(t *testing.T, pool *pgxpool.Pool, key string) {
	t.Helper()
	var n int
	require.NoError(t, pool.QueryRow(dbCtx(t), `SELECT (SELECT count(*) FROM ledger.transactions WHERE idempotency_key = $1)
    + (SELECT count(*) FROM ledger.idempotency_keys WHERE key = $1)`, key).Scan(&n))
	require.Zero(t, n, "the refused request with key %q wrote something", key)
}

// platformBalance reads a platform row's exact balance.
func platformBalance(t *testing.T, pool *pgxpool.Pool, name string) *big.Int {
	t.Helper()
	var s string
	require.NoError(t, pool.QueryRow(dbCtx(t), `SELECT balance::text FROM ledger.accounts WHERE name = $1`, name).Scan(&s))
	n, ok := new(big.Int).SetString(s, 10)
	require.True(t, ok, s)
	return n
}

var (
	int64MaxMoney = &moneypb.Money{CurrencyCode: "USD", Units: 9_223_372_036, Nanos: 854_775_807}
	int64MinMoney = &moneypb.Money{CurrencyCode: "USD", Units: -9_223_372_036, Nanos: -854_775_808}
)

// extremeAmount draws an amount near the edges: around the per-request maximum, the int64 limits of
// nanos, zero, negative, and amounts that cannot be represented at all.
func extremeAmount(r *rand.Rand, max money.Nanos) *moneypb.Money {
	switch r.IntN(12) {
	case 0:
		return usd(1)
	case 1:
		return usd(max - 1)
	case 2, 3:
		return usd(max)
	case 4:
		return usd(max + 1)
	case 5:
		return int64MaxMoney
	case 6:
		return int64MinMoney
	case 7:
		return usd(-1)
	case 8:
		return usd(-max)
	case 9:
		return usd(0)
	case 10:
		return usd(money.Nanos(r.Int64N(int64(max))) + 1)
	default:
		return &moneypb.Money{CurrencyCode: "USD", Units: math.MaxInt64}
	}
}

// attempt is one request of the property test and what became of it.
type attempt struct {
	op     string
	org    string
	key    string
	amount *moneypb.Money
	holdID string
	caller int

	err   error
	delta money.Nanos // change of the balance when accepted
	held  money.Nanos // change of the held amount when accepted
	hold  *ledgerv1.Hold
	tx    *ledgerv1.Transaction
	// overflowed is set when an admissible amount was refused because it would overflow.
	overflowed bool
}

// mustRefuse says why the request has to be refused whatever the state, or "" when it may be
// accepted; n is its amount when it has one.
func (a *attempt) mustRefuse(max money.Nanos) (money.Nanos, string) {
	v, err := money.FromProto(a.amount)
	if err != nil {
		return 0, "unrepresentable"
	}
	n := v.Nanos
	switch {
	case (a.op == "credit" || a.op == "debit" || a.op == "reserve") && n <= 0:
		return n, "not positive"
	case a.op == "adjust" && n == 0:
		return n, "zero"
	case (a.op == "capture" || a.op == "authorize") && n < 0:
		return n, "negative"
	case n > max || n < -max:
		return n, "limit"
	}
	return n, ""
}

func (a *attempt) run(ctx context.Context, c ledgerv1.LedgerServiceClient) {
	switch a.op {
	case "credit":
		r, err := c.Credit(ctx, &ledgerv1.CreditRequest{OrgId: a.org, Amount: a.amount, IdempotencyKey: a.key, Reason: "property"})
		a.err, a.tx = err, r.GetTransaction()
	case "debit":
		r, err := c.Debit(ctx, &ledgerv1.DebitRequest{OrgId: a.org, Amount: a.amount, IdempotencyKey: a.key})
		a.err, a.tx = err, r.GetTransaction()
	case "adjust":
		r, err := c.Adjust(ctx, &ledgerv1.AdjustRequest{OrgId: a.org, Amount: a.amount, IdempotencyKey: a.key, Reason: "property"})
		a.err, a.tx = err, r.GetTransaction()
	case "reserve":
		r, err := c.Reserve(ctx, &ledgerv1.ReserveRequest{OrgId: a.org, Amount: a.amount, IdempotencyKey: a.key})
		a.err, a.hold = err, r.GetHold()
	case "capture":
		r, err := c.Capture(ctx, &ledgerv1.CaptureRequest{HoldId: a.holdID, Amount: a.amount, IdempotencyKey: a.key})
		a.err, a.hold, a.tx = err, r.GetHold(), r.GetTransaction()
	case "authorize":
		_, a.err = c.Authorize(ctx, &ledgerv1.AuthorizeRequest{OrgId: a.org, Amount: a.amount})
	}
}

// TestAttack_Overflow_ExtremeAmountsFromConcurrentCallers is the property test of class 1: rounds
// of concurrent requests from several callers (so they share group-commit batches) with random
// extreme amounts. Whatever the order: a request that must be refused is InvalidArgument and
// writes nothing; an accepted one is committed exactly; a request refused because it would
// overflow its organization's balance is InvalidArgument and writes nothing; nothing is ever
// Internal and no batch fails; postings sum to zero and every stored balance, platform accounts
// included, equals the sum of its postings, though the platform account ends past int64.
func TestAttack_Overflow_ExtremeAmountsFromConcurrentCallers(t *testing.T) {
	t.Parallel()
	// A maximum of 4e18 nanos lets a few requests reach an organization's int64 limit.
	const max = money.Nanos(4_000_000_000 * money.NanosPerUnit)
	logs := &logRecorder{}
	l := ledgertest.Start(t, ledgertest.Options{MaxRequestAmount: max, PlatformShards: 1, Logger: slog.New(logs)})
	ops := l.Client(t, ledgertest.OpsToken(t))
	callers := []ledgerv1.LedgerServiceClient{ops}
	for i := range 3 {
		callers = append(callers, l.Client(t, ledgertest.Token(t, auth.Claims{Subject: fmt.Sprintf("backend-%d", i), Roles: []auth.Role{auth.RoleService}})))
	}
	pool := openPool(t, l.DatabaseURL)
	orgs := []string{"x0", "x1", "x2", "x3"}
	r := rand.New(rand.NewPCG(11, 4))

	var all []*attempt
	var openHolds []*ledgerv1.Hold
	const rounds, perRound = 10, 40
	for round := range rounds {
		batch := overflowRound(r, round, perRound, orgs, max, &openHolds)
		start := make(chan struct{})
		var wg sync.WaitGroup
		for _, a := range batch {
			wg.Go(func() {
				<-start
				a.run(t.Context(), callers[a.caller])
			})
		}
		close(start)
		wg.Wait()
		for _, a := range batch {
			if h := checkOverflowAttempt(t, a, max); h != nil {
				openHolds = append(openHolds, h)
			}
		}
		all = append(all, batch...)
	}

	requireOverflowTotals(t, ops, pool, orgs, all)

	// Debits of the maximum from fresh organizations take the revenue account past int64, and
	// ordinary debits keep working after that.
	for i := range 3 {
		_, err := callers[1].Debit(t.Context(), &ledgerv1.DebitRequest{OrgId: fmt.Sprintf("fresh-%d", i), Amount: usd(max), IdempotencyKey: "big"})
		require.NoError(t, err)
	}
	_, err := callers[2].Debit(t.Context(), &ledgerv1.DebitRequest{OrgId: "x0", Amount: usd(1), IdempotencyKey: "ordinary"})
	require.NoError(t, err)
	revenue := platformBalance(t, pool, "platform:revenue:USD:00")
	require.Positive(t, revenue.Cmp(big.NewInt(math.MaxInt64)), "revenue %s is past int64", revenue)

	requireBalanced(t, l.DatabaseURL)
	for _, m := range logs.messages() {
		require.NotContains(t, m, "ledger batch failed", "a batch failed as a whole")
		require.NotContains(t, m, "rpc failed", "an Internal error (or an outage) was returned")
	}
}

// overflowRound draws perRound random attempts of round on orgs, amounts up to max; a capture
// takes the last of openHolds.
func overflowRound(r *rand.Rand, round, perRound int, orgs []string, max money.Nanos, openHolds *[]*ledgerv1.Hold) []*attempt {
	var batch []*attempt
	for i := range perRound {
		a := &attempt{org: orgs[r.IntN(len(orgs))], key: fmt.Sprintf("p-%d-%d", round, i), amount: extremeAmount(r, max)}
		switch k := r.IntN(12); {
		case k < 3:
			a.op, a.caller = "credit", 0
		case k < 6:
			a.op, a.caller = "debit", 1+r.IntN(3)
		case k < 8:
			a.op, a.caller = "adjust", 0
		case k < 10:
			a.op, a.caller = "reserve", 1+r.IntN(3)
		case k < 11 && len(*openHolds) > 0:
			h := (*openHolds)[len(*openHolds)-1]
			*openHolds = (*openHolds)[:len(*openHolds)-1]
			a.op, a.caller, a.holdID, a.org = "capture", 1+r.IntN(3), h.GetId(), h.GetOrgId()
		default:
			a.op, a.caller = "authorize", 1+r.IntN(3)
		}
		batch = append(batch, a)
	}
	return batch
}

// checkOverflowAttempt checks the answer to a, records what it changed, and returns the hold it
// placed, if any.
func checkOverflowAttempt(t *testing.T, a *attempt, max money.Nanos) (newHold *ledgerv1.Hold) {
	t.Helper()
	n, why := a.mustRefuse(max)
	code := status.Code(a.err)
	require.NotEqual(t, codes.Internal.String(), code.String(), "%s %s: %v", a.op, a.key, a.err)
	if why != "" {
		requireCode(t, a.err, codes.InvalidArgument)
		if why == "limit" {
			require.ErrorContains(t, a.err, "exceeds the per-request maximum of 4000000000 (TALLY_MAX_REQUEST_AMOUNT)")
		}
		return nil
	}
	switch {
	case code == codes.OK:
	case code == codes.InvalidArgument:
		require.ErrorContains(t, a.err, "beyond the int64 range", "%s %s: only an overflow refuses an admissible amount", a.op, a.key)
		require.NotEqual(t, "authorize", a.op)
		a.overflowed = true
		return nil
	case code == codes.FailedPrecondition && a.op == "reserve":
		return nil // not enough available credits
	default:
		require.Fail(t, "unexpected refusal", "%s %s of %s: %v", a.op, a.key, n, a.err)
	}
	switch a.op {
	case "credit":
		a.delta = n
	case "debit":
		a.delta = -n
	case "adjust":
		a.delta = n
	case "reserve":
		a.held = n
		require.Equal(t, n, nanos(t, a.hold.GetAmount()))
		newHold = a.hold
	case "capture":
		a.delta = -n
		a.held = -nanos(t, a.hold.GetAmount())
		require.Equal(t, ledgerv1.HoldStatus_HOLD_STATUS_CAPTURED, a.hold.GetStatus())
	}
	if a.delta != 0 {
		require.Equal(t, a.delta, nanos(t, a.tx.GetAmount()), "%s %s committed exactly", a.op, a.key)
	}
	return newHold
}

// requireOverflowTotals requires the accepted attempts to add up to each organization's stored
// state, and the refused ones to have written nothing.
func requireOverflowTotals(t *testing.T, ops ledgerv1.LedgerServiceClient, pool *pgxpool.Pool, orgs []string, all []*attempt) {
	t.Helper()
	wantBalance, wantHeld, wantTxs := map[string]money.Nanos{}, map[string]money.Nanos{}, map[string]int{}
	kinds := map[string]int{}
	for _, a := range all {
		if a.err != nil {
			kinds[a.op+" refused"]++
			if a.overflowed {
				kinds["refused as an overflow"]++
			}
			if a.op != "authorize" {
				requireNothingWritten(t, pool, a.key)
			}
			continue
		}
		kinds[a.op+" accepted"]++
		wantBalance[a.org] += a.delta
		wantHeld[a.org] += a.held
		if a.delta != 0 {
			wantTxs[a.org]++
		}
	}
	t.Logf("outcomes: %v", kinds)
	for _, org := range orgs {
		b := balance(t, ops, org)
		require.Equal(t, wantBalance[org], nanos(t, b.GetBalance()), org)
		require.Equal(t, wantHeld[org], nanos(t, b.GetHeld()), org)
		var n int
		require.NoError(t, pool.QueryRow(dbCtx(t), `SELECT count(*) FROM ledger.transactions WHERE org_id = $1`, org).Scan(&n))
		require.Equal(t, wantTxs[org], n, org)
	}
	for _, k := range []string{"credit accepted", "debit accepted", "adjust accepted", "credit refused", "debit refused", "reserve accepted", "capture accepted", "refused as an overflow"} {
		require.Positive(t, kinds[k], "the random mix exercised %q", k)
	}
}

// TestAttack_Overflow_PlatformShardPastInt64 starts from platform rows whose balances are already
// beyond the int64 range (set directly in SQL, as a long history of accepted requests leaves
// them): ordinary credits and debits of every organization keep working, and the rows move by
// exactly the amounts posted.
func TestAttack_Overflow_PlatformShardPastInt64(t *testing.T) {
	t.Parallel()
	l := ledgertest.Start(t, ledgertest.Options{PlatformShards: 1})
	ops := l.Client(t, ledgertest.OpsToken(t))
	svc := l.Client(t, ledgertest.ServiceToken(t, "model-backend"))
	pool := openPool(t, l.DatabaseURL)
	credit(t, ops, "seed-org", 10*unit, "seed")
	_, err := svc.Debit(t.Context(), &ledgerv1.DebitRequest{OrgId: "seed-org", Amount: usd(unit), IdempotencyKey: "seed-debit"})
	require.NoError(t, err)

	const revenue, clearing = "platform:revenue:USD:00", "platform:payment_clearing:USD:00"
	offset, ok := new(big.Int).SetString("9223372036854775807000", 10) // a thousand times int64 max
	require.True(t, ok)
	_, err = pool.Exec(dbCtx(t), `UPDATE ledger.accounts SET balance = balance + $2::numeric WHERE name = $1`, revenue, offset.String())
	require.NoError(t, err)
	_, err = pool.Exec(dbCtx(t), `UPDATE ledger.accounts SET balance = balance - $2::numeric WHERE name = $1`, clearing, offset.String())
	require.NoError(t, err)
	revenueBefore, clearingBefore := platformBalance(t, pool, revenue), platformBalance(t, pool, clearing)

	var wg sync.WaitGroup
	var mu sync.Mutex
	debited, credited := new(big.Int), new(big.Int)
	for i := range 40 {
		org := fmt.Sprintf("org-%d", i%8)
		amt := money.Nanos(i+1) * unit
		if i%10 == 0 {
			amt = money.DefaultMaxRequestAmount
		}
		wg.Go(func() {
			if i%2 == 0 {
				_, err := ops.Credit(t.Context(), &ledgerv1.CreditRequest{OrgId: org, Amount: usd(amt), IdempotencyKey: fmt.Sprintf("c-%d", i), Reason: "top-up"})
				require.NoError(t, err)
				mu.Lock()
				credited.Add(credited, big.NewInt(int64(amt)))
				mu.Unlock()
				return
			}
			_, err := svc.Debit(t.Context(), &ledgerv1.DebitRequest{OrgId: org, Amount: usd(amt), IdempotencyKey: fmt.Sprintf("d-%d", i)})
			require.NoError(t, err)
			mu.Lock()
			debited.Add(debited, big.NewInt(int64(amt)))
			mu.Unlock()
		})
	}
	wg.Wait()
	require.Equal(t, new(big.Int).Add(revenueBefore, debited).String(), platformBalance(t, pool, revenue).String())
	require.Equal(t, new(big.Int).Sub(clearingBefore, credited).String(), platformBalance(t, pool, clearing).String())

	// Every account but the two moved by hand is the sum of its postings; those two differ from
	// it by exactly the offset.
	rows, err := pool.Query(dbCtx(t), `SELECT a.name, (a.balance - coalesce(sum(p.amount), 0))::text FROM ledger.accounts a
LEFT JOIN ledger.postings p ON p.account_id = a.id GROUP BY a.id HAVING a.balance <> coalesce(sum(p.amount), 0)`)
	require.NoError(t, err)
	diffs := map[string]string{}
	for rows.Next() {
		var name, d string
		require.NoError(t, rows.Scan(&name, &d))
		diffs[name] = d
	}
	require.NoError(t, rows.Err())
	require.Equal(t, map[string]string{revenue: offset.String(), clearing: "-" + offset.String()}, diffs)
}

// TestMaxRequestAmount sends one amount above TALLY_MAX_REQUEST_AMOUNT (the default, 1000000) to
// every amount-bearing RPC: each is InvalidArgument naming the limit and writes nothing, while
// the maximum itself is accepted.
func TestMaxRequestAmount(t *testing.T) {
	t.Parallel()
	p := pricingtest.Start(t, pricingtest.Options{Secret: ledgertest.Secret})
	l := ledgertest.Start(t, ledgertest.Options{PricingAddr: p.Addr})
	ops := l.Client(t, ledgertest.OpsToken(t))
	svc := l.Client(t, ledgertest.ServiceToken(t, "model-backend"))
	pool := openPool(t, l.DatabaseURL)
	const max = money.DefaultMaxRequestAmount
	over := usd(max + 1)

	// The maximum itself is fine.
	credit(t, ops, "lim", max, "seed")
	hold, err := svc.Reserve(t.Context(), &ledgerv1.ReserveRequest{OrgId: "lim", Amount: usd(unit), IdempotencyKey: "hold"})
	require.NoError(t, err)
	// A price of the maximum per million tokens: two million tokens cost twice the maximum.
	changed := setLLMPrice(t, p.Client(t, p.OpsToken(t)), "max-price", max, max, time.Time{})
	million := &ledgerv1.Usage{ModelId: llm, Quantities: map[string]string{"input_tokens": "1000000"}}
	twoMillion := &ledgerv1.Usage{ModelId: llm, Quantities: map[string]string{"input_tokens": "2000000"}}
	require.Eventually(t, func() bool {
		az, err := svc.Authorize(t.Context(), &ledgerv1.AuthorizeRequest{OrgId: "lim", Usage: million})
		return err == nil && nanos(t, az.GetAmount()) == max
	}, 10*time.Second, 20*time.Millisecond, "the ledger follows the price change %s", changed.GetPrice().GetVersionId())
	before := balance(t, ops, "lim")

	for _, tt := range overLimitCalls(t, ops, svc, hold.GetHold().GetId(), over, twoMillion) {
		t.Run(tt.name, func(t *testing.T) {
			err := tt.call(tt.key)
			requireCode(t, err, codes.InvalidArgument)
			require.ErrorContains(t, err, tt.msg+" the per-request maximum of 1000000 (TALLY_MAX_REQUEST_AMOUNT)")
			if tt.key != "" {
				requireNothingWritten(t, pool, tt.key)
			}
		})
	}
	after := balance(t, ops, "lim")
	require.Equal(t, nanos(t, before.GetBalance()), nanos(t, after.GetBalance()))
	require.Equal(t, nanos(t, before.GetHeld()), nanos(t, after.GetHeld()), "the hold is still active")
	require.Equal(t, before.GetVersion(), after.GetVersion())

	// A usage debit priced at exactly the maximum is accepted.
	d, err := svc.Debit(t.Context(), &ledgerv1.DebitRequest{OrgId: "lim", Usage: million, IdempotencyKey: "k-usage-max"})
	require.NoError(t, err)
	require.Equal(t, -max, nanos(t, d.GetTransaction().GetAmount()))
	require.Equal(t, changed.GetPrice().GetVersionId(), d.GetTransaction().GetPricedUsage().GetPriceVersionId())
	requireBalanced(t, l.DatabaseURL)
}

// limitCall is a call with an amount above the per-request maximum, with its idempotency key
// ("" for a read) and the start of its refusal's text.
type limitCall struct {
	name string
	key  string
	call func(key string) error
	msg  string
}

// overLimitCalls are the calls of TestMaxRequestAmount: over is above the maximum, twoMillion a
// usage priced above it, holdID an active hold.
func overLimitCalls(t *testing.T, ops, svc ledgerv1.LedgerServiceClient, holdID string, over *moneypb.Money, twoMillion *ledgerv1.Usage) []limitCall {
	return []limitCall{
		{"credit", "k-credit", func(k string) error {
			_, err := ops.Credit(t.Context(), &ledgerv1.CreditRequest{OrgId: "lim", Amount: over, IdempotencyKey: k})
			return err
		}, "amount exceeds"},
		{"credit of int64 max nanos", "k-credit-max", func(k string) error {
			_, err := ops.Credit(t.Context(), &ledgerv1.CreditRequest{OrgId: "lim", Amount: int64MaxMoney, IdempotencyKey: k})
			return err
		}, "amount exceeds"},
		{"debit", "k-debit", func(k string) error {
			_, err := svc.Debit(t.Context(), &ledgerv1.DebitRequest{OrgId: "lim", Amount: over, IdempotencyKey: k})
			return err
		}, "amount exceeds"},
		{"usage debit priced above the maximum", "k-usage", func(k string) error {
			_, err := svc.Debit(t.Context(), &ledgerv1.DebitRequest{OrgId: "lim", Usage: twoMillion, IdempotencyKey: k})
			return err
		}, "the priced usage total exceeds"},
		{"positive adjustment", "k-adjust-up", func(k string) error {
			_, err := ops.Adjust(t.Context(), &ledgerv1.AdjustRequest{OrgId: "lim", Amount: over, Reason: "r", IdempotencyKey: k})
			return err
		}, "amount exceeds"},
		{"negative adjustment", "k-adjust-down", func(k string) error {
			_, err := ops.Adjust(t.Context(), &ledgerv1.AdjustRequest{OrgId: "lim", Amount: usd(-money.DefaultMaxRequestAmount - 1), Reason: "r", IdempotencyKey: k})
			return err
		}, "amount exceeds"},
		{"adjustment of int64 min nanos", "k-adjust-min", func(k string) error {
			_, err := ops.Adjust(t.Context(), &ledgerv1.AdjustRequest{OrgId: "lim", Amount: int64MinMoney, Reason: "r", IdempotencyKey: k})
			return err
		}, "amount exceeds"},
		{"reserve", "k-reserve", func(k string) error {
			_, err := svc.Reserve(t.Context(), &ledgerv1.ReserveRequest{OrgId: "lim", Amount: over, IdempotencyKey: k})
			return err
		}, "amount exceeds"},
		{"capture", "k-capture", func(k string) error {
			_, err := svc.Capture(t.Context(), &ledgerv1.CaptureRequest{HoldId: holdID, Amount: over, IdempotencyKey: k})
			return err
		}, "amount exceeds"},
		{"authorize", "", func(string) error {
			_, err := svc.Authorize(t.Context(), &ledgerv1.AuthorizeRequest{OrgId: "lim", Amount: over})
			return err
		}, "amount exceeds"},
		{"authorize a usage estimate", "", func(string) error {
			_, err := svc.Authorize(t.Context(), &ledgerv1.AuthorizeRequest{OrgId: "lim", Usage: twoMillion})
			return err
		}, "the priced usage estimate exceeds"},
	}
}
