package grpcapi

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"sync"
	"time"

	rpccode "google.golang.org/genproto/googleapis/rpc/code"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"
	"google.golang.org/protobuf/proto"

	ledgerv1 "github.com/tallyhq/tally/pkg/gen/tally/ledger/v1"
	"github.com/tallyhq/tally/services/ledger/internal/app"
	"github.com/tallyhq/tally/services/ledger/internal/ledger"
	"github.com/tallyhq/tally/services/ledger/internal/streamwindow"
)

const (
	// MaxStreamedDebits bounds the debits of one DebitStreamRequest; a message with more ends
	// the stream with InvalidArgument (the client broke the protocol, not one debit).
	MaxStreamedDebits = 1000
	// maxAckBytes bounds the acknowledgements coalesced into one response, well under the
	// server's message limit (an acknowledgement echoes its debit's transaction, metadata
	// included).
	maxAckBytes = 1 << 20
)

// DebitStream implements LedgerServiceServer: each streamed debit goes through the same
// parsing, validation, pricing and group commit as a unary Debit (app.WriteAsync) and is
// acknowledged once its batch committed. Acknowledgements are coalesced into responses as they
// come; a refused debit is an acknowledgement carrying the status a unary Debit would return.
//
// Two goroutines share the stream: the handler's sends acknowledgements, a receiver reads
// debits and queues them. The stream's window (its share of the server's streamwindow.Window,
// a slot freed once its acknowledgement is sent) bounds everything the stream holds: the
// receiver stops reading when it is full, and HTTP/2 flow control pushes back on the client.
// The window follows the measured commit latency; the first response says it, and a later
// response says it again whenever it changed (max_in_flight). When the client closes its side,
// the handler ends once every debit received is acknowledged. When the stream ends any other
// way, debits already queued still commit (their acknowledgements are lost; the client replays
// them with the same keys).
func (s *Server) DebitStream(stream ledgerv1.LedgerService_DebitStreamServer) error {
	ctx := stream.Context()
	leave := s.window.Join()
	defer leave()
	ds := newDebitStream(s.window)
	advertised := s.window.Grant()
	if err := stream.Send(&ledgerv1.DebitStreamResponse{MaxInFlight: int32(advertised)}); err != nil { //nolint:gosec // bounded by streamwindow's Max
		return err
	}
	recvDone := make(chan error, 1)
	go func() { recvDone <- s.receiveDebits(ctx, stream, ds) }()
	for {
		acks, finished := ds.take(ctx, recvDone)
		if len(acks) > 0 {
			grant := 0
			if g := s.window.Grant(); g != advertised {
				grant, advertised = g, g
			}
			if err := s.sendAcks(stream, acks, grant); err != nil {
				return err
			}
			ds.release(acks)
		}
		if finished != nil {
			if errors.Is(finished, io.EOF) {
				return nil
			}
			return finished
		}
	}
}

// receiveDebits reads the stream until it ends, queueing each debit; it returns io.EOF when the
// client closed its side, else the error that ended the stream.
func (s *Server) receiveDebits(ctx context.Context, stream ledgerv1.LedgerService_DebitStreamServer, ds *debitStream) error {
	parse := write(debitRequest)
	for {
		msg, err := stream.Recv()
		if err != nil {
			return err
		}
		if n := len(msg.GetDebits()); n > MaxStreamedDebits {
			return status.Errorf(codes.InvalidArgument, "a DebitStreamRequest carries at most %d debits, not %d", MaxStreamedDebits, n)
		}
		for _, d := range msg.GetDebits() {
			if err := ds.acquire(ctx); err != nil {
				return err
			}
			received := time.Now()
			id := d.GetRequestId()
			if !ds.claim(id) {
				ds.ack(s.errorAck(ctx, id, false, fmt.Errorf("%w: request_id %d is already unacknowledged in this stream", ledger.ErrInvalid, id)))
				continue
			}
			if d.GetDebit() == nil {
				ds.ack(s.errorAck(ctx, id, true, fmt.Errorf("%w: debit is required", ledger.ErrInvalid)))
				continue
			}
			req, err := parse(ctx, d.GetDebit())
			if err != nil {
				ds.ack(s.errorAck(ctx, id, true, err))
				continue
			}
			s.app.WriteAsync(ctx, req, func(res ledger.Result, err error) {
				s.window.Acked(received, time.Now(), 1)
				if err != nil {
					ds.ack(s.errorAck(ctx, id, true, err))
					return
				}
				ds.ack(streamAck{owns: true, ack: &ledgerv1.DebitAck{RequestId: id, Result: &ledgerv1.DebitAck_Debit{Debit: debitResponse(res)}}})
			})
		}
	}
}

// sendAcks sends acks in as few responses as the size bound allows; grant, when not zero, is the
// stream's new window, said by the first of them.
func (s *Server) sendAcks(stream ledgerv1.LedgerService_DebitStreamServer, acks []streamAck, grant int) error {
	resp := &ledgerv1.DebitStreamResponse{MaxInFlight: int32(grant)} //nolint:gosec // bounded by streamwindow's Max
	size := 0
	for _, a := range acks {
		n := proto.Size(a.ack)
		if len(resp.Acks) > 0 && size+n > maxAckBytes {
			if err := stream.Send(resp); err != nil {
				return err
			}
			resp, size = &ledgerv1.DebitStreamResponse{}, 0
		}
		resp.Acks = append(resp.Acks, a.ack)
		size += n
	}
	return stream.Send(resp)
}

// errorAck is the acknowledgement of a refused debit: the status a unary Debit would end with
// (the service's error table, the one mapping of errors to statuses), and a reason a client can
// switch on.
func (s *Server) errorAck(ctx context.Context, id uint64, owns bool, err error) streamAck {
	st, level := Errors.Status(ctx, err)
	if level >= slog.LevelError {
		s.logger.ErrorContext(ctx, "streamed debit failed", "code", st.Code().String(), "err", err)
	}
	return streamAck{owns: owns, ack: &ledgerv1.DebitAck{RequestId: id, Result: &ledgerv1.DebitAck_Error{Error: &ledgerv1.DebitError{
		Code: int32(st.Code()), Message: st.Message(), Reason: reason(err, st.Code()), //nolint:gosec // gRPC codes are small
		Metadata: errorInfoMetadata(st),
	}}}}
}

// reasons name the refusals a backend acts on; any other refusal's reason is its code's name.
var reasons = []struct {
	is     error
	reason string
}{
	{ledger.ErrSpendLimitReached, ledger.ReasonSpendLimitReached},
	{ledger.ErrInsufficientFunds, "INSUFFICIENT_FUNDS"},
	{ledger.ErrIdempotencyConflict, "IDEMPOTENCY_KEY_REUSED"},
	{ledger.ErrCurrencyMismatch, "CURRENCY_MISMATCH"},
	{ledger.ErrOverflow, "AMOUNT_OVERFLOW"},
	{ledger.ErrUnavailable, "DATABASE_UNAVAILABLE"},
	{app.ErrShuttingDown, "SHUTTING_DOWN"},
	{app.ErrPricingUnavailable, "PRICING_UNAVAILABLE"},
}

func reason(err error, code codes.Code) string {
	for _, r := range reasons {
		if errors.Is(err, r.is) {
			return r.reason
		}
	}
	return rpccode.Code(code).String() //nolint:gosec // gRPC codes are small
}

// streamAck is an acknowledgement waiting to be sent; owns says whether it ends its request
// id's turn in the stream (an acknowledgement refusing a duplicate id does not).
type streamAck struct {
	owns bool
	ack  *ledgerv1.DebitAck
}

// debitStream is what one DebitStream holds: its unacknowledged request ids and the
// acknowledgements not yet sent, all bounded by its window.
type debitStream struct {
	window *streamwindow.Window
	// freed is signalled when acknowledgements sent free room in the window.
	freed chan struct{}
	ready chan struct{}
	mu    sync.Mutex
	ids   map[uint64]struct{}
	acks  []streamAck
	// outstanding counts the debits received and not yet acknowledged on the wire.
	outstanding int
	recvErr     error
}

func newDebitStream(w *streamwindow.Window) *debitStream {
	return &debitStream{window: w, freed: make(chan struct{}, 1), ready: make(chan struct{}, 1), ids: map[uint64]struct{}{}}
}

// acquire takes room in the window for one debit, waiting while the window is full (the grant
// is read again on every wait: it may have grown or shrunk meanwhile). A debit that fills the
// window tells the Window its streams are held back by it: a client that follows the window
// never sends past it, so the server would otherwise never see one wait.
func (d *debitStream) acquire(ctx context.Context) error {
	for {
		grant := d.window.Grant()
		d.mu.Lock()
		if d.outstanding < grant {
			d.outstanding++
			full := d.outstanding >= grant
			d.mu.Unlock()
			if full {
				d.window.Limited()
			}
			return nil
		}
		d.mu.Unlock()
		d.window.Limited()
		select {
		case <-d.freed:
		case <-ctx.Done():
			return ctx.Err()
		}
	}
}

// claim records id as unacknowledged; false when it already is.
func (d *debitStream) claim(id uint64) bool {
	d.mu.Lock()
	defer d.mu.Unlock()
	if _, dup := d.ids[id]; dup {
		return false
	}
	d.ids[id] = struct{}{}
	return true
}

// ack queues a for sending; it never blocks (the committer's workers call it).
func (d *debitStream) ack(a streamAck) {
	d.mu.Lock()
	d.acks = append(d.acks, a)
	d.mu.Unlock()
	d.signal()
}

func (d *debitStream) signal() {
	select {
	case d.ready <- struct{}{}:
	default:
	}
}

// take waits for acknowledgements to send and returns them all; finished is set when the stream
// is over: io.EOF once the client closed its side and every debit is acknowledged, or the
// error that ended it.
func (d *debitStream) take(ctx context.Context, recvDone <-chan error) (acks []streamAck, finished error) {
	for {
		d.mu.Lock()
		acks, d.acks = d.acks, nil
		recvErr, outstanding := d.recvErr, d.outstanding-len(acks)
		d.mu.Unlock()
		switch {
		case recvErr != nil && !errors.Is(recvErr, io.EOF):
			return acks, recvErr
		case recvErr != nil && outstanding == 0:
			return acks, io.EOF
		case len(acks) > 0:
			return acks, nil
		}
		select {
		case <-d.ready:
		case err := <-recvDone:
			d.mu.Lock()
			d.recvErr = err
			d.mu.Unlock()
		case <-ctx.Done():
			return nil, ctx.Err()
		}
	}
}

// release frees the window slots and request ids of acks, once they are sent.
func (d *debitStream) release(acks []streamAck) {
	d.mu.Lock()
	for _, a := range acks {
		if a.owns {
			delete(d.ids, a.ack.GetRequestId())
		}
	}
	d.outstanding -= len(acks)
	d.mu.Unlock()
	select {
	case d.freed <- struct{}{}:
	default:
	}
}
