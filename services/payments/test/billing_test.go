package test

import (
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	paymentsv1 "github.com/tallyhq/tally/pkg/gen/tally/payments/v1"
)

// TestListPaymentsCarriesTheBillingPage lists what the console's Billing page shows, page by
// page: each payment with its member, amounts, status, dates, invoice number and its refunds with
// their credit note numbers; an abandoned checkout shows as expired.
func TestListPaymentsCarriesTheBillingPage(t *testing.T) {
	t.Parallel()
	e := start(t, options{})
	paid := e.checkout(t, "acme", 25*unit)
	payWith(t, paid, "Google Pay")
	refund, err := e.ops(t).RefundPayment(t.Context(), &paymentsv1.RefundPaymentRequest{PaymentId: paid.GetPaymentId(), Amount: usd(5 * unit),
		Reason: "customer request", IdempotencyKey: "billing-refund-1"})
	require.NoError(t, err)
	abandoned := e.checkout(t, "acme", 7*unit)
	e.expireNow(t, abandoned.GetPaymentId())
	_, err = e.svc.SweepExpired(t.Context())
	require.NoError(t, err)
	pending := e.checkout(t, "acme", 9*unit)

	m := e.member(t, "acme", false)
	first, err := m.ListPayments(t.Context(), &paymentsv1.ListPaymentsRequest{OrgId: "acme", PageSize: 2})
	require.NoError(t, err)
	require.Len(t, first.GetPayments(), 2)
	require.NotEmpty(t, first.GetNextPageToken())
	second, err := m.ListPayments(t.Context(), &paymentsv1.ListPaymentsRequest{OrgId: "acme", PageSize: 2, PageToken: first.GetNextPageToken()})
	require.NoError(t, err)
	require.Len(t, second.GetPayments(), 1)
	require.Empty(t, second.GetNextPageToken())

	list := append(first.GetPayments(), second.GetPayments()...)
	require.Equal(t, []string{pending.GetPaymentId(), abandoned.GetPaymentId(), paid.GetPaymentId()},
		[]string{list[0].GetId(), list[1].GetId(), list[2].GetId()}, "newest first")
	require.Equal(t, paymentsv1.PaymentStatus_PAYMENT_STATUS_PENDING, list[0].GetStatus())
	require.Equal(t, paymentsv1.PaymentStatus_PAYMENT_STATUS_EXPIRED, list[1].GetStatus())
	require.Nil(t, list[1].GetPaidAt())
	require.Empty(t, list[1].GetInvoiceNumber())

	p := list[2]
	require.Equal(t, paymentsv1.PaymentStatus_PAYMENT_STATUS_SUCCEEDED, p.GetStatus())
	require.Equal(t, &paymentsv1.Member{Id: "user-acme", Name: "Ann acme", Email: "ann@acme.test"}, p.GetMember())
	require.Equal(t, 25*unit, nanos(t, p.GetAmount()))
	require.Equal(t, 5*unit, nanos(t, p.GetRefunded()))
	require.Equal(t, "INV-"+year()+"-000001", p.GetInvoiceNumber())
	require.Equal(t, "card", p.GetPaymentMethod())
	require.Equal(t, "google_pay", p.GetPaymentWallet())
	require.WithinDuration(t, time.Now(), p.GetCreatedAt().AsTime(), time.Minute)
	require.WithinDuration(t, time.Now(), p.GetPaidAt().AsTime(), time.Minute)
	require.NotNil(t, p.GetExpiresAt())
	require.Len(t, p.GetRefunds(), 1)
	r := p.GetRefunds()[0]
	require.Equal(t, refund.GetRefund().GetId(), r.GetId())
	require.Equal(t, paymentsv1.RefundStatus_REFUND_STATUS_SUCCEEDED, r.GetStatus())
	require.Equal(t, 5*unit, nanos(t, r.GetAmount()))
	require.Equal(t, "CN-"+year()+"-000001", r.GetCreditNoteNumber())

	// GetPayment carries the same refunds on the payment.
	got, err := m.GetPayment(t.Context(), &paymentsv1.GetPaymentRequest{OrgId: "acme", PaymentId: paid.GetPaymentId()})
	require.NoError(t, err)
	require.Len(t, got.GetPayment().GetRefunds(), 1)
	require.Equal(t, "CN-"+year()+"-000001", got.GetPayment().GetRefunds()[0].GetCreditNoteNumber())
}
