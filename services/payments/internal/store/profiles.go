package store

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/google/uuid"
	"github.com/jackc/pgx/v5"

	"github.com/tallyhq/tally/pkg/textcheck"
	"github.com/tallyhq/tally/services/payments/internal/payment"
)

func billingProfile(ctx context.Context, q querier, orgID string) (payment.BillingProfile, error) {
	bp := payment.BillingProfile{OrgID: orgID}
	err := q.QueryRow(ctx, `SELECT legal_name, address, tax_id, email, updated_at, updated_by FROM billing_profiles WHERE org_id = $1`,
		orgID).Scan(&bp.LegalName, &bp.Address, &bp.TaxID, &bp.Email, &bp.UpdatedAt, &bp.UpdatedBy)
	if errors.Is(err, pgx.ErrNoRows) {
		return bp, nil // an organization without a profile has an empty one
	}
	if err != nil {
		return payment.BillingProfile{}, fmt.Errorf("reading billing profile: %w", err)
	}
	return bp, nil
}

// BillingProfile returns an organization's billing profile; empty when never set.
func (s *Store) BillingProfile(ctx context.Context, orgID string) (payment.BillingProfile, error) {
	return billingProfile(ctx, s.pool, orgID)
}

// PutBillingProfile replaces an organization's billing profile.
func (s *Store) PutBillingProfile(ctx context.Context, bp payment.BillingProfile) (payment.BillingProfile, error) {
	_, err := s.pool.Exec(ctx, `INSERT INTO billing_profiles (org_id, legal_name, address, tax_id, email, updated_at, updated_by)
VALUES ($1, $2, $3, $4, $5, $6, $7) ON CONFLICT (org_id) DO UPDATE SET legal_name = $2, address = $3, tax_id = $4, email = $5,
updated_at = $6, updated_by = $7`, bp.OrgID, bp.LegalName, bp.Address, bp.TaxID, bp.Email, s.clock(), bp.UpdatedBy)
	if err != nil {
		return payment.BillingProfile{}, fmt.Errorf("storing billing profile: %w", err)
	}
	return s.BillingProfile(ctx, bp.OrgID)
}

const reviewColumns = `id, coalesce(payment_id::text, ''), org_id, kind, detail, stripe_event_id, created_at, resolved_at, resolved_by, resolution`

func scanReview(row pgx.Row) (payment.ReviewItem, error) {
	var r payment.ReviewItem
	var resolved *time.Time
	err := row.Scan(&r.ID, &r.PaymentID, &r.OrgID, &r.Kind, &r.Detail, &r.StripeEventID, &r.CreatedAt, &resolved, &r.ResolvedBy, &r.Resolution)
	if errors.Is(err, pgx.ErrNoRows) {
		return payment.ReviewItem{}, payment.ErrNotFound
	}
	if err != nil {
		return payment.ReviewItem{}, fmt.Errorf("scanning review item: %w", err)
	}
	r.ResolvedAt = deref(resolved)
	return r, nil
}

// ReviewItems lists review items newest first, before the id beforeID when set.
func (s *Store) ReviewItems(ctx context.Context, includeResolved bool, limit int, beforeID string) ([]payment.ReviewItem, error) {
	var before *string
	if beforeID != "" {
		before = &beforeID
	}
	rows, err := s.pool.Query(ctx, `SELECT `+reviewColumns+` FROM review_items WHERE ($1 OR resolved_at IS NULL)
AND ($2::uuid IS NULL OR id < $2::uuid) ORDER BY id DESC LIMIT $3`, includeResolved, before, limit)
	if err != nil {
		return nil, fmt.Errorf("listing review items: %w", err)
	}
	defer rows.Close()
	var out []payment.ReviewItem
	for rows.Next() {
		r, err := scanReview(rows)
		if err != nil {
			return nil, err
		}
		out = append(out, r)
	}
	if err := rows.Err(); err != nil {
		return nil, fmt.Errorf("listing review items: %w", err)
	}
	return out, nil
}

// ResolveReviewItem closes an open review item.
func (s *Store) ResolveReviewItem(ctx context.Context, id, by, resolution string) (payment.ReviewItem, error) {
	if _, err := uuid.Parse(id); err != nil {
		return payment.ReviewItem{}, fmt.Errorf("review item %s: %w", textcheck.Quote(id), payment.ErrNotFound)
	}
	r, err := scanReview(s.pool.QueryRow(ctx, `UPDATE review_items SET resolved_at = coalesce(resolved_at, $2),
resolved_by = CASE WHEN resolved_at IS NULL THEN $3 ELSE resolved_by END,
resolution = CASE WHEN resolved_at IS NULL THEN $4 ELSE resolution END WHERE id = $1 RETURNING `+reviewColumns, id, s.clock(), by, resolution))
	if err != nil {
		return payment.ReviewItem{}, fmt.Errorf("resolving review item %s: %w", id, err)
	}
	return r, nil
}

// AddReviewItem opens a review item outside any payment transition.
func (s *Store) AddReviewItem(ctx context.Context, r payment.ReviewItem) error {
	tx, err := s.pool.Begin(ctx)
	if err != nil {
		return fmt.Errorf("beginning transaction: %w", err)
	}
	defer func() { _ = tx.Rollback(context.WithoutCancel(ctx)) }()
	if err := s.insertReview(ctx, tx, r); err != nil {
		return err
	}
	if err := tx.Commit(ctx); err != nil {
		return fmt.Errorf("committing review item: %w", err)
	}
	return nil
}

// ReviewOpened reports whether a review item of kind was ever opened for a payment, resolved or not.
func (s *Store) ReviewOpened(ctx context.Context, paymentID, kind string) (bool, error) {
	var opened bool
	err := s.pool.QueryRow(ctx, `SELECT EXISTS (SELECT 1 FROM review_items WHERE payment_id = $1 AND kind = $2)`, paymentID, kind).Scan(&opened)
	if err != nil {
		return false, fmt.Errorf("looking for %s review items of payment %s: %w", kind, paymentID, err)
	}
	return opened, nil
}

// OpenReviewItems counts the review items nobody resolved yet.
func (s *Store) OpenReviewItems(ctx context.Context) (int64, error) {
	var n int64
	if err := s.pool.QueryRow(ctx, `SELECT count(*) FROM review_items WHERE resolved_at IS NULL`).Scan(&n); err != nil {
		return 0, fmt.Errorf("counting open review items: %w", err)
	}
	return n, nil
}
