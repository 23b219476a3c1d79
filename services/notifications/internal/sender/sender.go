// Package sender delivers queued emails over SMTP (github.com/wneessen/go-mail). Workers claim
// one due email at a time (a lease, committed before the SMTP exchange, so no transaction is
// open while the server answers; replicas never send an email concurrently while its lease
// holds); failures are retried with exponential backoff; every attempt of an email carries the
// same Message-ID, derived from the email's id.
package sender

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"math/rand/v2"
	"net/mail"
	"strings"
	"sync"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	gomail "github.com/wneessen/go-mail"

	"github.com/tallyhq/tally/services/notifications/internal/emails"
	"github.com/tallyhq/tally/services/notifications/internal/notify"
	"github.com/tallyhq/tally/services/notifications/internal/store"
)

// TLSMode says how the SMTP connection is secured.
type TLSMode string

// TLS modes.
const (
	// TLSNone is plain SMTP (a local catcher such as mailpit).
	TLSNone TLSMode = "none"
	// TLSStartTLS upgrades the connection with STARTTLS and refuses servers that cannot.
	TLSStartTLS TLSMode = "starttls"
	// TLSImplicit connects over TLS from the start (SMTPS, usually port 465).
	TLSImplicit TLSMode = "tls"
)

// ParseTLSMode parses "none", "starttls" or "tls".
func ParseTLSMode(s string) (TLSMode, error) {
	switch m := TLSMode(strings.ToLower(s)); m {
	case TLSNone, TLSStartTLS, TLSImplicit:
		return m, nil
	}
	return "", fmt.Errorf("TLS mode %q is not one of none, starttls, tls", s)
}

// SMTPConfig says where and how to send.
type SMTPConfig struct {
	Host     string
	Port     int
	Username string
	Password string
	TLS      TLSMode
	// From is the sender, e.g. "Tally <notifications@tally.dev>".
	From string
	// Timeout bounds connecting and each SMTP command.
	Timeout time.Duration
}

// Outbox is the queue the sender drains.
type Outbox interface {
	DeliverNext(ctx context.Context, now time.Time, c store.EmailClaim, deliver func(context.Context, notify.Delivery) notify.Attempt) (bool, error)
}

// Config configures a Sender.
type Config struct {
	SMTP     SMTPConfig
	Outbox   Outbox
	Renderer *emails.Renderer
	Logger   *slog.Logger
	// Workers is the number of concurrent senders; at least 1.
	Workers int
	// PollInterval is how often idle workers look for due emails (emails queued by this
	// process wake them at once).
	PollInterval time.Duration
	// RetryBase is the delay after the first failure, doubled after each further one up to
	// RetryMax.
	RetryBase time.Duration
	RetryMax  time.Duration
	// MaxAttempts marks an email failed after that many failed attempts.
	MaxAttempts int
	// ClaimLease is how long a worker holds an email it is sending before another may take it
	// over (and send it again, with the same Message-ID); at least twice the SMTP timeout.
	ClaimLease time.Duration
	// Replica names this replica in its claims (emails.claimed_by).
	Replica string
	// Sent counts attempts by kind and result ("sent", "retry", "failed"); optional.
	Sent *prometheus.CounterVec
}

// Sender delivers the outbox.
type Sender struct {
	cfg    Config
	from   *mail.Address
	domain string
	wake   chan struct{}
}

// New checks cfg and returns a Sender.
func New(cfg Config) (*Sender, error) {
	if cfg.Outbox == nil || cfg.Renderer == nil || cfg.Logger == nil {
		return nil, errors.New("sender: outbox, renderer and logger are required")
	}
	if cfg.Workers < 1 || cfg.PollInterval <= 0 || cfg.RetryBase <= 0 || cfg.RetryMax < cfg.RetryBase || cfg.MaxAttempts < 1 {
		return nil, errors.New("sender: workers, poll interval, retry delays and max attempts must be positive")
	}
	if cfg.ClaimLease < 2*smtpTimeout(cfg.SMTP) {
		return nil, fmt.Errorf("sender: claim lease %s must be at least twice the SMTP timeout %s", cfg.ClaimLease, smtpTimeout(cfg.SMTP))
	}
	if cfg.Replica == "" {
		return nil, errors.New("sender: replica name is required")
	}
	from, err := mail.ParseAddress(cfg.SMTP.From)
	if err != nil {
		return nil, fmt.Errorf("sender: from address %q: %w", cfg.SMTP.From, err)
	}
	_, domain, _ := strings.Cut(from.Address, "@")
	if _, err := newClient(cfg.SMTP); err != nil {
		return nil, err
	}
	return &Sender{cfg: cfg, from: from, domain: domain, wake: make(chan struct{}, 1)}, nil
}

func newClient(c SMTPConfig) (*gomail.Client, error) {
	if c.Host == "" || c.Port <= 0 || c.Port > 65535 {
		return nil, fmt.Errorf("sender: SMTP host and port are required, got %q:%d", c.Host, c.Port)
	}
	opts := []gomail.Option{gomail.WithPort(c.Port), gomail.WithTimeout(smtpTimeout(c))}
	switch c.TLS {
	case TLSNone:
		opts = append(opts, gomail.WithTLSPolicy(gomail.NoTLS))
	case TLSStartTLS:
		opts = append(opts, gomail.WithTLSPolicy(gomail.TLSMandatory))
	case TLSImplicit:
		opts = append(opts, gomail.WithSSL())
	default:
		return nil, fmt.Errorf("sender: unknown TLS mode %q", c.TLS)
	}
	if c.Username != "" {
		opts = append(opts, gomail.WithSMTPAuth(gomail.SMTPAuthAutoDiscover), gomail.WithUsername(c.Username), gomail.WithPassword(c.Password))
	}
	client, err := gomail.NewClient(c.Host, opts...)
	if err != nil {
		return nil, fmt.Errorf("sender: configuring SMTP client: %w", err)
	}
	return client, nil
}

// smtpTimeout is the bound of connecting and of each SMTP command (default 15s).
func smtpTimeout(c SMTPConfig) time.Duration {
	if c.Timeout <= 0 {
		return 15 * time.Second
	}
	return c.Timeout
}

// Wake tells an idle worker that emails were queued.
func (s *Sender) Wake() {
	select {
	case s.wake <- struct{}{}:
	default:
	}
}

// Run runs the workers until ctx is done; a send in progress then still completes.
func (s *Sender) Run(ctx context.Context) error {
	var wg sync.WaitGroup
	for range s.cfg.Workers {
		wg.Go(func() { s.work(ctx) })
	}
	wg.Wait()
	return nil
}

// work drains the outbox with its own SMTP client (a go-mail Client is not shared between
// concurrent sends).
func (s *Sender) work(ctx context.Context) {
	client, err := newClient(s.cfg.SMTP)
	if err != nil {
		s.cfg.Logger.Error("smtp client cannot be built", "err", err)
		return
	}
	// A claimed email is sent to the end even when shutdown begins meanwhile (go-mail's
	// timeout bounds connecting and each SMTP command), so a stop does not turn a send into a
	// retry.
	deliver := func(ctx context.Context, d notify.Delivery) notify.Attempt {
		return s.deliver(context.WithoutCancel(ctx), client, d)
	}
	claim := store.EmailClaim{Owner: s.cfg.Replica, Lease: s.cfg.ClaimLease}
	for ctx.Err() == nil {
		claimed, err := s.cfg.Outbox.DeliverNext(ctx, time.Now(), claim, deliver)
		if err != nil && ctx.Err() == nil {
			s.cfg.Logger.Warn("email delivery failed", "err", err)
		}
		if claimed && err == nil {
			continue
		}
		t := time.NewTimer(s.cfg.PollInterval)
		select {
		case <-ctx.Done():
		case <-s.wake:
		case <-t.C:
		}
		t.Stop()
	}
}

// deliver makes one attempt at sending d and says what to do next.
func (s *Sender) deliver(ctx context.Context, client *gomail.Client, d notify.Delivery) notify.Attempt {
	a := notify.Attempt{MessageID: notify.MessageID(d.ID, s.domain)}
	logger := s.cfg.Logger.With("email_id", d.ID, "kind", d.Kind, "org_id", d.OrgID, "attempt", d.Attempts+1)
	msg, err := s.message(d, a.MessageID)
	if err != nil {
		// A rendering or address problem does not heal with time.
		a.Err, a.GiveUp = err, true
		logger.Error("email cannot be built", "err", err)
		s.count(d.Kind, "failed")
		return a
	}
	err = client.DialAndSendWithContext(ctx, msg)
	if err == nil {
		logger.Info("email sent", "message_id", a.MessageID)
		s.count(d.Kind, "sent")
		return a
	}
	a.Err = err
	attempts := d.Attempts + 1
	var se *gomail.SendError
	permanent := errors.As(err, &se) && !se.IsTemp() && se.ErrorCode() >= 500
	if permanent || attempts >= s.cfg.MaxAttempts {
		a.GiveUp = true
		logger.Error("email delivery abandoned", "err", err, "permanent", permanent)
		s.count(d.Kind, "failed")
		return a
	}
	a.RetryAt = time.Now().Add(Backoff(attempts, s.cfg.RetryBase, s.cfg.RetryMax))
	logger.Warn("email delivery failed, will retry", "err", err, "retry_at", a.RetryAt)
	s.count(d.Kind, "retry")
	return a
}

func (s *Sender) count(k notify.EmailKind, result string) {
	if s.cfg.Sent != nil {
		s.cfg.Sent.WithLabelValues(string(k), result).Inc()
	}
}

func (s *Sender) message(d notify.Delivery, messageID string) (*gomail.Msg, error) {
	rendered, err := s.cfg.Renderer.Render(d.Kind, d.Data)
	if err != nil {
		return nil, err
	}
	m := gomail.NewMsg()
	m.FromMailAddress(s.from)
	if err := m.To(d.To); err != nil {
		return nil, fmt.Errorf("recipient %q: %w", d.To, err)
	}
	m.Subject(rendered.Subject)
	m.SetMessageIDWithValue(messageID)
	m.SetDateWithValue(d.CreatedAt)
	m.SetGenHeader("X-Tally-Notification", string(d.Kind))
	m.SetGenHeader("X-Auto-Response-Suppress", "All")
	m.SetBodyString(gomail.TypeTextPlain, rendered.Text)
	m.AddAlternativeString(gomail.TypeTextHTML, rendered.HTML)
	return m, nil
}

// Backoff returns the delay before the next attempt after attempts failed ones: base doubled
// per further failure, capped at max, minus up to 20% jitter so replicas spread their retries.
func Backoff(attempts int, base, max time.Duration) time.Duration {
	d := base
	for i := 1; i < attempts && d < max; i++ {
		d *= 2
	}
	d = min(d, max)
	return d - time.Duration(rand.Int64N(int64(d)/5+1))
}
