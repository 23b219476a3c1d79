package test

import (
	"bufio"
	"context"
	"io"
	"net"
	"net/http"
	"net/url"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	ledgerv1 "github.com/tallyhq/tally/pkg/gen/tally/ledger/v1"
	"github.com/tallyhq/tally/pkg/money"
	"github.com/tallyhq/tally/services/ledger/ledgertest"
)

// An organization's events reach a watcher in the order they happened across a move, even when
// the watcher's replica reads the old shard late: the replica that serves the watch reaches shard
// a through a gate that holds back every reply of a's PostgreSQL. With the gate shut, the
// organization is credited on a (its last event there), moved to b by another replica and
// credited on b. The watch must not deliver the b credit first; it holds b's stream at the move
// (tally_ledger_watch_held_streams), and once the gate opens delivers a's credit, then b's.
func TestWatchEventsKeepAnOrganizationsOrderAcrossAMove(t *testing.T) {
	t.Parallel()
	urls, shards := ledgertest.TwoShards(t)
	gate := startGate(t, hostOf(t, urls["a"]))
	viaGate := withHost(t, urls["a"], gate.addr)
	writer := ledgertest.Start(t, ledgertest.Options{DatabaseURL: urls["a"], Shards: shards})
	// The watching replica runs no loop that writes a's rows under a lock (the usage follower
	// once at start, no sweeps): with the gate shut, a transaction of it would stay open.
	watcher := ledgertest.Start(t, ledgertest.Options{DatabaseURL: viaGate, Shards: "a=" + viaGate + " b=" + urls["b"],
		Metrics: true, DBTimeout: time.Minute, UsageInterval: time.Hour, SweepInterval: time.Hour})
	ops := writer.Client(t, ledgertest.OpsToken(t))
	org := orgOnShard(t, "order", "a")

	stream, err := watcher.Client(t, ledgertest.OpsToken(t)).WatchEvents(t.Context(), &ledgerv1.WatchEventsRequest{OrgId: org})
	require.NoError(t, err)
	events := make(chan *ledgerv1.BalanceEvent, 16)
	go func() {
		for {
			r, err := stream.Recv()
			if err != nil {
				close(events)
				return
			}
			events <- r.GetEvent()
		}
	}()
	credit(t, ops, org, 100, "c-1")
	first := <-events
	require.Equal(t, "a", first.GetShard())

	gate.shut()
	credit(t, ops, org, 10, "c-2") // the organization's last event on a
	_, err = ops.MoveOrganization(t.Context(), &ledgerv1.MoveOrganizationRequest{OrgId: org, ToShard: "b", IdempotencyKey: "move-1"})
	require.NoError(t, err)
	credit(t, ops, org, 1, "c-3") // its first on b
	// The watch either delivers b's credit now (the bug) or holds b's stream at the move.
	requireHeldAtMove(t, watcher, events, "an event arrived while shard a could not be read")
	gate.open()

	var got []string
	var last *ledgerv1.BalanceEvent
	for len(got) < 2 {
		e, ok := <-events
		require.True(t, ok, "the watch ended")
		require.NotEqual(t, ledgerv1.EventKind_EVENT_KIND_UNSPECIFIED, e.GetKind(), "the move's marker is not sent")
		got = append(got, e.GetShard()+" "+strconv.FormatInt(int64(nanos(t, e.GetBalance())), 10))
		last = e
	}
	require.Equal(t, []string{"a 110", "b 111"}, got, "the last event on a before the first on b")
	waitUntil(t, func() bool {
		v, ok := scrape(t, watcher.MetricsURL, `tally_ledger_watch_held_streams{shard="b"}`)
		return ok && v == 0
	})
	// b's head, for the consumers' lag in time, is its newest event sent to watchers.
	at := float64(last.GetOccurredAt().AsTime().UnixMicro()) / 1e6
	waitUntil(t, func() bool {
		v, ok := scrape(t, watcher.MetricsURL, `tally_ledger_outbox_head_timestamp_seconds{shard="b"}`)
		return ok && v > at-0.001 && v < at+0.001
	})
	require.Equal(t, money.Nanos(111), nanos(t, balance(t, ops, org).GetBalance()))
}

// While the old shard is down the merged stream goes on with the other shard, up to a move of
// an organization out of the one that is down: there the other shard's stream waits (fails
// closed, tally_ledger_watch_held_streams) until the old shard answers again and its last event
// of the organization has been delivered.
func TestWatchEventsWaitForADownOldShardAtAMove(t *testing.T) {
	t.Parallel()
	urls, shards := ledgertest.TwoShards(t)
	gate := startGate(t, hostOf(t, urls["a"]))
	viaGate := withHost(t, urls["a"], gate.addr)
	writer := ledgertest.Start(t, ledgertest.Options{DatabaseURL: urls["a"], Shards: shards})
	watcher := ledgertest.Start(t, ledgertest.Options{DatabaseURL: viaGate, Shards: "a=" + viaGate + " b=" + urls["b"],
		Metrics: true, UsageInterval: time.Hour, SweepInterval: time.Hour})
	ops := writer.Client(t, ledgertest.OpsToken(t))
	moved, other := orgOnShard(t, "down", "a"), orgOnShard(t, "down", "b")

	stream, err := watcher.Client(t, ledgertest.OpsToken(t)).WatchEvents(t.Context(), &ledgerv1.WatchEventsRequest{})
	require.NoError(t, err)
	events := make(chan *ledgerv1.BalanceEvent, 16)
	go func() {
		defer close(events)
		for {
			r, err := stream.Recv()
			if err != nil {
				return
			}
			events <- r.GetEvent()
		}
	}()
	next := func() string {
		e, ok := <-events
		require.True(t, ok, "the watch ended")
		return e.GetOrgId() + "@" + e.GetShard() + " " + strconv.FormatInt(int64(nanos(t, e.GetBalance())), 10)
	}
	credit(t, ops, moved, 100, "c-1")
	require.Equal(t, moved+"@a 100", next())

	gate.cut()
	credit(t, ops, other, 5, "o-1")
	require.Equal(t, other+"@b 5", next(), "the other shard goes on while a is down")
	credit(t, ops, moved, 10, "c-2") // the moved organization's last event on a
	_, err = ops.MoveOrganization(t.Context(), &ledgerv1.MoveOrganizationRequest{OrgId: moved, ToShard: "b", IdempotencyKey: "move-1"})
	require.NoError(t, err)
	credit(t, ops, moved, 1, "c-3")
	requireHeldAtMove(t, watcher, events, "an event arrived past the move while shard a was down")
	gate.mend()
	require.Equal(t, moved+"@a 110", next(), "a's last event of the organization first")
	require.Equal(t, moved+"@b 111", next())
}

// gate is a TCP proxy on loopback that, while shut, holds back every reply of the server (the
// client's requests still reach it), as a link that stopped delivering would; while cut, it
// drops every connection and refuses new ones, as a server that is down would.
type gate struct {
	addr string
	mu   sync.Mutex
	// opened is closed while the gate is open (not shut).
	opened chan struct{}
	down   bool
	conns  map[net.Conn]struct{}
}

func startGate(t *testing.T, target string) *gate {
	t.Helper()
	lis, err := (&net.ListenConfig{}).Listen(t.Context(), "tcp", "127.0.0.1:0")
	require.NoError(t, err)
	g := &gate{addr: lis.Addr().String(), opened: make(chan struct{}), conns: map[net.Conn]struct{}{}}
	close(g.opened)
	var conns sync.WaitGroup
	done := make(chan struct{})
	t.Cleanup(func() {
		close(done)
		_ = lis.Close()
		g.drop()
		conns.Wait()
	})
	go func() {
		for {
			c, err := lis.Accept()
			if err != nil {
				return
			}
			conns.Go(func() { g.forward(c, target, done) })
		}
	}()
	return g
}

// track adds c to the live connections; false (and c closed) while the gate is cut.
func (g *gate) track(c net.Conn) bool {
	g.mu.Lock()
	defer g.mu.Unlock()
	if g.down {
		_ = c.Close()
		return false
	}
	g.conns[c] = struct{}{}
	return true
}

func (g *gate) untrack(c net.Conn) {
	g.mu.Lock()
	defer g.mu.Unlock()
	delete(g.conns, c)
	_ = c.Close()
}

func (g *gate) drop() {
	g.mu.Lock()
	defer g.mu.Unlock()
	for c := range g.conns {
		_ = c.Close()
	}
}

// forward joins client to a new connection to target until either side closes or done.
func (g *gate) forward(client net.Conn, target string, done <-chan struct{}) {
	if !g.track(client) {
		return
	}
	defer g.untrack(client)
	server, err := (&net.Dialer{}).Dial("tcp", target)
	if err != nil {
		return
	}
	if !g.track(server) {
		return
	}
	defer g.untrack(server)
	go func() {
		_, _ = io.Copy(server, client)
		_ = server.Close()
	}()
	buf := make([]byte, 32<<10)
	for {
		n, err := server.Read(buf)
		if n > 0 {
			select {
			case <-g.openCh():
			case <-done:
				return
			}
			if _, werr := client.Write(buf[:n]); werr != nil {
				return
			}
		}
		if err != nil {
			return
		}
	}
}

func (g *gate) openCh() <-chan struct{} {
	g.mu.Lock()
	defer g.mu.Unlock()
	return g.opened
}

// shut holds back the server's replies from now on.
func (g *gate) shut() {
	g.mu.Lock()
	defer g.mu.Unlock()
	g.opened = make(chan struct{})
}

// open lets the held replies and all later ones through.
func (g *gate) open() {
	g.mu.Lock()
	defer g.mu.Unlock()
	close(g.opened)
}

// cut drops every connection and refuses new ones until mend.
func (g *gate) cut() {
	g.mu.Lock()
	defer g.mu.Unlock()
	g.down = true
	for c := range g.conns {
		_ = c.Close()
	}
}

// mend accepts connections again.
func (g *gate) mend() {
	g.mu.Lock()
	defer g.mu.Unlock()
	g.down = false
}

func hostOf(t *testing.T, raw string) string {
	t.Helper()
	u, err := url.Parse(raw)
	require.NoError(t, err)
	require.NotEmpty(t, u.Host, "a TCP PostgreSQL URL")
	return u.Host
}

func withHost(t *testing.T, raw, host string) string {
	t.Helper()
	u, err := url.Parse(raw)
	require.NoError(t, err)
	u.Host = host
	return u.String()
}

// scrape reads one series (name{labels} as exposed) from a replica's /metrics; ok is false when
// the replica does not export it.
func scrape(t *testing.T, metricsURL, series string) (float64, bool) {
	t.Helper()
	ctx, cancel := context.WithTimeout(t.Context(), 10*time.Second)
	defer cancel()
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, metricsURL, nil)
	require.NoError(t, err)
	resp, err := http.DefaultClient.Do(req)
	require.NoError(t, err)
	defer resp.Body.Close()
	sc := bufio.NewScanner(resp.Body)
	for sc.Scan() {
		if v, ok := strings.CutPrefix(sc.Text(), series+" "); ok {
			f, err := strconv.ParseFloat(v, 64)
			require.NoError(t, err)
			return f, true
		}
	}
	require.NoError(t, sc.Err())
	return 0, false
}

// requireHeldAtMove waits until watcher reports shard b's stream held at a move's marker, and
// fails if any event arrives meanwhile.
func requireHeldAtMove(t *testing.T, watcher *ledgertest.Ledger, events <-chan *ledgerv1.BalanceEvent, failure string) {
	t.Helper()
	waitUntil(t, func() bool {
		select {
		case e := <-events:
			require.Failf(t, failure, "%s@%s, balance %s", e.GetOrgId(), e.GetShard(), e.GetBalance())
		default:
		}
		v, ok := scrape(t, watcher.MetricsURL, `tally_ledger_watch_held_streams{shard="b"}`)
		return ok && v == 1
	})
}
