package test

import (
	"bytes"
	"context"
	"fmt"
	"net/http"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgxpool"
	"github.com/stretchr/testify/require"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"

	ledgerv1 "github.com/tallyhq/tally/pkg/gen/tally/ledger/v1"
	paymentsv1 "github.com/tallyhq/tally/pkg/gen/tally/payments/v1"
	"github.com/tallyhq/tally/pkg/money"
	"github.com/tallyhq/tally/pkg/server"
	"github.com/tallyhq/tally/pkg/testenv"
	"github.com/tallyhq/tally/services/ledger/ledgertest"
	"github.com/tallyhq/tally/services/payments/internal/app"
	"github.com/tallyhq/tally/services/payments/internal/payment"
	"github.com/tallyhq/tally/services/payments/internal/stripeevent"
)

// fastRetry drives the retry worker fast: it looks for due work every 50ms, and waits 50ms after
// a first failure (at most 200ms).
const fastRetry = 50 * time.Millisecond

// postWebhook delivers payload once to the webhook endpoint, signed now, as Stripe does (a
// retry is another call), and returns the HTTP status it answered.
func (e *env) postWebhook(t *testing.T, payload []byte) int {
	t.Helper()
	req, err := http.NewRequestWithContext(t.Context(), http.MethodPost, e.hookURL, bytes.NewReader(payload))
	require.NoError(t, err)
	req.Header.Set("Stripe-Signature", stripeevent.Sign(payload, webhookSecret, time.Now()))
	resp, err := http.DefaultClient.Do(req)
	require.NoError(t, err)
	require.NoError(t, resp.Body.Close())
	return resp.StatusCode
}

// sql queries the payments schema directly, to see what is stored and what is not.
func (e *env) sql(t *testing.T, query string, args ...any) pgx.Row {
	t.Helper()
	e.sqlOnce.Do(func() {
		cfg, err := pgxpool.ParseConfig(e.dbURL)
		require.NoError(t, err)
		cfg.MaxConns = 2
		e.sqlPool, err = pgxpool.NewWithConfig(context.WithoutCancel(t.Context()), cfg)
		require.NoError(t, err)
		e.t.Cleanup(e.sqlPool.Close)
	})
	return e.sqlPool.QueryRow(t.Context(), query, args...)
}

// eventStored reports whether payments stored event id as processed.
func (e *env) eventStored(t *testing.T, id string) bool {
	t.Helper()
	var n int
	require.NoError(t, e.sql(t, `SELECT count(*) FROM payments.stripe_events WHERE id = $1`, id).Scan(&n))
	return n > 0
}

// fulfilAttempts is how many attempts to credit a payment failed so far, and whether its credit
// is still due.
func (e *env) fulfilAttempts(t *testing.T, paymentID string) (int, bool) {
	t.Helper()
	var n int
	var due bool
	require.NoError(t, e.sql(t, `SELECT fulfil_attempts, fulfil_after IS NOT NULL FROM payments.payments WHERE id = $1`, paymentID).Scan(&n, &due))
	return n, due
}

// refundAttempts is how many attempts to carry a refund out were given up so far.
func (e *env) refundAttempts(t *testing.T, refundID string) int {
	t.Helper()
	var n int
	require.NoError(t, e.sql(t, `SELECT attempts FROM payments.refunds WHERE id = $1`, refundID).Scan(&n))
	return n
}

// expiredServiceToken is payments' token, expired: signed right, but past its exp.
// rotatedLedger is a ledger that no longer trusts the key payments signs its service token with
// (its key was rotated): it refuses payments' token with Unauthenticated while payments, which
// still trusts its own key, stays ready and processes webhooks. (A token that payments itself
// finds expired or foreign makes payments NOT_SERVING instead: pkg/server's readiness.)
func rotatedLedger(t *testing.T, _ *ledgertest.Ledger) string {
	rotated := server.AuthConfig{JWTSecret: "another-secret-0123456789abcdefghij"}
	return ledgertest.Start(t, ledgertest.Options{Auth: &rotated}).Addr
}

// TestFault_PaidWebhookWithARefusedServiceToken delivers a paid webhook while the ledger refuses
// payments' own token (expired, or signed with a rotated key): the webhook answers 503 so that
// Stripe retries, no event is stored as processed and no credit granted, and the payment is kept
// due. Once payments runs with a valid token again, Stripe's retry or the retry worker credits it
// exactly once, and later deliveries credit nothing more.
func TestFault_PaidWebhookWithARefusedServiceToken(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct {
		name       string
		ledgerAddr func(*testing.T, *ledgertest.Ledger) string
		// byWorker recovers through the retry worker; otherwise through Stripe's retry, with the
		// worker out of the way.
		byWorker bool
	}{
		{"token of a rotated key, Stripe retries", rotatedLedger, false},
		{"token of a rotated key, the retry worker credits", rotatedLedger, true},
	} {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			ledger := ledgertest.Start(t, ledgertest.Options{})
			db := testenv.PostgresURL(t)
			retry := time.Hour
			if tc.byWorker {
				retry = fastRetry
			}
			o := options{stripe: true, ledger: ledger, dbURL: db, retry: retry}
			before := start(t, o)
			cs := before.checkout(t, "acme", 25*unit)
			before.stop()

			bad := o
			bad.ledgerAddr = tc.ledgerAddr(t, ledger)
			e := start(t, bad)
			id := "evt_paid_" + cs.GetPaymentId()[:8]
			body := sessionEvent{id: id, typ: payment.EventCheckoutCompleted, paymentStatus: "paid", org: "acme", cs: cs, amountMinor: 2500}.payload(t)
			require.Equal(t, http.StatusServiceUnavailable, e.postWebhook(t, body), "Stripe must retry")
			require.Equal(t, http.StatusServiceUnavailable, e.postWebhook(t, body), "and again")
			if tc.byWorker {
				require.Eventually(t, func() bool { n, _ := e.fulfilAttempts(t, cs.GetPaymentId()); return n >= 4 }, 30*time.Second,
					10*time.Millisecond, "the retry worker keeps trying")
			}
			require.False(t, e.eventStored(t, id), "nothing stored as processed")
			_, due := e.fulfilAttempts(t, cs.GetPaymentId())
			require.True(t, due, "the payment is kept due for fulfilment")
			require.Equal(t, paymentsv1.PaymentStatus_PAYMENT_STATUS_PENDING, e.payment(t, "acme", cs.GetPaymentId()).GetStatus())
			require.Zero(t, e.credits(t, "acme"))
			require.Empty(t, e.reviewItems(t), "a refused token is no business refusal")
			e.stop()

			// payments runs with a valid token again.
			e = start(t, o)
			if tc.byWorker {
				require.Eventually(t, func() bool {
					return e.payment(t, "acme", cs.GetPaymentId()).GetStatus() == paymentsv1.PaymentStatus_PAYMENT_STATUS_SUCCEEDED
				}, 30*time.Second, 10*time.Millisecond, "the retry worker credits")
				require.False(t, e.eventStored(t, id))
			} else {
				require.Equal(t, http.StatusOK, e.postWebhook(t, body))
				require.True(t, e.eventStored(t, id))
			}
			requireCreditedOnce := func(t *testing.T) {
				t.Helper()
				p := e.payment(t, "acme", cs.GetPaymentId())
				require.Equal(t, paymentsv1.PaymentStatus_PAYMENT_STATUS_SUCCEEDED, p.GetStatus())
				require.Equal(t, "INV-"+year()+"-000001", p.GetInvoiceNumber())
				require.Equal(t, 25*unit, nanos(t, e.balance(t, "acme").GetBalance()))
				require.Equal(t, 1, e.credits(t, "acme"))
				_, due := e.fulfilAttempts(t, cs.GetPaymentId())
				require.False(t, due)
			}
			requireCreditedOnce(t)

			// Stripe delivers the event again (its retry after the worker credited, or a late
			// duplicate): acknowledged, nothing more credited.
			require.Equal(t, http.StatusOK, e.postWebhook(t, body))
			require.True(t, e.eventStored(t, id))
			require.Equal(t, http.StatusOK, e.postWebhook(t, body))
			requireCreditedOnce(t)
			require.Empty(t, e.reviewItems(t))
		})
	}
}

// TestFault_LedgerDownDuringPaidWebhooks stops the real ledger while paid webhooks arrive at two
// payments replicas: every delivery answers 503 and stores nothing; when a ledger is back on the
// same database, the replicas' retry workers credit every payment exactly once between them (each
// payment claimed by one replica at a time), with exact balances and gapless invoice numbers.
func TestFault_LedgerDownDuringPaidWebhooks(t *testing.T) {
	t.Parallel()
	ledger := ledgertest.Start(t, ledgertest.Options{})
	proxy := startTCPProxy(t, ledger.Addr)
	db := testenv.PostgresURL(t)
	logs := newLogRecorder()
	o := options{stripe: true, ledger: ledger, ledgerAddr: proxy.Addr, dbURL: db, retry: fastRetry, logs: logs}
	replicas := []*env{start(t, o), start(t, o)}

	const n = 6
	orgs := []string{"acme", "globex"}
	type paid struct {
		org  string
		cs   *paymentsv1.CreateCheckoutSessionResponse
		id   string
		body []byte
	}
	var payments []paid
	for i := range n {
		e, org := replicas[i%2], orgs[i%2]
		cs := e.checkout(t, org, 10*unit+unit*money.Nanos(i))
		id := fmt.Sprintf("evt_paid_%d", i)
		payments = append(payments, paid{org: org, cs: cs, id: id, body: sessionEvent{id: id, typ: payment.EventCheckoutCompleted,
			paymentStatus: "paid", org: org, cs: cs, amountMinor: int64(1000 + 100*i)}.payload(t)})
	}

	ledger.Stop(t)
	for i, p := range payments {
		require.Equal(t, http.StatusServiceUnavailable, replicas[i%2].postWebhook(t, p.body), "payment %d: Stripe must retry", i)
	}
	for _, p := range payments {
		require.Eventually(t, func() bool { n, _ := replicas[0].fulfilAttempts(t, p.cs.GetPaymentId()); return n >= 3 }, 30*time.Second,
			10*time.Millisecond, "the retry workers keep trying")
		require.False(t, replicas[0].eventStored(t, p.id))
	}
	require.Zero(t, logs.count("retry worker credited a paid payment"))

	// A ledger is back, on the same database and Redis.
	back := ledgertest.Start(t, ledgertest.Options{DatabaseURL: ledger.DatabaseURL, RedisURL: ledger.RedisURL})
	proxy.setUpstream(back.Addr)
	ops := back.Client(t, ledgertest.OpsToken(t))
	for _, p := range payments {
		require.Eventually(t, func() bool {
			return replicas[1].payment(t, p.org, p.cs.GetPaymentId()).GetStatus() == paymentsv1.PaymentStatus_PAYMENT_STATUS_SUCCEEDED
		}, 30*time.Second, 10*time.Millisecond)
	}
	// The worker logs after recording the credit, so the last line may trail the status.
	require.Eventually(t, func() bool { return logs.count("retry worker credited a paid payment") >= n }, 10*time.Second,
		10*time.Millisecond)
	require.Equal(t, n, logs.count("retry worker credited a paid payment"), "each payment was credited by one replica")

	invoices := map[string]bool{}
	for i, p := range payments {
		got := replicas[0].payment(t, p.org, p.cs.GetPaymentId())
		invoices[got.GetInvoiceNumber()] = true
		_, due := replicas[0].fulfilAttempts(t, p.cs.GetPaymentId())
		require.False(t, due, "payment %d", i)
		// Stripe's retry is acknowledged and credits nothing more.
		require.Equal(t, http.StatusOK, replicas[i%2].postWebhook(t, p.body))
	}
	for i := 1; i <= n; i++ {
		require.True(t, invoices[fmt.Sprintf("INV-%s-%06d", year(), i)], "gapless invoice numbers: %v", invoices)
	}
	for _, org := range orgs {
		var want int
		for i := range n {
			if orgs[i%2] == org {
				want += 10 + i
			}
		}
		b, err := ops.GetBalance(t.Context(), &ledgerv1.GetBalanceRequest{OrgId: org})
		require.NoError(t, err)
		require.Equal(t, unit*money.Nanos(want), nanos(t, b.GetBalance()), org)
		list, err := ops.ListTransactions(t.Context(), &ledgerv1.ListTransactionsRequest{OrgId: org, PageSize: 100})
		require.NoError(t, err)
		require.Len(t, list.GetTransactions(), n/2, "one credit per payment of %s", org)
	}
}

// TestFault_StripeUnreachableDuringRefund cuts the network to Stripe during a refund: the request
// answers Unavailable and the refund stays pending, holding what it may have refunded (and no
// more) against what can still be refunded; the retry worker keeps asking while Stripe is
// unreachable, and once it is back completes the refund exactly once — one Stripe refund, one
// ledger adjustment — and the operator's retry returns it.
func TestFault_StripeUnreachableDuringRefund(t *testing.T) {
	t.Parallel()
	stripe := startStripeProxy(t)
	network := startTCPProxy(t, strings.TrimPrefix(stripe.URL, "http://"))
	e := start(t, options{stripe: true, stripeURL: network.URL(), retry: fastRetry})
	cs := e.paid(t, "acme", 40*unit)
	ops := e.ops(t)
	req := &paymentsv1.RefundPaymentRequest{PaymentId: cs.GetPaymentId(), Amount: usd(15 * unit), Reason: "customer asked",
		IdempotencyKey: "ticket-outage"}

	network.down()
	_, err := ops.RefundPayment(t.Context(), req)
	requireCode(t, err, codes.Unavailable)
	refunds := e.refundsOf(t, "acme", cs.GetPaymentId())
	require.Len(t, refunds, 1)
	refundID := refunds[0].GetId()
	require.Equal(t, paymentsv1.RefundStatus_REFUND_STATUS_PENDING, refunds[0].GetStatus())
	require.Empty(t, stripe.refunds(), "Stripe was not reached")
	require.Equal(t, 40*unit, nanos(t, e.balance(t, "acme").GetBalance()), "no credits taken back for money that did not move")

	// What may have been refunded is held, and no more: 25 can still be refunded.
	_, err = ops.RefundPayment(t.Context(), &paymentsv1.RefundPaymentRequest{PaymentId: cs.GetPaymentId(), Amount: usd(26 * unit),
		Reason: "customer asked", IdempotencyKey: "ticket-too-much"})
	requireCode(t, err, codes.FailedPrecondition)
	require.Contains(t, status.Convert(err).Message(), "25.00 USD of payment")

	require.Eventually(t, func() bool { return e.refundAttempts(t, refundID) >= 3 }, 60*time.Second, 10*time.Millisecond,
		"the retry worker keeps asking Stripe")
	require.Equal(t, paymentsv1.RefundStatus_REFUND_STATUS_PENDING, e.refundsOf(t, "acme", cs.GetPaymentId())[0].GetStatus())

	network.up()
	require.Eventually(t, func() bool {
		return e.refundsOf(t, "acme", cs.GetPaymentId())[0].GetStatus() == paymentsv1.RefundStatus_REFUND_STATUS_SUCCEEDED
	}, 60*time.Second, 10*time.Millisecond, "the retry worker completes the refund")
	requireDone := func(t *testing.T) {
		t.Helper()
		require.Equal(t, []string{"refund:" + refundID}, stripe.refunds(), "one Stripe refund")
		require.Equal(t, 1, e.ledgerKinds(t, "acme")[ledgerv1.TransactionKind_TRANSACTION_KIND_ADJUSTMENT], "one ledger adjustment")
		require.Equal(t, 25*unit, nanos(t, e.balance(t, "acme").GetBalance()))
		p := e.payment(t, "acme", cs.GetPaymentId())
		require.Equal(t, 15*unit, nanos(t, p.GetRefunded()))
		r := e.refundsOf(t, "acme", cs.GetPaymentId())[0]
		require.Equal(t, 15*unit, nanos(t, r.GetCreditsTakenBack()))
		require.Equal(t, "CN-"+year()+"-000001", r.GetCreditNoteNumber())
	}
	requireDone(t)

	again, err := ops.RefundPayment(t.Context(), req)
	require.NoError(t, err)
	require.Equal(t, refundID, again.GetRefund().GetId())
	require.Equal(t, paymentsv1.RefundStatus_REFUND_STATUS_SUCCEEDED, again.GetRefund().GetStatus())
	requireDone(t)

	// The rest, and not a cent more, can be refunded.
	rest, err := ops.RefundPayment(t.Context(), &paymentsv1.RefundPaymentRequest{PaymentId: cs.GetPaymentId(), Reason: "closing the account",
		IdempotencyKey: "ticket-rest"})
	require.NoError(t, err)
	require.Equal(t, 25*unit, nanos(t, rest.GetRefund().GetAmount()))
	require.Equal(t, paymentsv1.PaymentStatus_PAYMENT_STATUS_REFUNDED, rest.GetPayment().GetStatus())
}

// TestFault_RefundInFlightAtStripe has Stripe accept a refund without settling it (status
// pending): the refund is answered pending, takes no credits back and holds its amount; tally
// follows it at Stripe until Stripe settles it, then completes it (credits taken back, credit
// note) or fails it (nothing taken back, the amount refundable again) — through the retry worker
// or through reconciliation.
func TestFault_RefundInFlightAtStripe(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct {
		name      string
		settles   string
		reconcile bool
	}{
		{"succeeds, the retry worker completes it", "succeeded", false},
		{"fails, the retry worker fails it", "failed", false},
		{"succeeds, reconciliation completes it", "succeeded", true},
		{"is canceled, reconciliation fails it", "canceled", true},
	} {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			stripe := startStripeProxy(t)
			retry := fastRetry
			if tc.reconcile {
				retry = time.Hour
			}
			e := start(t, options{stripe: true, stripeURL: stripe.URL, retry: retry})
			cs := e.paid(t, "acme", 40*unit)
			ops := e.ops(t)
			req := &paymentsv1.RefundPaymentRequest{PaymentId: cs.GetPaymentId(), Amount: usd(15 * unit), Reason: "customer asked",
				IdempotencyKey: "ticket-slow"}

			stripe.setRefundStatus("pending")
			resp, err := ops.RefundPayment(t.Context(), req)
			require.NoError(t, err)
			refundID := resp.GetRefund().GetId()
			require.Equal(t, paymentsv1.RefundStatus_REFUND_STATUS_PENDING, resp.GetRefund().GetStatus())
			require.NotEmpty(t, resp.GetRefund().GetStripeRefundId())
			require.Equal(t, 40*unit, nanos(t, e.balance(t, "acme").GetBalance()), "nothing taken back while the money is in flight")
			_, err = ops.RefundPayment(t.Context(), &paymentsv1.RefundPaymentRequest{PaymentId: cs.GetPaymentId(), Amount: usd(26 * unit),
				Reason: "customer asked", IdempotencyKey: "ticket-too-much"})
			requireCode(t, err, codes.FailedPrecondition)
			// The operator's retry follows the same refund at Stripe.
			again, err := ops.RefundPayment(t.Context(), req)
			require.NoError(t, err)
			require.Equal(t, refundID, again.GetRefund().GetId())
			require.Equal(t, paymentsv1.RefundStatus_REFUND_STATUS_PENDING, again.GetRefund().GetStatus())
			if !tc.reconcile {
				reads := stripe.reads()
				require.Eventually(t, func() bool { return stripe.reads() >= reads+3 }, 30*time.Second, 10*time.Millisecond,
					"the retry worker follows the refund at Stripe")
				require.Equal(t, paymentsv1.RefundStatus_REFUND_STATUS_PENDING, e.refundsOf(t, "acme", cs.GetPaymentId())[0].GetStatus())
			}

			stripe.setRefundStatus(tc.settles)
			want := paymentsv1.RefundStatus_REFUND_STATUS_SUCCEEDED
			if tc.settles != "succeeded" {
				want = paymentsv1.RefundStatus_REFUND_STATUS_FAILED
			}
			if tc.reconcile {
				rep, err := e.svc.Reconcile(t.Context())
				require.NoError(t, err)
				if want == paymentsv1.RefundStatus_REFUND_STATUS_SUCCEEDED {
					require.Equal(t, 1, rep.Refunds.RefundsCompleted)
				} else {
					require.Equal(t, 1, rep.Refunds.RefundsFailed)
				}
			}
			require.Eventually(t, func() bool { return e.refundsOf(t, "acme", cs.GetPaymentId())[0].GetStatus() == want },
				30*time.Second, 10*time.Millisecond)
			require.Equal(t, []string{"refund:" + refundID}, stripe.refunds(), "Stripe was asked for the refund once")
			stripe.setRefundStatus("")

			requireRefundSettled(t, e, cs.GetPaymentId(), req, want)
		})
	}
}

// requireRefundSettled checks what a refund of 15 of the 40 units paid left once Stripe settled
// it as want: the credits taken back and a credit note, or nothing taken back and the amount
// refundable again.
func requireRefundSettled(t *testing.T, e *env, paymentID string, req *paymentsv1.RefundPaymentRequest, want paymentsv1.RefundStatus) {
	t.Helper()
	ops := e.ops(t)
	if want == paymentsv1.RefundStatus_REFUND_STATUS_SUCCEEDED {
		require.Equal(t, 25*unit, nanos(t, e.balance(t, "acme").GetBalance()))
		require.Equal(t, 1, e.ledgerKinds(t, "acme")[ledgerv1.TransactionKind_TRANSACTION_KIND_ADJUSTMENT])
		require.Equal(t, 15*unit, nanos(t, e.payment(t, "acme", paymentID).GetRefunded()))
		require.Equal(t, "CN-"+year()+"-000001", e.refundsOf(t, "acme", paymentID)[0].GetCreditNoteNumber())
		return
	}
	require.Equal(t, 40*unit, nanos(t, e.balance(t, "acme").GetBalance()))
	require.Zero(t, e.ledgerKinds(t, "acme")[ledgerv1.TransactionKind_TRANSACTION_KIND_ADJUSTMENT])
	require.Zero(t, nanos(t, e.payment(t, "acme", paymentID).GetRefunded()))
	_, err := ops.RefundPayment(t.Context(), req)
	requireCode(t, err, codes.FailedPrecondition) // the key stays bound to the failed refund
	// A failed refund no longer holds its amount: everything can be refunded.
	all, err := ops.RefundPayment(t.Context(), &paymentsv1.RefundPaymentRequest{PaymentId: paymentID, Reason: "customer asked",
		IdempotencyKey: "ticket-all"})
	require.NoError(t, err)
	require.Equal(t, 40*unit, nanos(t, all.GetRefund().GetAmount()))
	require.Equal(t, paymentsv1.RefundStatus_REFUND_STATUS_SUCCEEDED, all.GetRefund().GetStatus())
}

// TestFault_ConcurrentRetryPasses leaves paid payments due for fulfilment as a crash between
// marking them due and calling the ledger would, and runs retry passes of several replicas at once
// over them: each payment is credited by exactly one pass.
func TestFault_ConcurrentRetryPasses(t *testing.T) {
	t.Parallel()
	db := testenv.PostgresURL(t)
	logs := newLogRecorder()
	// The workers wait an hour between passes: only the passes below run.
	o := options{stripe: true, dbURL: db, retry: time.Hour, logs: logs}
	first := start(t, o)
	o.ledger = first.ledger
	replicas := []*env{first, start(t, o), start(t, o)}
	const n = 12
	var ids []string
	for range n {
		ids = append(ids, first.checkout(t, "acme", 10*unit).GetPaymentId())
	}
	// payments died after marking them due (the paid webhook's first step), before the ledger call.
	var due int
	require.NoError(t, first.sql(t, `WITH u AS (UPDATE payments.payments SET fulfil_after = now() - interval '1 second',
payment_intent_id = 'pi_' || left(id::text, 8) RETURNING 1) SELECT count(*) FROM u`).Scan(&due))
	require.Equal(t, n, due)

	var wg sync.WaitGroup
	reports := make([]app.RetryReport, 3*len(replicas))
	errs := make([]error, len(reports))
	for i := range reports {
		wg.Go(func() { reports[i], errs[i] = replicas[i%len(replicas)].svc.RetryPending(t.Context()) })
	}
	wg.Wait()
	credited := 0
	for i, rep := range reports {
		require.NoError(t, errs[i])
		credited += rep.Credited
		require.Zero(t, rep.Failed)
	}
	require.Equal(t, n, credited, "each payment credited by one pass: %+v", reports)
	require.Equal(t, n, logs.count("retry worker credited a paid payment"))
	require.Equal(t, n, first.credits(t, "acme"))
	require.Equal(t, n*10*unit, nanos(t, first.balance(t, "acme").GetBalance()))
	invoices := map[string]bool{}
	for _, id := range ids {
		p := first.payment(t, "acme", id)
		require.Equal(t, paymentsv1.PaymentStatus_PAYMENT_STATUS_SUCCEEDED, p.GetStatus())
		invoices[p.GetInvoiceNumber()] = true
	}
	require.Len(t, invoices, n)
}
