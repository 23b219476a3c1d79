package client

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"sync"
	"time"

	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"

	ledgerv1 "github.com/tallyhq/tally/pkg/gen/tally/ledger/v1"
	"github.com/tallyhq/tally/pkg/ledgerclient"
)

const (
	// maxBatch is the ledger's limit of debits per DebitStreamRequest.
	maxBatch = 1000
	// defaultMaxInFlight applies when the ledger's first response names no bound.
	defaultMaxInFlight = 1000
)

// pending is one Debit waiting for its ack.
type pending struct {
	ctx      context.Context
	req      *ledgerv1.DebitRequest
	done     chan ackResult // capacity 1: resolving never blocks
	start    time.Time
	sentAt   time.Time
	attempts int
}

type ackResult struct {
	d   Debited
	err error
}

// lane is one DebitStream and the goroutine that owns it: it batches the queued debits, keeps
// the unacknowledged ones within the ledger's bound, matches acks to callers, and reopens the
// stream (resending what was not acknowledged) when it breaks or stalls.
type lane struct {
	c       *Client
	queue   chan *pending
	stopped chan struct{} // closed when run returns
	abort   chan struct{} // closed when Close gives up waiting
	abortMu sync.Once
}

func newLane(c *Client, _ int) *lane {
	size := c.batch.QueueSize
	if size == 0 {
		size = 4 * max(c.batch.MaxInFlight, defaultMaxInFlight)
	}
	ln := &lane{c: c, queue: make(chan *pending, size), stopped: make(chan struct{}), abort: make(chan struct{})}
	go ln.run()
	return ln
}

// debit queues one debit and waits for its ack.
func (ln *lane) debit(ctx context.Context, req *ledgerv1.DebitRequest) (Debited, error) {
	p := &pending{ctx: ctx, req: req, done: make(chan ackResult, 1), start: time.Now()}
	select {
	case ln.queue <- p:
	case <-ctx.Done():
		return Debited{}, fmt.Errorf("client: Debit: %w", ctx.Err())
	case <-ln.stopped:
		return Debited{}, ErrClosed
	}
	select {
	case r := <-p.done:
		return r.d, r.err
	case <-ctx.Done():
		return Debited{}, fmt.Errorf("client: Debit: %w (it may be committed: retry with the same key)", ctx.Err())
	case <-ln.stopped:
		select {
		case r := <-p.done:
			return r.d, r.err
		default:
			return Debited{}, ErrClosed
		}
	}
}

// wait waits for the lane to flush and stop; when ctx ends first the lane gives up.
func (ln *lane) wait(ctx context.Context) error {
	select {
	case <-ln.stopped:
		return nil
	case <-ctx.Done():
		ln.abortMu.Do(func() { close(ln.abort) })
		<-ln.stopped
		return fmt.Errorf("client: closing before every debit was acknowledged: %w", ctx.Err())
	}
}

// laneStream is one open DebitStream.
type laneStream struct {
	stream ledgerv1.LedgerService_DebitStreamClient
	cancel context.CancelFunc
	events chan streamEvent
	window int
}

type streamEvent struct {
	acks []*ledgerv1.DebitAck
	// window is the ledger's new max_in_flight, 0 when unchanged.
	window int
	err    error
}

// open opens a stream and reads its first response (the in-flight bound, which later responses
// may change: the ledger sizes it from its commit latency). The stream lives as
// long as the Client, not as a caller's request: its context is its own.
//
//nolint:contextcheck // the stream outlives every call that uses it; Close ends it
func (ln *lane) open() (*laneStream, error) {
	ctx, cancel := context.WithCancel(context.Background())
	st, err := ln.c.ledger.DebitStream(ctx)
	if err != nil {
		cancel()
		return nil, err
	}
	timer := time.AfterFunc(ln.c.timeout, cancel)
	first, err := st.Recv()
	if !timer.Stop() && err == nil {
		err = status.Error(codes.DeadlineExceeded, "no first response on DebitStream")
	}
	if err != nil {
		cancel()
		return nil, err
	}
	window := ln.window(int(first.GetMaxInFlight()))
	if window == 0 {
		window = defaultMaxInFlight
	}
	ls := &laneStream{stream: st, cancel: cancel, events: make(chan streamEvent, 16), window: window}
	if len(first.GetAcks()) > 0 { // not expected on a first response; never drop acks
		ls.events <- streamEvent{acks: first.GetAcks()}
	}
	go func() {
		for {
			resp, err := st.Recv()
			ev := streamEvent{err: err}
			if err == nil {
				ev.acks, ev.window = resp.GetAcks(), ln.window(int(resp.GetMaxInFlight()))
			}
			select {
			case ls.events <- ev:
			case <-ctx.Done():
				return
			}
			if err != nil {
				return
			}
		}
	}()
	return ls, nil
}

// window is the stream's bound for the ledger's max_in_flight granted (0 when it says none):
// the grant, capped by BatchPolicy.MaxInFlight.
func (ln *lane) window(granted int) int {
	if granted <= 0 {
		return 0
	}
	if ln.c.batch.MaxInFlight > 0 {
		return min(granted, ln.c.batch.MaxInFlight)
	}
	return granted
}

// laneState is run's state, owned by its goroutine.
type laneState struct {
	ln       *lane
	st       *laneStream
	inflight map[uint64]*pending
	batch    []*pending // accepted, not sent
	delayed  []*pending // to resend after a backoff
	nextID   uint64
	failures int // consecutive failed opens
}

func (ln *lane) run() {
	defer close(ln.stopped)
	s := &laneState{ln: ln, inflight: map[uint64]*pending{}}
	c := ln.c
	var (
		lingerC, reconnectC, delayedC <-chan time.Time
		closing                       = c.closing
		draining                      bool
	)
	check := time.NewTicker(max(c.timeout/4, time.Millisecond))
	defer check.Stop()
	timer := func(d time.Duration) <-chan time.Time { return time.After(d) }
	defer s.end()
	for {
		if draining && len(s.inflight) == 0 && len(s.batch) == 0 && len(s.delayed) == 0 && len(ln.queue) == 0 {
			return
		}
		if s.st == nil && reconnectC == nil {
			opened, unary := s.connect()
			switch {
			case unary:
				s.unaryMode(c.closing)
				return
			case opened:
				delayedC = nil
			default:
				reconnectC = timer(c.backoffFor(s.failures))
			}
		}
		queueC, events := s.channels()
		select {
		case p := <-queueC:
			if s.take(p, draining) {
				lingerC = nil
			} else if lingerC == nil {
				lingerC = timer(c.batch.Linger)
			}
		case <-lingerC:
			lingerC = nil
			s.flush()
		case ev := <-events:
			if ev.err != nil {
				s.broken(ev.err)
				reconnectC = timer(c.backoffFor(1))
				continue
			}
			if ev.window > 0 {
				s.st.window = ev.window // a smaller window holds back sends until acks bring it below
			}
			retryAfter := s.acked(ev.acks)
			if retryAfter > 0 && delayedC == nil {
				delayedC = timer(retryAfter)
			}
			s.flush()
		case <-delayedC:
			delayedC = nil
			if s.st != nil {
				s.batch = append(s.delayed, s.batch...)
				s.delayed = nil
				s.flush()
			}
		case <-reconnectC:
			reconnectC = nil
		case <-closing:
			closing, draining = nil, true
			s.flush()
		case <-check.C:
			if s.st != nil && s.stalled() {
				s.broken(status.Error(codes.DeadlineExceeded, "no ack within the client's timeout"))
				reconnectC = timer(c.backoffFor(1))
			}
		case <-ln.abort:
			s.abandon()
			return
		}
	}
}

// channels are what run reads: the queue while the window has room (or while the ledger is
// unreachable, to answer newcomers at once), and the stream's events.
func (s *laneState) channels() (queue chan *pending, events chan streamEvent) {
	switch {
	case s.st != nil && len(s.inflight)+len(s.batch) < s.st.window:
		queue = s.ln.queue
	case s.st == nil && s.failures >= s.ln.c.retry.MaxAttempts:
		queue = s.ln.queue
	}
	if s.st != nil {
		events = s.st.events
	}
	return queue, events
}

// end closes the stream, if any, when run returns.
func (s *laneState) end() {
	if s.st != nil {
		_ = s.st.stream.CloseSend()
		s.st.cancel()
	}
}

// connect opens a stream and sends what waits for one (opened), or counts the failure; unary
// says the ledger refused the stream for good.
func (s *laneState) connect() (opened, unary bool) {
	c := s.ln.c
	st, err := s.ln.open()
	switch {
	case err != nil && !retryable(status.Code(err)):
		// Unimplemented (a ledger without the stream), PermissionDenied (one whose auth policy
		// predates it) or a refusal of our credentials: unary calls give every debit the
		// ledger's own answer.
		c.logger.Warn("ledger refused DebitStream: debits are sent as unary calls", "error", err)
		c.unary.Store(true)
		return false, true
	case err != nil:
		s.failures++
		c.logger.Debug("debit stream open failed", "error", err, "failures", s.failures)
		s.failOverdue(err)
		return false, false
	}
	if s.failures > 0 || len(s.delayed) > 0 {
		c.metrics.reconnects.Inc()
	}
	s.failures = 0
	s.st = st
	c.metrics.resent.Add(float64(len(s.delayed)))
	s.batch = append(s.delayed, s.batch...)
	s.delayed = nil
	s.flush()
	return true, false
}

// take handles a debit from the queue: answered at once when there is no stream, else batched;
// flushed says the batch was sent (full, window full, nothing in flight, no linger, or closing).
// With nothing in flight no acknowledgement can come to flush it, so a lone debit is not held
// for the linger; with debits in flight the batch fills until the linger or an acknowledgement.
func (s *laneState) take(p *pending, draining bool) (flushed bool) {
	c := s.ln.c
	if s.st == nil {
		s.resolve(p, Debited{}, &ledgerclient.Error{Op: "Debit", Code: codes.Unavailable, Msg: "the ledger's DebitStream cannot be opened", Kind: ErrUnavailable})
		return true
	}
	s.accept(p)
	if len(s.batch) >= c.batch.MaxSize || len(s.inflight)+len(s.batch) >= s.st.window || len(s.inflight) == 0 || c.batch.Linger < 0 || draining {
		s.flush()
		return true
	}
	return false
}

// accept adds a queued debit (and whatever else is queued, up to the bounds) to the batch.
func (s *laneState) accept(p *pending) {
	s.add(p)
	for len(s.batch) < s.ln.c.batch.MaxSize && len(s.inflight)+len(s.batch) < s.st.window {
		select {
		case p := <-s.ln.queue:
			s.add(p)
		default:
			return
		}
	}
}

func (s *laneState) add(p *pending) {
	if err := p.ctx.Err(); err != nil { // its caller has gone: not sent at all
		s.resolve(p, Debited{}, fmt.Errorf("client: Debit: %w", err))
		return
	}
	s.batch = append(s.batch, p)
}

// flush sends the batch in messages of at most MaxSize, within the window.
func (s *laneState) flush() {
	if s.st == nil {
		return
	}
	c := s.ln.c
	for len(s.batch) > 0 && len(s.inflight) < s.st.window {
		n := min(len(s.batch), c.batch.MaxSize, s.st.window-len(s.inflight))
		msg := &ledgerv1.DebitStreamRequest{Debits: make([]*ledgerv1.StreamedDebit, 0, n)}
		now := time.Now()
		for _, p := range s.batch[:n] {
			s.nextID++
			p.sentAt = now
			s.inflight[s.nextID] = p
			msg.Debits = append(msg.Debits, &ledgerv1.StreamedDebit{RequestId: s.nextID, Debit: p.req})
		}
		s.batch = s.batch[n:]
		c.metrics.batchSize.Observe(float64(n))
		c.metrics.inFlight.Add(float64(n))
		if err := s.st.stream.Send(msg); err != nil {
			// The stream is gone; its Recv reports why and broken resends what is in flight.
			return
		}
	}
	if len(s.batch) == 0 {
		s.batch = nil
	}
}

// acked resolves acks; an Unavailable refusal is kept for a resend, after the returned backoff.
func (s *laneState) acked(acks []*ledgerv1.DebitAck) time.Duration {
	c := s.ln.c
	var retryAfter time.Duration
	for _, a := range acks {
		p, ok := s.inflight[a.GetRequestId()]
		if !ok {
			continue // not ours (or already resolved): a server bug, never a reason to fail a caller
		}
		delete(s.inflight, a.GetRequestId())
		c.metrics.inFlight.Dec()
		if e := a.GetError(); e != nil {
			code := codes.Code(e.GetCode()) //nolint:gosec // a google.rpc.Code
			p.attempts++
			if retryable(code) && p.attempts < c.retry.MaxAttempts && p.ctx.Err() == nil {
				c.metrics.retries.WithLabelValues("Debit").Inc()
				s.delayed = append(s.delayed, p)
				retryAfter = max(retryAfter, c.backoffFor(p.attempts))
				continue
			}
			s.resolve(p, Debited{}, ackError(e))
			continue
		}
		d, err := debited(a.GetDebit())
		s.resolve(p, d, err)
	}
	return retryAfter
}

// broken handles the end of the stream: every unacknowledged debit is resent, with its key, on
// the next stream (the ledger replays those it had committed), unless its caller has gone or it
// has had its attempts.
func (s *laneState) broken(err error) {
	c := s.ln.c
	c.logger.Debug("debit stream broke", "error", err, "in_flight", len(s.inflight))
	s.st.cancel()
	s.st = nil
	ids := make([]uint64, 0, len(s.inflight))
	for id := range s.inflight {
		ids = append(ids, id)
	}
	slices.Sort(ids)
	c.metrics.inFlight.Sub(float64(len(ids)))
	resend := make([]*pending, 0, len(ids)+len(s.delayed))
	for _, id := range ids {
		p := s.inflight[id]
		p.attempts++
		resend = append(resend, p)
	}
	s.inflight = map[uint64]*pending{}
	s.delayed = append(resend, s.delayed...)
	s.failures = 1
	s.failOverdue(err)
}

// failOverdue answers the debits waiting for a stream whose callers have gone or that have had
// their attempts.
func (s *laneState) failOverdue(err error) {
	c := s.ln.c
	keep := s.delayed[:0]
	for _, p := range s.delayed {
		switch {
		case p.ctx.Err() != nil:
			s.resolve(p, Debited{}, fmt.Errorf("client: Debit: %w", p.ctx.Err()))
		case p.attempts >= c.retry.MaxAttempts:
			s.resolve(p, Debited{}, &ledgerclient.Error{Op: "Debit", Code: status.Code(err), Msg: err.Error(), Kind: ErrUnavailable})
		default:
			keep = append(keep, p)
		}
	}
	s.delayed = keep
	if s.failures >= c.retry.MaxAttempts {
		// Not even a stream after every attempt: nothing waits any longer.
		for _, list := range [][]*pending{s.delayed, s.batch} {
			for _, p := range list {
				s.resolve(p, Debited{}, &ledgerclient.Error{Op: "Debit", Code: status.Code(err), Msg: err.Error(), Kind: ErrUnavailable})
			}
		}
		s.delayed, s.batch = nil, nil
	}
}

// stalled says whether a debit has waited for its ack longer than the client's timeout.
func (s *laneState) stalled() bool {
	limit := time.Now().Add(-s.ln.c.timeout)
	for _, p := range s.inflight {
		if p.sentAt.Before(limit) {
			return true
		}
	}
	return false
}

// abandon answers everything still waiting when Close gives up.
func (s *laneState) abandon() {
	err := &ledgerclient.Error{Op: "Debit", Code: codes.Unavailable, Msg: "client closed before the ledger acknowledged the debit (it may be committed: retry with the same key)", Kind: ErrUnavailable}
	for id, p := range s.inflight {
		delete(s.inflight, id)
		s.ln.c.metrics.inFlight.Dec()
		s.resolve(p, Debited{}, err)
	}
	for _, list := range [][]*pending{s.batch, s.delayed} {
		for _, p := range list {
			s.resolve(p, Debited{}, err)
		}
	}
	s.batch, s.delayed = nil, nil
	for {
		select {
		case p := <-s.ln.queue:
			s.resolve(p, Debited{}, err)
		default:
			return
		}
	}
}

func (s *laneState) resolve(p *pending, d Debited, err error) {
	code := codes.OK
	if err != nil {
		var le *ledgerclient.Error
		switch {
		case errors.As(err, &le):
			code = le.Code
		case errors.Is(err, context.Canceled):
			code = codes.Canceled
		case errors.Is(err, context.DeadlineExceeded):
			code = codes.DeadlineExceeded
		default:
			code = codes.Unknown
		}
	}
	s.ln.c.metrics.observe("Debit", code, p.start)
	p.done <- ackResult{d: d, err: err}
}

// unaryMode serves the lane's debits with unary calls, for a ledger without DebitStream.
func (s *laneState) unaryMode(closing <-chan struct{}) {
	var wg sync.WaitGroup
	send := func(p *pending) {
		wg.Go(func() {
			d, err := s.ln.c.debitUnary(p.ctx, p.req)
			p.done <- ackResult{d: d, err: err}
		})
	}
	for _, list := range [][]*pending{s.delayed, s.batch} {
		for _, p := range list {
			send(p)
		}
	}
	for _, p := range s.inflight {
		send(p)
	}
	s.inflight, s.batch, s.delayed = nil, nil, nil
	for {
		select {
		case p := <-s.ln.queue:
			send(p)
		case <-closing:
			for {
				select {
				case p := <-s.ln.queue:
					send(p)
				default:
					wg.Wait()
					return
				}
			}
		}
	}
}
