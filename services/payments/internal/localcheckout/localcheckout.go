// Package localcheckout is the checkout used when STRIPE_SECRET_KEY is unset: a page served by the
// payments service, clearly marked TEST MODE, whose Pay button marks the session paid and delivers
// a properly signed checkout.session.completed to the webhook endpoint — the production path.
// Reconciliation finds sessions paid here whose webhook was lost.
package localcheckout

import (
	"bytes"
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"html/template"
	"io"
	"log/slog"
	"net/http"
	"strings"
	"time"

	"github.com/tallyhq/tally/services/payments/internal/app"
	"github.com/tallyhq/tally/services/payments/internal/payment"
	"github.com/tallyhq/tally/services/payments/internal/stripeevent"
)

// sessionTTL is how long a local checkout session stays payable.
const sessionTTL = 24 * time.Hour

// maxListed bounds one reconciliation pass.
const maxListed = 1000

// Sessions is the storage the local checkout needs.
type Sessions interface {
	PaymentBySession(ctx context.Context, sessionID string) (payment.Payment, error)
	MarkLocalPaid(ctx context.Context, sessionID string) (payment.Payment, error)
	LocalToReconcile(ctx context.Context, limit int) ([]payment.Payment, error)
}

// Config configures a Checkout.
type Config struct {
	Sessions Sessions
	// PublicURL is where browsers reach this service's HTTP listener.
	PublicURL string
	// WebhookURL receives the signed deliveries (the gateway's /v1/webhooks/stripe).
	WebhookURL    string
	WebhookSecret string
	SuccessURL    string
	CancelURL     string
	HTTPClient    *http.Client
	Logger        *slog.Logger
}

// Checkout is the local test-mode processor and its page.
type Checkout struct {
	cfg  Config
	page *template.Template
}

var _ app.Processor = (*Checkout)(nil)

// New returns a Checkout.
func New(cfg Config) (*Checkout, error) {
	if cfg.Sessions == nil || cfg.PublicURL == "" || cfg.WebhookURL == "" || cfg.WebhookSecret == "" ||
		cfg.SuccessURL == "" || cfg.CancelURL == "" || cfg.Logger == nil {
		return nil, errors.New("localcheckout: sessions, public, webhook, success and cancel URLs, webhook secret and logger are required")
	}
	if cfg.HTTPClient == nil {
		cfg.HTTPClient = &http.Client{Timeout: 15 * time.Second}
	}
	cfg.PublicURL = strings.TrimRight(cfg.PublicURL, "/")
	page, err := template.New("checkout").Parse(pageHTML)
	if err != nil {
		return nil, fmt.Errorf("parsing checkout page: %w", err)
	}
	return &Checkout{cfg: cfg, page: page}, nil
}

// Mode implements app.Processor.
func (c *Checkout) Mode() payment.Mode { return payment.ModeLocal }

// CreateSession implements app.Processor with a local session id and page URL.
func (c *Checkout) CreateSession(_ context.Context, _ app.SessionRequest) (app.CreatedSession, error) {
	b := make([]byte, 16)
	if _, err := rand.Read(b); err != nil {
		return app.CreatedSession{}, fmt.Errorf("generating session id: %w", err)
	}
	id := "cs_test_local_" + hex.EncodeToString(b)
	return app.CreatedSession{ID: id, URL: c.cfg.PublicURL + "/checkout/test/" + id, ExpiresAt: time.Now().Add(sessionTTL).UTC()}, nil
}

// Refund implements app.Processor: test-mode payments moved no money.
func (c *Checkout) Refund(_ context.Context, req app.RefundRequest) (app.ProcessorRefund, error) {
	return app.ProcessorRefund{ID: "re_test_local_" + req.RefundID, Status: payment.ProcessorRefundSucceeded}, nil
}

// RefundStatus implements app.Processor: local refunds succeed at once.
func (c *Checkout) RefundStatus(_ context.Context, id string) (app.ProcessorRefund, error) {
	return app.ProcessorRefund{ID: id, Status: payment.ProcessorRefundSucceeded}, nil
}

// FindRefund implements app.Processor: local refunds are never lost.
func (c *Checkout) FindRefund(_ context.Context, req app.RefundRequest) (app.ProcessorRefund, bool, error) {
	return app.ProcessorRefund{ID: "re_test_local_" + req.RefundID, Status: payment.ProcessorRefundSucceeded}, true, nil
}

// RecentSessions implements app.Processor: the sessions paid on the page but never credited, and
// the unpaid ones past their expiry.
func (c *Checkout) RecentSessions(ctx context.Context, _ time.Time) ([]payment.Session, error) {
	ps, err := c.cfg.Sessions.LocalToReconcile(ctx, maxListed)
	if err != nil {
		return nil, err
	}
	out := make([]payment.Session, 0, len(ps))
	for _, p := range ps {
		out = append(out, session(p))
	}
	return out, nil
}

// session is how Stripe would describe a local session: paid once paid on the page, else expired
// or open.
func session(p payment.Payment) payment.Session {
	s := payment.Session{
		ID: p.CheckoutSessionID, Status: "open", PaymentStatus: "unpaid", AmountTotal: p.AmountMinor, Currency: p.Amount.Currency,
		PaymentIntentID: intentID(p.CheckoutSessionID), PaymentMethod: "card", PaymentID: p.ID, OrgID: p.OrgID, Created: p.CreatedAt,
	}
	switch {
	case !p.LocalPaidAt.IsZero():
		s.Status, s.PaymentStatus = "complete", "paid"
	case !p.ExpiresAt.IsZero() && time.Now().After(p.ExpiresAt):
		s.Status, s.PaymentIntentID = "expired", ""
	}
	return s
}

func intentID(sessionID string) string {
	return "pi_test_local_" + strings.TrimPrefix(sessionID, "cs_test_local_")
}

// Handler serves GET /checkout/test/{session_id} (the page), POST .../pay and POST .../cancel.
func (c *Checkout) Handler() http.Handler {
	mux := http.NewServeMux()
	mux.HandleFunc("GET /checkout/test/{session_id}", c.show)
	mux.HandleFunc("POST /checkout/test/{session_id}/pay", c.pay)
	mux.HandleFunc("POST /checkout/test/{session_id}/cancel", func(w http.ResponseWriter, r *http.Request) {
		http.Redirect(w, r, c.cfg.CancelURL, http.StatusSeeOther)
	})
	return mux
}

type pageData struct {
	P       payment.Payment
	Amount  string
	PayURL  string
	Cancel  string
	Payable bool
}

func (c *Checkout) show(w http.ResponseWriter, r *http.Request) {
	id := r.PathValue("session_id")
	p, err := c.cfg.Sessions.PaymentBySession(r.Context(), id)
	if err != nil || p.Mode != payment.ModeLocal {
		c.fail(w, err, "checkout session not found", http.StatusNotFound)
		return
	}
	base := "/checkout/test/" + id
	data := pageData{P: p, Amount: payment.FormatMinor(p.Amount), PayURL: base + "/pay", Cancel: base + "/cancel",
		Payable: p.Status == payment.StatusPending && p.LocalPaidAt.IsZero()}
	var buf bytes.Buffer
	if err := c.page.Execute(&buf, data); err != nil {
		c.fail(w, err, "rendering page", http.StatusInternalServerError)
		return
	}
	w.Header().Set("Content-Type", "text/html; charset=utf-8")
	w.Header().Set("Cache-Control", "no-store")
	_, _ = w.Write(buf.Bytes())
}

func (c *Checkout) pay(w http.ResponseWriter, r *http.Request) {
	id := r.PathValue("session_id")
	p, err := c.cfg.Sessions.PaymentBySession(r.Context(), id)
	if err != nil || p.Mode != payment.ModeLocal {
		c.fail(w, err, "checkout session not found", http.StatusNotFound)
		return
	}
	if p.Status != payment.StatusPending || (!p.ExpiresAt.IsZero() && time.Now().After(p.ExpiresAt)) {
		http.Error(w, "this checkout session can no longer be paid ("+string(p.Status)+")", http.StatusConflict)
		return
	}
	if p, err = c.cfg.Sessions.MarkLocalPaid(r.Context(), id); err != nil {
		c.fail(w, err, "marking the session paid", http.StatusInternalServerError)
		return
	}
	// A failed delivery is logged, not shown: reconciliation credits the session later, as it
	// would for a webhook Stripe failed to deliver.
	if err := c.deliver(r.Context(), p); err != nil {
		c.cfg.Logger.Warn("test-mode webhook delivery failed; reconciliation will fulfil the session", "session_id", id, "err", err)
	}
	http.Redirect(w, r, c.cfg.SuccessURL, http.StatusSeeOther)
}

// deliver POSTs a signed checkout.session.completed for p to the webhook endpoint.
func (c *Checkout) deliver(ctx context.Context, p payment.Payment) error {
	s := session(p)
	now := time.Now()
	body, err := stripeevent.EventPayload("", payment.EventCheckoutCompleted, now, stripeevent.SessionObject{
		ID: s.ID, Object: "checkout.session", Status: s.Status, PaymentStatus: s.PaymentStatus, Mode: "payment",
		AmountTotal: s.AmountTotal, Currency: strings.ToLower(s.Currency), PaymentIntent: s.PaymentIntentID,
		PaymentMethodTypes: []string{"card"}, ClientReferenceID: p.OrgID, Created: p.CreatedAt.Unix(),
		Metadata: map[string]string{payment.MetaPaymentID: p.ID, payment.MetaOrgID: p.OrgID, payment.MetaMemberID: p.Member.ID},
	})
	if err != nil {
		return err
	}
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, c.cfg.WebhookURL, bytes.NewReader(body))
	if err != nil {
		return fmt.Errorf("building webhook request: %w", err)
	}
	req.Header.Set("Content-Type", "application/json; charset=utf-8")
	req.Header.Set("Stripe-Signature", stripeevent.Sign(body, c.cfg.WebhookSecret, now))
	resp, err := c.cfg.HTTPClient.Do(req)
	if err != nil {
		return fmt.Errorf("posting webhook: %w", err)
	}
	defer func() { _ = resp.Body.Close() }()
	msg, _ := io.ReadAll(io.LimitReader(resp.Body, 1024))
	if resp.StatusCode/100 != 2 {
		return fmt.Errorf("webhook endpoint answered %s: %s", resp.Status, bytes.TrimSpace(msg))
	}
	return nil
}

func (c *Checkout) fail(w http.ResponseWriter, err error, msg string, code int) {
	if err != nil && !errors.Is(err, payment.ErrNotFound) {
		c.cfg.Logger.Error("local checkout failed", "err", err)
		code = http.StatusInternalServerError
	}
	http.Error(w, msg, code)
}

const pageHTML = `<!doctype html>
<html lang="en">
<head>
<meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<title>TEST MODE checkout - tally</title>
<style>
body { font-family: system-ui, sans-serif; background: #f6f6f8; margin: 0; }
.banner { background: #b00020; color: #fff; text-align: center; padding: .6rem; font-weight: 700; letter-spacing: .08em; }
.card { max-width: 26rem; margin: 3rem auto; background: #fff; border-radius: .75rem; padding: 2rem; box-shadow: 0 2px 12px rgba(0,0,0,.08); }
.amount { font-size: 2.2rem; font-weight: 700; margin: .5rem 0 1.5rem; }
dl { display: grid; grid-template-columns: auto 1fr; gap: .3rem 1rem; color: #444; }
dt { font-weight: 600; }
button { width: 100%; padding: .8rem; font-size: 1rem; border: 0; border-radius: .5rem; cursor: pointer; margin-top: .75rem; }
.pay { background: #635bff; color: #fff; }
.cancel { background: #e8e8ee; color: #333; }
.note { color: #777; font-size: .85rem; margin-top: 1.5rem; }
</style>
</head>
<body>
<div class="banner">TEST MODE &mdash; no card is charged</div>
<div class="card">
  <div>Add credits</div>
  <div class="amount">{{.Amount}}</div>
  <dl>
    <dt>Organization</dt><dd>{{.P.OrgID}}</dd>
    <dt>Paid by</dt><dd>{{.P.Member.Name}} {{if .P.Member.Email}}&lt;{{.P.Member.Email}}&gt;{{end}}</dd>
    <dt>Session</dt><dd><code>{{.P.CheckoutSessionID}}</code></dd>
  </dl>
  {{if .Payable}}
  <form method="post" action="{{.PayURL}}"><button class="pay" type="submit">Pay {{.Amount}}</button></form>
  <form method="post" action="{{.Cancel}}"><button class="cancel" type="submit">Cancel</button></form>
  {{else}}
  <p>This session is <strong>{{.P.Status}}</strong>{{if not .P.LocalPaidAt.IsZero}} and was paid{{end}}.</p>
  {{end}}
  <p class="note">STRIPE_SECRET_KEY is not set, so tally runs its local checkout. Pay sends a signed
  checkout.session.completed webhook, exactly as Stripe would.</p>
</div>
</body>
</html>
`
