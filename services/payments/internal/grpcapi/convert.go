package grpcapi

import (
	moneypb "google.golang.org/genproto/googleapis/type/money"

	paymentsv1 "github.com/tallyhq/tally/pkg/gen/tally/payments/v1"
	"github.com/tallyhq/tally/pkg/grpcmap"
	"github.com/tallyhq/tally/pkg/money"
	"github.com/tallyhq/tally/services/payments/internal/payment"
)

var statuses = map[payment.Status]paymentsv1.PaymentStatus{
	payment.StatusPending:   paymentsv1.PaymentStatus_PAYMENT_STATUS_PENDING,
	payment.StatusSucceeded: paymentsv1.PaymentStatus_PAYMENT_STATUS_SUCCEEDED,
	payment.StatusFailed:    paymentsv1.PaymentStatus_PAYMENT_STATUS_FAILED,
	payment.StatusExpired:   paymentsv1.PaymentStatus_PAYMENT_STATUS_EXPIRED,
	payment.StatusRefunded:  paymentsv1.PaymentStatus_PAYMENT_STATUS_REFUNDED,
	payment.StatusDisputed:  paymentsv1.PaymentStatus_PAYMENT_STATUS_DISPUTED,
}

var refundStatuses = map[payment.RefundStatus]paymentsv1.RefundStatus{
	payment.RefundPending:   paymentsv1.RefundStatus_REFUND_STATUS_PENDING,
	payment.RefundSucceeded: paymentsv1.RefundStatus_REFUND_STATUS_SUCCEEDED,
	payment.RefundFailed:    paymentsv1.RefundStatus_REFUND_STATUS_FAILED,
}

func paymentToProto(p payment.Payment) *paymentsv1.Payment {
	out := &paymentsv1.Payment{
		Id:                p.ID,
		OrgId:             p.OrgID,
		Amount:            p.Amount.Proto(),
		Status:            statuses[p.Status],
		Member:            &paymentsv1.Member{Id: p.Member.ID, Name: p.Member.Name, Email: p.Member.Email},
		InvoiceNumber:     p.InvoiceNumber,
		CheckoutSessionId: p.CheckoutSessionID,
		PaymentMethod:     p.PaymentMethod,
		CreatedAt:         grpcmap.Timestamp(p.CreatedAt),
		PaidAt:            grpcmap.Timestamp(p.PaidAt),
		Refunded:          money.ToProto(p.Refunded, p.Amount.Currency),
		UnderReview:       p.UnderReview,
		TestMode:          p.Mode == payment.ModeLocal,
		PaymentWallet:     p.PaymentWallet,
		ExpiresAt:         grpcmap.Timestamp(p.ExpiresAt),
		Automatic:         p.Automatic,
		FailureReason:     string(p.FailureReason),
	}
	for _, r := range p.Refunds {
		out.Refunds = append(out.Refunds, refundToProto(r))
	}
	return out
}

func refundToProto(r payment.Refund) *paymentsv1.Refund {
	return &paymentsv1.Refund{
		Id:                  r.ID,
		PaymentId:           r.PaymentID,
		Amount:              r.Amount.Proto(),
		Status:              refundStatuses[r.Status],
		Reason:              r.Reason,
		CreditsTakenBack:    money.ToProto(r.CreditsTakenBack, r.Amount.Currency),
		CreditsNotRecovered: money.ToProto(r.CreditsNotRecovered, r.Amount.Currency),
		CreditNoteNumber:    r.CreditNoteNumber,
		StripeRefundId:      r.StripeRefundID,
		CreatedAt:           grpcmap.Timestamp(r.CreatedAt),
		IdempotencyKey:      r.IdempotencyKey,
	}
}

func profileToProto(bp payment.BillingProfile) *paymentsv1.BillingProfile {
	return &paymentsv1.BillingProfile{
		LegalName: bp.LegalName, Address: bp.Address, TaxId: bp.TaxID, Email: bp.Email, UpdateTime: grpcmap.Timestamp(bp.UpdatedAt),
	}
}

func reviewToProto(r payment.ReviewItem) *paymentsv1.ReviewItem {
	return &paymentsv1.ReviewItem{
		Id: r.ID, PaymentId: r.PaymentID, OrgId: r.OrgID, Kind: r.Kind, Detail: r.Detail, StripeEventId: r.StripeEventID,
		CreatedAt: grpcmap.Timestamp(r.CreatedAt), ResolvedAt: grpcmap.Timestamp(r.ResolvedAt), ResolvedBy: r.ResolvedBy, Resolution: r.Resolution,
	}
}

func methodToProto(m payment.SavedMethod) *paymentsv1.SavedPaymentMethod {
	return &paymentsv1.SavedPaymentMethod{
		Brand: m.Brand, Last4: m.Last4, ExpMonth: int32(m.ExpMonth), ExpYear: int32(m.ExpYear),
		SavedBy:  &paymentsv1.Member{Id: m.SavedBy.ID, Name: m.SavedBy.Name, Email: m.SavedBy.Email},
		SaveTime: grpcmap.Timestamp(m.SavedAt), TestMode: m.Mode == payment.ModeLocal,
	}
}

// amountOrNil is n in currency, or nil when zero (an unset amount of the rule).
func amountOrNil(n money.Nanos, currency string) *moneypb.Money {
	if n == 0 {
		return nil
	}
	return money.ToProto(n, currency)
}

func ruleToProto(r payment.RechargeRule) *paymentsv1.AutoRechargeRule {
	return &paymentsv1.AutoRechargeRule{
		Enabled: r.Enabled, Threshold: amountOrNil(r.Threshold, r.Currency), Amount: amountOrNil(r.Amount, r.Currency),
		TargetBalance: amountOrNil(r.Target, r.Currency), MonthlyCap: amountOrNil(r.MonthlyCap, r.Currency),
		ConsecutiveFailures: int32(r.ConsecutiveFailures), DisabledReason: r.DisabledReason, DisableTime: grpcmap.Timestamp(r.DisabledAt),
		MonthSpent: money.ToProto(r.MonthSpent, r.Currency), InFlight: r.InFlight != "", UpdateTime: grpcmap.Timestamp(r.UpdatedAt),
	}
}
