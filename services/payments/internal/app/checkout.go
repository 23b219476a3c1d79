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

// CreateCheckout records a pending payment by member and opens its Checkout Session. The amount
// is in the organization's currency (an empty currency means that one), within the configured
// limits, and exact in the currency's minor units.
func (a *App) CreateCheckout(ctx context.Context, orgID string, member payment.Member, amount money.Money) (payment.Payment, error) {
	p, err := a.createCheckout(ctx, orgID, member, amount)
	a.metrics.checkout(err)
	return p, err
}

func (a *App) createCheckout(ctx context.Context, orgID string, member payment.Member, amount money.Money) (payment.Payment, error) {
	if err := ids.OrgID(orgID); err != nil {
		return payment.Payment{}, err
	}
	if member.ID == "" {
		return payment.Payment{}, fmt.Errorf("%w: the caller has no member id", payment.ErrInvalid)
	}
	currency, err := a.orgCurrency(ctx, orgID)
	if err != nil {
		return payment.Payment{}, err
	}
	if amount.Currency == "" {
		amount.Currency = currency
	}
	if amount.Currency != currency {
		return payment.Payment{}, fmt.Errorf("%w: organization %s pays in %s, not %s", payment.ErrInvalid, orgID, currency, amount.Currency)
	}
	if err := payment.CheckRequestAmount(amount.Nanos, a.cfg.MaxRequestAmount); err != nil {
		return payment.Payment{}, err
	}
	if amount.Nanos < a.cfg.TopUpMin || amount.Nanos > a.cfg.TopUpMax {
		return payment.Payment{}, fmt.Errorf("%w: amount must be between %s and %s %s", payment.ErrInvalid,
			a.cfg.TopUpMin.Display(), a.cfg.TopUpMax.Display(), currency)
	}
	minor, err := payment.ToMinor(amount)
	if err != nil {
		return payment.Payment{}, err
	}
	p, err := a.store.InsertPayment(ctx, payment.Payment{
		ID: store.NewID(), OrgID: orgID, Mode: a.proc.Mode(), Amount: amount, AmountMinor: minor, Member: member,
	})
	if err != nil {
		return payment.Payment{}, err
	}
	cs, err := a.proc.CreateSession(ctx, payment.SessionRequest{PaymentID: p.ID, OrgID: orgID, Member: member, AmountMinor: minor, Currency: currency,
		ExpiresAt: a.now().Add(a.cfg.CheckoutExpiry).UTC().Truncate(time.Second)})
	if err != nil {
		if derr := a.store.DeleteUnstartedPayment(context.WithoutCancel(ctx), p.ID); derr != nil {
			err = errors.Join(err, derr)
		}
		return payment.Payment{}, err
	}
	p, err = a.store.AttachSession(ctx, p.ID, cs.ID, cs.URL, cs.ExpiresAt)
	if err != nil {
		// The session carries the payment id in its metadata: its webhook still finds the payment.
		return payment.Payment{}, err
	}
	a.logger.InfoContext(ctx, "checkout session created", "payment_id", p.ID, "org_id", orgID, "session_id", cs.ID,
		"amount", amount.String(), "mode", string(p.Mode))
	return p, nil
}

// orgCurrency is the organization's currency as the ledger keeps it (USD for an organization the
// ledger has not seen yet).
func (a *App) orgCurrency(ctx context.Context, orgID string) (string, error) {
	b, err := a.ledger.Balance(ctx, orgID)
	if err != nil {
		return "", ledgerError(err)
	}
	currency := b.Currency
	if currency == "" {
		currency = "USD"
	}
	return currency, nil
}

// CheckoutOptions returns what CreateCheckout accepts from orgID's members: its limits and the
// suggested amounts in the organization's currency, and how long credits stay valid.
func (a *App) CheckoutOptions(ctx context.Context, orgID string) (payment.CheckoutOptions, error) {
	if err := ids.OrgID(orgID); err != nil {
		return payment.CheckoutOptions{}, err
	}
	currency, err := a.orgCurrency(ctx, orgID)
	if err != nil {
		return payment.CheckoutOptions{}, err
	}
	in := func(n money.Nanos) money.Money { return money.Money{Nanos: n, Currency: currency} }
	o := payment.CheckoutOptions{Currency: currency, Min: in(a.cfg.TopUpMin), Max: in(min(a.cfg.TopUpMax, a.cfg.MaxRequestAmount)),
		ValidityMonths: a.cfg.ValidityMonths}
	for _, p := range a.cfg.TopUpPresets {
		// A preset the currency cannot charge exactly (none of the defaults) is left out rather
		// than offered and refused.
		if _, err := payment.ToMinor(in(p)); err == nil {
			o.Presets = append(o.Presets, in(p))
		}
	}
	return o, nil
}
