package test

import (
	"testing"
	"time"

	"github.com/stretchr/testify/require"
	"google.golang.org/grpc/codes"
	"google.golang.org/protobuf/types/known/timestamppb"

	ledgerv1 "github.com/tallyhq/tally/pkg/gen/tally/ledger/v1"
	pricingv1 "github.com/tallyhq/tally/pkg/gen/tally/pricing/v1"
	"github.com/tallyhq/tally/pkg/money"
	"github.com/tallyhq/tally/services/ledger/ledgertest"
	"github.com/tallyhq/tally/services/pricing/pricingtest"
)

const llm = "llama-3.1-8b-instruct"

func usageDebit(org, key string, q map[string]string, at time.Time) *ledgerv1.DebitRequest {
	u := &ledgerv1.Usage{ModelId: llm, Quantities: q}
	if !at.IsZero() {
		u.OccurredAt = timestamppb.New(at)
	}
	return &ledgerv1.DebitRequest{OrgId: org, IdempotencyKey: key, Usage: u, Description: "chat completion"}
}

func setLLMPrice(t *testing.T, p pricingv1.PricingServiceClient, key string, in, out money.Nanos, from time.Time) *pricingv1.SetModelPriceResponse {
	t.Helper()
	req := &pricingv1.SetModelPriceRequest{
		ModelId: llm, DisplayName: "Llama 3.1 8B Instruct", Modality: pricingv1.Modality_MODALITY_LLM,
		Dimensions: []*pricingv1.PriceDimension{
			{Unit: "input_tokens", Price: usd(in), Per: 1_000_000},
			{Unit: "output_tokens", Price: usd(out), Per: 1_000_000},
		},
		Reason: "test price change", IdempotencyKey: key,
	}
	if !from.IsZero() {
		req.EffectiveFrom = timestamppb.New(from)
	}
	r, err := p.SetModelPrice(t.Context(), req)
	require.NoError(t, err)
	return r
}

func TestUsagePricedDebits(t *testing.T) {
	t.Parallel()
	p := pricingtest.Start(t, pricingtest.Options{Secret: ledgertest.Secret})
	l := ledgertest.Start(t, ledgertest.Options{PricingAddr: p.Addr})
	svc := l.Client(t, ledgertest.ServiceToken(t, "model-backend"))
	ops := l.Client(t, ledgertest.OpsToken(t))
	prices := p.Client(t, p.OpsToken(t))
	credit(t, ops, "u", 100*unit, "seed")
	q := map[string]string{"input_tokens": "1200", "output_tokens": "350"}

	// The ledger follows the price list; the first usage debit waits for it to arrive.
	var first *ledgerv1.DebitResponse
	require.Eventually(t, func() bool {
		var err error
		first, err = svc.Debit(t.Context(), usageDebit("u", "call-1", q, time.Time{}))
		return err == nil
	}, 10*time.Second, 50*time.Millisecond)

	// The charge equals the pricing service's quote, priced once and recorded with its version.
	quote, err := p.Client(t, "").Quote(t.Context(), &pricingv1.QuoteRequest{ModelId: llm, Usage: q})
	require.NoError(t, err)
	require.Equal(t, -nanos(t, quote.GetTotal()), nanos(t, first.GetTransaction().GetAmount()))
	pu := first.GetTransaction().GetPricedUsage()
	require.Equal(t, quote.GetVersionId(), pu.GetPriceVersionId())
	require.Len(t, pu.GetLines(), 2)
	list, err := ops.ListTransactions(t.Context(), &ledgerv1.ListTransactionsRequest{OrgId: "u", PageSize: 1})
	require.NoError(t, err)
	require.Equal(t, pu.GetPriceVersionId(), list.GetTransactions()[0].GetPricedUsage().GetPriceVersionId(), "ListTransactions explains the charge")

	// Retried: same transaction; same key with other usage: AlreadyExists.
	again, err := svc.Debit(t.Context(), usageDebit("u", "call-1", q, time.Time{}))
	require.NoError(t, err)
	require.Equal(t, first.GetTransactionId(), again.GetTransactionId())
	_, err = svc.Debit(t.Context(), usageDebit("u", "call-1", map[string]string{"input_tokens": "1"}, time.Time{}))
	requireCode(t, err, codes.AlreadyExists)

	requirePriceChangesApplied(t, svc, prices, quote.GetVersionId())

	// Authorize accepts a usage estimate.
	az, err := svc.Authorize(t.Context(), &ledgerv1.AuthorizeRequest{OrgId: "u", Usage: &ledgerv1.Usage{ModelId: llm, Quantities: map[string]string{"output_tokens": "1000000000"}}})
	require.NoError(t, err)
	require.Equal(t, 2000*unit, nanos(t, az.GetAmount()))
	require.False(t, az.GetAllowed())

	requireBadUsageRefused(t, svc, prices, q)
	requireBalanced(t, l.DatabaseURL)
}

// requirePriceChangesApplied changes the price list twice, now and for a time 3s ahead, and
// requires the ledger to charge the new prices from their time on, and the price of firstVersion
// for usage from before.
func requirePriceChangesApplied(t *testing.T, svc ledgerv1.LedgerServiceClient, prices pricingv1.PricingServiceClient, firstVersion string) {
	t.Helper()
	// A price change is picked up within a second; usage from before it keeps the old price.
	before := time.Now()
	// The change takes effect "now", stored to the microsecond: wait until that is after before.
	require.Eventually(t, func() bool { return time.Now().Truncate(time.Microsecond).After(before) }, time.Second, time.Millisecond)
	changed := setLLMPrice(t, prices, "raise", 3*unit, 6*unit, time.Time{})
	require.True(t, changed.GetPrice().GetEffectiveFrom().AsTime().After(before), "the change takes effect after before")
	var newCharge *ledgerv1.DebitResponse
	require.Eventually(t, func() bool {
		r, err := svc.Debit(t.Context(), usageDebit("u", "probe-"+time.Now().Format(time.RFC3339Nano), map[string]string{"input_tokens": "1000000"}, time.Time{}))
		require.NoError(t, err)
		newCharge = r
		return r.GetTransaction().GetPricedUsage().GetPriceVersionId() == changed.GetPrice().GetVersionId()
	}, 2*time.Second, 20*time.Millisecond, "a price change reaches the ledger within a second (2s allowed for a loaded CI machine)")
	require.Equal(t, -3*unit, nanos(t, newCharge.GetTransaction().GetAmount()))
	old, err := svc.Debit(t.Context(), usageDebit("u", "late-report", map[string]string{"input_tokens": "1000000"}, before))
	require.NoError(t, err)
	require.Equal(t, firstVersion, old.GetTransaction().GetPricedUsage().GetPriceVersionId(), "usage is priced at the time it happened")
	require.Equal(t, -180*money.Nanos(1_000_000), nanos(t, old.GetTransaction().GetAmount()))

	// A scheduled price takes effect at its time.
	at := time.Now().Add(3 * time.Second)
	scheduled := setLLMPrice(t, prices, "scheduled", 1*unit, 2*unit, at)
	require.Eventually(t, func() bool {
		r, err := svc.Debit(t.Context(), usageDebit("u", "sched-"+time.Now().Format(time.RFC3339Nano), map[string]string{"output_tokens": "1000000"}, time.Time{}))
		require.NoError(t, err)
		if r.GetTransaction().GetPricedUsage().GetPriceVersionId() != scheduled.GetPrice().GetVersionId() {
			require.True(t, time.Now().Before(at.Add(2*time.Second)), "the scheduled price must apply from its time")
			return false
		}
		require.False(t, r.GetTransaction().GetCreatedAt().AsTime().Before(at), "not before its time")
		require.Equal(t, -2*unit, nanos(t, r.GetTransaction().GetAmount()))
		return true
	}, 10*time.Second, 100*time.Millisecond)
}

// requireBadUsageRefused adds a model and requires usage debits it cannot price to be refused
// with their codes.
func requireBadUsageRefused(t *testing.T, svc ledgerv1.LedgerServiceClient, prices pricingv1.PricingServiceClient, q map[string]string) {
	t.Helper()
	newModel := &pricingv1.SetModelPriceRequest{
		ModelId: "brand-new-model", DisplayName: "New", Modality: pricingv1.Modality_MODALITY_LLM,
		Dimensions: []*pricingv1.PriceDimension{{Unit: "requests", Price: usd(unit), Per: 1}}, Reason: "launch", IdempotencyKey: "launch",
	}
	_, err := prices.SetModelPrice(t.Context(), newModel)
	require.NoError(t, err)
	// Wait until the ledger has the price list with the new model (Authorize changes nothing).
	require.Eventually(t, func() bool {
		_, err := svc.Authorize(t.Context(), &ledgerv1.AuthorizeRequest{OrgId: "u", Usage: &ledgerv1.Usage{ModelId: "brand-new-model", Quantities: map[string]string{"requests": "1"}}})
		return err == nil
	}, 10*time.Second, 20*time.Millisecond, "the new model reaches the ledger")

	bad := []struct {
		name string
		req  *ledgerv1.DebitRequest
		code codes.Code
	}{
		{"unknown model", &ledgerv1.DebitRequest{OrgId: "u", IdempotencyKey: "b1", Usage: &ledgerv1.Usage{ModelId: "nope", Quantities: q}}, codes.NotFound},
		{"unknown dimension", usageDebit("u", "b2", map[string]string{"pixels": "5"}, time.Time{}), codes.InvalidArgument},
		{"negative quantity", usageDebit("u", "b3", map[string]string{"input_tokens": "-5"}, time.Time{}), codes.InvalidArgument},
		{"absurd quantity", usageDebit("u", "b4", map[string]string{"input_tokens": "1e30"}, time.Time{}), codes.InvalidArgument},
		{"not a number", usageDebit("u", "b5", map[string]string{"input_tokens": "many"}, time.Time{}), codes.InvalidArgument},
		{"far in the future", usageDebit("u", "b6", q, time.Now().Add(48*time.Hour)), codes.InvalidArgument},
		{"no usage units", usageDebit("u", "b7", map[string]string{}, time.Time{}), codes.InvalidArgument},
		{"amount and usage", &ledgerv1.DebitRequest{OrgId: "u", IdempotencyKey: "b8", Amount: usd(1), Usage: &ledgerv1.Usage{ModelId: llm, Quantities: q}}, codes.InvalidArgument},
		{"no price in force then", &ledgerv1.DebitRequest{OrgId: "u", IdempotencyKey: "b9", Usage: &ledgerv1.Usage{ModelId: "brand-new-model", Quantities: map[string]string{"requests": "1"}, OccurredAt: timestamppb.New(time.Now().Add(-time.Hour))}}, codes.FailedPrecondition},
	}
	for _, tt := range bad {
		t.Run(tt.name, func(t *testing.T) {
			_, err := svc.Debit(t.Context(), tt.req)
			requireCode(t, err, tt.code)
		})
	}
}
