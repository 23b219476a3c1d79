package test

import (
	"testing"

	"github.com/stretchr/testify/require"
	"google.golang.org/grpc/codes"

	"github.com/tallyhq/tally/pkg/auth"
	paymentsv1 "github.com/tallyhq/tally/pkg/gen/tally/payments/v1"
	"github.com/tallyhq/tally/pkg/money"
	"github.com/tallyhq/tally/pkg/server/servertest"
	"github.com/tallyhq/tally/services/ledger/ledgertest"
	"github.com/tallyhq/tally/services/payments/internal/app"
	"github.com/tallyhq/tally/services/payments/internal/grpcapi"
	"github.com/tallyhq/tally/services/payments/internal/payment"
)

func TestPolicyCoversEveryMethod(t *testing.T) {
	t.Parallel()
	policy := grpcapi.Policy()
	desc := paymentsv1.PaymentsService_ServiceDesc
	servertest.CheckPolicyCoversEveryMethod(t, desc, policy)
	for _, row := range policy.Table() {
		switch row.Method {
		case "/" + desc.ServiceName + "/HandleStripeWebhook":
			require.True(t, row.Public, "the webhook is authenticated by its signature")
		case "/" + desc.ServiceName + "/RefundPayment", "/" + desc.ServiceName + "/ListReviewItems", "/" + desc.ServiceName + "/ResolveReviewItem":
			require.Equal(t, []auth.Role{auth.RoleOps}, row.Roles)
			require.Empty(t, row.Services)
		default:
			require.False(t, row.Public, row.Method)
			require.True(t, row.OrgScoped, "%s must keep members in their organization", row.Method)
		}
	}
}

func TestMembersSeeOnlyTheirOrganization(t *testing.T) {
	t.Parallel()
	e := start(t, options{stripe: true})
	cs := e.checkout(t, "acme", 10*unit)
	e.mustDeliver(t, sessionEvent{typ: payment.EventCheckoutCompleted, paymentStatus: "paid", org: "acme", cs: cs, amountMinor: 1000}.payload(t),
		app.OutcomeProcessed)
	e.checkout(t, "globex", 20*unit)

	acme, globex := e.member(t, "acme", false), e.member(t, "globex", false)
	globexAdmin := e.member(t, "globex", true)
	noOrg := e.client(t, ledgertest.Token(t, auth.Claims{Subject: "drifter", Roles: []auth.Role{auth.RoleMember}}))
	anonymous := e.public

	list, err := globex.ListPayments(t.Context(), &paymentsv1.ListPaymentsRequest{OrgId: "globex"})
	require.NoError(t, err)
	require.Len(t, list.GetPayments(), 1)
	require.Equal(t, "globex", list.GetPayments()[0].GetOrgId())

	c := orgClients{acme: acme, globex: globex, globexAdmin: globexAdmin, noOrg: noOrg, anonymous: anonymous}
	for _, tc := range isolationCases(t, c, cs.GetPaymentId()) {
		t.Run(tc.name, func(t *testing.T) { requireCode(t, tc.call(), tc.code) })
	}

	// Members read their own invoices and billing profile; admins edit the profile.
	_, err = acme.GetInvoice(t.Context(), &paymentsv1.GetInvoiceRequest{OrgId: "acme", PaymentId: cs.GetPaymentId()})
	require.NoError(t, err)
	up, err := globexAdmin.UpdateBillingProfile(t.Context(), &paymentsv1.UpdateBillingProfileRequest{OrgId: "globex",
		Profile: &paymentsv1.BillingProfile{LegalName: " Globex Corp ", Email: "ap@globex.test"}})
	require.NoError(t, err)
	require.Equal(t, "Globex Corp", up.GetProfile().GetLegalName())
	got, err := globex.GetBillingProfile(t.Context(), &paymentsv1.GetBillingProfileRequest{OrgId: "globex"})
	require.NoError(t, err)
	require.Equal(t, "ap@globex.test", got.GetProfile().GetEmail())
	require.NotNil(t, got.GetProfile().GetUpdateTime())
}

// orgClients are the callers of TestMembersSeeOnlyTheirOrganization.
type orgClients struct {
	acme, globex, globexAdmin, noOrg, anonymous paymentsv1.PaymentsServiceClient
}

// accessCase is a call and the code it must answer.
type accessCase struct {
	name string
	call func() error
	code codes.Code
}

// isolationCases are the calls that cross an organization's boundary or lack the role, with
// paymentID a payment of acme.
func isolationCases(t *testing.T, c orgClients, paymentID string) []accessCase {
	return []accessCase{
		{"list another organization", func() error {
			_, err := c.globex.ListPayments(t.Context(), &paymentsv1.ListPaymentsRequest{OrgId: "acme"})
			return err
		}, codes.PermissionDenied},
		{"get another organization's payment", func() error {
			_, err := c.globex.GetPayment(t.Context(), &paymentsv1.GetPaymentRequest{OrgId: "acme", PaymentId: paymentID})
			return err
		}, codes.PermissionDenied},
		{"another organization's payment under one's own", func() error {
			_, err := c.globex.GetPayment(t.Context(), &paymentsv1.GetPaymentRequest{OrgId: "globex", PaymentId: paymentID})
			return err
		}, codes.NotFound},
		{"another organization's invoice", func() error {
			_, err := c.globex.GetInvoice(t.Context(), &paymentsv1.GetInvoiceRequest{OrgId: "acme", PaymentId: paymentID})
			return err
		}, codes.PermissionDenied},
		{"another organization's invoice under one's own", func() error {
			_, err := c.globex.GetInvoice(t.Context(), &paymentsv1.GetInvoiceRequest{OrgId: "globex", PaymentId: paymentID})
			return err
		}, codes.NotFound},
		{"check out for another organization", func() error {
			_, err := c.globex.CreateCheckoutSession(t.Context(), &paymentsv1.CreateCheckoutSessionRequest{OrgId: "acme", Amount: usd(10 * unit)})
			return err
		}, codes.PermissionDenied},
		{"another organization's billing profile", func() error {
			_, err := c.globexAdmin.UpdateBillingProfile(t.Context(), &paymentsv1.UpdateBillingProfileRequest{OrgId: "acme", Profile: &paymentsv1.BillingProfile{}})
			return err
		}, codes.PermissionDenied},
		{"members do not edit the billing profile", func() error {
			_, err := c.acme.UpdateBillingProfile(t.Context(), &paymentsv1.UpdateBillingProfileRequest{OrgId: "acme", Profile: &paymentsv1.BillingProfile{LegalName: "x"}})
			return err
		}, codes.PermissionDenied},
		{"members do not list review items", func() error {
			_, err := c.acme.ListReviewItems(t.Context(), &paymentsv1.ListReviewItemsRequest{})
			return err
		}, codes.PermissionDenied},
		{"a token without organization", func() error {
			_, err := c.noOrg.ListPayments(t.Context(), &paymentsv1.ListPaymentsRequest{OrgId: "acme"})
			return err
		}, codes.PermissionDenied},
		{"no token", func() error {
			_, err := c.anonymous.ListPayments(t.Context(), &paymentsv1.ListPaymentsRequest{OrgId: "acme"})
			return err
		}, codes.Unauthenticated},
		{"bad payment id", func() error {
			_, err := c.acme.GetPayment(t.Context(), &paymentsv1.GetPaymentRequest{OrgId: "acme", PaymentId: "nope"})
			return err
		}, codes.InvalidArgument},
		{"bad page token", func() error {
			_, err := c.acme.ListPayments(t.Context(), &paymentsv1.ListPaymentsRequest{OrgId: "acme", PageToken: "nope"})
			return err
		}, codes.InvalidArgument},
		{"invalid billing email", func() error {
			_, err := c.globexAdmin.UpdateBillingProfile(t.Context(), &paymentsv1.UpdateBillingProfileRequest{OrgId: "globex", Profile: &paymentsv1.BillingProfile{Email: "not an email"}})
			return err
		}, codes.InvalidArgument},
	}
}

func TestListPaymentsPages(t *testing.T) {
	t.Parallel()
	e := start(t, options{})
	var ids []string
	for i := range 5 {
		ids = append(ids, e.checkout(t, "acme", unit*money.Nanos(5+i)).GetPaymentId())
	}
	m := e.member(t, "acme", false)
	var got []string
	tok := ""
	for {
		page, err := m.ListPayments(t.Context(), &paymentsv1.ListPaymentsRequest{OrgId: "acme", PageSize: 2, PageToken: tok})
		require.NoError(t, err)
		require.LessOrEqual(t, len(page.GetPayments()), 2)
		for _, p := range page.GetPayments() {
			got = append(got, p.GetId())
		}
		if tok = page.GetNextPageToken(); tok == "" {
			break
		}
	}
	require.Len(t, got, 5)
	for i := range ids {
		require.Equal(t, ids[len(ids)-1-i], got[i], "newest first")
	}
}
