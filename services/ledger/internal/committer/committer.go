// Package committer batches concurrent ledger writes into shared PostgreSQL transactions (group
// commit): a durable write is acknowledged only after its batch commits, and one commit (one
// fsync) serves every write of the batch.
package committer

import (
	"context"
	"errors"
	"fmt"
	"hash/fnv"
	"log/slog"
	"sync"
	"sync/atomic"
	"time"

	"go.opentelemetry.io/otel/attribute"
	"go.opentelemetry.io/otel/trace"

	"github.com/tallyhq/tally/services/ledger/internal/ledger"
)

// ErrClosed is returned for writes submitted after shutdown began.
var ErrClosed = errors.New("ledger is shutting down")

// Applier runs a batch in one transaction.
type Applier interface {
	Apply(ctx context.Context, reqs []*ledger.Request) (ledger.Applied, error)
}

// Config configures a GroupCommitter.
type Config struct {
	Store Applier
	// MaxBatch bounds the requests of one transaction (default 256).
	MaxBatch int
	// MaxWait is how long a batch may wait for more requests once it has one (default 0: take
	// what queued up while the previous batch was committing, wait for nothing more).
	MaxWait time.Duration
	// Workers is the number of batches in flight at once (default 1).
	Workers int
	// OnCommit runs after each commit, before the writers are answered (cache, event wake-up).
	OnCommit func(context.Context, ledger.Applied)
	// RetryFor is how long a batch is retried when the database is unavailable (default 2s): a
	// PostgreSQL restart within it is invisible to the writers. Each retry is safe whatever the
	// attempt before did: what committed replays through its idempotency keys.
	RetryFor time.Duration
	// OnUnknownOutcome runs when a batch fails after an attempt whose COMMIT went unanswered:
	// it may have committed without anyone updating the cache.
	OnUnknownOutcome func()
	Logger           *slog.Logger
	// Tracer, when set, gives each batch its own span (the commit runs in a worker, outside
	// every request's trace), linked to the spans of the requests it carries, each of which is
	// linked back to it; the batch's SQL spans are its children. Nil traces nothing.
	Tracer trace.Tracer
}

// probeEvery spaces the writes let through while the database is down: the others are
// refused at once instead of queueing behind a batch that cannot commit.
const probeEvery = 100 * time.Millisecond

type pending struct {
	req *ledger.Request
	// done receives the request's outcome, once, from the worker that committed it: it must
	// not block (Submit's sends on a buffered channel, a stream's appends to its acks).
	done func(ledger.Outcome)
	// span is the submitting request's span (invalid when untraced); batch is the span of the
	// batch that carried it, set before done is sent.
	span  trace.SpanContext
	batch trace.SpanContext
}

// GroupCommitter is the single write path of the ledger. Writes are spread over the workers by
// organization, so two batches of one replica never wait on each other's row locks.
type GroupCommitter struct {
	cfg     Config
	queues  []chan *pending
	stopped chan struct{}
	once    sync.Once
	// down is set when a batch failed for want of the database and cleared by the next commit;
	// nextProbe is when the next write may try (unix nanos).
	down      atomic.Bool
	nextProbe atomic.Int64
}

// New returns a GroupCommitter; call Run to start it.
func New(cfg Config) (*GroupCommitter, error) {
	if cfg.Store == nil || cfg.Logger == nil {
		return nil, errors.New("committer: store and logger are required")
	}
	if cfg.MaxBatch <= 0 {
		cfg.MaxBatch = 256
	}
	if cfg.Workers <= 0 {
		cfg.Workers = 1
	}
	if cfg.OnCommit == nil {
		cfg.OnCommit = func(context.Context, ledger.Applied) {}
	}
	if cfg.OnUnknownOutcome == nil {
		cfg.OnUnknownOutcome = func() {}
	}
	if cfg.RetryFor <= 0 {
		cfg.RetryFor = 2 * time.Second
	}
	g := &GroupCommitter{cfg: cfg, stopped: make(chan struct{})}
	for range cfg.Workers {
		g.queues = append(g.queues, make(chan *pending, cfg.MaxBatch*4))
	}
	return g, nil
}

// Submit queues req and waits for its batch to commit. If ctx ends first the write may still
// commit; a retry with the same idempotency key returns its result.
func (g *GroupCommitter) Submit(ctx context.Context, req *ledger.Request) (ledger.Result, error) {
	ch := make(chan ledger.Outcome, 1)
	p := &pending{req: req, done: func(o ledger.Outcome) { ch <- o }, span: trace.SpanContextFromContext(ctx)}
	if err := g.enqueue(ctx, p); err != nil {
		return ledger.Result{}, err
	}
	select {
	case o := <-ch:
		if p.batch.IsValid() {
			trace.SpanFromContext(ctx).AddLink(trace.Link{SpanContext: p.batch})
		}
		return o.Result, o.Err
	case <-ctx.Done():
		return ledger.Result{}, ctx.Err()
	}
}

// Enqueue queues req without waiting for its commit: done is called once with its outcome,
// from the committing worker, after the batch committed (or failed), so it must not block. It
// blocks only while the worker's queue is full (back-pressure); an error return means req was
// not queued and done is never called.
func (g *GroupCommitter) Enqueue(ctx context.Context, req *ledger.Request, done func(ledger.Outcome)) error {
	return g.enqueue(ctx, &pending{req: req, done: done, span: trace.SpanContextFromContext(ctx)})
}

func (g *GroupCommitter) enqueue(ctx context.Context, p *pending) error {
	select {
	case <-g.stopped:
		return ErrClosed
	default:
	}
	if !g.admit() {
		return fmt.Errorf("%w: writes are refused until it is back", ledger.ErrUnavailable)
	}
	select {
	case g.queue(p.req) <- p:
		return nil
	case <-g.stopped:
		return ErrClosed
	case <-ctx.Done():
		return ctx.Err()
	}
}

// admit says whether a write may be queued: always, unless the database is down, when one
// write per probeEvery goes through to find out whether it is back.
func (g *GroupCommitter) admit() bool {
	if !g.down.Load() {
		return true
	}
	next := g.nextProbe.Load()
	now := time.Now().UnixNano()
	return now >= next && g.nextProbe.CompareAndSwap(next, now+int64(probeEvery))
}

func (g *GroupCommitter) markDown() {
	g.nextProbe.Store(time.Now().Add(probeEvery).UnixNano())
	if !g.down.Swap(true) {
		g.cfg.Logger.Warn("ledger database unavailable: refusing writes until it is back")
	}
}

func (g *GroupCommitter) markUp() {
	if g.down.Load() && g.down.Swap(false) {
		g.cfg.Logger.Info("ledger database available again")
	}
}

// queue picks the worker of req's organization (of its hold when it names one).
func (g *GroupCommitter) queue(req *ledger.Request) chan *pending {
	key := req.OrgID
	if req.HoldID != "" {
		key = req.HoldID
	}
	h := fnv.New32a()
	_, _ = h.Write([]byte(key))
	return g.queues[h.Sum32()%uint32(len(g.queues))]
}

// Run commits batches until ctx is done, then answers what is still queued with ErrClosed.
func (g *GroupCommitter) Run(ctx context.Context) error {
	var wg sync.WaitGroup
	for _, q := range g.queues {
		wg.Go(func() { g.work(ctx, q) })
	}
	<-ctx.Done()
	g.once.Do(func() { close(g.stopped) })
	wg.Wait()
	for _, q := range g.queues {
	drain:
		for {
			select {
			case p := <-q:
				p.done(ledger.Outcome{Err: ErrClosed})
			default:
				break drain
			}
		}
	}
	return nil
}

func (g *GroupCommitter) work(ctx context.Context, queue chan *pending) {
	batch := make([]*pending, 0, g.cfg.MaxBatch)
	for {
		batch = batch[:0]
		select {
		case <-ctx.Done():
			return
		case p := <-queue:
			batch = append(batch, p)
		}
		batch = g.fill(queue, batch)
		// Batches already taken from the queue are finished even during shutdown.
		g.commitTraced(context.WithoutCancel(ctx), batch)
	}
}

func (g *GroupCommitter) fill(queue chan *pending, batch []*pending) []*pending {
	var timeout <-chan time.Time
	if g.cfg.MaxWait > 0 {
		t := time.NewTimer(g.cfg.MaxWait)
		defer t.Stop()
		timeout = t.C
	}
	for len(batch) < g.cfg.MaxBatch {
		select {
		case p := <-queue:
			batch = append(batch, p)
			continue
		default:
		}
		if timeout == nil {
			return batch
		}
		select {
		case p := <-queue:
			batch = append(batch, p)
		case <-timeout:
			return batch
		}
	}
	return batch
}

// commitTraced commits batch under a span of its own (Config.Tracer) linked to the spans of its
// requests, when any of them is traced; an untraced batch costs nothing more.
func (g *GroupCommitter) commitTraced(ctx context.Context, batch []*pending) {
	if g.cfg.Tracer == nil {
		g.commit(ctx, batch)
		return
	}
	var links []trace.Link
	for _, p := range batch {
		// A stream's debits share its span: one link for a run of them.
		if p.span.IsValid() && (len(links) == 0 || !links[len(links)-1].SpanContext.Equal(p.span)) {
			links = append(links, trace.Link{SpanContext: p.span})
		}
	}
	if len(links) == 0 {
		g.commit(ctx, batch)
		return
	}
	ctx, span := g.cfg.Tracer.Start(ctx, "ledger.commit_batch", trace.WithNewRoot(), trace.WithSpanKind(trace.SpanKindInternal),
		trace.WithLinks(links...), trace.WithAttributes(attribute.Int("tally.batch.size", len(batch))))
	defer span.End()
	sc := span.SpanContext()
	for _, p := range batch {
		p.batch = sc
	}
	g.commit(ctx, batch)
}

func (g *GroupCommitter) commit(ctx context.Context, batch []*pending) {
	reqs := make([]*ledger.Request, len(batch))
	for i, p := range batch {
		reqs[i] = p.req
	}
	applied, err := g.apply(ctx, reqs)
	if errors.Is(err, ledger.ErrUnavailable) {
		for _, p := range batch {
			p.done(ledger.Outcome{Err: fmt.Errorf("applying ledger write: %w", err)})
		}
		return
	}
	if err != nil && len(batch) > 1 {
		// One bad request must not fail its neighbours: retry each on its own.
		g.cfg.Logger.Warn("ledger batch failed, retrying one by one", "size", len(batch), "err", err)
		for _, p := range batch {
			g.commit(ctx, []*pending{p})
		}
		return
	}
	if err != nil {
		batch[0].done(ledger.Outcome{Err: fmt.Errorf("applying ledger write: %w", err)})
		return
	}
	g.cfg.OnCommit(ctx, applied)
	for i, p := range batch {
		p.done(applied.Outcomes[i])
	}
}

// apply runs a batch, retrying it while the database is unavailable, for up to RetryFor (not at
// all once the database is known to be down: the writers are answered at once) or until ctx is
// done, whichever comes first.
func (g *GroupCommitter) apply(ctx context.Context, reqs []*ledger.Request) (ledger.Applied, error) {
	start := time.Now()
	backoff := 5 * time.Millisecond
	unknown := false
	for attempt := 1; ; attempt++ {
		applied, err := g.cfg.Store.Apply(ctx, reqs)
		if err == nil {
			g.markUp()
			return applied, nil
		}
		if !errors.Is(err, ledger.ErrUnavailable) {
			return ledger.Applied{}, err
		}
		unknown = unknown || errors.Is(err, ledger.ErrOutcomeUnknown)
		if g.down.Load() || time.Since(start)+backoff > g.cfg.RetryFor {
			g.markDown()
			if unknown {
				g.cfg.OnUnknownOutcome()
			}
			return ledger.Applied{}, err
		}
		g.cfg.Logger.Debug("ledger batch hit an unavailable database, retrying", "attempt", attempt, "size", len(reqs), "err", err)
		t := time.NewTimer(backoff)
		select {
		case <-t.C:
		case <-ctx.Done():
			t.Stop()
			if unknown {
				g.cfg.OnUnknownOutcome()
			}
			return ledger.Applied{}, fmt.Errorf("%w (retry abandoned: %w)", err, context.Cause(ctx))
		}
		backoff = min(2*backoff, 200*time.Millisecond)
	}
}
