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
// connections, each keeping the window the ledger grants full (following its changes, as
// pkg/client does), sending up to batch debits per message as acknowledgements free slots. A
// debit's latency is from its message being sent to its acknowledgement arriving.
type streamLoad struct {
	streams, batch int
	// inflight caps each stream's unacknowledged debits below the ledger's window (0: none).
	inflight int
	// next returns the org and amount of a stream's next debit.
	next func(r *rand.Rand) string
}

// streamScenario measures l: warm-up, then duration measured; any refused debit fails the run.
// Its extra says the debits in flight per stream (mean over the sends) and the window granted.
func (b *bench) streamScenario(l streamLoad) func(ctx context.Context) (loadgen.Result, string, error) {
	return func(ctx context.Context) (loadgen.Result, string, error) {
		runCtx, stop := context.WithCancel(ctx)
		defer stop()
		var measuring atomic.Bool
		var (
			mu       sync.Mutex
			all      []time.Duration
			total    streamStats
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
				st, err := b.runStream(runCtx, s, l, &measuring)
				if err != nil && runCtx.Err() == nil {
					fail(err)
				}
				mu.Lock()
				all = append(all, st.lat...)
				total.inflightSum += st.inflightSum
				total.windowSum += st.windowSum
				total.sends += st.sends
				total.windowChanges += st.windowChanges
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
			return loadgen.Result{}, "", firstErr
		}
		if err != nil {
			return loadgen.Result{}, "", err
		}
		if len(all) == 0 || total.sends == 0 {
			return loadgen.Result{}, "", errors.New("no debit acknowledged")
		}
		p50, p99 := loadgen.Latencies(all)
		extra := fmt.Sprintf("   in flight per stream: %.0f (%d streams), window granted %.0f (changed %d times)",
			float64(total.inflightSum)/float64(total.sends), l.streams, float64(total.windowSum)/float64(total.sends), total.windowChanges)
		return loadgen.Result{OpsPerSec: float64(len(all)) / elapsed.Seconds(), P50: p50, P99: p99}, extra, nil
	}
}

// streamRing bounds the debits one stream of the bench may have unacknowledged: sent times are
// kept in a ring indexed by request id.
const streamRing = 1 << 16

// streamStats is what one stream measured: its acknowledgement latencies, and the debits it had
// unacknowledged, summed over its sends (for the mean in flight).
type streamStats struct {
	lat           []time.Duration
	inflightSum   int64
	sends         int64
	windowSum     int64
	windowChanges int
}

// runStream runs one stream until ctx ends, as pkg/client does: it keeps the window the ledger
// grants full (capped by l.inflight), following every new max_in_flight, and returns what it
// measured while measuring.
func (b *bench) runStream(ctx context.Context, s int, l streamLoad, measuring *atomic.Bool) (streamStats, error) {
	var stats streamStats
	st, err := b.ledger(s).DebitStream(ctx)
	if err != nil {
		return stats, err
	}
	first, err := st.Recv()
	if err != nil {
		return stats, err
	}
	if first.GetMaxInFlight() <= 0 {
		return stats, errors.New("no window in the first response")
	}
	capped := func(granted int32) int {
		w := min(int(granted), streamRing)
		if l.inflight > 0 {
			w = min(w, l.inflight)
		}
		return w
	}
	var (
		mu       sync.Mutex
		window   = capped(first.GetMaxInFlight())
		inflight int
		freed    = make(chan struct{}, 1)
	)
	// sent[id % streamRing] is when debit id was sent: fewer than streamRing debits are ever
	// unacknowledged, so a slot is reused only after its acknowledgement arrived.
	sent := make([]atomic.Int64, streamRing)
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
					stats.lat = append(stats.lat, time.Duration(now.UnixNano()-sent[a.GetRequestId()%streamRing].Load()))
				}
			}
			mu.Lock()
			inflight -= len(resp.GetAcks())
			if g := resp.GetMaxInFlight(); g > 0 {
				window = capped(g)
				stats.windowChanges++
			}
			mu.Unlock()
			select {
			case freed <- struct{}{}:
			default:
			}
		}
	}()
	r := rand.New(rand.NewPCG(uint64(s), 7)) //nolint:gosec // load shape, not security
	var id uint64
	amount := money.ToProto(2500, "USD")
	for ctx.Err() == nil {
		// Take every free slot of the window, up to the batch; wait when there is none.
		mu.Lock()
		n := min(window-inflight, l.batch)
		if n > 0 {
			inflight += n
			if measuring.Load() {
				stats.inflightSum += int64(inflight)
				stats.windowSum += int64(window)
				stats.sends++
			}
		}
		mu.Unlock()
		if n <= 0 {
			select {
			case <-freed:
			case <-ctx.Done():
			case err := <-recvErr:
				return stats, err
			}
			continue
		}
		msg := &ledgerv1.DebitStreamRequest{Debits: make([]*ledgerv1.StreamedDebit, n)}
		now := time.Now()
		for i := range n {
			msg.Debits[i] = &ledgerv1.StreamedDebit{RequestId: id, Debit: &ledgerv1.DebitRequest{
				OrgId: l.next(r), Amount: amount, IdempotencyKey: fmt.Sprintf("st-%d", b.seq.Add(1)), Description: "bench call",
			}}
			sent[id%streamRing].Store(now.UnixNano())
			id++
		}
		if err := st.Send(msg); err != nil {
			break
		}
	}
	_ = st.CloseSend()
	// The receiver ends with the stream (the context is done); stats.lat is its own until then.
	err = <-recvErr
	if errors.Is(err, io.EOF) || ctx.Err() != nil {
		err = nil
	}
	return stats, err
}
