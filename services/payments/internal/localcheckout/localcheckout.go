// Package localcheckout is the checkout used when STRIPE_SECRET_KEY is unset: a page served by the
// payments service, clearly marked TEST MODE, that offers the choices Stripe Checkout offers tally's
// members — Credit Card and Google Pay (a card wallet, as at Stripe) — either of which marks the
// session paid and delivers a properly signed checkout.session.completed to the webhook endpoint,
// the production path, then returns to the success URL. Reconciliation finds sessions paid here
// whose webhook was lost; the expiry sweep expires the sessions left unpaid past their expiry.
package localcheckout

import (
	"bytes"
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"github.com/tallyhq/tally/pkg/money"
	"html/template"
	"io"
	"log/slog"
	"net/http"
	"net/url"
	"strings"
	"time"

	"github.com/tallyhq/tally/services/payments/internal/payment"
	"github.com/tallyhq/tally/services/payments/internal/stripeevent"
)

// maxListed bounds one reconciliation pass.
const maxListed = 1000

// Sessions is the storage the local checkout needs.
type Sessions interface {
	PaymentBySession(ctx context.Context, sessionID string) (payment.Payment, error)
	MarkLocalPaid(ctx context.Context, sessionID, method, wallet string) (payment.Payment, error)
	LocalToReconcile(ctx context.Context, limit int) ([]payment.Payment, error)
	SetupSession(ctx context.Context, id string) (payment.SetupSession, error)
	ChooseLocalCard(ctx context.Context, id, method string) (payment.SetupSession, error)
}

// Config configures a Checkout.
type Config struct {
	Sessions Sessions
	// PublicURL is where browsers reach this service's HTTP listener.
	PublicURL string
	// WebhookURL receives the signed deliveries (the gateway's /v1/webhooks/stripe).
	WebhookURL    string
	WebhookSecret string
	// SuccessURL may hold {CHECKOUT_SESSION_ID}, replaced by the session id as Stripe does.
	SuccessURL string
	CancelURL  string
	// SetupSuccessURL and SetupCancelURL are where the setup page returns (SuccessURL and
	// CancelURL when empty).
	SetupSuccessURL string
	SetupCancelURL  string
	HTTPClient      *http.Client
	Logger          *slog.Logger
	// Now is the business clock (session expiry, event times); nil is time.Now. Signatures use
	// the real time, as the verifier does.
	Now func() time.Time
}

// Checkout is the local test-mode processor and its page.
type Checkout struct {
	cfg       Config
	page      *template.Template
	setupPage *template.Template
}

var _ payment.Processor = (*Checkout)(nil)

// New returns a Checkout.
func New(cfg Config) (*Checkout, error) {
	if cfg.Sessions == nil || cfg.PublicURL == "" || cfg.WebhookURL == "" || cfg.WebhookSecret == "" ||
		cfg.SuccessURL == "" || cfg.CancelURL == "" || cfg.Logger == nil {
		return nil, errors.New("localcheckout: sessions, public, webhook, success and cancel URLs, webhook secret and logger are required")
	}
	if cfg.Now == nil {
		cfg.Now = time.Now
	}
	if cfg.HTTPClient == nil {
		cfg.HTTPClient = &http.Client{Timeout: 15 * time.Second}
	}
	cfg.PublicURL = strings.TrimRight(cfg.PublicURL, "/")
	page, err := template.New("checkout").Parse(pageHTML)
	if err != nil {
		return nil, fmt.Errorf("parsing checkout page: %w", err)
	}
	setupPage, err := template.New("setup").Parse(setupHTML)
	if err != nil {
		return nil, fmt.Errorf("parsing setup page: %w", err)
	}
	if cfg.SetupSuccessURL == "" {
		cfg.SetupSuccessURL = cfg.SuccessURL
	}
	if cfg.SetupCancelURL == "" {
		cfg.SetupCancelURL = cfg.CancelURL
	}
	return &Checkout{cfg: cfg, page: page, setupPage: setupPage}, nil
}

// Mode implements payment.Processor.
func (c *Checkout) Mode() payment.Mode { return payment.ModeLocal }

// CreateSession implements payment.Processor with a local session id and page URL.
func (c *Checkout) CreateSession(_ context.Context, req payment.SessionRequest) (payment.CreatedSession, error) {
	if req.ExpiresAt.IsZero() {
		return payment.CreatedSession{}, errors.New("localcheckout: a session needs an expiry")
	}
	b := make([]byte, 16)
	if _, err := rand.Read(b); err != nil {
		return payment.CreatedSession{}, fmt.Errorf("generating session id: %w", err)
	}
	id := "cs_test_local_" + hex.EncodeToString(b)
	return payment.CreatedSession{ID: id, URL: c.cfg.PublicURL + "/checkout/test/" + id, ExpiresAt: req.ExpiresAt}, nil
}

// Session implements payment.Processor from the page's own record of the session.
func (c *Checkout) Session(ctx context.Context, sessionID string) (payment.Session, error) {
	p, err := c.cfg.Sessions.PaymentBySession(ctx, sessionID)
	if err == nil && p.Mode != payment.ModeLocal {
		err = fmt.Errorf("session %s is not a test-mode session: %w", sessionID, payment.ErrNotFound)
	}
	if errors.Is(err, payment.ErrNotFound) {
		return payment.Session{}, fmt.Errorf("%w: %w", payment.ErrRejected, err)
	}
	if err != nil {
		return payment.Session{}, err
	}
	return session(p, c.cfg.Now()), nil
}

// Refund implements payment.Processor: test-mode payments moved no money.
func (c *Checkout) Refund(_ context.Context, req payment.RefundRequest) (payment.ProcessorRefund, error) {
	return payment.ProcessorRefund{ID: "re_test_local_" + req.RefundID, Status: payment.ProcessorRefundSucceeded}, nil
}

// RefundStatus implements payment.Processor: local refunds succeed at once.
func (c *Checkout) RefundStatus(_ context.Context, id string) (payment.ProcessorRefund, error) {
	return payment.ProcessorRefund{ID: id, Status: payment.ProcessorRefundSucceeded}, nil
}

// FindRefund implements payment.Processor: local refunds are never lost.
func (c *Checkout) FindRefund(_ context.Context, req payment.RefundRequest) (payment.ProcessorRefund, bool, error) {
	return payment.ProcessorRefund{ID: "re_test_local_" + req.RefundID, Status: payment.ProcessorRefundSucceeded}, true, nil
}

// RecentSessions implements payment.Processor: the sessions paid on the page but never credited, and
// the unpaid ones past their expiry.
func (c *Checkout) RecentSessions(ctx context.Context, _ time.Time) ([]payment.Session, error) {
	ps, err := c.cfg.Sessions.LocalToReconcile(ctx, maxListed)
	if err != nil {
		return nil, err
	}
	out := make([]payment.Session, 0, len(ps))
	for _, p := range ps {
		out = append(out, session(p, c.cfg.Now()))
	}
	return out, nil
}

// session is how Stripe would describe a local session: paid once paid on the page, else expired
// or open.
func session(p payment.Payment, now time.Time) payment.Session {
	s := payment.Session{
		ID: p.CheckoutSessionID, Status: "open", PaymentStatus: "unpaid", AmountTotal: p.AmountMinor, Currency: p.Amount.Currency,
		PaymentIntentID: intentID(p.CheckoutSessionID), PaymentMethod: payment.MethodCard, PaymentID: p.ID, OrgID: p.OrgID, Created: p.CreatedAt,
	}
	switch {
	case !p.LocalPaidAt.IsZero():
		s.Status, s.PaymentStatus = "complete", "paid"
	case p.Status == payment.StatusExpired || !p.ExpiresAt.IsZero() && now.After(p.ExpiresAt):
		s.Status, s.PaymentIntentID = "expired", ""
	}
	return s
}

func intentID(sessionID string) string {
	return "pi_test_local_" + strings.TrimPrefix(sessionID, "cs_test_local_")
}

// Handler serves GET /checkout/test/{session_id} (the page), POST .../pay (form field method:
// "card" or "google_pay") and POST .../cancel.
func (c *Checkout) Handler() http.Handler {
	mux := http.NewServeMux()
	mux.HandleFunc("GET /checkout/test/{session_id}", c.show)
	mux.HandleFunc("POST /checkout/test/{session_id}/pay", c.pay)
	mux.HandleFunc("POST /checkout/test/{session_id}/cancel", func(w http.ResponseWriter, r *http.Request) {
		http.Redirect(w, r, c.cfg.CancelURL, http.StatusSeeOther)
	})
	mux.HandleFunc("GET /checkout/test/setup/{session_id}", c.showSetup)
	mux.HandleFunc("POST /checkout/test/setup/{session_id}/save", c.saveSetup)
	return mux
}

// choice maps a button of the page to what Stripe would record for it: Google Pay is a card wallet.
func choice(button string) (method, wallet string, ok bool) {
	switch button {
	case "card":
		return payment.MethodCard, "", true
	case "google_pay":
		return payment.MethodCard, payment.WalletGooglePay, true
	}
	return "", "", false
}

type pageData struct {
	P         payment.Payment
	Amount    string
	PayURL    string
	CancelURL string
	Payable   bool
	Paid      bool
	// State is what the page says of a session it no longer takes payment for.
	State     string
	ExpiresAt string
}

// pageTimeout bounds the database work behind one page request; a payment's webhook delivery has
// the HTTP client's own timeout.
const pageTimeout = 5 * time.Second

func (c *Checkout) show(w http.ResponseWriter, r *http.Request) {
	id := r.PathValue("session_id")
	ctx, cancel := context.WithTimeout(r.Context(), pageTimeout)
	defer cancel()
	p, err := c.cfg.Sessions.PaymentBySession(ctx, id)
	if err != nil || p.Mode != payment.ModeLocal {
		c.fail(w, err, "checkout session not found", http.StatusNotFound)
		return
	}
	data := pageData{P: p, Amount: money.Format(p.Amount), PayURL: "/checkout/test/" + id + "/pay", CancelURL: c.cfg.CancelURL,
		Payable: payable(p, c.cfg.Now()), Paid: !p.LocalPaidAt.IsZero(), State: string(p.Status)}
	if p.Status == payment.StatusPending && !data.Paid && !data.Payable {
		data.State = string(payment.StatusExpired) // past its expiry, before the sweep saw it
	}
	if !p.ExpiresAt.IsZero() {
		data.ExpiresAt = p.ExpiresAt.UTC().Format("January 2, 2006 at 15:04 UTC")
	}
	var buf bytes.Buffer
	if err := c.page.Execute(&buf, data); err != nil {
		c.fail(w, err, "rendering page", http.StatusInternalServerError)
		return
	}
	h := w.Header()
	h.Set("Content-Type", "text/html; charset=utf-8")
	h.Set("Cache-Control", "no-store")
	// A pay page is never framed (clickjacking) and loads nothing; its form posts to itself and
	// is then redirected to the console, so form-action stays unrestricted.
	h.Set("Content-Security-Policy", "default-src 'none'; style-src 'unsafe-inline'; frame-ancestors 'none'; base-uri 'none'")
	h.Set("X-Content-Type-Options", "nosniff")
	h.Set("Referrer-Policy", "no-referrer")
	_, _ = w.Write(buf.Bytes())
}

// payable reports whether the page may still take p's payment.
func payable(p payment.Payment, now time.Time) bool {
	return p.Status == payment.StatusPending && p.LocalPaidAt.IsZero() && (p.ExpiresAt.IsZero() || now.Before(p.ExpiresAt))
}

func (c *Checkout) pay(w http.ResponseWriter, r *http.Request) {
	id := r.PathValue("session_id")
	dbctx, cancel := context.WithTimeout(r.Context(), pageTimeout)
	defer cancel()
	p, err := c.cfg.Sessions.PaymentBySession(dbctx, id)
	if err != nil || p.Mode != payment.ModeLocal {
		c.fail(w, err, "checkout session not found", http.StatusNotFound)
		return
	}
	r.Body = http.MaxBytesReader(w, r.Body, 4096)
	method, wallet, ok := choice(r.PostFormValue("method"))
	if !ok {
		http.Error(w, `choose a payment method: "card" or "google_pay"`, http.StatusBadRequest)
		return
	}
	if !payable(p, c.cfg.Now()) {
		http.Error(w, "this checkout session can no longer be paid ("+string(p.Status)+")", http.StatusConflict)
		return
	}
	// The mark is conditional on the session being pending and unexpired in the same statement,
	// so the expiry sweep and a payment never both win.
	p, err = c.cfg.Sessions.MarkLocalPaid(dbctx, id, method, wallet)
	if errors.Is(err, payment.ErrFailedPrecondition) {
		http.Error(w, "this checkout session can no longer be paid ("+string(p.Status)+")", http.StatusConflict)
		return
	}
	if err != nil {
		c.fail(w, err, "marking the session paid", http.StatusInternalServerError)
		return
	}
	// A failed delivery is logged, not shown: reconciliation credits the session later, as it
	// would for a webhook Stripe failed to deliver.
	if err := c.deliver(r.Context(), p); err != nil {
		c.cfg.Logger.Warn("test-mode webhook delivery failed; reconciliation will fulfil the session", "session_id", id, "err", err)
	}
	http.Redirect(w, r, SuccessURL(c.cfg.SuccessURL, id), http.StatusSeeOther)
}

// SuccessURL fills the {CHECKOUT_SESSION_ID} template variable of a success URL as Stripe does.
func SuccessURL(template, sessionID string) string {
	return strings.ReplaceAll(template, "{CHECKOUT_SESSION_ID}", url.QueryEscape(sessionID))
}

// deliver POSTs a signed checkout.session.completed for p to the webhook endpoint.
func (c *Checkout) deliver(ctx context.Context, p payment.Payment) error {
	now := c.cfg.Now()
	s := session(p, now)
	body, err := stripeevent.EventPayload("", payment.EventCheckoutCompleted, now, stripeevent.SessionObject{
		ID: s.ID, Object: "checkout.session", Status: s.Status, PaymentStatus: s.PaymentStatus, Mode: "payment",
		AmountTotal: s.AmountTotal, Currency: strings.ToLower(s.Currency), PaymentIntent: s.PaymentIntentID,
		PaymentMethodTypes: []string{payment.MethodCard}, ClientReferenceID: p.OrgID, Created: p.CreatedAt.Unix(),
		Metadata: map[string]string{payment.MetaPaymentID: p.ID, payment.MetaOrgID: p.OrgID, payment.MetaMemberID: p.Member.ID},
	})
	if err != nil {
		return err
	}
	return c.post(ctx, body)
}

// post delivers a signed event payload to the webhook endpoint, as Stripe would.
func (c *Checkout) post(ctx context.Context, body []byte) error {
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, c.cfg.WebhookURL, bytes.NewReader(body))
	if err != nil {
		return fmt.Errorf("building webhook request: %w", err)
	}
	req.Header.Set("Content-Type", "application/json; charset=utf-8")
	req.Header.Set("Stripe-Signature", stripeevent.Sign(body, c.cfg.WebhookSecret, time.Now()))
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

// pageHTML is the test-mode checkout page: a landmark structure, a labelled group of real
// buttons (one per payment method, each a form submit), the amount as text and a Cancel link.
const pageHTML = `<!doctype html>
<html lang="en">
<head>
<meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<title>Pay {{.Amount}} - TEST MODE checkout - tally</title>
<style>
body { font-family: system-ui, sans-serif; background: #f6f6f8; color: #1a1a1a; margin: 0; }
.banner { background: #b00020; color: #fff; text-align: center; padding: .6rem; font-weight: 700; letter-spacing: .08em; margin: 0; }
main { max-width: 26rem; margin: 2rem auto; background: #fff; border-radius: .75rem; padding: 2rem; box-shadow: 0 2px 12px rgba(0,0,0,.08); }
h1 { font-size: 1.1rem; font-weight: 600; margin: 0; }
.amount { font-size: 2.2rem; font-weight: 700; margin: .5rem 0 1.5rem; }
dl { display: grid; grid-template-columns: auto 1fr; gap: .3rem 1rem; color: #333; }
dt { font-weight: 600; }
dd { margin: 0; overflow-wrap: anywhere; }
fieldset { border: 0; padding: 0; margin: 1.5rem 0 0; }
legend { font-weight: 600; margin-bottom: .25rem; }
button { display: block; width: 100%; padding: .8rem; font-size: 1rem; border: 0; border-radius: .5rem; cursor: pointer; margin-top: .75rem; }
button:focus-visible, a:focus-visible { outline: 3px solid #1f6feb; outline-offset: 2px; }
.card { background: #4b44d6; color: #fff; }
.gpay { background: #000; color: #fff; }
.cancel { display: inline-block; margin-top: 1.25rem; color: #3a3a3a; }
.note { color: #555; font-size: .85rem; margin-top: 1.5rem; }
</style>
</head>
<body>
<header class="banner">TEST MODE &mdash; nothing is charged</header>
<main>
  <h1>Add Credits</h1>
  <p class="amount" id="amount">{{.Amount}}</p>
  <dl>
    <dt>Organization</dt><dd>{{.P.OrgID}}</dd>
    <dt>Paid by</dt><dd>{{.P.Member.Name}}{{if .P.Member.Email}} &lt;{{.P.Member.Email}}&gt;{{end}}</dd>
    <dt>Session</dt><dd><code>{{.P.CheckoutSessionID}}</code></dd>
    {{- if .ExpiresAt}}
    <dt>Pay before</dt><dd>{{.ExpiresAt}}</dd>
    {{- end}}
  </dl>
  {{if .Payable}}
  <form method="post" action="{{.PayURL}}">
    <fieldset aria-describedby="amount">
      <legend>Pay {{.Amount}} with</legend>
      <button class="card" type="submit" name="method" value="card">Credit Card</button>
      <button class="gpay" type="submit" name="method" value="google_pay">Google Pay</button>
    </fieldset>
  </form>
  <a class="cancel" href="{{.CancelURL}}">Cancel</a>
  {{else}}
  <p role="status">This checkout session is <strong>{{.State}}</strong>{{if .Paid}} and was paid{{end}}: it can no longer be paid.</p>
  <a class="cancel" href="{{.CancelURL}}">Back to Billing</a>
  {{end}}
  <p class="note">STRIPE_SECRET_KEY is not set, so tally runs its local checkout. Either choice sends a
  signed checkout.session.completed webhook, exactly as Stripe would, and nothing is charged.</p>
</main>
</body>
</html>
`
