package catalog

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"math/rand/v2"
	"sync"
	"sync/atomic"
	"time"

	"google.golang.org/grpc"

	pricingv1 "github.com/tallyhq/tally/pkg/gen/tally/pricing/v1"
)

// CatalogStreamer is the part of pricingv1.PricingServiceClient a Watcher uses.
type CatalogStreamer interface {
	WatchCatalog(ctx context.Context, in *pricingv1.WatchCatalogRequest, opts ...grpc.CallOption) (grpc.ServerStreamingClient[pricingv1.WatchCatalogResponse], error)
}

// WatcherConfig configures a Watcher.
type WatcherConfig struct {
	// Client follows the pricing service, e.g. pricingv1.NewPricingServiceClient(conn) on a
	// connection carrying a service token (rpcclient.Dial). Required.
	Client CatalogStreamer
	// Logger is required.
	Logger *slog.Logger
	// MinBackoff and MaxBackoff bound the wait between reconnections (default 100ms and 5s).
	MinBackoff, MaxBackoff time.Duration
	// IdleTimeout is how long a stream may stay silent before it is considered dead and
	// reopened (default 45s; the pricing service sends a heartbeat every 15s).
	IdleTimeout time.Duration
	// OnUpdate, when set, is called with every new catalog after it became Current.
	OnUpdate func(*Catalog)
}

// Watcher keeps an in-memory Catalog current by following the pricing service's WatchCatalog
// stream, reconnecting with backoff. Current is a lock-free read, cheap enough for every call.
type Watcher struct {
	cfg     WatcherConfig
	current atomic.Pointer[Catalog]
	ready   chan struct{}
	once    sync.Once
}

// NewWatcher returns a Watcher; Run follows the stream.
func NewWatcher(cfg WatcherConfig) (*Watcher, error) {
	if cfg.Client == nil || cfg.Logger == nil {
		return nil, errors.New("catalog watcher: client and logger are required")
	}
	if cfg.MinBackoff <= 0 {
		cfg.MinBackoff = 100 * time.Millisecond
	}
	if cfg.MaxBackoff < cfg.MinBackoff {
		cfg.MaxBackoff = max(5*time.Second, cfg.MinBackoff)
	}
	if cfg.IdleTimeout <= 0 {
		cfg.IdleTimeout = 45 * time.Second
	}
	return &Watcher{cfg: cfg, ready: make(chan struct{})}, nil
}

// Current returns the newest catalog received, or nil before the first one (see Ready).
func (w *Watcher) Current() *Catalog { return w.current.Load() }

// Ready waits until a first catalog has been received or ctx is done.
func (w *Watcher) Ready(ctx context.Context) error {
	select {
	case <-w.ready:
		return nil
	case <-ctx.Done():
		return fmt.Errorf("waiting for the price catalog: %w", ctx.Err())
	}
}

// Run follows the stream until ctx is done, reconnecting after every failure, and returns nil
// then. It keeps serving the last catalog received while disconnected.
func (w *Watcher) Run(ctx context.Context) error {
	backoff := w.cfg.MinBackoff
	for {
		progressed, err := w.follow(ctx)
		if ctx.Err() != nil {
			return nil
		}
		if progressed {
			backoff = w.cfg.MinBackoff
		}
		w.cfg.Logger.Warn("price catalog stream interrupted, reconnecting", "err", err, "backoff", backoff)
		// Full jitter keeps replicas from reconnecting in lockstep after a pricing restart.
		t := time.NewTimer(backoff/2 + rand.N(backoff/2+1))
		select {
		case <-ctx.Done():
			t.Stop()
			return nil
		case <-t.C:
		}
		backoff = min(backoff*2, w.cfg.MaxBackoff)
	}
}

// follow opens one stream and applies its snapshots until it fails. progressed reports whether
// any message arrived, which resets the backoff.
func (w *Watcher) follow(ctx context.Context) (progressed bool, err error) {
	ctx, cancel := context.WithCancelCause(ctx)
	defer cancel(nil)
	errIdle := fmt.Errorf("no message for %s", w.cfg.IdleTimeout)
	idle := time.AfterFunc(w.cfg.IdleTimeout, func() { cancel(errIdle) })
	defer idle.Stop()

	var known int64
	if c := w.Current(); c != nil {
		known = c.Version()
	}
	stream, err := w.cfg.Client.WatchCatalog(ctx, &pricingv1.WatchCatalogRequest{KnownCatalogVersion: known})
	if err != nil {
		return false, fmt.Errorf("opening catalog stream: %w", err)
	}
	for {
		msg, err := stream.Recv()
		if err != nil {
			if cause := context.Cause(ctx); errors.Is(cause, errIdle) {
				err = cause
			}
			return progressed, fmt.Errorf("receiving catalog: %w", err)
		}
		progressed = true
		idle.Reset(w.cfg.IdleTimeout)
		if msg.GetSnapshot() == nil {
			continue // heartbeat
		}
		if err := w.apply(msg.GetSnapshot()); err != nil {
			// A snapshot this client cannot read will not improve on retry soon; keep the last
			// good catalog and let the backoff pace the retries.
			return progressed, err
		}
	}
}

// apply makes a snapshot Current unless it is older than the current catalog (a lagging
// replica of the pricing service may send one after a reconnect).
func (w *Watcher) apply(s *pricingv1.CatalogSnapshot) error {
	c, err := FromProto(s)
	if err != nil {
		return fmt.Errorf("reading catalog snapshot %d: %w", s.GetCatalogVersion(), err)
	}
	if cur := w.Current(); cur != nil && c.Version() <= cur.Version() {
		return nil
	}
	w.current.Store(c)
	w.once.Do(func() { close(w.ready) })
	w.cfg.Logger.Info("price catalog updated", "catalog_version", c.Version())
	if w.cfg.OnUpdate != nil {
		w.cfg.OnUpdate(c)
	}
	return nil
}
