package localcheckout

import (
	"bytes"
	"cmp"
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"net/http"
	"strings"

	"github.com/tallyhq/tally/services/payments/internal/payment"
	"github.com/tallyhq/tally/services/payments/internal/stripeevent"
)

var _ payment.Recharger = (*Checkout)(nil)

// testCard is a test card of the setup page, named as Stripe names its test payment methods.
type testCard struct {
	ID, Label, Brand, Last4 string
	// Status is what charging it off-session answers, Message the decline text Stripe sends.
	Status  payment.ChargeStatus
	Message string
}

// testCards are the cards the setup page offers: one that is charged, one that declines every
// charge and one whose bank asks for authentication — the test-mode answers of Stripe's
// pm_card_visa, pm_card_chargeDeclined and pm_card_authenticationRequired. They are how tests and
// the browser suite produce declines, which stripe-mock cannot.
var testCards = []testCard{
	{ID: payment.TestCardVisa, Label: "Visa ending in 4242 (succeeds)", Brand: "visa", Last4: "4242", Status: payment.ChargeSucceeded},
	{ID: payment.TestCardDeclined, Label: "Visa ending in 0002 (declined)", Brand: "visa", Last4: "0002", Status: payment.ChargeDeclined,
		Message: "Your card was declined."},
	{ID: payment.TestCardAuthRequired, Label: "Visa ending in 3184 (requires authentication)", Brand: "visa", Last4: "3184",
		Status: payment.ChargeAuthenticationRequired, Message: "This payment requires the cardholder to authenticate it."},
}

func findCard(id string) (testCard, bool) {
	for _, c := range testCards {
		if c.ID == id {
			return c, true
		}
	}
	return testCard{}, false
}

// CreateSetup implements payment.Recharger with a local setup page.
func (c *Checkout) CreateSetup(_ context.Context, req payment.SetupRequest) (payment.CreatedSession, error) {
	b := make([]byte, 16)
	if _, err := rand.Read(b); err != nil {
		return payment.CreatedSession{}, fmt.Errorf("generating setup session id: %w", err)
	}
	id := "cs_test_local_setup_" + hex.EncodeToString(b)
	return payment.CreatedSession{ID: id, URL: c.cfg.PublicURL + "/checkout/test/setup/" + id, ExpiresAt: req.ExpiresAt,
		CustomerID: cmp.Or(req.CustomerID, "cus_test_local_"+req.OrgID)}, nil
}

// SetupMethod implements payment.Recharger from the card chosen on the page.
func (c *Checkout) SetupMethod(_ context.Context, s payment.SetupSession, _ string) (payment.SavedMethod, bool, error) {
	card, ok := findCard(s.LocalMethod)
	if !ok {
		return payment.SavedMethod{}, false, nil
	}
	exp := c.cfg.Now().UTC().AddDate(3, 0, 0)
	return payment.SavedMethod{OrgID: s.OrgID, Mode: payment.ModeLocal, CustomerID: "cus_test_local_" + s.OrgID, PaymentMethodID: card.ID,
		Brand: card.Brand, Last4: card.Last4, ExpMonth: 12, ExpYear: exp.Year(), SetupSessionID: s.ID, SavedBy: s.Member}, true, nil
}

// ChargeSaved implements payment.Recharger: the test card decides the answer; nothing is charged.
func (c *Checkout) ChargeSaved(_ context.Context, req payment.ChargeRequest) (payment.ChargeResult, error) {
	card, ok := findCard(req.Method.PaymentMethodID)
	if !ok || req.Method.Mode != payment.ModeLocal {
		return payment.ChargeResult{}, fmt.Errorf("%w: %s is not a test card", payment.ErrRejected, req.Method.PaymentMethodID)
	}
	return payment.ChargeResult{PaymentIntentID: "pi_test_local_recharge_" + req.PaymentID, Status: card.Status, Message: card.Message}, nil
}

// ChargeStatus implements payment.Recharger: a test card's charge never stays pending; its status
// is what ChargeSaved answered.
func (c *Checkout) ChargeStatus(ctx context.Context, req payment.ChargeRequest, _ string) (payment.ChargeResult, error) {
	return c.ChargeSaved(ctx, req)
}

type setupData struct {
	S         payment.SetupSession
	SaveURL   string
	CancelURL string
	Open      bool
	Cards     []testCard
}

func (c *Checkout) showSetup(w http.ResponseWriter, r *http.Request) {
	id := r.PathValue("session_id")
	ctx, cancel := context.WithTimeout(r.Context(), pageTimeout)
	defer cancel()
	ss, err := c.cfg.Sessions.SetupSession(ctx, id)
	if err != nil || ss.Mode != payment.ModeLocal {
		c.fail(w, err, "setup session not found", http.StatusNotFound)
		return
	}
	data := setupData{S: ss, SaveURL: "/checkout/test/setup/" + id + "/save", CancelURL: c.cfg.SetupCancelURL,
		Open: ss.CompletedAt.IsZero() && ss.ExpiredAt.IsZero() && ss.LocalMethod == "" && c.cfg.Now().Before(ss.ExpiresAt), Cards: testCards}
	var buf bytes.Buffer
	if err := c.setupPage.Execute(&buf, data); err != nil {
		c.fail(w, err, "rendering page", http.StatusInternalServerError)
		return
	}
	h := w.Header()
	h.Set("Content-Type", "text/html; charset=utf-8")
	h.Set("Cache-Control", "no-store")
	h.Set("Content-Security-Policy", "default-src 'none'; style-src 'unsafe-inline'; frame-ancestors 'none'; base-uri 'none'")
	h.Set("X-Content-Type-Options", "nosniff")
	h.Set("Referrer-Policy", "no-referrer")
	_, _ = w.Write(buf.Bytes())
}

func (c *Checkout) saveSetup(w http.ResponseWriter, r *http.Request) {
	id := r.PathValue("session_id")
	ctx, cancel := context.WithTimeout(r.Context(), pageTimeout)
	defer cancel()
	r.Body = http.MaxBytesReader(w, r.Body, 4096)
	card, ok := findCard(r.PostFormValue("card"))
	if !ok {
		http.Error(w, "choose one of the test cards", http.StatusBadRequest)
		return
	}
	ss, err := c.cfg.Sessions.ChooseLocalCard(ctx, id, card.ID)
	if errors.Is(err, payment.ErrFailedPrecondition) {
		http.Error(w, "this setup session can no longer be completed", http.StatusConflict)
		return
	}
	if err != nil || ss.Mode != payment.ModeLocal {
		c.fail(w, err, "setup session not found", http.StatusNotFound)
		return
	}
	if err := c.deliverSetup(r.Context(), ss); err != nil {
		c.cfg.Logger.Warn("test-mode setup webhook delivery failed", "session_id", id, "err", err)
		http.Error(w, "the card could not be saved, try again", http.StatusBadGateway)
		return
	}
	http.Redirect(w, r, c.cfg.SetupSuccessURL, http.StatusSeeOther)
}

// deliverSetup POSTs a signed checkout.session.completed in setup mode to the webhook endpoint.
func (c *Checkout) deliverSetup(ctx context.Context, ss payment.SetupSession) error {
	now := c.cfg.Now()
	body, err := stripeevent.EventPayload("", payment.EventCheckoutCompleted, now, stripeevent.SessionObject{
		ID: ss.ID, Object: "checkout.session", Status: "complete", PaymentStatus: "no_payment_required", Mode: "setup",
		SetupIntent: "seti_test_local_" + strings.TrimPrefix(ss.ID, "cs_test_local_setup_"), PaymentMethodTypes: []string{payment.MethodCard},
		ClientReferenceID: ss.OrgID, Created: ss.CreatedAt.Unix(),
		Metadata: map[string]string{payment.MetaOrgID: ss.OrgID, payment.MetaMemberID: ss.Member.ID},
	})
	if err != nil {
		return err
	}
	return c.post(ctx, body)
}

// setupHTML is the test-mode page that saves a card: one real radio button per test card.
const setupHTML = `<!doctype html>
<html lang="en">
<head>
<meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<title>Save a card - TEST MODE - tally</title>
<style>
body { font-family: system-ui, sans-serif; background: #f6f6f8; color: #1a1a1a; margin: 0; }
.banner { background: #b00020; color: #fff; text-align: center; padding: .6rem; font-weight: 700; letter-spacing: .08em; margin: 0; }
main { max-width: 28rem; margin: 2rem auto; background: #fff; border-radius: .75rem; padding: 2rem; box-shadow: 0 2px 12px rgba(0,0,0,.08); }
h1 { font-size: 1.1rem; font-weight: 600; margin: 0 0 1rem; }
fieldset { border: 0; padding: 0; margin: 1rem 0 0; }
legend { font-weight: 600; margin-bottom: .5rem; }
label { display: block; padding: .4rem 0; }
button { display: block; width: 100%; padding: .8rem; font-size: 1rem; border: 0; border-radius: .5rem; cursor: pointer; margin-top: 1rem; background: #4b44d6; color: #fff; }
button:focus-visible, a:focus-visible, input:focus-visible { outline: 3px solid #1f6feb; outline-offset: 2px; }
.cancel { display: inline-block; margin-top: 1.25rem; color: #3a3a3a; }
.note { color: #555; font-size: .85rem; margin-top: 1.5rem; }
</style>
</head>
<body>
<header class="banner">TEST MODE &mdash; nothing is charged</header>
<main>
  <h1>Save a card for auto-recharge</h1>
  <p>Organization {{.S.OrgID}}</p>
  {{if .Open}}
  <form method="post" action="{{.SaveURL}}">
    <fieldset>
      <legend>Test card</legend>
      {{range $i, $c := .Cards}}<label><input type="radio" name="card" value="{{$c.ID}}"{{if eq $i 0}} checked{{end}}> {{$c.Label}}</label>
      {{end}}
    </fieldset>
    <button type="submit">Save card</button>
  </form>
  <a class="cancel" href="{{.CancelURL}}">Cancel</a>
  {{else}}
  <p role="status">This setup session can no longer be completed.</p>
  <a class="cancel" href="{{.CancelURL}}">Back to Billing</a>
  {{end}}
  <p class="note">STRIPE_SECRET_KEY is not set, so tally runs its local checkout. Saving sends a signed
  checkout.session.completed (setup mode) webhook, as Stripe would.</p>
</main>
</body>
</html>
`
