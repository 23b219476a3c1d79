package grpcapi

import (
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/google/uuid"
	moneypb "google.golang.org/genproto/googleapis/type/money"
	"google.golang.org/grpc/codes"
	"google.golang.org/protobuf/proto"

	paymentsv1 "github.com/tallyhq/tally/pkg/gen/tally/payments/v1"
	"github.com/tallyhq/tally/pkg/server/servertest"
	"github.com/tallyhq/tally/services/payments/internal/stripeevent"
)

const fuzzWebhookSecret = "whsec_fuzz"

// checkWrite is what the payments service checks of a write request before it acts on it; the
// strings it returns are the accepted request's text, by field.
func checkWrite(t testing.TB, m proto.Message) (ids, texts map[string]string, err error) {
	switch req := m.(type) {
	case *paymentsv1.CreateCheckoutSessionRequest:
		_, err = checkoutInput(req)
		return map[string]string{"org_id": req.GetOrgId()}, nil, err
	case *paymentsv1.UpdateBillingProfileRequest:
		bp, err := billingProfileInput(req, "admin-1")
		return map[string]string{"org_id": bp.OrgID},
			map[string]string{"legal_name": bp.LegalName, "address": bp.Address, "tax_id": bp.TaxID, "email": bp.Email}, err
	case *paymentsv1.RefundPaymentRequest:
		in, err := refundInput(req, "ops-1")
		return map[string]string{"payment_id": in.PaymentID}, map[string]string{"reason": in.Reason}, err
	case *paymentsv1.ResolveReviewItemRequest:
		err = resolveInput(req)
		return map[string]string{"review_item_id": req.GetReviewItemId()}, map[string]string{"resolution": req.GetResolution()}, err
	case *paymentsv1.HandleStripeWebhookRequest:
		v, verr := stripeevent.NewVerifier(fuzzWebhookSecret, time.Minute)
		if verr != nil {
			t.Fatal(verr)
		}
		_, err = v.Verify(req.GetPayload(), req.GetSignature())
		return nil, nil, err
	}
	t.Fatalf("not a write request: %T", m)
	return nil, nil, nil
}

func writeRequests() []proto.Message {
	return []proto.Message{
		&paymentsv1.CreateCheckoutSessionRequest{}, &paymentsv1.UpdateBillingProfileRequest{}, &paymentsv1.RefundPaymentRequest{},
		&paymentsv1.ResolveReviewItemRequest{}, &paymentsv1.HandleStripeWebhookRequest{},
	}
}

func TestWriteRequestValidation(t *testing.T) {
	t.Parallel()
	id := uuid.NewString()
	profile := func(p *paymentsv1.BillingProfile) proto.Message {
		return &paymentsv1.UpdateBillingProfileRequest{OrgId: "acme", Profile: p}
	}
	tests := []struct {
		name    string
		req     proto.Message
		wantErr string
	}{
		{"checkout", &paymentsv1.CreateCheckoutSessionRequest{OrgId: "acme", Amount: &moneypb.Money{CurrencyCode: "USD", Units: 25}}, ""},
		{"checkout lower-case currency", &paymentsv1.CreateCheckoutSessionRequest{OrgId: "acme", Amount: &moneypb.Money{CurrencyCode: "usd", Units: 25}},
			`unknown currency "usd"`},
		{"checkout org with a space", &paymentsv1.CreateCheckoutSessionRequest{OrgId: "ac me", Amount: &moneypb.Money{Units: 25}}, "org_id must not contain spaces"},
		{"checkout org with a leading dash", &paymentsv1.CreateCheckoutSessionRequest{OrgId: "-acme", Amount: &moneypb.Money{Units: 25}}, "org_id must start with a letter or digit"},
		{"profile", profile(&paymentsv1.BillingProfile{LegalName: "Müller & Söhne GmbH", Address: "Hauptstraße 1\n10115 Berlin", TaxId: "DE 123 456 789", Email: "a@b.test"}), ""},
		{"profile with bidi name", profile(&paymentsv1.BillingProfile{LegalName: "Acme\u202Ecorp"}), "legal_name contains a bidirectional control character (U+202E)"},
		{"profile name on two lines", profile(&paymentsv1.BillingProfile{LegalName: "Acme\nEvil"}), "legal_name must be a single line"},
		{"profile with a NUL address", profile(&paymentsv1.BillingProfile{Address: "1 Road\x00"}), "address contains a NUL character"},
		{"profile with a display-name email", profile(&paymentsv1.BillingProfile{Email: "Ann <a@b.test>"}), `email "Ann <a@b.test>" is not an email address`},
		{"refund", &paymentsv1.RefundPaymentRequest{PaymentId: id, Reason: "customer request"}, ""},
		{"refund with a control character", &paymentsv1.RefundPaymentRequest{PaymentId: id, Reason: "x\x1b[2J"}, "reason contains a control character (U+001B)"},
		{"refund without reason", &paymentsv1.RefundPaymentRequest{PaymentId: id, Reason: "  "}, "reason is required"},
		{"refund of a long id", &paymentsv1.RefundPaymentRequest{PaymentId: strings.Repeat("9", 80), Reason: "r"}, `payment_id "` + strings.Repeat("9", 32) + `"… is not a UUID`},
		{"resolve", &paymentsv1.ResolveReviewItemRequest{ReviewItemId: id, Resolution: "refunded by hand"}, ""},
		{"resolve with RLM", &paymentsv1.ResolveReviewItemRequest{ReviewItemId: id, Resolution: "ok\u200F"}, "resolution contains a bidirectional control character (U+200F)"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			_, _, err := checkWrite(t, tt.req)
			servertest.RequireRefusal(t, Errors, err, tt.wantErr)
		})
	}
}

// FuzzWriteRequests decodes arbitrary bytes as each write RPC's request and checks it as the
// service does: a refusal is always InvalidArgument, and accepted text keeps the platform's
// rules. Webhook payloads are also tried correctly signed, so their decoding is fuzzed too.
func FuzzWriteRequests(f *testing.F) {
	id := uuid.NewString()
	event, err := stripeevent.EventPayload("evt_1", "customer.created", time.Now(), map[string]any{"id": "cus_1"})
	if err != nil {
		f.Fatal(err)
	}
	for i, m := range []proto.Message{
		&paymentsv1.CreateCheckoutSessionRequest{OrgId: "acme", Amount: &moneypb.Money{CurrencyCode: "USD", Units: 25}},
		&paymentsv1.UpdateBillingProfileRequest{OrgId: "acme", Profile: &paymentsv1.BillingProfile{LegalName: "A", Address: "B\nC", Email: "a@b.test"}},
		&paymentsv1.RefundPaymentRequest{PaymentId: id, Amount: &moneypb.Money{Units: 1}, Reason: "r"},
		&paymentsv1.ResolveReviewItemRequest{ReviewItemId: id, Resolution: "done"},
		&paymentsv1.HandleStripeWebhookRequest{Payload: event, Signature: "t=1,v1=00"},
	} {
		b, err := proto.Marshal(m)
		if err != nil {
			f.Fatal(err)
		}
		f.Add(uint8(i), b, false)
	}
	b, _ := proto.Marshal(&paymentsv1.HandleStripeWebhookRequest{Payload: event})
	f.Add(uint8(4), b, true)
	requests := writeRequests()
	f.Fuzz(func(t *testing.T, op uint8, wire []byte, sign bool) {
		m := proto.Clone(requests[int(op)%len(requests)])
		if proto.Unmarshal(wire, m) != nil {
			return // refused by the server's codec with InvalidArgument
		}
		if hook, ok := m.(*paymentsv1.HandleStripeWebhookRequest); ok && sign {
			hook.Signature = stripeevent.Sign(hook.GetPayload(), fuzzWebhookSecret, time.Now())
		}
		ids, texts, err := checkWrite(t, m)
		if err != nil {
			if code := Errors.Code(err); code != codes.InvalidArgument {
				t.Fatalf("%T refused with %v: %v", m, code, err)
			}
			return
		}
		servertest.RequireCleanText(t, fmt.Sprintf("%T", m), ids, texts)
	})
}
