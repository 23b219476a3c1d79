package grpcapi

import (
	"fmt"

	"github.com/tallyhq/tally/pkg/fieldviolation"
	paymentsv1 "github.com/tallyhq/tally/pkg/gen/tally/payments/v1"
	"github.com/tallyhq/tally/pkg/ids"
	"github.com/tallyhq/tally/pkg/money"
	"github.com/tallyhq/tally/services/payments/internal/app"
	"github.com/tallyhq/tally/services/payments/internal/payment"
)

// The write RPCs' requests checked as far as they can be from the request alone, with
// payment.ErrInvalid (InvalidArgument); the app checks the rest against the organization.

func checkoutInput(req *paymentsv1.CreateCheckoutSessionRequest) (money.Money, error) {
	if err := ids.OrgID(req.GetOrgId()); err != nil {
		return money.Money{}, err
	}
	amount, err := money.FromProto(req.GetAmount())
	if err != nil {
		return money.Money{}, fmt.Errorf("%w: %w", payment.ErrInvalid, fieldviolation.Wrap("amount", err))
	}
	return amount, nil
}

func billingProfileInput(req *paymentsv1.UpdateBillingProfileRequest, by string) (payment.BillingProfile, error) {
	in := req.GetProfile()
	if in == nil {
		return payment.BillingProfile{}, fmt.Errorf("%w: profile is required", payment.ErrInvalid)
	}
	return app.ValidateBillingProfile(payment.BillingProfile{
		OrgID: req.GetOrgId(), LegalName: in.GetLegalName(), Address: in.GetAddress(), TaxID: in.GetTaxId(), Email: in.GetEmail(),
		UpdatedBy: by,
	})
}

func refundInput(req *paymentsv1.RefundPaymentRequest, by string) (app.RefundInput, error) {
	if _, err := ids.UUID("payment_id", req.GetPaymentId()); err != nil {
		return app.RefundInput{}, err
	}
	var amount money.Money
	if req.GetAmount() != nil {
		a, err := money.FromProto(req.GetAmount())
		if err != nil {
			return app.RefundInput{}, fmt.Errorf("%w: %w", payment.ErrInvalid, fieldviolation.Wrap("amount", err))
		}
		if a.Nanos <= 0 {
			return app.RefundInput{}, fmt.Errorf("%w: amount must be positive (leave it empty to refund everything)", payment.ErrInvalid)
		}
		amount = a
	}
	if err := app.ValidateReason("reason", req.GetReason()); err != nil {
		return app.RefundInput{}, err
	}
	return app.RefundInput{PaymentID: req.GetPaymentId(), Amount: amount, Reason: req.GetReason(), RequestedBy: by,
		IdempotencyKey: req.GetIdempotencyKey()}, nil
}

func resolveInput(req *paymentsv1.ResolveReviewItemRequest) error {
	if _, err := ids.UUID("review_item_id", req.GetReviewItemId()); err != nil {
		return err
	}
	return app.ValidateReason("resolution", req.GetResolution())
}
