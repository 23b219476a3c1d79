// Package grpcapi serves tally.payments.v1.PaymentsService: it maps protobuf to the payments
// domain, domain errors to gRPC statuses (in errors.go, the one place that does) and holds the
// service's authorization policy.
package grpcapi

import (
	"context"
	"errors"
	"fmt"
	"log/slog"

	"google.golang.org/genproto/googleapis/api/httpbody"
	"google.golang.org/grpc"
	"google.golang.org/grpc/metadata"

	"github.com/tallyhq/tally/pkg/auth"
	paymentsv1 "github.com/tallyhq/tally/pkg/gen/tally/payments/v1"
	"github.com/tallyhq/tally/pkg/grpcmap"
	"github.com/tallyhq/tally/pkg/ids"
	"github.com/tallyhq/tally/services/payments/internal/app"
	"github.com/tallyhq/tally/services/payments/internal/payment"
)

// Server implements PaymentsServiceServer.
type Server struct {
	paymentsv1.UnimplementedPaymentsServiceServer
	app    *app.App
	logger *slog.Logger
}

var _ paymentsv1.PaymentsServiceServer = (*Server)(nil)

// New returns a Server over a.
func New(a *app.App, logger *slog.Logger) (*Server, error) {
	if a == nil || logger == nil {
		return nil, errors.New("grpcapi: app and logger are required")
	}
	return &Server{app: a, logger: logger}, nil
}

func claims(ctx context.Context) auth.Claims {
	c, _ := auth.FromContext(ctx)
	return c
}

// maxPageSize is the largest page of a list.
const maxPageSize = 200

// page reads one page of a list with read, which returns up to limit rows after the row whose id is
// after ("" from the start), and returns the rows and the next page's token (the last row's id).
func page[T any](ctx context.Context, req grpcmap.PageRequest, read func(ctx context.Context, limit int, after string) ([]T, error), id func(T) string) ([]T, string, error) {
	size, err := grpcmap.PageSize(req.GetPageSize(), maxPageSize, payment.ErrInvalid)
	if err != nil {
		return nil, "", err
	}
	after, err := pageToken(req.GetPageToken())
	if err != nil {
		return nil, "", err
	}
	rows, err := read(ctx, size+1, after)
	if err != nil {
		return nil, "", err
	}
	rows, next := grpcmap.Page(rows, size, id)
	return rows, next, nil
}

// pageToken reads a page_token: the id of the last row of the page before ("" is the first page).
func pageToken(tok string) (string, error) {
	if tok == "" {
		return "", nil
	}
	u, err := ids.UUID("page_token", tok)
	if err != nil {
		return "", fmt.Errorf("%w: invalid page_token", payment.ErrInvalid)
	}
	return u, nil
}

// CreateCheckoutSession implements PaymentsServiceServer.
func (s *Server) CreateCheckoutSession(ctx context.Context, req *paymentsv1.CreateCheckoutSessionRequest) (*paymentsv1.CreateCheckoutSessionResponse, error) {
	amount, err := checkoutInput(req)
	if err != nil {
		return nil, err
	}
	c := claims(ctx)
	p, err := s.app.CreateCheckout(ctx, req.GetOrgId(), payment.Member{ID: c.Subject, Name: c.Name, Email: c.Email}, amount)
	if err != nil {
		return nil, err
	}
	return &paymentsv1.CreateCheckoutSessionResponse{Url: p.CheckoutURL, SessionId: p.CheckoutSessionID, PaymentId: p.ID}, nil
}

// GetCheckoutOptions implements PaymentsServiceServer.
func (s *Server) GetCheckoutOptions(ctx context.Context, req *paymentsv1.GetCheckoutOptionsRequest) (*paymentsv1.GetCheckoutOptionsResponse, error) {
	o, err := s.app.CheckoutOptions(ctx, req.GetOrgId())
	if err != nil {
		return nil, err
	}
	resp := &paymentsv1.GetCheckoutOptionsResponse{MinAmount: o.Min.Proto(), MaxAmount: o.Max.Proto(), CurrencyCode: o.Currency,
		ValidityMonths: int32(o.ValidityMonths)}
	for _, p := range o.Presets {
		resp.Presets = append(resp.Presets, p.Proto())
	}
	return resp, nil
}

// HandleStripeWebhook implements PaymentsServiceServer.
func (s *Server) HandleStripeWebhook(ctx context.Context, req *paymentsv1.HandleStripeWebhookRequest) (*paymentsv1.HandleStripeWebhookResponse, error) {
	ev, outcome, err := s.app.HandleWebhook(ctx, req.GetPayload(), req.GetSignature())
	if err != nil {
		return nil, err
	}
	return &paymentsv1.HandleStripeWebhookResponse{EventId: ev.ID, Outcome: outcome}, nil
}

// ListPayments implements PaymentsServiceServer.
func (s *Server) ListPayments(ctx context.Context, req *paymentsv1.ListPaymentsRequest) (*paymentsv1.ListPaymentsResponse, error) {
	ps, next, err := page(ctx, req, func(ctx context.Context, limit int, after string) ([]payment.Payment, error) {
		return s.app.ListPayments(ctx, req.GetOrgId(), limit, after)
	}, func(p payment.Payment) string { return p.ID })
	if err != nil {
		return nil, err
	}
	return &paymentsv1.ListPaymentsResponse{Payments: grpcmap.Map(ps, paymentToProto), NextPageToken: next}, nil
}

// GetPayment implements PaymentsServiceServer.
func (s *Server) GetPayment(ctx context.Context, req *paymentsv1.GetPaymentRequest) (*paymentsv1.GetPaymentResponse, error) {
	if _, err := ids.UUID("payment_id", req.GetPaymentId()); err != nil {
		return nil, err
	}
	p, refunds, err := s.app.Payment(ctx, req.GetOrgId(), req.GetPaymentId())
	if err != nil {
		return nil, err
	}
	p.Refunds = refunds
	resp := &paymentsv1.GetPaymentResponse{Payment: paymentToProto(p)}
	for _, r := range refunds {
		resp.Refunds = append(resp.Refunds, refundToProto(r))
	}
	return resp, nil
}

// GetInvoice implements PaymentsServiceServer.
func (s *Server) GetInvoice(ctx context.Context, req *paymentsv1.GetInvoiceRequest) (*httpbody.HttpBody, error) {
	return s.document(ctx, req.GetOrgId(), req.GetPaymentId(), "")
}

// GetCreditNote implements PaymentsServiceServer.
func (s *Server) GetCreditNote(ctx context.Context, req *paymentsv1.GetCreditNoteRequest) (*httpbody.HttpBody, error) {
	if _, err := ids.UUID("refund_id", req.GetRefundId()); err != nil {
		return nil, err
	}
	return s.document(ctx, req.GetOrgId(), req.GetPaymentId(), req.GetRefundId())
}

func (s *Server) document(ctx context.Context, orgID, paymentID, refundID string) (*httpbody.HttpBody, error) {
	if _, err := ids.UUID("payment_id", paymentID); err != nil {
		return nil, err
	}
	d, err := s.app.Document(ctx, orgID, paymentID, refundID)
	if err != nil {
		return nil, err
	}
	// The gateway names the download after the document's number (Content-Disposition).
	if err := grpc.SetHeader(ctx, metadata.Pairs(DocumentNumberHeader, d.Number)); err != nil {
		s.logger.WarnContext(ctx, "document number header not set", "err", err)
	}
	return &httpbody.HttpBody{ContentType: "application/pdf", Data: d.PDF}, nil
}

// DocumentNumberHeader is the response header metadata carrying the number of an invoice or a
// credit note returned by GetInvoice or GetCreditNote.
const DocumentNumberHeader = "x-tally-document-number"

// GetBillingProfile implements PaymentsServiceServer.
func (s *Server) GetBillingProfile(ctx context.Context, req *paymentsv1.GetBillingProfileRequest) (*paymentsv1.GetBillingProfileResponse, error) {
	bp, err := s.app.BillingProfile(ctx, req.GetOrgId())
	if err != nil {
		return nil, err
	}
	return &paymentsv1.GetBillingProfileResponse{Profile: profileToProto(bp)}, nil
}

// UpdateBillingProfile implements PaymentsServiceServer.
func (s *Server) UpdateBillingProfile(ctx context.Context, req *paymentsv1.UpdateBillingProfileRequest) (*paymentsv1.UpdateBillingProfileResponse, error) {
	return grpcmap.Unary(ctx, req, grpcmap.Actor(billingProfileInput), s.app.UpdateBillingProfile,
		func(bp payment.BillingProfile) *paymentsv1.UpdateBillingProfileResponse {
			return &paymentsv1.UpdateBillingProfileResponse{Profile: profileToProto(bp)}
		})
}

// RefundPayment implements PaymentsServiceServer.
func (s *Server) RefundPayment(ctx context.Context, req *paymentsv1.RefundPaymentRequest) (*paymentsv1.RefundPaymentResponse, error) {
	return grpcmap.Unary(ctx, req, grpcmap.Actor(refundInput), s.app.Refund, func(res app.RefundResult) *paymentsv1.RefundPaymentResponse {
		return &paymentsv1.RefundPaymentResponse{Refund: refundToProto(res.Refund), Payment: paymentToProto(res.Payment),
			Replayed: res.Replayed}
	})
}

// ListReviewItems implements PaymentsServiceServer.
func (s *Server) ListReviewItems(ctx context.Context, req *paymentsv1.ListReviewItemsRequest) (*paymentsv1.ListReviewItemsResponse, error) {
	items, next, err := page(ctx, req, func(ctx context.Context, limit int, after string) ([]payment.ReviewItem, error) {
		return s.app.ReviewItems(ctx, req.GetIncludeResolved(), limit, after)
	}, func(it payment.ReviewItem) string { return it.ID })
	if err != nil {
		return nil, err
	}
	return &paymentsv1.ListReviewItemsResponse{Items: grpcmap.Map(items, reviewToProto), NextPageToken: next}, nil
}

// ResolveReviewItem implements PaymentsServiceServer.
func (s *Server) ResolveReviewItem(ctx context.Context, req *paymentsv1.ResolveReviewItemRequest) (*paymentsv1.ResolveReviewItemResponse, error) {
	if err := resolveInput(req); err != nil {
		return nil, err
	}
	it, err := s.app.ResolveReviewItem(ctx, req.GetReviewItemId(), claims(ctx).Subject, req.GetResolution())
	if err != nil {
		return nil, err
	}
	return &paymentsv1.ResolveReviewItemResponse{Item: reviewToProto(it)}, nil
}

func member(ctx context.Context) payment.Member {
	c := claims(ctx)
	return payment.Member{ID: c.Subject, Name: c.Name, Email: c.Email}
}

// CreatePaymentMethodSetup implements PaymentsServiceServer.
func (s *Server) CreatePaymentMethodSetup(ctx context.Context, req *paymentsv1.CreatePaymentMethodSetupRequest) (*paymentsv1.CreatePaymentMethodSetupResponse, error) {
	cs, err := s.app.CreatePaymentMethodSetup(ctx, req.GetOrgId(), member(ctx))
	if err != nil {
		return nil, err
	}
	return &paymentsv1.CreatePaymentMethodSetupResponse{Url: cs.URL, SessionId: cs.ID}, nil
}

// RemovePaymentMethod implements PaymentsServiceServer.
func (s *Server) RemovePaymentMethod(ctx context.Context, req *paymentsv1.RemovePaymentMethodRequest) (*paymentsv1.RemovePaymentMethodResponse, error) {
	if err := s.app.RemovePaymentMethod(ctx, req.GetOrgId()); err != nil {
		return nil, err
	}
	return &paymentsv1.RemovePaymentMethodResponse{}, nil
}

// GetAutoRecharge implements PaymentsServiceServer.
func (s *Server) GetAutoRecharge(ctx context.Context, req *paymentsv1.GetAutoRechargeRequest) (*paymentsv1.GetAutoRechargeResponse, error) {
	ar, err := s.app.GetAutoRecharge(ctx, req.GetOrgId())
	if err != nil {
		return nil, err
	}
	resp := &paymentsv1.GetAutoRechargeResponse{Rule: ruleToProto(ar.Rule)}
	if ar.Method != nil {
		resp.PaymentMethod = methodToProto(*ar.Method)
	}
	return resp, nil
}

// UpdateAutoRecharge implements PaymentsServiceServer.
func (s *Server) UpdateAutoRecharge(ctx context.Context, req *paymentsv1.UpdateAutoRechargeRequest) (*paymentsv1.UpdateAutoRechargeResponse, error) {
	in, err := ruleInput(req)
	if err != nil {
		return nil, err
	}
	r, err := s.app.UpdateAutoRecharge(ctx, req.GetOrgId(), member(ctx), in)
	if err != nil {
		return nil, err
	}
	return &paymentsv1.UpdateAutoRechargeResponse{Rule: ruleToProto(r)}, nil
}
