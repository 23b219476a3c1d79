package shard

import (
	"context"
	"errors"
	"fmt"
	"strconv"
	"sync"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/tallyhq/tally/services/ledger/internal/ledger"
)

// EventsFrom is where a watch starts: after a cursor, or (one shard only) after a sequence.
type EventsFrom struct {
	AfterSeq int64
	Cursor   string
}

// WatchEvents calls send with every event after from (of org when set), each with its shard and
// the cursor to resume after it, until ctx is done or send fails. With several shards it merges
// them: every shard's events in its commit order, the shards interleaved as they commit, except
// across a move. A move-in commits a marker event (ledger.EventMovedIn) on the target; the
// target's stream stops at it until the stream of the source has delivered the organization's
// last event there (the move's LastEvent), so an organization's events reach the watcher in the
// order they happened even when the source's stream lags. Markers are not sent. What is held is
// one event per shard: the target's stream stops reading (its other organizations wait too,
// since each shard's order is kept). A shard that cannot be read (an outage) does not end the
// watch: the others go on and its events resume once it answers again; a target's stream held
// for it waits as long, failing closed (tally_ledger_watch_held_streams).
func (r *Router) WatchEvents(ctx context.Context, from EventsFrom, org string, send func(e ledger.Event, shard, cursor string) error) error {
	pos, err := ledger.ParseCursor(from.Cursor)
	if err != nil {
		return err
	}
	for n := range pos {
		if r.apps[n] == nil {
			return fmt.Errorf("%w: after_cursor names unknown shard %q", ledger.ErrInvalid, n)
		}
	}
	if from.AfterSeq != 0 {
		if r.one == nil || from.Cursor != "" {
			return fmt.Errorf("%w: after_sequence resumes a single shard; send after_cursor", ledger.ErrInvalid)
		}
		pos[r.names[0]] = from.AfterSeq
	}
	if r.one != nil {
		name := r.names[0]
		return r.one.WatchEvents(ctx, pos[name], org, func(e ledger.Event) error {
			if e.Kind == ledger.EventMovedIn {
				return nil // a single shard has no moves; a marker is never a watcher's event
			}
			return send(e, name, name+":"+strconv.FormatInt(e.Seq, 10))
		})
	}
	return r.watchMerged(ctx, pos, org, send)
}

// shardEvent is one event read from one shard's stream.
type shardEvent struct {
	shard string
	e     ledger.Event
}

// watchMerged is WatchEvents over several shards, from pos.
func (r *Router) watchMerged(ctx context.Context, pos ledger.Cursor, org string, send func(e ledger.Event, shard, cursor string) error) error {
	ctx, cancel := context.WithCancelCause(ctx)
	defer cancel(nil)
	items := make(chan shardEvent)
	passed := newDelivered(pos)
	var wg sync.WaitGroup
	defer wg.Wait()
	for _, n := range r.names {
		after := pos[n]
		wg.Go(func() { cancel(fmt.Errorf("shard %s: %w", n, r.followShard(ctx, n, after, org, items, passed))) })
	}
	for {
		select {
		case <-ctx.Done():
			if err := context.Cause(ctx); !errors.Is(err, context.Canceled) {
				return err
			}
			return ctx.Err()
		case it := <-items:
			pos[it.shard] = it.e.Seq
			if it.e.Kind != ledger.EventMovedIn {
				if err := send(it.e, it.shard, pos.String()); err != nil {
					cancel(err)
					return err
				}
			}
			passed.set(it.shard, it.e.Seq)
		}
	}
}

// shardRetry is the pause before a shard's stream is read again after it failed.
const shardRetry = time.Second

// followShard puts shard's events after after (of org when set) on items, in order, until ctx
// is done or an error other than an outage. While the shard cannot be read the merged stream
// goes on with the others: this shard's events resume where they stopped once it can again (a
// target's stream held at a marker waits for them, see awaitMoveOut).
func (r *Router) followShard(ctx context.Context, shard string, after int64, org string, items chan<- shardEvent, passed *delivered) error {
	for {
		err := r.apps[shard].WatchEvents(ctx, after, org, func(e ledger.Event) error {
			if e.Kind == ledger.EventMovedIn {
				if err := r.awaitMoveOut(ctx, shard, e.Seq, passed); err != nil {
					return err
				}
			}
			select {
			case items <- shardEvent{shard, e}:
				after = e.Seq
				return nil
			case <-ctx.Done():
				return ctx.Err()
			}
		})
		switch {
		case ctx.Err() != nil:
			return ctx.Err()
		case err == nil:
			return errors.New("its event stream ended")
		case !errors.Is(err, ledger.ErrUnavailable):
			return err
		}
		r.cfg.Logger.WarnContext(ctx, "reading a shard's events failed, the others go on", "shard", shard, "after", after, "err", err)
		t := time.NewTimer(shardRetry)
		select {
		case <-ctx.Done():
			t.Stop()
			return ctx.Err()
		case <-t.C:
		}
	}
}

// awaitMoveOut returns once the watch has delivered, from the source of the move whose marker is
// event seq of shard, the organization's last event there (at once when it already has, or when
// the move is unknown: recorded before markers existed, or from a shard no longer configured).
func (r *Router) awaitMoveOut(ctx context.Context, shard string, seq int64, passed *delivered) error {
	m, ok, err := r.apps[shard].MoveMarker(ctx, seq)
	if err != nil {
		return fmt.Errorf("reading the move of marker %s:%d: %w", shard, seq, err)
	}
	if !ok || m.From == shard || r.apps[m.From] == nil {
		return nil
	}
	done := passed.wait(m.From, m.LastEvent)
	if done == nil {
		return nil
	}
	held := r.held.WithLabelValues(shard)
	held.Inc()
	defer held.Dec()
	r.cfg.Logger.DebugContext(ctx, "event stream held at a move until the source's stream passes its move-out",
		"shard", shard, "marker", seq, "org_id", m.OrgID, "from", m.From, "move_out_event", m.LastEvent)
	select {
	case <-done:
		return nil
	case <-ctx.Done():
		return ctx.Err()
	}
}

// delivered is how far a merged watch has delivered (or, for markers, passed) each shard's
// events, with the waiters for a shard to pass a sequence: at most one per shard, each shard's
// stream waiting at one marker at a time.
type delivered struct {
	mu      sync.Mutex
	at      map[string]int64
	waiters []passWaiter
}

type passWaiter struct {
	shard string
	seq   int64
	done  chan struct{}
}

func newDelivered(pos ledger.Cursor) *delivered {
	at := make(map[string]int64, len(pos))
	for n, s := range pos {
		at[n] = s
	}
	return &delivered{at: at}
}

// set records that the watch delivered shard's events up to seq, releasing who waited for it.
func (d *delivered) set(shard string, seq int64) {
	d.mu.Lock()
	defer d.mu.Unlock()
	d.at[shard] = seq
	kept := d.waiters[:0]
	for _, w := range d.waiters {
		if w.shard == shard && seq >= w.seq {
			close(w.done)
			continue
		}
		kept = append(kept, w)
	}
	d.waiters = kept
}

// wait returns a channel closed once shard's events are delivered up to seq, or nil when they are.
func (d *delivered) wait(shard string, seq int64) <-chan struct{} {
	d.mu.Lock()
	defer d.mu.Unlock()
	if d.at[shard] >= seq {
		return nil
	}
	w := passWaiter{shard: shard, seq: seq, done: make(chan struct{})}
	d.waiters = append(d.waiters, w)
	return w.done
}

// watchMetrics registers the router's metric on reg (nil: none), every shard's series at 0.
func watchMetrics(reg prometheus.Registerer, names []string) (*prometheus.GaugeVec, error) {
	held := prometheus.NewGaugeVec(prometheus.GaugeOpts{
		Name: "tally_ledger_watch_held_streams",
		Help: "WatchEvents streams whose events of this shard wait at a move's marker until the stream of the shard the organization moved from has passed its move-out.",
	}, []string{"shard"})
	for _, n := range names {
		held.WithLabelValues(n)
	}
	if reg == nil {
		return held, nil
	}
	if err := reg.Register(held); err != nil {
		return nil, fmt.Errorf("registering the router's metrics: %w", err)
	}
	return held, nil
}
