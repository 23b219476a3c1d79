package client_test

import (
	"context"
	"fmt"
	"net"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"
	"google.golang.org/protobuf/proto"
	"google.golang.org/protobuf/types/known/timestamppb"

	ledgerv1 "github.com/tallyhq/tally/pkg/gen/tally/ledger/v1"
	"github.com/tallyhq/tally/pkg/money"
)

// memLedger is an in-memory stand-in for the ledger's gRPC contract, for the tests of the
// client's own mechanics (batching, windows, reconnects, fallbacks, leases) that need a server
// misbehaving on cue. The invariant tests run against the real ledger, in
// services/ledger/test/sdk_test.go.
//
// The embedded UnimplementedLedgerServiceServer is grpc-go's required forward-compatibility base,
// not unfinished work: memLedger implements every RPC the SDK calls (issue 17 built them all).
// noStream answers DebitStream with Unimplemented on
// purpose: it is how a ledger older than DebitStream answers, and the SDK's unary fallback
// (issue 17) is tested against it.
type memLedger struct {
	ledgerv1.UnimplementedLedgerServiceServer

	maxInFlight int32
	noStream    bool // DebitStream answers Unimplemented, as a ledger without DebitStream does

	mu       sync.Mutex
	balance  map[string]money.Nanos
	held     map[string]money.Nanos
	keys     map[string]*ledgerv1.DebitRequest // org/key → request
	results  map[string]*ledgerv1.DebitResponse
	attempts map[string]int // per key: debits received (unary and streamed)
	holds    map[string]*memHold
	holdKeys map[string]string // reserve key → hold id
	capKeys  map[string]money.Nanos
	nextTx   int

	// Faults, consumed as they fire.
	breakAfter       atomic.Int64 // end the stream (after committing, before acking) once this many debits were received; 0: never
	unavailableN     atomic.Int64 // answer the next N streamed debits UNAVAILABLE (without committing)
	unaryFailN       atomic.Int64 // fail the next N unary calls UNAVAILABLE
	loseCaptureReply atomic.Int64 // commit the next N captures, then answer UNAVAILABLE
	maxSeenUnack     atomic.Int64
	batches          atomic.Int64
	debitsOnWire     atomic.Int64
	streamsOpened    atomic.Int64
}

type memHold struct {
	org    string
	amount money.Nanos
	status ledgerv1.HoldStatus
}

func newMemLedger() *memLedger {
	return &memLedger{maxInFlight: 64, balance: map[string]money.Nanos{}, held: map[string]money.Nanos{},
		keys: map[string]*ledgerv1.DebitRequest{}, results: map[string]*ledgerv1.DebitResponse{}, attempts: map[string]int{},
		holds: map[string]*memHold{}, holdKeys: map[string]string{}, capKeys: map[string]money.Nanos{}}
}

// serve runs m on a loopback listener and returns its address.
func (m *memLedger) serve(t testing.TB) string {
	t.Helper()
	lis, err := new(net.ListenConfig).Listen(t.Context(), "tcp", "127.0.0.1:0")
	require.NoError(t, err)
	s := grpc.NewServer()
	ledgerv1.RegisterLedgerServiceServer(s, m)
	go func() { _ = s.Serve(lis) }()
	t.Cleanup(s.Stop)
	return lis.Addr().String()
}

func (m *memLedger) credit(org string, n money.Nanos) {
	m.mu.Lock()
	defer m.mu.Unlock()
	m.balance[org] += n
}

func (m *memLedger) bal(org string) (balance, held money.Nanos) {
	m.mu.Lock()
	defer m.mu.Unlock()
	return m.balance[org], m.held[org]
}

func (m *memLedger) tries(key string) int {
	m.mu.Lock()
	defer m.mu.Unlock()
	return m.attempts[key]
}

func (m *memLedger) unaryFault() error {
	if m.unaryFailN.Add(-1) >= 0 {
		return status.Error(codes.Unavailable, "injected outage")
	}
	return nil
}

// commit applies one debit the way the ledger does: replays by key, AlreadyExists for the same
// key with another request, require_funds, otherwise even below zero.
func (m *memLedger) commit(req *ledgerv1.DebitRequest) (*ledgerv1.DebitResponse, error) {
	m.mu.Lock()
	defer m.mu.Unlock()
	k := req.GetOrgId() + "/" + req.GetIdempotencyKey()
	m.attempts[req.GetIdempotencyKey()]++
	if req.GetIdempotencyKey() == "" || req.GetAmount() == nil {
		return nil, status.Error(codes.InvalidArgument, "amount and idempotency_key are required")
	}
	if prev, ok := m.keys[k]; ok {
		if !proto.Equal(prev, req) {
			return nil, status.Error(codes.AlreadyExists, "idempotency key reused with another request")
		}
		r := proto.Clone(m.results[k]).(*ledgerv1.DebitResponse)
		r.Replayed = true
		return r, nil
	}
	amt, err := money.FromProto(req.GetAmount())
	if err != nil || amt.Nanos <= 0 {
		return nil, status.Error(codes.InvalidArgument, "bad amount")
	}
	org := req.GetOrgId()
	if req.GetRequireFunds() && m.balance[org]-m.held[org] < amt.Nanos {
		return nil, status.Error(codes.FailedPrecondition, "insufficient funds")
	}
	m.balance[org] -= amt.Nanos
	m.nextTx++
	r := &ledgerv1.DebitResponse{TransactionId: fmt.Sprintf("tx-%d", m.nextTx), Balance: money.ToProto(m.balance[org], "USD"),
		Transaction: &ledgerv1.Transaction{Amount: money.ToProto(-amt.Nanos, "USD")}}
	m.keys[k], m.results[k] = req, r
	return r, nil
}

func (m *memLedger) Debit(_ context.Context, req *ledgerv1.DebitRequest) (*ledgerv1.DebitResponse, error) {
	if err := m.unaryFault(); err != nil {
		return nil, err
	}
	return m.commit(req)
}

func (m *memLedger) DebitStream(st grpc.BidiStreamingServer[ledgerv1.DebitStreamRequest, ledgerv1.DebitStreamResponse]) error {
	if m.noStream {
		return status.Error(codes.Unimplemented, "unknown method DebitStream for service tally.ledger.v1.LedgerService")
	}
	m.streamsOpened.Add(1)
	if err := st.Send(&ledgerv1.DebitStreamResponse{MaxInFlight: m.maxInFlight}); err != nil {
		return err
	}
	// A reader that counts what is unacknowledged (and fails the stream when the client sends
	// past max_in_flight), and an acker that commits what has arrived and acknowledges it.
	work := make(chan *ledgerv1.StreamedDebit, 4*m.maxInFlight+1000)
	var unacked atomic.Int64
	readErr := make(chan error, 1)
	go func() {
		defer close(work)
		for {
			req, err := st.Recv()
			if err != nil {
				return
			}
			m.batches.Add(1)
			n := unacked.Add(int64(len(req.GetDebits())))
			for {
				seen := m.maxSeenUnack.Load()
				if n <= seen || m.maxSeenUnack.CompareAndSwap(seen, n) {
					break
				}
			}
			if n > int64(m.maxInFlight) {
				readErr <- status.Errorf(codes.ResourceExhausted, "client has %d unacknowledged debits, max_in_flight is %d", n, m.maxInFlight)
				return
			}
			for _, d := range req.GetDebits() {
				work <- d
			}
		}
	}()
	for {
		var first *ledgerv1.StreamedDebit
		select {
		case err := <-readErr:
			return err
		case d, ok := <-work:
			if !ok {
				return nil
			}
			first = d
		}
		batch := []*ledgerv1.StreamedDebit{first}
	drain:
		for len(batch) < 100 {
			select {
			case d, ok := <-work:
				if !ok {
					break drain
				}
				batch = append(batch, d)
			default:
				break drain
			}
		}
		resp, err := m.ackBatch(batch)
		if err != nil {
			return err
		}
		unacked.Add(-int64(len(batch)))
		if err := st.Send(resp); err != nil {
			return err
		}
	}
}

// ackBatch commits a batch of streamed debits and returns their acks; an error ends the stream
// (the injected crash between commit and ack).
func (m *memLedger) ackBatch(batch []*ledgerv1.StreamedDebit) (*ledgerv1.DebitStreamResponse, error) {
	resp := &ledgerv1.DebitStreamResponse{}
	for _, d := range batch {
		if m.unavailableN.Add(-1) >= 0 {
			m.mu.Lock()
			m.attempts[d.GetDebit().GetIdempotencyKey()]++
			m.mu.Unlock()
			resp.Acks = append(resp.Acks, &ledgerv1.DebitAck{RequestId: d.GetRequestId(),
				Result: &ledgerv1.DebitAck_Error{Error: &ledgerv1.DebitError{Code: int32(codes.Unavailable), Message: "database unavailable"}}})
			continue
		}
		r, err := m.commit(d.GetDebit())
		if b := m.breakAfter.Load(); b > 0 && m.debitsOnWire.Add(1) >= b {
			m.breakAfter.Store(0)
			return nil, status.Error(codes.Unavailable, "injected crash after commit, before ack")
		}
		ack := &ledgerv1.DebitAck{RequestId: d.GetRequestId()}
		if err != nil {
			s := status.Convert(err)
			reason := ""
			if s.Code() == codes.FailedPrecondition {
				reason = "INSUFFICIENT_FUNDS"
			}
			var details map[string]string
			if reason != "" {
				details = map[string]string{"org_id": d.GetDebit().GetOrgId()}
			}
			ack.Result = &ledgerv1.DebitAck_Error{Error: &ledgerv1.DebitError{Code: int32(s.Code()), Message: s.Message(), Reason: reason, Metadata: details}}
		} else {
			ack.Result = &ledgerv1.DebitAck_Debit{Debit: r}
		}
		resp.Acks = append(resp.Acks, ack)
	}
	return resp, nil
}

func (m *memLedger) Authorize(_ context.Context, req *ledgerv1.AuthorizeRequest) (*ledgerv1.AuthorizeResponse, error) {
	if err := m.unaryFault(); err != nil {
		return nil, err
	}
	amt, err := money.FromProto(req.GetAmount())
	if err != nil {
		return nil, status.Error(codes.InvalidArgument, "bad amount")
	}
	m.mu.Lock()
	defer m.mu.Unlock()
	avail := m.balance[req.GetOrgId()] - m.held[req.GetOrgId()]
	return &ledgerv1.AuthorizeResponse{Allowed: avail >= amt.Nanos, Available: money.ToProto(avail, "USD"), Amount: req.GetAmount()}, nil
}

func (m *memLedger) GetBalance(_ context.Context, req *ledgerv1.GetBalanceRequest) (*ledgerv1.GetBalanceResponse, error) {
	m.mu.Lock()
	defer m.mu.Unlock()
	b, h := m.balance[req.GetOrgId()], m.held[req.GetOrgId()]
	return &ledgerv1.GetBalanceResponse{Balance: money.ToProto(b, "USD"), Available: money.ToProto(b-h, "USD"), Held: money.ToProto(h, "USD")}, nil
}

func (m *memLedger) Reserve(_ context.Context, req *ledgerv1.ReserveRequest) (*ledgerv1.ReserveResponse, error) {
	if err := m.unaryFault(); err != nil {
		return nil, err
	}
	amt, err := money.FromProto(req.GetAmount())
	if err != nil || amt.Nanos <= 0 {
		return nil, status.Error(codes.InvalidArgument, "bad amount")
	}
	m.mu.Lock()
	defer m.mu.Unlock()
	org := req.GetOrgId()
	if id, ok := m.holdKeys[org+"/"+req.GetIdempotencyKey()]; ok {
		return &ledgerv1.ReserveResponse{Hold: m.holdProto(id), Replayed: true}, nil
	}
	if m.balance[org]-m.held[org] < amt.Nanos {
		return nil, status.Error(codes.FailedPrecondition, "insufficient available credits")
	}
	id := fmt.Sprintf("hold-%d", len(m.holds)+1)
	m.holds[id] = &memHold{org: org, amount: amt.Nanos, status: ledgerv1.HoldStatus_HOLD_STATUS_ACTIVE}
	m.holdKeys[org+"/"+req.GetIdempotencyKey()] = id
	m.held[org] += amt.Nanos
	return &ledgerv1.ReserveResponse{Hold: m.holdProto(id), Available: money.ToProto(m.balance[org]-m.held[org], "USD")}, nil
}

func (m *memLedger) holdProto(id string) *ledgerv1.Hold {
	h := m.holds[id]
	return &ledgerv1.Hold{Id: id, OrgId: h.org, Amount: money.ToProto(h.amount, "USD"), Status: h.status,
		ExpiresAt: timestamppb.New(time.Now().Add(time.Hour))}
}

func (m *memLedger) Capture(_ context.Context, req *ledgerv1.CaptureRequest) (*ledgerv1.CaptureResponse, error) {
	if err := m.unaryFault(); err != nil {
		return nil, err
	}
	amt, err := money.FromProto(req.GetAmount())
	if err != nil {
		return nil, status.Error(codes.InvalidArgument, "bad amount")
	}
	m.mu.Lock()
	defer m.mu.Unlock()
	h, ok := m.holds[req.GetHoldId()]
	if !ok {
		return nil, status.Error(codes.NotFound, "no such hold")
	}
	if prev, ok := m.capKeys[req.GetIdempotencyKey()]; ok {
		if prev != amt.Nanos {
			return nil, status.Error(codes.AlreadyExists, "key reused")
		}
		return &ledgerv1.CaptureResponse{Hold: m.holdProto(req.GetHoldId()), Replayed: true}, nil
	}
	if h.status != ledgerv1.HoldStatus_HOLD_STATUS_ACTIVE {
		return nil, status.Error(codes.FailedPrecondition, "hold not active")
	}
	h.status = ledgerv1.HoldStatus_HOLD_STATUS_CAPTURED
	m.held[h.org] -= h.amount
	m.balance[h.org] -= amt.Nanos
	m.capKeys[req.GetIdempotencyKey()] = amt.Nanos
	if m.loseCaptureReply.Add(-1) >= 0 {
		return nil, status.Error(codes.Unavailable, "injected: committed, reply lost")
	}
	return &ledgerv1.CaptureResponse{Hold: m.holdProto(req.GetHoldId()), Transaction: &ledgerv1.Transaction{Id: "cap"},
		Balance: money.ToProto(m.balance[h.org], "USD")}, nil
}

func (m *memLedger) Release(_ context.Context, req *ledgerv1.ReleaseRequest) (*ledgerv1.ReleaseResponse, error) {
	if err := m.unaryFault(); err != nil {
		return nil, err
	}
	m.mu.Lock()
	defer m.mu.Unlock()
	h, ok := m.holds[req.GetHoldId()]
	if !ok {
		return nil, status.Error(codes.NotFound, "no such hold")
	}
	if h.status == ledgerv1.HoldStatus_HOLD_STATUS_ACTIVE {
		h.status = ledgerv1.HoldStatus_HOLD_STATUS_RELEASED
		m.held[h.org] -= h.amount
	}
	return &ledgerv1.ReleaseResponse{Hold: m.holdProto(req.GetHoldId())}, nil
}
