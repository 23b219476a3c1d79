package main

import (
	"context"
	"strconv"

	"github.com/spf13/cobra"

	paymentsv1 "github.com/tallyhq/tally/pkg/gen/tally/payments/v1"
)

func (c *cli) payments() (paymentsv1.PaymentsServiceClient, error) {
	conn, err := c.conn("payments")
	if err != nil {
		return nil, err
	}
	return paymentsv1.NewPaymentsServiceClient(conn), nil
}

// pageFlags are the paging flags of a list.
type pageFlags struct {
	size  int32
	token string
}

func (p *pageFlags) register(cmd *cobra.Command, what string) {
	cmd.Flags().Int32Var(&p.size, "page-size", 0, what+" per page (default the service's)")
	cmd.Flags().StringVar(&p.token, "page-token", "", "the page to show (printed after the previous one)")
}

func (c *cli) paymentsCommand() *cobra.Command {
	var page pageFlags
	cmd := &cobra.Command{
		Use:   "payments ORG",
		Short: "List an organization's top-up payments (to find the one to refund)",
		Example: `  tallyctl payments acme
  tallyctl refund <payment id> --amount 10 --reason "customer request"`,
		Args: exactArgs("ORG"),
		RunE: c.runE(func(cmd *cobra.Command, args []string) error {
			return call(c, cmd, c.payments, func(ctx context.Context, p paymentsv1.PaymentsServiceClient) (*paymentsv1.ListPaymentsResponse, error) {
				return p.ListPayments(ctx, &paymentsv1.ListPaymentsRequest{OrgId: args[0], PageSize: page.size, PageToken: page.token})
			}, func(r *paymentsv1.ListPaymentsResponse) []*table { return []*table{paymentsTable(r.GetPayments())} })
		}),
	}
	page.register(cmd, "payments")
	return cmd
}

func paymentsTable(ps []*paymentsv1.Payment) *table {
	t := newTable("created", "status", "amount", "refunded", "invoice", "member", "under review", "id")
	for _, p := range ps {
		t.add(formatTime(p.GetCreatedAt()), enumName(p.GetStatus().String(), "PAYMENT_STATUS_"), formatMoney(p.GetAmount()),
			formatMoney(p.GetRefunded()), p.GetInvoiceNumber(), p.GetMember().GetEmail(), strconv.FormatBool(p.GetUnderReview()), p.GetId())
	}
	return t
}

func (c *cli) refundCommand() *cobra.Command {
	var amount, currency, reason, key string
	cmd := &cobra.Command{
		Use:   "refund PAYMENT_ID --reason REASON [--amount AMOUNT]",
		Short: "Refund a payment (all of what is not refunded yet, or --amount)",
		Long: `Refund a payment: the money goes back through Stripe, the refunded credits are taken back
from the organization (never more than it still has; the rest is shown as not recovered) and a
credit note is issued. Without --amount everything not refunded yet is refunded. The same
--idempotency-key with the same payment, amount and reason is the same refund (one Stripe refund,
one adjustment); a refund left pending (Stripe or the ledger unavailable) is carried on by a retry
with its key.`,
		Example: `  tallyctl refund 5b0c2a4e-... --amount 10 --reason "customer request, ticket 77"
  tallyctl refund 5b0c2a4e-... --reason "duplicate top-up" --idempotency-key ticket-78`,
		Args: exactArgs("PAYMENT_ID"),
		RunE: c.runE(func(cmd *cobra.Command, args []string) error {
			req := &paymentsv1.RefundPaymentRequest{PaymentId: args[0], Reason: reason}
			if amount != "" {
				m, err := parseAmount("amount", amount, currency)
				if err != nil {
					return err
				}
				req.Amount = m
			}
			if reason == "" {
				return usagef("--reason is required")
			}
			return call(c, cmd, c.payments, func(ctx context.Context, p paymentsv1.PaymentsServiceClient) (*paymentsv1.RefundPaymentResponse, error) {
				var err error
				if req.IdempotencyKey, err = c.idempotencyKey(key); err != nil {
					return nil, err
				}
				return p.RefundPayment(ctx, req)
			}, func(r *paymentsv1.RefundPaymentResponse) []*table {
				return []*table{refundsTable([]*paymentsv1.Refund{r.GetRefund()}), paymentsTable([]*paymentsv1.Payment{r.GetPayment()})}
			})
		}),
	}
	f := cmd.Flags()
	f.StringVar(&amount, "amount", "", "how much to refund, an exact decimal (default everything not refunded yet)")
	f.StringVar(&currency, "currency", "", "ISO 4217 code of --amount (default the payment's)")
	f.StringVar(&reason, "reason", "", "why (required; on the credit note)")
	f.StringVar(&key, "idempotency-key", "", "the refund's key: a retry with the same key is the same refund (default: a new key, printed on stderr)")
	return cmd
}

func refundsTable(rs []*paymentsv1.Refund) *table {
	t := newTable("created", "status", "amount", "credits taken back", "not recovered", "credit note", "reason", "idempotency key", "id")
	for _, r := range rs {
		t.add(formatTime(r.GetCreatedAt()), enumName(r.GetStatus().String(), "REFUND_STATUS_"), formatMoney(r.GetAmount()),
			formatMoney(r.GetCreditsTakenBack()), formatMoney(r.GetCreditsNotRecovered()), r.GetCreditNoteNumber(), r.GetReason(),
			r.GetIdempotencyKey(), r.GetId())
	}
	return t
}

func (c *cli) reviewsCommand() *cobra.Command {
	cmd := &cobra.Command{
		Use:     "reviews",
		Aliases: []string{"review"},
		Short:   "List and resolve payment review items",
		Long: `Payment review items are what payments will not decide alone: a paid amount that differs
from the payment's, money reported for an expired checkout, a credit the ledger refused, a
refund left incomplete, disputes and refunds made outside tally. Credits are never taken back
silently: look at each item and resolve it with what was done.`,
	}
	cmd.AddCommand(c.reviewsListCommand(), c.reviewsResolveCommand())
	return cmd
}

func (c *cli) reviewsListCommand() *cobra.Command {
	var (
		page pageFlags
		all  bool
	)
	cmd := &cobra.Command{
		Use:   "list",
		Short: "List open review items (--all: resolved ones too)",
		Example: `  tallyctl reviews list
  tallyctl reviews list --all -o json`,
		Args: exactArgs(),
		RunE: c.runE(func(cmd *cobra.Command, _ []string) error {
			return call(c, cmd, c.payments, func(ctx context.Context, p paymentsv1.PaymentsServiceClient) (*paymentsv1.ListReviewItemsResponse, error) {
				return p.ListReviewItems(ctx, &paymentsv1.ListReviewItemsRequest{PageSize: page.size, PageToken: page.token, IncludeResolved: all})
			}, func(r *paymentsv1.ListReviewItemsResponse) []*table { return []*table{reviewTable(r.GetItems())} })
		}),
	}
	page.register(cmd, "items")
	cmd.Flags().BoolVar(&all, "all", false, "include resolved items")
	return cmd
}

func reviewTable(items []*paymentsv1.ReviewItem) *table {
	t := newTable("created", "kind", "org", "payment", "detail", "resolved", "resolved by", "resolution", "id")
	for _, it := range items {
		t.add(formatTime(it.GetCreatedAt()), it.GetKind(), it.GetOrgId(), it.GetPaymentId(), it.GetDetail(),
			formatTime(it.GetResolvedAt()), it.GetResolvedBy(), it.GetResolution(), it.GetId())
	}
	return t
}

func (c *cli) reviewsResolveCommand() *cobra.Command {
	var resolution string
	cmd := &cobra.Command{
		Use:     "resolve ID --resolution TEXT",
		Short:   "Resolve a review item, saying what was done",
		Example: `  tallyctl reviews resolve 0d9c... --resolution "amount confirmed with Stripe; granted the difference"`,
		Args:    exactArgs("ID"),
		RunE: c.runE(func(cmd *cobra.Command, args []string) error {
			if resolution == "" {
				return usagef("--resolution is required")
			}
			return call(c, cmd, c.payments, func(ctx context.Context, p paymentsv1.PaymentsServiceClient) (*paymentsv1.ResolveReviewItemResponse, error) {
				return p.ResolveReviewItem(ctx, &paymentsv1.ResolveReviewItemRequest{ReviewItemId: args[0], Resolution: resolution})
			}, func(r *paymentsv1.ResolveReviewItemResponse) []*table {
				return []*table{reviewTable([]*paymentsv1.ReviewItem{r.GetItem()})}
			})
		}),
	}
	cmd.Flags().StringVar(&resolution, "resolution", "", "what was done (required; recorded with your token's subject)")
	return cmd
}
