package app

import (
	"context"
	"time"

	"github.com/tallyhq/tally/pkg/ids"
	"github.com/tallyhq/tally/services/payments/internal/payment"
)

// queryTimeout bounds the database work of one read request.
const queryTimeout = 5 * time.Second

// ListPayments lists an organization's payments newest first, each with its refunds; the page
// token is the last id.
func (a *App) ListPayments(ctx context.Context, orgID string, limit int, after string) ([]payment.Payment, error) {
	if err := ids.OrgID(orgID); err != nil {
		return nil, err
	}
	ctx, cancel := context.WithTimeout(ctx, queryTimeout)
	defer cancel()
	return a.store.ListPayments(ctx, orgID, limit, after)
}

// Payment returns an organization's payment with its refunds.
func (a *App) Payment(ctx context.Context, orgID, id string) (payment.Payment, []payment.Refund, error) {
	if err := ids.OrgID(orgID); err != nil {
		return payment.Payment{}, nil, err
	}
	ctx, cancel := context.WithTimeout(ctx, queryTimeout)
	defer cancel()
	p, err := a.store.Payment(ctx, orgID, id)
	if err != nil {
		return payment.Payment{}, nil, err
	}
	refunds, err := a.store.Refunds(ctx, p.ID)
	if err != nil {
		return payment.Payment{}, nil, err
	}
	return p, refunds, nil
}

// Document returns the invoice of a payment (refundID empty) or the credit note of a refund.
func (a *App) Document(ctx context.Context, orgID, paymentID, refundID string) (payment.Document, error) {
	if err := ids.OrgID(orgID); err != nil {
		return payment.Document{}, err
	}
	return a.store.Document(ctx, orgID, paymentID, refundID)
}

// BillingProfile returns an organization's billing profile.
func (a *App) BillingProfile(ctx context.Context, orgID string) (payment.BillingProfile, error) {
	if err := ids.OrgID(orgID); err != nil {
		return payment.BillingProfile{}, err
	}
	return a.store.BillingProfile(ctx, orgID)
}

// UpdateBillingProfile validates and replaces an organization's billing profile.
func (a *App) UpdateBillingProfile(ctx context.Context, bp payment.BillingProfile) (payment.BillingProfile, error) {
	bp, err := ValidateBillingProfile(bp)
	if err != nil {
		return payment.BillingProfile{}, err
	}
	return a.store.PutBillingProfile(ctx, bp)
}

// ReviewItems lists review items newest first.
func (a *App) ReviewItems(ctx context.Context, includeResolved bool, limit int, after string) ([]payment.ReviewItem, error) {
	return a.store.ReviewItems(ctx, includeResolved, limit, after)
}

// ResolveReviewItem closes a review item.
func (a *App) ResolveReviewItem(ctx context.Context, id, by, resolution string) (payment.ReviewItem, error) {
	if err := ValidateReason("resolution", resolution); err != nil {
		return payment.ReviewItem{}, err
	}
	return a.store.ResolveReviewItem(ctx, id, by, resolution)
}
