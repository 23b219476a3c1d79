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

// expiryGrace is how long after a session's expiry the sweep waits for its webhook first.
const expiryGrace = time.Minute

// DefaultExpirySweepEvery is how often the expiry sweep runs by default.
const DefaultExpirySweepEvery = time.Minute

// ExpiryReport says what one expiry sweep did.
type ExpiryReport struct {
	// Checked payments were past their session's expiry; Expired of them became EXPIRED, Paid
	// turned out paid and went through fulfilment, Open are still open at the processor (its
	// expiry lags) and are looked at again on the next sweep.
	Checked, Expired, Paid, Open int
	// Failed counts the payments whose session could not be read or settled; the next sweep
	// tries again.
	Failed int
}

// SweepExpired settles the abandoned checkouts no webhook settled: pending payments of the
// processor's mode past their session's expiry (plus a grace for the webhook). Each session is
// read from the processor (Stripe, or the test-mode page's own record), outside any transaction,
// and what it says is applied like its webhook would be: an expired session expires the payment,
// a paid one is fulfilled through the usual idempotent path. A Stripe payment is never expired on
// tally's clock alone: only Stripe can say that its session can no longer be paid.
func (a *App) SweepExpired(ctx context.Context) (ExpiryReport, error) {
	var rep ExpiryReport
	lctx, cancel := context.WithTimeout(ctx, recordTimeout)
	due, err := a.store.PendingPastExpiry(lctx, a.proc.Mode(), a.now().Add(-expiryGrace), a.cfg.RetryBatch)
	cancel()
	if err != nil {
		return rep, err
	}
	var errs []error
	for _, p := range due {
		rep.Checked++
		outcome, err := a.sweepOne(ctx, p)
		switch {
		case err != nil:
			rep.Failed++
			errs = append(errs, fmt.Errorf("sweeping payment %s: %w", p.ID, err))
		case outcome == payment.SignalExpired:
			rep.Expired++
		case outcome == payment.SignalPaid:
			rep.Paid++
		default:
			rep.Open++
		}
	}
	return rep, errors.Join(errs...)
}

// sweepOne asks the processor about p's session and applies its state; it returns the signal
// applied ("" when the session is still open).
func (a *App) sweepOne(ctx context.Context, p payment.Payment) (payment.Signal, error) {
	ctx, cancel := context.WithTimeout(ctx, a.workTimeout())
	defer cancel()
	s, err := a.proc.Session(ctx, p.CheckoutSessionID)
	switch {
	case errors.Is(err, payment.ErrRejected):
		// The processor does not know the session (e.g. test data removed): nobody can pay it.
		a.logger.WarnContext(ctx, "processor does not know an expired checkout session; expiring its payment", "payment_id", p.ID,
			"session_id", p.CheckoutSessionID, "err", err)
		s = payment.Session{ID: p.CheckoutSessionID, Status: "expired", PaymentID: p.ID, OrgID: p.OrgID}
	case err != nil:
		return "", err
	}
	sig, ok := s.Signal()
	if !ok {
		return "", nil
	}
	if _, err := a.applySession(ctx, s, sig, store.EventRecord{}); err != nil {
		return "", err
	}
	if sig == payment.SignalExpired {
		a.logger.InfoContext(ctx, "abandoned checkout expired", "payment_id", p.ID, "org_id", p.OrgID, "session_id", p.CheckoutSessionID)
	} else {
		a.logger.WarnContext(ctx, "expiry sweep found a paid session whose webhook never arrived", "payment_id", p.ID, "session_id", p.CheckoutSessionID)
	}
	return sig, nil
}

// RunExpirySweep sweeps now and then every interval until ctx is done. Failures are logged and
// retried on the next tick.
func (a *App) RunExpirySweep(ctx context.Context, interval time.Duration) error {
	return loop.Every(ctx, "expiry sweep", interval, loop.Now, func(ctx context.Context) bool {
		rep, err := a.SweepExpired(ctx)
		srep, serr := a.SweepExpiredSetups(ctx)
		if ctx.Err() == nil && serr != nil {
			a.logger.ErrorContext(ctx, "setup expiry sweep failed", "err", serr, "checked", srep.Checked, "failed", srep.Failed)
		}
		switch {
		case ctx.Err() != nil: // stopping: the pass was cut short, nothing to report
		case err != nil:
			a.logger.ErrorContext(ctx, "expiry sweep failed", "err", err, "checked", rep.Checked, "failed", rep.Failed)
		case rep.Expired > 0 || rep.Paid > 0:
			a.logger.InfoContext(ctx, "expiry sweep done", "checked", rep.Checked, "expired", rep.Expired, "paid", rep.Paid, "open", rep.Open)
		}
		return false
	})
}

// SetupExpiryReport says what one sweep of the setup sessions did: of the Checked ones past
// their expiry, Expired were abandoned, Saved had saved a card whose webhook never came, Open
// are still open at the processor; Failed could not be read or settled.
type SetupExpiryReport struct {
	Checked, Expired, Saved, Open, Failed int
}

// SweepExpiredSetups settles the open setup sessions of the processor's mode past their expiry
// (plus a grace for the webhook), as SweepExpired does checkouts: Stripe's session (read outside
// any transaction) says whether it expired or saved a card; a test-mode session saved one when a
// card was chosen on its page.
func (a *App) SweepExpiredSetups(ctx context.Context) (SetupExpiryReport, error) {
	var rep SetupExpiryReport
	lctx, cancel := context.WithTimeout(ctx, recordTimeout)
	due, err := a.store.SetupsPastExpiry(lctx, a.proc.Mode(), a.now().Add(-expiryGrace), a.cfg.RetryBatch)
	cancel()
	if err != nil {
		return rep, err
	}
	var errs []error
	for _, ss := range due {
		rep.Checked++
		status, err := a.sweepSetup(ctx, ss)
		switch {
		case err != nil:
			rep.Failed++
			errs = append(errs, fmt.Errorf("sweeping setup session %s: %w", ss.ID, err))
		case status == "expired":
			rep.Expired++
		case status == "complete":
			rep.Saved++
		default:
			rep.Open++
		}
	}
	return rep, errors.Join(errs...)
}

// sweepSetup settles one setup session past its expiry; it returns the session's status.
func (a *App) sweepSetup(ctx context.Context, ss payment.SetupSession) (string, error) {
	ctx, cancel := context.WithTimeout(ctx, a.workTimeout())
	defer cancel()
	s := payment.Session{ID: ss.ID, Status: "expired"}
	if ss.Mode == payment.ModeLocal {
		if ss.LocalMethod != "" {
			s.Status = "complete"
		}
	} else {
		var err error
		s, err = a.proc.Session(ctx, ss.ID)
		switch {
		case errors.Is(err, payment.ErrRejected):
			s = payment.Session{ID: ss.ID, Status: "expired"} // unknown to the processor: nobody can complete it
		case err != nil:
			return "", err
		}
	}
	switch s.Status {
	case "complete":
		a.logger.WarnContext(ctx, "expiry sweep found a completed setup session whose webhook never arrived", "session_id", ss.ID)
		return s.Status, a.saveSetup(ctx, ss, s.SetupIntentID)
	case "expired":
		return s.Status, a.expireSetup(ctx, ss)
	}
	return s.Status, nil
}
