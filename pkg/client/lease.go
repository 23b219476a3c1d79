package client

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"sync"
	"sync/atomic"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/tallyhq/tally/pkg/money"
)

// LeaseConfig configures a credit lease (see the package documentation).
type LeaseConfig struct {
	OrgID string
	// Currency of the holds; "" is the organization's.
	Currency string
	// HoldAmount is the size of each hold (required): the most the lease can authorise locally
	// between two captures. Less is held when less is available.
	HoldAmount money.Nanos
	// RefillBelow: when the current hold has less left, the next one is reserved at once
	// (default HoldAmount/2).
	RefillBelow money.Nanos
	// TTL of each hold (default 1 minute, at least 4 seconds): what a crashed process keeps
	// held until the ledger's sweep releases it.
	TTL time.Duration
	// CaptureInterval is how often what was drawn is captured (default 1s, at most TTL/8): a
	// crash loses at most that much traffic, never more than one hold.
	CaptureInterval time.Duration
	// Description and Metadata are those of the captures (metadata "model_id" names a model in
	// the usage summary). Description defaults to "credit lease".
	Description string
	Metadata    map[string]string
}

// ErrLeaseExhausted is returned by Lease.Debit when the lease's hold cannot cover the amount (the
// next hold is being reserved, or the organization has no more available credits).
var ErrLeaseExhausted = errors.New("client: the lease's hold cannot cover this amount")

// Lease is a credit lease on one organization: Authorize and Debit against a hold, locally. It
// is safe for concurrent use.
type Lease struct {
	c   *Client
	cfg LeaseConfig
	id  string

	// remaining is what the active hold has left (0 without one), read by Authorize.
	remaining atomic.Int64

	mu        sync.Mutex
	active    *leaseHold
	prevKeys  map[string]money.Nanos // keys of the hold before the active one
	gen       int                    // generation of the active (or last) hold
	unsure    money.Nanos            // a reserve of generation gen+1 whose outcome is unknown
	unsettled []*leaseHold           // drawn holds not captured yet
	drawn     money.Nanos            // every local debit
	captured  money.Nanos            // every capture and late debit confirmed
	closed    bool

	refill  chan struct{}
	stop    chan struct{}
	done    chan struct{}
	loopCtx context.Context
	cancel  context.CancelFunc

	debits, exhausted prometheus.Counter
}

// leaseHold is one hold of a lease and what was drawn from it.
type leaseHold struct {
	id         string
	gen        int
	size       money.Nanos
	drawn      money.Nanos
	expiresAt  time.Time
	reservedAt time.Time
	keys       map[string]money.Nanos
}

// LeaseDebited is a local debit of a lease.
type LeaseDebited struct {
	// HoldID is the hold it was drawn from; it is charged when that hold is captured.
	HoldID   string
	Replayed bool
}

// LeaseStats are a lease's totals.
type LeaseStats struct {
	Drawn    money.Nanos // sum of the local debits
	Captured money.Nanos // confirmed by the ledger (captures and late debits)
	Holds    int         // holds reserved
}

// Lease opens a credit lease on an organization and reserves its first hold (when the
// organization has available credits; otherwise the lease starts empty and keeps trying). It
// ends with its Close or the Client's.
func (c *Client) Lease(ctx context.Context, cfg LeaseConfig) (*Lease, error) {
	if cfg.OrgID == "" {
		return nil, errors.New("client: LeaseConfig.OrgID is required")
	}
	if cfg.HoldAmount <= 0 {
		return nil, errors.New("client: LeaseConfig.HoldAmount must be positive")
	}
	if cfg.RefillBelow == 0 {
		cfg.RefillBelow = cfg.HoldAmount / 2
	}
	if cfg.TTL == 0 {
		cfg.TTL = time.Minute
	}
	if cfg.TTL < 4*time.Second {
		return nil, errors.New("client: LeaseConfig.TTL must be at least 4s")
	}
	if cfg.CaptureInterval == 0 {
		cfg.CaptureInterval = time.Second
	}
	if cfg.CaptureInterval < 0 || cfg.RefillBelow < 0 || cfg.RefillBelow > cfg.HoldAmount {
		return nil, errors.New("client: LeaseConfig.CaptureInterval must be positive and RefillBelow within HoldAmount")
	}
	if cfg.CaptureInterval > cfg.TTL/8 {
		// The lease checks its hold's age once per interval: it must see the quarter-TTL margin.
		return nil, errors.New("client: LeaseConfig.CaptureInterval must be at most an eighth of TTL")
	}
	if cfg.Description == "" {
		cfg.Description = "credit lease"
	}
	var raw [12]byte
	if _, err := rand.Read(raw[:]); err != nil {
		return nil, fmt.Errorf("client: lease id: %w", err)
	}
	l := &Lease{c: c, cfg: cfg, id: hex.EncodeToString(raw[:]), refill: make(chan struct{}, 1),
		stop: make(chan struct{}), done: make(chan struct{}),
		debits: c.metrics.lease.WithLabelValues("debit"), exhausted: c.metrics.lease.WithLabelValues("exhausted")}
	l.loopCtx, l.cancel = context.WithCancel(context.WithoutCancel(ctx))
	c.mu.Lock()
	if c.closed {
		c.mu.Unlock()
		l.cancel()
		return nil, ErrClosed
	}
	c.leases[l] = struct{}{}
	c.mu.Unlock()
	if err := l.rotate(ctx); err != nil && !errors.Is(err, errNoCredits) {
		c.mu.Lock()
		delete(c.leases, l)
		c.mu.Unlock()
		l.cancel()
		return nil, err
	}
	go l.run()
	return l, nil
}

// ID is the lease's id, the root of its idempotency keys.
func (l *Lease) ID() string { return l.id }

// Authorize reports whether the active hold can still cover amount, without a round trip. It
// does not set the amount aside: a Debit may still find the hold exhausted by then.
func (l *Lease) Authorize(amount money.Nanos) bool {
	if l.remaining.Load() >= int64(amount) {
		return true
	}
	l.askRefill()
	return false
}

// Remaining is what the active hold has left.
func (l *Lease) Remaining() money.Nanos { return money.Nanos(l.remaining.Load()) }

// Debit draws amount from the active hold, locally; it is charged to the organization by the
// hold's capture. The same key again (within the active and the previous hold) is a replay; with
// another amount it is ErrKeyReused. ErrLeaseExhausted when the hold cannot cover it.
func (l *Lease) Debit(key string, amount money.Nanos) (LeaseDebited, error) {
	if key == "" || amount <= 0 {
		return LeaseDebited{}, errors.New("client: a lease debit needs a key and a positive amount")
	}
	l.mu.Lock()
	h := l.active
	if h != nil {
		prev, seen := h.keys[key]
		if !seen {
			prev, seen = l.prevKeys[key]
		}
		if seen {
			l.mu.Unlock()
			if prev != amount {
				return LeaseDebited{}, fmt.Errorf("client: lease debit %q: %w", key, ErrKeyReused)
			}
			return LeaseDebited{HoldID: h.id, Replayed: true}, nil
		}
	}
	if h == nil || h.size-h.drawn < amount {
		l.mu.Unlock()
		l.exhausted.Inc()
		l.askRefill()
		return LeaseDebited{}, ErrLeaseExhausted
	}
	h.drawn += amount
	h.keys[key] = amount
	l.drawn += amount
	left := h.size - h.drawn
	l.remaining.Store(int64(left))
	l.mu.Unlock()
	l.debits.Inc()
	if left < l.cfg.RefillBelow {
		l.askRefill()
	}
	return LeaseDebited{HoldID: h.id}, nil
}

// Stats returns the lease's totals.
func (l *Lease) Stats() LeaseStats {
	l.mu.Lock()
	defer l.mu.Unlock()
	return LeaseStats{Drawn: l.drawn, Captured: l.captured, Holds: l.gen}
}

func (l *Lease) askRefill() {
	select {
	case l.refill <- struct{}{}:
	default:
	}
}

// Close captures what was drawn and releases the rest of the hold. It returns an error naming
// what could not be captured when ctx ends or the ledger stays unreachable: those holds expire
// at their TTL, and their drawn amount is not charged.
func (l *Lease) Close(ctx context.Context) error {
	l.mu.Lock()
	if l.closed {
		l.mu.Unlock()
		<-l.done
		return nil
	}
	l.closed = true
	l.mu.Unlock()
	close(l.stop)
	select {
	case <-l.done:
	case <-ctx.Done():
		l.cancel()
		<-l.done
	}
	l.mu.Lock()
	last := l.active
	l.active = nil
	l.remaining.Store(0)
	if last != nil {
		l.unsettled = append(l.unsettled, last)
	}
	l.mu.Unlock()
	l.settleAll(ctx)
	l.cancel()
	l.c.mu.Lock()
	delete(l.c.leases, l)
	l.c.mu.Unlock()
	l.mu.Lock()
	defer l.mu.Unlock()
	if len(l.unsettled) > 0 {
		var left money.Nanos
		for _, h := range l.unsettled {
			left += h.drawn
		}
		return fmt.Errorf("client: lease %s on %s: %d holds (%s drawn) not captured; they expire at their TTL",
			l.id, l.cfg.OrgID, len(l.unsettled), left)
	}
	return nil
}

// run rotates the holds: on each tick, and whenever a debit finds the hold running low.
func (l *Lease) run() {
	defer close(l.done)
	tick := time.NewTicker(l.cfg.CaptureInterval)
	defer tick.Stop()
	for {
		select {
		case <-l.stop:
			return
		case <-tick.C:
		case <-l.refill:
		}
		if l.due() {
			if err := l.rotate(l.loopCtx); err != nil && !errors.Is(err, errNoCredits) {
				l.c.logger.Warn("credit lease could not reserve its next hold", "org_id", l.cfg.OrgID, "lease", l.id, "error", err)
				l.freezeIfExpiring()
			}
		}
		l.settleAll(l.loopCtx)
	}
}

// due says whether the active hold should be replaced now.
func (l *Lease) due() bool {
	l.mu.Lock()
	defer l.mu.Unlock()
	h := l.active
	switch {
	case h == nil:
		return true
	case h.size-h.drawn < l.cfg.RefillBelow:
		return true
	case h.drawn > 0 && time.Since(h.reservedAt) >= l.cfg.CaptureInterval:
		return true
	default:
		return time.Now().After(h.expiresAt.Add(-l.cfg.TTL / 2))
	}
}

// freezeIfExpiring stops drawing from a hold within a quarter of its TTL of expiring, so that
// nothing is drawn from a hold the ledger may release.
func (l *Lease) freezeIfExpiring() {
	l.mu.Lock()
	defer l.mu.Unlock()
	if h := l.active; h != nil && time.Now().After(h.expiresAt.Add(-l.cfg.TTL/4)) {
		l.active = nil
		l.remaining.Store(0)
		l.prevKeys = h.keys
		l.unsettled = append(l.unsettled, h)
	}
}

// errNoCredits: the organization has nothing available to hold.
var errNoCredits = errors.New("client: nothing available to hold")

// rotate reserves the next hold, makes it the active one, and queues the previous one for its
// capture. When the organization cannot afford a second hold, the previous one is captured
// first, so its unused part is available again.
func (l *Lease) rotate(ctx context.Context) error {
	next, err := l.reserve(ctx)
	if errors.Is(err, errNoCredits) {
		l.retire()
		l.settleAll(ctx)
		next, err = l.reserve(ctx)
	}
	if err != nil {
		return err
	}
	l.mu.Lock()
	defer l.mu.Unlock()
	if old := l.active; old != nil {
		l.prevKeys = old.keys
		l.unsettled = append(l.unsettled, old)
	}
	if l.closed { // Close came during the reserve: settle this one too
		l.active = nil
		l.remaining.Store(0)
		l.unsettled = append(l.unsettled, next)
		return nil
	}
	l.active = next
	l.remaining.Store(int64(next.size))
	return nil
}

// retire stops drawing from the active hold and queues it for its capture.
func (l *Lease) retire() {
	l.mu.Lock()
	defer l.mu.Unlock()
	if h := l.active; h != nil {
		l.active = nil
		l.remaining.Store(0)
		l.prevKeys = h.keys
		l.unsettled = append(l.unsettled, h)
	}
}

// reserve places the hold of the next generation. Its key names the lease, the generation and
// the amount: a retry of the same reserve (an unknown outcome) is replayed, a smaller one after
// a refusal is another request.
func (l *Lease) reserve(ctx context.Context) (*leaseHold, error) {
	l.mu.Lock()
	gen, amount := l.gen+1, l.cfg.HoldAmount
	if l.unsure > 0 {
		amount = l.unsure
	}
	l.mu.Unlock()
	for range 3 {
		key := fmt.Sprintf("tally-lease/%s/%d/reserve/%d", l.id, gen, amount)
		r, err := l.c.Reserve(ctx, ReserveRequest{OrgID: l.cfg.OrgID, Amount: money.Money{Nanos: amount, Currency: l.cfg.Currency},
			TTL: l.cfg.TTL, IdempotencyKey: key, Description: l.cfg.Description})
		if err == nil {
			l.c.metrics.lease.WithLabelValues("reserve").Inc()
			l.mu.Lock()
			l.gen, l.unsure = gen, 0
			l.mu.Unlock()
			return &leaseHold{id: r.Hold.ID, gen: gen, size: r.Hold.Amount.Nanos, expiresAt: r.Hold.ExpiresAt,
				reservedAt: time.Now(), keys: map[string]money.Nanos{}}, nil
		}
		if !errors.Is(err, ErrFailedPrecondition) {
			if errors.Is(err, ErrUnavailable) {
				l.mu.Lock()
				l.unsure = amount // it may exist: the next attempt must be this same request
				l.mu.Unlock()
			}
			return nil, fmt.Errorf("client: lease %s reserving: %w", l.id, err)
		}
		b, err := l.c.Balance(ctx, l.cfg.OrgID)
		if err != nil {
			return nil, fmt.Errorf("client: lease %s reading the balance: %w", l.id, err)
		}
		if b.Available.Nanos <= 0 {
			return nil, errNoCredits
		}
		amount = min(amount, b.Available.Nanos)
	}
	return nil, errNoCredits
}

// settleAll captures (or releases) every retired hold; those the ledger cannot be asked about
// now stay for the next pass.
func (l *Lease) settleAll(ctx context.Context) {
	l.mu.Lock()
	todo := l.unsettled
	l.unsettled = nil
	l.mu.Unlock()
	var keep []*leaseHold
	for _, h := range todo {
		if err := l.settle(ctx, h); err != nil {
			l.c.metrics.lease.WithLabelValues("capture_failed").Inc()
			l.c.logger.Warn("credit lease capture failed", "org_id", l.cfg.OrgID, "lease", l.id, "hold_id", h.id, "error", err)
			keep = append(keep, h)
		}
	}
	l.mu.Lock()
	l.unsettled = append(keep, l.unsettled...)
	l.mu.Unlock()
}

// settle charges exactly what was drawn from a retired hold: a Capture keyed by the lease and
// the generation (retried, it is replayed), a Release when nothing was drawn, and a Debit with
// a derived key if the hold has already ended (expired during a long outage).
func (l *Lease) settle(ctx context.Context, h *leaseHold) error {
	if h.drawn == 0 {
		_, err := l.c.Release(ctx, h.id)
		return err
	}
	amount := money.Money{Nanos: h.drawn, Currency: l.cfg.Currency}
	_, err := l.c.Capture(ctx, CaptureRequest{HoldID: h.id, Amount: amount,
		IdempotencyKey: fmt.Sprintf("tally-lease/%s/%d/capture", l.id, h.gen), Description: l.cfg.Description, Metadata: l.cfg.Metadata})
	if errors.Is(err, ErrFailedPrecondition) {
		l.c.metrics.lease.WithLabelValues("late_debit").Inc()
		_, err = l.c.Debit(ctx, Debit{OrgID: l.cfg.OrgID, Amount: amount, IdempotencyKey: fmt.Sprintf("tally-lease/%s/%d/debit", l.id, h.gen),
			Description: l.cfg.Description, Metadata: l.cfg.Metadata})
	}
	if err != nil {
		return err
	}
	l.c.metrics.lease.WithLabelValues("capture").Inc()
	l.mu.Lock()
	l.captured += h.drawn
	l.mu.Unlock()
	return nil
}
