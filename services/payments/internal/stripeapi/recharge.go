package stripeapi

import (
	"context"
	"errors"
	"strings"

	"github.com/stripe/stripe-go/v76"

	"github.com/tallyhq/tally/services/payments/internal/payment"
)

var _ payment.Recharger = (*Processor)(nil)

// CreateSetup implements payment.Recharger: a Stripe Customer for the organization, then a
// Checkout Session in setup mode that saves a card on it for off-session use.
func (p *Processor) CreateSetup(ctx context.Context, req payment.SetupRequest) (payment.CreatedSession, error) {
	ctx, cancel := context.WithTimeout(ctx, p.cfg.Timeout)
	defer cancel()
	meta := map[string]string{payment.MetaOrgID: req.OrgID, payment.MetaMemberID: req.Member.ID}
	cp := &stripe.CustomerParams{Description: stripe.String("tally organization " + req.OrgID)}
	if req.Member.Email != "" {
		cp.Email = stripe.String(req.Member.Email)
	}
	cp.Metadata = meta
	cp.Context = ctx
	cp.SetIdempotencyKey("customer:" + req.SessionID)
	cus, err := p.api.Customers.New(cp)
	if err != nil {
		return payment.CreatedSession{}, classify("creating customer", err)
	}
	params := &stripe.CheckoutSessionParams{
		Mode:               stripe.String(string(stripe.CheckoutSessionModeSetup)),
		PaymentMethodTypes: stripe.StringSlice([]string{"card"}),
		Customer:           stripe.String(cus.ID),
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
	return payment.CreatedSession{ID: cs.ID, URL: cs.URL, ExpiresAt: req.ExpiresAt}, nil
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
	switch pi.Status {
	case stripe.PaymentIntentStatusSucceeded:
		return payment.ChargeResult{PaymentIntentID: pi.ID, Status: payment.ChargeSucceeded}, nil
	case stripe.PaymentIntentStatusRequiresAction:
		return payment.ChargeResult{PaymentIntentID: pi.ID, Status: payment.ChargeAuthenticationRequired,
			Message: "The bank asks the cardholder to authenticate this payment."}, nil
	case stripe.PaymentIntentStatusCanceled:
		return payment.ChargeResult{PaymentIntentID: pi.ID, Status: payment.ChargeDeclined, Message: "The payment was canceled."}, nil
	}
	// processing (and any state Stripe settles later): its payment_intent webhook ends it.
	return payment.ChargeResult{PaymentIntentID: pi.ID, Status: payment.ChargePending}, nil
}
