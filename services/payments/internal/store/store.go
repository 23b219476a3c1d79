// Package store persists payments, Stripe events, refunds, documents, billing profiles and review
// items in PostgreSQL (schema payments). Writes that must agree with each other — a status change,
// the event that caused it, the invoice number and PDF — happen in one explicit transaction.
package store

import (
	"context"
	"crypto/sha256"
	"errors"
	"fmt"
	"time"

	"github.com/google/uuid"
	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgxpool"

	"github.com/tallyhq/tally/pkg/money"
	"github.com/tallyhq/tally/pkg/textcheck"
	"github.com/tallyhq/tally/services/payments/internal/payment"
)

// Store is the PostgreSQL store.
type Store struct {
	pool *pgxpool.Pool
	now  func() time.Time
}

// New returns a Store over pool, whose search_path is the payments schema; now is the clock of
// the times it records (nil is time.Now).
func New(pool *pgxpool.Pool, now func() time.Time) (*Store, error) {
	if pool == nil {
		return nil, errors.New("store: pool is required")
	}
	if now == nil {
		now = time.Now
	}
	return &Store{pool: pool, now: now}, nil
}

// NewID returns a new time-ordered id.
func NewID() string { return uuid.Must(uuid.NewV7()).String() }

func (s *Store) clock() time.Time { return s.now().UTC().Truncate(time.Microsecond) }

// querier is what both the pool and a transaction offer.
type querier interface {
	QueryRow(ctx context.Context, sql string, args ...any) pgx.Row
	Query(ctx context.Context, sql string, args ...any) (pgx.Rows, error)
}

const paymentColumns = `p.id, p.org_id, p.mode, p.amount_nanos, p.amount_minor, p.currency, p.status, p.member_id,
p.member_name, p.member_email, coalesce(p.checkout_session_id, ''), p.checkout_url, coalesce(p.payment_intent_id, ''),
p.payment_method, p.awaiting_async, p.local_paid_at, p.credited_at, coalesce(p.ledger_transaction_id, ''), p.paid_at,
p.refunded_nanos, p.expires_at, p.created_at, p.updated_at,
coalesce((SELECT d.number FROM documents d WHERE d.payment_id = p.id AND d.kind = 'invoice'), ''),
EXISTS (SELECT 1 FROM review_items r WHERE r.payment_id = p.id AND r.resolved_at IS NULL), p.fulfil_after, p.fulfil_attempts,
p.payment_wallet, p.automatic, p.failure_reason, p.failure_message`

func scanPayment(row pgx.Row) (payment.Payment, error) {
	var p payment.Payment
	var mode, status string
	var amount, refunded int64
	var localPaid, credited, paid, expires, fulfil *time.Time
	var failure string
	err := row.Scan(&p.ID, &p.OrgID, &mode, &amount, &p.AmountMinor, &p.Amount.Currency, &status, &p.Member.ID,
		&p.Member.Name, &p.Member.Email, &p.CheckoutSessionID, &p.CheckoutURL, &p.PaymentIntentID,
		&p.PaymentMethod, &p.AwaitingAsync, &localPaid, &credited, &p.LedgerTransactionID, &paid,
		&refunded, &expires, &p.CreatedAt, &p.UpdatedAt, &p.InvoiceNumber, &p.UnderReview, &fulfil, &p.FulfilAttempts,
		&p.PaymentWallet, &p.Automatic, &failure, &p.FailureMessage)
	p.FailureReason = payment.ChargeStatus(failure)
	if errors.Is(err, pgx.ErrNoRows) {
		return payment.Payment{}, payment.ErrNotFound
	}
	if err != nil {
		return payment.Payment{}, fmt.Errorf("scanning payment: %w", err)
	}
	p.Mode, p.Status = payment.Mode(mode), payment.Status(status)
	p.Amount.Nanos, p.Refunded = money.Nanos(amount), money.Nanos(refunded)
	p.LocalPaidAt, p.CreditedAt, p.PaidAt, p.ExpiresAt = deref(localPaid), deref(credited), deref(paid), deref(expires)
	p.FulfilAfter = deref(fulfil)
	return p, nil
}

func deref(t *time.Time) time.Time {
	if t == nil {
		return time.Time{}
	}
	return t.UTC()
}

func nullTime(t time.Time) *time.Time {
	if t.IsZero() {
		return nil
	}
	return &t
}

func nullString(s string) *string {
	if s == "" {
		return nil
	}
	return &s
}

// InsertPayment records a new pending payment, before its Checkout Session exists.
func (s *Store) InsertPayment(ctx context.Context, p payment.Payment) (payment.Payment, error) {
	now := s.clock()
	_, err := s.pool.Exec(ctx, `INSERT INTO payments (id, org_id, mode, amount_nanos, amount_minor, currency, status,
member_id, member_name, member_email, created_at, updated_at) VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $11)`,
		p.ID, p.OrgID, string(p.Mode), int64(p.Amount.Nanos), p.AmountMinor, p.Amount.Currency, string(payment.StatusPending),
		p.Member.ID, p.Member.Name, p.Member.Email, now)
	if err != nil {
		return payment.Payment{}, fmt.Errorf("inserting payment: %w", err)
	}
	return s.Payment(ctx, "", p.ID)
}

// AttachSession records the Checkout Session created for a pending payment.
func (s *Store) AttachSession(ctx context.Context, paymentID, sessionID, url string, expiresAt time.Time) (payment.Payment, error) {
	tag, err := s.pool.Exec(ctx, `UPDATE payments SET checkout_session_id = $2, checkout_url = $3, expires_at = $4, updated_at = $5
WHERE id = $1 AND checkout_session_id IS NULL`, paymentID, sessionID, url, nullTime(expiresAt), s.clock())
	if err != nil {
		return payment.Payment{}, fmt.Errorf("attaching checkout session: %w", err)
	}
	if tag.RowsAffected() == 0 {
		return payment.Payment{}, fmt.Errorf("attaching checkout session to payment %s: %w", paymentID, payment.ErrNotFound)
	}
	return s.Payment(ctx, "", paymentID)
}

// DeleteUnstartedPayment removes a payment whose Checkout Session could not be created.
func (s *Store) DeleteUnstartedPayment(ctx context.Context, paymentID string) error {
	_, err := s.pool.Exec(ctx, `DELETE FROM payments WHERE id = $1 AND checkout_session_id IS NULL AND credited_at IS NULL
AND NOT EXISTS (SELECT 1 FROM stripe_events e WHERE e.payment_id = payments.id)`, paymentID)
	if err != nil {
		return fmt.Errorf("deleting unstarted payment: %w", err)
	}
	return nil
}

// Payment returns a payment by id; a non-empty orgID must match (else ErrNotFound).
func (s *Store) Payment(ctx context.Context, orgID, id string) (payment.Payment, error) {
	if _, err := uuid.Parse(id); err != nil {
		return payment.Payment{}, fmt.Errorf("payment %s: %w", textcheck.Quote(id), payment.ErrNotFound)
	}
	p, err := scanPayment(s.pool.QueryRow(ctx, `SELECT `+paymentColumns+` FROM payments p WHERE p.id = $1 AND ($2 = '' OR p.org_id = $2)`, id, orgID))
	if err != nil {
		return payment.Payment{}, fmt.Errorf("payment %s: %w", id, err)
	}
	return p, nil
}

// PaymentBySession returns the payment of a Checkout Session.
func (s *Store) PaymentBySession(ctx context.Context, sessionID string) (payment.Payment, error) {
	p, err := scanPayment(s.pool.QueryRow(ctx, `SELECT `+paymentColumns+` FROM payments p WHERE p.checkout_session_id = $1`, sessionID))
	if err != nil {
		return payment.Payment{}, fmt.Errorf("payment of session %s: %w", sessionID, err)
	}
	return p, nil
}

// PaymentByIntent returns the payment of a Stripe PaymentIntent.
func (s *Store) PaymentByIntent(ctx context.Context, intentID string) (payment.Payment, error) {
	p, err := scanPayment(s.pool.QueryRow(ctx, `SELECT `+paymentColumns+` FROM payments p WHERE p.payment_intent_id = $1
ORDER BY p.id DESC LIMIT 1`, intentID))
	if err != nil {
		return payment.Payment{}, fmt.Errorf("payment of intent %s: %w", intentID, err)
	}
	return p, nil
}

// ListPayments lists an organization's payments newest first, older than the payment beforeID
// when set (ids are time-ordered UUIDv7), each with its refunds.
func (s *Store) ListPayments(ctx context.Context, orgID string, limit int, beforeID string) ([]payment.Payment, error) {
	var before *string
	if beforeID != "" {
		before = &beforeID
	}
	rows, err := s.pool.Query(ctx, `SELECT `+paymentColumns+` FROM payments p WHERE p.org_id = $1
AND ($2::uuid IS NULL OR p.id < $2::uuid) ORDER BY p.id DESC LIMIT $3`, orgID, before, limit)
	if err != nil {
		return nil, fmt.Errorf("listing payments: %w", err)
	}
	out, err := collectPayments(rows)
	if err != nil {
		return nil, fmt.Errorf("listing payments: %w", err)
	}
	ids := make([]string, 0, len(out))
	for _, p := range out {
		if p.Credited() { // only a credited payment can be refunded
			ids = append(ids, p.ID)
		}
	}
	refunds, err := s.RefundsOf(ctx, ids)
	if err != nil {
		return nil, err
	}
	for i := range out {
		out[i].Refunds = refunds[out[i].ID]
	}
	return out, nil
}

// MarkLocalPaid records that the local test-mode checkout page was paid with method and wallet
// (wallet may be empty). Only a pending session before its expiry can be paid: ErrNotFound when
// the session is unknown or not local, ErrFailedPrecondition when it can no longer be paid.
// Marking twice keeps the first time and method.
func (s *Store) MarkLocalPaid(ctx context.Context, sessionID, method, wallet string) (payment.Payment, error) {
	now := s.clock()
	tag, err := s.pool.Exec(ctx, `UPDATE payments SET local_paid_at = coalesce(local_paid_at, $2), updated_at = $2,
payment_method = CASE WHEN local_paid_at IS NULL THEN $3 ELSE payment_method END,
payment_wallet = CASE WHEN local_paid_at IS NULL THEN $4 ELSE payment_wallet END
WHERE checkout_session_id = $1 AND mode = 'local' AND status = 'pending' AND (expires_at IS NULL OR expires_at > $2)`,
		sessionID, now, method, wallet)
	if err != nil {
		return payment.Payment{}, fmt.Errorf("marking local session paid: %w", err)
	}
	p, err := s.PaymentBySession(ctx, sessionID)
	if err != nil {
		return payment.Payment{}, err
	}
	if p.Mode != payment.ModeLocal {
		return payment.Payment{}, fmt.Errorf("local session %s: %w", sessionID, payment.ErrNotFound)
	}
	if tag.RowsAffected() == 0 {
		return p, fmt.Errorf("%w: checkout session %s is %s and can no longer be paid", payment.ErrFailedPrecondition, sessionID, p.Status)
	}
	return p, nil
}

// SetPaymentWallet records the card wallet of a payment that has none recorded yet.
func (s *Store) SetPaymentWallet(ctx context.Context, id, wallet string) error {
	_, err := s.pool.Exec(ctx, `UPDATE payments SET payment_wallet = $2, updated_at = $3 WHERE id = $1 AND payment_wallet = ''`,
		id, wallet, s.clock())
	if err != nil {
		return fmt.Errorf("recording the wallet of payment %s: %w", id, err)
	}
	return nil
}

// PendingPastExpiry lists up to limit pending payments of mode whose Checkout Session expired
// before before and that nothing settled: not credited, not paid on the test-mode page, not due
// for fulfilment, not completed and awaiting an asynchronous payment (such a session no longer
// expires: its payment succeeds or fails). The expiry sweep asks the processor of that mode
// about each.
func (s *Store) PendingPastExpiry(ctx context.Context, mode payment.Mode, before time.Time, limit int) ([]payment.Payment, error) {
	rows, err := s.pool.Query(ctx, `SELECT `+paymentColumns+` FROM payments p WHERE p.status = 'pending' AND p.credited_at IS NULL
AND p.expires_at IS NOT NULL AND p.expires_at < $1 AND p.checkout_session_id IS NOT NULL AND p.local_paid_at IS NULL
AND p.fulfil_after IS NULL AND NOT p.awaiting_async AND p.mode = $3 ORDER BY p.expires_at LIMIT $2`, before.UTC(), limit, string(mode))
	if err != nil {
		return nil, fmt.Errorf("listing payments past their expiry: %w", err)
	}
	return collectPayments(rows)
}

// collectPayments scans and closes rows of paymentColumns.
func collectPayments(rows pgx.Rows) ([]payment.Payment, error) {
	return collect(rows, scanPayment, "reading payments")
}

// collect scans and closes rows with scan; what names the rows in the error of the read.
func collect[T any](rows pgx.Rows, scan func(pgx.Row) (T, error), what string) ([]T, error) {
	defer rows.Close()
	var out []T
	for rows.Next() {
		v, err := scan(rows)
		if err != nil {
			return nil, err
		}
		out = append(out, v)
	}
	if err := rows.Err(); err != nil {
		return nil, fmt.Errorf("%s: %w", what, err)
	}
	return out, nil
}

// LocalToReconcile lists the local test-mode payments reconciliation must look at: paid on the
// checkout page but not credited (their webhook was lost), and pending past their expiry.
func (s *Store) LocalToReconcile(ctx context.Context, limit int) ([]payment.Payment, error) {
	rows, err := s.pool.Query(ctx, `SELECT `+paymentColumns+` FROM payments p WHERE p.mode = 'local' AND p.credited_at IS NULL
AND (p.local_paid_at IS NOT NULL OR (p.status = 'pending' AND p.expires_at < $2)) ORDER BY p.id LIMIT $1`, limit, s.clock())
	if err != nil {
		return nil, fmt.Errorf("listing paid local sessions: %w", err)
	}
	return collectPayments(rows)
}

// EventSeen reports whether a Stripe event was already processed.
func (s *Store) EventSeen(ctx context.Context, eventID string) (bool, error) {
	var seen bool
	if err := s.pool.QueryRow(ctx, `SELECT EXISTS (SELECT 1 FROM stripe_events WHERE id = $1)`, eventID).Scan(&seen); err != nil {
		return false, fmt.Errorf("checking event %s: %w", eventID, err)
	}
	return seen, nil
}

// EventRecord names the Stripe event behind a change; an empty ID (reconciliation, local
// bookkeeping) records nothing.
type EventRecord struct {
	ID      string
	Type    string
	Outcome string
}

// RecordEvent records an event that changes no payment. It reports false when the event had
// already been recorded.
func (s *Store) RecordEvent(ctx context.Context, ev EventRecord, review *payment.ReviewItem) (bool, error) {
	tx, err := s.pool.Begin(ctx)
	if err != nil {
		return false, fmt.Errorf("beginning transaction: %w", err)
	}
	defer func() { _ = tx.Rollback(context.WithoutCancel(ctx)) }()
	fresh, err := recordEvent(ctx, tx, ev, "")
	if err != nil || !fresh {
		return false, err
	}
	if review != nil {
		if err := s.insertReview(ctx, tx, *review); err != nil {
			return false, err
		}
	}
	if err := tx.Commit(ctx); err != nil {
		return false, fmt.Errorf("committing event: %w", err)
	}
	return true, nil
}

func recordEvent(ctx context.Context, tx pgx.Tx, ev EventRecord, paymentID string) (bool, error) {
	if ev.ID == "" {
		return true, nil
	}
	var pid *string
	if paymentID != "" {
		pid = &paymentID
	}
	tag, err := tx.Exec(ctx, `INSERT INTO stripe_events (id, type, payment_id, outcome) VALUES ($1, $2, $3, $4)
ON CONFLICT (id) DO NOTHING`, ev.ID, ev.Type, pid, ev.Outcome)
	if err != nil {
		return false, fmt.Errorf("recording event %s: %w", ev.ID, err)
	}
	return tag.RowsAffected() == 1, nil
}

func (s *Store) insertReview(ctx context.Context, tx pgx.Tx, r payment.ReviewItem) error {
	_, err := tx.Exec(ctx, `INSERT INTO review_items (id, payment_id, org_id, kind, detail, stripe_event_id, created_at)
VALUES ($1, $2, $3, $4, $5, $6, $7) ON CONFLICT (payment_id, kind) WHERE resolved_at IS NULL DO NOTHING`,
		NewID(), nullString(r.PaymentID), r.OrgID, r.Kind, r.Detail, r.StripeEventID, s.clock())
	if err != nil {
		return fmt.Errorf("inserting review item: %w", err)
	}
	return nil
}

// Render renders the PDF of a document once its number is allocated, with the organization's
// billing profile as it is in the issuing transaction.
type Render func(number string, issuedAt time.Time, profile payment.BillingProfile) ([]byte, error)

// issueDocument allocates the next number of kind's series for the year of issuedAt (the counter
// row stays locked until the transaction ends, which makes numbers gapless), renders the PDF and
// stores it.
func (s *Store) issueDocument(ctx context.Context, tx pgx.Tx, kind payment.DocumentKind, p payment.Payment, refundID string,
	issuedAt time.Time, render Render) (string, error) {
	year := issuedAt.UTC().Year()
	var seq int64
	err := tx.QueryRow(ctx, `INSERT INTO document_counters (series, year, last) VALUES ($1, $2, 1)
ON CONFLICT (series, year) DO UPDATE SET last = document_counters.last + 1 RETURNING last`, kind.Series(), year).Scan(&seq)
	if err != nil {
		return "", fmt.Errorf("allocating %s number: %w", kind, err)
	}
	number := fmt.Sprintf("%s-%d-%06d", kind.Series(), year, seq)
	profile, err := billingProfile(ctx, tx, p.OrgID)
	if err != nil {
		return "", err
	}
	pdf, err := render(number, issuedAt, profile)
	if err != nil {
		return "", fmt.Errorf("rendering %s %s: %w", kind, number, err)
	}
	sum := sha256.Sum256(pdf)
	_, err = tx.Exec(ctx, `INSERT INTO documents (id, kind, series, year, seq, number, payment_id, refund_id, org_id, issued_at, pdf, pdf_sha256)
VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12)`, NewID(), string(kind), kind.Series(), year, seq, number, p.ID,
		nullString(refundID), p.OrgID, issuedAt, pdf, sum[:])
	if err != nil {
		return "", fmt.Errorf("storing %s %s: %w", kind, number, err)
	}
	return number, nil
}

// Document returns an issued document of a payment: its invoice when refundID is empty, else the
// credit note of that refund. A non-empty orgID must match.
func (s *Store) Document(ctx context.Context, orgID, paymentID, refundID string) (payment.Document, error) {
	if _, err := uuid.Parse(paymentID); err != nil {
		return payment.Document{}, fmt.Errorf("payment %s: %w", textcheck.Quote(paymentID), payment.ErrNotFound)
	}
	kind := payment.KindInvoice
	if refundID != "" {
		if _, err := uuid.Parse(refundID); err != nil {
			return payment.Document{}, fmt.Errorf("refund %s: %w", textcheck.Quote(refundID), payment.ErrNotFound)
		}
		kind = payment.KindCreditNote
	}
	var d payment.Document
	var kindS string
	var rid *string
	err := s.pool.QueryRow(ctx, `SELECT id, kind, number, payment_id, refund_id, org_id, issued_at, pdf, pdf_sha256 FROM documents
WHERE payment_id = $1 AND kind = $2 AND ($3 = '' OR refund_id = $3::uuid) AND ($4 = '' OR org_id = $4)`,
		paymentID, string(kind), refundID, orgID).Scan(&d.ID, &kindS, &d.Number, &d.PaymentID, &rid, &d.OrgID, &d.IssuedAt, &d.PDF, &d.SHA256)
	if errors.Is(err, pgx.ErrNoRows) {
		return payment.Document{}, fmt.Errorf("%s of payment %s: %w", kind, paymentID, payment.ErrNotFound)
	}
	if err != nil {
		return payment.Document{}, fmt.Errorf("reading %s: %w", kind, err)
	}
	d.Kind = payment.DocumentKind(kindS)
	if rid != nil {
		d.RefundID = *rid
	}
	return d, nil
}
