package test

import (
	"testing"
	"time"

	"github.com/google/uuid"
	"github.com/stretchr/testify/require"
	"google.golang.org/grpc/codes"

	"github.com/tallyhq/tally/pkg/auth"
	paymentsv1 "github.com/tallyhq/tally/pkg/gen/tally/payments/v1"
	"github.com/tallyhq/tally/pkg/rpcclient"
	"github.com/tallyhq/tally/pkg/textcheck/textchecktest"
	"github.com/tallyhq/tally/services/ledger/ledgertest"
	"github.com/tallyhq/tally/services/payments/internal/stripeevent"
)

// TestAttack_BadBytes sends NUL, invalid UTF-8, bidi and control characters in every string field
// of every PaymentsService request, each found from the proto descriptors, to a real payments
// service: each is InvalidArgument naming the field, and no row is written.
func TestAttack_BadBytes(t *testing.T) {
	t.Parallel()
	e := start(t, options{})
	conn, err := rpcclient.Dial(e.addr, "")
	require.NoError(t, err)
	t.Cleanup(func() { _ = conn.Close() })
	member := memberToken(t, "acme")
	admin := ledgertest.Token(t, auth.Claims{Subject: "admin-acme", OrgID: "acme", Roles: []auth.Role{auth.RoleAdmin}})
	ops := ledgertest.OpsToken(t)
	event, err := stripeevent.EventPayload("", "customer.created", time.Now(), map[string]any{"id": "cus_1", "object": "customer"})
	require.NoError(t, err)
	unknown := uuid.NewString()
	textchecktest.Attack(t, textchecktest.Target{
		Service: paymentsv1.File_tally_payments_v1_payments_proto.Services().ByName("PaymentsService"),
		Conn:    conn,
		Rows:    textchecktest.RowCounts(e.dbURL, "payments"),
		Calls: map[string]textchecktest.Call{
			"CreateCheckoutSession": {Token: member, Request: &paymentsv1.CreateCheckoutSessionRequest{OrgId: "acme", Amount: usd(25 * unit)}},
			"HandleStripeWebhook": {Request: &paymentsv1.HandleStripeWebhookRequest{Payload: event,
				Signature: stripeevent.Sign(event, webhookSecret, time.Now())}},
			"GetCheckoutOptions": {Token: member, Request: &paymentsv1.GetCheckoutOptionsRequest{OrgId: "acme"}},
			"ListPayments":       {Token: member, Request: &paymentsv1.ListPaymentsRequest{OrgId: "acme", PageSize: 10}},
			"GetPayment":         {Token: member, Request: &paymentsv1.GetPaymentRequest{OrgId: "acme", PaymentId: unknown}, BaseCode: codes.NotFound},
			"GetInvoice":         {Token: member, Request: &paymentsv1.GetInvoiceRequest{OrgId: "acme", PaymentId: unknown}, BaseCode: codes.NotFound},
			"GetCreditNote":      {Token: member, Request: &paymentsv1.GetCreditNoteRequest{OrgId: "acme", PaymentId: unknown, RefundId: unknown}, BaseCode: codes.NotFound},
			"GetBillingProfile":  {Token: member, Request: &paymentsv1.GetBillingProfileRequest{OrgId: "acme"}},
			"UpdateBillingProfile": {Token: admin, Request: &paymentsv1.UpdateBillingProfileRequest{OrgId: "acme", Profile: &paymentsv1.BillingProfile{
				LegalName: "Acme GmbH", Address: "1 Road\nBerlin", TaxId: "DE123456789", Email: "billing@acme.test"}}},
			"RefundPayment": {Token: ops, Request: &paymentsv1.RefundPaymentRequest{PaymentId: unknown, Amount: usd(unit), Reason: "customer request", IdempotencyKey: "refund-1"},
				BaseCode: codes.NotFound},
			"CreatePaymentMethodSetup": {Token: admin, Request: &paymentsv1.CreatePaymentMethodSetupRequest{OrgId: "acme"}},
			"RemovePaymentMethod":      {Token: admin, Request: &paymentsv1.RemovePaymentMethodRequest{OrgId: "acme"}},
			"GetAutoRecharge":          {Token: member, Request: &paymentsv1.GetAutoRechargeRequest{OrgId: "acme"}},
			"UpdateAutoRecharge": {Token: admin, Request: &paymentsv1.UpdateAutoRechargeRequest{OrgId: "acme", Rule: &paymentsv1.AutoRechargeRule{
				Threshold: usd(10 * unit), Amount: usd(20 * unit), MonthlyCap: usd(100 * unit)}}},
			"ListReviewItems":   {Token: ops, Request: &paymentsv1.ListReviewItemsRequest{PageSize: 10}},
			"ResolveReviewItem": {Token: ops, Request: &paymentsv1.ResolveReviewItemRequest{ReviewItemId: unknown, Resolution: "checked"}, BaseCode: codes.NotFound},
		},
	})
}
