package store

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/google/uuid"
	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgconn"

	"github.com/tallyhq/tally/pkg/money"
	"github.com/tallyhq/tally/pkg/textcheck"
	"github.com/tallyhq/tally/services/payments/internal/payment"
)

// uniqueViolation is PostgreSQL's SQLSTATE for a unique constraint violation.
const uniqueViolation = "23505"

const refundColumns = `r.id, r.payment_id, p.org_id, r.amount_nanos, p.currency, r.amount_minor, r.status, r.reason, r.requested_by,
coalesce(r.stripe_refund_id, ''), r.credits_taken_back_nanos, r.credits_not_recovered_nanos,
coalesce((SELECT d.number FROM documents d WHERE d.refund_id = r.id), ''), r.created_at, r.completed_at,
r.idempotency_key, r.requested_nanos, r.take_back_nanos, r.stripe_status, r.attempts, r.last_error, r.retry_at, r.lease_until`

func scanRefund(row pgx.Row) (payment.Refund, error) {
	r, _, err := scanRefundLease(row)
	return r, err
}

// scanRefundLease scans a refund and its lease (zero when none).
func scanRefundLease(row pgx.Row) (payment.Refund, time.Time, error) {
	var r payment.Refund
	var amount, taken, lost, requested int64
	var takeBack *int64
	var status, stripeStatus string
	var completed, lease *time.Time
	err := row.Scan(&r.ID, &r.PaymentID, &r.OrgID, &amount, &r.Amount.Currency, &r.AmountMinor, &status, &r.Reason, &r.RequestedBy,
		&r.StripeRefundID, &taken, &lost, &r.CreditNoteNumber, &r.CreatedAt, &completed,
		&r.IdempotencyKey, &requested, &takeBack, &stripeStatus, &r.Attempts, &r.LastError, &r.RetryAt, &lease)
	if errors.Is(err, pgx.ErrNoRows) {
		return payment.Refund{}, time.Time{}, payment.ErrNotFound
	}
	if err != nil {
		return payment.Refund{}, time.Time{}, fmt.Errorf("scanning refund: %w", err)
	}
	r.Amount.Nanos, r.CreditsTakenBack, r.CreditsNotRecovered = money.Nanos(amount), money.Nanos(taken), money.Nanos(lost)
	r.Status, r.CompletedAt, r.Requested = payment.RefundStatus(status), deref(completed), money.Nanos(requested)
	r.StripeStatus, r.RetryAt = payment.ProcessorRefundStatus(stripeStatus), r.RetryAt.UTC()
	if takeBack != nil {
		r.TakeBack, r.TakeBackDecided = money.Nanos(*takeBack), true
	}
	return r, deref(lease), nil
}

// RefundRequest asks for a refund; a zero Amount refunds everything not refunded yet.
type RefundRequest struct {
	PaymentID   string
	Amount      money.Nanos
	Reason      string
	RequestedBy string
	// IdempotencyKey identifies the request: the same key with the same payment, amount and
	// reason is the same refund.
	IdempotencyKey string
	// Lease is how long the caller that creates (or takes over) a pending refund has to carry it out
	// before a retry may take it over.
	Lease time.Duration
	// ToMinor converts the amount to Stripe minor units, refusing inexact amounts.
	ToMinor func(money.Money) (int64, error)
}

// RefundClaim is the refund of a request, as BeginRefund found or created it.
type RefundClaim struct {
	Refund  payment.Refund
	Payment payment.Payment
	// Claimed is set when the caller holds the refund's lease and must carry the pending refund out
	// (a new refund, or one whose previous worker let its lease lapse).
	Claimed bool
	// LeaseUntil is, for a pending refund another request works on, when its lease lapses.
	LeaseUntil time.Time
	// Replayed is set when the idempotency key already named this refund before the request.
	Replayed bool
}

// BeginRefund locks the payment and returns the refund of the request's idempotency key: the
// existing one when the key was used before with the same parameters (claimed when it is pending
// and nobody holds it), payment.ErrAlreadyExists when it was used with other parameters, and
// otherwise a new pending refund, claimed, after checking that the amount is still refundable
// (pending refunds count, so two refunds cannot both take the same money).
func (s *Store) BeginRefund(ctx context.Context, req RefundRequest) (RefundClaim, error) {
	if _, err := uuid.Parse(req.PaymentID); err != nil {
		return RefundClaim{}, fmt.Errorf("payment %s: %w", textcheck.Quote(req.PaymentID), payment.ErrNotFound)
	}
	if req.IdempotencyKey == "" || req.Lease <= 0 {
		return RefundClaim{}, fmt.Errorf("%w: a refund needs an idempotency key and a lease", payment.ErrInvalid)
	}
	tx, err := s.pool.Begin(ctx)
	if err != nil {
		return RefundClaim{}, fmt.Errorf("beginning transaction: %w", err)
	}
	defer func() { _ = tx.Rollback(context.WithoutCancel(ctx)) }()
	p, err := scanPayment(tx.QueryRow(ctx, `SELECT `+paymentColumns+` FROM payments p WHERE p.id = $1 FOR UPDATE OF p`, req.PaymentID))
	if err != nil {
		return RefundClaim{}, fmt.Errorf("locking payment %s: %w", req.PaymentID, err)
	}
	now := s.clock()
	// Requests for one payment are serialized by its row lock; a key used for another payment
	// is refused below whatever that payment's state.
	prev, lease, err := scanRefundLease(tx.QueryRow(ctx, `SELECT `+refundColumns+` FROM refunds r JOIN payments p ON p.id = r.payment_id
WHERE r.idempotency_key = $1 FOR UPDATE OF r`, req.IdempotencyKey))
	switch {
	case err == nil:
		return s.repeatRefund(ctx, tx, req, prev, lease, p, now)
	case !errors.Is(err, payment.ErrNotFound):
		return RefundClaim{}, fmt.Errorf("looking up the idempotency key: %w", err)
	}
	if !p.Credited() || p.Status != payment.StatusSucceeded {
		return RefundClaim{}, fmt.Errorf("%w: payment %s is %s; only succeeded payments can be refunded",
			payment.ErrFailedPrecondition, p.ID, p.Status)
	}
	var committed int64
	if err := tx.QueryRow(ctx, `SELECT coalesce(sum(amount_nanos), 0)::bigint FROM refunds WHERE payment_id = $1 AND status <> 'failed'`,
		p.ID).Scan(&committed); err != nil {
		return RefundClaim{}, fmt.Errorf("summing refunds: %w", err)
	}
	refundable := p.Amount.Nanos - money.Nanos(committed)
	amount := req.Amount
	if amount == 0 {
		amount = refundable
	}
	if amount <= 0 || amount > refundable {
		return RefundClaim{}, fmt.Errorf("%w: %s of payment %s can still be refunded",
			payment.ErrFailedPrecondition, money.Money{Nanos: refundable, Currency: p.Amount.Currency}, p.ID)
	}
	minor, err := req.ToMinor(money.Money{Nanos: amount, Currency: p.Amount.Currency})
	if err != nil {
		return RefundClaim{}, err
	}
	id := NewID()
	_, err = tx.Exec(ctx, `INSERT INTO refunds (id, payment_id, amount_nanos, amount_minor, status, reason, requested_by, created_at,
idempotency_key, requested_nanos, lease_until, retry_at)
VALUES ($1, $2, $3, $4, 'pending', $5, $6, $7, $8, $9, $10, $7)`, id, p.ID, int64(amount), minor, req.Reason, req.RequestedBy, now,
		req.IdempotencyKey, int64(req.Amount), now.Add(req.Lease))
	var pgErr *pgconn.PgError
	if errors.As(err, &pgErr) && pgErr.Code == uniqueViolation {
		// The key was taken at the same moment by a refund of another payment.
		return RefundClaim{}, fmt.Errorf("%w: idempotency_key is already used by another refund", payment.ErrAlreadyExists)
	}
	if err != nil {
		return RefundClaim{}, fmt.Errorf("inserting refund: %w", err)
	}
	if err := tx.Commit(ctx); err != nil {
		return RefundClaim{}, fmt.Errorf("committing refund: %w", err)
	}
	r, err := s.Refund(ctx, id)
	if err != nil {
		return RefundClaim{}, err
	}
	return RefundClaim{Refund: r, Payment: p, Claimed: true}, nil
}

// repeatRefund answers a request whose idempotency key names refund prev (locked in tx).
func (s *Store) repeatRefund(ctx context.Context, tx pgx.Tx, req RefundRequest, prev payment.Refund, lease time.Time,
	p payment.Payment, now time.Time) (RefundClaim, error) {
	if !prev.SameRequest(req.PaymentID, req.Amount, req.Reason) {
		return RefundClaim{}, fmt.Errorf("%w: idempotency_key is already used by refund %s with other parameters", payment.ErrAlreadyExists, prev.ID)
	}
	c := RefundClaim{Refund: prev, Payment: p, Replayed: true}
	if prev.Status != payment.RefundPending {
		return c, nil
	}
	if !lease.IsZero() && lease.After(now) {
		c.LeaseUntil = lease
		return c, nil
	}
	if _, err := tx.Exec(ctx, `UPDATE refunds SET lease_until = $2 WHERE id = $1`, prev.ID, now.Add(req.Lease)); err != nil {
		return RefundClaim{}, fmt.Errorf("taking over refund %s: %w", prev.ID, err)
	}
	if err := tx.Commit(ctx); err != nil {
		return RefundClaim{}, fmt.Errorf("committing refund take-over: %w", err)
	}
	c.Claimed = true
	return c, nil
}

// DecideTakeBack records how many credits a pending refund takes back, unless that was decided
// before, and returns the recorded amount.
func (s *Store) DecideTakeBack(ctx context.Context, refundID string, take money.Nanos) (money.Nanos, error) {
	var got int64
	err := s.pool.QueryRow(ctx, `UPDATE refunds SET take_back_nanos = coalesce(take_back_nanos, $2) WHERE id = $1 AND status = 'pending'
RETURNING take_back_nanos`, refundID, int64(take)).Scan(&got)
	if errors.Is(err, pgx.ErrNoRows) {
		return 0, fmt.Errorf("%w: refund %s is not pending", payment.ErrFailedPrecondition, refundID)
	}
	if err != nil {
		return 0, fmt.Errorf("recording the credits to take back: %w", err)
	}
	return money.Nanos(got), nil
}

// Refund returns a refund by id.
func (s *Store) Refund(ctx context.Context, id string) (payment.Refund, error) {
	r, err := scanRefund(s.pool.QueryRow(ctx, `SELECT `+refundColumns+` FROM refunds r JOIN payments p ON p.id = r.payment_id WHERE r.id = $1`, id))
	if err != nil {
		return payment.Refund{}, fmt.Errorf("refund %s: %w", id, err)
	}
	return r, nil
}

// Refunds lists the refunds of a payment, oldest first.
func (s *Store) Refunds(ctx context.Context, paymentID string) ([]payment.Refund, error) {
	rows, err := s.pool.Query(ctx, `SELECT `+refundColumns+` FROM refunds r JOIN payments p ON p.id = r.payment_id
WHERE r.payment_id = $1 ORDER BY r.id`, paymentID)
	if err != nil {
		return nil, fmt.Errorf("listing refunds: %w", err)
	}
	return collect(rows, scanRefund, "listing refunds")
}

// RefundsOf lists the refunds of the payments ids, oldest first, by payment id.
func (s *Store) RefundsOf(ctx context.Context, ids []string) (map[string][]payment.Refund, error) {
	out := map[string][]payment.Refund{}
	if len(ids) == 0 {
		return out, nil
	}
	rows, err := s.pool.Query(ctx, `SELECT `+refundColumns+` FROM refunds r JOIN payments p ON p.id = r.payment_id
WHERE r.payment_id = ANY($1::uuid[]) ORDER BY r.id`, ids)
	if err != nil {
		return nil, fmt.Errorf("listing refunds: %w", err)
	}
	refunds, err := collect(rows, scanRefund, "listing refunds")
	if err != nil {
		return nil, err
	}
	for _, r := range refunds {
		out[r.PaymentID] = append(out[r.PaymentID], r)
	}
	return out, nil
}

// RefundedMinor sums the minor units of a payment's refunds that tally issued (pending or done).
func (s *Store) RefundedMinor(ctx context.Context, paymentID string) (int64, error) {
	var n int64
	if err := s.pool.QueryRow(ctx, `SELECT coalesce(sum(amount_minor), 0)::bigint FROM refunds WHERE payment_id = $1 AND status <> 'failed'`,
		paymentID).Scan(&n); err != nil {
		return 0, fmt.Errorf("summing refunds: %w", err)
	}
	return n, nil
}

// SetStripeRefund records the processor's refund of a pending refund and its status (the first
// refund id recorded stays: a resumed refund reaches the same Stripe refund through its
// idempotency key).
func (s *Store) SetStripeRefund(ctx context.Context, refundID, stripeID string, status payment.ProcessorRefundStatus) error {
	if _, err := s.pool.Exec(ctx, `UPDATE refunds SET stripe_refund_id = coalesce(stripe_refund_id, $2), stripe_status = $3
WHERE id = $1 AND status = 'pending'`, refundID, stripeID, string(status)); err != nil {
		return fmt.Errorf("recording stripe refund: %w", err)
	}
	return nil
}

// FailRefund marks a pending refund failed: Stripe refused it and nothing was refunded; it no
// longer counts against what can be refunded.
func (s *Store) FailRefund(ctx context.Context, refundID string) error {
	if _, err := s.pool.Exec(ctx, `UPDATE refunds SET status = 'failed', completed_at = $2, lease_until = NULL WHERE id = $1 AND status = 'pending'`,
		refundID, s.clock()); err != nil {
		return fmt.Errorf("failing refund: %w", err)
	}
	return nil
}

// RefundOutcome is what completing a refund did to the organization's credits.
type RefundOutcome struct {
	CreditsTakenBack    money.Nanos
	CreditsNotRecovered money.Nanos
	Render              Render
	// Review opens an ops review item (e.g. credits that could not be recovered).
	Review *payment.ReviewItem
}

// CompleteRefund marks a refund succeeded, issues its credit note and adds it to the payment's
// refunded total (a fully refunded payment becomes refunded), in one transaction. A refund
// completed already (by a request that took it over) is returned as it is.
func (s *Store) CompleteRefund(ctx context.Context, refundID string, out RefundOutcome) (payment.Refund, payment.Payment, error) {
	r, err := s.Refund(ctx, refundID)
	if err != nil {
		return payment.Refund{}, payment.Payment{}, err
	}
	tx, err := s.pool.Begin(ctx)
	if err != nil {
		return payment.Refund{}, payment.Payment{}, fmt.Errorf("beginning transaction: %w", err)
	}
	defer func() { _ = tx.Rollback(context.WithoutCancel(ctx)) }()
	p, err := scanPayment(tx.QueryRow(ctx, `SELECT `+paymentColumns+` FROM payments p WHERE p.id = $1 FOR UPDATE OF p`, r.PaymentID))
	if err != nil {
		return payment.Refund{}, payment.Payment{}, fmt.Errorf("locking payment %s: %w", r.PaymentID, err)
	}
	now := s.clock()
	tag, err := tx.Exec(ctx, `UPDATE refunds SET status = 'succeeded', credits_taken_back_nanos = $2, credits_not_recovered_nanos = $3,
completed_at = $4, lease_until = NULL WHERE id = $1 AND status = 'pending'`, r.ID, int64(out.CreditsTakenBack), int64(out.CreditsNotRecovered), now)
	if err != nil {
		return payment.Refund{}, payment.Payment{}, fmt.Errorf("completing refund: %w", err)
	}
	if tag.RowsAffected() == 0 {
		if r, err = s.Refund(ctx, refundID); err != nil {
			return payment.Refund{}, payment.Payment{}, err
		}
		if r.Status != payment.RefundSucceeded {
			return payment.Refund{}, payment.Payment{}, fmt.Errorf("%w: refund %s is %s", payment.ErrFailedPrecondition, r.ID, r.Status)
		}
		return r, p, nil
	}
	refunded := p.Refunded + r.Amount.Nanos
	status := p.Status
	if refunded >= p.Amount.Nanos {
		status = payment.StatusRefunded
	}
	if _, err := tx.Exec(ctx, `UPDATE payments SET refunded_nanos = $2, status = $3, updated_at = $4 WHERE id = $1`,
		p.ID, int64(refunded), string(status), now); err != nil {
		return payment.Refund{}, payment.Payment{}, fmt.Errorf("updating refunded payment: %w", err)
	}
	if out.Review != nil {
		rv := *out.Review
		rv.PaymentID, rv.OrgID = p.ID, p.OrgID
		if err := s.insertReview(ctx, tx, rv); err != nil {
			return payment.Refund{}, payment.Payment{}, err
		}
	}
	if _, err := s.issueDocument(ctx, tx, payment.KindCreditNote, p, r.ID, now, out.Render); err != nil {
		return payment.Refund{}, payment.Payment{}, err
	}
	if err := tx.Commit(ctx); err != nil {
		return payment.Refund{}, payment.Payment{}, fmt.Errorf("committing refund: %w", err)
	}
	if r, err = s.Refund(ctx, refundID); err != nil {
		return payment.Refund{}, payment.Payment{}, err
	}
	p, err = s.Payment(ctx, "", r.PaymentID)
	return r, p, err
}
