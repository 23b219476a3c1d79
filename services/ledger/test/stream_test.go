package test

import (
	"context"
	"errors"
	"fmt"
	"io"
	"math/rand/v2"
	"sync"
	"testing"

	"github.com/stretchr/testify/require"
	"google.golang.org/grpc/codes"

	ledgerv1 "github.com/tallyhq/tally/pkg/gen/tally/ledger/v1"
	"github.com/tallyhq/tally/pkg/money"
	"github.com/tallyhq/tally/services/ledger/ledgertest"
)

// streamDebits sends debits over one DebitStream, perMsg to a message, while reading the
// acknowledgements; it returns them by request id once the server ended the stream, with the
// status it ended with (nil for a clean end).
func streamDebits(t testing.TB, c ledgerv1.LedgerServiceClient, debits []*ledgerv1.StreamedDebit, perMsg int) (map[uint64][]*ledgerv1.DebitAck, error) {
	t.Helper()
	st, err := c.DebitStream(t.Context())
	require.NoError(t, err)
	first, err := st.Recv()
	if err != nil {
		return nil, err
	}
	require.Positive(t, first.GetMaxInFlight())
	require.Empty(t, first.GetAcks())
	sendErr := make(chan error, 1)
	go func() {
		for i := 0; i < len(debits); i += perMsg {
			if err := st.Send(&ledgerv1.DebitStreamRequest{Debits: debits[i:min(i+perMsg, len(debits))]}); err != nil {
				sendErr <- err
				return
			}
		}
		sendErr <- st.CloseSend()
	}()
	acks := map[uint64][]*ledgerv1.DebitAck{}
	for {
		resp, err := st.Recv()
		if errors.Is(err, io.EOF) {
			require.NoError(t, <-sendErr)
			return acks, nil
		}
		if err != nil {
			if sErr := <-sendErr; sErr != nil && !errors.Is(sErr, io.EOF) {
				t.Logf("sending ended too: %v", sErr) // the receive error says why the stream ended
			}
			return acks, err
		}
		for _, a := range resp.GetAcks() {
			acks[a.GetRequestId()] = append(acks[a.GetRequestId()], a)
		}
	}
}

func streamed(id uint64, d *ledgerv1.DebitRequest) *ledgerv1.StreamedDebit {
	return &ledgerv1.StreamedDebit{RequestId: id, Debit: d}
}

func requireAckCode(t testing.TB, a *ledgerv1.DebitAck, code codes.Code, reason string) {
	t.Helper()
	require.NotNil(t, a.GetError(), "ack %d: want %s, got %v", a.GetRequestId(), code, a.GetDebit())
	require.Equal(t, code.String(), codes.Code(a.GetError().GetCode()).String(), "ack %d: %s", a.GetRequestId(), a.GetError().GetMessage()) //nolint:gosec // small codes
	require.Equal(t, reason, a.GetError().GetReason())
	require.NotEmpty(t, a.GetError().GetMessage())
}

// TestDebitStreamGivesTheResultsOfUnaryDebit holds every streamed debit to what a unary Debit
// with the same request returns: commits, replays across unary and stream (replayed, the
// original transaction), a reused key with other parameters, require_funds, bad input; and
// refused debits never end the stream.
func TestDebitStreamGivesTheResultsOfUnaryDebit(t *testing.T) {
	t.Parallel()
	l := ledgertest.Start(t, ledgertest.Options{})
	svc := l.Client(t, ledgertest.ServiceToken(t, "model-backend"))
	ops := l.Client(t, ledgertest.OpsToken(t))
	credit(t, ops, "s-acme", 10*unit, "seed")
	unary, err := svc.Debit(t.Context(), &ledgerv1.DebitRequest{OrgId: "s-acme", Amount: usd(unit), IdempotencyKey: "u-1"})
	require.NoError(t, err)

	acks, err := streamDebits(t, svc, []*ledgerv1.StreamedDebit{
		streamed(1, &ledgerv1.DebitRequest{OrgId: "s-acme", Amount: usd(2 * unit), IdempotencyKey: "s-1", Description: "stream", Metadata: map[string]string{"model": "llm-1"}}),
		streamed(2, &ledgerv1.DebitRequest{OrgId: "s-acme", Amount: usd(unit), IdempotencyKey: "u-1"}),                           // unary's replay
		streamed(3, &ledgerv1.DebitRequest{OrgId: "s-acme", Amount: usd(3 * unit), IdempotencyKey: "u-1"}),                       // same key, other amount
		streamed(4, &ledgerv1.DebitRequest{OrgId: "s-acme", Amount: usd(100 * unit), IdempotencyKey: "s-4", RequireFunds: true}), // refused
		streamed(5, &ledgerv1.DebitRequest{OrgId: "", Amount: usd(unit), IdempotencyKey: "s-5"}),                                 // bad input
		streamed(6, &ledgerv1.DebitRequest{OrgId: "s-acme", Amount: usd(-unit), IdempotencyKey: "s-6"}),                          // bad amount
		streamed(7, nil),
		streamed(8, &ledgerv1.DebitRequest{OrgId: "s-acme", Amount: usd(unit), IdempotencyKey: "s-8"}),
	}, 3)
	require.NoError(t, err)
	require.Len(t, acks, 8)
	for id, a := range acks {
		require.Len(t, a, 1, "request %d acknowledged once", id)
	}
	first := acks[1][0].GetDebit()
	require.NotNil(t, first)
	require.False(t, first.GetReplayed())
	require.Equal(t, "stream", first.GetTransaction().GetDescription())
	require.Equal(t, map[string]string{"model": "llm-1"}, first.GetTransaction().GetMetadata())
	replay := acks[2][0].GetDebit()
	require.NotNil(t, replay)
	require.True(t, replay.GetReplayed())
	require.Equal(t, unary.GetTransactionId(), replay.GetTransactionId())
	requireAckCode(t, acks[3][0], codes.AlreadyExists, "IDEMPOTENCY_KEY_REUSED")
	requireAckCode(t, acks[4][0], codes.FailedPrecondition, "INSUFFICIENT_FUNDS")
	requireAckCode(t, acks[5][0], codes.InvalidArgument, "INVALID_ARGUMENT")
	requireAckCode(t, acks[6][0], codes.InvalidArgument, "INVALID_ARGUMENT")
	requireAckCode(t, acks[7][0], codes.InvalidArgument, "INVALID_ARGUMENT")
	require.NotNil(t, acks[8][0].GetDebit(), "a debit after refusals still commits")
	require.Equal(t, 6*unit, nanos(t, acks[8][0].GetDebit().GetBalance()))

	// And the other way round: a unary Debit replays a streamed one.
	again, err := svc.Debit(t.Context(), &ledgerv1.DebitRequest{OrgId: "s-acme", Amount: usd(2 * unit), IdempotencyKey: "s-1", Description: "stream", Metadata: map[string]string{"model": "llm-1"}})
	require.NoError(t, err)
	require.True(t, again.GetReplayed())
	require.Equal(t, first.GetTransactionId(), again.GetTransactionId())
	_, err = svc.Debit(t.Context(), &ledgerv1.DebitRequest{OrgId: "s-acme", Amount: usd(unit), IdempotencyKey: "s-1"})
	requireCode(t, err, codes.AlreadyExists)
	// The refused require_funds debit wrote nothing: its key is free for the same debit without it.
	_, err = svc.Debit(t.Context(), &ledgerv1.DebitRequest{OrgId: "s-acme", Amount: usd(100 * unit), IdempotencyKey: "s-4", RequireFunds: true})
	requireCode(t, err, codes.FailedPrecondition)

	require.Equal(t, 6*unit, nanos(t, balance(t, ops, "s-acme").GetBalance()))
	requireBalanced(t, l.DatabaseURL)
}

// TestDebitStreamDuplicateRequestIDAndOversizeMessage: a request id already unacknowledged is
// refused in its own acknowledgement; a message of more than 1,000 debits ends the stream with
// InvalidArgument and commits none of them.
func TestDebitStreamDuplicateRequestIDAndOversizeMessage(t *testing.T) {
	t.Parallel()
	l := ledgertest.Start(t, ledgertest.Options{})
	svc := l.Client(t, ledgertest.ServiceToken(t, "model-backend"))
	ops := l.Client(t, ledgertest.OpsToken(t))

	acks, err := streamDebits(t, svc, []*ledgerv1.StreamedDebit{
		streamed(1, &ledgerv1.DebitRequest{OrgId: "s-dup", Amount: usd(unit), IdempotencyKey: "a"}),
		streamed(1, &ledgerv1.DebitRequest{OrgId: "s-dup", Amount: usd(unit), IdempotencyKey: "b"}),
	}, 2)
	require.NoError(t, err)
	require.Len(t, acks[1], 2)
	var committed, refused int
	for _, a := range acks[1] {
		if a.GetDebit() != nil {
			committed++
		} else {
			requireAckCode(t, a, codes.InvalidArgument, "INVALID_ARGUMENT")
			refused++
		}
	}
	require.Equal(t, 1, committed)
	require.Equal(t, 1, refused)

	big := make([]*ledgerv1.StreamedDebit, 1001)
	for i := range big {
		big[i] = streamed(uint64(i), &ledgerv1.DebitRequest{OrgId: "s-big", Amount: usd(1), IdempotencyKey: fmt.Sprintf("k-%d", i)})
	}
	acks, err = streamDebits(t, svc, big, len(big))
	requireCode(t, err, codes.InvalidArgument)
	require.Empty(t, acks)
	require.Zero(t, nanos(t, balance(t, ops, "s-big").GetBalance()))
	// 1,000 is allowed.
	acks, err = streamDebits(t, svc, big[:1000], 1000)
	require.NoError(t, err)
	require.Len(t, acks, 1000)
	require.Equal(t, -1000, int(nanos(t, balance(t, ops, "s-big").GetBalance())))
	requireBalanced(t, l.DatabaseURL)
}

// TestDebitStreamPolicy: DebitStream admits whoever may Debit, and no one else.
func TestDebitStreamPolicy(t *testing.T) {
	t.Parallel()
	l := ledgertest.Start(t, ledgertest.Options{})
	for name, c := range map[string]ledgerv1.LedgerServiceClient{
		"anonymous": l.Client(t, ""),
		"member":    l.Client(t, ledgertest.Token(t, memberClaims("s-pol"))),
	} {
		_, err := streamDebits(t, c, []*ledgerv1.StreamedDebit{streamed(1, &ledgerv1.DebitRequest{OrgId: "s-pol", Amount: usd(1), IdempotencyKey: "k"})}, 1)
		want := codes.PermissionDenied
		if name == "anonymous" {
			want = codes.Unauthenticated
		}
		requireCode(t, err, want)
	}
}

// TestDebitStreamRandomMixWithUnaryAndReplays runs streams and unary debits at once over a few
// organizations, each debit sent twice (once on a stream, once on the other path or another
// stream), with random require_funds: every key commits once, every organization's balance is
// its credits less the debits acknowledged as committed (and not replayed), and balances equal
// postings.
func TestDebitStreamRandomMixWithUnaryAndReplays(t *testing.T) {
	t.Parallel()
	l := ledgertest.Start(t, ledgertest.Options{CommitMaxBatch: 64})
	svc := l.Client(t, ledgertest.ServiceToken(t, "model-backend"))
	ops := l.Client(t, ledgertest.OpsToken(t))
	orgs := []string{"m1", "m2", "m3", "m4"}
	for _, o := range orgs {
		credit(t, ops, o, 50*unit, "seed-"+o)
	}
	r := rand.New(rand.NewPCG(3, 4))
	type debit struct {
		req *ledgerv1.DebitRequest
	}
	const n = 1200
	debits := make([]debit, n)
	for i := range debits {
		debits[i] = debit{req: &ledgerv1.DebitRequest{
			OrgId: orgs[r.IntN(len(orgs))], Amount: usd(money.Nanos(r.Int64N(int64(unit/4)) + 1)),
			IdempotencyKey: fmt.Sprintf("mix-%d", i), RequireFunds: r.IntN(3) == 0,
		}}
	}
	var mu sync.Mutex
	committed := map[string]string{} // key -> transaction id
	spent := map[string]money.Nanos{}
	record := func(d *ledgerv1.DebitRequest, resp *ledgerv1.DebitResponse) {
		mu.Lock()
		defer mu.Unlock()
		if prev, ok := committed[d.GetIdempotencyKey()]; ok {
			require.Equal(t, prev, resp.GetTransactionId(), "key %s committed twice", d.GetIdempotencyKey())
			return
		}
		committed[d.GetIdempotencyKey()] = resp.GetTransactionId()
		spent[d.GetOrgId()] += nanos(t, d.GetAmount())
	}
	var wg sync.WaitGroup
	// Three streams share the debits twice over; a unary caller sends every fifth again.
	for s := range 3 {
		wg.Go(func() {
			var batch []*ledgerv1.StreamedDebit
			for i := range debits {
				if i%3 == s || (i+1)%3 == s {
					batch = append(batch, streamed(uint64(i), debits[i].req))
				}
			}
			acks, err := streamDebits(t, svc, batch, 1+s*40)
			require.NoError(t, err)
			require.Len(t, acks, len(batch))
			for id, as := range acks {
				require.Len(t, as, 1)
				a := as[0]
				if a.GetError() != nil {
					requireAckCode(t, a, codes.FailedPrecondition, "INSUFFICIENT_FUNDS")
					require.True(t, debits[id].req.GetRequireFunds())
					continue
				}
				record(debits[id].req, a.GetDebit())
			}
		})
	}
	wg.Go(func() {
		for i := 0; i < n; i += 5 {
			resp, err := svc.Debit(t.Context(), debits[i].req)
			if err != nil {
				requireCode(t, err, codes.FailedPrecondition)
				continue
			}
			record(debits[i].req, resp)
		}
	})
	wg.Wait()
	for _, o := range orgs {
		require.Equal(t, 50*unit-spent[o], nanos(t, balance(t, ops, o).GetBalance()), o)
	}
	requireBalanced(t, l.DatabaseURL)
}

// TestDebitStreamCancelledMidStreamKeepsWhatCommitted: a client that goes away with debits in
// flight loses their acknowledgements, not their commits; replaying every debit with the same
// keys on a new stream commits each exactly once.
func TestDebitStreamCancelledMidStreamKeepsWhatCommitted(t *testing.T) {
	t.Parallel()
	l := ledgertest.Start(t, ledgertest.Options{})
	svc := l.Client(t, ledgertest.ServiceToken(t, "model-backend"))
	ops := l.Client(t, ledgertest.OpsToken(t))
	const n = 3000
	debits := make([]*ledgerv1.StreamedDebit, n)
	for i := range debits {
		debits[i] = streamed(uint64(i), &ledgerv1.DebitRequest{OrgId: fmt.Sprintf("cx-%d", i%5), Amount: usd(money.Nanos(i + 1)), IdempotencyKey: fmt.Sprintf("cx-%d", i)})
	}
	ctx, cancel := context.WithCancel(t.Context())
	st, err := svc.DebitStream(ctx)
	require.NoError(t, err)
	_, err = st.Recv()
	require.NoError(t, err)
	for i := 0; i < n; i += 500 {
		require.NoError(t, st.Send(&ledgerv1.DebitStreamRequest{Debits: debits[i : i+500]}))
	}
	first := map[uint64]string{}
	for len(first) == 0 {
		resp, err := st.Recv()
		require.NoError(t, err)
		for _, a := range resp.GetAcks() {
			require.NotNil(t, a.GetDebit(), "ack %d: %v", a.GetRequestId(), a.GetError())
			first[a.GetRequestId()] = a.GetDebit().GetTransactionId()
		}
	}
	cancel() // mid-stream: the rest of the acknowledgements are lost

	acks, err := streamDebits(t, svc, debits, 250)
	require.NoError(t, err)
	require.Len(t, acks, n)
	want := map[string]money.Nanos{}
	for id, as := range acks {
		require.Len(t, as, 1)
		d := as[0].GetDebit()
		require.NotNil(t, d, "replay of %d: %v", id, as[0].GetError())
		if tx, ok := first[id]; ok {
			require.True(t, d.GetReplayed(), "a debit acknowledged before the cancel is a replay")
			require.Equal(t, tx, d.GetTransactionId())
		}
		want[debits[id].GetDebit().GetOrgId()] -= money.Nanos(id + 1)
	}
	for org, b := range want {
		require.Equal(t, b, nanos(t, balance(t, ops, org).GetBalance()), org)
	}
	requireBalanced(t, l.DatabaseURL)
}
