package test

import (
	"bytes"
	"encoding/json"
	"io"
	"net/http"
	"net/http/httptest"
	"net/http/httputil"
	"net/url"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/jackc/pgx/v5/pgxpool"
	"github.com/stretchr/testify/require"
	"google.golang.org/grpc/codes"

	paymentsv1 "github.com/tallyhq/tally/pkg/gen/tally/payments/v1"
	"github.com/tallyhq/tally/pkg/money"
	"github.com/tallyhq/tally/pkg/testenv"
	"github.com/tallyhq/tally/services/payments/internal/app"
	"github.com/tallyhq/tally/services/payments/internal/payment"
)

// sessionProxy is a real HTTP proxy in front of stripe-mock that records the Checkout Sessions
// tally creates and can make Stripe report a session in another state when read back.
type sessionProxy struct {
	URL string

	mu      sync.Mutex
	created []url.Values
	// state maps a session id to the fields Stripe reports for it.
	state map[string]map[string]any
	reads int
	// wallet, when set, is the card wallet of every payment intent's latest charge.
	wallet string
	// listed, when set, is the one session a listing of sessions returns (fields over stripe-mock's).
	listed map[string]any
}

func startSessionProxy(t *testing.T) *sessionProxy {
	t.Helper()
	target, err := url.Parse(testenv.StripeMock(t).URL())
	require.NoError(t, err)
	p := &sessionProxy{state: map[string]map[string]any{}}
	rp := httputil.NewSingleHostReverseProxy(target)
	rp.ModifyResponse = p.rewrite
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.Method == http.MethodPost && r.URL.Path == "/v1/checkout/sessions" {
			body, err := io.ReadAll(r.Body)
			if err != nil {
				http.Error(w, err.Error(), http.StatusBadRequest)
				return
			}
			form, err := url.ParseQuery(string(body))
			if err != nil {
				http.Error(w, err.Error(), http.StatusBadRequest)
				return
			}
			p.mu.Lock()
			p.created = append(p.created, form)
			p.mu.Unlock()
			r.Body = io.NopCloser(bytes.NewReader(body))
		}
		if r.Method == http.MethodGet && strings.HasPrefix(r.URL.Path, "/v1/checkout/sessions/") {
			p.mu.Lock()
			p.reads++
			p.mu.Unlock()
		}
		rp.ServeHTTP(w, r)
	}))
	t.Cleanup(srv.Close)
	p.URL = srv.URL
	return p
}

// rewrite makes a session read back report the state set for it (and its own id: stripe-mock
// answers with a fixture's).
func (p *sessionProxy) rewrite(resp *http.Response) error {
	if resp.Request.Method != http.MethodGet || resp.StatusCode != http.StatusOK {
		return nil
	}
	var id string
	var st map[string]any
	p.mu.Lock()
	switch path := resp.Request.URL.Path; {
	case strings.HasPrefix(path, "/v1/checkout/sessions/"):
		id = strings.TrimPrefix(path, "/v1/checkout/sessions/")
		st = p.state[id]
	case strings.HasPrefix(path, "/v1/payment_intents/") && p.wallet != "":
		id = strings.TrimPrefix(path, "/v1/payment_intents/")
		st = map[string]any{"latest_charge": map[string]any{"id": "ch_wallet", "object": "charge",
			"payment_method_details": map[string]any{"type": "card", "card": map[string]any{"wallet": map[string]any{"type": p.wallet}}}}}
	}
	listed := p.listed
	p.mu.Unlock()
	if resp.Request.URL.Path == "/v1/checkout/sessions" && listed != nil {
		return rewriteJSON(resp, func(obj map[string]any) {
			data, _ := obj["data"].([]any)
			if len(data) == 0 {
				return
			}
			first, _ := data[0].(map[string]any)
			for k, v := range listed {
				first[k] = v
			}
			obj["data"], obj["has_more"] = []any{first}, false
		})
	}
	if st == nil {
		return nil
	}
	return rewriteJSON(resp, func(obj map[string]any) {
		obj["id"] = id
		for k, v := range st {
			obj[k] = v
		}
	})
}

// report makes Stripe report the session with these fields from now on.
func (p *sessionProxy) report(sessionID string, fields map[string]any) {
	p.mu.Lock()
	defer p.mu.Unlock()
	p.state[sessionID] = fields
}

// rewriteJSON edits a JSON response body with edit.
func rewriteJSON(resp *http.Response, edit func(map[string]any)) error {
	body, err := io.ReadAll(resp.Body)
	if err != nil {
		return err
	}
	_ = resp.Body.Close()
	var obj map[string]any
	if err := json.Unmarshal(body, &obj); err != nil {
		return err
	}
	edit(obj)
	if body, err = json.Marshal(obj); err != nil {
		return err
	}
	resp.Body = io.NopCloser(bytes.NewReader(body))
	resp.ContentLength = int64(len(body))
	resp.Header.Set("Content-Length", strconv.Itoa(len(body)))
	return nil
}

// list makes a listing of sessions return one session with these fields.
func (p *sessionProxy) list(fields map[string]any) {
	p.mu.Lock()
	defer p.mu.Unlock()
	p.listed = fields
}

func (p *sessionProxy) setWallet(w string) {
	p.mu.Lock()
	defer p.mu.Unlock()
	p.wallet = w
}

func (p *sessionProxy) creations() []url.Values {
	p.mu.Lock()
	defer p.mu.Unlock()
	return append([]url.Values(nil), p.created...)
}

func (p *sessionProxy) sessionReads() int {
	p.mu.Lock()
	defer p.mu.Unlock()
	return p.reads
}

// expireNow moves the expiry of payment id an hour into the past, as if the member had walked
// away from the checkout an hour after its expiry.
func (e *env) expireNow(t *testing.T, id string) {
	t.Helper()
	pool, err := pgxpool.New(t.Context(), e.dbURL)
	require.NoError(t, err)
	defer pool.Close()
	tag, err := pool.Exec(t.Context(), `UPDATE payments.payments SET expires_at = now() - interval '1 hour' WHERE id = $1`, id)
	require.NoError(t, err)
	require.Equal(t, int64(1), tag.RowsAffected())
}

func TestStripeCheckoutSessionURLsAndExpiry(t *testing.T) {
	t.Parallel()
	proxy := startSessionProxy(t)
	e := start(t, options{stripe: true, stripeURL: proxy.URL})
	before := time.Now()
	cs := e.checkout(t, "acme", 20*unit)
	created := proxy.creations()
	require.Len(t, created, 1)
	form := created[0]
	require.Equal(t, consoleURL+"/billing?checkout=success&session_id={CHECKOUT_SESSION_ID}", form.Get("success_url"))
	require.Equal(t, consoleURL+"/billing?checkout=cancelled", form.Get("cancel_url"))
	expires, err := strconv.ParseInt(form.Get("expires_at"), 10, 64)
	require.NoError(t, err)
	require.InDelta(t, before.Add(payment.DefaultCheckoutExpiry).Unix(), expires, 5, "expires_at is sent, an hour ahead")
	require.GreaterOrEqual(t, time.Unix(expires, 0).Sub(before), payment.MinCheckoutExpiry)

	p := e.payment(t, "acme", cs.GetPaymentId())
	require.Equal(t, expires, p.GetExpiresAt().AsTime().Unix(), "the payment records the expiry Stripe was asked for")
}

// TestStripeRecordsTheCardWallet pays a Stripe session with Google Pay: the payment records method
// card and wallet google_pay, read from the payment intent's charge after the credit.
func TestStripeRecordsTheCardWallet(t *testing.T) {
	t.Parallel()
	proxy := startSessionProxy(t)
	proxy.setWallet("google_pay")
	e := start(t, options{stripe: true, stripeURL: proxy.URL})
	cs := e.checkout(t, "acme", 20*unit)
	e.mustDeliver(t, sessionEvent{typ: payment.EventCheckoutCompleted, paymentStatus: "paid", org: "acme", cs: cs, amountMinor: 2000}.payload(t),
		app.OutcomeProcessed)
	p := e.payment(t, "acme", cs.GetPaymentId())
	require.Equal(t, paymentsv1.PaymentStatus_PAYMENT_STATUS_SUCCEEDED, p.GetStatus())
	require.Equal(t, "card", p.GetPaymentMethod())
	require.Equal(t, "google_pay", p.GetPaymentWallet())
}

// TestStripeExpiredWebhookExpiresOnce is the checkout.session.expired path: the payment becomes
// EXPIRED once (a redelivery is a duplicate), and money reported for the session afterwards opens
// a review item instead of a grant.
func TestStripeExpiredWebhookExpiresOnce(t *testing.T) {
	t.Parallel()
	e := start(t, options{stripe: true})
	cs := e.checkout(t, "acme", 15*unit)
	expired := sessionEvent{id: "evt_expired_1", typ: payment.EventCheckoutExpired, paymentStatus: "unpaid", org: "acme", cs: cs}.payload(t)
	e.mustDeliver(t, expired, app.OutcomeProcessed)
	e.mustDeliver(t, expired, app.OutcomeDuplicate)
	p := e.payment(t, "acme", cs.GetPaymentId())
	require.Equal(t, paymentsv1.PaymentStatus_PAYMENT_STATUS_EXPIRED, p.GetStatus())
	require.False(t, p.GetUnderReview())

	late := sessionEvent{typ: payment.EventCheckoutCompleted, paymentStatus: "paid", org: "acme", cs: cs, amountMinor: 1500}.payload(t)
	e.mustDeliver(t, late, app.OutcomeProcessed)
	p = e.payment(t, "acme", cs.GetPaymentId())
	require.Equal(t, paymentsv1.PaymentStatus_PAYMENT_STATUS_EXPIRED, p.GetStatus(), "an expired payment stays expired")
	require.True(t, p.GetUnderReview())
	require.Empty(t, p.GetInvoiceNumber())
	require.Zero(t, nanos(t, e.balance(t, "acme").GetBalance()), "nothing credited")
	require.Zero(t, e.credits(t, "acme"))
	items := e.reviewItems(t)
	require.Len(t, items, 1)
	require.Equal(t, payment.ReviewPaidAfterExpiry, items[0].GetKind())
	require.Equal(t, cs.GetPaymentId(), items[0].GetPaymentId())
	require.Contains(t, items[0].GetDetail(), cs.GetSessionId())

	// An expired payment cannot be refunded either: nothing was credited.
	_, err := e.ops(t).RefundPayment(t.Context(), &paymentsv1.RefundPaymentRequest{PaymentId: cs.GetPaymentId(), Reason: "x", IdempotencyKey: "r-expired"})
	requireCode(t, err, codes.FailedPrecondition)
}

// TestStripeExpirySweep settles the sessions whose expired webhook never came by asking Stripe:
// an expired one expires, one Stripe still calls open stays pending, a paid one is credited, and
// a session not yet past its expiry is not even looked at.
func TestStripeExpirySweep(t *testing.T) {
	t.Parallel()
	proxy := startSessionProxy(t)
	e := start(t, options{stripe: true, stripeURL: proxy.URL})
	abandoned, lagging, paid, fresh := e.checkout(t, "acme", 10*unit), e.checkout(t, "acme", 11*unit), e.checkout(t, "acme", 12*unit),
		e.checkout(t, "acme", 13*unit)
	for _, cs := range []*paymentsv1.CreateCheckoutSessionResponse{abandoned, lagging, paid} {
		e.expireNow(t, cs.GetPaymentId())
	}
	proxy.report(abandoned.GetSessionId(), map[string]any{"status": "expired", "payment_status": "unpaid"})
	proxy.report(lagging.GetSessionId(), map[string]any{"status": "open", "payment_status": "unpaid"})
	// stripe-mock's fixture has neither our amount nor our metadata: the paid session read back
	// carries what Stripe would.
	proxy.report(paid.GetSessionId(), map[string]any{"status": "complete", "payment_status": "paid", "amount_total": 1200, "currency": "usd",
		"payment_intent": "pi_swept", "metadata": map[string]string{payment.MetaPaymentID: paid.GetPaymentId(), payment.MetaOrgID: "acme"}})
	rep, err := e.svc.SweepExpired(t.Context())
	require.NoError(t, err)
	require.Equal(t, app.ExpiryReport{Checked: 3, Expired: 1, Paid: 1, Open: 1}, rep)
	require.Equal(t, 3, proxy.sessionReads())

	status := func(cs *paymentsv1.CreateCheckoutSessionResponse) paymentsv1.PaymentStatus {
		return e.payment(t, "acme", cs.GetPaymentId()).GetStatus()
	}
	require.Equal(t, paymentsv1.PaymentStatus_PAYMENT_STATUS_EXPIRED, status(abandoned))
	require.Equal(t, paymentsv1.PaymentStatus_PAYMENT_STATUS_PENDING, status(lagging))
	require.Equal(t, paymentsv1.PaymentStatus_PAYMENT_STATUS_PENDING, status(fresh))
	require.Equal(t, paymentsv1.PaymentStatus_PAYMENT_STATUS_SUCCEEDED, status(paid), "the paid session whose webhook was lost is credited")
	require.Equal(t, 12*unit, nanos(t, e.balance(t, "acme").GetBalance()))

	// The next sweep looks at the lagging session only; a late expired webhook is harmless.
	rep, err = e.svc.SweepExpired(t.Context())
	require.NoError(t, err)
	require.Equal(t, app.ExpiryReport{Checked: 1, Open: 1}, rep)
	e.mustDeliver(t, sessionEvent{typ: payment.EventCheckoutExpired, paymentStatus: "unpaid", org: "acme", cs: abandoned}.payload(t),
		app.OutcomeProcessed)
	require.Equal(t, paymentsv1.PaymentStatus_PAYMENT_STATUS_EXPIRED, status(abandoned))
	require.Equal(t, 1, e.credits(t, "acme"))
}

// TestLocalExpirySweep is the test-mode page's abandoned checkout: past its expiry the sweep
// expires it, the page refuses to take the payment, and nothing is credited.
func TestLocalExpirySweep(t *testing.T) {
	t.Parallel()
	e := start(t, options{})
	abandoned, fresh := e.checkout(t, "acme", 10*unit), e.checkout(t, "acme", 10*unit)
	p := e.payment(t, "acme", abandoned.GetPaymentId())
	require.WithinDuration(t, time.Now().Add(payment.DefaultCheckoutExpiry), p.GetExpiresAt().AsTime(), 10*time.Second,
		"a local session expires like a Stripe one")
	e.expireNow(t, abandoned.GetPaymentId())

	// Past its expiry the page no longer takes the payment, even before the sweep ran.
	resp, err := noRedirectClient().PostForm(abandoned.GetUrl()+"/pay", url.Values{"method": {"card"}})
	require.NoError(t, err)
	require.NoError(t, resp.Body.Close())
	require.Equal(t, http.StatusConflict, resp.StatusCode)

	rep, err := e.svc.SweepExpired(t.Context())
	require.NoError(t, err)
	require.Equal(t, app.ExpiryReport{Checked: 1, Expired: 1}, rep)
	require.Equal(t, paymentsv1.PaymentStatus_PAYMENT_STATUS_EXPIRED, e.payment(t, "acme", abandoned.GetPaymentId()).GetStatus())
	require.Equal(t, paymentsv1.PaymentStatus_PAYMENT_STATUS_PENDING, e.payment(t, "acme", fresh.GetPaymentId()).GetStatus())
	page := openCheckoutPage(t, abandoned.GetUrl())
	require.Empty(t, page.buttons, "an expired session offers no way to pay")
	require.Zero(t, nanos(t, e.balance(t, "acme").GetBalance()))

	// The member can still pay the other session.
	payOnPage(t, fresh)
	require.Equal(t, 10*unit, nanos(t, e.balance(t, "acme").GetBalance()))
}

// TestLocalExpirySweepKeepsPaidSessions pays on the page and loses the webhook, then lets the
// session's expiry pass: the sweep leaves it alone (paid money never expires) and reconciliation
// credits it.
func TestLocalExpirySweepKeepsPaidSessions(t *testing.T) {
	t.Parallel()
	e := start(t, options{dropWebhooks: true})
	cs := e.checkout(t, "acme", 10*unit)
	payOnPage(t, cs)
	e.expireNow(t, cs.GetPaymentId())

	rep, err := e.svc.SweepExpired(t.Context())
	require.NoError(t, err)
	require.Zero(t, rep.Checked)
	require.Equal(t, paymentsv1.PaymentStatus_PAYMENT_STATUS_PENDING, e.payment(t, "acme", cs.GetPaymentId()).GetStatus())

	rrep, err := e.svc.Reconcile(t.Context())
	require.NoError(t, err)
	require.Equal(t, 1, rrep.Fulfilled)
	require.Equal(t, paymentsv1.PaymentStatus_PAYMENT_STATUS_SUCCEEDED, e.payment(t, "acme", cs.GetPaymentId()).GetStatus())
	require.Equal(t, 10*unit, nanos(t, e.balance(t, "acme").GetBalance()))
}

func TestGetCheckoutOptions(t *testing.T) {
	t.Parallel()
	e := start(t, options{})
	o, err := e.member(t, "acme", false).GetCheckoutOptions(t.Context(), &paymentsv1.GetCheckoutOptionsRequest{OrgId: "acme"})
	require.NoError(t, err)
	require.Equal(t, "USD", o.GetCurrencyCode())
	require.Equal(t, 5*unit, nanos(t, o.GetMinAmount()))
	require.Equal(t, 10_000*unit, nanos(t, o.GetMaxAmount()))
	require.Equal(t, int32(3), o.GetValidityMonths())
	var presets []money.Nanos
	for _, p := range o.GetPresets() {
		require.Equal(t, "USD", p.GetCurrencyCode())
		presets = append(presets, nanos(t, p))
	}
	require.Equal(t, []money.Nanos{10 * unit, 25 * unit, 50 * unit, 100 * unit}, presets)

	// The limits are the ones CreateCheckoutSession enforces: each bound is accepted, one nano
	// beyond it refused; every preset is accepted.
	m := e.member(t, "acme", true)
	for _, tc := range []struct {
		amount money.Nanos
		ok     bool
	}{
		{nanos(t, o.GetMinAmount()), true}, {nanos(t, o.GetMaxAmount()), true},
		{nanos(t, o.GetMinAmount()) - 10_000_000, false}, {nanos(t, o.GetMaxAmount()) + 10_000_000, false},
	} {
		_, err := m.CreateCheckoutSession(t.Context(), &paymentsv1.CreateCheckoutSessionRequest{OrgId: "acme", Amount: usd(tc.amount)})
		if tc.ok {
			require.NoError(t, err, tc.amount.Display())
		} else {
			requireCode(t, err, codes.InvalidArgument)
		}
	}
	for _, p := range o.GetPresets() {
		_, err := m.CreateCheckoutSession(t.Context(), &paymentsv1.CreateCheckoutSessionRequest{OrgId: "acme", Amount: p})
		require.NoError(t, err)
	}

	// The same callers as CreateCheckoutSession: the organization's members and admins.
	_, err = e.member(t, "globex", false).GetCheckoutOptions(t.Context(), &paymentsv1.GetCheckoutOptionsRequest{OrgId: "acme"})
	requireCode(t, err, codes.PermissionDenied)
	_, err = e.ops(t).GetCheckoutOptions(t.Context(), &paymentsv1.GetCheckoutOptionsRequest{OrgId: "acme"})
	requireCode(t, err, codes.PermissionDenied)
	_, err = e.public.GetCheckoutOptions(t.Context(), &paymentsv1.GetCheckoutOptionsRequest{OrgId: "acme"})
	requireCode(t, err, codes.Unauthenticated)
}

// TestExpirySweepKeepsToItsMode runs a test-mode service on the database of a Stripe-mode one: it
// never expires a Stripe payment on its own record (only Stripe can say a session expired).
func TestExpirySweepKeepsToItsMode(t *testing.T) {
	t.Parallel()
	live := start(t, options{stripe: true})
	cs := live.checkout(t, "acme", 10*unit)
	live.expireNow(t, cs.GetPaymentId())
	local := start(t, options{ledger: live.ledger, dbURL: live.dbURL})
	rep, err := local.svc.SweepExpired(t.Context())
	require.NoError(t, err)
	require.Zero(t, rep.Checked)
	require.Equal(t, paymentsv1.PaymentStatus_PAYMENT_STATUS_PENDING, live.payment(t, "acme", cs.GetPaymentId()).GetStatus())
}

// TestReconciliationReviewsPaidAfterExpiryOnce has Stripe list as paid a session tally saw
// expire: reconciliation opens one review item, never a credit, and does not reopen it on the
// next passes once ops resolved it.
func TestReconciliationReviewsPaidAfterExpiryOnce(t *testing.T) {
	t.Parallel()
	proxy := startSessionProxy(t)
	e := start(t, options{stripe: true, stripeURL: proxy.URL})
	cs := e.checkout(t, "acme", 10*unit)
	e.mustDeliver(t, sessionEvent{typ: payment.EventCheckoutExpired, paymentStatus: "unpaid", org: "acme", cs: cs}.payload(t), app.OutcomeProcessed)
	proxy.list(map[string]any{"id": cs.GetSessionId(), "status": "complete", "payment_status": "paid", "amount_total": 1000, "currency": "usd",
		"created": time.Now().Unix(), "metadata": map[string]string{payment.MetaPaymentID: cs.GetPaymentId(), payment.MetaOrgID: "acme"}})

	_, err := e.svc.Reconcile(t.Context())
	require.NoError(t, err)
	items := e.reviewItems(t)
	require.Len(t, items, 1)
	require.Equal(t, payment.ReviewPaidAfterExpiry, items[0].GetKind())
	_, err = e.ops(t).ResolveReviewItem(t.Context(), &paymentsv1.ResolveReviewItemRequest{ReviewItemId: items[0].GetId(), Resolution: "refunded at Stripe"})
	require.NoError(t, err)

	for range 2 {
		_, err = e.svc.Reconcile(t.Context())
		require.NoError(t, err)
	}
	all, err := e.ops(t).ListReviewItems(t.Context(), &paymentsv1.ListReviewItemsRequest{IncludeResolved: true})
	require.NoError(t, err)
	require.Len(t, all.GetItems(), 1, "resolved, not reopened")
	require.Equal(t, paymentsv1.PaymentStatus_PAYMENT_STATUS_EXPIRED, e.payment(t, "acme", cs.GetPaymentId()).GetStatus())
	require.Zero(t, e.credits(t, "acme"))
}

// TestExpiryRacesPaymentSafely delivers, for each of several sessions, an expired event and a
// paid one at the same time (Stripe never sends both; a clock-skewed sweep could race a late
// payment the same way). Whichever wins, a payment is either credited once and succeeded, or
// expired with nothing credited: never both, never twice.
func TestExpiryRacesPaymentSafely(t *testing.T) {
	t.Parallel()
	e := start(t, options{stripe: true})
	const n = 8
	sessions := make([]*paymentsv1.CreateCheckoutSessionResponse, n)
	for i := range sessions {
		sessions[i] = e.checkout(t, "acme", 10*unit)
	}
	var wg sync.WaitGroup
	for _, cs := range sessions {
		for _, ev := range [][]byte{
			sessionEvent{typ: payment.EventCheckoutExpired, paymentStatus: "unpaid", org: "acme", cs: cs}.payload(t),
			sessionEvent{typ: payment.EventCheckoutCompleted, paymentStatus: "paid", org: "acme", cs: cs, amountMinor: 1000}.payload(t),
		} {
			wg.Go(func() {
				resp, err := e.deliver(t, ev)
				if err != nil || resp.GetOutcome() != app.OutcomeProcessed {
					t.Errorf("delivery: outcome %q, err %v", resp.GetOutcome(), err)
				}
			})
		}
	}
	wg.Wait()
	succeeded := 0
	for _, cs := range sessions {
		p := e.payment(t, "acme", cs.GetPaymentId())
		switch p.GetStatus() {
		case paymentsv1.PaymentStatus_PAYMENT_STATUS_SUCCEEDED:
			succeeded++
			require.NotEmpty(t, p.GetInvoiceNumber())
		case paymentsv1.PaymentStatus_PAYMENT_STATUS_EXPIRED:
			require.Empty(t, p.GetInvoiceNumber())
			require.True(t, p.GetUnderReview(), "the money reported for it is reviewed")
		default:
			require.Failf(t, "unsettled payment", "%s is %s", p.GetId(), p.GetStatus())
		}
	}
	require.Equal(t, succeeded, e.credits(t, "acme"), "one credit per succeeded payment, none for the expired ones")
	require.Equal(t, money.Nanos(succeeded)*10*unit, nanos(t, e.balance(t, "acme").GetBalance()))
}
