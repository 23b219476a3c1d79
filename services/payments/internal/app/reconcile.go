package app

import (
	"context"
	"errors"
	"time"

	"github.com/tallyhq/tally/pkg/loop"
	"github.com/tallyhq/tally/services/payments/internal/payment"
	"github.com/tallyhq/tally/services/payments/internal/store"
)

// ReconcileReport says what one reconciliation pass did.
type ReconcileReport struct {
	Listed    int
	Fulfilled int
	Expired   int
	Failed    int
	// Refunds is what the pass did with the pending refunds.
	Refunds RetryReport
}

// Reconcile asks the processor for recent sessions and applies what their webhooks would have:
// paid sessions never credited are fulfilled through the same idempotent path, expired ones
// expire. A lost webhook therefore never loses a customer's money. It also carries on the pending
// refunds nobody works on (a batch, oldest retry time first), whatever their backoff: a refund in
// flight at Stripe completes or fails locally as Stripe settled it, one Stripe never received is
// asked for again with its idempotency key.
func (a *App) Reconcile(ctx context.Context) (ReconcileReport, error) {
	var rep ReconcileReport
	refundsErr := a.resumeRefunds(ctx, &rep.Refunds, false)
	sessionsErr := a.reconcileSessions(ctx, &rep)
	return rep, errors.Join(sessionsErr, refundsErr)
}

func (a *App) reconcileSessions(ctx context.Context, rep *ReconcileReport) error {
	sessions, err := a.proc.RecentSessions(ctx, a.now().Add(-a.cfg.ReconcileLookback))
	if err != nil {
		return err
	}
	rep.Listed = len(sessions)
	var errs []error
	for _, s := range sessions {
		sig, ok := s.Signal()
		if !ok {
			continue
		}
		outcome, err := a.applySession(ctx, s, sig, store.EventRecord{})
		if err != nil {
			rep.Failed++
			errs = append(errs, err)
			continue
		}
		if outcome == OutcomeProcessed {
			if sig == payment.SignalPaid {
				rep.Fulfilled++
				a.metrics.fixes.WithLabelValues(fixFulfilled).Inc()
				a.logger.WarnContext(ctx, "reconciliation fulfilled a session whose webhook never arrived", "session_id", s.ID)
			} else {
				rep.Expired++
				a.metrics.fixes.WithLabelValues(fixExpired).Inc()
			}
		}
	}
	return errors.Join(errs...)
}

// claimsPerPass is how often within a pass's period every replica tries to claim it: the first
// try of any replica after the period starts wins, so a pass starts within about a quarter of the
// interval of its period even when the replica that would have come first is down.
const claimsPerPass = 4

// RunReconciler runs one reconciliation pass per interval across every replica sharing the
// database: each replica tries claimsPerPass times an interval to claim the current period's pass
// (ReconcileClaimed), and only the one whose claim lands first runs it. Failures are logged and
// the next period retries.
func (a *App) RunReconciler(ctx context.Context, interval time.Duration) error {
	if interval <= 0 {
		return nil
	}
	return loop.Every(ctx, "reconciliation", max(interval/claimsPerPass, time.Millisecond), loop.Now, func(ctx context.Context) bool {
		ran, rep, err := a.ReconcileClaimed(ctx, interval)
		switch {
		case ctx.Err() != nil: // stopping: the pass was cut short, nothing to report
		case err != nil:
			a.logger.ErrorContext(ctx, "reconciliation failed", "err", err, "listed", rep.Listed, "failed", rep.Failed)
		case ran && (rep.Fulfilled > 0 || rep.Expired > 0 || rep.Refunds.Busy()):
			a.logger.InfoContext(ctx, "reconciliation done", "listed", rep.Listed, "fulfilled", rep.Fulfilled, "expired", rep.Expired,
				"refunds_completed", rep.Refunds.RefundsCompleted, "refunds_failed", rep.Refunds.RefundsFailed)
		}
		return false
	})
}

// ReconcileClaimed runs the reconciliation pass of the current period of interval when this
// replica is the first to claim it, and reports whether it ran. The claim commits before the pass
// calls Stripe; a replica that dies during its pass leaves it unfinished (the next period's pass
// does the same work: reconciliation is idempotent).
func (a *App) ReconcileClaimed(ctx context.Context, interval time.Duration) (bool, ReconcileReport, error) {
	cctx, cancel := context.WithTimeout(ctx, recordTimeout)
	period, ok, err := a.store.ClaimReconcilePass(cctx, interval, a.cfg.Replica)
	cancel()
	if err != nil || !ok {
		return false, ReconcileReport{}, err
	}
	rep, err := a.Reconcile(ctx)
	fctx, fcancel := context.WithTimeout(context.WithoutCancel(ctx), recordTimeout)
	defer fcancel()
	return true, rep, errors.Join(err, a.store.FinishReconcilePass(fctx, interval, period, err == nil))
}
