package test

import (
	"context"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"

	"github.com/tallyhq/tally/pkg/clock"
	ledgerv1 "github.com/tallyhq/tally/pkg/gen/tally/ledger/v1"
	paymentsv1 "github.com/tallyhq/tally/pkg/gen/tally/payments/v1"
	"github.com/tallyhq/tally/pkg/ledgerclient/ledgerclienttest"
	"github.com/tallyhq/tally/services/ledger/ledgertest"
	"github.com/tallyhq/tally/services/payments/internal/payment"
	"github.com/tallyhq/tally/services/payments/internal/service"
	"github.com/tallyhq/tally/services/payments/internal/stripeevent"
	"github.com/tallyhq/tally/services/payments/paymentstest"
)

// requireInternal requires err to be Internal, masked: nothing of the ledger's reply reaches the
// caller.
func requireInternal(t *testing.T, err error) {
	t.Helper()
	requireCode(t, err, codes.Internal)
	msg := status.Convert(err).Message()
	require.True(t, strings.HasPrefix(msg, "internal error"), "masked, got %q", msg)
	require.NotContains(t, msg, "XXX")
	require.NotContains(t, msg, "ledger")
}

// TestMalformedLedgerReplyIsInternal: a ledger reply payments cannot decode (an unknown currency,
// no transaction id) is a bug or a version skew, never the caller's fault: a checkout, a refund
// and a paid webhook answer Internal, masked, never InvalidArgument. The paid top-up is not
// dropped: it stays due, and the retry worker credits it once the ledger answers well again.
func TestMalformedLedgerReplyIsInternal(t *testing.T) {
	t.Parallel()
	fake := ledgerclienttest.Start(t)
	now := clock.NewManual(time.Now())
	p := paymentsstart(t, fake, now)
	member := p.Client(t, memberToken(t, "acme"))
	ops := p.Client(t, ledgertest.OpsToken(t))
	public := p.Client(t, "")
	deliver := func(cs *paymentsv1.CreateCheckoutSessionResponse, id string) (*paymentsv1.HandleStripeWebhookResponse, error) {
		body := sessionEvent{id: id, typ: payment.EventCheckoutCompleted, paymentStatus: "paid", org: "acme", cs: cs, amountMinor: 2500}.payload(t)
		return public.HandleStripeWebhook(t.Context(), &paymentsv1.HandleStripeWebhookRequest{Payload: body,
			Signature: stripeevent.Sign(body, webhookSecret, time.Now())})
	}
	checkout := func() (*paymentsv1.CreateCheckoutSessionResponse, error) {
		return member.CreateCheckoutSession(t.Context(), &paymentsv1.CreateCheckoutSessionRequest{OrgId: "acme", Amount: usd(25 * unit)})
	}

	// A payment credited while the ledger answers well.
	paid, err := checkout()
	require.NoError(t, err)
	resp, err := deliver(paid, "evt_paid_1")
	require.NoError(t, err)
	require.Equal(t, "processed", resp.GetOutcome())

	t.Run("checkout", func(t *testing.T) {
		fake.MalformedBalance()
		defer fake.Set(ledgerclienttest.Handlers{})
		_, err := checkout()
		requireInternal(t, err)
	})

	t.Run("refund", func(t *testing.T) {
		fake.MalformedBalance()
		req := &paymentsv1.RefundPaymentRequest{PaymentId: paid.GetPaymentId(), Amount: usd(5 * unit),
			Reason: "customer asked", IdempotencyKey: "ticket-1"}
		_, err := ops.RefundPayment(t.Context(), req)
		requireInternal(t, err)
		// The same refund, retried once the ledger answers well, completes.
		fake.Set(ledgerclienttest.Handlers{})
		_, err = ops.RefundPayment(t.Context(), req)
		require.NoError(t, err)
	})

	t.Run("paid webhook", func(t *testing.T) {
		cs, err := checkout()
		require.NoError(t, err)
		fake.Set(ledgerclienttest.Handlers{Credit: func(_ context.Context, _ *ledgerv1.CreditRequest) (*ledgerv1.CreditResponse, error) {
			return &ledgerv1.CreditResponse{}, nil // no transaction id
		}})
		_, err = deliver(cs, "evt_paid_2")
		requireInternal(t, err)
		got, err := ops.GetPayment(t.Context(), &paymentsv1.GetPaymentRequest{OrgId: "acme", PaymentId: cs.GetPaymentId()})
		require.NoError(t, err)
		require.Equal(t, paymentsv1.PaymentStatus_PAYMENT_STATUS_PENDING, got.GetPayment().GetStatus(), "not credited, kept due")

		// The ledger answers well again: past the backoff, the retry worker credits.
		fake.Set(ledgerclienttest.Handlers{})
		now.Advance(time.Hour)
		rep, err := p.RetryPending(t.Context())
		require.NoError(t, err)
		require.Equal(t, 1, rep.Credited)
		got, err = ops.GetPayment(t.Context(), &paymentsv1.GetPaymentRequest{OrgId: "acme", PaymentId: cs.GetPaymentId()})
		require.NoError(t, err)
		require.Equal(t, paymentsv1.PaymentStatus_PAYMENT_STATUS_SUCCEEDED, got.GetPayment().GetStatus())
	})
}

// paymentsstart is a payments service calling fake, on the business clock now, whose retry worker
// runs only when the test asks.
func paymentsstart(t *testing.T, fake *ledgerclienttest.Fake, now *clock.Manual) *paymentstest.Payments {
	return paymentstest.Start(t, paymentstest.Options{LedgerAddr: fake.Addr(), Now: now.Now, Configure: func(c *service.Config) {
		c.RetryInterval = time.Hour
	}})
}
