package app

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"time"

	"github.com/tallyhq/tally/pkg/ids"
	"github.com/tallyhq/tally/pkg/ledgerclient"
	"github.com/tallyhq/tally/pkg/money"
	"github.com/tallyhq/tally/services/payments/internal/invoice"
	"github.com/tallyhq/tally/services/payments/internal/payment"
	"github.com/tallyhq/tally/services/payments/internal/store"
)

// maxReasonLength bounds free-text reasons.
const maxReasonLength = 500

const (
	// refundPoll is how often a retry looks whether the request it waits for is done.
	refundPoll = 50 * time.Millisecond
	// stripeKeyWindow is how long Stripe surely keeps an idempotency key (it keeps them 24 hours):
	// a refund older than that is looked up at Stripe before it is asked for again.
	stripeKeyWindow = 23 * time.Hour
)

// RefundInput asks for a refund; a zero Amount refunds everything not refunded yet.
type RefundInput struct {
	PaymentID   string
	Amount      money.Money
	Reason      string
	RequestedBy string
	// IdempotencyKey is required: the same key with the same payment, amount and reason is the
	// same refund.
	IdempotencyKey string
}

// RefundResult is a completed refund.
type RefundResult struct {
	Refund  payment.Refund
	Payment payment.Payment
	// Replayed is set when the idempotency key named this refund before the request: its result
	// is returned (or the refund carried on) rather than a new refund made.
	Replayed bool
}

// validateKey checks an idempotency key by the platform's rule (pkg/ids).
func validateKey(key string) error {
	if err := ids.IdempotencyKey("idempotency_key", key); err != nil {
		return fmt.Errorf("%w: %w", payment.ErrInvalid, err)
	}
	return nil
}

// Refund refunds (part of) a payment: the processor refunds the money, the refunded credits are
// taken back from the organization (never more than it has available; the rest is reported in
// the refund) and a credit note is issued.
//
// Refunds are idempotent by in.IdempotencyKey. A retry of a completed refund returns it; a retry
// while another request carries the refund out waits for that one; a retry after a request gave up
// (an outage, a crash) carries the refund on with the same Stripe and ledger idempotency keys, so
// that the money moves once and the credits are taken back once.
func (a *App) Refund(ctx context.Context, in RefundInput) (RefundResult, error) {
	if err := validateKey(in.IdempotencyKey); err != nil {
		return RefundResult{}, err
	}
	if err := ValidateReason("reason", in.Reason); err != nil {
		return RefundResult{}, err
	}
	if in.Amount.Nanos < 0 {
		return RefundResult{}, fmt.Errorf("%w: amount must be positive", payment.ErrInvalid)
	}
	if err := payment.CheckRequestAmount(in.Amount.Nanos, a.cfg.MaxRequestAmount); err != nil {
		return RefundResult{}, err
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
	req := store.RefundRequest{
		PaymentID: in.PaymentID, Amount: in.Amount.Nanos, Reason: in.Reason, RequestedBy: in.RequestedBy,
		IdempotencyKey: in.IdempotencyKey, Lease: a.cfg.Lease, ToMinor: payment.ToMinor,
	}
	var poll *time.Timer
	for {
		c, err := a.store.BeginRefund(ctx, req)
		if err != nil {
			return RefundResult{}, err
		}
		switch {
		case c.Refund.Status == payment.RefundSucceeded:
			return RefundResult{Refund: c.Refund, Payment: c.Payment, Replayed: c.Replayed}, nil
		case c.Refund.Status == payment.RefundFailed:
			return RefundResult{}, fmt.Errorf("%w: refund %s of this idempotency key was refused by Stripe and refunded nothing",
				payment.ErrFailedPrecondition, c.Refund.ID)
		case c.Claimed:
			res, err := a.carryOutRefund(ctx, c, true)
			res.Replayed = c.Replayed
			return res, err
		}
		// Another request carries this refund out: wait until it is done or its lease lapses.
		wait := min(refundPoll, max(time.Until(c.LeaseUntil), time.Millisecond))
		if poll == nil {
			a.logger.DebugContext(ctx, "refund in progress elsewhere, waiting for it", "refund_id", c.Refund.ID, "lease_until", c.LeaseUntil)
			poll = time.NewTimer(wait)
			defer poll.Stop()
		} else {
			poll.Reset(wait)
		}
		select {
		case <-ctx.Done():
			return RefundResult{}, fmt.Errorf("waiting for refund %s in progress: %w", c.Refund.ID, ctx.Err())
		case <-poll.C:
		}
	}
}

// carryOutRefund moves the money and the credits of a claimed pending refund and completes it,
// within the lease. A request's refund goes on when the caller goes away (detach); the retry
// worker's stops with it. When the refund cannot be finished now (a dependency failed, or the
// refund is still in flight at Stripe) the lease is given up with a retry time for the worker, so
// that a retry with the same key resumes at once and the worker after a backoff.
func (a *App) carryOutRefund(ctx context.Context, c store.RefundClaim, detach bool) (RefundResult, error) {
	parent := ctx
	if detach {
		parent = context.WithoutCancel(ctx)
	}
	work, cancel := context.WithTimeout(parent, a.workTimeout())
	defer cancel()
	res, err := a.refund(work, c.Refund, c.Payment)
	if err == nil && res.Refund.Status != payment.RefundPending {
		return res, nil
	}
	cause := "in flight at Stripe"
	if err != nil {
		if errors.Is(err, payment.ErrRejected) {
			return res, err // failed, nothing to retry
		}
		cause = err.Error()
	}
	failures := c.Refund.Attempts + 1
	rctx, rcancel := context.WithTimeout(context.WithoutCancel(ctx), recordTimeout)
	defer rcancel()
	if rerr := a.store.RetryRefundLater(rctx, c.Refund.ID, store.Retry{Failures: failures,
		At: a.now().Add(a.cfg.Backoff.Delay(failures)), Cause: cause}); rerr != nil {
		err = errors.Join(err, rerr)
	}
	return res, err
}

// refund carries a pending refund out: the money at the processor, then — once the processor
// returned it — the credits at the ledger, then the credit note. Each step is resumable: the
// processor refund and the ledger adjustment are keyed by the refund, the credits to take back
// are decided once. It returns the refund still pending while the processor has not settled it.
func (a *App) refund(ctx context.Context, r payment.Refund, p payment.Payment) (RefundResult, error) {
	log := a.logger.With("refund_id", r.ID, "payment_id", p.ID, "org_id", p.OrgID)

	// 1. The money.
	processorID, pending, err := a.refundMoney(ctx, r, p, log)
	if err != nil {
		return RefundResult{}, err
	}
	if pending != nil {
		return *pending, nil
	}

	// 2. The credits: never more than remain available, decided once.
	out := store.RefundOutcome{}
	take, notTaken := r.TakeBack, error(nil)
	if !r.TakeBackDecided {
		avail, err := a.recoverable(ctx, p.OrgID, r.Amount)
		switch {
		case errors.Is(err, payment.ErrRejected):
			avail, notTaken = 0, err
		case err != nil:
			return RefundResult{}, a.creditsPending(ctx, r, p, err)
		}
		if take, err = a.store.DecideTakeBack(ctx, r.ID, avail); err != nil {
			return RefundResult{}, err
		}
	}
	if take > 0 {
		// A negative, audited adjustment.
		_, err := a.ledger.Adjust(ctx, ledgerclient.Adjust{OrgID: p.OrgID, Amount: money.Money{Nanos: -take, Currency: r.Amount.Currency},
			IdempotencyKey: RefundLedgerKey(r.ID), Reason: fmt.Sprintf("refund %s of payment %s: %s", r.ID, p.ID, r.Reason)})
		err = ledgerError(err)
		switch {
		case errors.Is(err, payment.ErrRejected):
			take, notTaken = 0, err
		case err != nil:
			// Maybe taken back: a retry sends the same adjustment with the same key.
			return RefundResult{}, a.creditsPending(ctx, r, p, err)
		}
	}
	if notTaken != nil {
		log.ErrorContext(ctx, "refunded credits could not be taken back", "err", notTaken)
		out.Review = &payment.ReviewItem{Kind: payment.ReviewRefundPartial,
			Detail: fmt.Sprintf("refund %s: %s refunded but the credits could not be taken back: %v", r.ID, r.Amount, notTaken)}
	}
	out.CreditsTakenBack, out.CreditsNotRecovered = take, r.Amount.Nanos-take
	out.Render = func(number string, issuedAt time.Time, profile payment.BillingProfile) ([]byte, error) {
		return invoice.Render(invoice.Document{
			Kind: payment.KindCreditNote, Number: number, IssuedAt: issuedAt, Seller: a.cfg.Seller, Customer: profile,
			Amount: r.Amount, Description: "Credits refunded", Reference: processorID, CreditsInvoice: p.InvoiceNumber,
			Reason: r.Reason, PaidBy: p.Member, TestMode: p.Mode == payment.ModeLocal,
		})
	}
	r, p, err = a.store.CompleteRefund(ctx, r.ID, out)
	if err != nil {
		return RefundResult{}, err
	}
	log.InfoContext(ctx, "payment refunded", "amount", r.Amount.String(), "credits_taken_back", r.CreditsTakenBack.Display(),
		"credits_not_recovered", r.CreditsNotRecovered.Display(), "credit_note", r.CreditNoteNumber)
	return RefundResult{Refund: r, Payment: p}, nil
}

// refundMoney is the first step of refund: the money at the processor. It returns the
// processor's refund id once the money is returned, or pending while the processor has not
// settled it. Local test-mode payments moved no money, so there is nothing to refund.
func (a *App) refundMoney(ctx context.Context, r payment.Refund, p payment.Payment, log *slog.Logger) (string, *RefundResult, error) {
	processorID := "re_test_local_" + r.ID
	if p.Mode == payment.ModeStripe {
		if a.proc.Mode() != payment.ModeStripe {
			return "", nil, fmt.Errorf("%w: refunding a Stripe payment needs STRIPE_SECRET_KEY", payment.ErrFailedPrecondition)
		}
		pr, err := a.processorRefund(ctx, r, p)
		if err != nil {
			if errors.Is(err, payment.ErrRejected) {
				return "", nil, a.failRefund(ctx, r, err)
			}
			// Stripe may or may not have refunded: the refund stays pending; the retry worker (or a
			// retry with the same key) asks Stripe again with the same idempotency key.
			rerr := a.store.AddReviewItem(ctx, payment.ReviewItem{PaymentID: p.ID, OrgID: p.OrgID, Kind: payment.ReviewRefundPartial,
				Detail: fmt.Sprintf("refund %s: Stripe did not answer (%v); tally retries it with its idempotency key", r.ID, err)})
			return "", nil, errors.Join(err, rerr)
		}
		if err := a.store.SetStripeRefund(ctx, r.ID, pr.ID, pr.Status); err != nil {
			return "", nil, err
		}
		switch pr.Status.Settlement() {
		case payment.Refused:
			return "", nil, a.failRefund(ctx, r, fmt.Errorf("%w: Stripe refund %s is %s", payment.ErrRejected, pr.ID, pr.Status))
		case payment.InFlight:
			log.InfoContext(ctx, "refund in flight at Stripe", "stripe_refund_id", pr.ID, "stripe_status", string(pr.Status))
			cur, err := a.store.Refund(ctx, r.ID)
			if err != nil {
				return "", nil, err
			}
			return "", &RefundResult{Refund: cur, Payment: p}, nil
		}
		processorID = pr.ID
	} else if err := a.store.SetStripeRefund(ctx, r.ID, processorID, payment.ProcessorRefundSucceeded); err != nil {
		return "", nil, err
	}
	return processorID, nil, nil

}

// processorRefund returns the processor's refund of r: asked for with r's idempotency key when
// none is known yet — after looking for it first when r is older than Stripe keeps keys, so that
// a refund Stripe made is never made twice — and read again while it is in flight.
func (a *App) processorRefund(ctx context.Context, r payment.Refund, p payment.Payment) (payment.ProcessorRefund, error) {
	if r.StripeRefundID != "" {
		if r.StripeStatus.Settlement() == payment.Settled {
			return payment.ProcessorRefund{ID: r.StripeRefundID, Status: r.StripeStatus}, nil
		}
		return a.proc.RefundStatus(ctx, r.StripeRefundID)
	}
	req := payment.RefundRequest{RefundID: r.ID, SessionID: p.CheckoutSessionID, PaymentIntentID: p.PaymentIntentID,
		AmountMinor: r.AmountMinor, Currency: p.Amount.Currency, Reason: r.Reason}
	if time.Since(r.CreatedAt) > stripeKeyWindow {
		found, ok, err := a.proc.FindRefund(ctx, req)
		if err != nil || ok {
			return found, err
		}
	}
	return a.proc.Refund(ctx, req)
}

// failRefund marks r failed (the processor refused it: nothing was refunded, nothing is taken
// back) and returns cause.
func (a *App) failRefund(ctx context.Context, r payment.Refund, cause error) error {
	a.logger.WarnContext(ctx, "refund refused by Stripe", "refund_id", r.ID, "payment_id", r.PaymentID, "err", cause)
	if ferr := a.store.FailRefund(ctx, r.ID); ferr != nil {
		return errors.Join(cause, ferr)
	}
	return cause
}

// creditsPending opens a review item for a refund whose money moved but whose credits the ledger
// could not take back yet (cause), and returns cause.
func (a *App) creditsPending(ctx context.Context, r payment.Refund, p payment.Payment, cause error) error {
	rerr := a.store.AddReviewItem(ctx, payment.ReviewItem{PaymentID: p.ID, OrgID: p.OrgID, Kind: payment.ReviewRefundPartial,
		Detail: fmt.Sprintf("refund %s: %s refunded, the credits are not taken back yet (%v); retry it with its idempotency key", r.ID, r.Amount, cause)})
	return errors.Join(cause, rerr)
}

// RefundLedgerKey is the ledger idempotency key of a refund's take-back, in the "refund:"
// namespace the ledger reserves for the payments service.
func RefundLedgerKey(refundID string) string { return "refund:" + refundID }

// CheckoutLedgerKey is the ledger idempotency key of a checkout session's credit, in the
// "checkout:" namespace the ledger reserves for the payments service.
func CheckoutLedgerKey(sessionID string) string { return "checkout:" + sessionID }

// recoverable is how much of amount can be taken back: what the organization still has available
// (credits already spent, held or expired are not).
func (a *App) recoverable(ctx context.Context, orgID string, amount money.Money) (money.Nanos, error) {
	b, err := a.ledger.Balance(ctx, orgID)
	if err != nil {
		return 0, ledgerError(err)
	}
	if b.Currency != "" && b.Currency != amount.Currency {
		return 0, fmt.Errorf("%w: organization balance is in %s, refund in %s", payment.ErrRejected, b.Currency, amount.Currency)
	}
	return max(0, min(b.Available, amount.Nanos)), nil
}
