package test

import (
	"net/http"
	"net/url"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	paymentsv1 "github.com/tallyhq/tally/pkg/gen/tally/payments/v1"
	"github.com/tallyhq/tally/pkg/money"
	"github.com/tallyhq/tally/services/payments/internal/app"
	"github.com/tallyhq/tally/services/payments/internal/payment"
	"github.com/tallyhq/tally/services/payments/internal/service"
	"github.com/tallyhq/tally/services/payments/internal/stripeevent"
)

// stripeSetupEvent is Stripe's checkout.session event id of a setup session in status.
func stripeSetupEvent(t *testing.T, id, org, sessionID, typ, status string) []byte {
	t.Helper()
	body, err := stripeevent.EventPayload(id, typ, time.Now(), stripeevent.SessionObject{
		ID: sessionID, Object: "checkout.session", Status: status, PaymentStatus: "no_payment_required", Mode: "setup",
		SetupIntent: "seti_1", PaymentMethodTypes: []string{"card"}, ClientReferenceID: org, Metadata: map[string]string{payment.MetaOrgID: org},
	})
	require.NoError(t, err)
	return body
}

// saveStripeCard opens a Stripe setup session for org and delivers its completion.
func (e *env) saveStripeCard(t *testing.T, org string) {
	t.Helper()
	setup, err := e.member(t, org, true).CreatePaymentMethodSetup(t.Context(), &paymentsv1.CreatePaymentMethodSetupRequest{OrgId: org})
	require.NoError(t, err)
	e.mustDeliver(t, stripeSetupEvent(t, "evt_setup_"+org, org, setup.GetSessionId(), payment.EventCheckoutCompleted, "complete"), "processed")
}

// A charge Stripe left processing whose webhook never comes is looked up at Stripe after the
// pending check and settled from the PaymentIntent's real status.
func TestAutoRechargeSettlesAChargeStuckInProcessing(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name     string
		intent   string
		status   paymentsv1.PaymentStatus
		balance  money.Nanos
		failures int32
	}{
		{"succeeded", "succeeded", paymentsv1.PaymentStatus_PAYMENT_STATUS_SUCCEEDED, 60, 0},
		{"canceled", "canceled", paymentsv1.PaymentStatus_PAYMENT_STATUS_FAILED, 40, 1},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			proxy := startStripeProxy(t)
			proxy.setIntentStatus(tt.intent)
			e := startRecharge(t, options{stripe: true, stripeURL: proxy.URL, retry: 100 * time.Millisecond,
				configure: func(c *service.Config) { c.PendingChargeCheck = 300 * time.Millisecond }})
			org := "org-rc-stuck-" + tt.name
			e.seed(t, org, 60*unit, "seed")
			e.saveStripeCard(t, org)
			e.rule(t, org, 50*unit, 20*unit, 0, 500*unit)
			debit(t, e.ledgerOps, org, 20*unit, "use")
			e.settled(t, org) // stripe-mock answers the charge processing; no payment_intent webhook is ever sent

			_, reads := proxy.counts()
			require.Positive(t, reads, "the PaymentIntent was looked up")
			auto := e.automatic(t, org)
			require.Len(t, auto, 1)
			require.Equal(t, tt.status, auto[0].GetStatus())
			require.Equal(t, tt.balance*unit, nanos(t, e.balance(t, org).GetBalance()))
			got, err := e.member(t, org, false).GetAutoRecharge(t.Context(), &paymentsv1.GetAutoRechargeRequest{OrgId: org})
			require.NoError(t, err)
			require.False(t, got.GetRule().GetInFlight(), "the org's next recharge is no longer blocked")
			require.Equal(t, tt.failures, got.GetRule().GetConsecutiveFailures())
		})
	}
}

func TestSetupSessionsShareTheOrganizationsStripeCustomer(t *testing.T) {
	t.Parallel()
	proxy := startStripeProxy(t)
	e := start(t, options{stripe: true, stripeURL: proxy.URL})
	const org = "org-setup-customer"
	admin := e.member(t, org, true)
	for range 3 {
		_, err := admin.CreatePaymentMethodSetup(t.Context(), &paymentsv1.CreatePaymentMethodSetupRequest{OrgId: org})
		require.NoError(t, err)
	}
	customers, _ := proxy.counts()
	require.Equal(t, 1, customers, "one Stripe Customer per organization")
	var n int
	require.NoError(t, e.sql(t, `SELECT count(*) FROM payments.processor_customers WHERE org_id = $1`, org).Scan(&n))
	require.Equal(t, 1, n)
}

func TestStripeSetupSessionExpires(t *testing.T) {
	t.Parallel()
	e := start(t, options{stripe: true})
	const org = "org-setup-expired"
	setup, err := e.member(t, org, true).CreatePaymentMethodSetup(t.Context(), &paymentsv1.CreatePaymentMethodSetupRequest{OrgId: org})
	require.NoError(t, err)
	e.mustDeliver(t, stripeSetupEvent(t, "evt_setup_expired", org, setup.GetSessionId(), payment.EventCheckoutExpired, "expired"), "processed")
	var expired bool
	require.NoError(t, e.sql(t, `SELECT expired_at IS NOT NULL FROM payments.setup_sessions WHERE id = $1`, setup.GetSessionId()).Scan(&expired))
	require.True(t, expired)
	// A completion delivered late saves no card on an expired session.
	e.mustDeliver(t, stripeSetupEvent(t, "evt_setup_late", org, setup.GetSessionId(), payment.EventCheckoutCompleted, "complete"), "processed")
	got, err := e.member(t, org, true).GetAutoRecharge(t.Context(), &paymentsv1.GetAutoRechargeRequest{OrgId: org})
	require.NoError(t, err)
	require.Nil(t, got.GetPaymentMethod())
}

// TestLocalSetupExpirySweep: past their expiry, an abandoned test-mode setup session expires and
// one whose card was chosen (its webhook lost) saves that card.
func TestLocalSetupExpirySweep(t *testing.T) {
	t.Parallel()
	e := start(t, options{dropWebhooks: true})
	const org = "org-setup-sweep"
	admin := e.member(t, org, true)
	abandoned, err := admin.CreatePaymentMethodSetup(t.Context(), &paymentsv1.CreatePaymentMethodSetupRequest{OrgId: org})
	require.NoError(t, err)
	chosen, err := admin.CreatePaymentMethodSetup(t.Context(), &paymentsv1.CreatePaymentMethodSetupRequest{OrgId: org})
	require.NoError(t, err)
	resp, err := noRedirectClient().PostForm(chosen.GetUrl()+"/save", url.Values{"card": {payment.TestCardVisa}})
	require.NoError(t, err)
	require.NoError(t, resp.Body.Close())
	require.Equal(t, http.StatusBadGateway, resp.StatusCode, "the webhook was lost")
	var n int
	require.NoError(t, e.sql(t, `WITH u AS (UPDATE payments.setup_sessions SET expires_at = now() - interval '1 hour' WHERE org_id = $1
RETURNING 1) SELECT count(*) FROM u`, org).Scan(&n))
	require.Equal(t, 2, n)

	rep, err := e.svc.SweepExpiredSetups(t.Context())
	require.NoError(t, err)
	require.Equal(t, app.SetupExpiryReport{Checked: 2, Expired: 1, Saved: 1}, rep)
	got, err := admin.GetAutoRecharge(t.Context(), &paymentsv1.GetAutoRechargeRequest{OrgId: org})
	require.NoError(t, err)
	require.NotNil(t, got.GetPaymentMethod(), "the chosen card is saved")
	resp, err = noRedirectClient().PostForm(abandoned.GetUrl()+"/save", url.Values{"card": {payment.TestCardVisa}})
	require.NoError(t, err)
	require.NoError(t, resp.Body.Close())
	require.Equal(t, http.StatusConflict, resp.StatusCode, "an expired session saves no card")
	rep, err = e.svc.SweepExpiredSetups(t.Context())
	require.NoError(t, err)
	require.Zero(t, rep.Checked, "settled sessions are not swept again")
}
