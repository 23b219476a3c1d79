package test

import (
	"context"
	"fmt"
	"math/big"
	"math/rand/v2"
	"testing"
	"time"

	"github.com/jackc/pgx/v5/pgxpool"
	"github.com/stretchr/testify/require"
	moneypb "google.golang.org/genproto/googleapis/type/money"
	"google.golang.org/grpc/codes"
	"google.golang.org/protobuf/types/known/durationpb"

	"github.com/tallyhq/tally/pkg/auth"
	ledgerv1 "github.com/tallyhq/tally/pkg/gen/tally/ledger/v1"
	"github.com/tallyhq/tally/pkg/money"
	"github.com/tallyhq/tally/pkg/testenv"
	"github.com/tallyhq/tally/services/ledger/ledgertest"
	"github.com/tallyhq/tally/services/pricing/pricingtest"
)

// usageKey is one (day, kind, id) cell of a usage summary.
type usageKey struct{ day, kind, id string }

type usageCell struct {
	amount *big.Int
	count  int64
}

func bigNanos(m *moneypb.Money) *big.Int {
	n := new(big.Int).Mul(big.NewInt(m.GetUnits()), big.NewInt(money.NanosPerUnit))
	return n.Add(n, big.NewInt(int64(m.GetNanos())))
}

// expectedUsage is the usage of org computed directly from its postings, with the classification
// written again in SQL: the org's side of every debit and capture since from, per UTC day.
func expectedUsage(t *testing.T, pool *pgxpool.Pool, org string, from string) map[usageKey]usageCell {
	t.Helper()
	rows, err := pool.Query(t.Context(), `SELECT to_char((t.created_at AT TIME ZONE 'UTC')::date, 'YYYY-MM-DD'),
  CASE WHEN coalesce(t.pricing->>'model_id', '') <> '' OR coalesce(t.metadata->>'model_id', '') <> '' THEN 'model'
       WHEN coalesce(t.metadata->>'instance_type', '') <> '' THEN 'instance' ELSE 'other' END AS kind,
  coalesce(nullif(t.pricing->>'model_id', ''), nullif(t.metadata->>'model_id', ''), nullif(t.metadata->>'instance_type', ''), 'other') AS id,
  (-sum(p.amount))::text, count(*)
FROM ledger.transactions t
JOIN ledger.postings p ON p.transaction_id = t.id
JOIN ledger.accounts a ON a.id = p.account_id AND a.kind = 'org'
WHERE t.org_id = $1 AND t.kind IN ('debit', 'capture') AND (t.created_at AT TIME ZONE 'UTC')::date >= $2::text::date
GROUP BY 1, 2, 3`, org, from)
	require.NoError(t, err)
	defer rows.Close()
	out := map[usageKey]usageCell{}
	for rows.Next() {
		var k usageKey
		var amount string
		var c usageCell
		require.NoError(t, rows.Scan(&k.day, &k.kind, &k.id, &amount, &c.count))
		var ok bool
		c.amount, ok = new(big.Int).SetString(amount, 10)
		require.True(t, ok)
		out[k] = c
	}
	require.NoError(t, rows.Err())
	return out
}

// requireSummaryMatches checks a summary against the postings: every cell, every day's total
// and every item's total, with every day of the window present, oldest first.
func requireSummaryMatches(t *testing.T, pool *pgxpool.Pool, s *ledgerv1.GetUsageSummaryResponse, days int) {
	t.Helper()
	require.Len(t, s.GetDays(), days, "every day of the window is present")
	today := time.Now().UTC()
	require.Equal(t, today.Format("2006-01-02"), s.GetTo())
	require.Equal(t, today.AddDate(0, 0, -(days-1)).Format("2006-01-02"), s.GetFrom())
	want := expectedUsage(t, pool, s.GetOrgId(), s.GetFrom())
	got := map[usageKey]usageCell{}
	totals := map[usageKey]usageCell{}
	for i, d := range s.GetDays() {
		require.Equal(t, today.AddDate(0, 0, -(days-1)+i).Format("2006-01-02"), d.GetDay(), "consecutive days")
		dayTotal := new(big.Int)
		for _, it := range d.GetItems() {
			k := usageKey{d.GetDay(), it.GetKind(), it.GetId()}
			require.NotContains(t, got, k, "one item per kind and id per day")
			require.Equal(t, s.GetCurrencyCode(), it.GetAmount().GetCurrencyCode())
			got[k] = usageCell{bigNanos(it.GetAmount()), it.GetCount()}
			dayTotal.Add(dayTotal, bigNanos(it.GetAmount()))
			tk := usageKey{"", it.GetKind(), it.GetId()}
			tot := totals[tk]
			if tot.amount == nil {
				tot.amount = new(big.Int)
			}
			tot.amount.Add(tot.amount, bigNanos(it.GetAmount()))
			tot.count += it.GetCount()
			totals[tk] = tot
		}
		require.Zero(t, dayTotal.Cmp(bigNanos(d.GetTotal())), "total of %s", d.GetDay())
	}
	require.Equal(t, len(want), len(got), "cells: want %v, got %v", want, got)
	for k, w := range want {
		g, ok := got[k]
		require.True(t, ok, "missing %v", k)
		require.Zero(t, w.amount.Cmp(g.amount), "%v: want %s nanos, got %s", k, w.amount, g.amount)
		require.Equal(t, w.count, g.count, "%v", k)
	}
	require.Len(t, s.GetTotals(), len(totals))
	for _, it := range s.GetTotals() {
		tot := totals[usageKey{"", it.GetKind(), it.GetId()}]
		require.Zero(t, tot.amount.Cmp(bigNanos(it.GetAmount())), "total of %s %s", it.GetKind(), it.GetId())
		require.Equal(t, tot.count, it.GetCount())
	}
}

// waitUsageCounted waits until the usage follower has counted every committed event.
func waitUsageCounted(t *testing.T, pool *pgxpool.Pool) {
	t.Helper()
	require.Eventually(t, func() bool {
		var counted, newest int64
		err := pool.QueryRow(t.Context(), `SELECT (SELECT last_seq FROM ledger.usage_cursor), (SELECT coalesce(max(seq), 0) FROM ledger.events)`).Scan(&counted, &newest)
		return err == nil && counted == newest
	}, 30*time.Second, 5*time.Millisecond, "the usage follower never caught up with the outbox")
}

// usageWriter issues random writes of every kind to org: usage (model, instance, priced, other,
// captures) and what is not usage (credits, refunds and adjustments, releases, zero captures).
type usageWriter struct {
	t       *testing.T
	rng     *rand.Rand
	org     string
	svc     ledgerv1.LedgerServiceClient // a model backend
	rentals ledgerv1.LedgerServiceClient // the instances-metering service (rental: keys)
	ops     ledgerv1.LedgerServiceClient
	n       int
}

func (w *usageWriter) amount() money.Nanos {
	if w.rng.IntN(10) == 0 {
		return money.Nanos(w.rng.Int64N(int64(5*unit))) + 1
	}
	return money.Nanos(w.rng.Int64N(10_000_000)) + 1
}

func (w *usageWriter) key(prefix string) string {
	w.n++
	return fmt.Sprintf("%s-%d", prefix, w.n)
}

func (w *usageWriter) write(priced bool) {
	t, ctx := w.t, w.t.Context()
	debit := func(meta map[string]string) {
		_, err := w.svc.Debit(ctx, &ledgerv1.DebitRequest{OrgId: w.org, Amount: usd(w.amount()), IdempotencyKey: w.key("d"), Description: "call", Metadata: meta})
		require.NoError(t, err)
	}
	models, instances := []string{"gpt-x", "gpt-y", "whisper"}, []string{"a100", "h100"}
	switch op := w.rng.IntN(10); op {
	case 0, 1:
		debit(map[string]string{"model_id": models[w.rng.IntN(len(models))], "call": "1"})
	case 2:
		// As instances-metering charges a rental period.
		w.n++
		_, err := w.rentals.Debit(ctx, &ledgerv1.DebitRequest{
			OrgId: w.org, Amount: usd(w.amount()), IdempotencyKey: fmt.Sprintf("rental:i-%d:%d", w.n, 0), RequireFunds: true,
			Description: "instance period", Metadata: map[string]string{"instance_id": fmt.Sprintf("i-%d", w.n), "instance_type": instances[w.rng.IntN(len(instances))], "period": "0"},
		})
		require.NoError(t, err)
	case 3:
		debit(nil)
	case 4:
		if !priced {
			debit(map[string]string{"model_id": llm})
			return
		}
		_, err := w.svc.Debit(ctx, usageDebit(w.org, w.key("u"), map[string]string{"input_tokens": fmt.Sprint(w.rng.IntN(5000) + 1), "output_tokens": fmt.Sprint(w.rng.IntN(900))}, time.Time{}))
		require.NoError(t, err)
	case 5, 6:
		// A streaming call: a hold, captured at some amount (zero: no charge), or released.
		hold, err := w.svc.Reserve(ctx, &ledgerv1.ReserveRequest{OrgId: w.org, Amount: usd(20_000_000), IdempotencyKey: w.key("r"), Ttl: durationpb.New(time.Hour)})
		require.NoError(t, err)
		var meta map[string]string
		if w.rng.IntN(2) == 0 {
			meta = map[string]string{"model_id": models[w.rng.IntN(len(models))]}
		}
		switch w.rng.IntN(4) {
		case 0:
			_, err = w.svc.Release(ctx, &ledgerv1.ReleaseRequest{HoldId: hold.GetHold().GetId()})
		case 1:
			_, err = w.svc.Capture(ctx, &ledgerv1.CaptureRequest{HoldId: hold.GetHold().GetId(), Amount: usd(0), IdempotencyKey: w.key("c")})
		default:
			_, err = w.svc.Capture(ctx, &ledgerv1.CaptureRequest{HoldId: hold.GetHold().GetId(), Amount: usd(w.amount()), IdempotencyKey: w.key("c"), Metadata: meta})
		}
		require.NoError(t, err)
	case 7:
		_, err := w.ops.Credit(ctx, &ledgerv1.CreditRequest{OrgId: w.org, Amount: usd(w.amount()), IdempotencyKey: w.key("cr"), Reason: "top-up"})
		require.NoError(t, err)
	case 8:
		// A refund takes credits back with a negative adjustment: not usage.
		_, err := w.ops.Adjust(ctx, &ledgerv1.AdjustRequest{OrgId: w.org, Amount: usd(-w.amount()), IdempotencyKey: w.key("adj"), Reason: "refund"})
		require.NoError(t, err)
	default:
		_, err := w.ops.Adjust(ctx, &ledgerv1.AdjustRequest{OrgId: w.org, Amount: usd(w.amount()), IdempotencyKey: w.key("adj"), Reason: "goodwill"})
		require.NoError(t, err)
	}
}

func summary(t *testing.T, c ledgerv1.LedgerServiceClient, org string, days int32) *ledgerv1.GetUsageSummaryResponse {
	t.Helper()
	s, err := c.GetUsageSummary(t.Context(), &ledgerv1.GetUsageSummaryRequest{OrgId: org, Days: days})
	require.NoError(t, err)
	return s
}

// TestUsageSummary writes random debits, captures and non-usage changes through two replicas
// (two usage followers racing for the cursor) and checks the summary against a direct sum over
// the postings: after the writes, after a rebuild from the first event over 40 days of history
// (the backfill of a first start), after a failing follower transaction is retried (the page is
// counted again, not twice), and after a replica restarts.
func TestUsageSummary(t *testing.T) {
	t.Parallel()
	seed := uint64(time.Now().UnixNano())
	t.Logf("seed %d", seed)
	rng := rand.New(rand.NewPCG(seed, 1))
	p := pricingtest.Start(t, pricingtest.Options{Secret: ledgertest.Secret})
	prices := p.Client(t, p.OpsToken(t))
	setLLMPrice(t, prices, "usage-price", 150_000_000, 600_000_000, time.Time{})
	dbURL, redisURL := testenv.PostgresURL(t), testenv.RedisURL(t)
	a := ledgertest.Start(t, ledgertest.Options{DatabaseURL: dbURL, RedisURL: redisURL, PricingAddr: p.Addr})
	b := ledgertest.Start(t, ledgertest.Options{DatabaseURL: dbURL, RedisURL: redisURL, PricingAddr: p.Addr})
	pool, err := pgxpool.New(t.Context(), dbURL)
	require.NoError(t, err)
	t.Cleanup(pool.Close)

	opsA := a.Client(t, ledgertest.OpsToken(t))
	credit(t, opsA, "u", 1_000_000*unit, "seed")
	credit(t, opsA, "neighbour", 1_000_000*unit, "seed")
	svcA := a.Client(t, ledgertest.ServiceToken(t, "model-backend"))
	waitPriceList(t, svcA)
	writers := func(l *ledgertest.Ledger, org string) *usageWriter {
		return &usageWriter{t: t, rng: rng, org: org, svc: l.Client(t, ledgertest.ServiceToken(t, "model-backend")),
			rentals: l.Client(t, ledgertest.ServiceToken(t, "instances-metering")), ops: l.Client(t, ledgertest.OpsToken(t))}
	}
	wa, wb, wn := writers(a, "u"), writers(b, "u"), writers(a, "neighbour")
	wb.n = 1_000_000 // distinct keys
	for i := range 300 {
		switch i % 3 {
		case 0:
			wa.write(true)
		case 1:
			wb.write(true)
		default:
			wn.write(true)
		}
	}
	member := a.Client(t, ledgertest.Token(t, auth.Claims{Subject: "m", OrgID: "u", Roles: []auth.Role{auth.RoleMember}}))
	waitUsageCounted(t, pool)
	s := summary(t, member, "u", 0)
	requireSummaryMatches(t, pool, s, 30)
	require.NotEmpty(t, s.GetTotals())
	require.Equal(t, "USD", s.GetCurrencyCode())

	// History over 40 days, rebuilt from the first event as a first start does.
	_, err = pool.Exec(t.Context(), `UPDATE ledger.transactions SET created_at = created_at - make_interval(days => (abs(hashtext(id::text)) % 41)::int)
WHERE kind IN ('debit', 'capture')`)
	require.NoError(t, err)
	rebuild(t, pool)
	waitUsageCounted(t, pool)
	requireSummaryMatches(t, pool, summary(t, member, "u", 0), 30)
	requireSummaryMatches(t, pool, summary(t, member, "u", 90), 90)
	requireSummaryMatches(t, pool, summary(t, member, "u", 7), 7)
	requireSummaryMatches(t, pool, summary(t, opsA, "neighbour", 1), 1)

	// A follower transaction that fails after its upserts (here: moving the cursor) is rolled
	// back whole and retried: its page is counted once when it finally commits.
	failUsagePagesOnce(t, pool, wa)
	waitUsageCounted(t, pool)
	requireSummaryMatches(t, pool, summary(t, member, "u", 90), 90)

	// A replica restarts and resumes from the stored cursor, beside the other.
	b.Stop(t)
	for range 30 {
		wa.write(true)
	}
	c := ledgertest.Start(t, ledgertest.Options{DatabaseURL: dbURL, RedisURL: redisURL, PricingAddr: p.Addr})
	waitPriceList(t, c.Client(t, ledgertest.ServiceToken(t, "model-backend")))
	wc := writers(c, "u")
	wc.n = 2_000_000
	for range 30 {
		wc.write(true)
	}
	waitUsageCounted(t, pool)
	requireSummaryMatches(t, pool, summary(t, c.Client(t, ledgertest.OpsToken(t)), "u", 90), 90)
	requireBalanced(t, dbURL)
}

// waitPriceList waits until the ledger svc calls follows the price list: until then it refuses
// usage debits with Unavailable.
func waitPriceList(t *testing.T, svc ledgerv1.LedgerServiceClient) {
	t.Helper()
	require.Eventually(t, func() bool {
		_, err := svc.Authorize(t.Context(), &ledgerv1.AuthorizeRequest{OrgId: "u", Usage: &ledgerv1.Usage{ModelId: llm, Quantities: map[string]string{"input_tokens": "1"}}})
		return err == nil
	}, 10*time.Second, 20*time.Millisecond, "the ledger follows the price list")
}

// failUsagePagesOnce makes every follower transaction of pool's ledger fail after its upserts
// (on moving the cursor) while w writes 30 more changes, checks that nothing of the failed pages
// was kept, and lets the followers succeed again.
func failUsagePagesOnce(t *testing.T, pool *pgxpool.Pool, w *usageWriter) {
	t.Helper()
	before := expectedUsage(t, pool, "u", "2000-01-01")
	_, err := pool.Exec(t.Context(), `CREATE SEQUENCE ledger.usage_failures;
CREATE FUNCTION ledger.fail_usage() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN PERFORM nextval('ledger.usage_failures'); RAISE EXCEPTION 'injected failure'; END $$;
CREATE TRIGGER fail_usage BEFORE UPDATE ON ledger.usage_cursor FOR EACH ROW EXECUTE FUNCTION ledger.fail_usage()`)
	require.NoError(t, err)
	for range 30 {
		w.write(true)
	}
	require.Eventually(t, func() bool { // sequences are not transactional: the attempts show
		var n int64
		return pool.QueryRow(t.Context(), `SELECT CASE WHEN is_called THEN last_value ELSE 0 END FROM ledger.usage_failures`).Scan(&n) == nil && n >= 5
	}, 30*time.Second, 5*time.Millisecond, "the follower never retried")
	var stored string
	require.NoError(t, pool.QueryRow(t.Context(), `SELECT coalesce(sum(amount), 0)::text FROM ledger.usage_daily WHERE org_id = 'u'`).Scan(&stored))
	storedBefore := new(big.Int)
	for _, c := range before {
		storedBefore.Add(storedBefore, c.amount)
	}
	require.Equal(t, storedBefore.String(), stored, "nothing of the failed pages was kept")
	_, err = pool.Exec(t.Context(), `DROP TRIGGER fail_usage ON ledger.usage_cursor`)
	require.NoError(t, err)
}

// rebuild empties the usage table and rewinds its cursor to the first event, under the cursor's
// lock so that no follower is midway.
func rebuild(t *testing.T, pool *pgxpool.Pool) {
	t.Helper()
	ctx, cancel := context.WithTimeout(t.Context(), 10*time.Second)
	defer cancel()
	tx, err := pool.Begin(ctx)
	require.NoError(t, err)
	defer func() { _ = tx.Rollback(ctx) }()
	_, err = tx.Exec(ctx, `SELECT last_seq FROM ledger.usage_cursor WHERE id = 1 FOR UPDATE`)
	require.NoError(t, err)
	_, err = tx.Exec(ctx, `DELETE FROM ledger.usage_daily`)
	require.NoError(t, err)
	_, err = tx.Exec(ctx, `UPDATE ledger.usage_cursor SET last_seq = 0 WHERE id = 1`)
	require.NoError(t, err)
	require.NoError(t, tx.Commit(ctx))
}

// TestUsageSummaryWindow checks the window: every day present and zero without usage, the
// default of 30 days, and days outside 1 to 90 refused; and who may read it.
func TestUsageSummaryWindow(t *testing.T) {
	t.Parallel()
	l := ledgertest.Start(t, ledgertest.Options{})
	member := l.Client(t, ledgertest.Token(t, auth.Claims{Subject: "m", OrgID: "quiet", Roles: []auth.Role{auth.RoleMember}}))
	for _, days := range []int32{0, 1, 30, 90} {
		s := summary(t, member, "quiet", days)
		want := int(days)
		if days == 0 {
			want = 30
		}
		require.Len(t, s.GetDays(), want)
		require.Equal(t, "quiet", s.GetOrgId())
		require.Equal(t, "USD", s.GetCurrencyCode(), "an organization never charged has the default currency")
		for _, d := range s.GetDays() {
			require.Zero(t, bigNanos(d.GetTotal()).Sign())
			require.Equal(t, "USD", d.GetTotal().GetCurrencyCode())
			require.Empty(t, d.GetItems())
		}
		require.Empty(t, s.GetTotals())
	}
	for _, days := range []int32{-1, 91, 1 << 30} {
		_, err := member.GetUsageSummary(t.Context(), &ledgerv1.GetUsageSummaryRequest{OrgId: "quiet", Days: days})
		requireCode(t, err, codes.InvalidArgument)
	}
	_, err := member.GetUsageSummary(t.Context(), &ledgerv1.GetUsageSummaryRequest{OrgId: "other"})
	requireCode(t, err, codes.PermissionDenied)
	_, err = l.Client(t, ledgertest.OpsToken(t)).GetUsageSummary(t.Context(), &ledgerv1.GetUsageSummaryRequest{OrgId: "bad org"})
	requireCode(t, err, codes.InvalidArgument)
}

// TestListTransactionsKind pages through an organization's history filtered by kind: the full
// history of the Usage page (credits, debits, captures, refunds and adjustments) one kind at a
// time, each with its kind and its description or reason.
func TestListTransactionsKind(t *testing.T) {
	t.Parallel()
	l := ledgertest.Start(t, ledgertest.Options{})
	ops := l.Client(t, ledgertest.OpsToken(t))
	svc := l.Client(t, ledgertest.ServiceToken(t, "model-backend"))
	member := l.Client(t, ledgertest.Token(t, auth.Claims{Subject: "m", OrgID: "hist", Roles: []auth.Role{auth.RoleMember}}))
	want := map[ledgerv1.TransactionKind][]string{}
	for i := range 5 {
		c := credit(t, ops, "hist", 10*unit, fmt.Sprintf("cr-%d", i))
		want[ledgerv1.TransactionKind_TRANSACTION_KIND_CREDIT] = append(want[ledgerv1.TransactionKind_TRANSACTION_KIND_CREDIT], c.GetTransaction().GetId())
		for j := range 3 {
			d, err := svc.Debit(t.Context(), &ledgerv1.DebitRequest{OrgId: "hist", Amount: usd(unit / 10), IdempotencyKey: fmt.Sprintf("d-%d-%d", i, j), Description: "chat completion"})
			require.NoError(t, err)
			want[ledgerv1.TransactionKind_TRANSACTION_KIND_DEBIT] = append(want[ledgerv1.TransactionKind_TRANSACTION_KIND_DEBIT], d.GetTransactionId())
		}
		a, err := ops.Adjust(t.Context(), &ledgerv1.AdjustRequest{OrgId: "hist", Amount: usd(-unit), IdempotencyKey: fmt.Sprintf("refund-%d", i), Reason: "refund"})
		require.NoError(t, err)
		want[ledgerv1.TransactionKind_TRANSACTION_KIND_ADJUSTMENT] = append(want[ledgerv1.TransactionKind_TRANSACTION_KIND_ADJUSTMENT], a.GetTransaction().GetId())
		h, err := svc.Reserve(t.Context(), &ledgerv1.ReserveRequest{OrgId: "hist", Amount: usd(unit), IdempotencyKey: fmt.Sprintf("r-%d", i), Description: "stream"})
		require.NoError(t, err)
		c2, err := svc.Capture(t.Context(), &ledgerv1.CaptureRequest{HoldId: h.GetHold().GetId(), Amount: usd(unit / 2), IdempotencyKey: fmt.Sprintf("c-%d", i), Description: "stream done"})
		require.NoError(t, err)
		want[ledgerv1.TransactionKind_TRANSACTION_KIND_CAPTURE] = append(want[ledgerv1.TransactionKind_TRANSACTION_KIND_CAPTURE], c2.GetTransaction().GetId())
	}
	list := func(kind ledgerv1.TransactionKind, pageSize int32) []*ledgerv1.Transaction {
		var out []*ledgerv1.Transaction
		token := ""
		for {
			resp, err := member.ListTransactions(t.Context(), &ledgerv1.ListTransactionsRequest{OrgId: "hist", PageSize: pageSize, PageToken: token, Kind: kind})
			require.NoError(t, err)
			out = append(out, resp.GetTransactions()...)
			if token = resp.GetNextPageToken(); token == "" {
				return out
			}
		}
	}
	all := 0
	for kind, ids := range want {
		t.Run(kind.String(), func(t *testing.T) {
			got := list(kind, 2)
			require.Len(t, got, len(ids))
			for i, tx := range got {
				require.Equal(t, kind, tx.GetKind())
				require.Equal(t, ids[len(ids)-1-i], tx.GetId(), "newest first")
				switch kind {
				case ledgerv1.TransactionKind_TRANSACTION_KIND_DEBIT, ledgerv1.TransactionKind_TRANSACTION_KIND_CAPTURE:
					require.NotEmpty(t, tx.GetDescription())
				default:
					require.NotEmpty(t, tx.GetReason())
				}
			}
		})
		all += len(ids)
	}
	require.Len(t, list(ledgerv1.TransactionKind_TRANSACTION_KIND_UNSPECIFIED, 7), all, "no kind: the whole history")
	require.Empty(t, list(ledgerv1.TransactionKind_TRANSACTION_KIND_EXPIRY, 10))
	_, err := member.ListTransactions(t.Context(), &ledgerv1.ListTransactionsRequest{OrgId: "hist", Kind: ledgerv1.TransactionKind(99)})
	requireCode(t, err, codes.InvalidArgument)
}
