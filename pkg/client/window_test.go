package client_test

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"sync"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
	"google.golang.org/grpc"

	"github.com/tallyhq/tally/pkg/client"
	ledgerv1 "github.com/tallyhq/tally/pkg/gen/tally/ledger/v1"
)

// windowLedger is memLedger with a DebitStream that changes max_in_flight on a script, in
// lockstep with the client: it reads until the client has the whole window unacknowledged
// (then a client that obeys cannot send more until acknowledgements come), acknowledges part
// of it with a new window, and so on. Any message that takes the client past the window it was
// granted is a violation.
type windowLedger struct {
	*memLedger

	mu         sync.Mutex
	violations []string
	maxUnacked map[int32]int // per grant: the most unacknowledged debits seen under it
}

type windowStep struct {
	ack    int   // acknowledge this many of the oldest unacknowledged debits
	window int32 // then say this window (0: unchanged)
	fill   int   // then read until this many are unacknowledged
}

// windowScript starts at 8, shrinks to 4 while 5 are unacknowledged (the client must wait for
// two more acknowledgements before it sends one), then grows to 16.
var windowScript = []windowStep{
	{fill: 8},
	{ack: 3, window: 4},
	{ack: 2, fill: 4},
	{ack: 4, window: 16, fill: 16},
}

func (w *windowLedger) DebitStream(st grpc.BidiStreamingServer[ledgerv1.DebitStreamRequest, ledgerv1.DebitStreamResponse]) error {
	grant := int32(8)
	if err := st.Send(&ledgerv1.DebitStreamResponse{MaxInFlight: grant}); err != nil {
		return err
	}
	var unacked []*ledgerv1.StreamedDebit
	recv := func() error {
		req, err := st.Recv()
		if err != nil {
			return err
		}
		unacked = append(unacked, req.GetDebits()...)
		w.mu.Lock()
		defer w.mu.Unlock()
		w.maxUnacked[grant] = max(w.maxUnacked[grant], len(unacked))
		if len(unacked) > int(grant) {
			w.violations = append(w.violations, fmt.Sprintf("%d unacknowledged, window %d", len(unacked), grant))
		}
		return nil
	}
	ack := func(n int, window int32) error {
		resp, err := w.ackBatch(unacked[:n])
		if err != nil {
			return err
		}
		unacked = unacked[n:]
		resp.MaxInFlight = window
		if window > 0 {
			grant = window
		}
		return st.Send(resp)
	}
	for _, step := range windowScript {
		if step.ack > 0 || step.window > 0 {
			if err := ack(step.ack, step.window); err != nil {
				return err
			}
		}
		for len(unacked) < step.fill {
			if err := recv(); err != nil {
				return err
			}
		}
	}
	// Then acknowledge whatever comes, under the last window.
	for {
		if err := ack(len(unacked), 0); err != nil {
			return err
		}
		if err := recv(); err != nil {
			if errors.Is(err, io.EOF) {
				return nil
			}
			return err
		}
	}
}

func TestStreamNeverExceedsTheWindowTheLedgerGrants(t *testing.T) {
	t.Parallel()
	w := &windowLedger{memLedger: newMemLedger(), maxUnacked: map[int32]int{}}
	w.credit("acme", 100*unit)
	lis, err := new(net.ListenConfig).Listen(t.Context(), "tcp", "127.0.0.1:0")
	require.NoError(t, err)
	s := grpc.NewServer()
	ledgerv1.RegisterLedgerServiceServer(s, w)
	go func() { _ = s.Serve(lis) }()
	t.Cleanup(s.Stop)
	c := newClient(t, lis.Addr().String(), func(cfg *client.Config) { cfg.Batch.MaxSize = 3 })

	const n = 60
	debitMany(t, c, "acme", "w", n)
	w.mu.Lock()
	defer w.mu.Unlock()
	require.Empty(t, w.violations)
	// The script reads until each window is full: the client did fill every window it had.
	require.Equal(t, map[int32]int{8: 8, 4: 4, 16: 16}, w.maxUnacked)
}

// TestALoneDebitIsNotHeldForTheLinger: with nothing in flight no acknowledgement can come to
// flush a batch, so a lone debit is sent at once, whatever the linger (an hour here: a debit
// held for it fails on the test's deadline instead).
func TestALoneDebitIsNotHeldForTheLinger(t *testing.T) {
	t.Parallel()
	m := newMemLedger()
	m.credit("acme", 100*unit)
	c := newClient(t, m.serve(t), func(cfg *client.Config) { cfg.Batch.Linger = time.Hour })
	for i := range 3 {
		ctx, cancel := context.WithTimeout(t.Context(), 30*time.Second)
		d, err := c.Debit(ctx, client.Debit{OrgID: "acme", Amount: usdAmount(1), IdempotencyKey: fmt.Sprintf("lone-%d", i)})
		cancel()
		require.NoError(t, err, "debit %d", i)
		require.NotEmpty(t, d.TransactionID)
	}
}
