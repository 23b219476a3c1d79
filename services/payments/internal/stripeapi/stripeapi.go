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

	"github.com/tallyhq/tally/services/payments/internal/payment"
	"github.com/tallyhq/tally/services/payments/internal/stripeevent"
)

// maxListed bounds one reconciliation listing.
const maxListed = 10_000

// DefaultTimeout is the deadline of each Stripe call when Config.Timeout is zero.
const DefaultTimeout = 30 * time.Second

// listPages is how many pages' worth of Timeout a listing may take.
const listPages = 10

// Config configures a Processor.
type Config struct {
	SecretKey string
	// APIURL overrides Stripe's API base URL (stripe-mock in tests); empty uses Stripe's.
	APIURL     string
	SuccessURL string
	CancelURL  string
	// SetupSuccessURL and SetupCancelURL are where a setup session returns (SuccessURL and
	// CancelURL when empty).
	SetupSuccessURL string
	SetupCancelURL  string
	// Timeout is the deadline of each call, Stripe-go's own retries included (DefaultTimeout when
	// zero); a listing gets listPages times as long.
	Timeout time.Duration
	Logger  *slog.Logger
}

// Processor runs checkouts through Stripe.
type Processor struct {
	api    *client.API
	cfg    Config
	logger *slog.Logger
}

var _ payment.Processor = (*Processor)(nil)

// New returns a Processor.
func New(cfg Config) (*Processor, error) {
	if cfg.SecretKey == "" || cfg.SuccessURL == "" || cfg.CancelURL == "" || cfg.Logger == nil {
		return nil, errors.New("stripeapi: secret key, success and cancel URLs and logger are required")
	}
	if cfg.Timeout < 0 {
		return nil, errors.New("stripeapi: timeout must not be negative")
	}
	if cfg.Timeout == 0 {
		cfg.Timeout = DefaultTimeout
	}
	if cfg.SetupSuccessURL == "" {
		cfg.SetupSuccessURL = cfg.SuccessURL
	}
	if cfg.SetupCancelURL == "" {
		cfg.SetupCancelURL = cfg.CancelURL
	}
	bc := &stripe.BackendConfig{
		HTTPClient:        &http.Client{Timeout: cfg.Timeout},
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

// Mode implements payment.Processor.
func (p *Processor) Mode() payment.Mode { return payment.ModeStripe }

// CreateSession implements payment.Processor: mode payment, one "Credits" line item in the
// organization's currency, card payments (Google Pay and Apple Pay show as card wallets).
func (p *Processor) CreateSession(ctx context.Context, req payment.SessionRequest) (payment.CreatedSession, error) {
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
	if !req.ExpiresAt.IsZero() {
		params.ExpiresAt = stripe.Int64(req.ExpiresAt.Unix())
	}
	if req.Member.Email != "" {
		params.CustomerEmail = stripe.String(req.Member.Email)
	}
	ctx, cancel := context.WithTimeout(ctx, p.cfg.Timeout)
	defer cancel()
	params.Context = ctx
	params.SetIdempotencyKey("checkout:" + req.PaymentID)
	cs, err := p.api.CheckoutSessions.New(params)
	if err != nil {
		return payment.CreatedSession{}, classify("creating checkout session", err)
	}
	// The expiry asked for is the one recorded: Stripe echoes it, and stripe-mock answers with a
	// fixture's.
	out := payment.CreatedSession{ID: cs.ID, URL: cs.URL, ExpiresAt: req.ExpiresAt}
	if out.ExpiresAt.IsZero() && cs.ExpiresAt > 0 {
		out.ExpiresAt = time.Unix(cs.ExpiresAt, 0).UTC()
	}
	return out, nil
}

var _ payment.WalletReader = (*Processor)(nil)

// PaymentWallet implements payment.WalletReader: the wallet type of the card that paid the payment
// intent's latest charge ("google_pay", "apple_pay", ...), empty for a card entered by hand.
func (p *Processor) PaymentWallet(ctx context.Context, paymentIntentID string) (string, error) {
	ctx, cancel := context.WithTimeout(ctx, p.cfg.Timeout)
	defer cancel()
	params := &stripe.PaymentIntentParams{}
	params.Context = ctx
	params.AddExpand("latest_charge")
	pi, err := p.api.PaymentIntents.Get(paymentIntentID, params)
	if err != nil {
		return "", classify("reading payment intent", err)
	}
	if c := pi.LatestCharge; c != nil && c.PaymentMethodDetails != nil && c.PaymentMethodDetails.Card != nil &&
		c.PaymentMethodDetails.Card.Wallet != nil {
		return string(c.PaymentMethodDetails.Card.Wallet.Type), nil
	}
	return "", nil
}

// Session implements payment.Processor: the Checkout Session as Stripe has it now.
func (p *Processor) Session(ctx context.Context, sessionID string) (payment.Session, error) {
	ctx, cancel := context.WithTimeout(ctx, p.cfg.Timeout)
	defer cancel()
	params := &stripe.CheckoutSessionParams{}
	params.Context = ctx
	cs, err := p.api.CheckoutSessions.Get(sessionID, params)
	if err != nil {
		return payment.Session{}, classify("reading checkout session", err)
	}
	return stripeevent.SessionFromStripe(cs), nil
}

// Refund implements payment.Processor. The refund id is the idempotency key, so a retried call
// refunds once (within the 24 hours Stripe keeps keys; app looks older refunds up first).
func (p *Processor) Refund(ctx context.Context, req payment.RefundRequest) (payment.ProcessorRefund, error) {
	ctx, cancel := context.WithTimeout(ctx, p.cfg.Timeout)
	defer cancel()
	intent, err := p.intent(ctx, req)
	if err != nil {
		return payment.ProcessorRefund{}, err
	}
	params := &stripe.RefundParams{
		PaymentIntent: stripe.String(intent),
		Amount:        stripe.Int64(req.AmountMinor),
		Reason:        stripe.String(string(stripe.RefundReasonRequestedByCustomer)),
	}
	params.Context = ctx
	params.AddMetadata(metaRefundID, req.RefundID)
	params.AddMetadata("tally_reason", truncate(req.Reason, 450))
	params.SetIdempotencyKey("refund:" + req.RefundID)
	r, err := p.api.Refunds.New(params)
	if err != nil {
		return payment.ProcessorRefund{}, classify("creating refund", err)
	}
	return processorRefund(r), nil
}

// metaRefundID names tally's refund in the metadata of a Stripe refund.
const metaRefundID = "tally_refund_id"

// RefundStatus implements payment.Processor.
func (p *Processor) RefundStatus(ctx context.Context, id string) (payment.ProcessorRefund, error) {
	ctx, cancel := context.WithTimeout(ctx, p.cfg.Timeout)
	defer cancel()
	params := &stripe.RefundParams{}
	params.Context = ctx
	r, err := p.api.Refunds.Get(id, params)
	if err != nil {
		return payment.ProcessorRefund{}, classify("reading refund", err)
	}
	return processorRefund(r), nil
}

// FindRefund implements payment.Processor: the refunds of the payment's intent, by their metadata.
func (p *Processor) FindRefund(ctx context.Context, req payment.RefundRequest) (payment.ProcessorRefund, bool, error) {
	ctx, cancel := context.WithTimeout(ctx, listPages*p.cfg.Timeout)
	defer cancel()
	intent, err := p.intent(ctx, req)
	if err != nil {
		return payment.ProcessorRefund{}, false, err
	}
	params := &stripe.RefundListParams{PaymentIntent: stripe.String(intent)}
	params.Limit = stripe.Int64(100)
	params.Context = ctx
	it := p.api.Refunds.List(params)
	for it.Next() {
		if r := it.Refund(); r.Metadata[metaRefundID] == req.RefundID {
			return processorRefund(r), true, nil
		}
	}
	if err := it.Err(); err != nil {
		return payment.ProcessorRefund{}, false, classify("listing refunds", err)
	}
	return payment.ProcessorRefund{}, false, nil
}

// intent is the payment intent of req's payment, read from its Checkout Session when not known.
func (p *Processor) intent(ctx context.Context, req payment.RefundRequest) (string, error) {
	if req.PaymentIntentID != "" {
		return req.PaymentIntentID, nil
	}
	gp := &stripe.CheckoutSessionParams{}
	gp.Context = ctx
	cs, err := p.api.CheckoutSessions.Get(req.SessionID, gp)
	if err != nil {
		return "", classify("reading checkout session", err)
	}
	if cs.PaymentIntent == nil || cs.PaymentIntent.ID == "" {
		return "", fmt.Errorf("%w: checkout session %s has no payment intent", payment.ErrRejected, req.SessionID)
	}
	return cs.PaymentIntent.ID, nil
}

func processorRefund(r *stripe.Refund) payment.ProcessorRefund {
	return payment.ProcessorRefund{ID: r.ID, Status: payment.ProcessorRefundStatus(r.Status)}
}

// RecentSessions implements payment.Processor: the Checkout Sessions created since since.
func (p *Processor) RecentSessions(ctx context.Context, since time.Time) ([]payment.Session, error) {
	params := &stripe.CheckoutSessionListParams{CreatedRange: &stripe.RangeQueryParams{GreaterThanOrEqual: since.Unix()}}
	params.Limit = stripe.Int64(100)
	ctx, cancel := context.WithTimeout(ctx, listPages*p.cfg.Timeout)
	defer cancel()
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

// classify is the one place where Stripe errors are judged: a request Stripe refuses for good
// (400 invalid request, 402 card error, 404 no such object) wraps payment.ErrRejected; anything
// else wraps payment.ErrUnavailable and is retried — network failures and timeouts, 5xx, 409
// (idempotent request in progress), 429, and 401/403: our own API key refused (rotated, revoked,
// restricted), which is ours to fix, never a reason to give a refund up.
func classify(what string, err error) error {
	if Permanent(err) {
		var se *stripe.Error
		errors.As(err, &se)
		return fmt.Errorf("%s: %w: %s", what, payment.ErrRejected, se.Msg)
	}
	return fmt.Errorf("%s: %w: %w", what, payment.ErrUnavailable, err)
}

// Permanent reports whether a Stripe error is a definitive refusal (see classify).
func Permanent(err error) bool {
	var se *stripe.Error
	if !errors.As(err, &se) {
		return false
	}
	switch se.HTTPStatusCode {
	case http.StatusBadRequest, http.StatusPaymentRequired, http.StatusNotFound:
		return true
	}
	return false
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
