package chaos

import (
	"bytes"
	"context"
	"crypto/hmac"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"strconv"
	"time"
)

// Stripe's webhook conventions, as payments expects them (services/payments/internal/stripeevent).
const (
	eventCheckoutCompleted = "checkout.session.completed"
	metaPaymentID          = "tally_payment_id"
	metaOrgID              = "tally_org_id"
	stripeAPIVersion       = "2023-10-16"
)

// checkoutSession is the part of a Checkout Session a webhook carries.
type checkoutSession struct {
	ID                 string            `json:"id"`
	Object             string            `json:"object"`
	Status             string            `json:"status"`
	PaymentStatus      string            `json:"payment_status"`
	Mode               string            `json:"mode"`
	AmountTotal        int64             `json:"amount_total"`
	Currency           string            `json:"currency"`
	PaymentIntent      string            `json:"payment_intent"`
	PaymentMethodTypes []string          `json:"payment_method_types"`
	ClientReferenceID  string            `json:"client_reference_id"`
	Metadata           map[string]string `json:"metadata"`
	Created            int64             `json:"created"`
	Livemode           bool              `json:"livemode"`
}

// paidEvent builds the body of a checkout.session.completed event for a paid top-up.
func paidEvent(eventID string, t *topUp) ([]byte, error) {
	obj := checkoutSession{
		ID: t.sessionID, Object: "checkout.session", Status: "complete", PaymentStatus: "paid", Mode: "payment",
		AmountTotal: t.amountMinor, Currency: "usd", PaymentIntent: "pi_chaos_" + t.paymentID,
		PaymentMethodTypes: []string{"card"}, ClientReferenceID: t.org,
		Metadata: map[string]string{metaPaymentID: t.paymentID, metaOrgID: t.org},
		Created:  t.created.Unix(),
	}
	raw, err := json.Marshal(obj)
	if err != nil {
		return nil, fmt.Errorf("encoding the session: %w", err)
	}
	body, err := json.Marshal(map[string]any{
		"id": eventID, "object": "event", "type": eventCheckoutCompleted, "api_version": stripeAPIVersion,
		"created": time.Now().Unix(), "livemode": false, "pending_webhooks": 1,
		"data": map[string]json.RawMessage{"object": raw},
	})
	if err != nil {
		return nil, fmt.Errorf("encoding the event: %w", err)
	}
	return body, nil
}

// signPayload returns the Stripe-Signature header of payload: "t=<unix>,v1=<HMAC-SHA256 of
// "<unix>.<payload>" with the endpoint secret>".
func signPayload(payload []byte, secret string, at time.Time) string {
	ts := strconv.FormatInt(at.Unix(), 10)
	mac := hmac.New(sha256.New, []byte(secret))
	mac.Write([]byte(ts + "."))
	mac.Write(payload)
	return "t=" + ts + ",v1=" + hex.EncodeToString(mac.Sum(nil))
}

// webhookTimeout bounds one delivery, like Stripe's own timeout on webhook endpoints.
const webhookTimeout = 10 * time.Second

// deliverWebhook posts payload, freshly signed, to the gateway's webhook route as Stripe does and
// returns the HTTP status (0 with the error when there was no answer).
func (s *Stack) deliverWebhook(ctx context.Context, client *http.Client, payload []byte) (int, error) {
	ctx, cancel := context.WithTimeout(ctx, webhookTimeout)
	defer cancel()
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, s.GatewayURL()+"/v1/webhooks/stripe", bytes.NewReader(payload))
	if err != nil {
		return 0, fmt.Errorf("building the delivery: %w", err)
	}
	req.Header.Set("Content-Type", "application/json")
	req.Header.Set("Stripe-Signature", signPayload(payload, s.webhook, time.Now()))
	resp, err := client.Do(req)
	if err != nil {
		return 0, err
	}
	defer resp.Body.Close()
	_, _ = io.Copy(io.Discard, io.LimitReader(resp.Body, 64<<10))
	return resp.StatusCode, nil
}
