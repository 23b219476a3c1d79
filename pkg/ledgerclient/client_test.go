package ledgerclient_test

import (
	"context"
	"errors"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
	moneypb "google.golang.org/genproto/googleapis/type/money"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"
	tspb "google.golang.org/protobuf/types/known/timestamppb"

	ledgerv1 "github.com/tallyhq/tally/pkg/gen/tally/ledger/v1"
	"github.com/tallyhq/tally/pkg/ledgerclient"
	"github.com/tallyhq/tally/pkg/ledgerclient/ledgerclienttest"
	"github.com/tallyhq/tally/pkg/money"
)

// TestClassifyCodes covers every code a ledger can answer. Unimplemented is a real answer, not a
// gap in the client: a ledger of an older version during a rolling deploy does not know the RPC
// yet (issue 17 added RPCs such as DebitStream, which meet exactly that), which is an outage to
// retry, like Unavailable. The classification is complete.
func TestClassifyCodes(t *testing.T) {
	t.Parallel()
	for code, want := range map[codes.Code]error{
		codes.Canceled:           ledgerclient.ErrUnavailable,
		codes.Unknown:            ledgerclient.ErrUnavailable,
		codes.InvalidArgument:    ledgerclient.ErrRefused,
		codes.DeadlineExceeded:   ledgerclient.ErrUnavailable,
		codes.NotFound:           ledgerclient.ErrNotFound,
		codes.AlreadyExists:      ledgerclient.ErrKeyReused,
		codes.PermissionDenied:   ledgerclient.ErrUnavailable,
		codes.ResourceExhausted:  ledgerclient.ErrUnavailable,
		codes.FailedPrecondition: ledgerclient.ErrFailedPrecondition,
		codes.Aborted:            ledgerclient.ErrUnavailable,
		codes.OutOfRange:         ledgerclient.ErrRefused,
		codes.Unimplemented:      ledgerclient.ErrUnavailable,
		codes.Internal:           ledgerclient.ErrUnavailable,
		codes.Unavailable:        ledgerclient.ErrUnavailable,
		codes.DataLoss:           ledgerclient.ErrUnavailable,
		codes.Unauthenticated:    ledgerclient.ErrUnavailable,
	} {
		t.Run(code.String(), func(t *testing.T) {
			t.Parallel()
			err := ledgerclient.Classify("debiting", status.Error(code, "ledger says no"))
			require.ErrorIs(t, err, want)
			var e *ledgerclient.Error
			require.ErrorAs(t, err, &e)
			require.Equal(t, code, e.Code)
			require.Equal(t, "ledger says no", e.Msg)
			require.Equal(t, code == codes.Unauthenticated || code == codes.PermissionDenied, e.Credentials)
			refused := !errors.Is(want, ledgerclient.ErrUnavailable)
			require.Equal(t, refused, errors.Is(err, ledgerclient.ErrRefused))
			_, isStatus := status.FromError(err)
			require.False(t, isStatus, "the gRPC status must not leak through Unwrap")
		})
	}
	require.NoError(t, ledgerclient.Classify("x", nil))
	require.ErrorIs(t, ledgerclient.Classify("x", errors.New("connection reset")), ledgerclient.ErrUnavailable)
	require.ErrorIs(t, ledgerclient.Classify("x", context.Canceled), context.Canceled)
}

// TestCodesFromTheWire checks every code end to end through a real connection.
func TestCodesFromTheWire(t *testing.T) {
	t.Parallel()
	f := ledgerclienttest.Start(t)
	c := f.Client(t, ledgerclient.Config{})
	for code := codes.Canceled; code <= codes.Unauthenticated; code++ {
		f.FailAll(code, "no")
		_, err := c.Balance(t.Context(), "acme")
		var want *ledgerclient.Error
		require.ErrorAs(t, ledgerclient.Classify("", status.Error(code, "")), &want)
		require.ErrorIs(t, err, want.Kind, code.String())
	}
}

func TestHappyPath(t *testing.T) {
	t.Parallel()
	f := ledgerclienttest.Start(t)
	c := f.Client(t, ledgerclient.Config{})
	ctx := t.Context()
	b, err := c.Balance(ctx, "acme")
	require.NoError(t, err)
	require.Equal(t, ledgerclient.Balance{OrgID: "acme", Currency: "USD", Balance: f.Available, Available: f.Available, Version: 1}, b)
	usd := money.Money{Nanos: money.NanosPerUnit, Currency: "USD"}
	cr, err := c.Credit(ctx, ledgerclient.Credit{OrgID: "acme", Amount: usd, IdempotencyKey: "k"})
	require.NoError(t, err)
	require.NotEmpty(t, cr.TransactionID)
	tx, err := c.Debit(ctx, ledgerclient.Debit{OrgID: "acme", Amount: usd, IdempotencyKey: "k2"})
	require.NoError(t, err)
	require.NotEmpty(t, tx)
	tx, err = c.Adjust(ctx, ledgerclient.Adjust{OrgID: "acme", Amount: money.Money{Nanos: -1, Currency: "USD"}, IdempotencyKey: "k3"})
	require.NoError(t, err)
	require.NotEmpty(t, tx)
	require.EqualValues(t, 1, f.Calls("Debit"))
}

func requireBadReply(t *testing.T, err error) {
	t.Helper()
	require.ErrorIs(t, err, ledgerclient.ErrBadReply)
	for _, m := range []error{money.ErrUnknownCurrency, money.ErrNanosOutOfRange, money.ErrMissing, ledgerclient.ErrRefused} {
		require.False(t, errors.Is(err, m), "%v must not match %v", err, m)
	}
}

func TestMalformedReplies(t *testing.T) {
	t.Parallel()
	bad := map[string]*moneypb.Money{
		"unknown currency":   {CurrencyCode: "XXX", Units: 1},
		"lowercase":          {CurrencyCode: "usd", Units: 1},
		"nanos out of range": {CurrencyCode: "USD", Nanos: 1_000_000_000},
		"sign mismatch":      {CurrencyCode: "USD", Units: 1, Nanos: -1},
	}
	for name, m := range bad {
		t.Run(name, func(t *testing.T) {
			t.Parallel()
			f := ledgerclienttest.Start(t)
			c := f.Client(t, ledgerclient.Config{})
			ctx := t.Context()
			f.Set(ledgerclienttest.Handlers{
				Balance: func(context.Context, *ledgerv1.GetBalanceRequest) (*ledgerv1.GetBalanceResponse, error) {
					return &ledgerv1.GetBalanceResponse{Balance: money.ToProto(0, "USD"), Available: m}, nil
				},
				Credit: func(context.Context, *ledgerv1.CreditRequest) (*ledgerv1.CreditResponse, error) {
					return &ledgerv1.CreditResponse{Transaction: &ledgerv1.Transaction{Id: "t"}, Balance: m}, nil
				},
				Debit: func(context.Context, *ledgerv1.DebitRequest) (*ledgerv1.DebitResponse, error) {
					return &ledgerv1.DebitResponse{TransactionId: "t", Balance: m}, nil
				},
				Adjust: func(context.Context, *ledgerv1.AdjustRequest) (*ledgerv1.AdjustResponse, error) {
					return &ledgerv1.AdjustResponse{Transaction: &ledgerv1.Transaction{Id: "t"}, Balance: m}, nil
				},
				Watch: func(_ *ledgerv1.WatchEventsRequest, s ledgerv1.LedgerService_WatchEventsServer) error {
					return s.Send(&ledgerv1.WatchEventsResponse{Event: &ledgerv1.BalanceEvent{Sequence: 1, OrgId: "acme", Balance: money.ToProto(0, "USD"), Amount: m}})
				},
			})
			usd := money.Money{Nanos: 1, Currency: "USD"}
			_, err := c.Balance(ctx, "acme")
			requireBadReply(t, err)
			_, err = c.Credit(ctx, ledgerclient.Credit{OrgID: "acme", Amount: usd})
			requireBadReply(t, err)
			_, err = c.Debit(ctx, ledgerclient.Debit{OrgID: "acme", Amount: usd})
			requireBadReply(t, err)
			_, err = c.Adjust(ctx, ledgerclient.Adjust{OrgID: "acme", Amount: usd})
			requireBadReply(t, err)
			s, err := c.Watch(ctx, 0)
			require.NoError(t, err)
			_, err = s.Recv()
			requireBadReply(t, err)
		})
	}
}

func TestMissingFields(t *testing.T) {
	t.Parallel()
	f := ledgerclienttest.Start(t)
	c := f.Client(t, ledgerclient.Config{})
	ctx := t.Context()
	f.Set(ledgerclienttest.Handlers{
		Balance: func(context.Context, *ledgerv1.GetBalanceRequest) (*ledgerv1.GetBalanceResponse, error) {
			return &ledgerv1.GetBalanceResponse{Balance: money.ToProto(0, "USD")}, nil // no available
		},
		Credit: func(context.Context, *ledgerv1.CreditRequest) (*ledgerv1.CreditResponse, error) {
			return &ledgerv1.CreditResponse{}, nil
		},
		Debit: func(context.Context, *ledgerv1.DebitRequest) (*ledgerv1.DebitResponse, error) {
			return &ledgerv1.DebitResponse{}, nil
		},
		Adjust: func(context.Context, *ledgerv1.AdjustRequest) (*ledgerv1.AdjustResponse, error) {
			return &ledgerv1.AdjustResponse{}, nil
		},
		Watch: func(_ *ledgerv1.WatchEventsRequest, s ledgerv1.LedgerService_WatchEventsServer) error {
			return s.Send(&ledgerv1.WatchEventsResponse{Event: &ledgerv1.BalanceEvent{Sequence: 1, OrgId: "acme"}}) // no balance
		},
	})
	_, err := c.Balance(ctx, "acme")
	requireBadReply(t, err)
	_, err = c.Credit(ctx, ledgerclient.Credit{})
	requireBadReply(t, err)
	_, err = c.Debit(ctx, ledgerclient.Debit{})
	requireBadReply(t, err)
	_, err = c.Adjust(ctx, ledgerclient.Adjust{})
	requireBadReply(t, err)
	s, err := c.Watch(ctx, 0)
	require.NoError(t, err)
	_, err = s.Recv()
	requireBadReply(t, err)
}

func TestWatch(t *testing.T) {
	t.Parallel()
	f := ledgerclienttest.Start(t)
	c := f.Client(t, ledgerclient.Config{})
	at := time.Date(2026, 12, 1, 0, 0, 0, 0, time.UTC)
	f.Set(ledgerclienttest.Handlers{Watch: func(r *ledgerv1.WatchEventsRequest, s ledgerv1.LedgerService_WatchEventsServer) error {
		if r.GetAfterSequence() != 6 {
			return status.Errorf(codes.InvalidArgument, "after %d", r.GetAfterSequence())
		}
		return s.Send(&ledgerv1.WatchEventsResponse{Event: &ledgerv1.BalanceEvent{
			Sequence: 7, OrgId: "acme", Kind: ledgerv1.EventKind_EVENT_KIND_CREDIT, CreditSource: ledgerv1.CreditSource_CREDIT_SOURCE_GRANT,
			TransactionId: "t", Amount: money.ToProto(5, "EUR"), Balance: money.ToProto(9, "EUR"), Available: money.ToProto(8, "EUR"),
			OccurredAt: timestamppb(at),
		}})
	}})
	s, err := c.Watch(t.Context(), 6)
	require.NoError(t, err)
	e, err := s.Recv()
	require.NoError(t, err)
	require.Equal(t, ledgerclient.Event{Seq: 7, OrgID: "acme", Kind: ledgerclient.EventCredit, Grant: true, TransactionID: "t",
		Currency: "EUR", Balance: 9, Available: 8, Amount: 5, OccurredAt: at}, e)
	_, err = s.Recv()
	require.ErrorIs(t, err, ledgerclient.ErrUnavailable, "a watch that ends is an outage")
}

func TestWatchFromCursor(t *testing.T) {
	t.Parallel()
	f := ledgerclienttest.Start(t)
	c := f.Client(t, ledgerclient.Config{})
	f.Set(ledgerclienttest.Handlers{Watch: func(r *ledgerv1.WatchEventsRequest, s ledgerv1.LedgerService_WatchEventsServer) error {
		if r.GetAfterCursor() != "a:3,b:9" || r.GetAfterSequence() != 0 {
			return status.Errorf(codes.InvalidArgument, "after %q/%d", r.GetAfterCursor(), r.GetAfterSequence())
		}
		return s.Send(&ledgerv1.WatchEventsResponse{Event: &ledgerv1.BalanceEvent{
			Sequence: 10, OrgId: "acme", Kind: ledgerv1.EventKind_EVENT_KIND_DEBIT, Amount: money.ToProto(1, "USD"),
			Balance: money.ToProto(2, "USD"), Shard: "b", Cursor: "a:3,b:10",
		}})
	}})
	s, err := c.WatchFrom(t.Context(), "a:3,b:9")
	require.NoError(t, err)
	e, err := s.Recv()
	require.NoError(t, err)
	require.Equal(t, ledgerclient.Event{Seq: 10, OrgID: "acme", Kind: ledgerclient.EventDebit, Currency: "USD",
		Balance: 2, Amount: 1, Shard: "b", Cursor: "a:3,b:10"}, e)
}

func TestTimeoutIsUnavailable(t *testing.T) {
	t.Parallel()
	f := ledgerclienttest.Start(t)
	f.BlockAll()
	c := f.Client(t, ledgerclient.Config{Timeout: 50 * time.Millisecond})
	start := time.Now()
	_, err := c.Balance(t.Context(), "acme")
	require.ErrorIs(t, err, ledgerclient.ErrUnavailable)
	require.False(t, errors.Is(err, context.DeadlineExceeded))
	require.NoError(t, t.Context().Err())
	require.Less(t, time.Since(start), 5*time.Second)
	_, err = c.Debit(t.Context(), ledgerclient.Debit{OrgID: "acme"})
	require.ErrorIs(t, err, ledgerclient.ErrUnavailable)
}

func TestCallerCancel(t *testing.T) {
	t.Parallel()
	f := ledgerclienttest.Start(t)
	f.BlockAll()
	c := f.Client(t, ledgerclient.Config{Timeout: time.Hour})
	ctx, cancel := context.WithCancel(t.Context())
	f.Set(ledgerclienttest.Handlers{Balance: func(sctx context.Context, _ *ledgerv1.GetBalanceRequest) (*ledgerv1.GetBalanceResponse, error) {
		cancel() // the caller gives up while the ledger is working on it
		<-sctx.Done()
		return nil, status.FromContextError(sctx.Err()).Err()
	}})
	_, err := c.Balance(ctx, "acme")
	require.ErrorIs(t, err, context.Canceled)
	require.False(t, errors.Is(err, ledgerclient.ErrUnavailable))

	ctx, cancel2 := context.WithTimeout(t.Context(), 20*time.Millisecond)
	defer cancel2()
	f.BlockAll()
	_, err = c.Debit(ctx, ledgerclient.Debit{})
	require.ErrorIs(t, err, context.DeadlineExceeded, "the caller's own deadline is the caller's")

	wctx, wcancel := context.WithCancel(t.Context())
	s, err := c.Watch(wctx, 0)
	require.NoError(t, err)
	wcancel()
	_, err = s.Recv()
	require.ErrorIs(t, err, context.Canceled)
}

func TestNew(t *testing.T) {
	t.Parallel()
	_, err := ledgerclient.New(ledgerclient.Config{})
	require.Error(t, err)
	f := ledgerclienttest.Start(t)
	_, err = ledgerclient.New(ledgerclient.Config{Conn: f.Conn(t), Timeout: -1})
	require.Error(t, err)
}

func timestamppb(t time.Time) *tspb.Timestamp { return tspb.New(t) }
