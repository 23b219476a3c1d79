package test

import (
	"fmt"
	"io"
	"net/http"
	"net/url"
	"strings"
	"sync"
	"testing"

	"github.com/jackc/pgx/v5/pgxpool"
	"github.com/stretchr/testify/require"
	"google.golang.org/grpc/codes"

	ledgerv1 "github.com/tallyhq/tally/pkg/gen/tally/ledger/v1"
	paymentsv1 "github.com/tallyhq/tally/pkg/gen/tally/payments/v1"
	"github.com/tallyhq/tally/pkg/money"
	"github.com/tallyhq/tally/services/ledger/ledgertest"
	"github.com/tallyhq/tally/services/payments/internal/app"
	"github.com/tallyhq/tally/services/payments/internal/payment"
)

// payOnPage opens the test-mode checkout page of cs and pays with its Credit Card button.
func payOnPage(t *testing.T, cs *paymentsv1.CreateCheckoutSessionResponse) {
	t.Helper()
	payWith(t, cs, "Credit Card")
}

func TestLocalTestModeCheckoutEndToEnd(t *testing.T) {
	t.Parallel()
	e := start(t, options{})
	cs := e.checkout(t, "acme", 25*unit)
	require.Equal(t, e.httpURL+"/checkout/test/"+cs.GetSessionId(), cs.GetUrl())
	require.Zero(t, nanos(t, e.balance(t, "acme").GetBalance()))

	payOnPage(t, cs)

	require.Equal(t, int64(1), e.delivered.Load(), "one signed webhook went through the endpoint")
	b := e.balance(t, "acme")
	require.Equal(t, 25*unit, nanos(t, b.GetBalance()))
	require.NotNil(t, b.GetExpiresAt())
	p := e.payment(t, "acme", cs.GetPaymentId())
	require.Equal(t, paymentsv1.PaymentStatus_PAYMENT_STATUS_SUCCEEDED, p.GetStatus())
	require.True(t, p.GetTestMode())
	require.Equal(t, "user-acme", p.GetMember().GetId())

	inv, err := e.member(t, "acme", false).GetInvoice(t.Context(), &paymentsv1.GetInvoiceRequest{OrgId: "acme", PaymentId: cs.GetPaymentId()})
	require.NoError(t, err)
	require.Equal(t, "application/pdf", inv.GetContentType())
	require.Contains(t, pdfText(t, inv.GetData()), "TEST MODE")

	// The page of a paid session offers no Pay button any more; paying again is refused.
	page, err := http.Get(cs.GetUrl())
	require.NoError(t, err)
	body, err := io.ReadAll(page.Body)
	require.NoError(t, page.Body.Close())
	require.NoError(t, err)
	require.NotContains(t, string(body), "/pay\"")
	resp, err := noRedirectClient().PostForm(cs.GetUrl()+"/pay", url.Values{"method": {"card"}})
	require.NoError(t, err)
	require.NoError(t, resp.Body.Close())
	require.Equal(t, http.StatusConflict, resp.StatusCode)
	require.Equal(t, 25*unit, nanos(t, e.balance(t, "acme").GetBalance()))

	// Cancel goes back to the billing page; an unknown session is a 404.
	resp, err = noRedirectClient().PostForm(e.httpURL+"/checkout/test/"+cs.GetSessionId()+"/cancel", url.Values{})
	require.NoError(t, err)
	require.NoError(t, resp.Body.Close())
	require.Equal(t, cancelURL, resp.Header.Get("Location"))
	resp, err = http.Get(e.httpURL + "/checkout/test/cs_test_local_nope")
	require.NoError(t, err)
	require.NoError(t, resp.Body.Close())
	require.Equal(t, http.StatusNotFound, resp.StatusCode)
}

func TestReconciliationRecoversLostWebhook(t *testing.T) {
	t.Parallel()
	e := start(t, options{dropWebhooks: true})
	cs := e.checkout(t, "acme", 40*unit)
	other := e.checkout(t, "acme", 7*unit) // never paid

	payOnPage(t, cs)
	require.Zero(t, e.delivered.Load())
	require.Zero(t, nanos(t, e.balance(t, "acme").GetBalance()), "the webhook was lost")
	require.Equal(t, paymentsv1.PaymentStatus_PAYMENT_STATUS_PENDING, e.payment(t, "acme", cs.GetPaymentId()).GetStatus())

	rep, err := e.svc.Reconcile(t.Context())
	require.NoError(t, err)
	require.Equal(t, app.ReconcileReport{Listed: 1, Fulfilled: 1}, rep)
	require.Equal(t, 40*unit, nanos(t, e.balance(t, "acme").GetBalance()))
	p := e.payment(t, "acme", cs.GetPaymentId())
	require.Equal(t, paymentsv1.PaymentStatus_PAYMENT_STATUS_SUCCEEDED, p.GetStatus())
	require.Equal(t, "INV-"+year()+"-000001", p.GetInvoiceNumber())
	require.Equal(t, paymentsv1.PaymentStatus_PAYMENT_STATUS_PENDING, e.payment(t, "acme", other.GetPaymentId()).GetStatus())

	// Nothing left to do; the late webhook of the same session changes nothing.
	rep, err = e.svc.Reconcile(t.Context())
	require.NoError(t, err)
	require.Zero(t, rep.Fulfilled)
	e.mustDeliver(t, sessionEvent{typ: payment.EventCheckoutCompleted, paymentStatus: "paid", org: "acme", cs: cs, amountMinor: 4000}.payload(t),
		app.OutcomeProcessed)
	require.Equal(t, 40*unit, nanos(t, e.balance(t, "acme").GetBalance()))
	require.Equal(t, 1, e.credits(t, "acme"))
}

func TestReconciliationExpiresStaleLocalSessions(t *testing.T) {
	t.Parallel()
	e := start(t, options{})
	stale, fresh := e.checkout(t, "acme", 10*unit), e.checkout(t, "acme", 10*unit)
	pool, err := pgxpool.New(t.Context(), e.dbURL)
	require.NoError(t, err)
	defer pool.Close()
	_, err = pool.Exec(t.Context(), `UPDATE payments.payments SET expires_at = now() - interval '1 hour' WHERE id = $1`, stale.GetPaymentId())
	require.NoError(t, err)

	rep, err := e.svc.Reconcile(t.Context())
	require.NoError(t, err)
	require.Equal(t, app.ReconcileReport{Listed: 1, Expired: 1}, rep)
	require.Equal(t, paymentsv1.PaymentStatus_PAYMENT_STATUS_EXPIRED, e.payment(t, "acme", stale.GetPaymentId()).GetStatus())
	require.Equal(t, paymentsv1.PaymentStatus_PAYMENT_STATUS_PENDING, e.payment(t, "acme", fresh.GetPaymentId()).GetStatus())
	resp, err := noRedirectClient().PostForm(stale.GetUrl()+"/pay", url.Values{"method": {"card"}})
	require.NoError(t, err)
	require.NoError(t, resp.Body.Close())
	require.Equal(t, http.StatusConflict, resp.StatusCode)
}

func TestStripeReconciliationSkipsUnpaidAndUnknownSessions(t *testing.T) {
	t.Parallel()
	e := start(t, options{stripe: true})
	cs := e.checkout(t, "acme", 10*unit)
	// stripe-mock lists canned sessions (open, unpaid, unknown to tally): nothing is credited.
	rep, err := e.svc.Reconcile(t.Context())
	require.NoError(t, err)
	require.GreaterOrEqual(t, rep.Listed, 1)
	require.Zero(t, rep.Fulfilled)
	require.Zero(t, nanos(t, e.balance(t, "acme").GetBalance()))
	require.Equal(t, paymentsv1.PaymentStatus_PAYMENT_STATUS_PENDING, e.payment(t, "acme", cs.GetPaymentId()).GetStatus())
}

func TestInvoiceNumbersAreGaplessUnderConcurrentPayments(t *testing.T) {
	t.Parallel()
	e := start(t, options{stripe: true})
	const n = 12
	sessions := make([]*paymentsv1.CreateCheckoutSessionResponse, n)
	for i := range n {
		org := fmt.Sprintf("org-%d", i%3)
		// Warm the ledger accounts so the test exercises invoice numbering, not account creation.
		if i < 3 {
			_, err := e.ledgerOps.Credit(t.Context(), &ledgerv1.CreditRequest{OrgId: org, Amount: usd(unit), IdempotencyKey: "seed-" + org, Reason: "seed"})
			require.NoError(t, err)
		}
		sessions[i] = e.checkout(t, org, money.Nanos(10+i)*unit)
	}
	var wg sync.WaitGroup
	errs := make([]error, n)
	for i, cs := range sessions {
		wg.Go(func() {
			body := sessionEvent{typ: payment.EventCheckoutCompleted, paymentStatus: "paid", org: fmt.Sprintf("org-%d", i%3), cs: cs,
				amountMinor: int64(10+i) * 100}.payload(t)
			_, errs[i] = e.deliver(t, body)
		})
	}
	wg.Wait()
	seen := map[string]bool{}
	for i, cs := range sessions {
		require.NoError(t, errs[i])
		p := e.payment(t, fmt.Sprintf("org-%d", i%3), cs.GetPaymentId())
		require.Equal(t, paymentsv1.PaymentStatus_PAYMENT_STATUS_SUCCEEDED, p.GetStatus())
		require.False(t, seen[p.GetInvoiceNumber()], "duplicate number %s", p.GetInvoiceNumber())
		seen[p.GetInvoiceNumber()] = true
	}
	for i := 1; i <= n; i++ {
		require.True(t, seen[fmt.Sprintf("INV-%s-%06d", year(), i)], "number %d is missing: %v", i, seen)
	}
}

func TestInvoicePDF(t *testing.T) {
	t.Parallel()
	e := start(t, options{stripe: true})
	admin := e.member(t, "acme", true)
	_, err := admin.UpdateBillingProfile(t.Context(), &paymentsv1.UpdateBillingProfileRequest{OrgId: "acme", Profile: &paymentsv1.BillingProfile{
		LegalName: "Acme Widgets Ltd", Address: "5 Main Street\nSpringfield", TaxId: "GB999999973", Email: "ap@acme.test",
	}})
	require.NoError(t, err)
	cs := e.checkout(t, "acme", 123*unit+450_000_000)
	e.mustDeliver(t, sessionEvent{typ: payment.EventCheckoutCompleted, paymentStatus: "paid", org: "acme", cs: cs, amountMinor: 12345}.payload(t),
		app.OutcomeProcessed)

	inv, err := e.member(t, "acme", false).GetInvoice(t.Context(), &paymentsv1.GetInvoiceRequest{OrgId: "acme", PaymentId: cs.GetPaymentId()})
	require.NoError(t, err)
	require.Equal(t, "application/pdf", inv.GetContentType())
	text := pdfText(t, inv.GetData())
	number := "INV-" + year() + "-000001"
	for _, want := range []string{number, "123.45 USD", "Acme Widgets Ltd", "GB999999973", "Tally Test GmbH", "DE123456789", "Ann acme", "Credits"} {
		require.Contains(t, text, want)
	}
	require.NotContains(t, text, "TEST MODE")

	// The stored document never changes, even when the billing profile does.
	_, err = admin.UpdateBillingProfile(t.Context(), &paymentsv1.UpdateBillingProfileRequest{OrgId: "acme", Profile: &paymentsv1.BillingProfile{LegalName: "Renamed"}})
	require.NoError(t, err)
	again, err := e.member(t, "acme", false).GetInvoice(t.Context(), &paymentsv1.GetInvoiceRequest{OrgId: "acme", PaymentId: cs.GetPaymentId()})
	require.NoError(t, err)
	require.Equal(t, inv.GetData(), again.GetData())

	// A pending payment has no invoice yet.
	pending := e.checkout(t, "acme", 10*unit)
	_, err = e.member(t, "acme", false).GetInvoice(t.Context(), &paymentsv1.GetInvoiceRequest{OrgId: "acme", PaymentId: pending.GetPaymentId()})
	requireCode(t, err, codes.NotFound)
}

func TestRefunds(t *testing.T) {
	t.Parallel()
	e := start(t, options{stripe: true})
	cs := e.checkout(t, "acme", 50*unit)
	e.mustDeliver(t, sessionEvent{typ: payment.EventCheckoutCompleted, paymentStatus: "paid", org: "acme", cs: cs, amountMinor: 5000}.payload(t),
		app.OutcomeProcessed)
	ops := e.ops(t)

	_, err := e.member(t, "acme", true).RefundPayment(t.Context(), &paymentsv1.RefundPaymentRequest{PaymentId: cs.GetPaymentId(), Reason: "x", IdempotencyKey: "refund-1"})
	requireCode(t, err, codes.PermissionDenied)
	_, err = ops.RefundPayment(t.Context(), &paymentsv1.RefundPaymentRequest{PaymentId: cs.GetPaymentId(), Amount: usd(10 * unit), IdempotencyKey: "refund-2"})
	requireCode(t, err, codes.InvalidArgument) // no reason
	_, err = ops.RefundPayment(t.Context(), &paymentsv1.RefundPaymentRequest{PaymentId: cs.GetPaymentId(), Amount: usd(60 * unit), Reason: "too much", IdempotencyKey: "refund-3"})
	requireCode(t, err, codes.FailedPrecondition)

	r1, err := ops.RefundPayment(t.Context(), &paymentsv1.RefundPaymentRequest{PaymentId: cs.GetPaymentId(), Amount: usd(20 * unit), Reason: "customer asked", IdempotencyKey: "refund-4"})
	require.NoError(t, err)
	require.Equal(t, paymentsv1.RefundStatus_REFUND_STATUS_SUCCEEDED, r1.GetRefund().GetStatus())
	require.True(t, strings.HasPrefix(r1.GetRefund().GetStripeRefundId(), "re_"))
	require.Equal(t, "CN-"+year()+"-000001", r1.GetRefund().GetCreditNoteNumber())
	require.Equal(t, 20*unit, nanos(t, r1.GetRefund().GetCreditsTakenBack()))
	require.Zero(t, nanos(t, r1.GetRefund().GetCreditsNotRecovered()))
	require.Equal(t, paymentsv1.PaymentStatus_PAYMENT_STATUS_SUCCEEDED, r1.GetPayment().GetStatus())
	require.False(t, r1.GetReplayed())
	require.Equal(t, 30*unit, nanos(t, e.balance(t, "acme").GetBalance()))
	// The retry with the same key returns the same refund and says it is a replay.
	r1again, err := ops.RefundPayment(t.Context(), &paymentsv1.RefundPaymentRequest{PaymentId: cs.GetPaymentId(), Amount: usd(20 * unit), Reason: "customer asked", IdempotencyKey: "refund-4"})
	require.NoError(t, err)
	require.True(t, r1again.GetReplayed())
	require.Equal(t, r1.GetRefund().GetId(), r1again.GetRefund().GetId())
	require.Equal(t, 30*unit, nanos(t, e.balance(t, "acme").GetBalance()))

	note, err := e.member(t, "acme", false).GetCreditNote(t.Context(), &paymentsv1.GetCreditNoteRequest{OrgId: "acme",
		PaymentId: cs.GetPaymentId(), RefundId: r1.GetRefund().GetId()})
	require.NoError(t, err)
	text := pdfText(t, note.GetData())
	require.Contains(t, text, "CN-"+year()+"-000001")
	require.Contains(t, text, "INV-"+year()+"-000001")
	require.Contains(t, text, "-20.00 USD")

	// Stripe's charge.refunded for tally's own refund opens no review item.
	refunded := chargeRefunded(t, "pi_"+cs.GetPaymentId()[:8], 5000, 2000, false)
	e.mustDeliver(t, refunded, app.OutcomeProcessed)
	require.False(t, hasReview(e.reviewItems(t), cs.GetPaymentId(), payment.ReviewExternalRefund))

	// Most of the remaining credits were spent: only what remains is taken back, the rest reported.
	backend := e.ledger.Client(t, ledgertest.ServiceToken(t, "model-backend"))
	_, err = backend.Debit(t.Context(), &ledgerv1.DebitRequest{OrgId: "acme", Amount: usd(25 * unit), IdempotencyKey: "usage-1", Description: "usage"})
	require.NoError(t, err)
	r2, err := ops.RefundPayment(t.Context(), &paymentsv1.RefundPaymentRequest{PaymentId: cs.GetPaymentId(), Reason: "closing the account", IdempotencyKey: "refund-5"})
	require.NoError(t, err)
	require.Equal(t, 30*unit, nanos(t, r2.GetRefund().GetAmount()))
	require.Equal(t, 5*unit, nanos(t, r2.GetRefund().GetCreditsTakenBack()))
	require.Equal(t, 25*unit, nanos(t, r2.GetRefund().GetCreditsNotRecovered()))
	require.Equal(t, "CN-"+year()+"-000002", r2.GetRefund().GetCreditNoteNumber())
	require.Equal(t, paymentsv1.PaymentStatus_PAYMENT_STATUS_REFUNDED, r2.GetPayment().GetStatus())
	require.Zero(t, nanos(t, e.balance(t, "acme").GetBalance()))

	_, err = ops.RefundPayment(t.Context(), &paymentsv1.RefundPaymentRequest{PaymentId: cs.GetPaymentId(), Reason: "again", IdempotencyKey: "refund-6"})
	requireCode(t, err, codes.FailedPrecondition)
	got, err := ops.GetPayment(t.Context(), &paymentsv1.GetPaymentRequest{OrgId: "acme", PaymentId: cs.GetPaymentId()})
	require.NoError(t, err)
	require.Len(t, got.GetRefunds(), 2)
	require.Equal(t, 50*unit, nanos(t, got.GetPayment().GetRefunded()))
}
