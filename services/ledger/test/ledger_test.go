package test

import (
	"fmt"
	"math/rand/v2"
	"sync"
	"testing"

	"github.com/stretchr/testify/require"
	"google.golang.org/grpc/codes"

	"github.com/tallyhq/tally/pkg/auth"
	ledgerv1 "github.com/tallyhq/tally/pkg/gen/tally/ledger/v1"
	"github.com/tallyhq/tally/pkg/money"
	"github.com/tallyhq/tally/pkg/testenv"
	"github.com/tallyhq/tally/services/ledger/ledgertest"
)

const unit = money.Nanos(money.NanosPerUnit)

func TestCreditDebitAndBalance(t *testing.T) {
	t.Parallel()
	l := ledgertest.Start(t, ledgertest.Options{})
	ops := l.Client(t, ledgertest.OpsToken(t))
	svc := l.Client(t, ledgertest.ServiceToken(t, "model-backend"))

	// An unknown organization has a zero balance, not an error.
	b := balance(t, ops, "acme")
	require.Zero(t, nanos(t, b.GetBalance()))
	require.Equal(t, "USD", b.GetBalance().GetCurrencyCode())
	require.Nil(t, b.GetExpiresAt())

	cr := credit(t, ops, "acme", 10*unit, "topup-1")
	require.Equal(t, 10*unit, nanos(t, cr.GetBalance()))
	require.NotNil(t, cr.GetExpiresAt())

	d, err := svc.Debit(t.Context(), &ledgerv1.DebitRequest{OrgId: "acme", Amount: usd(2500), IdempotencyKey: "call-1", Description: "1 token", Metadata: map[string]string{"model": "llm-1"}})
	require.NoError(t, err)
	require.Equal(t, 10*unit-2500, nanos(t, d.GetBalance()))
	require.NotEmpty(t, d.GetTransactionId())

	// A debit for usage that already happened may go below zero; require_funds refuses instead.
	_, err = svc.Debit(t.Context(), &ledgerv1.DebitRequest{OrgId: "acme", Amount: usd(20 * unit), IdempotencyKey: "call-2", RequireFunds: true})
	requireCode(t, err, codes.FailedPrecondition)
	d2, err := svc.Debit(t.Context(), &ledgerv1.DebitRequest{OrgId: "acme", Amount: usd(20 * unit), IdempotencyKey: "call-2"})
	require.NoError(t, err)
	require.Equal(t, -10*unit-2500, nanos(t, d2.GetBalance()))

	adj, err := ops.Adjust(t.Context(), &ledgerv1.AdjustRequest{OrgId: "acme", Amount: usd(15 * unit), Reason: "goodwill after outage", IdempotencyKey: "goodwill-1"})
	require.NoError(t, err)
	require.Equal(t, 5*unit-2500, nanos(t, adj.GetBalance()))

	list, err := ops.ListTransactions(t.Context(), &ledgerv1.ListTransactionsRequest{OrgId: "acme", PageSize: 2})
	require.NoError(t, err)
	require.Len(t, list.GetTransactions(), 2)
	require.Equal(t, ledgerv1.TransactionKind_TRANSACTION_KIND_ADJUSTMENT, list.GetTransactions()[0].GetKind())
	require.Equal(t, "ops-1", list.GetTransactions()[0].GetActor())
	require.Equal(t, ledgerv1.TransactionKind_TRANSACTION_KIND_DEBIT, list.GetTransactions()[1].GetKind())
	require.NotEmpty(t, list.GetNextPageToken())
	rest, err := ops.ListTransactions(t.Context(), &ledgerv1.ListTransactionsRequest{OrgId: "acme", PageSize: 10, PageToken: list.GetNextPageToken()})
	require.NoError(t, err)
	require.Len(t, rest.GetTransactions(), 2)
	require.Equal(t, "1 token", rest.GetTransactions()[0].GetDescription())
	require.Equal(t, map[string]string{"model": "llm-1"}, rest.GetTransactions()[0].GetMetadata())
	require.Len(t, rest.GetTransactions()[0].GetPostings(), 2)
	require.Empty(t, rest.GetNextPageToken())
	requireBalanced(t, l.DatabaseURL)
}

func TestIdempotentRetriesUnderConcurrency(t *testing.T) {
	t.Parallel()
	l := ledgertest.Start(t, ledgertest.Options{})
	svc := l.Client(t, ledgertest.ServiceToken(t, "model-backend"))
	ops := l.Client(t, ledgertest.OpsToken(t))
	credit(t, ops, "org-idem", 100*unit, "seed")

	const n = 50
	ids := make([]string, n)
	var wg sync.WaitGroup
	for i := range n {
		wg.Go(func() {
			r, err := svc.Debit(t.Context(), &ledgerv1.DebitRequest{OrgId: "org-idem", Amount: usd(3 * unit), IdempotencyKey: "same-key", Description: "call"})
			if err == nil {
				ids[i] = r.GetTransactionId()
			}
		})
	}
	wg.Wait()
	for _, id := range ids {
		require.Equal(t, ids[0], id, "every retry returns the original transaction")
	}
	require.NotEmpty(t, ids[0])
	require.Equal(t, 97*unit, nanos(t, balance(t, ops, "org-idem").GetBalance()))

	// Same key, other parameters: AlreadyExists, nothing written.
	_, err := svc.Debit(t.Context(), &ledgerv1.DebitRequest{OrgId: "org-idem", Amount: usd(4 * unit), IdempotencyKey: "same-key", Description: "call"})
	requireCode(t, err, codes.AlreadyExists)
	// Keys are scoped per organization.
	_, err = svc.Debit(t.Context(), &ledgerv1.DebitRequest{OrgId: "other-org", Amount: usd(4 * unit), IdempotencyKey: "same-key"})
	require.NoError(t, err)
	// A credit retried concurrently credits once too.
	var cwg sync.WaitGroup
	for range 20 {
		cwg.Go(func() {
			_, _ = ops.Credit(t.Context(), &ledgerv1.CreditRequest{OrgId: "org-idem", Amount: usd(unit), IdempotencyKey: "cs_test_1"})
		})
	}
	cwg.Wait()
	require.Equal(t, 98*unit, nanos(t, balance(t, ops, "org-idem").GetBalance()))
	list, err := ops.ListTransactions(t.Context(), &ledgerv1.ListTransactionsRequest{OrgId: "org-idem", PageSize: 100})
	require.NoError(t, err)
	require.Len(t, list.GetTransactions(), 3)
	requireBalanced(t, l.DatabaseURL)
}

func TestThousandConcurrentDebitsOnOneOrg(t *testing.T) {
	t.Parallel()
	l := ledgertest.Start(t, ledgertest.Options{})
	svc := l.Client(t, ledgertest.ServiceToken(t, "model-backend"))
	ops := l.Client(t, ledgertest.OpsToken(t))
	credit(t, ops, "hot", 1000*unit, "seed")

	const n = 1000
	var wg sync.WaitGroup
	errs := make(chan error, n)
	sem := make(chan struct{}, 100)
	for i := range n {
		sem <- struct{}{}
		wg.Go(func() {
			defer func() { <-sem }()
			_, err := svc.Debit(t.Context(), &ledgerv1.DebitRequest{OrgId: "hot", Amount: usd(money.Nanos(i + 1)), IdempotencyKey: fmt.Sprintf("d-%d", i)})
			errs <- err
		})
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		require.NoError(t, err)
	}
	want := 1000*unit - money.Nanos(n*(n+1)/2)
	require.Equal(t, want, nanos(t, balance(t, ops, "hot").GetBalance()))
	requireBalanced(t, l.DatabaseURL)
}

func TestRandomMixKeepsBalanceEqualToPostings(t *testing.T) {
	t.Parallel()
	l := ledgertest.Start(t, ledgertest.Options{})
	ops := l.Client(t, ledgertest.OpsToken(t))
	r := rand.New(rand.NewPCG(1, 2))
	orgs := []string{"o1", "o2", "o3"}
	expected := map[string]money.Nanos{}
	var wg sync.WaitGroup
	var mu sync.Mutex
	for i := range 300 {
		org := orgs[r.IntN(len(orgs))]
		amt := money.Nanos(r.Int64N(int64(5*unit)) + 1)
		op := r.IntN(4)
		wg.Go(func() {
			var err error
			var delta money.Nanos
			switch op {
			case 0:
				_, err = ops.Credit(t.Context(), &ledgerv1.CreditRequest{OrgId: org, Amount: usd(amt), IdempotencyKey: fmt.Sprintf("c-%d", i)})
				delta = amt
			case 1, 2:
				_, err = ops.Debit(t.Context(), &ledgerv1.DebitRequest{OrgId: org, Amount: usd(amt), IdempotencyKey: fmt.Sprintf("d-%d", i)})
				delta = -amt
			case 3:
				_, err = ops.Adjust(t.Context(), &ledgerv1.AdjustRequest{OrgId: org, Amount: usd(-amt), Reason: "correction", IdempotencyKey: fmt.Sprintf("a-%d", i)})
				delta = -amt
			}
			require.NoError(t, err)
			mu.Lock()
			expected[org] += delta
			mu.Unlock()
		})
	}
	wg.Wait()
	for _, org := range orgs {
		require.Equal(t, expected[org], nanos(t, balance(t, ops, org).GetBalance()), org)
	}
	requireBalanced(t, l.DatabaseURL)
}

func TestBadInput(t *testing.T) {
	t.Parallel()
	l := ledgertest.Start(t, ledgertest.Options{})
	ops := l.Client(t, ledgertest.OpsToken(t))
	credit(t, ops, "bad", 5*unit, "seed")
	tests := []struct {
		name string
		call func() error
		code codes.Code
	}{
		{"missing amount", func() error {
			_, err := ops.Debit(t.Context(), &ledgerv1.DebitRequest{OrgId: "bad", IdempotencyKey: "k"})
			return err
		}, codes.InvalidArgument},
		{"zero amount", func() error {
			_, err := ops.Debit(t.Context(), &ledgerv1.DebitRequest{OrgId: "bad", Amount: usd(0), IdempotencyKey: "k"})
			return err
		}, codes.InvalidArgument},
		{"negative amount", func() error {
			_, err := ops.Credit(t.Context(), &ledgerv1.CreditRequest{OrgId: "bad", Amount: usd(-5), IdempotencyKey: "k"})
			return err
		}, codes.InvalidArgument},
		{"amount over int64 nanos", func() error {
			_, err := ops.Credit(t.Context(), &ledgerv1.CreditRequest{OrgId: "bad", Amount: &moneyOverflow, IdempotencyKey: "k"})
			return err
		}, codes.InvalidArgument},
		{"unknown currency", func() error {
			m := usd(unit)
			m.CurrencyCode = "ABC"
			_, err := ops.Credit(t.Context(), &ledgerv1.CreditRequest{OrgId: "bad", Amount: m, IdempotencyKey: "k"})
			return err
		}, codes.InvalidArgument},
		{"other currency than the account", func() error {
			m := usd(unit)
			m.CurrencyCode = "EUR"
			_, err := ops.Credit(t.Context(), &ledgerv1.CreditRequest{OrgId: "bad", Amount: m, IdempotencyKey: "k"})
			return err
		}, codes.InvalidArgument},
		{"empty idempotency key", func() error {
			_, err := ops.Debit(t.Context(), &ledgerv1.DebitRequest{OrgId: "bad", Amount: usd(1)})
			return err
		}, codes.InvalidArgument},
		{"empty org", func() error {
			_, err := ops.Debit(t.Context(), &ledgerv1.DebitRequest{Amount: usd(1), IdempotencyKey: "k"})
			return err
		}, codes.InvalidArgument},
		{"adjust without reason", func() error {
			_, err := ops.Adjust(t.Context(), &ledgerv1.AdjustRequest{OrgId: "bad", Amount: usd(1), IdempotencyKey: "k"})
			return err
		}, codes.InvalidArgument},
		{"nanos out of range", func() error {
			_, err := ops.Debit(t.Context(), &ledgerv1.DebitRequest{OrgId: "bad", Amount: &moneyBadNanos, IdempotencyKey: "k"})
			return err
		}, codes.InvalidArgument},
		{"bad page token", func() error {
			_, err := ops.ListTransactions(t.Context(), &ledgerv1.ListTransactionsRequest{OrgId: "bad", PageToken: "zzz"})
			return err
		}, codes.InvalidArgument},
		{"capture unknown hold", func() error {
			_, err := ops.Capture(t.Context(), &ledgerv1.CaptureRequest{HoldId: "0190a0b0-0000-7000-8000-000000000000", Amount: usd(1), IdempotencyKey: "k"})
			return err
		}, codes.NotFound},
		{"hold id not a uuid", func() error {
			_, err := ops.Release(t.Context(), &ledgerv1.ReleaseRequest{HoldId: "nope"})
			return err
		}, codes.InvalidArgument},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			requireCode(t, tt.call(), tt.code)
		})
	}
	// Nothing was written by any of them.
	b := balance(t, ops, "bad")
	require.Equal(t, 5*unit, nanos(t, b.GetBalance()))
	list, err := ops.ListTransactions(t.Context(), &ledgerv1.ListTransactionsRequest{OrgId: "bad"})
	require.NoError(t, err)
	require.Len(t, list.GetTransactions(), 1)
	_ = auth.RoleOps
}

// TestConcurrentFirstWritesOpenTheAccountOnce covers the first top-up of a new organization
// arriving twice at once (overlapping webhook deliveries): both succeed, one account exists.
func TestConcurrentFirstWritesOpenTheAccountOnce(t *testing.T) {
	t.Parallel()
	l := ledgertest.Start(t, ledgertest.Options{})
	ops := l.Client(t, ledgertest.OpsToken(t))
	for round := range 5 {
		org := fmt.Sprintf("new-%d", round)
		var wg sync.WaitGroup
		for i := range 20 {
			wg.Go(func() {
				_, err := ops.Credit(t.Context(), &ledgerv1.CreditRequest{OrgId: org, Amount: usd(unit), IdempotencyKey: fmt.Sprintf("k-%d", i%10)})
				require.NoError(t, err)
			})
		}
		wg.Wait()
		require.Equal(t, 10*unit, nanos(t, balance(t, ops, org).GetBalance()))
	}
	requireBalanced(t, l.DatabaseURL)
}

// TestPlatformAccountsCreatedConcurrently opens the sharded platform accounts of a currency from
// two replicas at once: every write succeeds whichever replica creates each shard.
func TestPlatformAccountsCreatedConcurrently(t *testing.T) {
	t.Parallel()
	db := testenv.PostgresURL(t)
	a := ledgertest.Start(t, ledgertest.Options{DatabaseURL: db})
	b := ledgertest.Start(t, ledgertest.Options{DatabaseURL: db})
	clients := []ledgerv1.LedgerServiceClient{a.Client(t, ledgertest.OpsToken(t)), b.Client(t, ledgertest.OpsToken(t))}
	var wg sync.WaitGroup
	for i := range 200 {
		wg.Go(func() {
			m := usd(unit)
			m.CurrencyCode = "EUR"
			_, err := clients[i%2].Credit(t.Context(), &ledgerv1.CreditRequest{OrgId: fmt.Sprintf("eu-%d", i), Amount: m, IdempotencyKey: "first"})
			require.NoError(t, err)
		})
	}
	wg.Wait()
	requireBalanced(t, db)
}
