package test

import (
	"encoding/json"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/grpc-ecosystem/grpc-gateway/v2/runtime"
	"github.com/stretchr/testify/require"
	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/credentials/insecure"
	"google.golang.org/grpc/status"

	ledgerv1 "github.com/tallyhq/tally/pkg/gen/tally/ledger/v1"
	paymentsv1 "github.com/tallyhq/tally/pkg/gen/tally/payments/v1"
	"github.com/tallyhq/tally/pkg/money"
	"github.com/tallyhq/tally/services/ledger/ledgertest"
	"github.com/tallyhq/tally/services/payments/internal/app"
	"github.com/tallyhq/tally/services/payments/internal/payment"
)

// paid is a succeeded Stripe payment of amount for org.
func (e *env) paid(t *testing.T, org string, amount money.Nanos) *paymentsv1.CreateCheckoutSessionResponse {
	t.Helper()
	cs := e.checkout(t, org, amount)
	e.mustDeliver(t, sessionEvent{typ: payment.EventCheckoutCompleted, paymentStatus: "paid", org: org, cs: cs,
		amountMinor: int64(amount / (money.NanosPerUnit / 100))}.payload(t), app.OutcomeProcessed)
	return cs
}

// ledgerKinds counts org's ledger transactions by kind.
func (e *env) ledgerKinds(t *testing.T, org string) map[ledgerv1.TransactionKind]int {
	t.Helper()
	list, err := e.ledgerOps.ListTransactions(t.Context(), &ledgerv1.ListTransactionsRequest{OrgId: org, PageSize: 500})
	require.NoError(t, err)
	out := map[ledgerv1.TransactionKind]int{}
	for _, tx := range list.GetTransactions() {
		out[tx.GetKind()]++
	}
	return out
}

// refundsOf lists a payment's refunds.
func (e *env) refundsOf(t *testing.T, org, paymentID string) []*paymentsv1.Refund {
	t.Helper()
	resp, err := e.ops(t).GetPayment(t.Context(), &paymentsv1.GetPaymentRequest{OrgId: org, PaymentId: paymentID})
	require.NoError(t, err)
	return resp.GetRefunds()
}

// TestAttack_RetriedRefund retries refunds the way a flaky client or a double-clicking operator
// would: the same key, sequentially and concurrently, gives one refund, one Stripe refund and one
// ledger adjustment; the key with other parameters is AlreadyExists and a request without a key
// is InvalidArgument, neither writing anything.
func TestAttack_RetriedRefund(t *testing.T) {
	t.Parallel()
	stripe := startStripeProxy(t)
	logs := newLogRecorder()
	e := start(t, options{stripe: true, stripeURL: stripe.URL, logs: logs})
	cs := e.paid(t, "acme", 50*unit)
	other := e.paid(t, "acme", 10*unit)
	ops := e.ops(t)
	req := &paymentsv1.RefundPaymentRequest{PaymentId: cs.GetPaymentId(), Amount: usd(20 * unit), Reason: "customer asked",
		IdempotencyKey: "ticket-4711"}

	// The first request reaches Stripe and is held there, while seven retries of it arrive: each
	// waits for it instead of refunding again.
	release := stripe.holdRefunds()
	defer release()
	const n = 8
	ids := make([]string, n)
	errs := make([]error, n)
	var wg sync.WaitGroup
	call := func(i int) {
		resp, err := ops.RefundPayment(t.Context(), req)
		errs[i], ids[i] = err, resp.GetRefund().GetId()
	}
	wg.Go(func() { call(0) })
	require.Eventually(t, func() bool { return len(stripe.refunds()) == 1 }, 30*time.Second, 10*time.Millisecond)
	for i := 1; i < n; i++ {
		wg.Go(func() { call(i) })
	}
	require.Eventually(t, func() bool { return logs.count("refund in progress elsewhere, waiting for it") == n-1 },
		30*time.Second, 10*time.Millisecond, "every retry waits for the refund in progress")
	require.Len(t, stripe.refunds(), 1, "no retry calls Stripe while the first is in flight")
	release()
	wg.Wait()
	for i := range n {
		require.NoError(t, errs[i])
		require.NotEmpty(t, ids[i])
		require.Equal(t, ids[0], ids[i], "every retry is the same refund")
	}
	refundID := ids[0]

	// And once more afterwards.
	again, err := ops.RefundPayment(t.Context(), req)
	require.NoError(t, err)
	require.Equal(t, refundID, again.GetRefund().GetId())
	require.Equal(t, paymentsv1.RefundStatus_REFUND_STATUS_SUCCEEDED, again.GetRefund().GetStatus())
	require.Equal(t, "ticket-4711", again.GetRefund().GetIdempotencyKey())
	require.Equal(t, 20*unit, nanos(t, again.GetRefund().GetCreditsTakenBack()))
	require.Equal(t, "CN-"+year()+"-000001", again.GetRefund().GetCreditNoteNumber())

	requireWritten := func(t *testing.T) {
		t.Helper()
		require.Equal(t, []string{"refund:" + refundID}, stripe.refunds(), "one Stripe refund, keyed by the refund")
		require.Equal(t, 1, e.ledgerKinds(t, "acme")[ledgerv1.TransactionKind_TRANSACTION_KIND_ADJUSTMENT], "one ledger adjustment")
		require.Equal(t, 40*unit, nanos(t, e.balance(t, "acme").GetBalance()))
		require.Len(t, e.refundsOf(t, "acme", cs.GetPaymentId()), 1)
		require.Empty(t, e.refundsOf(t, "acme", other.GetPaymentId()))
		require.Equal(t, 20*unit, nanos(t, e.payment(t, "acme", cs.GetPaymentId()).GetRefunded()))
	}
	requireWritten(t)

	requireKeyMisuseRefused(t, ops, cs.GetPaymentId(), other.GetPaymentId(), requireWritten)

	// A refund of everything not refunded yet is retried as such, also once the payment is fully
	// refunded (no FailedPrecondition for the retry of what emptied it).
	rest := &paymentsv1.RefundPaymentRequest{PaymentId: cs.GetPaymentId(), Reason: "closing the account", IdempotencyKey: "ticket-4712"}
	first, err := ops.RefundPayment(t.Context(), rest)
	require.NoError(t, err)
	require.Equal(t, 30*unit, nanos(t, first.GetRefund().GetAmount()))
	require.Equal(t, paymentsv1.PaymentStatus_PAYMENT_STATUS_REFUNDED, first.GetPayment().GetStatus())
	second, err := ops.RefundPayment(t.Context(), rest)
	require.NoError(t, err)
	require.Equal(t, first.GetRefund().GetId(), second.GetRefund().GetId())
	require.Len(t, stripe.refunds(), 2)
	require.Equal(t, 2, e.ledgerKinds(t, "acme")[ledgerv1.TransactionKind_TRANSACTION_KIND_ADJUSTMENT])
	require.Equal(t, 10*unit, nanos(t, e.balance(t, "acme").GetBalance()))
}

// requireKeyMisuseRefused: the key of a refund of paymentID, reused for another request, and
// missing or malformed keys are refused without writing anything (requireWritten still holds).
func requireKeyMisuseRefused(t *testing.T, ops paymentsv1.PaymentsServiceClient, paymentID, otherID string,
	requireWritten func(*testing.T)) {
	t.Helper()
	for _, tc := range []struct {
		name string
		req  *paymentsv1.RefundPaymentRequest
		code codes.Code
	}{
		{"the key with another amount", &paymentsv1.RefundPaymentRequest{PaymentId: paymentID, Amount: usd(10 * unit),
			Reason: "customer asked", IdempotencyKey: "ticket-4711"}, codes.AlreadyExists},
		{"the key with everything", &paymentsv1.RefundPaymentRequest{PaymentId: paymentID,
			Reason: "customer asked", IdempotencyKey: "ticket-4711"}, codes.AlreadyExists},
		{"the key with another reason", &paymentsv1.RefundPaymentRequest{PaymentId: paymentID, Amount: usd(20 * unit),
			Reason: "fraud", IdempotencyKey: "ticket-4711"}, codes.AlreadyExists},
		{"the key for another payment", &paymentsv1.RefundPaymentRequest{PaymentId: otherID, Amount: usd(5 * unit),
			Reason: "customer asked", IdempotencyKey: "ticket-4711"}, codes.AlreadyExists},
		{"no key", &paymentsv1.RefundPaymentRequest{PaymentId: paymentID, Amount: usd(5 * unit), Reason: "customer asked"},
			codes.InvalidArgument},
		{"a key with a control character", &paymentsv1.RefundPaymentRequest{PaymentId: paymentID, Amount: usd(5 * unit),
			Reason: "customer asked", IdempotencyKey: "ticket\x01"}, codes.InvalidArgument},
		{"a key too long", &paymentsv1.RefundPaymentRequest{PaymentId: paymentID, Amount: usd(5 * unit),
			Reason: "customer asked", IdempotencyKey: strings.Repeat("k", 256)}, codes.InvalidArgument},
	} {
		t.Run(tc.name, func(t *testing.T) {
			_, err := ops.RefundPayment(t.Context(), tc.req)
			requireCode(t, err, tc.code)
			require.NotContains(t, status.Convert(err).Message(), strings.Repeat("k", 33), "the key is not echoed")
			requireWritten(t)
		})
	}
}

// TestAttack_RetriedRefundOverREST retries the refund through the REST route the console uses:
// the key travels in the body, a retry is the same refund, a missing key is a 400.
func TestAttack_RetriedRefundOverREST(t *testing.T) {
	t.Parallel()
	stripe := startStripeProxy(t)
	e := start(t, options{stripe: true, stripeURL: stripe.URL})
	cs := e.paid(t, "acme", 30*unit)
	mux := runtime.NewServeMux()
	require.NoError(t, paymentsv1.RegisterPaymentsServiceHandlerFromEndpoint(t.Context(), mux, e.addr,
		[]grpc.DialOption{grpc.WithTransportCredentials(insecure.NewCredentials())}))
	srv := httptest.NewServer(mux)
	t.Cleanup(srv.Close)
	post := func(body string) (int, map[string]any) {
		req, err := http.NewRequestWithContext(t.Context(), http.MethodPost, srv.URL+"/v1/payments/"+cs.GetPaymentId()+"/refunds",
			strings.NewReader(body))
		require.NoError(t, err)
		req.Header.Set("Authorization", "Bearer "+ledgertest.OpsToken(t))
		resp, err := http.DefaultClient.Do(req)
		require.NoError(t, err)
		b, err := io.ReadAll(resp.Body)
		require.NoError(t, resp.Body.Close())
		require.NoError(t, err)
		var out map[string]any
		require.NoError(t, json.Unmarshal(b, &out), string(b))
		return resp.StatusCode, out
	}
	refundID := func(out map[string]any) string {
		r, _ := out["refund"].(map[string]any)
		id, _ := r["id"].(string)
		return id
	}

	code, _ := post(`{"amount":{"currencyCode":"USD","units":"5"},"reason":"customer asked"}`)
	require.Equal(t, http.StatusBadRequest, code)
	require.Empty(t, stripe.refunds())

	body := `{"amount":{"currencyCode":"USD","units":"5"},"reason":"customer asked","idempotencyKey":"rest-1"}`
	code, first := post(body)
	require.Equal(t, http.StatusOK, code, "%v", first)
	code, second := post(body)
	require.Equal(t, http.StatusOK, code, "%v", second)
	require.NotEmpty(t, refundID(first))
	require.Equal(t, refundID(first), refundID(second))

	code, _ = post(`{"amount":{"currencyCode":"USD","units":"6"},"reason":"customer asked","idempotencyKey":"rest-1"}`)
	require.Equal(t, http.StatusConflict, code)
	require.Len(t, stripe.refunds(), 1)
	require.Equal(t, 1, e.ledgerKinds(t, "acme")[ledgerv1.TransactionKind_TRANSACTION_KIND_ADJUSTMENT])
	require.Equal(t, 25*unit, nanos(t, e.balance(t, "acme").GetBalance()))
}

// TestAttack_RetriedRefundAfterAnOutage retries a refund whose Stripe call failed: the retry
// carries the same refund on with the same Stripe idempotency key, and the credits are taken
// back once.
func TestAttack_RetriedRefundAfterAnOutage(t *testing.T) {
	t.Parallel()
	stripe := startStripeProxy(t)
	e := start(t, options{stripe: true, stripeURL: stripe.URL})
	cs := e.paid(t, "acme", 40*unit)
	ops := e.ops(t)
	req := &paymentsv1.RefundPaymentRequest{PaymentId: cs.GetPaymentId(), Amount: usd(15 * unit), Reason: "customer asked",
		IdempotencyKey: "ticket-99"}

	stripe.failNextRefunds(1)
	_, err := ops.RefundPayment(t.Context(), req)
	requireCode(t, err, codes.Unavailable)
	pending := e.refundsOf(t, "acme", cs.GetPaymentId())
	require.Len(t, pending, 1)
	require.Equal(t, paymentsv1.RefundStatus_REFUND_STATUS_PENDING, pending[0].GetStatus())
	require.Equal(t, 40*unit, nanos(t, e.balance(t, "acme").GetBalance()), "no credits taken back for money that may not have moved")
	require.True(t, hasReview(e.reviewItems(t), cs.GetPaymentId(), payment.ReviewRefundPartial))

	done, err := ops.RefundPayment(t.Context(), req)
	require.NoError(t, err)
	require.Equal(t, pending[0].GetId(), done.GetRefund().GetId())
	require.Equal(t, paymentsv1.RefundStatus_REFUND_STATUS_SUCCEEDED, done.GetRefund().GetStatus())
	key := "refund:" + pending[0].GetId()
	require.Equal(t, []string{key, key}, stripe.refunds(), "the retry asks Stripe with the same idempotency key")
	require.Equal(t, 25*unit, nanos(t, e.balance(t, "acme").GetBalance()))
	require.Equal(t, 1, e.ledgerKinds(t, "acme")[ledgerv1.TransactionKind_TRANSACTION_KIND_ADJUSTMENT])

	again, err := ops.RefundPayment(t.Context(), req)
	require.NoError(t, err)
	require.Equal(t, done.GetRefund().GetId(), again.GetRefund().GetId())
	require.Len(t, stripe.refunds(), 2)
}

// TestAttack_RefundAboveTheRequestMaximum asks for a refund above TALLY_MAX_REQUEST_AMOUNT: it is
// refused naming the limit, before anything is written.
func TestAttack_RefundAboveTheRequestMaximum(t *testing.T) {
	t.Parallel()
	stripe := startStripeProxy(t)
	e := start(t, options{stripe: true, stripeURL: stripe.URL})
	cs := e.paid(t, "acme", 10*unit)
	for _, amount := range []money.Nanos{payment.DefaultMaxRequestAmount + 1, 1<<63 - 1} {
		_, err := e.ops(t).RefundPayment(t.Context(), &paymentsv1.RefundPaymentRequest{PaymentId: cs.GetPaymentId(), Amount: usd(amount),
			Reason: "customer asked", IdempotencyKey: "huge"})
		requireCode(t, err, codes.InvalidArgument)
		require.Contains(t, status.Convert(err).Message(), "amount exceeds the per-request maximum of 1000000 (TALLY_MAX_REQUEST_AMOUNT)")
	}
	require.Empty(t, e.refundsOf(t, "acme", cs.GetPaymentId()))
	require.Empty(t, stripe.refunds())
	require.Equal(t, 10*unit, nanos(t, e.balance(t, "acme").GetBalance()))
}
