package app

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/tallyhq/tally/pkg/ids"
	"github.com/tallyhq/tally/pkg/money"
	"github.com/tallyhq/tally/services/payments/internal/payment"
	"github.com/tallyhq/tally/services/payments/internal/store"
)

// RechargeFailure is the email owed to an organization's admins for a failed automatic payment.
type RechargeFailure struct {
	OrgID     string
	PaymentID string
	Reason    payment.ChargeStatus
	Message   string
	Amount    money.Money
	// Failures counts the failures in a row, this one included; Disabled is set when it disabled the rule.
	Failures   int
	Disabled   bool
	Recipients []string
}

// Notifier hands failure emails to the notifications service, idempotently per payment.
type Notifier interface {
	RechargeFailed(ctx context.Context, f RechargeFailure) error
}

// recharger is the processor's auto-recharge side, or ErrFailedPrecondition.
func (a *App) recharger() (payment.Recharger, error) {
	r, ok := a.proc.(payment.Recharger)
	if !ok {
		return nil, fmt.Errorf("%w: this processor cannot save cards", payment.ErrFailedPrecondition)
	}
	return r, nil
}

// setupExpiry is how long a setup session stays open (Stripe's smallest Checkout expiry is 30 minutes).
const setupExpiry = time.Hour

// CreatePaymentMethodSetup opens a setup session in which an admin saves the organization's card.
func (a *App) CreatePaymentMethodSetup(ctx context.Context, orgID string, member payment.Member) (payment.CreatedSession, error) {
	if err := ids.OrgID(orgID); err != nil {
		return payment.CreatedSession{}, err
	}
	if member.ID == "" {
		return payment.CreatedSession{}, fmt.Errorf("%w: the caller has no member id", payment.ErrInvalid)
	}
	rc, err := a.recharger()
	if err != nil {
		return payment.CreatedSession{}, err
	}
	customer, err := a.store.Customer(ctx, orgID, a.proc.Mode())
	if err != nil {
		return payment.CreatedSession{}, err
	}
	expires := a.now().Add(setupExpiry).UTC().Truncate(time.Second)
	cs, err := rc.CreateSetup(ctx, payment.SetupRequest{SessionID: store.NewID(), OrgID: orgID, Member: member, ExpiresAt: expires,
		CustomerID: customer})
	if err != nil {
		return payment.CreatedSession{}, err
	}
	if customer == "" && cs.CustomerID != "" {
		if err := a.store.KeepCustomer(ctx, orgID, a.proc.Mode(), cs.CustomerID); err != nil {
			return payment.CreatedSession{}, err
		}
	}
	if err := a.store.InsertSetupSession(ctx, payment.SetupSession{ID: cs.ID, OrgID: orgID, Mode: a.proc.Mode(), Member: member,
		URL: cs.URL, ExpiresAt: expires}); err != nil {
		return payment.CreatedSession{}, err
	}
	a.logger.InfoContext(ctx, "setup session created", "org_id", orgID, "session_id", cs.ID, "mode", string(a.proc.Mode()))
	return cs, nil
}

// applySetup saves the card of a completed setup session (checkout.session.completed in setup
// mode), or expires an abandoned one (checkout.session.expired): the processor is asked for the
// card outside any transaction, then the card and the event are recorded; a redelivery saves
// nothing twice.
func (a *App) applySetup(ctx context.Context, s payment.Session, rec store.EventRecord) (string, error) {
	ss, err := a.store.SetupSession(ctx, s.ID)
	if errors.Is(err, payment.ErrNotFound) {
		rec.Outcome = OutcomeIgnored
		return a.recordOnly(ctx, rec, nil)
	}
	if err != nil {
		return "", err
	}
	if seen, err := a.store.EventSeen(ctx, rec.ID); err != nil || seen {
		return OutcomeDuplicate, err
	}
	switch s.Status {
	case "complete":
		if err := a.saveSetup(ctx, ss, s.SetupIntentID); err != nil {
			return "", err
		}
	case "expired":
		if err := a.expireSetup(ctx, ss); err != nil {
			return "", err
		}
	default:
		rec.Outcome = OutcomeIgnored
	}
	return a.recordOnly(ctx, rec, nil)
}

// saveSetup saves the card a completed setup session saved at the processor (a session that
// expired first saves none).
func (a *App) saveSetup(ctx context.Context, ss payment.SetupSession, setupIntentID string) error {
	rc, ok := a.proc.(payment.Recharger)
	if !ok {
		return nil // a processor that saves no cards has no card to record
	}
	m, done, err := rc.SetupMethod(ctx, ss, setupIntentID)
	if err != nil || !done {
		return err
	}
	saved, err := a.store.SaveMethod(ctx, m)
	if err != nil {
		return err
	}
	if saved {
		a.logger.InfoContext(ctx, "payment method saved", "org_id", ss.OrgID, "session_id", ss.ID, "brand", m.Brand, "last4", m.Last4)
	}
	return nil
}

// expireSetup marks an abandoned setup session expired.
func (a *App) expireSetup(ctx context.Context, ss payment.SetupSession) error {
	expired, err := a.store.ExpireSetup(ctx, ss.ID)
	if expired {
		a.logger.InfoContext(ctx, "abandoned setup session expired", "org_id", ss.OrgID, "session_id", ss.ID)
	}
	return err
}

// RemovePaymentMethod forgets the organization's saved card.
func (a *App) RemovePaymentMethod(ctx context.Context, orgID string) error {
	if err := ids.OrgID(orgID); err != nil {
		return err
	}
	return a.store.DeleteMethod(ctx, orgID)
}

// AutoRecharge is an organization's saved card (nil when none) and auto-recharge rule.
type AutoRecharge struct {
	Method *payment.SavedMethod
	Rule   payment.RechargeRule
}

// GetAutoRecharge returns the organization's saved card and rule (a disabled one when never set).
func (a *App) GetAutoRecharge(ctx context.Context, orgID string) (AutoRecharge, error) {
	if err := ids.OrgID(orgID); err != nil {
		return AutoRecharge{}, err
	}
	var out AutoRecharge
	m, err := a.store.PaymentMethod(ctx, orgID)
	switch {
	case err == nil:
		out.Method = &m
	case !errors.Is(err, payment.ErrNotFound):
		return AutoRecharge{}, err
	}
	out.Rule, err = a.store.RechargeRule(ctx, orgID)
	if errors.Is(err, payment.ErrNotFound) {
		currency, cerr := a.orgCurrency(ctx, orgID)
		if cerr != nil {
			return AutoRecharge{}, cerr
		}
		out.Rule, err = payment.RechargeRule{OrgID: orgID, Currency: currency, State: payment.RuleArmed}, nil
	}
	return out, err
}

// UpdateAutoRecharge replaces the organization's rule. Amounts are in the organization's currency;
// enabling needs a saved card.
func (a *App) UpdateAutoRecharge(ctx context.Context, orgID string, by payment.Member, r payment.RuleSettings) (payment.RechargeRule, error) {
	if err := ids.OrgID(orgID); err != nil {
		return payment.RechargeRule{}, err
	}
	currency, err := a.orgCurrency(ctx, orgID)
	if err != nil {
		return payment.RechargeRule{}, err
	}
	if r.Currency == "" {
		r.Currency = currency
	}
	if r.Currency != currency {
		return payment.RechargeRule{}, fmt.Errorf("%w: organization %s pays in %s, not %s", payment.ErrInvalid, orgID, currency, r.Currency)
	}
	for _, n := range []money.Nanos{r.Threshold, r.Amount, r.Target, r.MonthlyCap} {
		if err := payment.CheckRequestAmount(n, a.cfg.MaxRequestAmount); err != nil {
			return payment.RechargeRule{}, err
		}
	}
	if err := payment.CheckRule(r, a.cfg.TopUpMin, min(a.cfg.TopUpMax, a.cfg.MaxRequestAmount)); err != nil {
		return payment.RechargeRule{}, err
	}
	if r.Enabled {
		if _, err := a.store.PaymentMethod(ctx, orgID); errors.Is(err, payment.ErrNotFound) {
			return payment.RechargeRule{}, fmt.Errorf("%w: save a card before enabling auto-recharge", payment.ErrFailedPrecondition)
		} else if err != nil {
			return payment.RechargeRule{}, err
		}
	}
	rule, err := a.store.PutRule(ctx, orgID, r, by)
	if err != nil {
		return payment.RechargeRule{}, err
	}
	a.rules.changed(orgID)
	a.logger.InfoContext(ctx, "auto-recharge rule saved", "org_id", orgID, "enabled", r.Enabled, "by", by.ID)
	return rule, nil
}

// charge charges a claimed automatic payment's card with the key "recharge:<payment id>" and
// records the answer; a success is then credited through the fulfilment path every top-up takes
// (ledger key "checkout:recharge_<payment id>"). A dependency failure leaves the charge due: the
// retry worker sends the same charge again after the backoff.
func (a *App) charge(ctx context.Context, p payment.Payment) error {
	ctx, cancel := context.WithTimeout(ctx, a.workTimeout())
	defer cancel()
	rc, err := a.recharger()
	if err != nil {
		return err
	}
	res, err := a.chargeOnce(ctx, rc, p)
	if err != nil {
		a.logger.WarnContext(ctx, "auto-recharge charge failed, retrying later", "payment_id", p.ID, "org_id", p.OrgID, "err", err)
		rctx, rcancel := context.WithTimeout(context.WithoutCancel(ctx), recordTimeout)
		defer rcancel()
		if rerr := a.store.RetryCharge(rctx, p.ID, a.now().Add(a.cfg.Backoff.Delay(1))); rerr != nil {
			err = errors.Join(err, rerr)
		}
		return err
	}
	return a.settleCharge(ctx, p, res)
}

// settleCharge records the processor's answer to an automatic payment's charge (a pending one is
// looked up again after Config.PendingChargeCheck, should its webhook not come) and credits a
// success through the fulfilment path every top-up takes.
func (a *App) settleCharge(ctx context.Context, p payment.Payment, res payment.ChargeResult) error {
	now := a.now()
	p, recorded, err := a.store.RecordCharge(ctx, p.ID, store.ChargeRecord{Charge: res, FulfilAt: now.Add(a.cfg.Lease),
		CheckAt: now.Add(a.cfg.PendingChargeCheck),
		After: func(r payment.RechargeRule) (payment.RechargeRule, payment.ChargeOutcome) {
			return payment.AfterCharge(r, res.Status, now)
		}})
	if err != nil {
		return err
	}
	if recorded {
		a.metrics.recharge(string(res.Status))
		a.logger.InfoContext(ctx, "auto-recharge charged", "payment_id", p.ID, "org_id", p.OrgID, "status", string(res.Status),
			"payment_intent", res.PaymentIntentID)
	}
	if res.Status != payment.ChargeSucceeded {
		return nil // a failure's email is due (the retry worker sends it); a pending charge waits for its webhook
	}
	_, err = a.applySession(ctx, rechargeSession(p, res.PaymentIntentID), payment.SignalPaid, store.EventRecord{})
	return err
}

// checkPendingCharges looks up at the processor the charges it left pending (processing) whose
// webhook never settled them, outside any transaction, and settles each from the PaymentIntent's
// real status: a success is credited, a failure fails the payment (its email due), a charge
// still pending is looked at again after Config.PendingChargeCheck.
func (a *App) checkPendingCharges(ctx context.Context, rep *RetryReport) error {
	cctx, cancel := context.WithTimeout(ctx, recordTimeout)
	due, err := a.store.ClaimPendingCharges(cctx, a.cfg.RetryBatch, a.cfg.Lease)
	cancel()
	if err != nil {
		return err
	}
	var errs []error
	for _, p := range due {
		if err := a.checkPendingCharge(ctx, p); err != nil {
			rep.Failed++
			errs = append(errs, fmt.Errorf("checking the pending charge of automatic payment %s: %w", p.ID, err))
			continue
		}
		rep.PendingChecked++
	}
	return errors.Join(errs...)
}

func (a *App) checkPendingCharge(ctx context.Context, p payment.Payment) error {
	ctx, cancel := context.WithTimeout(ctx, a.workTimeout())
	defer cancel()
	rc, err := a.recharger()
	if err != nil {
		return err
	}
	m, err := a.store.PaymentMethod(ctx, p.OrgID)
	if err != nil && !errors.Is(err, payment.ErrNotFound) {
		return err
	}
	res, err := rc.ChargeStatus(ctx, payment.ChargeRequest{PaymentID: p.ID, OrgID: p.OrgID, Method: m, AmountMinor: p.AmountMinor,
		Currency: p.Amount.Currency}, p.PaymentIntentID)
	if err != nil {
		return err
	}
	a.logger.WarnContext(ctx, "auto-recharge pending past its check, settled from the processor", "payment_id", p.ID, "org_id", p.OrgID,
		"payment_intent", p.PaymentIntentID, "status", string(res.Status))
	return a.settleCharge(ctx, p, res)
}

// chargeOnce asks the processor for the charge; a card removed meanwhile is a decline.
func (a *App) chargeOnce(ctx context.Context, rc payment.Recharger, p payment.Payment) (payment.ChargeResult, error) {
	m, err := a.store.PaymentMethod(ctx, p.OrgID)
	if errors.Is(err, payment.ErrNotFound) {
		return payment.ChargeResult{Status: payment.ChargeDeclined, Message: "no card is saved"}, nil
	}
	if err != nil {
		return payment.ChargeResult{}, err
	}
	res, err := rc.ChargeSaved(ctx, payment.ChargeRequest{PaymentID: p.ID, OrgID: p.OrgID, Method: m, AmountMinor: p.AmountMinor,
		Currency: p.Amount.Currency})
	if errors.Is(err, payment.ErrRejected) {
		return payment.ChargeResult{Status: payment.ChargeDeclined, Message: err.Error()}, nil
	}
	return res, err
}

// rechargeSession is how a paid automatic payment reads as a paid session, for the fulfilment
// path every top-up takes.
func rechargeSession(p payment.Payment, intentID string) payment.Session {
	if intentID == "" {
		intentID = p.PaymentIntentID
	}
	return payment.Session{ID: payment.RechargeSessionID(p.ID), Status: "complete", PaymentStatus: "paid", AmountTotal: p.AmountMinor,
		Currency: p.Amount.Currency, PaymentIntentID: intentID, PaymentMethod: payment.MethodCard, PaymentID: p.ID, OrgID: p.OrgID}
}

// applyIntent handles payment_intent.succeeded and payment_intent.payment_failed of an automatic
// payment: the answer is recorded (ending a recharge Stripe accepted without settling it), a
// success is credited through the same fulfilment path, a failure makes its email due.
func (a *App) applyIntent(ctx context.Context, in payment.Intent, rec store.EventRecord) (string, error) {
	p, err := a.store.Payment(ctx, in.OrgID, in.PaymentID)
	if errors.Is(err, payment.ErrNotFound) || err == nil && !p.Automatic {
		rec.Outcome = OutcomeIgnored
		return a.recordOnly(ctx, rec, nil)
	}
	if err != nil {
		return "", err
	}
	if seen, err := a.store.EventSeen(ctx, rec.ID); err != nil || seen {
		return OutcomeDuplicate, err
	}
	res := payment.ChargeResult{PaymentIntentID: in.ID, Status: payment.ChargeSucceeded}
	if rec.Type == payment.EventIntentFailed {
		res.Status, res.Message = payment.ChargeDeclined, in.FailureMessage
		if in.FailureCode == "authentication_required" {
			res.Status = payment.ChargeAuthenticationRequired
		}
	}
	now := a.now()
	if _, _, err := a.store.RecordCharge(ctx, p.ID, store.ChargeRecord{Charge: res, FulfilAt: now.Add(a.cfg.Lease),
		After: func(r payment.RechargeRule) (payment.RechargeRule, payment.ChargeOutcome) {
			return payment.AfterCharge(r, res.Status, now)
		}}); err != nil {
		return "", err
	}
	if res.Status != payment.ChargeSucceeded {
		return a.recordOnly(ctx, rec, nil)
	}
	s := rechargeSession(p, in.ID)
	s.AmountTotal, s.Currency = in.AmountReceived, in.Currency
	return a.applySession(ctx, s, payment.SignalPaid, rec)
}

// resumeCharges sends again the charges a replica claimed but never recorded (it died, or the
// processor was unreachable), with the same Stripe idempotency key: never doubled, never lost.
func (a *App) resumeCharges(ctx context.Context, rep *RetryReport) error {
	cctx, cancel := context.WithTimeout(ctx, recordTimeout)
	due, err := a.store.ClaimCharges(cctx, a.cfg.RetryBatch, a.cfg.Lease)
	cancel()
	if err != nil {
		return err
	}
	var errs []error
	for _, p := range due {
		if err := a.charge(ctx, p); err != nil {
			rep.Failed++
			errs = append(errs, fmt.Errorf("charging automatic payment %s: %w", p.ID, err))
			continue
		}
		rep.Recharges++
		a.logger.WarnContext(ctx, "retry worker resumed an auto-recharge", "payment_id", p.ID, "org_id", p.OrgID)
	}
	return errors.Join(errs...)
}

// sendFailureNotices hands the due failure emails to the notifications service (idempotent per
// payment there), then records them sent.
func (a *App) sendFailureNotices(ctx context.Context, rep *RetryReport) error {
	if a.cfg.Notifier == nil {
		return nil
	}
	cctx, cancel := context.WithTimeout(ctx, recordTimeout)
	due, err := a.store.ClaimFailureNotices(cctx, a.cfg.RetryBatch, a.cfg.Lease)
	cancel()
	if err != nil {
		return err
	}
	var errs []error
	for _, n := range due {
		f := RechargeFailure{OrgID: n.Payment.OrgID, PaymentID: n.Payment.ID, Reason: n.Payment.FailureReason, Message: n.Payment.FailureMessage,
			Amount: n.Payment.Amount, Failures: n.Failures, Disabled: n.Disabled, Recipients: n.Recipients}
		if len(f.Recipients) > 0 {
			if err := a.cfg.Notifier.RechargeFailed(ctx, f); err != nil {
				rep.Failed++
				errs = append(errs, fmt.Errorf("notifying the failure of automatic payment %s: %w", n.Payment.ID, err))
				continue
			}
		}
		if err := a.store.FailureNotified(ctx, n.Payment.ID); err != nil {
			errs = append(errs, err)
			continue
		}
		rep.Notices++
	}
	return errors.Join(errs...)
}
