package app

import (
	"context"
	"errors"
	"log/slog"
	"math/rand/v2"
	"sync"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/tallyhq/tally/services/notifications/internal/notify"
	"github.com/tallyhq/tally/services/notifications/internal/store"
)

// Outbox is the queue the send loop drains: claim → commit → call → record.
type Outbox interface {
	ClaimEmail(ctx context.Context, now time.Time, c store.EmailClaim) (store.Claimed, bool, error)
	RecordAttempt(ctx context.Context, claimed store.Claimed, a notify.Attempt) error
}

// MailConn sends emails over one SMTP client (not shared between concurrent sends).
type MailConn interface {
	// Send makes one attempt at d and returns the Message-ID sent. permanent says a failure
	// will not heal with time (a message that cannot be built, a 5xx refusal).
	Send(ctx context.Context, d notify.Delivery) (messageID string, permanent bool, err error)
}

// SendConfig configures a SendLoop.
type SendConfig struct {
	Outbox Outbox
	// Dial returns a worker's SMTP client.
	Dial   func() (MailConn, error)
	Logger *slog.Logger
	// Now is the clock of claims and retries (nil: time.Now). It must agree with the
	// database's, which stamps queued emails due: not the business clock of Config.Now.
	Now func() time.Time
	// Workers is the number of concurrent senders; at least 1.
	Workers int
	// PollInterval is how often idle workers look for due emails (Wake wakes them at once).
	PollInterval time.Duration
	// RetryBase is the delay after the first failure, doubled after each further one up to
	// RetryMax.
	RetryBase time.Duration
	RetryMax  time.Duration
	// MaxAttempts marks an email failed after that many failed attempts.
	MaxAttempts int
	// ClaimLease is how long a worker holds an email it is sending before another may take it
	// over (and send it again, with the same Message-ID).
	ClaimLease time.Duration
	// Replica names this replica in its claims (emails.claimed_by).
	Replica string
	// Sent counts attempts by kind and result ("sent", "retry", "failed"); optional.
	Sent *prometheus.CounterVec
}

// SendLoop delivers the outbox: each worker claims one due email at a time (the claim is
// committed before the SMTP exchange, so no transaction is open while the server answers, and
// replicas never send an email concurrently while its lease holds), sends it, and records the
// attempt; failures are retried with exponential backoff.
type SendLoop struct {
	cfg  SendConfig
	wake chan struct{}
}

// NewSendLoop checks cfg and returns a SendLoop.
func NewSendLoop(cfg SendConfig) (*SendLoop, error) {
	if cfg.Outbox == nil || cfg.Dial == nil || cfg.Logger == nil {
		return nil, errors.New("app: send loop needs an outbox, a dialer and a logger")
	}
	if cfg.Workers < 1 || cfg.PollInterval <= 0 || cfg.RetryBase <= 0 || cfg.RetryMax < cfg.RetryBase || cfg.MaxAttempts < 1 || cfg.ClaimLease <= 0 {
		return nil, errors.New("app: send loop workers, poll interval, retry delays, max attempts and claim lease must be positive")
	}
	if cfg.Replica == "" {
		return nil, errors.New("app: send loop replica name is required")
	}
	cfg.Now = orNow(cfg.Now)
	return &SendLoop{cfg: cfg, wake: make(chan struct{}, 1)}, nil
}

// Wake tells an idle worker that emails were queued.
func (s *SendLoop) Wake() {
	select {
	case s.wake <- struct{}{}:
	default:
	}
}

// Run runs the workers until ctx is done; a send in progress then still completes.
func (s *SendLoop) Run(ctx context.Context) error {
	var wg sync.WaitGroup
	for range s.cfg.Workers {
		wg.Go(func() { s.work(ctx) })
	}
	wg.Wait()
	return nil
}

func (s *SendLoop) work(ctx context.Context) {
	conn, err := s.cfg.Dial()
	if err != nil {
		s.cfg.Logger.ErrorContext(ctx, "smtp client cannot be built", "err", err)
		return
	}
	for ctx.Err() == nil {
		sent, err := s.DeliverNext(ctx, conn)
		if err != nil && ctx.Err() == nil {
			s.cfg.Logger.WarnContext(ctx, "email delivery failed", "err", err)
		}
		if sent && err == nil {
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

// DeliverNext claims the oldest due email, sends it over conn and records the attempt. It
// reports false when nothing was due. A claimed email is sent to the end even when ctx ends
// meanwhile (the SMTP timeout bounds each command), and the attempt is recorded even then: the
// server may have the email.
//
// The claim itself is not cut short by ctx either: a shutdown arriving while the claim's UPDATE
// runs would leave a claim committed on the server that no worker sends, pending until its lease
// (2 min by default) runs out.
func (s *SendLoop) DeliverNext(ctx context.Context, conn MailConn) (bool, error) {
	cctx, cancelClaim := context.WithTimeout(context.WithoutCancel(ctx), claimTimeout)
	claimed, ok, err := s.cfg.Outbox.ClaimEmail(cctx, s.cfg.Now(), store.EmailClaim{Owner: s.cfg.Replica, Lease: s.cfg.ClaimLease})
	cancelClaim()
	if err != nil || !ok {
		return false, err
	}
	a := s.attempt(context.WithoutCancel(ctx), conn, claimed.Delivery)
	wctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), 10*time.Second)
	defer cancel()
	return true, s.cfg.Outbox.RecordAttempt(wctx, claimed, a)
}

// claimTimeout bounds a claim, which shutdown does not cancel (DeliverNext).
const claimTimeout = 10 * time.Second

// attempt makes one attempt at sending d and says what to do next.
func (s *SendLoop) attempt(ctx context.Context, conn MailConn, d notify.Delivery) notify.Attempt {
	logger := s.cfg.Logger.With("email_id", d.ID, "kind", d.Kind, "org_id", d.OrgID, "attempt", d.Attempts+1)
	id, permanent, err := conn.Send(ctx, d)
	a := notify.Attempt{MessageID: id, Err: err}
	if err == nil {
		logger.InfoContext(ctx, "email sent", "message_id", id)
		s.count(d.Kind, emailSent)
		return a
	}
	attempts := d.Attempts + 1
	if permanent || attempts >= s.cfg.MaxAttempts {
		a.GiveUp = true
		logger.ErrorContext(ctx, "email delivery abandoned", "err", err, "permanent", permanent)
		s.count(d.Kind, emailFailed)
		return a
	}
	a.RetryAt = s.cfg.Now().Add(Backoff(attempts, s.cfg.RetryBase, s.cfg.RetryMax))
	logger.WarnContext(ctx, "email delivery failed, will retry", "err", err, "retry_at", a.RetryAt)
	s.count(d.Kind, emailRetry)
	return a
}

func (s *SendLoop) count(k notify.EmailKind, result string) {
	if s.cfg.Sent != nil {
		s.cfg.Sent.WithLabelValues(string(k), result).Inc()
	}
}

// Backoff returns the delay before the next attempt after attempts failed ones: base doubled
// per further failure, capped at ceiling, minus up to 20% jitter so replicas spread their
// retries.
func Backoff(attempts int, base, ceiling time.Duration) time.Duration {
	d := base
	for i := 1; i < attempts && d < ceiling; i++ {
		d *= 2
	}
	d = min(d, ceiling)
	return d - time.Duration(rand.Int64N(int64(d)/5+1)) //nolint:gosec // jitter, not a secret
}
