package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"math/rand/v2"
	"sync"
	"sync/atomic"
	"time"

	ledgerv1 "github.com/tallyhq/tally/pkg/gen/tally/ledger/v1"
	"github.com/tallyhq/tally/pkg/loadgen"
	"github.com/tallyhq/tally/pkg/money"
)

// streamLoad drives DebitStream with a raw client: streams streams spread over the bench's
// connections, each keeping its window full, sending up to batch debits per message as
// acknowledgements free slots. A debit's latency is from its message being sent to its
// acknowledgement arriving.
type streamLoad struct {
	streams, batch int
	// inflight bounds each stream's unacknowledged debits below the server's window (0: none).
	inflight int
	// next returns the org and amount of a stream's next debit.
	next func(r *rand.Rand) string
}

// streamScenario measures l: warm-up, then duration measured; any refused debit fails the run.
func (b *bench) streamScenario(l streamLoad) func(ctx context.Context) (loadgen.Result, error) {
	return func(ctx context.Context) (loadgen.Result, error) {
		runCtx, stop := context.WithCancel(ctx)
		defer stop()
		var measuring atomic.Bool
		var (
			mu       sync.Mutex
			all      []time.Duration
			firstErr error
			wg       sync.WaitGroup
		)
		fail := func(err error) {
			mu.Lock()
			if firstErr == nil {
				firstErr = err
			}
			mu.Unlock()
			stop()
		}
		for s := range l.streams {
			wg.Go(func() {
				lat, err := b.runStream(runCtx, s, l, &measuring)
				if err != nil && runCtx.Err() == nil {
					fail(err)
				}
				mu.Lock()
				all = append(all, lat...)
				mu.Unlock()
			})
		}
		began := time.Now()
		var elapsed time.Duration
		err := sleepCtx(runCtx, b.cfg.warmup)
		if err == nil {
			measuring.Store(true)
			began = time.Now()
			err = sleepCtx(runCtx, b.cfg.duration)
			measuring.Store(false)
		}
		elapsed = time.Since(began)
		stop()
		wg.Wait()
		if firstErr != nil {
			return loadgen.Result{}, firstErr
		}
		if err != nil {
			return loadgen.Result{}, err
		}
		if len(all) == 0 {
			return loadgen.Result{}, errors.New("no debit acknowledged")
		}
		p50, p99 := loadgen.Latencies(all)
		return loadgen.Result{OpsPerSec: float64(len(all)) / elapsed.Seconds(), P50: p50, P99: p99}, nil
	}
}

// runStream runs one stream until ctx ends and returns the latencies measured while measuring.
func (b *bench) runStream(ctx context.Context, s int, l streamLoad, measuring *atomic.Bool) ([]time.Duration, error) {
	st, err := b.ledger(s).DebitStream(ctx)
	if err != nil {
		return nil, err
	}
	first, err := st.Recv()
	if err != nil {
		return nil, err
	}
	window := int(first.GetMaxInFlight())
	if window <= 0 {
		return nil, errors.New("no window in the first response")
	}
	if l.inflight > 0 {
		window = min(window, l.inflight)
	}
	// sent[id % window] is when debit id was sent: at most window debits are unacknowledged, and
	// a slot is reused only after its acknowledgement freed it.
	sent := make([]atomic.Int64, window)
	slots := make(chan struct{}, window)
	var lat []time.Duration
	recvErr := make(chan error, 1)
	go func() {
		for {
			resp, err := st.Recv()
			if err != nil {
				recvErr <- err
				return
			}
			now := time.Now()
			for _, a := range resp.GetAcks() {
				if e := a.GetError(); e != nil {
					recvErr <- fmt.Errorf("debit refused: %s (%s)", e.GetMessage(), e.GetReason())
					return
				}
				if measuring.Load() {
					lat = append(lat, time.Duration(now.UnixNano()-sent[a.GetRequestId()%uint64(window)].Load())) //nolint:gosec // window > 0
				}
				<-slots
			}
		}
	}()
	r := rand.New(rand.NewPCG(uint64(s), 7)) //nolint:gosec // load shape, not security
	var id uint64
	amount := money.ToProto(2500, "USD")
	for ctx.Err() == nil {
		// Wait for one free slot, then take every free one up to the batch.
		n := 0
		select {
		case slots <- struct{}{}:
			n = 1
		case <-ctx.Done():
		case err := <-recvErr:
			return nil, err
		}
	fill:
		for n > 0 && n < l.batch {
			select {
			case slots <- struct{}{}:
				n++
			default:
				break fill
			}
		}
		if n == 0 {
			break
		}
		msg := &ledgerv1.DebitStreamRequest{Debits: make([]*ledgerv1.StreamedDebit, n)}
		now := time.Now()
		for i := range n {
			msg.Debits[i] = &ledgerv1.StreamedDebit{RequestId: id, Debit: &ledgerv1.DebitRequest{
				OrgId: l.next(r), Amount: amount, IdempotencyKey: fmt.Sprintf("st-%d", b.seq.Add(1)), Description: "bench call",
			}}
			sent[id%uint64(window)].Store(now.UnixNano()) //nolint:gosec // window > 0
			id++
		}
		if err := st.Send(msg); err != nil {
			break
		}
	}
	_ = st.CloseSend()
	// The receiver ends with the stream (the context is done); lat is its own until then.
	err = <-recvErr
	if errors.Is(err, io.EOF) || ctx.Err() != nil {
		err = nil
	}
	return lat, err
}
