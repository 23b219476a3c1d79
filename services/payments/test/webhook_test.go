package test

import (
	"sync"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
	"google.golang.org/grpc/codes"

	paymentsv1 "github.com/tallyhq/tally/pkg/gen/tally/payments/v1"
	"github.com/tallyhq/tally/pkg/money"
	"github.com/tallyhq/tally/services/payments/internal/app"
	"github.com/tallyhq/tally/services/payments/internal/payment"
	"github.com/tallyhq/tally/services/payments/internal/stripeevent"
)

func TestCheckoutRecordsPendingPaymentWithMember(t *testing.T) {
	t.Parallel()
	e := start(t, options{stripe: true})
	cs := e.checkout(t, "acme", 12*unit+340_000_000)
	require.Contains(t, cs.GetUrl(), "checkout.stripe.com")

	list, err := e.member(t, "acme", false).ListPayments(t.Context(), &paymentsv1.ListPaymentsRequest{OrgId: "acme"})
	require.NoError(t, err)
	require.Len(t, list.GetPayments(), 1)
	p := list.GetPayments()[0]
	require.Equal(t, cs.GetPaymentId(), p.GetId())
	require.Equal(t, paymentsv1.PaymentStatus_PAYMENT_STATUS_PENDING, p.GetStatus())
	require.Equal(t, 12*unit+340_000_000, nanos(t, p.GetAmount()))
	require.Equal(t, "USD", p.GetAmount().GetCurrencyCode())
	require.Equal(t, &paymentsv1.Member{Id: "user-acme", Name: "Ann acme", Email: "ann@acme.test"}, p.GetMember())
	require.Equal(t, cs.GetSessionId(), p.GetCheckoutSessionId())
	require.Empty(t, p.GetInvoiceNumber())
	require.False(t, p.GetTestMode())
}

func TestCheckoutValidatesAmount(t *testing.T) {
	t.Parallel()
	e := start(t, options{stripe: true})
	m := e.member(t, "acme", false)
	for _, tc := range []struct {
		name   string
		amount *paymentsv1.CreateCheckoutSessionRequest
	}{
		{"missing amount", &paymentsv1.CreateCheckoutSessionRequest{OrgId: "acme"}},
		{"below the minimum", &paymentsv1.CreateCheckoutSessionRequest{OrgId: "acme", Amount: usd(4 * unit)}},
		{"above the maximum", &paymentsv1.CreateCheckoutSessionRequest{OrgId: "acme", Amount: usd(10_001 * unit)}},
		{"not whole cents", &paymentsv1.CreateCheckoutSessionRequest{OrgId: "acme", Amount: usd(12*unit + 345_000_000)}},
		{"another currency than the organization's", &paymentsv1.CreateCheckoutSessionRequest{OrgId: "acme", Amount: money.ToProto(20*unit, "EUR")}},
		{"negative", &paymentsv1.CreateCheckoutSessionRequest{OrgId: "acme", Amount: usd(-20 * unit)}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			_, err := m.CreateCheckoutSession(t.Context(), tc.amount)
			requireCode(t, err, codes.InvalidArgument)
		})
	}
	// An empty currency means the organization's.
	resp, err := m.CreateCheckoutSession(t.Context(), &paymentsv1.CreateCheckoutSessionRequest{OrgId: "acme", Amount: money.ToProto(20*unit, "")})
	require.NoError(t, err)
	require.Equal(t, "USD", e.payment(t, "acme", resp.GetPaymentId()).GetAmount().GetCurrencyCode())
	// Nothing refused was recorded.
	list, err := m.ListPayments(t.Context(), &paymentsv1.ListPaymentsRequest{OrgId: "acme"})
	require.NoError(t, err)
	require.Len(t, list.GetPayments(), 1)
}

func TestDuplicateDeliveryCreditsOnce(t *testing.T) {
	t.Parallel()
	e := start(t, options{stripe: true})
	cs := e.checkout(t, "acme", 20*unit)
	body := sessionEvent{typ: payment.EventCheckoutCompleted, paymentStatus: "paid", org: "acme", cs: cs, amountMinor: 2000}.payload(t)

	e.mustDeliver(t, body, app.OutcomeProcessed)
	e.mustDeliver(t, body, app.OutcomeDuplicate)
	// A fresh event about the same session (e.g. reconciliation racing a late webhook) credits nothing more.
	e.mustDeliver(t, sessionEvent{typ: payment.EventCheckoutAsyncSucceeded, paymentStatus: "paid", org: "acme", cs: cs, amountMinor: 2000}.payload(t), app.OutcomeProcessed)

	b := e.balance(t, "acme")
	require.Equal(t, 20*unit, nanos(t, b.GetBalance()))
	require.NotNil(t, b.GetExpiresAt(), "the credit renews the validity")
	require.Equal(t, 1, e.credits(t, "acme"))
	p := e.payment(t, "acme", cs.GetPaymentId())
	require.Equal(t, paymentsv1.PaymentStatus_PAYMENT_STATUS_SUCCEEDED, p.GetStatus())
	require.Equal(t, "INV-"+year()+"-000001", p.GetInvoiceNumber())
	require.NotNil(t, p.GetPaidAt())
	require.Equal(t, "card", p.GetPaymentMethod())
}

func TestConcurrentDeliveriesCreditOnce(t *testing.T) {
	t.Parallel()
	e := start(t, options{stripe: true})
	cs := e.checkout(t, "acme", 30*unit)
	completed := sessionEvent{typ: payment.EventCheckoutCompleted, paymentStatus: "paid", org: "acme", cs: cs, amountMinor: 3000}.payload(t)
	async := sessionEvent{typ: payment.EventCheckoutAsyncSucceeded, paymentStatus: "paid", org: "acme", cs: cs, amountMinor: 3000}.payload(t)

	// Stripe retries the same event while the first delivery is in flight, and another paid
	// event about the same session arrives at the same time.
	bodies := [][]byte{completed, completed, completed, async, async}
	outcomes := make([]string, len(bodies))
	var wg sync.WaitGroup
	for i, body := range bodies {
		wg.Go(func() {
			resp, err := e.deliver(t, body)
			if err == nil {
				outcomes[i] = resp.GetOutcome()
			} else {
				outcomes[i] = err.Error()
			}
		})
	}
	wg.Wait()
	processed := 0
	for _, o := range outcomes {
		require.Contains(t, []string{app.OutcomeProcessed, app.OutcomeDuplicate}, o)
		if o == app.OutcomeProcessed {
			processed++
		}
	}
	require.Equal(t, 2, processed, "each distinct event is processed exactly once: %v", outcomes)
	require.Equal(t, 30*unit, nanos(t, e.balance(t, "acme").GetBalance()))
	require.Equal(t, 1, e.credits(t, "acme"))
	require.Equal(t, paymentsv1.PaymentStatus_PAYMENT_STATUS_SUCCEEDED, e.payment(t, "acme", cs.GetPaymentId()).GetStatus())
}

func TestOutOfOrderEvents(t *testing.T) {
	t.Parallel()
	e := start(t, options{stripe: true})
	ev := func(cs *paymentsv1.CreateCheckoutSessionResponse, typ, paid string) []byte {
		return sessionEvent{typ: typ, paymentStatus: paid, org: "acme", cs: cs, amountMinor: 1000}.payload(t)
	}

	t.Run("completed after async_payment_succeeded", func(t *testing.T) {
		cs := e.checkout(t, "acme", 10*unit)
		e.mustDeliver(t, ev(cs, payment.EventCheckoutAsyncSucceeded, "paid"), app.OutcomeProcessed)
		e.mustDeliver(t, ev(cs, payment.EventCheckoutCompleted, "unpaid"), app.OutcomeProcessed)
		require.Equal(t, paymentsv1.PaymentStatus_PAYMENT_STATUS_SUCCEEDED, e.payment(t, "acme", cs.GetPaymentId()).GetStatus())
		require.Equal(t, 10*unit, nanos(t, e.balance(t, "acme").GetBalance()))
	})
	t.Run("unpaid completed credits nothing until async success", func(t *testing.T) {
		cs := e.checkout(t, "acme", 10*unit)
		e.mustDeliver(t, ev(cs, payment.EventCheckoutCompleted, "unpaid"), app.OutcomeProcessed)
		require.Equal(t, paymentsv1.PaymentStatus_PAYMENT_STATUS_PENDING, e.payment(t, "acme", cs.GetPaymentId()).GetStatus())
		require.Equal(t, 10*unit, nanos(t, e.balance(t, "acme").GetBalance()))
		e.mustDeliver(t, ev(cs, payment.EventCheckoutAsyncSucceeded, "paid"), app.OutcomeProcessed)
		require.Equal(t, paymentsv1.PaymentStatus_PAYMENT_STATUS_SUCCEEDED, e.payment(t, "acme", cs.GetPaymentId()).GetStatus())
		require.Equal(t, 20*unit, nanos(t, e.balance(t, "acme").GetBalance()))
	})
	t.Run("async failure before credit fails the payment", func(t *testing.T) {
		cs := e.checkout(t, "acme", 10*unit)
		e.mustDeliver(t, ev(cs, payment.EventCheckoutCompleted, "unpaid"), app.OutcomeProcessed)
		e.mustDeliver(t, ev(cs, payment.EventCheckoutAsyncFailed, "unpaid"), app.OutcomeProcessed)
		require.Equal(t, paymentsv1.PaymentStatus_PAYMENT_STATUS_FAILED, e.payment(t, "acme", cs.GetPaymentId()).GetStatus())
		require.Equal(t, 20*unit, nanos(t, e.balance(t, "acme").GetBalance()))
	})
	t.Run("expired after succeeded is ignored", func(t *testing.T) {
		cs := e.checkout(t, "acme", 10*unit)
		e.mustDeliver(t, ev(cs, payment.EventCheckoutCompleted, "paid"), app.OutcomeProcessed)
		e.mustDeliver(t, ev(cs, payment.EventCheckoutExpired, "unpaid"), app.OutcomeProcessed)
		require.Equal(t, paymentsv1.PaymentStatus_PAYMENT_STATUS_SUCCEEDED, e.payment(t, "acme", cs.GetPaymentId()).GetStatus())
		require.Equal(t, 30*unit, nanos(t, e.balance(t, "acme").GetBalance()))
	})
	t.Run("expired unpaid session expires", func(t *testing.T) {
		cs := e.checkout(t, "acme", 10*unit)
		e.mustDeliver(t, ev(cs, payment.EventCheckoutExpired, "unpaid"), app.OutcomeProcessed)
		require.Equal(t, paymentsv1.PaymentStatus_PAYMENT_STATUS_EXPIRED, e.payment(t, "acme", cs.GetPaymentId()).GetStatus())
	})
	t.Run("late failure after credit is flagged, never voided", func(t *testing.T) {
		cs := e.checkout(t, "acme", 10*unit)
		e.mustDeliver(t, ev(cs, payment.EventCheckoutAsyncSucceeded, "paid"), app.OutcomeProcessed)
		e.mustDeliver(t, ev(cs, payment.EventCheckoutAsyncFailed, "unpaid"), app.OutcomeProcessed)
		p := e.payment(t, "acme", cs.GetPaymentId())
		require.Equal(t, paymentsv1.PaymentStatus_PAYMENT_STATUS_SUCCEEDED, p.GetStatus())
		require.True(t, p.GetUnderReview())
		require.Equal(t, 40*unit, nanos(t, e.balance(t, "acme").GetBalance()))
		require.True(t, hasReview(e.reviewItems(t), cs.GetPaymentId(), payment.ReviewLateFailure))
	})
	require.Equal(t, 4, e.credits(t, "acme"))
}

func hasReview(items []*paymentsv1.ReviewItem, paymentID, kind string) bool {
	for _, it := range items {
		if it.GetPaymentId() == paymentID && it.GetKind() == kind {
			return true
		}
	}
	return false
}

func TestBadSignaturesChangeNothing(t *testing.T) {
	t.Parallel()
	e := start(t, options{stripe: true})
	cs := e.checkout(t, "acme", 15*unit)
	body := sessionEvent{id: "evt_forged_1", typ: payment.EventCheckoutCompleted, paymentStatus: "paid", org: "acme", cs: cs, amountMinor: 1500}.payload(t)
	tampered := sessionEvent{id: "evt_forged_1", typ: payment.EventCheckoutCompleted, paymentStatus: "paid", org: "acme", cs: cs, amountMinor: 999999}.payload(t)

	for _, tc := range []struct {
		name, sig string
		payload   []byte
	}{
		{"no signature", "", body},
		{"signed with another secret", stripeevent.Sign(body, "whsec_attacker", time.Now()), body},
		{"signature of another payload", stripeevent.Sign(body, webhookSecret, time.Now()), tampered},
		{"garbage header", "t=abc,v1=zz", body},
		{"stale timestamp", stripeevent.Sign(body, webhookSecret, time.Now().Add(-10*time.Minute)), body},
	} {
		t.Run(tc.name, func(t *testing.T) {
			_, err := e.deliverSigned(t, tc.payload, tc.sig)
			requireCode(t, err, codes.InvalidArgument)
		})
	}
	require.Zero(t, nanos(t, e.balance(t, "acme").GetBalance()))
	require.Equal(t, paymentsv1.PaymentStatus_PAYMENT_STATUS_PENDING, e.payment(t, "acme", cs.GetPaymentId()).GetStatus())
	// The event id was not consumed: the genuine delivery is processed.
	e.mustDeliver(t, body, app.OutcomeProcessed)
	require.Equal(t, 15*unit, nanos(t, e.balance(t, "acme").GetBalance()))
}

func TestAmountMismatchIsFlagged(t *testing.T) {
	t.Parallel()
	e := start(t, options{stripe: true})
	cs := e.checkout(t, "acme", 15*unit)
	e.mustDeliver(t, sessionEvent{typ: payment.EventCheckoutCompleted, paymentStatus: "paid", org: "acme", cs: cs, amountMinor: 100}.payload(t),
		app.OutcomeProcessed)
	require.Zero(t, nanos(t, e.balance(t, "acme").GetBalance()))
	require.True(t, hasReview(e.reviewItems(t), cs.GetPaymentId(), payment.ReviewAmountMismatch))
}

func TestDisputeAndExternalRefundAreFlagged(t *testing.T) {
	t.Parallel()
	e := start(t, options{stripe: true})
	cs := e.checkout(t, "acme", 10*unit)
	e.mustDeliver(t, sessionEvent{typ: payment.EventCheckoutCompleted, paymentStatus: "paid", org: "acme", cs: cs, amountMinor: 1000}.payload(t),
		app.OutcomeProcessed)
	intent := "pi_" + cs.GetPaymentId()[:8]

	refunded, err := stripeevent.EventPayload("", payment.EventChargeRefunded, time.Now(), map[string]any{
		"id": "ch_1", "object": "charge", "payment_intent": intent, "amount": 1000, "amount_refunded": 1000, "currency": "usd", "refunded": true,
	})
	require.NoError(t, err)
	e.mustDeliver(t, refunded, app.OutcomeProcessed)
	p := e.payment(t, "acme", cs.GetPaymentId())
	require.Equal(t, paymentsv1.PaymentStatus_PAYMENT_STATUS_REFUNDED, p.GetStatus())
	require.True(t, hasReview(e.reviewItems(t), p.GetId(), payment.ReviewExternalRefund))

	dispute, err := stripeevent.EventPayload("", payment.EventDisputeCreated, time.Now(), map[string]any{
		"id": "dp_1", "object": "dispute", "charge": "ch_1", "payment_intent": intent, "amount": 1000, "currency": "usd", "reason": "fraudulent",
	})
	require.NoError(t, err)
	e.mustDeliver(t, dispute, app.OutcomeProcessed)
	require.Equal(t, paymentsv1.PaymentStatus_PAYMENT_STATUS_DISPUTED, e.payment(t, "acme", cs.GetPaymentId()).GetStatus())
	require.True(t, hasReview(e.reviewItems(t), p.GetId(), payment.ReviewDispute))
	// Credits are never voided silently.
	require.Equal(t, 10*unit, nanos(t, e.balance(t, "acme").GetBalance()))

	// Ops resolve an item.
	var id string
	for _, it := range e.reviewItems(t) {
		if it.GetKind() == payment.ReviewDispute {
			id = it.GetId()
		}
	}
	res, err := e.ops(t).ResolveReviewItem(t.Context(), &paymentsv1.ResolveReviewItemRequest{ReviewItemId: id, Resolution: "evidence submitted"})
	require.NoError(t, err)
	require.NotNil(t, res.GetItem().GetResolvedAt())
	require.False(t, hasReview(e.reviewItems(t), p.GetId(), payment.ReviewDispute))
}

func TestUnhandledEventTypesAreAcknowledged(t *testing.T) {
	t.Parallel()
	e := start(t, options{stripe: true})
	body, err := stripeevent.EventPayload("", "customer.created", time.Now(), map[string]any{"id": "cus_1", "object": "customer"})
	require.NoError(t, err)
	e.mustDeliver(t, body, app.OutcomeIgnored)
	e.mustDeliver(t, body, app.OutcomeDuplicate)
}
