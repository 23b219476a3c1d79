package client

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"math/rand/v2"
	"sync"
	"sync/atomic"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"go.opentelemetry.io/contrib/instrumentation/google.golang.org/grpc/otelgrpc"
	"go.opentelemetry.io/otel/propagation"
	"go.opentelemetry.io/otel/trace"
	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"
	"google.golang.org/protobuf/types/known/durationpb"
	"google.golang.org/protobuf/types/known/timestamppb"

	"github.com/tallyhq/tally/pkg/auth"
	ledgerv1 "github.com/tallyhq/tally/pkg/gen/tally/ledger/v1"
	"github.com/tallyhq/tally/pkg/money"
	"github.com/tallyhq/tally/pkg/rpcclient"
)

// Defaults of Config.
const (
	DefaultTimeout = 5 * time.Second
)

// Config configures a Client. Target and one of Token, TokenSource (or Conn) are required.
type Config struct {
	// Target is the ledger: host:port, dns:///host:port (every A record, round-robin) or
	// static:///host1:port,host2:port.
	Target string
	// Token is a fixed service token sent on every call (TALLY_SERVICE_TOKEN).
	Token string
	// TokenSource renews the token in the background (auth.NewIdentity); it wins over Token.
	TokenSource auth.TokenSource
	// Conn, when set, is used instead of dialing Target (the caller owns it and its
	// credentials; Close leaves it open).
	Conn *grpc.ClientConn
	// DialOptions are added to the dial of Target.
	DialOptions []grpc.DialOption
	// Timeout is the deadline of each attempt of a unary call, and how long a streamed debit
	// may wait for its ack before the stream is considered stuck and reopened (DefaultTimeout).
	Timeout time.Duration
	Retry   RetryPolicy
	Batch   BatchPolicy
	// Registerer receives the client's metrics (tally_client_*); none when nil.
	Registerer prometheus.Registerer
	// TracerProvider traces every call (otelgrpc client spans, W3C traceparent sent with
	// Propagator, TraceContext when nil); none when nil. Not applied to a Conn of the caller.
	TracerProvider trace.TracerProvider
	Propagator     propagation.TextMapPropagator
	// Logger defaults to discarding.
	Logger *slog.Logger
}

// RetryPolicy says how Unavailable answers and the client's own deadlines are retried.
type RetryPolicy struct {
	// MaxAttempts counts the first attempt (default 6; 1 disables retries).
	MaxAttempts int
	// InitialBackoff and MaxBackoff bound the exponential backoff (defaults 25ms and 2s); each
	// wait is uniformly random between zero and the bound (full jitter).
	InitialBackoff time.Duration
	MaxBackoff     time.Duration
}

// BatchPolicy says how debits are batched onto DebitStream.
type BatchPolicy struct {
	// Disabled sends every Debit as a unary call.
	Disabled bool
	// MaxSize is the most debits per stream message (default 500, at most 1,000).
	MaxSize int
	// Linger is how long a batch waits to fill once it has a debit while others are in flight
	// (default 500µs; 0 takes the default, a negative value sends at once what is queued). With
	// nothing in flight a batch is sent at once.
	Linger time.Duration
	// Streams is the number of DebitStreams (default 1), spread over the resolved addresses.
	Streams int
	// MaxInFlight caps the unacknowledged debits per stream below the ledger's max_in_flight
	// (which the ledger resizes during the stream; the client follows it).
	MaxInFlight int
	// QueueSize is how many debits may wait for room in a stream before Debit blocks (default
	// 4 × the in-flight bound).
	QueueSize int
}

// Client calls the ledger for a model-serving backend. It is safe for concurrent use.
type Client struct {
	ledger  ledgerv1.LedgerServiceClient
	conn    *grpc.ClientConn
	ownConn bool
	timeout time.Duration
	retry   RetryPolicy
	batch   BatchPolicy
	logger  *slog.Logger
	metrics *metrics

	lanes    []*lane
	nextLane atomic.Uint64
	// unary is set once a ledger answered DebitStream with Unimplemented: debits go unary.
	unary atomic.Bool

	mu      sync.Mutex
	closed  bool
	leases  map[*Lease]struct{}
	closing chan struct{}
}

// New returns a Client. The connection is made lazily: New does not wait for the ledger.
func New(cfg Config) (*Client, error) {
	if err := cfg.defaults(); err != nil {
		return nil, err
	}
	c := &Client{timeout: cfg.Timeout, retry: cfg.Retry, batch: cfg.Batch, logger: cfg.Logger,
		leases: map[*Lease]struct{}{}, closing: make(chan struct{})}
	m, err := newMetrics(cfg.Registerer)
	if err != nil {
		return nil, err
	}
	c.metrics = m
	if cfg.Conn != nil {
		c.conn = cfg.Conn
	} else {
		opts := append([]grpc.DialOption(nil), cfg.DialOptions...)
		if cfg.TracerProvider != nil {
			prop := cfg.Propagator
			if prop == nil {
				prop = propagation.TraceContext{}
			}
			opts = append(opts, grpc.WithStatsHandler(otelgrpc.NewClientHandler(
				otelgrpc.WithTracerProvider(cfg.TracerProvider), otelgrpc.WithPropagators(prop))))
		}
		var conn *grpc.ClientConn
		if cfg.TokenSource != nil {
			conn, err = rpcclient.DialSource(cfg.Target, cfg.TokenSource, opts...)
		} else {
			conn, err = rpcclient.Dial(cfg.Target, cfg.Token, opts...)
		}
		if err != nil {
			return nil, fmt.Errorf("client: %w", err)
		}
		c.conn, c.ownConn = conn, true
	}
	c.ledger = ledgerv1.NewLedgerServiceClient(c.conn)
	if c.batch.Disabled {
		c.unary.Store(true)
	} else {
		for i := range c.batch.Streams {
			c.lanes = append(c.lanes, newLane(c, i))
		}
	}
	return c, nil
}

func (cfg *Config) defaults() error {
	if cfg.Conn == nil {
		if cfg.Target == "" {
			return errors.New("client: Target is required (host:port, dns:///host:port or static:///a,b)")
		}
		if cfg.Token == "" && cfg.TokenSource == nil {
			return errors.New("client: Token or TokenSource is required (the backend's service token)")
		}
	}
	if cfg.Timeout < 0 || cfg.Retry.MaxAttempts < 0 || cfg.Retry.InitialBackoff < 0 || cfg.Retry.MaxBackoff < 0 ||
		cfg.Batch.MaxSize < 0 || cfg.Batch.Streams < 0 || cfg.Batch.MaxInFlight < 0 || cfg.Batch.QueueSize < 0 {
		return errors.New("client: durations and sizes must not be negative")
	}
	if cfg.Batch.MaxSize > maxBatch {
		return fmt.Errorf("client: Batch.MaxSize is at most %d (the ledger's limit per message)", maxBatch)
	}
	def := func(v *time.Duration, d time.Duration) {
		if *v == 0 {
			*v = d
		}
	}
	defInt := func(v *int, d int) {
		if *v == 0 {
			*v = d
		}
	}
	def(&cfg.Timeout, DefaultTimeout)
	def(&cfg.Retry.InitialBackoff, 25*time.Millisecond)
	def(&cfg.Retry.MaxBackoff, 2*time.Second)
	defInt(&cfg.Retry.MaxAttempts, 6)
	defInt(&cfg.Batch.MaxSize, 500)
	defInt(&cfg.Batch.Streams, 1)
	def(&cfg.Batch.Linger, 500*time.Microsecond)
	if cfg.Logger == nil {
		cfg.Logger = slog.New(slog.NewTextHandler(io.Discard, nil))
	}
	return nil
}

// ErrClosed is returned by calls made after Close.
var ErrClosed = errors.New("client: closed")

// Close flushes the debits not yet acknowledged (waiting for their acks), closes every lease
// (capturing what was drawn, releasing the rest), and closes the connection. ctx bounds the
// wait: when it ends first, the debits still unacknowledged fail with ErrUnavailable (they may
// have been committed: retry them with the same keys) and Close returns ctx's error.
func (c *Client) Close(ctx context.Context) error {
	c.mu.Lock()
	if c.closed {
		c.mu.Unlock()
		return nil
	}
	c.closed = true
	leases := make([]*Lease, 0, len(c.leases))
	for l := range c.leases {
		leases = append(leases, l)
	}
	c.mu.Unlock()
	var errs []error
	for _, l := range leases {
		if err := l.Close(ctx); err != nil {
			errs = append(errs, err)
		}
	}
	close(c.closing) // lanes flush and stop accepting
	for _, ln := range c.lanes {
		if err := ln.wait(ctx); err != nil {
			errs = append(errs, err)
		}
	}
	if c.ownConn {
		if err := c.conn.Close(); err != nil {
			errs = append(errs, fmt.Errorf("client: closing the connection: %w", err))
		}
	}
	return errors.Join(errs...)
}

func (c *Client) isClosed() bool {
	select {
	case <-c.closing:
		return true
	default:
		return false
	}
}

// Usage is what a call used, priced by the ledger from its price list.
type Usage struct {
	ModelID string
	// Quantities per billable unit as decimal strings: {"input_tokens": "1200"}.
	Quantities map[string]string
	// OccurredAt picks the price in force; now when zero.
	OccurredAt time.Time
}

func (u *Usage) proto() *ledgerv1.Usage {
	if u == nil {
		return nil
	}
	p := &ledgerv1.Usage{ModelId: u.ModelID, Quantities: u.Quantities}
	if !u.OccurredAt.IsZero() {
		p.OccurredAt = timestamppb.New(u.OccurredAt)
	}
	return p
}

// AuthorizeRequest asks whether an organization can afford a call: Amount, or Usage (an
// estimate) when Usage is set. An empty currency is the organization's.
type AuthorizeRequest struct {
	OrgID  string
	Amount money.Money
	Usage  *Usage
	// Project, when set, also checks the project's monthly spend limit (as a debit's "project"
	// metadata names it).
	Project string
}

// Authorization is the answer of Authorize.
type Authorization struct {
	Allowed   bool
	Available money.Money
	// Amount is what was checked: the request's amount or the price of its usage.
	Amount money.Money
}

// Authorize checks the organization's available amount (the ledger's Redis path).
func (c *Client) Authorize(ctx context.Context, r AuthorizeRequest) (Authorization, error) {
	req := &ledgerv1.AuthorizeRequest{OrgId: r.OrgID, Usage: r.Usage.proto(), Project: r.Project}
	if r.Usage == nil {
		req.Amount = r.Amount.Proto()
	}
	var resp *ledgerv1.AuthorizeResponse
	err := c.unaryCall(ctx, "Authorize", func(ctx context.Context) (err error) {
		resp, err = c.ledger.Authorize(ctx, req)
		return err
	})
	if err != nil {
		return Authorization{}, err
	}
	avail, err := decode("authorizing", "available", resp.GetAvailable())
	if err != nil {
		return Authorization{}, err
	}
	amt, err := decode("authorizing", "amount", resp.GetAmount())
	if err != nil {
		return Authorization{}, err
	}
	return Authorization{Allowed: resp.GetAllowed(), Available: avail, Amount: amt}, nil
}

// Debit is a charge: Amount, or Usage for the ledger to price. IdempotencyKey is required and
// names the charge (one model call → one key): every retry, by the client or by the caller,
// must reuse it.
type Debit struct {
	OrgID          string
	Amount         money.Money
	Usage          *Usage
	IdempotencyKey string
	Description    string
	// Metadata is free-form; "model_id" names the model in the usage summary.
	Metadata map[string]string
	// RequireFunds refuses the debit (ErrFailedPrecondition) rather than go below zero.
	RequireFunds bool
}

func (d Debit) proto() *ledgerv1.DebitRequest {
	req := &ledgerv1.DebitRequest{OrgId: d.OrgID, IdempotencyKey: d.IdempotencyKey, Description: d.Description,
		Metadata: d.Metadata, RequireFunds: d.RequireFunds, Usage: d.Usage.proto()}
	if d.Usage == nil {
		req.Amount = d.Amount.Proto()
	}
	return req
}

// Debited is a committed debit.
type Debited struct {
	TransactionID string
	Balance       money.Money // after the debit
	Amount        money.Money // what was charged (the priced usage for a usage debit)
	// Replayed: the key had been committed before; this is the original result.
	Replayed bool
}

// Debit records a charge and returns once the ledger has committed it: batched onto the
// DebitStream, or a unary call when batching is disabled or the ledger has no stream.
func (c *Client) Debit(ctx context.Context, d Debit) (Debited, error) {
	if d.IdempotencyKey == "" {
		return Debited{}, errors.New("client: Debit needs an IdempotencyKey (one per charge, reused by every retry)")
	}
	if c.isClosed() {
		return Debited{}, ErrClosed
	}
	req := d.proto()
	if c.unary.Load() {
		return c.debitUnary(ctx, req)
	}
	ln := c.lanes[int(c.nextLane.Add(1)%uint64(len(c.lanes)))]
	return ln.debit(ctx, req)
}

func (c *Client) debitUnary(ctx context.Context, req *ledgerv1.DebitRequest) (Debited, error) {
	var resp *ledgerv1.DebitResponse
	err := c.unaryCall(ctx, "Debit", func(ctx context.Context) (err error) {
		resp, err = c.ledger.Debit(ctx, req)
		return err
	})
	if err != nil {
		return Debited{}, err
	}
	return debited(resp)
}

func debited(resp *ledgerv1.DebitResponse) (Debited, error) {
	if resp.GetTransactionId() == "" {
		return Debited{}, badReply("debiting", errors.New("no transaction id"))
	}
	bal, err := decode("debiting", "balance", resp.GetBalance())
	if err != nil {
		return Debited{}, err
	}
	amt, err := decode("debiting", "amount", resp.GetTransaction().GetAmount())
	if err != nil {
		return Debited{}, err
	}
	amt.Nanos = -amt.Nanos // the transaction's signed change of the balance
	return Debited{TransactionID: resp.GetTransactionId(), Balance: bal, Amount: amt, Replayed: resp.GetReplayed()}, nil
}

// ReserveRequest places a hold.
type ReserveRequest struct {
	OrgID  string
	Amount money.Money
	// TTL is the hold's life before the ledger releases it (1s to 24h; 15 minutes when zero).
	TTL            time.Duration
	IdempotencyKey string
	Description    string
	// Project, when set, refuses the hold over the project's monthly spend limit, like a
	// require_funds debit of that project (the hold itself is not counted as spending).
	Project string
}

// HoldStatus is the life cycle of a hold.
type HoldStatus int

// The hold statuses.
const (
	HoldUnspecified HoldStatus = iota
	HoldActive
	HoldCaptured
	HoldReleased
	HoldExpired
)

// Hold is money set aside from the available amount.
type Hold struct {
	ID        string
	OrgID     string
	Amount    money.Money
	Status    HoldStatus
	ExpiresAt time.Time
}

func holdOf(op string, h *ledgerv1.Hold) (Hold, error) {
	if h.GetId() == "" {
		return Hold{}, badReply(op, errors.New("no hold id"))
	}
	amt, err := decode(op, "hold amount", h.GetAmount())
	if err != nil {
		return Hold{}, err
	}
	out := Hold{ID: h.GetId(), OrgID: h.GetOrgId(), Amount: amt, Status: HoldStatus(h.GetStatus())}
	if h.GetExpiresAt() != nil {
		out.ExpiresAt = h.GetExpiresAt().AsTime()
	}
	return out, nil
}

// Reserved is the result of Reserve.
type Reserved struct {
	Hold      Hold
	Available money.Money
	Replayed  bool
}

// Reserve places a hold on available credits for a long or streaming call.
func (c *Client) Reserve(ctx context.Context, r ReserveRequest) (Reserved, error) {
	req := &ledgerv1.ReserveRequest{OrgId: r.OrgID, Amount: r.Amount.Proto(), IdempotencyKey: r.IdempotencyKey, Description: r.Description, Project: r.Project}
	if r.TTL != 0 {
		req.Ttl = durationpb.New(r.TTL)
	}
	var resp *ledgerv1.ReserveResponse
	err := c.unaryCall(ctx, "Reserve", func(ctx context.Context) (err error) {
		resp, err = c.ledger.Reserve(ctx, req)
		return err
	})
	if err != nil {
		return Reserved{}, err
	}
	h, err := holdOf("reserving", resp.GetHold())
	if err != nil {
		return Reserved{}, err
	}
	avail, err := decode("reserving", "available", resp.GetAvailable())
	if err != nil {
		return Reserved{}, err
	}
	return Reserved{Hold: h, Available: avail, Replayed: resp.GetReplayed()}, nil
}

// CaptureRequest turns a hold into a debit of Amount (below or above the hold).
type CaptureRequest struct {
	HoldID         string
	Amount         money.Money
	IdempotencyKey string
	Description    string
	Metadata       map[string]string
}

// Captured is the result of Capture.
type Captured struct {
	Hold          Hold
	TransactionID string
	Balance       money.Money
	Replayed      bool
}

// Capture charges a hold.
func (c *Client) Capture(ctx context.Context, r CaptureRequest) (Captured, error) {
	req := &ledgerv1.CaptureRequest{HoldId: r.HoldID, Amount: r.Amount.Proto(), IdempotencyKey: r.IdempotencyKey,
		Description: r.Description, Metadata: r.Metadata}
	var resp *ledgerv1.CaptureResponse
	err := c.unaryCall(ctx, "Capture", func(ctx context.Context) (err error) {
		resp, err = c.ledger.Capture(ctx, req)
		return err
	})
	if err != nil {
		return Captured{}, err
	}
	h, err := holdOf("capturing", resp.GetHold())
	if err != nil {
		return Captured{}, err
	}
	bal, err := decode("capturing", "balance", resp.GetBalance())
	if err != nil {
		return Captured{}, err
	}
	return Captured{Hold: h, TransactionID: resp.GetTransaction().GetId(), Balance: bal, Replayed: resp.GetReplayed()}, nil
}

// Release ends a hold without a charge; releasing an ended hold returns its final state.
func (c *Client) Release(ctx context.Context, holdID string) (Hold, error) {
	var resp *ledgerv1.ReleaseResponse
	err := c.unaryCall(ctx, "Release", func(ctx context.Context) (err error) {
		resp, err = c.ledger.Release(ctx, &ledgerv1.ReleaseRequest{HoldId: holdID})
		return err
	})
	if err != nil {
		return Hold{}, err
	}
	return holdOf("releasing", resp.GetHold())
}

// Balance is an organization's account.
type Balance struct {
	Balance, Available, Held money.Money
}

// Balance reads an organization's account (PostgreSQL on the ledger's side: not per call).
func (c *Client) Balance(ctx context.Context, orgID string) (Balance, error) {
	var resp *ledgerv1.GetBalanceResponse
	err := c.unaryCall(ctx, "GetBalance", func(ctx context.Context) (err error) {
		resp, err = c.ledger.GetBalance(ctx, &ledgerv1.GetBalanceRequest{OrgId: orgID})
		return err
	})
	if err != nil {
		return Balance{}, err
	}
	var b Balance
	if b.Balance, err = decode("reading the balance", "balance", resp.GetBalance()); err != nil {
		return Balance{}, err
	}
	if b.Available, err = decode("reading the balance", "available", resp.GetAvailable()); err != nil {
		return Balance{}, err
	}
	if resp.GetHeld() != nil {
		if b.Held, err = decode("reading the balance", "held", resp.GetHeld()); err != nil {
			return Balance{}, err
		}
	}
	return b, nil
}

// unaryCall runs call with a deadline per attempt, retrying Unavailable and the client's own
// deadlines with backoff; the request (and its idempotency key) is the same every time.
func (c *Client) unaryCall(ctx context.Context, method string, call func(context.Context) error) error {
	start := time.Now()
	for attempt := 1; ; attempt++ {
		actx, cancel := context.WithTimeout(ctx, c.timeout)
		err := call(actx)
		cancel()
		if err == nil {
			c.metrics.observe(method, codes.OK, start)
			return nil
		}
		code := status.Code(err)
		if ctx.Err() != nil {
			c.metrics.observe(method, status.FromContextError(ctx.Err()).Code(), start)
			return fmt.Errorf("client: %s: %w", method, ctx.Err())
		}
		if !retryable(code) || attempt >= c.retry.MaxAttempts {
			c.metrics.observe(method, code, start)
			return classify(method, err)
		}
		c.metrics.retries.WithLabelValues(method).Inc()
		if err := c.backoff(ctx, attempt); err != nil {
			c.metrics.observe(method, status.FromContextError(err).Code(), start)
			return fmt.Errorf("client: %s: %w", method, err)
		}
	}
}

// retryable says whether a failure may be retried with the same request: the ledger could not
// be reached or did not answer in time. Everything else is a definitive answer.
func retryable(code codes.Code) bool {
	return code == codes.Unavailable || code == codes.DeadlineExceeded
}

// backoffFor is the jittered wait before attempt+1: uniform in [0, min(max, initial·2^(attempt-1))].
func (c *Client) backoffFor(attempt int) time.Duration {
	bound := c.retry.InitialBackoff
	for i := 1; i < attempt && bound < c.retry.MaxBackoff; i++ {
		bound *= 2
	}
	bound = min(bound, c.retry.MaxBackoff)
	return time.Duration(rand.Int64N(int64(bound) + 1)) //nolint:gosec // jitter, not security
}

func (c *Client) backoff(ctx context.Context, attempt int) error {
	t := time.NewTimer(c.backoffFor(attempt))
	defer t.Stop()
	select {
	case <-ctx.Done():
		return ctx.Err()
	case <-t.C:
		return nil
	}
}
