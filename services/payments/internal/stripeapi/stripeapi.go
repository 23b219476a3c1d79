// Package stripeapi is the Stripe Checkout processor: it creates Checkout Sessions, issues refunds
// and lists recent sessions for reconciliation through stripe-go's client.API (never the global
// stripe.Key), against Stripe or, in tests, stripe-mock.
package stripeapi

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net/http"
	"strings"
	"time"

	"github.com/stripe/stripe-go/v76"
	"github.com/stripe/stripe-go/v76/client"

	"github.com/tallyhq/tally/services/payments/internal/app"
	"github.com/tallyhq/tally/services/payments/internal/payment"
	"github.com/tallyhq/tally/services/payments/internal/stripeevent"
)

// maxListed bounds one reconciliation listing.
const maxListed = 10_000

// Config configures a Processor.
type Config struct {
	SecretKey string
	// APIURL overrides Stripe's API base URL (stripe-mock in tests); empty uses Stripe's.
	APIURL     string
	SuccessURL string
	CancelURL  string
	Logger     *slog.Logger
}

// Processor runs checkouts through Stripe.
type Processor struct {
	api    *client.API
	cfg    Config
	logger *slog.Logger
}

var _ app.Processor = (*Processor)(nil)

// New returns a Processor.
func New(cfg Config) (*Processor, error) {
	if cfg.SecretKey == "" || cfg.SuccessURL == "" || cfg.CancelURL == "" || cfg.Logger == nil {
		return nil, errors.New("stripeapi: secret key, success and cancel URLs and logger are required")
	}
	bc := &stripe.BackendConfig{
		HTTPClient:        &http.Client{Timeout: 30 * time.Second},
		LeveledLogger:     leveledLogger{cfg.Logger},
		MaxNetworkRetries: stripe.Int64(2),
		EnableTelemetry:   stripe.Bool(false),
	}
	if cfg.APIURL != "" {
		bc.URL = stripe.String(cfg.APIURL)
	}
	backends := &stripe.Backends{
		API:     stripe.GetBackendWithConfig(stripe.APIBackend, bc),
		Connect: stripe.GetBackendWithConfig(stripe.ConnectBackend, bc),
		Uploads: stripe.GetBackendWithConfig(stripe.UploadsBackend, bc),
	}
	return &Processor{api: client.New(cfg.SecretKey, backends), cfg: cfg, logger: cfg.Logger}, nil
}

// Mode implements app.Processor.
func (p *Processor) Mode() payment.Mode { return payment.ModeStripe }

// CreateSession implements app.Processor: mode payment, one "Credits" line item in the
// organization's currency, card payments (Google Pay and Apple Pay show as card wallets).
func (p *Processor) CreateSession(ctx context.Context, req app.SessionRequest) (app.CreatedSession, error) {
	meta := map[string]string{
		payment.MetaPaymentID: req.PaymentID,
		payment.MetaOrgID:     req.OrgID,
		payment.MetaMemberID:  req.Member.ID,
	}
	params := &stripe.CheckoutSessionParams{
		Mode:               stripe.String(string(stripe.CheckoutSessionModePayment)),
		PaymentMethodTypes: stripe.StringSlice([]string{"card"}),
		LineItems: []*stripe.CheckoutSessionLineItemParams{{
			Quantity: stripe.Int64(1),
			PriceData: &stripe.CheckoutSessionLineItemPriceDataParams{
				Currency:   stripe.String(strings.ToLower(req.Currency)),
				UnitAmount: stripe.Int64(req.AmountMinor),
				ProductData: &stripe.CheckoutSessionLineItemPriceDataProductDataParams{
					Name:        stripe.String("Credits"),
					Description: stripe.String("Prepaid credits for organization " + req.OrgID),
				},
			},
		}},
		ClientReferenceID: stripe.String(req.OrgID),
		SuccessURL:        stripe.String(p.cfg.SuccessURL),
		CancelURL:         stripe.String(p.cfg.CancelURL),
		PaymentIntentData: &stripe.CheckoutSessionPaymentIntentDataParams{
			Description: stripe.String("tally credits for " + req.OrgID),
			Metadata:    meta,
		},
	}
	params.Metadata = meta
	if req.Member.Email != "" {
		params.CustomerEmail = stripe.String(req.Member.Email)
	}
	params.Context = ctx
	params.SetIdempotencyKey("checkout:" + req.PaymentID)
	cs, err := p.api.CheckoutSessions.New(params)
	if err != nil {
		return app.CreatedSession{}, classify("creating checkout session", err)
	}
	out := app.CreatedSession{ID: cs.ID, URL: cs.URL}
	if cs.ExpiresAt > 0 {
		out.ExpiresAt = time.Unix(cs.ExpiresAt, 0).UTC()
	}
	return out, nil
}

// Refund implements app.Processor. The refund id is the idempotency key, so a retried call
// refunds once.
func (p *Processor) Refund(ctx context.Context, req app.RefundRequest) (string, error) {
	intent := req.PaymentIntentID
	if intent == "" {
		gp := &stripe.CheckoutSessionParams{}
		gp.Context = ctx
		cs, err := p.api.CheckoutSessions.Get(req.SessionID, gp)
		if err != nil {
			return "", classify("reading checkout session", err)
		}
		if cs.PaymentIntent == nil || cs.PaymentIntent.ID == "" {
			return "", fmt.Errorf("%w: checkout session %s has no payment intent", payment.ErrRejected, req.SessionID)
		}
		intent = cs.PaymentIntent.ID
	}
	params := &stripe.RefundParams{
		PaymentIntent: stripe.String(intent),
		Amount:        stripe.Int64(req.AmountMinor),
		Reason:        stripe.String(string(stripe.RefundReasonRequestedByCustomer)),
	}
	params.Context = ctx
	params.AddMetadata("tally_refund_id", req.RefundID)
	params.AddMetadata("tally_reason", truncate(req.Reason, 450))
	params.SetIdempotencyKey("refund:" + req.RefundID)
	r, err := p.api.Refunds.New(params)
	if err != nil {
		return "", classify("creating refund", err)
	}
	return r.ID, nil
}

// RecentSessions implements app.Processor: the Checkout Sessions created since since.
func (p *Processor) RecentSessions(ctx context.Context, since time.Time) ([]payment.Session, error) {
	params := &stripe.CheckoutSessionListParams{CreatedRange: &stripe.RangeQueryParams{GreaterThanOrEqual: since.Unix()}}
	params.Limit = stripe.Int64(100)
	params.Context = ctx
	it := p.api.CheckoutSessions.List(params)
	var out []payment.Session
	for it.Next() {
		out = append(out, stripeevent.SessionFromStripe(it.CheckoutSession()))
		if len(out) >= maxListed {
			p.logger.Warn("reconciliation listing truncated", "sessions", len(out))
			break
		}
	}
	if err := it.Err(); err != nil {
		return nil, classify("listing checkout sessions", err)
	}
	return out, nil
}

// classify wraps a Stripe error as retryable (payment.ErrUnavailable) or final (payment.ErrRejected).
func classify(what string, err error) error {
	var se *stripe.Error
	if errors.As(err, &se) && se.HTTPStatusCode >= 400 && se.HTTPStatusCode < 500 && se.HTTPStatusCode != http.StatusTooManyRequests &&
		se.HTTPStatusCode != http.StatusConflict {
		return fmt.Errorf("%s: %w: %s", what, payment.ErrRejected, se.Msg)
	}
	return fmt.Errorf("%s: %w: %w", what, payment.ErrUnavailable, err)
}

func truncate(s string, n int) string {
	if len(s) <= n {
		return s
	}
	return s[:n]
}

// leveledLogger sends stripe-go's logs to slog.
type leveledLogger struct{ l *slog.Logger }

func (l leveledLogger) Debugf(format string, v ...any) {
	l.l.Debug("stripe-go", "detail", fmt.Sprintf(format, v...))
}
func (l leveledLogger) Infof(format string, v ...any) {
	l.l.Debug("stripe-go", "detail", fmt.Sprintf(format, v...))
}
func (l leveledLogger) Warnf(format string, v ...any) {
	l.l.Warn("stripe-go", "detail", fmt.Sprintf(format, v...))
}
func (l leveledLogger) Errorf(format string, v ...any) {
	l.l.Error("stripe-go", "detail", fmt.Sprintf(format, v...))
}
