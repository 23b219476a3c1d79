package store

import (
	"context"
	"fmt"
	"time"

	"github.com/tallyhq/tally/services/payments/internal/payment"
)

// maxErrorLength bounds the last error recorded on retried work.
const maxErrorLength = 500

// SessionFacts are what a paid Checkout Session tells about its payment, recorded when the payment
// is marked due for fulfilment (each only when not known yet).
type SessionFacts struct {
	SessionID       string
	PaymentIntentID string
	PaymentMethod   string
	PaymentWallet   string
}

// MarkFulfilmentDue records that payment id is paid and its credit is due, before the ledger is
// asked for it: until it is credited (or the credit is definitively refused) the retry worker
// credits it from until on, whoever started it. It reports false, changing nothing, for a payment
// already credited or expired: only a payment marked due may be sent to the ledger, and a marked
// payment no longer expires (see payment.Decide), so the expiry sweep and a late payment never
// both win.
func (s *Store) MarkFulfilmentDue(ctx context.Context, id string, f SessionFacts, until time.Time) (bool, error) {
	tag, err := s.pool.Exec(ctx, `UPDATE payments SET fulfil_after = $2,
payment_intent_id = coalesce(payment_intent_id, $3), payment_method = CASE WHEN payment_method = '' THEN $4 ELSE payment_method END,
checkout_session_id = coalesce(checkout_session_id, $5), updated_at = $6
WHERE id = $1 AND credited_at IS NULL AND status <> 'expired'`,
		id, until.UTC(), nullString(f.PaymentIntentID), f.PaymentMethod, nullString(f.SessionID), s.clock())
	if err != nil {
		return false, fmt.Errorf("marking payment %s due for fulfilment: %w", id, err)
	}
	return tag.RowsAffected() == 1, nil
}

// ClaimFulfilments claims up to limit payments whose credit is due, for lease: their next attempt
// moves lease ahead, so that no other replica takes them meanwhile (rows locked by another
// claim are skipped). The claim commits before the caller calls the ledger.
func (s *Store) ClaimFulfilments(ctx context.Context, limit int, lease time.Duration) ([]payment.Payment, error) {
	now := s.clock()
	rows, err := s.pool.Query(ctx, `WITH due AS (
SELECT id FROM payments WHERE fulfil_after <= $1 AND credited_at IS NULL AND checkout_session_id IS NOT NULL
ORDER BY fulfil_after LIMIT $2 FOR UPDATE SKIP LOCKED)
UPDATE payments p SET fulfil_after = $3 FROM due WHERE p.id = due.id RETURNING p.id`, now, limit, now.Add(lease))
	if err != nil {
		return nil, fmt.Errorf("claiming due fulfilments: %w", err)
	}
	var ids []string
	for rows.Next() {
		var id string
		if err := rows.Scan(&id); err != nil {
			rows.Close()
			return nil, fmt.Errorf("claiming due fulfilments: %w", err)
		}
		ids = append(ids, id)
	}
	rows.Close()
	if err := rows.Err(); err != nil {
		return nil, fmt.Errorf("claiming due fulfilments: %w", err)
	}
	return s.paymentsByID(ctx, ids)
}

// paymentsByID loads the payments of ids, in that order.
func (s *Store) paymentsByID(ctx context.Context, ids []string) ([]payment.Payment, error) {
	out := make([]payment.Payment, 0, len(ids))
	for _, id := range ids {
		p, err := s.Payment(ctx, "", id)
		if err != nil {
			return nil, err
		}
		out = append(out, p)
	}
	return out, nil
}

// Retry is when failed work is tried again and why it failed.
type Retry struct {
	// Failures is the number of failed attempts, this one included.
	Failures int
	At       time.Time
	Cause    string
}

// FulfilmentFailed records a failed attempt to credit payment id; the retry worker tries again at
// r.At. It is a no-op once the payment is credited or no longer due.
func (s *Store) FulfilmentFailed(ctx context.Context, id string, r Retry) error {
	_, err := s.pool.Exec(ctx, `UPDATE payments SET fulfil_after = $2, fulfil_attempts = $3, fulfil_error = $4
WHERE id = $1 AND credited_at IS NULL AND fulfil_after IS NOT NULL`, id, r.At.UTC(), r.Failures, truncate(r.Cause, maxErrorLength))
	if err != nil {
		return fmt.Errorf("recording failed fulfilment of payment %s: %w", id, err)
	}
	return nil
}

// ClaimRefunds claims up to limit pending refunds nobody holds, for lease (the lease a request
// takes in BeginRefund, so requests and replicas exclude each other), and returns their ids.
// With dueOnly, only refunds whose retry time has come are claimed; without it (reconciliation)
// every pending refund nobody holds. Refunds of Stripe payments are claimed only withStripe (a
// test-mode service cannot carry them out).
func (s *Store) ClaimRefunds(ctx context.Context, limit int, lease time.Duration, dueOnly, withStripe bool) ([]string, error) {
	now := s.clock()
	rows, err := s.pool.Query(ctx, `WITH due AS (
SELECT r.id FROM refunds r JOIN payments p ON p.id = r.payment_id
WHERE r.status = 'pending' AND (r.lease_until IS NULL OR r.lease_until <= $1) AND (NOT $4 OR r.retry_at <= $1) AND ($5 OR p.mode = 'local')
ORDER BY r.retry_at LIMIT $2 FOR UPDATE OF r SKIP LOCKED)
UPDATE refunds r SET lease_until = $3 FROM due WHERE r.id = due.id RETURNING r.id`, now, limit, now.Add(lease), dueOnly, withStripe)
	if err != nil {
		return nil, fmt.Errorf("claiming pending refunds: %w", err)
	}
	defer rows.Close()
	var ids []string
	for rows.Next() {
		var id string
		if err := rows.Scan(&id); err != nil {
			return nil, fmt.Errorf("claiming pending refunds: %w", err)
		}
		ids = append(ids, id)
	}
	if err := rows.Err(); err != nil {
		return nil, fmt.Errorf("claiming pending refunds: %w", err)
	}
	return ids, nil
}

// RetryRefundLater gives up the lease on a pending refund that could not be finished now; the
// retry worker carries it on at r.At, a request with its idempotency key at once.
func (s *Store) RetryRefundLater(ctx context.Context, refundID string, r Retry) error {
	if _, err := s.pool.Exec(ctx, `UPDATE refunds SET lease_until = NULL, retry_at = $2, attempts = $3, last_error = $4
WHERE id = $1 AND status = 'pending'`, refundID, r.At.UTC(), r.Failures, truncate(r.Cause, maxErrorLength)); err != nil {
		return fmt.Errorf("releasing refund %s: %w", refundID, err)
	}
	return nil
}

func truncate(s string, n int) string {
	if len(s) <= n {
		return s
	}
	// Cut on a rune boundary.
	for n > 0 && n < len(s) && s[n]&0xC0 == 0x80 {
		n--
	}
	return s[:n]
}
