package stripeapi

import (
	"cmp"
	"context"
	"errors"
	"strings"

	"github.com/stripe/stripe-go/v76"

	"github.com/tallyhq/tally/services/payments/internal/payment"
)

var _ payment.Recharger = (*Processor)(nil)

// CreateSetup implements payment.Recharger: a Checkout Session in setup mode that saves a card
// for off-session use on the organization's Stripe Customer, created first when it has none.
func (p *Processor) CreateSetup(ctx context.Context, req payment.SetupRequest) (payment.CreatedSession, error) {
	ctx, cancel := context.WithTimeout(ctx, p.cfg.Timeout)
	defer cancel()
	meta := map[string]string{payment.MetaOrgID: req.OrgID, payment.MetaMemberID: req.Member.ID}
	customer := req.CustomerID
	if customer == "" {
		var err error
		if customer, err = p.createCustomer(ctx, req.OrgID); err != nil {
			return payment.CreatedSession{}, err
		}
	}
	params := &stripe.CheckoutSessionParams{
		Mode:               stripe.String(string(stripe.CheckoutSessionModeSetup)),
		PaymentMethodTypes: stripe.StringSlice([]string{"card"}),
		Customer:           stripe.String(customer),
		ClientReferenceID:  stripe.String(req.OrgID),
		SuccessURL:         stripe.String(p.cfg.SetupSuccessURL),
		CancelURL:          stripe.String(p.cfg.SetupCancelURL),
		SetupIntentData:    &stripe.CheckoutSessionSetupIntentDataParams{Metadata: meta},
	}
	params.Metadata = meta
	if !req.ExpiresAt.IsZero() {
		params.ExpiresAt = stripe.Int64(req.ExpiresAt.Unix())
	}
	params.Context = ctx
	params.SetIdempotencyKey("setup:" + req.SessionID)
	cs, err := p.api.CheckoutSessions.New(params)
	if err != nil {
		return payment.CreatedSession{}, classify("creating setup session", err)
	}
	return payment.CreatedSession{ID: cs.ID, URL: cs.URL, ExpiresAt: req.ExpiresAt, CustomerID: customer}, nil
}

// createCustomer creates the organization's Stripe Customer. Its idempotency key and parameters
// depend on the organization alone, so that setups opened together (or retried) share one.
func (p *Processor) createCustomer(ctx context.Context, orgID string) (string, error) {
	cp := &stripe.CustomerParams{Description: stripe.String("tally organization " + orgID)}
	cp.Metadata = map[string]string{payment.MetaOrgID: orgID}
	cp.Context = ctx
	cp.SetIdempotencyKey("customer:" + orgID)
	cus, err := p.api.Customers.New(cp)
	if err != nil {
		return "", classify("creating customer", err)
	}
	return cus.ID, nil
}

// SetupMethod implements payment.Recharger: the card of the SetupIntent the session completed.
func (p *Processor) SetupMethod(ctx context.Context, s payment.SetupSession, setupIntentID string) (payment.SavedMethod, bool, error) {
	if setupIntentID == "" {
		return payment.SavedMethod{}, false, nil
	}
	ctx, cancel := context.WithTimeout(ctx, p.cfg.Timeout)
	defer cancel()
	params := &stripe.SetupIntentParams{}
	params.Context = ctx
	params.AddExpand("payment_method")
	si, err := p.api.SetupIntents.Get(setupIntentID, params)
	if err != nil {
		return payment.SavedMethod{}, false, classify("reading setup intent", err)
	}
	if si.PaymentMethod == nil || si.PaymentMethod.ID == "" {
		return payment.SavedMethod{}, false, nil
	}
	m := payment.SavedMethod{OrgID: s.OrgID, Mode: payment.ModeStripe, PaymentMethodID: si.PaymentMethod.ID, SetupSessionID: s.ID,
		SavedBy: s.Member}
	if si.Customer != nil {
		m.CustomerID = si.Customer.ID
	}
	if c := si.PaymentMethod.Card; c != nil {
		m.Brand, m.Last4, m.ExpMonth, m.ExpYear = string(c.Brand), c.Last4, int(c.ExpMonth), int(c.ExpYear)
	}
	return m, true, nil
}

// ChargeSaved implements payment.Recharger: a PaymentIntent confirmed off-session with the saved
// card, with the idempotency key "recharge:<payment id>". Stripe's card_declined and
// authentication_required answers (402) are charges with that status; other errors are
// classified as every Stripe error.
func (p *Processor) ChargeSaved(ctx context.Context, req payment.ChargeRequest) (payment.ChargeResult, error) {
	ctx, cancel := context.WithTimeout(ctx, p.cfg.Timeout)
	defer cancel()
	meta := map[string]string{payment.MetaPaymentID: req.PaymentID, payment.MetaOrgID: req.OrgID}
	params := &stripe.PaymentIntentParams{
		Amount:        stripe.Int64(req.AmountMinor),
		Currency:      stripe.String(strings.ToLower(req.Currency)),
		PaymentMethod: stripe.String(req.Method.PaymentMethodID),
		OffSession:    stripe.Bool(true),
		Confirm:       stripe.Bool(true),
		Description:   stripe.String("tally auto-recharge for " + req.OrgID),
	}
	if req.Method.CustomerID != "" {
		params.Customer = stripe.String(req.Method.CustomerID)
	}
	params.Metadata = meta
	params.Context = ctx
	params.SetIdempotencyKey("recharge:" + req.PaymentID)
	pi, err := p.api.PaymentIntents.New(params)
	if err != nil {
		var se *stripe.Error
		if errors.As(err, &se) {
			intent := ""
			if se.PaymentIntent != nil {
				intent = se.PaymentIntent.ID
			}
			switch se.Code {
			case stripe.ErrorCodeAuthenticationRequired:
				return payment.ChargeResult{PaymentIntentID: intent, Status: payment.ChargeAuthenticationRequired, Message: se.Msg}, nil
			case stripe.ErrorCodeCardDeclined, stripe.ErrorCodeExpiredCard, stripe.ErrorCodeIncorrectCVC, stripe.ErrorCodeProcessingError:
				return payment.ChargeResult{PaymentIntentID: intent, Status: payment.ChargeDeclined, Message: se.Msg}, nil
			}
		}
		return payment.ChargeResult{}, classify("charging the saved card", err)
	}
	return intentResult(pi, false), nil
}

// ChargeStatus implements payment.Recharger: the PaymentIntent read back from Stripe.
func (p *Processor) ChargeStatus(ctx context.Context, _ payment.ChargeRequest, intentID string) (payment.ChargeResult, error) {
	ctx, cancel := context.WithTimeout(ctx, p.cfg.Timeout)
	defer cancel()
	params := &stripe.PaymentIntentParams{}
	params.Context = ctx
	pi, err := p.api.PaymentIntents.Get(intentID, params)
	if err != nil {
		return payment.ChargeResult{}, classify("reading payment intent", err)
	}
	return intentResult(pi, true), nil
}

// intentResult is what a PaymentIntent's status says of an off-session charge. Right after the
// confirmation, requires_payment_method is still being settled (pending); read back later
// (settled), it is the failure of the attempt, with its last payment error.
func intentResult(pi *stripe.PaymentIntent, settled bool) payment.ChargeResult {
	res := payment.ChargeResult{PaymentIntentID: pi.ID, Status: payment.ChargePending}
	switch pi.Status {
	case stripe.PaymentIntentStatusSucceeded:
		res.Status = payment.ChargeSucceeded
	case stripe.PaymentIntentStatusRequiresAction:
		res.Status, res.Message = payment.ChargeAuthenticationRequired, "The bank asks the cardholder to authenticate this payment."
	case stripe.PaymentIntentStatusCanceled:
		res.Status, res.Message = payment.ChargeDeclined, "The payment was canceled."
	case stripe.PaymentIntentStatusRequiresPaymentMethod:
		if settled {
			res.Status, res.Message = payment.ChargeDeclined, "The card was declined."
			if e := pi.LastPaymentError; e != nil {
				res.Message = cmp.Or(e.Msg, res.Message)
				if e.Code == stripe.ErrorCodeAuthenticationRequired {
					res.Status = payment.ChargeAuthenticationRequired
				}
			}
		}
	}
	// processing (and any state Stripe settles later): its payment_intent webhook ends it.
	return res
}
