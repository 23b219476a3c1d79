// Package service assembles the payments service (store, ledger client, checkout processor,
// webhook verifier, reconciliation, gRPC server and the HTTP listener of the test-mode checkout)
// from its configuration. cmd/payments runs it; tests start it in-process.
package service

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"strings"
	"time"

	"google.golang.org/grpc"
	"google.golang.org/grpc/backoff"

	"github.com/tallyhq/tally/pkg/config"
	notificationsv1 "github.com/tallyhq/tally/pkg/gen/tally/notifications/v1"
	paymentsv1 "github.com/tallyhq/tally/pkg/gen/tally/payments/v1"
	"github.com/tallyhq/tally/pkg/ledgerclient"
	"github.com/tallyhq/tally/pkg/money"
	"github.com/tallyhq/tally/pkg/pg"
	"github.com/tallyhq/tally/pkg/rpcclient"
	"github.com/tallyhq/tally/pkg/server"
	"github.com/tallyhq/tally/pkg/telemetry"
	"github.com/tallyhq/tally/services/payments/internal/app"
	"github.com/tallyhq/tally/services/payments/internal/grpcapi"
	"github.com/tallyhq/tally/services/payments/internal/invoice"
	"github.com/tallyhq/tally/services/payments/internal/localcheckout"
	"github.com/tallyhq/tally/services/payments/internal/notifyclient"
	"github.com/tallyhq/tally/services/payments/internal/payment"
	"github.com/tallyhq/tally/services/payments/internal/store"
	"github.com/tallyhq/tally/services/payments/internal/stripeapi"
	"github.com/tallyhq/tally/services/payments/internal/stripeevent"
	"github.com/tallyhq/tally/services/payments/migrations"
)

// DevWebhookSecret signs the local test-mode deliveries when STRIPE_WEBHOOK_SECRET is unset. It
// is public, so it is accepted in test mode only.
const DevWebhookSecret = "whsec_tally_dev_secret"

// TestModeKey asks for the local test-mode checkout (no Stripe keys, nothing charged). It
// defaults to true in development (TALLY_ENV=development) when STRIPE_SECRET_KEY is unset, and to
// false otherwise.
const TestModeKey = "TALLY_PAYMENTS_TEST_MODE"

// Config is the payments service's configuration; Load reads it from the environment.
type Config struct {
	GRPCAddr    string
	MetricsAddr string
	// HTTPAddr serves the test-mode checkout page (and /healthz) in test mode; empty turns it
	// off. Outside test mode there is no HTTP listener.
	HTTPAddr string
	// PublicURL is where browsers reach HTTPAddr.
	PublicURL   string
	DatabaseURL string
	// SkipMigrations starts without applying the migrations (TALLY_MIGRATE_ON_START=false): the
	// service then refuses to start unless `<binary> migrate` applied them all.
	SkipMigrations bool
	DBMaxConns     int32
	Auth           server.AuthConfig
	// LedgerAddr is the ledger, called with the service's own identity (service:payments, see Auth).
	LedgerAddr string
	// NotificationsAddr is the notifications service, which emails the admins about failed
	// auto-recharges (TALLY_NOTIFICATIONS_ADDR); empty sends no such email (they stay logged).
	NotificationsAddr string
	// TestMode runs checkouts on the local test-mode page (nothing charged) instead of Stripe
	// Checkout; it excludes StripeSecretKey. Outside test mode StripeSecretKey and
	// StripeWebhookSecret are required.
	TestMode            bool
	StripeSecretKey     string
	StripeWebhookSecret string
	// StripeAPIURL overrides Stripe's API base URL (stripe-mock).
	StripeAPIURL     string
	WebhookTolerance time.Duration
	// WebhookURL receives the test-mode checkout's deliveries (the gateway's webhook route).
	WebhookURL string
	// ConsoleURL is the web console's base URL (TALLY_CONSOLE_URL): Checkout returns members to
	// its Billing page (SuccessURL, CancelURL).
	ConsoleURL string
	TopUpMin   money.Nanos
	TopUpMax   money.Nanos
	// TopUpPresets are the amounts the Add Credits dialog suggests (TALLY_TOPUP_PRESETS); nil takes
	// the defaults that fit the limits.
	TopUpPresets     []money.Nanos
	MaxRequestAmount money.Nanos // per request (TALLY_MAX_REQUEST_AMOUNT); zero is payment.DefaultMaxRequestAmount
	// CheckoutExpiry is how long a Checkout Session stays payable (TALLY_CHECKOUT_EXPIRY, 30m to
	// 24h); zero is payment.DefaultCheckoutExpiry.
	CheckoutExpiry time.Duration
	// CreditValidity is the ledger's credit validity (TALLY_CREDIT_VALIDITY, the ledger's own
	// setting), shown by GetCheckoutOptions; zero is three months.
	CreditValidity config.Period
	// ExpirySweepInterval is how often abandoned checkouts past their expiry are settled; zero is
	// app.DefaultExpirySweepEvery.
	ExpirySweepInterval time.Duration
	// PendingChargeCheck is how long an automatic charge Stripe left processing waits for its
	// webhook before its PaymentIntent is looked up (TALLY_PAYMENTS_PENDING_CHARGE_CHECK); zero is
	// app.DefaultPendingChargeCheck.
	PendingChargeCheck time.Duration
	// RechargeRuleRefresh is how often the recharge trigger reloads the enabled rules
	// (TALLY_PAYMENTS_RECHARGE_RULE_REFRESH); zero is app.DefaultRuleRefresh.
	RechargeRuleRefresh time.Duration
	ReconcileInterval   time.Duration
	ReconcileLookback   time.Duration
	// Replica names this replica in the reconciliation passes it claims (one replica runs each
	// pass); empty is host:pid.
	Replica string
	// RetryInterval is how often the retry worker looks for due work (paid payments not credited
	// yet, pending refunds); RetryBackoff is the wait after a first failed attempt, doubling up to
	// RetryMaxBackoff. WorkLease is how long a request or a worker owns a fulfilment or refund it
	// works on before another may take it over. Zero values take the defaults.
	RetryInterval   time.Duration
	RetryBackoff    time.Duration
	RetryMaxBackoff time.Duration
	WorkLease       time.Duration
	// LedgerTimeout and StripeTimeout are the deadlines of each ledger and Stripe call (zero: the
	// defaults).
	LedgerTimeout time.Duration
	StripeTimeout time.Duration
	SellerName    string
	SellerAddress string
	SellerTaxID   string
	SellerEmail   string
	// HTTPListener, when set, is used instead of listening on HTTPAddr (tests use 127.0.0.1:0).
	// Outside test mode it is closed unused.
	HTTPListener net.Listener
	// HTTPLimits bound the requests of the HTTP listener (TALLY_HTTP_*); zero fields take the defaults.
	HTTPLimits server.HTTPLimits
	// Now is the business clock of the app, the store and the test-mode checkout (expiries,
	// backoffs, leases, payment and invoice times); nil is time.Now. Timeouts stay real-time.
	Now func() time.Time
}

// Load reads the configuration from e (see the README's configuration table).
func Load(e *config.Env) (Config, error) {
	c := Config{
		GRPCAddr:            e.String("TALLY_PAYMENTS_GRPC_ADDR", ":9093"),
		MetricsAddr:         e.String("TALLY_PAYMENTS_METRICS_ADDR", ""),
		HTTPAddr:            e.String("TALLY_PAYMENTS_HTTP_ADDR", ":8093"),
		PublicURL:           e.String("TALLY_PAYMENTS_PUBLIC_URL", "http://localhost:8093"),
		DatabaseURL:         e.Required("DATABASE_URL"),
		SkipMigrations:      !e.Bool("TALLY_MIGRATE_ON_START", true),
		DBMaxConns:          int32(e.Int("TALLY_PAYMENTS_DB_MAX_CONNS", 10)),
		Auth:                server.LoadAuthConfig(e),
		LedgerAddr:          e.String("TALLY_LEDGER_ADDR", "localhost:9091"),
		NotificationsAddr:   e.String("TALLY_NOTIFICATIONS_ADDR", "localhost:9095"),
		StripeSecretKey:     e.String("STRIPE_SECRET_KEY", ""),
		StripeWebhookSecret: e.String("STRIPE_WEBHOOK_SECRET", ""),
		StripeAPIURL:        e.String("TALLY_STRIPE_API_URL", ""),
		WebhookTolerance:    e.Duration("TALLY_STRIPE_WEBHOOK_TOLERANCE", 5*time.Minute),
		WebhookURL:          e.String("TALLY_WEBHOOK_URL", "http://localhost:8080/v1/webhooks/stripe"),
		ConsoleURL:          e.ConsoleURL(),
		CheckoutExpiry:      e.Duration("TALLY_CHECKOUT_EXPIRY", payment.DefaultCheckoutExpiry),
		CreditValidity:      e.Period("TALLY_CREDIT_VALIDITY", config.Period{Months: 3}),
		ExpirySweepInterval: e.Duration("TALLY_PAYMENTS_EXPIRY_SWEEP_INTERVAL", app.DefaultExpirySweepEvery),
		PendingChargeCheck:  e.Duration("TALLY_PAYMENTS_PENDING_CHARGE_CHECK", app.DefaultPendingChargeCheck),
		RechargeRuleRefresh: e.Duration("TALLY_PAYMENTS_RECHARGE_RULE_REFRESH", app.DefaultRuleRefresh),
		ReconcileInterval:   e.Duration("TALLY_RECONCILE_INTERVAL", 5*time.Minute),
		ReconcileLookback:   e.Duration("TALLY_RECONCILE_LOOKBACK", 72*time.Hour),
		Replica:             e.String("TALLY_PAYMENTS_REPLICA", ""),
		RetryInterval:       e.Duration("TALLY_PAYMENTS_RETRY_INTERVAL", app.DefaultRetryEvery),
		RetryBackoff:        e.Duration("TALLY_PAYMENTS_RETRY_BACKOFF", app.DefaultBackoff),
		RetryMaxBackoff:     e.Duration("TALLY_PAYMENTS_RETRY_MAX_BACKOFF", app.DefaultMaxBackoff),
		WorkLease:           e.Duration("TALLY_PAYMENTS_WORK_LEASE", app.DefaultLease),
		LedgerTimeout:       e.Duration("TALLY_PAYMENTS_LEDGER_TIMEOUT", ledgerclient.DefaultTimeout),
		StripeTimeout:       e.Duration("TALLY_STRIPE_TIMEOUT", stripeapi.DefaultTimeout),
		SellerName:          e.String("TALLY_SELLER_NAME", "Tally"),
		SellerAddress:       e.String("TALLY_SELLER_ADDRESS", ""),
		SellerTaxID:         e.String("TALLY_SELLER_TAX_ID", ""),
		SellerEmail:         e.String("TALLY_SELLER_EMAIL", ""),
	}
	minS, maxS := e.String("TALLY_TOPUP_MIN", "5"), e.String("TALLY_TOPUP_MAX", "10000")
	presetsS := e.String("TALLY_TOPUP_PRESETS", "")
	limitS := e.String(payment.MaxRequestAmountKey, payment.DefaultMaxRequestAmount.Decimal())
	c.TestMode = e.Bool(TestModeKey, e.Development() && c.StripeSecretKey == "")
	var errs []error
	var err error
	if c.HTTPLimits, err = server.LoadHTTPLimits(e); err != nil {
		errs = append(errs, err)
	}
	if err := e.Err(); err != nil {
		errs = append(errs, err)
	}
	if c.MaxRequestAmount, err = money.ParseDecimal(limitS); err != nil {
		errs = append(errs, fmt.Errorf("%s: %w", payment.MaxRequestAmountKey, err))
	}
	if c.TopUpMin, err = money.ParseDecimal(minS); err != nil {
		errs = append(errs, fmt.Errorf("TALLY_TOPUP_MIN: %w", err))
	}
	if c.TopUpMax, err = money.ParseDecimal(maxS); err != nil {
		errs = append(errs, fmt.Errorf("TALLY_TOPUP_MAX: %w", err))
	}
	if presetsS != "" {
		for _, f := range strings.Split(presetsS, ",") {
			n, err := money.ParseDecimal(strings.TrimSpace(f))
			if err != nil {
				errs = append(errs, fmt.Errorf("TALLY_TOPUP_PRESETS: %w", err))
				break
			}
			c.TopUpPresets = append(c.TopUpPresets, n)
		}
	}
	if c.TestMode && c.StripeWebhookSecret == "" {
		c.StripeWebhookSecret = DevWebhookSecret
	}
	if err := c.checkMode(); err != nil {
		errs = append(errs, err)
	}
	if err := errors.Join(errs...); err != nil {
		return Config{}, err
	}
	return c, c.validate()
}

// checkMode refuses to run outside test mode without both Stripe secrets (fail closed), and the
// public development webhook secret outside test mode.
func (c Config) checkMode() error {
	switch {
	case c.TestMode && c.StripeSecretKey != "":
		return fmt.Errorf("%s=true and STRIPE_SECRET_KEY exclude each other: unset one of them", TestModeKey)
	case c.TestMode:
		return nil
	case c.StripeSecretKey == "" && c.StripeWebhookSecret == "":
		return fmt.Errorf("STRIPE_SECRET_KEY and STRIPE_WEBHOOK_SECRET are required (or set %s=true for the local test-mode checkout that charges nothing)",
			TestModeKey)
	case c.StripeSecretKey == "":
		return fmt.Errorf("STRIPE_SECRET_KEY is required (or set %s=true for the local test-mode checkout that charges nothing)", TestModeKey)
	case c.StripeWebhookSecret == "":
		return errors.New("STRIPE_WEBHOOK_SECRET is required when STRIPE_SECRET_KEY is set")
	case c.StripeWebhookSecret == DevWebhookSecret:
		return fmt.Errorf("STRIPE_WEBHOOK_SECRET must not be the public development secret outside test mode (%s)", TestModeKey)
	}
	return nil
}

func (c Config) validate() error {
	switch {
	case c.TopUpMin <= 0 || c.TopUpMax < c.TopUpMin:
		return fmt.Errorf("TALLY_TOPUP_MIN and TALLY_TOPUP_MAX must satisfy 0 < min <= max")
	case c.MaxRequestAmount <= 0:
		return fmt.Errorf("%s must be positive", payment.MaxRequestAmountKey)
	case c.TopUpMax > c.MaxRequestAmount:
		return fmt.Errorf("TALLY_TOPUP_MAX must not exceed %s (%s)", payment.MaxRequestAmountKey, c.MaxRequestAmount.Decimal())
	case c.TopUpPresets != nil && payment.CheckPresets(c.TopUpPresets, c.TopUpMin, c.TopUpMax) != nil:
		return fmt.Errorf("TALLY_TOPUP_PRESETS: %w", payment.CheckPresets(c.TopUpPresets, c.TopUpMin, c.TopUpMax))
	case c.CheckoutExpiry != 0 && payment.CheckCheckoutExpiry(c.CheckoutExpiry) != nil:
		return fmt.Errorf("TALLY_CHECKOUT_EXPIRY: %w", payment.CheckCheckoutExpiry(c.CheckoutExpiry))
	case c.PendingChargeCheck < 0 || c.RechargeRuleRefresh < 0:
		return errors.New("TALLY_PAYMENTS_PENDING_CHARGE_CHECK and TALLY_PAYMENTS_RECHARGE_RULE_REFRESH must not be negative")
	case c.ExpirySweepInterval < 0:
		return errors.New("TALLY_PAYMENTS_EXPIRY_SWEEP_INTERVAL must be positive: abandoned checkouts must not stay pending")
	case c.ConsoleURL == "":
		return fmt.Errorf("%s is required", config.ConsoleURLKey)
	case c.WebhookTolerance <= 0:
		return errors.New("TALLY_STRIPE_WEBHOOK_TOLERANCE must be positive")
	case c.ReconcileInterval < 0:
		return errors.New("TALLY_RECONCILE_INTERVAL must not be negative (0 turns reconciliation off)")
	case c.RetryInterval <= 0:
		return errors.New("TALLY_PAYMENTS_RETRY_INTERVAL must be positive: the retry worker cannot be turned off")
	case c.RetryBackoff <= 0 || c.RetryMaxBackoff < c.RetryBackoff:
		return errors.New("TALLY_PAYMENTS_RETRY_BACKOFF and TALLY_PAYMENTS_RETRY_MAX_BACKOFF must satisfy 0 < backoff <= max")
	case c.LedgerTimeout <= 0 || c.StripeTimeout <= 0:
		return errors.New("TALLY_PAYMENTS_LEDGER_TIMEOUT and TALLY_STRIPE_TIMEOUT must be positive")
	case c.WorkLease <= c.StripeTimeout+2*c.LedgerTimeout:
		return fmt.Errorf("TALLY_PAYMENTS_WORK_LEASE (%s) must exceed TALLY_STRIPE_TIMEOUT + 2 × TALLY_PAYMENTS_LEDGER_TIMEOUT (%s): a refund calls Stripe and the ledger twice under one lease",
			c.WorkLease, c.StripeTimeout+2*c.LedgerTimeout)
	}
	return nil
}

// SuccessURL is where Checkout sends a member who paid: the console's Billing page, told which
// session ({CHECKOUT_SESSION_ID} is filled in by Stripe and by the test-mode page).
func (c Config) SuccessURL() string {
	return c.ConsoleURL + "/billing?checkout=success&session_id={CHECKOUT_SESSION_ID}"
}

// SetupSuccessURL and SetupCancelURL are where a setup session returns an admin.
func (c Config) SetupSuccessURL() string { return c.ConsoleURL + "/billing?setup=success" }

// SetupCancelURL is where a setup session sends an admin who gave up.
func (c Config) SetupCancelURL() string { return c.ConsoleURL + "/billing?setup=cancelled" }

// CancelURL is where Checkout sends a member who gave up.
func (c Config) CancelURL() string { return c.ConsoleURL + "/billing?checkout=cancelled" }

// defaultPresets are payment.DefaultPresets() within [minimum, maximum], or the limits themselves
// when none is.
func defaultPresets(minimum, maximum money.Nanos) []money.Nanos {
	var out []money.Nanos
	for _, p := range payment.DefaultPresets() {
		if p >= minimum && p <= maximum {
			out = append(out, p)
		}
	}
	switch {
	case len(out) > 0:
		return out
	case minimum == maximum:
		return []money.Nanos{minimum}
	}
	return []money.Nanos{minimum, maximum}
}

// withDefaults fills the zero retry and timeout settings of a Config built in code.
func (c Config) withDefaults() Config {
	if c.TopUpPresets == nil {
		c.TopUpPresets = defaultPresets(c.TopUpMin, c.TopUpMax)
	}
	if c.CheckoutExpiry == 0 {
		c.CheckoutExpiry = payment.DefaultCheckoutExpiry
	}
	if c.CreditValidity == (config.Period{}) {
		c.CreditValidity = config.Period{Months: 3}
	}
	if c.ExpirySweepInterval == 0 {
		c.ExpirySweepInterval = app.DefaultExpirySweepEvery
	}
	if c.MaxRequestAmount == 0 {
		c.MaxRequestAmount = payment.DefaultMaxRequestAmount
	}
	def := func(d *time.Duration, v time.Duration) {
		if *d == 0 {
			*d = v
		}
	}
	def(&c.RetryInterval, app.DefaultRetryEvery)
	def(&c.RetryBackoff, app.DefaultBackoff)
	def(&c.RetryMaxBackoff, max(app.DefaultMaxBackoff, c.RetryBackoff))
	def(&c.WorkLease, app.DefaultLease)
	def(&c.LedgerTimeout, ledgerclient.DefaultTimeout)
	def(&c.StripeTimeout, stripeapi.DefaultTimeout)
	return c
}

// Service is an assembled payments service.
type Service struct {
	cfg     Config
	logger  *slog.Logger
	app     *app.App
	grpc    *server.Server
	handler http.Handler
	tel     *telemetry.Telemetry
	closers []func()
}

// New connects to PostgreSQL (applying migrations) and the ledger, and assembles the service.
func New(ctx context.Context, cfg Config, logger *slog.Logger) (_ *Service, err error) {
	if err := cfg.checkMode(); err != nil {
		return nil, err
	}
	cfg = cfg.withDefaults()
	if err := cfg.validate(); err != nil {
		return nil, err
	}
	consoleURL, err := config.ParseConsoleURL(cfg.ConsoleURL, true) // Load checked the mode's rule
	if err != nil {
		return nil, fmt.Errorf("%s: %w", config.ConsoleURLKey, err)
	}
	cfg.ConsoleURL = consoleURL
	s := &Service{cfg: cfg, logger: logger}
	defer func() {
		if err != nil {
			s.Close()
		}
	}()
	if s.tel, err = telemetry.Start(ctx, "payments"); err != nil {
		return nil, err
	}
	s.closers = append(s.closers, func() { _ = s.tel.Shutdown(ctx) }) // closed last: flushes the others' spans
	st, err := s.newStore(ctx)
	if err != nil {
		return nil, err
	}
	authn, err := server.NewAuth(ctx, cfg.Auth, "payments", logger)
	if err != nil {
		return nil, err
	}
	ledger, err := s.dialLedger(authn)
	if err != nil {
		return nil, err
	}
	proc, err := s.newProcessor(st)
	if err != nil {
		return nil, err
	}
	notifier, err := s.dialNotifications(authn)
	if err != nil {
		return nil, err
	}
	s.grpc, err = server.New(server.Config{Name: "payments", Logger: logger, Auth: authn, Policy: grpcapi.Policy(), Errors: grpcapi.Errors, Telemetry: s.tel})
	if err != nil {
		return nil, err
	}
	if s.app, err = s.newApp(st, ledger, proc, notifier); err != nil {
		return nil, err
	}
	api, err := grpcapi.New(s.app, logger)
	if err != nil {
		return nil, err
	}
	paymentsv1.RegisterPaymentsServiceServer(s.grpc.GRPC(), api)
	return s, nil
}

// newStore connects to PostgreSQL and applies the migrations.
func (s *Service) newStore(ctx context.Context) (*store.Store, error) {
	pool, err := pg.Open(ctx, pg.Options{URL: s.cfg.DatabaseURL, Schema: "payments", MaxConns: s.cfg.DBMaxConns, Tracer: s.tel.PGTracer()})
	if err != nil {
		return nil, err
	}
	s.closers = append(s.closers, pool.Close)
	if err := pg.Prepare(ctx, pool, "payments", migrations.FS, !s.cfg.SkipMigrations); err != nil {
		return nil, err
	}
	return store.New(pool, s.cfg.Now)
}

// dialLedger connects to the ledger with the service's own identity.
func (s *Service) dialLedger(authn *server.Auth) (*ledgerclient.Client, error) {
	// Reconnect within a second of the ledger coming back (gRPC's default backoff grows to two
	// minutes): paid webhooks and the retry worker wait for it.
	conn, err := rpcclient.DialSource(s.cfg.LedgerAddr, authn.Identity(), s.tel.DialOption(), grpc.WithConnectParams(grpc.ConnectParams{
		Backoff:           backoff.Config{BaseDelay: 100 * time.Millisecond, Multiplier: 1.6, Jitter: 0.2, MaxDelay: time.Second},
		MinConnectTimeout: 5 * time.Second,
	}))
	if err != nil {
		return nil, err
	}
	s.closers = append(s.closers, func() { _ = conn.Close() })
	return ledgerclient.New(ledgerclient.Config{Conn: conn, Timeout: s.cfg.LedgerTimeout})
}

// dialNotifications connects to the notifications service with the service's own identity; nil
// when no address is configured.
func (s *Service) dialNotifications(authn *server.Auth) (app.Notifier, error) {
	if s.cfg.NotificationsAddr == "" {
		return nil, nil
	}
	conn, err := rpcclient.DialSource(s.cfg.NotificationsAddr, authn.Identity(), s.tel.DialOption())
	if err != nil {
		return nil, err
	}
	s.closers = append(s.closers, func() { _ = conn.Close() })
	return notifyclient.New(notificationsv1.NewNotificationsServiceClient(conn), s.cfg.LedgerTimeout)
}

// newProcessor is Stripe, or in test mode the local checkout with the handler of its page.
func (s *Service) newProcessor(st *store.Store) (payment.Processor, error) {
	cfg := s.cfg
	if !cfg.TestMode {
		return stripeapi.New(stripeapi.Config{SecretKey: cfg.StripeSecretKey, APIURL: cfg.StripeAPIURL,
			SuccessURL: cfg.SuccessURL(), CancelURL: cfg.CancelURL(), SetupSuccessURL: cfg.SetupSuccessURL(), SetupCancelURL: cfg.SetupCancelURL(),
			Timeout: cfg.StripeTimeout, Logger: s.logger})
	}
	// The test-mode page, and the HTTP listener serving it, exist in test mode only: it grants
	// credits for nothing.
	local, err := localcheckout.New(localcheckout.Config{Sessions: st, PublicURL: cfg.PublicURL, WebhookURL: cfg.WebhookURL,
		WebhookSecret: cfg.StripeWebhookSecret, SuccessURL: cfg.SuccessURL(), CancelURL: cfg.CancelURL(),
		SetupSuccessURL: cfg.SetupSuccessURL(), SetupCancelURL: cfg.SetupCancelURL(), Logger: s.logger, Now: cfg.Now})
	if err != nil {
		return nil, err
	}
	mux := http.NewServeMux()
	mux.HandleFunc("GET /healthz", func(w http.ResponseWriter, _ *http.Request) { _, _ = w.Write([]byte("ok\n")) })
	mux.Handle("/checkout/test/", local.Handler())
	s.handler = mux
	s.logger.Warn("payments runs in TEST MODE: checkouts use the local page and charge nothing", "url", cfg.PublicURL+"/checkout/test/")
	return local, nil
}

// newApp builds the application over its dependencies.
func (s *Service) newApp(st *store.Store, ledger *ledgerclient.Client, proc payment.Processor, notifier app.Notifier) (*app.App, error) {
	cfg := s.cfg
	verifier, err := stripeevent.NewVerifier(cfg.StripeWebhookSecret, cfg.WebhookTolerance)
	if err != nil {
		return nil, err
	}
	return app.New(app.Config{
		Store: st, Ledger: ledger, Processor: proc, Verifier: verifier, Watcher: ledger, Notifier: notifier,
		Seller:   invoice.Seller{Name: cfg.SellerName, Address: cfg.SellerAddress, TaxID: cfg.SellerTaxID, Email: cfg.SellerEmail},
		TopUpMin: cfg.TopUpMin, TopUpMax: cfg.TopUpMax, TopUpPresets: cfg.TopUpPresets, MaxRequestAmount: cfg.MaxRequestAmount,
		CheckoutExpiry: cfg.CheckoutExpiry, ValidityMonths: validityMonths(cfg.CreditValidity),
		ReconcileLookback: cfg.ReconcileLookback, Replica: cfg.Replica, Backoff: payment.Backoff{Base: cfg.RetryBackoff, Max: cfg.RetryMaxBackoff},
		Lease: cfg.WorkLease, Logger: s.logger, Now: cfg.Now, Metrics: s.grpc.Registry(),
		PendingChargeCheck: cfg.PendingChargeCheck, RuleRefresh: cfg.RechargeRuleRefresh,
	})
}

// validityMonths is a credit validity in whole calendar months, 0 when it is not one.
func validityMonths(p config.Period) int {
	if p.Duration != 0 {
		return 0
	}
	return p.Months
}

// SweepExpired runs one pass of the expiry sweep now.
func (s *Service) SweepExpired(ctx context.Context) (app.ExpiryReport, error) {
	return s.app.SweepExpired(ctx)
}

// SweepExpiredSetups runs one sweep of the setup sessions past their expiry.
func (s *Service) SweepExpiredSetups(ctx context.Context) (app.SetupExpiryReport, error) {
	return s.app.SweepExpiredSetups(ctx)
}

// ReconcileClaimed runs the current period's reconciliation pass if this replica claims it first.
func (s *Service) ReconcileClaimed(ctx context.Context, interval time.Duration) (bool, app.ReconcileReport, error) {
	return s.app.ReconcileClaimed(ctx, interval)
}

// Reconcile runs one reconciliation pass now.
func (s *Service) Reconcile(ctx context.Context) (app.ReconcileReport, error) {
	return s.app.Reconcile(ctx)
}

// RetryPending runs one pass of the retry worker now.
func (s *Service) RetryPending(ctx context.Context) (app.RetryReport, error) {
	return s.app.RetryPending(ctx)
}

// reviewSampleEvery is how often the open review items are counted for the metrics.
const reviewSampleEvery = 10 * time.Second

// Serve serves gRPC on lis, the HTTP listener (test mode only), metrics, the reconciliation job,
// the retry worker and the expiry sweep until ctx is done, then stops gracefully (server.Run).
func (s *Service) Serve(ctx context.Context, lis net.Listener) error {
	var httpServers []server.HTTPServer
	switch {
	case s.handler != nil && (s.cfg.HTTPListener != nil || s.cfg.HTTPAddr != ""):
		httpServers = append(httpServers, server.HTTPServer{
			Server: s.cfg.HTTPLimits.Server(s.cfg.HTTPAddr, s.handler, s.logger), Listener: s.cfg.HTTPListener})
	case s.cfg.HTTPListener != nil:
		// Not in test mode: nothing to serve over HTTP.
		_ = s.cfg.HTTPListener.Close()
	}
	return server.Run(ctx, server.RunConfig{
		GRPC: s.grpc, Listener: lis, MetricsAddr: s.cfg.MetricsAddr, HTTP: httpServers, Logger: s.logger,
		Workers: []server.Worker{
			{Name: "reconciler", Run: func(ctx context.Context) error { return s.app.RunReconciler(ctx, s.cfg.ReconcileInterval) }},
			{Name: "recharge trigger", Run: func(ctx context.Context) error { return s.app.RunRechargeTrigger(ctx, time.Second) }},
			{Name: "retry worker", Run: func(ctx context.Context) error { return s.app.RunRetrier(ctx, s.cfg.RetryInterval) }},
			{Name: "expiry sweep", Run: func(ctx context.Context) error { return s.app.RunExpirySweep(ctx, s.cfg.ExpirySweepInterval) }},
			{Name: "review sampler", Run: func(ctx context.Context) error { return s.app.RunReviewSampler(ctx, reviewSampleEvery) }},
		},
	})
}

// Close releases the database pool and the ledger connection.
func (s *Service) Close() {
	for i := len(s.closers) - 1; i >= 0; i-- {
		s.closers[i]()
	}
	s.closers = nil
}

// Migrate applies the service's migrations to the database of cfg and returns: `<binary> migrate`,
// run before the replicas start when they skip migrating (SkipMigrations).
func Migrate(ctx context.Context, cfg Config, _ *slog.Logger) error {
	return pg.MigrateDatabase(ctx, cfg.DatabaseURL, "payments", migrations.FS)
}

// Run serves the payments service on lis until ctx is done.
func Run(ctx context.Context, cfg Config, lis net.Listener, logger *slog.Logger) error {
	s, err := New(ctx, cfg, logger)
	if err != nil {
		return err
	}
	defer s.Close()
	return s.Serve(ctx, lis)
}
