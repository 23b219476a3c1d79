package grpcapi

import (
	"fmt"

	moneypb "google.golang.org/genproto/googleapis/type/money"

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

// ruleInput reads an auto-recharge rule: every amount in one currency (empty: the organization's).
func ruleInput(req *paymentsv1.UpdateAutoRechargeRequest) (payment.RuleSettings, error) {
	if err := ids.OrgID(req.GetOrgId()); err != nil {
		return payment.RuleSettings{}, err
	}
	in := req.GetRule()
	if in == nil {
		return payment.RuleSettings{}, fmt.Errorf("%w: rule is required", payment.ErrInvalid)
	}
	out := payment.RuleSettings{Enabled: in.GetEnabled()}
	for _, f := range []struct {
		name string
		m    *moneypb.Money
		to   *money.Nanos
	}{{"threshold", in.GetThreshold(), &out.Threshold}, {"amount", in.GetAmount(), &out.Amount},
		{"target_balance", in.GetTargetBalance(), &out.Target}, {"monthly_cap", in.GetMonthlyCap(), &out.MonthlyCap}} {
		if f.m == nil {
			continue
		}
		m, err := money.FromProto(f.m)
		if err != nil {
			return payment.RuleSettings{}, fmt.Errorf("%w: %w", payment.ErrInvalid, fieldviolation.Wrap(f.name, err))
		}
		if m.Currency != "" {
			if out.Currency != "" && out.Currency != m.Currency {
				return payment.RuleSettings{}, fmt.Errorf("%w: %s: every amount of the rule must be in one currency", payment.ErrInvalid, f.name)
			}
			out.Currency = m.Currency
		}
		*f.to = m.Nanos
	}
	return out, nil
}
