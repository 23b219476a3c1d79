package test

import (
	"sync"
	"testing"

	"github.com/stretchr/testify/require"
	"google.golang.org/grpc/codes"

	"github.com/tallyhq/tally/pkg/auth"
	ledgerv1 "github.com/tallyhq/tally/pkg/gen/tally/ledger/v1"
	"github.com/tallyhq/tally/services/ledger/ledgertest"
)

// TestAttack_PreSpentDerivedKey is class 4's attack on derived keys: a caller that takes a key
// tally derives itself (a rental period, a Checkout Session, a refund, the ledger's own) first,
// with a 1-nano charge, is refused InvalidArgument and writes nothing, so the owner's own request
// with that key still charges or credits in full.
func TestAttack_PreSpentDerivedKey(t *testing.T) {
	t.Parallel()
	l := ledgertest.Start(t, ledgertest.Options{})
	pool := openPool(t, l.DatabaseURL)
	ops := l.Client(t, ledgertest.OpsToken(t))
	backend := l.Client(t, ledgertest.Token(t, auth.Claims{Subject: "model-backend-1", Roles: []auth.Role{auth.RoleService}}))
	metering := l.Client(t, ledgertest.ServiceToken(t, "instances-metering"))
	payments := l.Client(t, ledgertest.ServiceToken(t, "payments"))
	// A token naming the service without the service role is not that service.
	posing := l.Client(t, ledgertest.Token(t, auth.Claims{Subject: "service:instances-metering", Roles: []auth.Role{auth.RoleOps}}))
	credit(t, ops, "acme", 100*unit, "seed")
	before := balance(t, ops, "acme")

	debit := func(c ledgerv1.LedgerServiceClient, key string) error {
		_, err := c.Debit(t.Context(), &ledgerv1.DebitRequest{OrgId: "acme", Amount: usd(1), IdempotencyKey: key, Description: "1 nano"})
		return err
	}
	refused := []struct {
		name   string
		key    string
		prefix string
		call   func(key string) error
	}{
		{"backend pre-spends a rental period", "rental:i-1:3", "rental:", func(k string) error { return debit(backend, k) }},
		{"backend holds a rental period", "rental:i-1:4", "rental:", func(k string) error {
			_, err := backend.Reserve(t.Context(), &ledgerv1.ReserveRequest{OrgId: "acme", Amount: usd(1), IdempotencyKey: k})
			return err
		}},
		{"payments pre-spends a rental period", "rental:i-1:5", "rental:", func(k string) error { return debit(payments, k) }},
		{"ops pre-spends a rental period", "rental:i-1:6", "rental:", func(k string) error { return debit(ops, k) }},
		{"an ops token named like instances-metering", "rental:i-1:7", "rental:", func(k string) error { return debit(posing, k) }},
		{"backend takes a checkout session", "checkout:cs_test_1", "checkout:", func(k string) error { return debit(backend, k) }},
		{"ops credits under a checkout session", "checkout:cs_test_2", "checkout:", func(k string) error {
			_, err := ops.Credit(t.Context(), &ledgerv1.CreditRequest{OrgId: "acme", Amount: usd(1), IdempotencyKey: k})
			return err
		}},
		{"ops adjusts under a refund", "refund:re_1", "refund:", func(k string) error {
			_, err := ops.Adjust(t.Context(), &ledgerv1.AdjustRequest{OrgId: "acme", Amount: usd(-1), Reason: "r", IdempotencyKey: k})
			return err
		}},
		{"instances-metering takes a refund", "refund:re_2", "refund:", func(k string) error { return debit(metering, k) }},
		{"payments takes the ledger's expiry", "expiry:2027-03-01T00:00:00Z", "expiry:", func(k string) error {
			_, err := payments.Credit(t.Context(), &ledgerv1.CreditRequest{OrgId: "acme", Amount: usd(1), IdempotencyKey: k})
			return err
		}},
		{"instances-metering takes the ledger's tx namespace", "tx:0190a0b0-0000-7000-8000-000000000000", "tx:", func(k string) error { return debit(metering, k) }},
	}
	for _, tt := range refused {
		t.Run(tt.name, func(t *testing.T) {
			err := tt.call(tt.key)
			requireCode(t, err, codes.InvalidArgument)
			require.ErrorContains(t, err, `idempotency_key: the prefix "`+tt.prefix+`" is reserved for tally`)
			requireNothingWritten(t, pool, tt.key)
		})
	}
	after := balance(t, ops, "acme")
	require.Equal(t, before.GetVersion(), after.GetVersion(), "no refused request changed the account")

	// The owners' requests with those keys are charged and credited in full.
	period, err := metering.Debit(t.Context(), &ledgerv1.DebitRequest{OrgId: "acme", Amount: usd(3 * unit), IdempotencyKey: "rental:i-1:3", Description: "gpu rental period 3"})
	require.NoError(t, err)
	require.Equal(t, -3*unit, nanos(t, period.GetTransaction().GetAmount()))
	again, err := metering.Debit(t.Context(), &ledgerv1.DebitRequest{OrgId: "acme", Amount: usd(3 * unit), IdempotencyKey: "rental:i-1:3", Description: "gpu rental period 3"})
	require.NoError(t, err)
	require.Equal(t, period.GetTransactionId(), again.GetTransactionId(), "a retry of the owner is a replay")
	_, err = payments.Credit(t.Context(), &ledgerv1.CreditRequest{OrgId: "acme", Amount: usd(25 * unit), IdempotencyKey: "checkout:cs_test_2", Reference: "cs_test_2"})
	require.NoError(t, err)
	_, err = payments.Adjust(t.Context(), &ledgerv1.AdjustRequest{OrgId: "acme", Amount: usd(-5 * unit), Reason: "refund re_1", IdempotencyKey: "refund:re_1"})
	require.NoError(t, err)
	require.Equal(t, nanos(t, before.GetBalance())+17*unit, nanos(t, balance(t, ops, "acme").GetBalance()))
	requireBalanced(t, l.DatabaseURL)
}

// TestAdjustIsIdempotent covers class 4 for Adjust: a key is required; a retry with the same key
// and parameters returns the original transaction however concurrently it arrives; the same key
// with another amount or reason is AlreadyExists and writes nothing.
func TestAdjustIsIdempotent(t *testing.T) {
	t.Parallel()
	l := ledgertest.Start(t, ledgertest.Options{})
	ops := l.Client(t, ledgertest.OpsToken(t))
	credit(t, ops, "adj", 10*unit, "seed")
	before := balance(t, ops, "adj")

	_, err := ops.Adjust(t.Context(), &ledgerv1.AdjustRequest{OrgId: "adj", Amount: usd(unit), Reason: "goodwill"})
	requireCode(t, err, codes.InvalidArgument)
	require.ErrorContains(t, err, "idempotency_key is required")
	require.Equal(t, before.GetVersion(), balance(t, ops, "adj").GetVersion(), "the refused adjustment wrote nothing")

	req := &ledgerv1.AdjustRequest{OrgId: "adj", Amount: usd(-2 * unit), Reason: "double charge on 2026-11-30", IdempotencyKey: "fix-1"}
	const n = 20
	ids := make([]string, n)
	var wg sync.WaitGroup
	for i := range n {
		wg.Go(func() {
			r, err := ops.Adjust(t.Context(), req)
			require.NoError(t, err)
			ids[i] = r.GetTransaction().GetId()
		})
	}
	wg.Wait()
	for _, id := range ids {
		require.Equal(t, ids[0], id, "every retry returns the original transaction")
	}
	require.Equal(t, 8*unit, nanos(t, balance(t, ops, "adj").GetBalance()))

	conflicts := []struct {
		name string
		req  *ledgerv1.AdjustRequest
	}{
		{"other amount", &ledgerv1.AdjustRequest{OrgId: "adj", Amount: usd(-3 * unit), Reason: req.GetReason(), IdempotencyKey: "fix-1"}},
		{"other sign", &ledgerv1.AdjustRequest{OrgId: "adj", Amount: usd(2 * unit), Reason: req.GetReason(), IdempotencyKey: "fix-1"}},
		{"other reason", &ledgerv1.AdjustRequest{OrgId: "adj", Amount: usd(-2 * unit), Reason: "another reason", IdempotencyKey: "fix-1"}},
	}
	for _, tt := range conflicts {
		t.Run(tt.name, func(t *testing.T) {
			_, err := ops.Adjust(t.Context(), tt.req)
			requireCode(t, err, codes.AlreadyExists)
		})
	}
	// The key is scoped to the organization and to Adjust: a debit with it is a conflict too.
	_, err = ops.Debit(t.Context(), &ledgerv1.DebitRequest{OrgId: "adj", Amount: usd(2 * unit), IdempotencyKey: "fix-1"})
	requireCode(t, err, codes.AlreadyExists)
	list, err := ops.ListTransactions(t.Context(), &ledgerv1.ListTransactionsRequest{OrgId: "adj"})
	require.NoError(t, err)
	require.Len(t, list.GetTransactions(), 2, "the seed credit and one adjustment")
	require.Equal(t, 8*unit, nanos(t, balance(t, ops, "adj").GetBalance()))
	requireBalanced(t, l.DatabaseURL)
}
