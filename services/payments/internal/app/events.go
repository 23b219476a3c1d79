package app

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/tallyhq/tally/pkg/ledgerclient"
	"github.com/tallyhq/tally/services/payments/internal/invoice"
	"github.com/tallyhq/tally/services/payments/internal/payment"
	"github.com/tallyhq/tally/services/payments/internal/store"
)

// Outcomes of a webhook delivery.
const (
	OutcomeProcessed = "processed"
	OutcomeDuplicate = "duplicate"
	OutcomeIgnored   = "ignored"
)

// HandleWebhook verifies a Stripe delivery and processes its event once. A delivery with a bad
// signature changes nothing. An error (an outage, a malformed ledger reply) asks Stripe to retry.
func (a *App) HandleWebhook(ctx context.Context, payload []byte, signature string) (payment.Event, string, error) {
	ev, err := a.cfg.Verifier.Verify(payload, signature)
	if err != nil {
		a.metrics.webhook(otherType, outcomeRejected)
		return payment.Event{}, "", err
	}
	outcome, err := a.HandleEvent(ctx, ev)
	if err != nil {
		a.metrics.webhook(ev.Type, outcomeFailed)
		return ev, "", fmt.Errorf("processing event %s (%s): %w", ev.ID, ev.Type, err)
	}
	a.metrics.webhook(ev.Type, outcome)
	a.logger.InfoContext(ctx, "stripe event handled", "event_id", ev.ID, "type", ev.Type, "outcome", outcome)
	return ev, outcome, nil
}

// HandleEvent processes a verified event once.
func (a *App) HandleEvent(ctx context.Context, ev payment.Event) (string, error) {
	rec := store.EventRecord{ID: ev.ID, Type: ev.Type, Outcome: OutcomeProcessed}
	switch {
	case ev.Session != nil && ev.Session.Mode == "setup":
		return a.applySetup(ctx, *ev.Session, rec)
	case ev.Intent != nil:
		return a.applyIntent(ctx, *ev.Intent, rec)
	case ev.Session != nil:
		var sig payment.Signal
		switch ev.Type {
		case payment.EventCheckoutCompleted:
			sig = payment.SignalAwaitingPayment
			if ev.Session.Paid() {
				sig = payment.SignalPaid
			}
		case payment.EventCheckoutAsyncSucceeded:
			sig = payment.SignalPaid
		case payment.EventCheckoutAsyncFailed:
			sig = payment.SignalFailed
		case payment.EventCheckoutExpired:
			sig = payment.SignalExpired
		}
		return a.applySession(ctx, *ev.Session, sig, rec)
	case ev.Charge != nil:
		return a.applyChargeRefunded(ctx, *ev.Charge, rec)
	case ev.Dispute != nil:
		return a.applyDispute(ctx, *ev.Dispute, rec)
	}
	rec.Outcome = OutcomeIgnored
	return a.recordOnly(ctx, rec, nil)
}

func (a *App) recordOnly(ctx context.Context, rec store.EventRecord, review *payment.ReviewItem) (string, error) {
	if rec.Outcome == "" {
		rec.Outcome = OutcomeIgnored
	}
	fresh, err := a.store.RecordEvent(ctx, rec, review)
	if err != nil {
		return "", err
	}
	if !fresh {
		return OutcomeDuplicate, nil
	}
	return rec.Outcome, nil
}

// findPayment finds the payment of a session: by session id, else by the payment id in the
// session's metadata when that payment has no session yet (its session was created but not
// recorded).
func (a *App) findPayment(ctx context.Context, s payment.Session) (payment.Payment, error) {
	p, err := a.store.PaymentBySession(ctx, s.ID)
	if err == nil || !errors.Is(err, payment.ErrNotFound) || s.PaymentID == "" {
		return p, err
	}
	p, err = a.store.Payment(ctx, s.OrgID, s.PaymentID)
	if err != nil {
		return payment.Payment{}, err
	}
	if p.CheckoutSessionID != "" {
		return payment.Payment{}, fmt.Errorf("payment %s belongs to another session: %w", p.ID, payment.ErrNotFound)
	}
	return p, nil
}

// applySession applies a session signal, from a webhook (rec.ID set) or reconciliation.
//
// A paid signal is acknowledged only once its effect is durable: the payment is first marked due
// for fulfilment (so that the retry worker credits it whatever happens next), then credited
// through the ledger with the key "checkout:<session id>", outside any transaction, and the credit
// is recorded with the event. A definitive refusal (the amount does not match, the ledger refuses
// the credit for good) is recorded as a review item with the event. Anything else — the ledger
// unavailable, our own token refused, a deadline, a malformed reply — returns the error (an
// outage answers Unavailable, a malformed reply Internal) and records no event, so that Stripe
// delivers it again; the retry worker does not wait for that. Concurrent deliveries all reach the ledger, which credits once, and the
// payment row lock lets one of them record the credit and issue the invoice.
func (a *App) applySession(ctx context.Context, s payment.Session, sig payment.Signal, rec store.EventRecord) (string, error) {
	p, err := a.findPayment(ctx, s)
	if errors.Is(err, payment.ErrNotFound) {
		var review *payment.ReviewItem
		if rec.ID != "" && sig == payment.SignalPaid && s.PaymentID != "" {
			review = &payment.ReviewItem{Kind: payment.ReviewUnknownSession, OrgID: s.OrgID, StripeEventID: rec.ID,
				Detail: fmt.Sprintf("paid checkout session %s names payment %s, which tally does not know", s.ID, s.PaymentID)}
		}
		rec.Outcome = OutcomeIgnored
		if rec.ID == "" {
			return OutcomeIgnored, nil
		}
		return a.recordOnly(ctx, rec, review)
	}
	if err != nil {
		return "", err
	}
	// Decided once on the unlocked read; recordFulfilment decides again on the locked row.
	d := payment.Decide(p, sig)
	if rec.ID != "" {
		seen, err := a.store.EventSeen(ctx, rec.ID)
		if err != nil {
			return "", err
		}
		if seen {
			return OutcomeDuplicate, nil
		}
	} else if !d.Changed(p) {
		return OutcomeIgnored, nil
	} else if d.Review == payment.ReviewPaidAfterExpiry {
		// Reconciliation sees the same session on every pass: one review item, even once resolved.
		opened, err := a.store.ReviewOpened(ctx, p.ID, d.Review)
		if err != nil || opened {
			return OutcomeIgnored, err
		}
	}

	res := fulfilment{sig: sig, facts: store.SessionFacts{SessionID: s.ID, PaymentIntentID: s.PaymentIntentID, PaymentMethod: s.PaymentMethod}}
	if d.Credit {
		if detail := amountMismatch(p, s); detail != "" {
			res.refusal = &payment.ReviewItem{Kind: payment.ReviewAmountMismatch, Detail: detail, StripeEventID: rec.ID}
		} else {
			marked, err := a.store.MarkFulfilmentDue(ctx, p.ID, res.facts, a.now().Add(a.cfg.Lease))
			if err != nil {
				return "", err
			}
			// Unmarked, the payment was credited or expired meanwhile: recordFulfilment decides
			// again on the locked row, without a credit.
			if marked {
				if res, err = a.credit(ctx, p, res, rec.ID); err != nil {
					return "", err
				}
			}
		}
	}
	return a.recordFulfilment(ctx, p, res, rec)
}

// fulfilment is the outcome of a session signal for a payment, to be recorded.
type fulfilment struct {
	sig   payment.Signal
	facts store.SessionFacts
	// credited is the ledger credit granted; refusal the review item of a credit refused for good.
	credited *ledgerclient.Credited
	refusal  *payment.ReviewItem
}

// credit grants a paid payment's credits through the ledger (the same request on every attempt,
// as the ledger's idempotency requires) and returns res with the credit or the refusal. A failure
// worth retrying (the ledger unavailable, our own token refused, a malformed reply) is recorded
// on the payment (the retry worker tries again after a backoff) and returned: Unavailable, or
// Internal for a malformed reply, so that Stripe delivers the event again either way.
func (a *App) credit(ctx context.Context, p payment.Payment, res fulfilment, eventID string) (fulfilment, error) {
	c, err := a.ledger.Credit(ctx, a.creditRequest(p, res.facts.SessionID))
	err = ledgerError(err)
	switch {
	case err == nil:
		res.credited = &c
		return res, nil
	case errors.Is(err, payment.ErrRejected):
		a.logger.ErrorContext(ctx, "ledger refused a paid top-up", "payment_id", p.ID, "session_id", res.facts.SessionID, "err", err)
		res.refusal = &payment.ReviewItem{Kind: payment.ReviewCreditRefused, StripeEventID: eventID,
			Detail: fmt.Sprintf("paid session %s was not credited: %v", res.facts.SessionID, err)}
		return res, nil
	}
	failures := p.FulfilAttempts + 1
	retry := store.Retry{Failures: failures, At: a.now().Add(a.cfg.Backoff.Delay(failures)), Cause: err.Error()}
	a.logger.WarnContext(ctx, "crediting a paid payment failed, retrying later", "payment_id", p.ID, "session_id", res.facts.SessionID,
		"failures", failures, "retry_at", retry.At, "err", err)
	// Recorded even when the caller went away: the worker must not wait for the lease instead.
	rctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), recordTimeout)
	defer cancel()
	if rerr := a.store.FulfilmentFailed(rctx, p.ID, retry); rerr != nil {
		err = errors.Join(err, rerr)
	}
	return res, err
}

// recordFulfilment writes the outcome of a session signal under the payment's row lock, with the
// event when there is one: fresh is false (OutcomeDuplicate) when another delivery recorded the
// event first.
func (a *App) recordFulfilment(ctx context.Context, p payment.Payment, res fulfilment, rec store.EventRecord) (string, error) {
	now := a.now()
	sessionID := res.facts.SessionID
	p, fresh, err := a.store.UpdatePayment(ctx, p.ID, rec, func(cur payment.Payment) (*store.Transition, error) {
		d := payment.Decide(cur, res.sig)
		t := &store.Transition{Status: d.Status, AwaitingAsync: d.AwaitingAsync, PaymentIntentID: res.facts.PaymentIntentID,
			PaymentMethod: res.facts.PaymentMethod, PaymentWallet: res.facts.PaymentWallet, SessionID: sessionID}
		if d.Review != "" {
			t.Review = &payment.ReviewItem{Kind: d.Review, StripeEventID: rec.ID, Detail: reviewDetail(cur, d.Review, sessionID)}
		}
		if d.Credit {
			switch {
			case res.refusal != nil:
				t.Status, t.AwaitingAsync, t.Review, t.FulfilmentDone = cur.Status, cur.AwaitingAsync, res.refusal, true
			case res.credited == nil:
				// Decided on a stale read; the next delivery, reconciliation or the retry worker credits.
				return nil, fmt.Errorf("%w: payment %s changed while crediting", payment.ErrUnavailable, cur.ID)
			default:
				t.Credit = &store.Credit{LedgerTransactionID: res.credited.TransactionID, PaidAt: now, Render: a.invoiceRender(cur, sessionID)}
			}
		}
		return t, nil
	})
	if err != nil {
		return "", err
	}
	if !fresh {
		return OutcomeDuplicate, nil
	}
	if res.credited != nil && p.Credited() {
		a.logger.InfoContext(ctx, "payment credited", "payment_id", p.ID, "org_id", p.OrgID, "session_id", sessionID,
			"amount", p.Amount.String(), "invoice", p.InvoiceNumber, "ledger_tx", p.LedgerTransactionID)
		a.recordWallet(ctx, p)
	}
	return OutcomeProcessed, nil
}

// recordWallet records the card wallet of a credited payment when the processor can tell it,
// after the credit and outside any transaction. It is informational: a failure is logged and the
// payment keeps an empty wallet.
func (a *App) recordWallet(ctx context.Context, p payment.Payment) {
	wr, ok := a.proc.(payment.WalletReader)
	if !ok || p.PaymentWallet != "" || p.PaymentIntentID == "" || p.PaymentMethod != payment.MethodCard {
		return
	}
	ctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), recordTimeout)
	defer cancel()
	wallet, err := wr.PaymentWallet(ctx, p.PaymentIntentID)
	if err == nil && wallet != "" {
		err = a.store.SetPaymentWallet(ctx, p.ID, wallet)
	}
	if err != nil {
		a.logger.WarnContext(ctx, "reading the card wallet of a payment failed", "payment_id", p.ID, "payment_intent", p.PaymentIntentID, "err", err)
	}
}

// creditRequest is the ledger credit of a payment; it is the same request on every delivery, as
// the ledger's idempotency requires.
func (a *App) creditRequest(p payment.Payment, sessionID string) ledgerclient.Credit {
	reason := "Top-up via Stripe Checkout"
	switch {
	case p.Automatic && p.Mode == payment.ModeLocal:
		reason = "Auto-recharge (test mode)"
	case p.Automatic:
		reason = "Auto-recharge with the saved card"
	case p.Mode == payment.ModeLocal:
		reason = "Top-up via test-mode checkout"
	}
	return ledgerclient.Credit{OrgID: p.OrgID, Amount: p.Amount, IdempotencyKey: CheckoutLedgerKey(sessionID), Reason: reason,
		Reference: sessionID, Source: ledgerclient.CreditSourcePayment}
}

// amountMismatch describes a paid session whose amount differs from what tally asked for. The
// check is never skipped: a session that reports no amount or no currency is a mismatch too.
func amountMismatch(p payment.Payment, s payment.Session) string {
	if s.AmountTotal <= 0 || s.Currency == "" {
		return fmt.Sprintf("session %s reported no amount paid (amount_total %d, currency %q), tally asked for %d %s minor units",
			s.ID, s.AmountTotal, s.Currency, p.AmountMinor, p.Amount.Currency)
	}
	if s.AmountTotal != p.AmountMinor || s.Currency != p.Amount.Currency {
		return fmt.Sprintf("session %s paid %d %s minor units, tally asked for %d %s", s.ID, s.AmountTotal, s.Currency,
			p.AmountMinor, p.Amount.Currency)
	}
	return ""
}

func reviewDetail(p payment.Payment, kind, ref string) string {
	switch kind {
	case payment.ReviewLateFailure:
		return fmt.Sprintf("the payment of session %s failed after %s of credits were granted; credits were not taken back", ref, p.Amount)
	case payment.ReviewDispute:
		return fmt.Sprintf("dispute %s opened on a payment of %s; credits granted: %t", ref, p.Amount, p.Credited())
	case payment.ReviewExternalRefund:
		return fmt.Sprintf("charge %s was refunded outside tally; credits were not taken back", ref)
	case payment.ReviewPaidAfterExpiry:
		return fmt.Sprintf("checkout session %s was reported paid (%s) after tally saw it expire; nothing was credited", ref, p.Amount)
	}
	return ref
}

func (a *App) invoiceRender(p payment.Payment, sessionID string) store.Render {
	method := "Card (Stripe Checkout)"
	switch {
	case p.Automatic && p.Mode == payment.ModeLocal:
		method = "Auto-recharge, test-mode card (nothing charged)"
	case p.Automatic:
		method = "Saved card, charged automatically (auto-recharge)"
	case p.Mode == payment.ModeLocal:
		method = "Test-mode checkout (nothing charged)"
	}
	return func(number string, issuedAt time.Time, profile payment.BillingProfile) ([]byte, error) {
		return invoice.Render(invoice.Document{
			Kind: payment.KindInvoice, Number: number, IssuedAt: issuedAt, PaidAt: issuedAt, Seller: a.cfg.Seller,
			Customer: profile, Amount: p.Amount, Description: "Credits", PaymentMethod: method, PaidBy: p.Member,
			Reference: sessionID, TestMode: p.Mode == payment.ModeLocal,
		})
	}
}

// applyChargeRefunded handles charge.refunded: refunds tally issued itself are already accounted
// for; money refunded outside tally (e.g. from the Stripe dashboard) opens a review item and
// never takes credits back silently.
func (a *App) applyChargeRefunded(ctx context.Context, c payment.Charge, rec store.EventRecord) (string, error) {
	if c.PaymentIntentID == "" {
		return a.recordOnly(ctx, store.EventRecord{ID: rec.ID, Type: rec.Type, Outcome: OutcomeIgnored}, nil)
	}
	p, err := a.store.PaymentByIntent(ctx, c.PaymentIntentID)
	if errors.Is(err, payment.ErrNotFound) {
		return a.recordOnly(ctx, store.EventRecord{ID: rec.ID, Type: rec.Type, Outcome: OutcomeIgnored}, nil)
	}
	if err != nil {
		return "", err
	}
	ours, err := a.store.RefundedMinor(ctx, p.ID)
	if err != nil {
		return "", err
	}
	sig := payment.Signal("")
	if c.AmountRefunded > ours {
		sig = payment.SignalPartiallyRefunded
		if c.Refunded || c.AmountRefunded >= p.AmountMinor {
			sig = payment.SignalRefunded
		}
	}
	_, fresh, err := a.store.UpdatePayment(ctx, p.ID, rec, func(cur payment.Payment) (*store.Transition, error) {
		if sig == "" {
			return nil, nil // our own refund
		}
		return reviewed(payment.Decide(cur, sig), rec.ID,
			fmt.Sprintf("charge %s: %d %s minor units refunded, %d of them by tally; credits were not taken back",
				c.ID, c.AmountRefunded, c.Currency, ours)), nil
	})
	return applied(fresh, err)
}

// applyDispute handles charge.dispute.created: the payment becomes disputed and ops review it.
func (a *App) applyDispute(ctx context.Context, d payment.Dispute, rec store.EventRecord) (string, error) {
	p, err := a.store.PaymentByIntent(ctx, d.PaymentIntentID)
	if d.PaymentIntentID == "" || errors.Is(err, payment.ErrNotFound) {
		return a.recordOnly(ctx, store.EventRecord{ID: rec.ID, Type: rec.Type, Outcome: OutcomeIgnored}, &payment.ReviewItem{
			Kind: payment.ReviewDispute, StripeEventID: rec.ID,
			Detail: fmt.Sprintf("dispute %s on charge %s matches no tally payment", d.ID, d.ChargeID),
		})
	}
	if err != nil {
		return "", err
	}
	_, fresh, err := a.store.UpdatePayment(ctx, p.ID, rec, func(cur payment.Payment) (*store.Transition, error) {
		return reviewed(payment.Decide(cur, payment.SignalDisputed), rec.ID,
			fmt.Sprintf("dispute %s (%s) for %d %s minor units; credits granted: %t", d.ID, d.Reason, d.Amount, d.Currency, cur.Credited())), nil
	})
	return applied(fresh, err)
}

// reviewed is the transition decision d makes, with the review item it opens for event eventID.
func reviewed(d payment.Decision, eventID, detail string) *store.Transition {
	return &store.Transition{Status: d.Status, AwaitingAsync: d.AwaitingAsync,
		Review: &payment.ReviewItem{Kind: d.Review, StripeEventID: eventID, Detail: detail}}
}

// applied is the outcome of an event store.UpdatePayment applied (fresh) or had seen before.
func applied(fresh bool, err error) (string, error) {
	switch {
	case err != nil:
		return "", err
	case !fresh:
		return OutcomeDuplicate, nil
	}
	return OutcomeProcessed, nil
}
