package test

import (
	"fmt"
	"net/http"
	"net/url"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	ledgerv1 "github.com/tallyhq/tally/pkg/gen/tally/ledger/v1"
	paymentsv1 "github.com/tallyhq/tally/pkg/gen/tally/payments/v1"
	"github.com/tallyhq/tally/pkg/money"
	"github.com/tallyhq/tally/services/ledger/ledgertest"
	"github.com/tallyhq/tally/services/payments/internal/payment"
	"github.com/tallyhq/tally/services/payments/internal/service"
	"github.com/tallyhq/tally/services/payments/internal/stripeevent"
)

// Declines in these tests come from the test-mode page's test cards (pm_card_chargeDeclined,
// pm_card_authenticationRequired, as Stripe names them): stripe-mock answers every
// PaymentIntent with a succeeded fixture and cannot decline.

// saveCard saves card for org through the test-mode setup page, as an admin's browser would.
func (e *env) saveCard(t *testing.T, org, card string) {
	t.Helper()
	admin := e.member(t, org, true)
	setup, err := admin.CreatePaymentMethodSetup(t.Context(), &paymentsv1.CreatePaymentMethodSetupRequest{OrgId: org})
	require.NoError(t, err)
	require.True(t, strings.HasPrefix(setup.GetUrl(), e.httpURL+"/checkout/test/setup/"), setup.GetUrl())
	page, err := http.Get(setup.GetUrl())
	require.NoError(t, err)
	_ = page.Body.Close()
	require.Equal(t, http.StatusOK, page.StatusCode)
	resp, err := noRedirectClient().PostForm(setup.GetUrl()+"/save", url.Values{"card": {card}})
	require.NoError(t, err)
	_ = resp.Body.Close()
	require.Equal(t, http.StatusSeeOther, resp.StatusCode)
	require.Equal(t, consoleURL+"/billing?setup=success", resp.Header.Get("Location"))
	got, err := admin.GetAutoRecharge(t.Context(), &paymentsv1.GetAutoRechargeRequest{OrgId: org})
	require.NoError(t, err)
	require.NotNil(t, got.GetPaymentMethod())
}

// rule enables a fixed-amount rule for org.
func (e *env) rule(t *testing.T, org string, threshold, amount, target, monthlyCap money.Nanos) *paymentsv1.AutoRechargeRule {
	t.Helper()
	r := &paymentsv1.AutoRechargeRule{Enabled: true, Threshold: usd(threshold), MonthlyCap: usd(monthlyCap)}
	if amount > 0 {
		r.Amount = usd(amount)
	}
	if target > 0 {
		r.TargetBalance = usd(target)
	}
	resp, err := e.member(t, org, true).UpdateAutoRecharge(t.Context(), &paymentsv1.UpdateAutoRechargeRequest{OrgId: org, Rule: r})
	require.NoError(t, err)
	return resp.GetRule()
}

func (e *env) seed(t *testing.T, org string, amount money.Nanos, key string) {
	t.Helper()
	_, err := e.ledgerOps.Credit(t.Context(), &ledgerv1.CreditRequest{OrgId: org, Amount: usd(amount), IdempotencyKey: key, Reason: "seed"})
	require.NoError(t, err)
}

func debit(t *testing.T, l ledgerv1.LedgerServiceClient, org string, amount money.Nanos, key string) {
	t.Helper()
	_, err := l.Debit(t.Context(), &ledgerv1.DebitRequest{OrgId: org, Amount: usd(amount), IdempotencyKey: key, Description: "usage"})
	require.NoError(t, err)
}

// automatic lists org's automatic payments, newest first.
func (e *env) automatic(t *testing.T, org string) []*paymentsv1.Payment {
	t.Helper()
	resp, err := e.member(t, org, false).ListPayments(t.Context(), &paymentsv1.ListPaymentsRequest{OrgId: org, PageSize: 200})
	require.NoError(t, err)
	var out []*paymentsv1.Payment
	for _, p := range resp.GetPayments() {
		if p.GetAutomatic() {
			out = append(out, p)
		}
	}
	return out
}

// settled waits until the recharge trigger has applied every ledger event and no recharge of
// org is in flight, charge or credit due.
func (e *env) settled(t *testing.T, org string) {
	t.Helper()
	require.Eventually(t, func() bool {
		var last, cursor int64
		var busy bool
		if err := e.sql(t, `SELECT coalesce(max(seq), 0) FROM ledger.events`).Scan(&last); err != nil {
			return false
		}
		if err := e.sql(t, `SELECT coalesce((SELECT seq FROM payments.recharge_cursors WHERE shard = 'main'), 0)`).Scan(&cursor); err != nil {
			return false
		}
		if err := e.sql(t, `SELECT EXISTS (SELECT 1 FROM payments.payments WHERE org_id = $1 AND automatic AND
(charge_after IS NOT NULL OR (fulfil_after IS NOT NULL AND credited_at IS NULL)))
OR EXISTS (SELECT 1 FROM payments.recharge_rules WHERE org_id = $1 AND in_flight IS NOT NULL)`, org).Scan(&busy); err != nil {
			return false
		}
		return cursor >= last && !busy
	}, 30*time.Second, 20*time.Millisecond)
}

// startRecharge starts payments on the database of its ledger, so that settled can read both.
func startRecharge(t *testing.T, o options) *env {
	t.Helper()
	if o.ledger == nil {
		o.ledger = ledgertest.Start(t, ledgertest.Options{})
	}
	o.dbURL = o.ledger.DatabaseURL
	return start(t, o)
}

func TestAutoRechargeFiresOnceWhenConcurrentDebitsCrossFromTwoReplicas(t *testing.T) {
	t.Parallel()
	l1 := ledgertest.Start(t, ledgertest.Options{})
	l2 := ledgertest.Start(t, ledgertest.Options{DatabaseURL: l1.DatabaseURL, RedisURL: l1.RedisURL})
	// Both triggers reload the rules at once (the rule is saved on e2 only), so that both race
	// for every crossing.
	refresh := func(c *service.Config) { c.RechargeRuleRefresh = 10 * time.Millisecond }
	e1 := start(t, options{ledger: l1, dbURL: l1.DatabaseURL, retry: 100 * time.Millisecond, configure: refresh})
	e2 := start(t, options{ledger: l2, dbURL: e1.dbURL, retry: 100 * time.Millisecond, configure: refresh})
	const org = "org-rc-once"
	e1.seed(t, org, 100*unit, "seed")
	e1.saveCard(t, org, payment.TestCardVisa)
	e2.rule(t, org, 50*unit, 25*unit, 0, 500*unit)

	// 20 debits of 3 from both ledger replicas: 100 → 40, one crossing of 50.
	backends := []ledgerv1.LedgerServiceClient{l1.Client(t, ledgertest.OpsToken(t)), l2.Client(t, ledgertest.OpsToken(t))}
	var wg sync.WaitGroup
	for i := range 20 {
		wg.Go(func() { debit(t, backends[i%2], org, 3*unit, fmt.Sprintf("use-%d", i)) })
	}
	wg.Wait()
	e1.settled(t, org)

	auto := e1.automatic(t, org)
	require.Len(t, auto, 1, "one recharge per crossing")
	require.Equal(t, paymentsv1.PaymentStatus_PAYMENT_STATUS_SUCCEEDED, auto[0].GetStatus())
	require.Equal(t, 25*unit, nanos(t, auto[0].GetAmount()))
	require.NotEmpty(t, auto[0].GetInvoiceNumber(), "every recharge has its invoice")
	require.Equal(t, 65*unit, nanos(t, e1.balance(t, org).GetBalance()))
	var keys int
	require.NoError(t, e1.sql(t, `SELECT count(*) FROM ledger.idempotency_keys WHERE key = $1`,
		"checkout:"+payment.RechargeSessionID(auto[0].GetId())).Scan(&keys))
	require.Equal(t, 1, keys, "credited with the checkout key of its pseudo session")

	// Back above the threshold the rule re-armed: the next crossing recharges once more.
	for i := range 6 {
		debit(t, backends[i%2], org, 3*unit, fmt.Sprintf("use2-%d", i))
	}
	e2.settled(t, org)
	require.Len(t, e1.automatic(t, org), 2)
	require.Equal(t, 72*unit, nanos(t, e1.balance(t, org).GetBalance()))
}

func TestAutoRechargeMonthlyCapHolds(t *testing.T) {
	t.Parallel()
	e := startRecharge(t, options{retry: 100 * time.Millisecond})
	const org = "org-rc-cap"
	e.seed(t, org, 60*unit, "seed")
	e.saveCard(t, org, payment.TestCardVisa)
	// Target 80 from below 50: each recharge tops up to 80, capped at 70 a month in all.
	e.rule(t, org, 50*unit, 0, 80*unit, 70*unit)

	debit(t, e.ledgerOps, org, 20*unit, "use-1") // 40: recharge 40 → 80
	e.settled(t, org)
	debit(t, e.ledgerOps, org, 50*unit, "use-2") // 30: 50 would reach 80, 30 remain of the cap → 60
	e.settled(t, org)
	debit(t, e.ledgerOps, org, 20*unit, "use-3") // 40: the cap is spent, no recharge
	e.settled(t, org)

	auto := e.automatic(t, org)
	require.Len(t, auto, 2)
	require.Equal(t, 30*unit, nanos(t, auto[0].GetAmount()))
	require.Equal(t, 40*unit, nanos(t, auto[1].GetAmount()))
	require.Equal(t, 40*unit, nanos(t, e.balance(t, org).GetBalance()))
	got, err := e.member(t, org, false).GetAutoRecharge(t.Context(), &paymentsv1.GetAutoRechargeRequest{OrgId: org})
	require.NoError(t, err)
	require.Equal(t, 70*unit, nanos(t, got.GetRule().GetMonthSpent()))
}

func TestAutoRechargeThreeDeclinesDisableTheRule(t *testing.T) {
	t.Parallel()
	e := startRecharge(t, options{retry: 100 * time.Millisecond})
	const org = "org-rc-declined"
	e.seed(t, org, 60*unit, "seed")
	e.saveCard(t, org, payment.TestCardDeclined)
	e.rule(t, org, 50*unit, 20*unit, 0, 500*unit)

	for i := range 4 {
		debit(t, e.ledgerOps, org, 20*unit, fmt.Sprintf("use-%d", i)) // below 50
		e.settled(t, org)
		e.seed(t, org, 20*unit, fmt.Sprintf("back-%d", i)) // back above: re-armed
		e.settled(t, org)
	}
	auto := e.automatic(t, org)
	require.Len(t, auto, 3, "the third decline in a row disabled the rule: no fourth attempt")
	for _, p := range auto {
		require.Equal(t, paymentsv1.PaymentStatus_PAYMENT_STATUS_FAILED, p.GetStatus())
		require.Equal(t, string(payment.ChargeDeclined), p.GetFailureReason())
		require.Empty(t, p.GetInvoiceNumber())
	}
	got, err := e.member(t, org, false).GetAutoRecharge(t.Context(), &paymentsv1.GetAutoRechargeRequest{OrgId: org})
	require.NoError(t, err)
	require.False(t, got.GetRule().GetEnabled())
	require.Equal(t, int32(3), got.GetRule().GetConsecutiveFailures())
	require.Contains(t, got.GetRule().GetDisabledReason(), "3 failed recharges in a row")
	require.Equal(t, 60*unit, nanos(t, e.balance(t, org).GetBalance()))
}

func TestAutoRechargeSetupAndRulePolicy(t *testing.T) {
	t.Parallel()
	e := startRecharge(t, options{})
	const org = "org-rc-policy"
	_, err := e.member(t, org, false).CreatePaymentMethodSetup(t.Context(), &paymentsv1.CreatePaymentMethodSetupRequest{OrgId: org})
	requireCode(t, err, 7) // PermissionDenied: members read only
	_, err = e.member(t, org, true).UpdateAutoRecharge(t.Context(), &paymentsv1.UpdateAutoRechargeRequest{OrgId: org,
		Rule: &paymentsv1.AutoRechargeRule{Enabled: true, Threshold: usd(10 * unit), Amount: usd(20 * unit), MonthlyCap: usd(100 * unit)}})
	requireCode(t, err, 9) // FailedPrecondition: no card saved
	_, err = e.member(t, org, true).UpdateAutoRecharge(t.Context(), &paymentsv1.UpdateAutoRechargeRequest{OrgId: org,
		Rule: &paymentsv1.AutoRechargeRule{Enabled: true, Threshold: usd(10 * unit), Amount: usd(20 * unit), TargetBalance: usd(30 * unit),
			MonthlyCap: usd(100 * unit)}})
	requireCode(t, err, 3) // InvalidArgument: both a fixed amount and a target
	e.saveCard(t, org, payment.TestCardVisa)
	got, err := e.member(t, org, false).GetAutoRecharge(t.Context(), &paymentsv1.GetAutoRechargeRequest{OrgId: org})
	require.NoError(t, err)
	require.Equal(t, "visa", got.GetPaymentMethod().GetBrand())
	require.Equal(t, "4242", got.GetPaymentMethod().GetLast4())
	require.Equal(t, int32(12), got.GetPaymentMethod().GetExpMonth())
	require.True(t, got.GetPaymentMethod().GetTestMode())
	_, err = e.member(t, org, true).RemovePaymentMethod(t.Context(), &paymentsv1.RemovePaymentMethodRequest{OrgId: org})
	require.NoError(t, err)
	got, err = e.member(t, org, false).GetAutoRecharge(t.Context(), &paymentsv1.GetAutoRechargeRequest{OrgId: org})
	require.NoError(t, err)
	require.Nil(t, got.GetPaymentMethod())
}

// In Stripe mode (stripe-mock) the card is saved from the completed setup session's SetupIntent
// and the recharge is a PaymentIntent confirmed off-session. stripe-mock answers with a fixture
// that is not settled (requires_payment_method), which tally takes as accepted and pending: the
// recharge stays in flight until payment_intent.succeeded credits it, once.
func TestAutoRechargeStripeMode(t *testing.T) {
	t.Parallel()
	e := startRecharge(t, options{stripe: true, retry: 100 * time.Millisecond})
	const org = "org-rc-stripe"
	e.seed(t, org, 60*unit, "seed")
	admin := e.member(t, org, true)
	setup, err := admin.CreatePaymentMethodSetup(t.Context(), &paymentsv1.CreatePaymentMethodSetupRequest{OrgId: org})
	require.NoError(t, err)
	require.NotEmpty(t, setup.GetSessionId())
	body, err := stripeevent.EventPayload("evt_setup_1", payment.EventCheckoutCompleted, time.Now(), stripeevent.SessionObject{
		ID: setup.GetSessionId(), Object: "checkout.session", Status: "complete", PaymentStatus: "no_payment_required", Mode: "setup",
		SetupIntent: "seti_1", PaymentMethodTypes: []string{"card"}, ClientReferenceID: org, Metadata: map[string]string{payment.MetaOrgID: org},
	})
	require.NoError(t, err)
	e.mustDeliver(t, body, "processed")
	got, err := admin.GetAutoRecharge(t.Context(), &paymentsv1.GetAutoRechargeRequest{OrgId: org})
	require.NoError(t, err)
	require.NotNil(t, got.GetPaymentMethod(), "saved from the SetupIntent")
	require.False(t, got.GetPaymentMethod().GetTestMode())
	require.NotEmpty(t, got.GetPaymentMethod().GetLast4())

	e.rule(t, org, 50*unit, 20*unit, 0, 500*unit)
	debit(t, e.ledgerOps, org, 20*unit, "use")
	var intentID, paymentID string
	require.Eventually(t, func() bool {
		err := e.sql(t, `SELECT id::text, coalesce(payment_intent_id, '') FROM payments.payments WHERE org_id = $1 AND automatic
AND charge_after IS NULL`, org).Scan(&paymentID, &intentID)
		return err == nil && intentID != ""
	}, 30*time.Second, 20*time.Millisecond)
	got, err = admin.GetAutoRecharge(t.Context(), &paymentsv1.GetAutoRechargeRequest{OrgId: org})
	require.NoError(t, err)
	require.True(t, got.GetRule().GetInFlight(), "pending at Stripe")

	for _, outcome := range []string{"processed", "duplicate"} {
		intent, err := stripeevent.EventPayload("evt_pi_1", payment.EventIntentSucceeded, time.Now(), map[string]any{
			"id": intentID, "object": "payment_intent", "status": "succeeded", "amount_received": 2000, "currency": "usd",
			"metadata": map[string]string{payment.MetaPaymentID: paymentID, payment.MetaOrgID: org},
		})
		require.NoError(t, err)
		e.mustDeliver(t, intent, outcome)
	}
	e.settled(t, org)
	auto := e.automatic(t, org)
	require.Len(t, auto, 1)
	require.Equal(t, paymentsv1.PaymentStatus_PAYMENT_STATUS_SUCCEEDED, auto[0].GetStatus())
	require.False(t, auto[0].GetTestMode())
	require.NotEmpty(t, auto[0].GetInvoiceNumber())
	require.Equal(t, 60*unit, nanos(t, e.balance(t, org).GetBalance()), "credited once")
}

// A replica that dies after Stripe charged the card but before recording the answer leaves the
// payment claimed (charge due, the rule's recharge in flight); a restarted replica's retry worker
// sends the same charge (key recharge:<payment id>) and records it: neither doubled nor lost.
func TestAutoRechargeResumedAfterARestartMidRecharge(t *testing.T) {
	t.Parallel()
	l := ledgertest.Start(t, ledgertest.Options{})
	e := startRecharge(t, options{ledger: l, retry: 100 * time.Millisecond})
	const org = "org-rc-restart"
	e.seed(t, org, 60*unit, "seed")
	e.saveCard(t, org, payment.TestCardVisa)
	e.rule(t, org, 50*unit, 20*unit, 0, 500*unit)
	debit(t, e.ledgerOps, org, 20*unit, "use")
	e.settled(t, org)
	auto := e.automatic(t, org)
	require.Len(t, auto, 1)

	// The replica stops; the database is put back in the state a crash after the charge leaves.
	e.stop()
	var n int64
	require.NoError(t, e.sql(t, `WITH p AS (UPDATE payments.payments SET charge_after = now() - interval '1 second', fulfil_after = NULL
WHERE id = $1 RETURNING org_id) UPDATE payments.recharge_rules r SET in_flight = $1::uuid FROM p WHERE r.org_id = p.org_id RETURNING 1`,
		auto[0].GetId()).Scan(&n))
	e2 := start(t, options{ledger: l, dbURL: e.dbURL, retry: 100 * time.Millisecond})
	e2.settled(t, org)

	auto = e2.automatic(t, org)
	require.Len(t, auto, 1, "the resumed charge is the same payment")
	require.Equal(t, paymentsv1.PaymentStatus_PAYMENT_STATUS_SUCCEEDED, auto[0].GetStatus())
	require.Equal(t, 60*unit, nanos(t, e2.balance(t, org).GetBalance()), "credited once")
	got, err := e2.member(t, org, false).GetAutoRecharge(t.Context(), &paymentsv1.GetAutoRechargeRequest{OrgId: org})
	require.NoError(t, err)
	require.False(t, got.GetRule().GetInFlight())
	require.Zero(t, got.GetRule().GetConsecutiveFailures())
}
