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

// benchStream is one stream of runStream: its window, the debits it has unacknowledged and
// when each was sent, and what it measured.
type benchStream struct {
	l         streamLoad
	measuring *atomic.Bool
	mu        sync.Mutex
	window    int
	inflight  int
	freed     chan struct{}
	// sent[id % streamRing] is when debit id was sent: fewer than streamRing debits are ever
	// unacknowledged, so a slot is reused only after its acknowledgement arrived.
	sent  []atomic.Int64
	stats streamStats
}

// capped is the window a grant allows, within -streaminflight and the ring.
func (bs *benchStream) capped(granted int32) int {
	w := min(int(granted), streamRing)
	if bs.l.inflight > 0 {
		w = min(w, bs.l.inflight)
	}
	return w
}

// receive reads acknowledgements until the stream ends, freeing their slots and following the
// window; it returns why the stream ended.
func (bs *benchStream) receive(st ledgerv1.LedgerService_DebitStreamClient) error {
	for {
		resp, err := st.Recv()
		if err != nil {
			return err
		}
		now := time.Now()
		for _, a := range resp.GetAcks() {
			if e := a.GetError(); e != nil {
				return fmt.Errorf("debit refused: %s (%s)", e.GetMessage(), e.GetReason())
			}
			if bs.measuring.Load() {
				bs.stats.lat = append(bs.stats.lat, time.Duration(now.UnixNano()-bs.sent[a.GetRequestId()%streamRing].Load()))
			}
		}
		bs.mu.Lock()
		bs.inflight -= len(resp.GetAcks())
		if g := resp.GetMaxInFlight(); g > 0 {
			bs.window = bs.capped(g)
			bs.stats.windowChanges++
		}
		bs.mu.Unlock()
		select {
		case bs.freed <- struct{}{}:
		default:
		}
	}
}

// room takes every free slot of the window, up to the batch (0 when the window is full, or
// shrank below what is unacknowledged).
func (bs *benchStream) room() int {
	bs.mu.Lock()
	defer bs.mu.Unlock()
	n := min(bs.window-bs.inflight, bs.l.batch)
	if n > 0 {
		bs.inflight += n
		if bs.measuring.Load() {
			bs.stats.inflightSum += int64(bs.inflight)
			bs.stats.windowSum += int64(bs.window)
			bs.stats.sends++
		}
	}
	return max(n, 0)
}

// runStream runs one stream until ctx ends, as pkg/client does: it keeps the window the ledger
// grants full (capped by l.inflight), following every new max_in_flight, and returns what it
// measured while measuring.
func (b *bench) runStream(ctx context.Context, s int, l streamLoad, measuring *atomic.Bool) (streamStats, error) {
	st, err := b.ledger(s).DebitStream(ctx)
	if err != nil {
		return streamStats{}, err
	}
	first, err := st.Recv()
	if err != nil {
		return streamStats{}, err
	}
	if first.GetMaxInFlight() <= 0 {
		return streamStats{}, errors.New("no window in the first response")
	}
	bs := &benchStream{l: l, measuring: measuring, freed: make(chan struct{}, 1), sent: make([]atomic.Int64, streamRing)}
	bs.window = bs.capped(first.GetMaxInFlight())
	recvErr := make(chan error, 1)
	go func() { recvErr <- bs.receive(st) }()
	r := rand.New(rand.NewPCG(uint64(s), 7)) //nolint:gosec // load shape, not security
	var id uint64
	amount := money.ToProto(2500, "USD")
	for ctx.Err() == nil {
		n := bs.room()
		if n == 0 {
			select {
			case <-bs.freed:
			case <-ctx.Done():
			case err := <-recvErr:
				return bs.stats, err
			}
			continue
		}
		msg := &ledgerv1.DebitStreamRequest{Debits: make([]*ledgerv1.StreamedDebit, n)}
		now := time.Now()
		for i := range n {
			msg.Debits[i] = &ledgerv1.StreamedDebit{RequestId: id, Debit: &ledgerv1.DebitRequest{
				OrgId: l.next(r), Amount: amount, IdempotencyKey: fmt.Sprintf("st-%d", b.seq.Add(1)), Description: "bench call",
			}}
			bs.sent[id%streamRing].Store(now.UnixNano())
			id++
		}
		if err := st.Send(msg); err != nil {
			break
		}
	}
	_ = st.CloseSend()
	// The receiver ends with the stream (the context is done); bs.stats.lat is its own until then.
	err = <-recvErr
	if errors.Is(err, io.EOF) || ctx.Err() != nil {
		err = nil
	}
	return bs.stats, err
}
