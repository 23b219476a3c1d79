package app

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/tallyhq/tally/pkg/money"
	"github.com/tallyhq/tally/services/payments/internal/invoice"
	"github.com/tallyhq/tally/services/payments/internal/payment"
	"github.com/tallyhq/tally/services/payments/internal/store"
)

// maxReasonLength bounds free-text reasons.
const maxReasonLength = 500

// RefundInput asks for a refund; a zero Amount refunds everything not refunded yet.
type RefundInput struct {
	PaymentID   string
	Amount      money.Money
	Reason      string
	RequestedBy string
}

// RefundResult is a completed refund.
type RefundResult struct {
	Refund  payment.Refund
	Payment payment.Payment
}

// Refund refunds (part of) a payment: the processor refunds the money, the refunded credits are
// taken back from the organization (never more than it has available; the rest is reported in
// the refund) and a credit note is issued.
func (a *App) Refund(ctx context.Context, in RefundInput) (RefundResult, error) {
	if err := ValidateReason("reason", in.Reason); err != nil {
		return RefundResult{}, err
	}
	if in.Amount.Nanos < 0 {
		return RefundResult{}, fmt.Errorf("%w: amount must be positive", payment.ErrInvalid)
	}
	cur, err := a.store.Payment(ctx, "", in.PaymentID)
	if err != nil {
		return RefundResult{}, err
	}
	if in.Amount.Currency != "" && in.Amount.Currency != cur.Amount.Currency {
		return RefundResult{}, fmt.Errorf("%w: payment %s is in %s, not %s", payment.ErrInvalid, cur.ID, cur.Amount.Currency, in.Amount.Currency)
	}
	if cur.Mode == payment.ModeStripe && a.proc.Mode() != payment.ModeStripe {
		return RefundResult{}, fmt.Errorf("%w: refunding a Stripe payment needs STRIPE_SECRET_KEY", payment.ErrFailedPrecondition)
	}
	r, p, err := a.store.BeginRefund(ctx, store.RefundRequest{
		PaymentID: in.PaymentID, Amount: in.Amount.Nanos, Reason: in.Reason, RequestedBy: in.RequestedBy, ToMinor: payment.ToMinor,
	})
	if err != nil {
		return RefundResult{}, err
	}
	log := a.logger.With("refund_id", r.ID, "payment_id", p.ID, "org_id", p.OrgID)

	// 1. The money. Local test-mode payments moved no money, so there is nothing to refund.
	processorID := "re_test_local_" + r.ID
	if p.Mode == payment.ModeStripe {
		processorID, err = a.proc.Refund(ctx, RefundRequest{
			RefundID: r.ID, SessionID: p.CheckoutSessionID, PaymentIntentID: p.PaymentIntentID,
			AmountMinor: r.AmountMinor, Currency: p.Amount.Currency, Reason: in.Reason,
		})
		if errors.Is(err, payment.ErrRejected) {
			if ferr := a.store.FailRefund(context.WithoutCancel(ctx), r.ID); ferr != nil {
				err = errors.Join(err, ferr)
			}
			return RefundResult{}, err
		}
		if err != nil {
			// Stripe may or may not have refunded: keep the refund pending for ops.
			rerr := a.store.AddReviewItem(context.WithoutCancel(ctx), payment.ReviewItem{PaymentID: p.ID, OrgID: p.OrgID,
				Kind: payment.ReviewRefundPartial, Detail: fmt.Sprintf("refund %s: Stripe did not answer (%v); check the dashboard", r.ID, err)})
			return RefundResult{}, errors.Join(err, rerr)
		}
	}
	if err := a.store.SetStripeRefundID(ctx, r.ID, processorID); err != nil {
		return RefundResult{}, err
	}

	// 2. The credits: never more than remain available.
	out := store.RefundOutcome{}
	take, err := a.recoverable(ctx, p.OrgID, r.Amount)
	if err == nil && take > 0 {
		_, err = a.ledger.TakeBack(ctx, p.OrgID, money.Money{Nanos: take, Currency: r.Amount.Currency}, "refund:"+r.ID,
			fmt.Sprintf("refund %s of payment %s: %s", r.ID, p.ID, in.Reason))
	}
	if err != nil {
		log.Error("refunded credits could not be taken back", "err", err)
		take = 0
		out.Review = &payment.ReviewItem{Kind: payment.ReviewRefundPartial,
			Detail: fmt.Sprintf("refund %s: %s refunded but the credits could not be taken back: %v", r.ID, r.Amount, err)}
	}
	out.CreditsTakenBack, out.CreditsNotRecovered = take, r.Amount.Nanos-take
	out.Render = func(number string, issuedAt time.Time, profile payment.BillingProfile) ([]byte, error) {
		return invoice.Render(invoice.Document{
			Kind: payment.KindCreditNote, Number: number, IssuedAt: issuedAt, Seller: a.cfg.Seller, Customer: profile,
			Amount: r.Amount, Description: "Credits refunded", Reference: processorID, CreditsInvoice: p.InvoiceNumber,
			Reason: in.Reason, PaidBy: p.Member, TestMode: p.Mode == payment.ModeLocal,
		})
	}
	r, p, err = a.store.CompleteRefund(ctx, r.ID, out)
	if err != nil {
		return RefundResult{}, err
	}
	log.Info("payment refunded", "amount", r.Amount.String(), "credits_taken_back", r.CreditsTakenBack.Display(),
		"credits_not_recovered", r.CreditsNotRecovered.Display(), "credit_note", r.CreditNoteNumber)
	return RefundResult{Refund: r, Payment: p}, nil
}

// recoverable is how much of amount can be taken back: what the organization still has available
// (credits already spent, held or expired are not).
func (a *App) recoverable(ctx context.Context, orgID string, amount money.Money) (money.Nanos, error) {
	avail, err := a.ledger.Available(ctx, orgID)
	if err != nil {
		return 0, err
	}
	if avail.Currency != "" && avail.Currency != amount.Currency {
		return 0, fmt.Errorf("%w: organization balance is in %s, refund in %s", payment.ErrRejected, avail.Currency, amount.Currency)
	}
	return max(0, min(avail.Nanos, amount.Nanos)), nil
}
