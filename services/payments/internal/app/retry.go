package app

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/tallyhq/tally/pkg/loop"
	"github.com/tallyhq/tally/services/payments/internal/payment"
	"github.com/tallyhq/tally/services/payments/internal/store"
)

// recordTimeout bounds recording the failure of work whose caller went away.
const recordTimeout = 5 * time.Second

// RetryReport says what one retry pass did.
type RetryReport struct {
	// Credited paid payments; Refused credits refused for good (a review item each).
	Credited, Refused int
	// RefundsCompleted, RefundsFailed (refused by Stripe) and RefundsInFlight (still pending at
	// Stripe) count the pending refunds carried on.
	RefundsCompleted, RefundsFailed, RefundsInFlight int
	// Failed counts the work that failed again on a dependency and waits for its next retry.
	Failed int
	// Recharges counts the automatic payments whose charge was resumed; Notices the failure
	// emails handed to the notifications service.
	Recharges, Notices int
	// PendingChecked counts the charges left pending (processing) whose PaymentIntent was looked up.
	PendingChecked int
}

// Total counts the pieces of work the pass handled.
func (r RetryReport) Total() int {
	return r.Credited + r.Refused + r.RefundsCompleted + r.RefundsFailed + r.RefundsInFlight + r.Failed + r.Recharges + r.Notices + r.PendingChecked
}

// Busy reports whether the pass did anything worth logging.
func (r RetryReport) Busy() bool { return r.Total() > 0 }

// RetryPending carries on the work left unfinished by the requests that started it: paid payments
// whose credit is due (the ledger was unavailable, our token refused, a crash between the payment
// and the credit) and pending refunds (Stripe unreachable, a refund still in flight at Stripe, a
// crash). Each item is claimed for the lease with FOR UPDATE SKIP LOCKED, so that replicas running
// this together never work on the same item, and is retried with its idempotency keys
// ("checkout:<session id>" at the ledger, "refund:<refund id>" at Stripe and the ledger), so that
// money and credits move once whoever finishes it.
func (a *App) RetryPending(ctx context.Context) (RetryReport, error) {
	var rep RetryReport
	cerr := a.resumeCharges(ctx, &rep)
	perr := a.checkPendingCharges(ctx, &rep)
	ferr := a.retryFulfilments(ctx, &rep)
	rerr := a.resumeRefunds(ctx, &rep, true)
	nerr := a.sendFailureNotices(ctx, &rep)
	return rep, errors.Join(cerr, perr, ferr, rerr, nerr)
}

func (a *App) retryFulfilments(ctx context.Context, rep *RetryReport) error {
	cctx, cancel := context.WithTimeout(ctx, recordTimeout)
	due, err := a.store.ClaimFulfilments(cctx, a.cfg.RetryBatch, a.cfg.Lease)
	cancel()
	if err != nil {
		return err
	}
	var errs []error
	for _, p := range due {
		log := a.logger.With("payment_id", p.ID, "org_id", p.OrgID, "session_id", p.CheckoutSessionID)
		res, err := a.retryFulfilment(ctx, p)
		switch {
		case err != nil:
			rep.Failed++
			errs = append(errs, fmt.Errorf("fulfilling payment %s: %w", p.ID, err))
		case res.refusal != nil:
			rep.Refused++
		default:
			rep.Credited++
			log.WarnContext(ctx, "retry worker credited a paid payment", "failures_before", p.FulfilAttempts)
		}
	}
	return errors.Join(errs...)
}

// retryFulfilment credits a claimed payment and records it, within the lease.
func (a *App) retryFulfilment(ctx context.Context, p payment.Payment) (fulfilment, error) {
	ctx, cancel := context.WithTimeout(ctx, a.workTimeout())
	defer cancel()
	res, err := a.credit(ctx, p, fulfilment{sig: payment.SignalPaid, facts: store.SessionFacts{SessionID: p.CheckoutSessionID}}, "")
	if err == nil {
		_, err = a.recordFulfilment(ctx, p, res, store.EventRecord{})
	}
	return res, err
}

// workTimeout bounds the work done under a lease, so that it ends before the lease lapses.
func (a *App) workTimeout() time.Duration { return a.cfg.Lease * 7 / 8 }

// resumeRefunds carries on the pending refunds nobody works on: with dueOnly those whose retry
// time has come (the retry worker), else all of them (reconciliation).
func (a *App) resumeRefunds(ctx context.Context, rep *RetryReport, dueOnly bool) error {
	cctx, cancel := context.WithTimeout(ctx, recordTimeout)
	ids, err := a.store.ClaimRefunds(cctx, a.cfg.RetryBatch, a.cfg.Lease, dueOnly, a.proc.Mode() == payment.ModeStripe)
	cancel()
	if err != nil {
		return err
	}
	var errs []error
	for _, id := range ids {
		res, err := a.resumeRefund(ctx, id)
		switch {
		case errors.Is(err, payment.ErrRejected):
			rep.RefundsFailed++
		case err != nil:
			rep.Failed++
			errs = append(errs, fmt.Errorf("resuming refund %s: %w", id, err))
		case res.Refund.Status == payment.RefundSucceeded:
			rep.RefundsCompleted++
			a.logger.WarnContext(ctx, "retry worker completed a pending refund", "refund_id", id, "payment_id", res.Refund.PaymentID)
		default:
			rep.RefundsInFlight++
		}
	}
	return errors.Join(errs...)
}

// resumeRefund carries a claimed pending refund on.
func (a *App) resumeRefund(ctx context.Context, id string) (RefundResult, error) {
	lctx, cancel := context.WithTimeout(ctx, recordTimeout)
	r, err := a.store.Refund(lctx, id)
	cancel()
	if err == nil {
		var p payment.Payment
		if p, err = a.store.Payment(ctx, "", r.PaymentID); err == nil {
			return a.carryOutRefund(ctx, store.RefundClaim{Refund: r, Payment: p, Claimed: true}, false)
		}
	}
	// Not carried out: give the lease up for a later pass.
	rctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), recordTimeout)
	defer cancel()
	failures := r.Attempts + 1
	if rerr := a.store.RetryRefundLater(rctx, id, store.Retry{Failures: failures, At: a.now().Add(a.cfg.Backoff.Delay(failures)),
		Cause: err.Error()}); rerr != nil {
		err = errors.Join(err, rerr)
	}
	return RefundResult{}, err
}

// RunRetrier runs RetryPending now and then every interval until ctx is done; a pass that found a
// full batch of work is followed by another at once. Failures are logged and retried later.
func (a *App) RunRetrier(ctx context.Context, interval time.Duration) error {
	return loop.Every(ctx, "retry", interval, loop.Now, func(ctx context.Context) bool {
		rep, err := a.RetryPending(ctx)
		switch {
		case ctx.Err() != nil: // stopping: the pass was cut short, nothing to report
		case err != nil:
			a.logger.WarnContext(ctx, "retry pass left work for later", "err", err, "credited", rep.Credited, "refunds_completed", rep.RefundsCompleted,
				"failed", rep.Failed)
		case rep.Busy():
			a.logger.InfoContext(ctx, "retry pass done", "credited", rep.Credited, "refused", rep.Refused, "refunds_completed", rep.RefundsCompleted,
				"refunds_failed", rep.RefundsFailed, "refunds_in_flight", rep.RefundsInFlight)
		}
		return rep.Total() >= a.cfg.RetryBatch // more may be due
	})
}
