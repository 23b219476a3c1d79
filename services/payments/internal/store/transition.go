package store

import (
	"context"
	"fmt"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/tallyhq/tally/services/payments/internal/payment"
)

// Transition is a change of a locked payment, decided by the application.
type Transition struct {
	Status        payment.Status
	AwaitingAsync bool
	// Credit records the ledger credit and issues the payment's invoice in the same transaction.
	Credit *Credit
	// PaymentIntentID and PaymentMethod are recorded when learned and not known yet.
	PaymentIntentID string
	PaymentMethod   string
	PaymentWallet   string
	// SessionID attaches the Checkout Session when the payment has none yet.
	SessionID string
	// Review opens an ops review item for the payment.
	Review *payment.ReviewItem
	// FulfilmentDone ends a due fulfilment: the payment was credited, or its credit definitively
	// refused (with a review item).
	FulfilmentDone bool
}

// Credit is a ledger credit granted for a payment.
type Credit struct {
	LedgerTransactionID string
	PaidAt              time.Time
	Render              Render
}

// Decide is called with the locked payment and returns the transition to write (nil: none).
type Decide func(p payment.Payment) (*Transition, error)

// UpdatePayment locks payment id, records ev (once: fresh is false and nothing is written when it
// was already recorded), calls decide with the locked payment and writes its transition, all in
// one transaction.
func (s *Store) UpdatePayment(ctx context.Context, id string, ev EventRecord, decide Decide) (p payment.Payment, fresh bool, err error) {
	tx, err := s.pool.Begin(ctx)
	if err != nil {
		return payment.Payment{}, false, fmt.Errorf("beginning transaction: %w", err)
	}
	defer func() { _ = tx.Rollback(context.WithoutCancel(ctx)) }()
	p, err = scanPayment(tx.QueryRow(ctx, `SELECT `+paymentColumns+` FROM payments p WHERE p.id = $1 FOR UPDATE OF p`, id))
	if err != nil {
		return payment.Payment{}, false, fmt.Errorf("locking payment %s: %w", id, err)
	}
	fresh, err = recordEvent(ctx, tx, ev, p.ID)
	if err != nil || !fresh {
		return p, false, err
	}
	t, err := decide(p)
	if err != nil {
		return payment.Payment{}, false, err
	}
	if t != nil {
		if err := s.write(ctx, tx, p, *t); err != nil {
			return payment.Payment{}, false, err
		}
	}
	if err := tx.Commit(ctx); err != nil {
		return payment.Payment{}, false, fmt.Errorf("committing payment %s: %w", id, err)
	}
	p, err = s.Payment(ctx, "", id)
	return p, true, err
}

func (s *Store) write(ctx context.Context, tx pgx.Tx, p payment.Payment, t Transition) error {
	now := s.clock()
	var ledgerTx *string
	var creditedAt, paidAt *time.Time
	if t.Credit != nil {
		if p.Credited() {
			return fmt.Errorf("payment %s is already credited", p.ID)
		}
		ledgerTx, creditedAt = &t.Credit.LedgerTransactionID, &now
		paid := t.Credit.PaidAt.UTC().Truncate(time.Microsecond)
		paidAt = &paid
	}
	_, err := tx.Exec(ctx, `UPDATE payments SET status = $2, awaiting_async = $3,
ledger_transaction_id = coalesce(ledger_transaction_id, $4), credited_at = coalesce(credited_at, $5), paid_at = coalesce(paid_at, $6),
payment_intent_id = coalesce(payment_intent_id, $7), payment_method = CASE WHEN payment_method = '' THEN $8 ELSE payment_method END,
checkout_session_id = coalesce(checkout_session_id, $9), updated_at = $10,
fulfil_after = CASE WHEN $11 THEN NULL ELSE fulfil_after END,
payment_wallet = CASE WHEN payment_wallet = '' THEN $12 ELSE payment_wallet END WHERE id = $1`,
		p.ID, string(t.Status), t.AwaitingAsync, ledgerTx, creditedAt, paidAt, nullString(t.PaymentIntentID), t.PaymentMethod,
		nullString(t.SessionID), now, t.FulfilmentDone || t.Credit != nil, t.PaymentWallet)
	if err != nil {
		return fmt.Errorf("updating payment %s: %w", p.ID, err)
	}
	if t.Review != nil {
		r := *t.Review
		r.PaymentID, r.OrgID = p.ID, p.OrgID
		if err := s.insertReview(ctx, tx, r); err != nil {
			return err
		}
	}
	if t.Credit != nil {
		if _, err := s.issueDocument(ctx, tx, payment.KindInvoice, p, "", *paidAt, t.Credit.Render); err != nil {
			return err
		}
	}
	return nil
}
