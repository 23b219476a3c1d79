package chaos

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"time"

	"google.golang.org/grpc/status"

	"github.com/tallyhq/tally/pkg/auth"
	ledgerv1 "github.com/tallyhq/tally/pkg/gen/tally/ledger/v1"
	paymentsv1 "github.com/tallyhq/tally/pkg/gen/tally/payments/v1"
)

// rechargeRestart is the fault suite's auto-recharge scenario: organizations with a saved card
// and a rule cross their threshold, and payments is killed (kill -9) right after, while their
// recharges are claimed and being charged. Each crossing must end in exactly one automatic
// payment, credited once with its "checkout:recharge_<payment id>" key: none doubled by the
// restarted replica resuming the charge (same Stripe key), none lost.
var rechargeRestart = Scenario{
	Name:     "recharge-restart",
	Fault:    "payments kill -9 right after auto-recharge thresholds are crossed, with the recharges claimed and in flight",
	Payments: true, Recovery: RecoverWebhook, Inject: injectRechargeRestart, After: afterRecharges,
}

// rechargeOrgs is how many organizations cross their threshold in recharge-restart.
const rechargeOrgs = 4

// Recharge amounts of the scenario (units): granted, debited to cross, the threshold and the
// fixed recharge.
const (
	rechargeGrant     = 100
	rechargeDebit     = 60
	rechargeThreshold = 50
	rechargeAmount    = 25
)

// rechargeOrg names organization i: outside "<tag>-", so the debit checks leave it alone.
func (r *run) rechargeOrg(i int) string { return fmt.Sprintf("rc-%s-%02d", r.tag, i) }

func (r *run) adminPayments(org string) (paymentsv1.PaymentsServiceClient, error) {
	conn, err := r.stack.memberConn("payments", org, auth.RoleAdmin)
	if err != nil {
		return nil, err
	}
	return paymentsv1.NewPaymentsServiceClient(conn), nil
}

// stripeEvent builds the body of a Stripe event of typ carrying obj.
func stripeEvent(id, typ string, obj any) ([]byte, error) {
	raw, err := json.Marshal(obj)
	if err != nil {
		return nil, fmt.Errorf("encoding the event object: %w", err)
	}
	return json.Marshal(map[string]any{
		"id": id, "object": "event", "type": typ, "api_version": stripeAPIVersion, "created": time.Now().Unix(),
		"livemode": false, "pending_webhooks": 1, "data": map[string]json.RawMessage{"object": raw},
	})
}

// deliverUntilOK delivers payload until a 2xx, for at most a minute.
func (r *run) deliverUntilOK(ctx context.Context, payload []byte) error {
	client := &http.Client{}
	deadline := time.Now().Add(time.Minute)
	for {
		code, err := r.stack.deliverWebhook(ctx, client, payload)
		if code >= 200 && code < 300 {
			r.noteHook(time.Now())
			return nil
		}
		if time.Now().After(deadline) {
			return fmt.Errorf("webhook never accepted (last status %d): %w", code, err)
		}
		if !pause(ctx, 200*time.Millisecond) {
			return ctx.Err()
		}
	}
}

// prepareRecharge grants org, saves its card (a completed setup session, as Stripe reports it)
// and enables its rule.
func (r *run) prepareRecharge(ctx context.Context, org string) error {
	if err := r.grantOrg(ctx, org, rechargeGrant*unit, ledgerv1.CreditSource_CREDIT_SOURCE_GRANT); err != nil {
		return err
	}
	admin, err := r.adminPayments(org)
	if err != nil {
		return err
	}
	var setup *paymentsv1.CreatePaymentMethodSetupResponse
	if err := retryCall(ctx, func(cctx context.Context) error {
		setup, err = admin.CreatePaymentMethodSetup(cctx, &paymentsv1.CreatePaymentMethodSetupRequest{OrgId: org})
		return err
	}); err != nil {
		return fmt.Errorf("opening the setup session of %s: %w", org, err)
	}
	body, err := stripeEvent("evt_chaos_setup_"+org, eventCheckoutCompleted, map[string]any{
		"id": setup.GetSessionId(), "object": "checkout.session", "status": "complete", "payment_status": "no_payment_required",
		"mode": "setup", "setup_intent": "seti_chaos_" + org, "payment_method_types": []string{"card"}, "client_reference_id": org,
		"metadata": map[string]string{metaOrgID: org},
	})
	if err != nil {
		return err
	}
	if err := r.deliverUntilOK(ctx, body); err != nil {
		return fmt.Errorf("saving the card of %s: %w", org, err)
	}
	rule := &paymentsv1.AutoRechargeRule{Enabled: true, Threshold: usd(rechargeThreshold * unit), Amount: usd(rechargeAmount * unit),
		MonthlyCap: usd(1000 * unit)}
	return retryCall(ctx, func(cctx context.Context) error {
		_, err := admin.UpdateAutoRecharge(cctx, &paymentsv1.UpdateAutoRechargeRequest{OrgId: org, Rule: rule})
		return err
	})
}

func injectRechargeRestart(ctx context.Context, r *run) error {
	for i := range rechargeOrgs {
		if err := r.prepareRecharge(ctx, r.rechargeOrg(i)); err != nil {
			return err
		}
	}
	// Cross every threshold, then kill payments while the trigger claims and charges them.
	for i := range rechargeOrgs {
		org := r.rechargeOrg(i)
		req := &ledgerv1.DebitRequest{OrgId: org, Amount: usd(rechargeDebit * unit), IdempotencyKey: r.tag + "-rc-use-" + org, Description: "chaos usage"}
		if err := retryCall(ctx, func(cctx context.Context) error { _, err := r.stack.LedgerBackend.Debit(cctx, req); return err }); err != nil {
			return fmt.Errorf("debiting %s: %w", org, err)
		}
	}
	// Kill as soon as the first recharge is claimed: the others are claimed or charged as the
	// process dies, or left to the restarted replica (from the shared cursor).
	like := "rc-" + r.tag + "-%"
	deadline := time.Now().Add(30 * time.Second)
	var claimed, uncharged int
	for claimed == 0 {
		var err error
		if claimed, err = r.count(ctx, `SELECT count(*) FROM payments.payments WHERE automatic AND org_id LIKE $1`, like); err != nil {
			return err
		}
		if claimed == 0 && (time.Now().After(deadline) || !pause(ctx, 5*time.Millisecond)) {
			return errors.New("no recharge was claimed within 30s of the crossings")
		}
	}
	if err := r.killService(ctx, "payments", func() {
		uncharged, _ = r.count(context.WithoutCancel(ctx), `SELECT count(*) FROM payments.payments WHERE automatic AND org_id LIKE $1
AND charge_after IS NOT NULL`, like)
		claimed, _ = r.count(context.WithoutCancel(ctx), `SELECT count(*) FROM payments.payments WHERE automatic AND org_id LIKE $1`, like)
		r.lift()
	}); err != nil {
		return err
	}
	r.observe("payments killed with %d of %d recharges claimed, %d of them not charged yet, the others in flight at Stripe (%d restarts)",
		claimed, rechargeOrgs, uncharged, r.stack.Service("payments").Restarts())
	return nil
}

// afterRecharges waits until every organization's recharge was claimed and charged, delivers
// Stripe's payment_intent.succeeded for each (stripe-mock leaves a PaymentIntent unsettled),
// and checks that each crossing was recharged and credited exactly once.
func afterRecharges(ctx context.Context, r *run) error {
	deadline := time.Now().Add(time.Minute)
	for i := range rechargeOrgs {
		org := r.rechargeOrg(i)
		var paymentID, intent string
		for {
			cctx, cancel := context.WithTimeout(ctx, queryTimeout)
			err := r.stack.DB.QueryRow(cctx, `SELECT id::text, coalesce(payment_intent_id, '') FROM payments.payments
WHERE automatic AND org_id = $1 AND charge_after IS NULL ORDER BY id LIMIT 1`, org).Scan(&paymentID, &intent)
			cancel()
			if err == nil && intent != "" {
				break
			}
			if time.Now().After(deadline) {
				return fmt.Errorf("the recharge of %s was never charged (lost): %w", org, err)
			}
			if !pause(ctx, 100*time.Millisecond) {
				return ctx.Err()
			}
		}
		body, err := stripeEvent("evt_chaos_pi_"+paymentID, "payment_intent.succeeded", map[string]any{
			"id": intent, "object": "payment_intent", "status": "succeeded", "amount_received": rechargeAmount * 100, "currency": "usd",
			"metadata": map[string]string{metaPaymentID: paymentID, metaOrgID: org},
		})
		if err != nil {
			return err
		}
		if err := r.deliverUntilOK(ctx, body); err != nil {
			return fmt.Errorf("paying the recharge of %s: %w", org, err)
		}
	}
	var errs []error
	for i := range rechargeOrgs {
		org := r.rechargeOrg(i)
		payments, err := r.count(ctx, `SELECT count(*) FROM payments.payments WHERE automatic AND org_id = $1`, org)
		if err != nil {
			return err
		}
		credits, err := r.count(ctx, `SELECT count(*) FROM ledger.transactions WHERE org_id = $1 AND idempotency_key LIKE 'checkout:recharge_%'`, org)
		if err != nil {
			return err
		}
		member, err := r.member(org)
		if err != nil {
			return err
		}
		var bal int64
		balance, err := r.stack.LedgerOps.GetBalance(ctx, &ledgerv1.GetBalanceRequest{OrgId: org})
		if err != nil {
			return fmt.Errorf("reading the balance of %s: %s", org, status.Convert(err).Message())
		}
		bal = balance.GetBalance().GetUnits()
		list, err := member.ListPayments(ctx, &paymentsv1.ListPaymentsRequest{OrgId: org})
		if err != nil {
			return err
		}
		invoiced := 0
		for _, p := range list.GetPayments() {
			if p.GetAutomatic() && p.GetInvoiceNumber() != "" {
				invoiced++
			}
		}
		want := int64(rechargeGrant - rechargeDebit + rechargeAmount)
		switch {
		case payments != 1:
			errs = append(errs, fmt.Errorf("%s: %d automatic payments for one crossing", org, payments))
		case credits != 1:
			errs = append(errs, fmt.Errorf("%s: %d recharge credits in the ledger", org, credits))
		case bal != want:
			errs = append(errs, fmt.Errorf("%s: balance %d, want %d", org, bal, want))
		case invoiced != 1:
			errs = append(errs, fmt.Errorf("%s: the recharge has no invoice", org))
		}
	}
	if err := errors.Join(errs...); err != nil {
		return fmt.Errorf("recharge-restart: %w", err)
	}
	r.note("%d crossings, each recharged and credited once across the restart", rechargeOrgs)
	return nil
}
