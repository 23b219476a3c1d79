package test

import (
	"bytes"
	"cmp"
	"context"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"os"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/grpc-ecosystem/grpc-gateway/v2/runtime"
	"github.com/jackc/pgx/v5/pgxpool"
	"github.com/ledongthuc/pdf"
	"github.com/stretchr/testify/require"
	moneypb "google.golang.org/genproto/googleapis/type/money"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"

	"github.com/tallyhq/tally/pkg/auth"
	ledgerv1 "github.com/tallyhq/tally/pkg/gen/tally/ledger/v1"
	paymentsv1 "github.com/tallyhq/tally/pkg/gen/tally/payments/v1"
	"github.com/tallyhq/tally/pkg/money"
	"github.com/tallyhq/tally/pkg/rpcclient"
	"github.com/tallyhq/tally/pkg/testenv"
	"github.com/tallyhq/tally/services/ledger/ledgertest"
	"github.com/tallyhq/tally/services/payments/internal/payment"
	"github.com/tallyhq/tally/services/payments/internal/service"
	"github.com/tallyhq/tally/services/payments/internal/stripeevent"
	"github.com/tallyhq/tally/services/payments/paymentstest"
)

const (
	webhookSecret = paymentstest.WebhookSecret
	unit          = money.Nanos(money.NanosPerUnit)
	consoleURL    = paymentstest.ConsoleURL
	cancelURL     = consoleURL + "/billing?checkout=cancelled"
)

// successURL is where Checkout returns a member who paid session sessionID.
func successURL(sessionID string) string {
	return consoleURL + "/billing?checkout=success&session_id=" + sessionID
}

// options select how the payments service under test runs.
type options struct {
	// stripe runs against stripe-mock; otherwise the local test-mode checkout is used.
	stripe bool
	// dropWebhooks makes the test-mode webhook endpoint lose every delivery.
	dropWebhooks bool
	// ledger shares a ledger between services; a fresh one when nil.
	ledger *ledgertest.Ledger
	// dbURL shares a database between services; a fresh one when empty.
	dbURL string
	// stripeURL is where Stripe API calls go; stripe-mock when empty.
	stripeURL string
	// logs, when set, records every log message of the service.
	logs *logRecorder
	// ledgerAddr is where payments reaches the ledger (a fault proxy); ledger.Addr when empty.
	ledgerAddr string
	// retry is the retry worker's interval and first backoff; the production defaults when zero.
	retry time.Duration
	// now is the business clock; time.Now when nil.
	now func() time.Time
	// configure edits the service's configuration last.
	configure func(*service.Config)
}

// logRecorder is a slog.Handler that records the messages logged at any level and passes errors
// on to stderr.
type logRecorder struct {
	mu   sync.Mutex
	msgs map[string]int
	next slog.Handler
}

func newLogRecorder() *logRecorder {
	return &logRecorder{msgs: map[string]int{}, next: slog.NewTextHandler(os.Stderr, &slog.HandlerOptions{Level: slog.LevelError})}
}

func (l *logRecorder) Enabled(context.Context, slog.Level) bool { return true }

func (l *logRecorder) Handle(ctx context.Context, r slog.Record) error {
	l.mu.Lock()
	l.msgs[r.Message]++
	l.mu.Unlock()
	if l.next.Enabled(ctx, r.Level) {
		return l.next.Handle(ctx, r)
	}
	return nil
}

func (l *logRecorder) WithAttrs([]slog.Attr) slog.Handler { return l }
func (l *logRecorder) WithGroup(string) slog.Handler      { return l }

// count is how often msg was logged.
func (l *logRecorder) count(msg string) int {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.msgs[msg]
}

// env is a running payments service with its ledger.
type env struct {
	t         *testing.T
	svc       *paymentstest.Payments
	addr      string
	httpURL   string
	ledger    *ledgertest.Ledger
	ledgerOps ledgerv1.LedgerServiceClient
	dbURL     string
	public    paymentsv1.PaymentsServiceClient
	delivered atomic.Int64
	// hookURL is the webhook endpoint, answering like the gateway's route.
	hookURL string
	// stop stops the service before the test ends (a restart); calling it twice is fine.
	stop func()
	// sqlPool reads the database directly (see sql).
	sqlOnce sync.Once
	sqlPool *pgxpool.Pool
}

func start(t *testing.T, o options) *env {
	t.Helper()
	e := &env{t: t, ledger: o.ledger}
	if e.ledger == nil {
		e.ledger = ledgertest.Start(t, ledgertest.Options{})
	}
	e.ledgerOps = e.ledger.Client(t, ledgertest.OpsToken(t))

	// The webhook endpoint mirrors the gateway: raw body and Stripe-Signature to the RPC. It
	// counts deliveries and can lose them all.
	var public atomic.Pointer[paymentsv1.PaymentsServiceClient]
	hook := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if o.dropWebhooks || public.Load() == nil {
			http.Error(w, "lost", http.StatusServiceUnavailable)
			return
		}
		body, err := io.ReadAll(r.Body)
		if err != nil {
			http.Error(w, err.Error(), http.StatusBadRequest)
			return
		}
		_, err = (*public.Load()).HandleStripeWebhook(r.Context(), &paymentsv1.HandleStripeWebhookRequest{Payload: body, Signature: r.Header.Get("Stripe-Signature")})
		if err == nil {
			e.delivered.Add(1)
			w.WriteHeader(http.StatusOK)
			return
		}
		// The gateway's mapping: InvalidArgument 400, Unavailable 503, Internal 500...
		http.Error(w, err.Error(), runtime.HTTPStatusFromCode(status.Code(err)))
	}))
	t.Cleanup(hook.Close)
	e.hookURL = hook.URL

	var logger *slog.Logger
	if o.logs != nil {
		logger = slog.New(o.logs)
	}
	svc, err := paymentstest.New(t.Context(), paymentstest.Options{
		Ledger: e.ledger, LedgerAddr: o.ledgerAddr, DatabaseURL: cmp.Or(o.dbURL, testenv.PostgresURL(t)),
		Stripe: o.stripe, StripeURL: cmp.Or(o.stripeURL, stripeMockURL(t, o.stripe)), WebhookURL: hook.URL, Logger: logger,
		Now: o.now,
		Configure: func(c *service.Config) {
			c.RetryInterval, c.RetryBackoff, c.RetryMaxBackoff = o.retry, o.retry, 4*o.retry
			if o.configure != nil {
				o.configure(c)
			}
		},
	})
	require.NoError(t, err)
	e.svc, e.addr, e.httpURL, e.dbURL = svc, svc.Addr, svc.HTTPURL, svc.DatabaseURL
	e.public = e.client(t, "")
	public.Store(&e.public)
	e.stop = func() { require.NoError(t, svc.Stop()) }
	t.Cleanup(e.stop)
	return e
}

// stripeMockURL is a private stripe-mock's URL when stripe is set.
func stripeMockURL(t *testing.T, stripe bool) string {
	if !stripe {
		return ""
	}
	return testenv.StripeMock(t).URL()
}

func (e *env) client(t *testing.T, token string) paymentsv1.PaymentsServiceClient {
	t.Helper()
	conn, err := rpcclient.Dial(e.addr, token)
	require.NoError(t, err)
	t.Cleanup(func() { _ = conn.Close() })
	return paymentsv1.NewPaymentsServiceClient(conn)
}

// member is a client acting as a member of org (role admin when admin is set).
func (e *env) member(t *testing.T, org string, admin bool) paymentsv1.PaymentsServiceClient {
	role := auth.RoleMember
	if admin {
		role = auth.RoleAdmin
	}
	return e.client(t, ledgertest.Token(t, auth.Claims{Subject: "user-" + org, OrgID: org, Name: "Ann " + org,
		Email: "ann@" + org + ".test", Roles: []auth.Role{role}}))
}

// memberToken is the token of org's member.
func memberToken(t *testing.T, org string) string {
	return ledgertest.Token(t, auth.Claims{Subject: "user-" + org, OrgID: org, Name: "Ann " + org,
		Email: "ann@" + org + ".test", Roles: []auth.Role{auth.RoleMember}})
}

func (e *env) ops(t *testing.T) paymentsv1.PaymentsServiceClient {
	return e.client(t, ledgertest.OpsToken(t))
}

func usd(n money.Nanos) *moneypb.Money { return money.ToProto(n, "USD") }

// checkout starts a top-up of amount for org as its member.
func (e *env) checkout(t *testing.T, org string, amount money.Nanos) *paymentsv1.CreateCheckoutSessionResponse {
	t.Helper()
	resp, err := e.member(t, org, false).CreateCheckoutSession(t.Context(), &paymentsv1.CreateCheckoutSessionRequest{OrgId: org, Amount: usd(amount)})
	require.NoError(t, err)
	require.NotEmpty(t, resp.GetSessionId())
	require.NotEmpty(t, resp.GetUrl())
	return resp
}

// event builds a signed-to-be Stripe event body about a session of org.
type sessionEvent struct {
	id, typ, paymentStatus string
	org                    string
	cs                     *paymentsv1.CreateCheckoutSessionResponse
	amountMinor            int64
}

func (s sessionEvent) payload(t *testing.T) []byte {
	t.Helper()
	status := "complete"
	switch s.typ {
	case payment.EventCheckoutExpired:
		status = "expired"
	}
	body, err := stripeevent.EventPayload(s.id, s.typ, time.Now(), stripeevent.SessionObject{
		ID: s.cs.GetSessionId(), Object: "checkout.session", Status: status, PaymentStatus: s.paymentStatus, Mode: "payment",
		AmountTotal: s.amountMinor, Currency: "usd", PaymentIntent: "pi_" + s.cs.GetPaymentId()[:8],
		PaymentMethodTypes: []string{"card"}, ClientReferenceID: s.org,
		Metadata: map[string]string{payment.MetaPaymentID: s.cs.GetPaymentId(), payment.MetaOrgID: s.org},
	})
	require.NoError(t, err)
	return body
}

// deliver sends payload signed with the test secret now, as Stripe would.
func (e *env) deliver(t *testing.T, payload []byte) (*paymentsv1.HandleStripeWebhookResponse, error) {
	t.Helper()
	return e.deliverSigned(t, payload, stripeevent.Sign(payload, webhookSecret, time.Now()))
}

// deliverSigned delivers like Stripe: a retryable failure (Unavailable) is retried.
func (e *env) deliverSigned(t *testing.T, payload []byte, sig string) (*paymentsv1.HandleStripeWebhookResponse, error) {
	t.Helper()
	// Until the answer is no longer Unavailable, or for at most a few seconds (the last answer is
	// returned either way), every 20ms.
	deadline := time.Now().Add(4 * time.Second)
	retry := time.NewTicker(20 * time.Millisecond)
	defer retry.Stop()
	for {
		resp, err := e.public.HandleStripeWebhook(t.Context(), &paymentsv1.HandleStripeWebhookRequest{Payload: payload, Signature: sig})
		if status.Code(err) != codes.Unavailable || time.Now().After(deadline) {
			return resp, err
		}
		<-retry.C
	}
}

func (e *env) mustDeliver(t *testing.T, payload []byte, outcome string) {
	t.Helper()
	resp, err := e.deliver(t, payload)
	require.NoError(t, err)
	require.Equal(t, outcome, resp.GetOutcome())
}

func (e *env) balance(t *testing.T, org string) *ledgerv1.GetBalanceResponse {
	t.Helper()
	b, err := e.ledgerOps.GetBalance(t.Context(), &ledgerv1.GetBalanceRequest{OrgId: org})
	require.NoError(t, err)
	return b
}

func nanos(t *testing.T, m *moneypb.Money) money.Nanos {
	t.Helper()
	v, err := money.FromProto(m)
	require.NoError(t, err)
	return v.Nanos
}

// credits counts the ledger credits of org.
func (e *env) credits(t *testing.T, org string) int {
	t.Helper()
	list, err := e.ledgerOps.ListTransactions(t.Context(), &ledgerv1.ListTransactionsRequest{OrgId: org, PageSize: 500})
	require.NoError(t, err)
	n := 0
	for _, tx := range list.GetTransactions() {
		if tx.GetKind() == ledgerv1.TransactionKind_TRANSACTION_KIND_CREDIT {
			n++
		}
	}
	return n
}

func (e *env) payment(t *testing.T, org, id string) *paymentsv1.Payment {
	t.Helper()
	resp, err := e.ops(t).GetPayment(t.Context(), &paymentsv1.GetPaymentRequest{OrgId: org, PaymentId: id})
	require.NoError(t, err)
	return resp.GetPayment()
}

func (e *env) reviewItems(t *testing.T) []*paymentsv1.ReviewItem {
	t.Helper()
	resp, err := e.ops(t).ListReviewItems(t.Context(), &paymentsv1.ListReviewItemsRequest{})
	require.NoError(t, err)
	return resp.GetItems()
}

func requireCode(t *testing.T, err error, code codes.Code) {
	t.Helper()
	require.Error(t, err)
	require.Equal(t, code.String(), status.Code(err).String(), "error: %v", err)
}

// pdfText checks that b is a well-formed PDF and returns its text.
func pdfText(t *testing.T, b []byte) string {
	t.Helper()
	require.True(t, bytes.HasPrefix(b, []byte("%PDF-")), "not a PDF")
	r, err := pdf.NewReader(bytes.NewReader(b), int64(len(b)))
	require.NoError(t, err)
	require.GreaterOrEqual(t, r.NumPage(), 1)
	txt, err := r.GetPlainText()
	require.NoError(t, err)
	var buf bytes.Buffer
	_, err = io.Copy(&buf, txt)
	require.NoError(t, err)
	return buf.String()
}

// noRedirectClient is an HTTP client that shows redirects instead of following them.
func noRedirectClient() *http.Client {
	return &http.Client{Timeout: 30 * time.Second, CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }}
}

func year() string { return fmt.Sprint(time.Now().UTC().Year()) }
