package chaos

import (
	"context"
	"errors"
	"fmt"
	"io"
	"sync"
	"time"

	ledgerv1 "github.com/tallyhq/tally/pkg/gen/tally/ledger/v1"
)

// The ledger-kill-stream scenario: backends stream debits (DebitStream) while the ledger is
// killed with SIGKILL, twice. Each stream client keeps its unacknowledged debits and, once it
// reconnects, sends them again with the same keys before any new one; when the traffic stops,
// it replays until every debit it ever sent is acknowledged. Then PostgreSQL must hold every
// debit sent exactly once, each acknowledged one with the transaction it was acknowledged
// with, and each organization's balance must be minus the sum of its debits.

const (
	streamClients   = 4
	streamOrgs      = 8
	streamBatch     = 100
	streamKills     = 2
	streamReplayFor = time.Minute
)

// streamDebit is one debit a stream client sent: its amount, and the transaction it was
// acknowledged with ("" until then).
type streamDebit struct {
	org    string
	amount int64
	tx     string
}

// streamClient is one backend streaming its own debits (keys) over reconnecting streams.
type streamClient struct {
	r    *run
	id   int
	mu   sync.Mutex
	sent map[string]*streamDebit // by key
	// unacked is the order unacknowledged keys are sent again in.
	unacked []string
	next    int
	streams int // streams opened
	broken  int // streams that ended with an error
	resent  int // debits sent again on a new stream, unacknowledged on the one before
}

func (c *streamClient) org(n int) string { return fmt.Sprintf("stream-%s-%02d", c.r.tag, n%streamOrgs) }

// pendingKeys returns the keys sent and not acknowledged.
func (c *streamClient) pendingKeys() []string {
	c.mu.Lock()
	defer c.mu.Unlock()
	var out []string
	for _, k := range c.unacked {
		if c.sent[k].tx == "" {
			out = append(out, k)
		}
	}
	c.unacked = out
	return append([]string(nil), out...)
}

// newKeys makes n new debits.
func (c *streamClient) newKeys(n int) []string {
	c.mu.Lock()
	defer c.mu.Unlock()
	keys := make([]string, n)
	for i := range keys {
		k := fmt.Sprintf("stream-%s-c%d-%06d", c.r.tag, c.id, c.next)
		c.sent[k] = &streamDebit{org: c.org(c.next + c.id), amount: int64(c.next%997 + 1)}
		c.unacked = append(c.unacked, k)
		keys[i] = k
		c.next++
	}
	return keys
}

func (c *streamClient) request(id uint64, key string) *ledgerv1.StreamedDebit {
	c.mu.Lock()
	d := c.sent[key]
	c.mu.Unlock()
	return &ledgerv1.StreamedDebit{RequestId: id, Debit: &ledgerv1.DebitRequest{OrgId: d.org, Amount: usd(d.amount), IdempotencyKey: key, Description: "chaos stream"}}
}

// run streams until stop is closed, then until every debit sent is acknowledged or the replay
// deadline passes.
func (c *streamClient) run(ctx context.Context, stop <-chan struct{}) error {
	deadline := time.Time{}
	for {
		select {
		case <-stop:
			if deadline.IsZero() {
				deadline = time.Now().Add(streamReplayFor)
			}
		default:
		}
		stopped := !deadline.IsZero()
		if stopped && len(c.pendingKeys()) == 0 {
			return nil
		}
		if stopped && time.Now().After(deadline) {
			return fmt.Errorf("stream client %d: %d debits still unacknowledged after %s of replays", c.id, len(c.pendingKeys()), streamReplayFor)
		}
		if err := c.stream(ctx, stop); err != nil {
			if ctx.Err() != nil {
				return ctx.Err()
			}
			c.mu.Lock()
			c.broken++
			c.mu.Unlock()
			if !pause(ctx, 50*time.Millisecond) {
				return ctx.Err()
			}
		}
	}
}

// streamKeys are a stream's unacknowledged request ids and their idempotency keys.
type streamKeys struct {
	mu sync.Mutex
	m  map[uint64]string
}

// receiveAcks records the stream's acknowledgements until it ends (its error goes to recvErr),
// freeing a window slot for each.
func (c *streamClient) receiveAcks(st ledgerv1.LedgerService_DebitStreamClient, keys *streamKeys, slots <-chan struct{}, recvErr chan<- error) {
	for {
		resp, err := st.Recv()
		if err != nil {
			recvErr <- err
			return
		}
		for _, a := range resp.GetAcks() {
			keys.mu.Lock()
			key := keys.m[a.GetRequestId()]
			delete(keys.m, a.GetRequestId())
			keys.mu.Unlock()
			if e := a.GetError(); e != nil {
				// No debit of this load may be refused (no require_funds, unique keys): an
				// outage code is retried with the same key, anything else is a failure.
				if e.GetReason() != "DATABASE_UNAVAILABLE" && e.GetReason() != "SHUTTING_DOWN" {
					c.r.fail(fmt.Errorf("streamed debit %s refused: %s (%s)", key, e.GetMessage(), e.GetReason()))
				}
			} else {
				c.mu.Lock()
				c.sent[key].tx = a.GetDebit().GetTransactionId()
				c.mu.Unlock()
			}
			<-slots
		}
	}
}

// stream runs one stream: the unacknowledged debits first, then new ones until stop (after
// which it sends nothing new and ends once its debits are acknowledged).
func (c *streamClient) stream(ctx context.Context, stop <-chan struct{}) error {
	sctx, cancel := context.WithCancel(ctx)
	defer cancel()
	st, err := c.r.stack.LedgerBackend.DebitStream(sctx)
	if err != nil {
		return err
	}
	first, err := st.Recv()
	if err != nil {
		return err
	}
	c.mu.Lock()
	c.streams++
	c.mu.Unlock()
	window := max(1, int(first.GetMaxInFlight()))
	slots := make(chan struct{}, window)
	keys := &streamKeys{m: map[uint64]string{}}
	recvErr := make(chan error, 1)
	go c.receiveAcks(st, keys, slots, recvErr)
	var id uint64
	send := func(batch []string) error {
		msg := &ledgerv1.DebitStreamRequest{}
		for _, k := range batch {
			select {
			case slots <- struct{}{}:
			case err := <-recvErr:
				return err
			case <-ctx.Done():
				return ctx.Err()
			}
			keys.mu.Lock()
			keys.m[id] = k
			keys.mu.Unlock()
			msg.Debits = append(msg.Debits, c.request(id, k))
			id++
		}
		return st.Send(msg)
	}
	pending := c.pendingKeys()
	c.mu.Lock()
	c.resent += len(pending)
	c.mu.Unlock()
	for i := 0; i < len(pending); i += streamBatch {
		if err := send(pending[i:min(i+streamBatch, len(pending))]); err != nil {
			return err
		}
	}
	for {
		select {
		case <-stop:
			if err := st.CloseSend(); err != nil {
				return err
			}
			if err := <-recvErr; !isEOF(err) {
				return err
			}
			return nil
		case err := <-recvErr:
			return err
		default:
		}
		if err := send(c.newKeys(streamBatch)); err != nil {
			return err
		}
		if !pause(ctx, 10*time.Millisecond) {
			return ctx.Err()
		}
	}
}

func isEOF(err error) bool { return err == nil || errors.Is(err, io.EOF) }

func injectLedgerKillMidStream(ctx context.Context, r *run) error {
	stop := make(chan struct{})
	clients := make([]*streamClient, streamClients)
	errs := make([]error, streamClients)
	var wg sync.WaitGroup
	for i := range clients {
		clients[i] = &streamClient{r: r, id: i, sent: map[string]*streamDebit{}}
		wg.Go(func() { errs[i] = clients[i].run(ctx, stop) })
	}
	acked := func() int {
		n := 0
		for _, c := range clients {
			c.mu.Lock()
			for _, d := range c.sent {
				if d.tx != "" {
					n++
				}
			}
			c.mu.Unlock()
		}
		return n
	}
	var err error
	for k := range streamKills {
		if err = r.hold(ctx, 1500*time.Millisecond); err != nil {
			break
		}
		before := acked()
		var lift func()
		if k == streamKills-1 {
			lift = r.lift
		}
		if err = r.killService(ctx, "ledger", lift); err != nil {
			break
		}
		r.note("stream: ledger killed with %d streamed debits acknowledged", before)
	}
	if err == nil {
		err = r.hold(ctx, 1500*time.Millisecond)
	}
	close(stop)
	wg.Wait()
	if err != nil {
		return err
	}
	if err := errors.Join(errs...); err != nil {
		return err
	}
	var sent, broken, streams, resent int
	for _, c := range clients {
		sent += len(c.sent)
		broken += c.broken
		streams += c.streams
		resent += c.resent
	}
	if broken == 0 || resent == 0 {
		return fmt.Errorf("stream: %d kills broke %d streams and left %d debits unacknowledged (%d streams)", streamKills, broken, resent, streams)
	}
	r.observe("ledger killed %d times under %d streams (%d stream attempts failed, %d opened); %d streamed debits sent, %d sent again after a kill, all acknowledged in the end",
		streamKills, streamClients, broken, streams, sent, resent)
	return r.checkStreamed(ctx, clients)
}

// checkStreamed checks the streamed debits in PostgreSQL: each exactly once, with its amount and
// the transaction it was acknowledged with, and no other debit on the stream organizations.
func (r *run) checkStreamed(ctx context.Context, clients []*streamClient) error {
	cctx, cancel := context.WithTimeout(ctx, time.Minute)
	defer cancel()
	rows, err := r.stack.DB.Query(cctx, `SELECT id::text, org_id, amount, idempotency_key FROM ledger.transactions WHERE org_id LIKE $1`,
		"stream-"+r.tag+"-%")
	if err != nil {
		return fmt.Errorf("reading the streamed debits: %w", err)
	}
	defer rows.Close()
	want := map[string]*streamDebit{}
	for _, c := range clients {
		for k, d := range c.sent {
			want[k] = d
		}
	}
	seen := map[string]int{}
	balances := map[string]int64{}
	var lost, doubled, wrong int
	for rows.Next() {
		var id, org, key string
		var amount int64
		if err := rows.Scan(&id, &org, &amount, &key); err != nil {
			return fmt.Errorf("reading the streamed debits: %w", err)
		}
		seen[key]++
		balances[org] += amount
		d, ok := want[key]
		switch {
		case !ok:
			wrong++
			r.fail(fmt.Errorf("stream: debit %s in the ledger was never sent", key))
		case d.amount != -amount || d.org != org || d.tx != id:
			wrong++
			r.fail(fmt.Errorf("stream: debit %s is %s %d (tx %s), sent %s %d, acknowledged with tx %s", key, org, amount, id, d.org, d.amount, d.tx))
		}
	}
	if err := rows.Err(); err != nil {
		return fmt.Errorf("reading the streamed debits: %w", err)
	}
	want2 := map[string]int64{}
	for k, d := range want {
		want2[d.org] -= d.amount
		switch n := seen[k]; {
		case n == 0:
			lost++
		case n > 1:
			doubled++
		}
	}
	if lost+doubled > 0 {
		r.fail(fmt.Errorf("stream: %d acknowledged debits lost, %d doubled", lost, doubled))
	}
	for org, b := range want2 {
		if balances[org] != b {
			r.fail(fmt.Errorf("stream: %s's debits sum to %d, want %d", org, balances[org], b))
		}
	}
	r.note("stream: %d debits checked in PostgreSQL: %d lost, %d doubled, %d wrong", len(want), lost, doubled, wrong)
	return nil
}
