// Package ledgerclienttest is a fake ledger for tests: a LedgerService on a loopback listener
// whose replies a test programs (a healthy account by default; status codes, malformed money or
// calls that block until the caller gives up on demand).
package ledgerclienttest

import (
	"context"
	"fmt"
	"net"
	"sync"
	"sync/atomic"
	"testing"

	moneypb "google.golang.org/genproto/googleapis/type/money"
	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/credentials/insecure"
	"google.golang.org/grpc/status"

	ledgerv1 "github.com/tallyhq/tally/pkg/gen/tally/ledger/v1"
	"github.com/tallyhq/tally/pkg/ledgerclient"
	"github.com/tallyhq/tally/pkg/money"
)

// Handlers answer the calls of a Fake. A nil handler gives the default answer.
type Handlers struct {
	Balance func(context.Context, *ledgerv1.GetBalanceRequest) (*ledgerv1.GetBalanceResponse, error)
	Credit  func(context.Context, *ledgerv1.CreditRequest) (*ledgerv1.CreditResponse, error)
	Debit   func(context.Context, *ledgerv1.DebitRequest) (*ledgerv1.DebitResponse, error)
	Adjust  func(context.Context, *ledgerv1.AdjustRequest) (*ledgerv1.AdjustResponse, error)
	Watch   func(*ledgerv1.WatchEventsRequest, ledgerv1.LedgerService_WatchEventsServer) error
}

// Fake is a programmable ledger. Its methods are safe for concurrent use.
type Fake struct {
	ledgerv1.UnimplementedLedgerServiceServer

	lis   net.Listener
	srv   *grpc.Server
	mu    sync.Mutex
	h     Handlers
	calls sync.Map // method name → *atomic.Int64
	seq   atomic.Int64

	// Currency and Available are the default balance's (USD, 100 units).
	Currency  string
	Available money.Nanos
}

// New starts a Fake on a loopback port; Close stops it.
func New() (*Fake, error) {
	lis, err := new(net.ListenConfig).Listen(context.Background(), "tcp", "127.0.0.1:0")
	if err != nil {
		return nil, fmt.Errorf("ledgerclienttest: %w", err)
	}
	f := &Fake{lis: lis, srv: grpc.NewServer(), Currency: "USD", Available: 100 * money.NanosPerUnit}
	ledgerv1.RegisterLedgerServiceServer(f.srv, f)
	go func() { _ = f.srv.Serve(lis) }()
	return f, nil
}

// Start is New, stopped at the end of the test.
func Start(t testing.TB) *Fake {
	t.Helper()
	f, err := New()
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(f.Close)
	return f
}

// Addr is the fake's address, for services that dial the ledger (TALLY_LEDGER_ADDR).
func (f *Fake) Addr() string { return f.lis.Addr().String() }

// Close stops the fake, ending the calls in flight.
func (f *Fake) Close() { f.srv.Stop() }

// Conn dials the fake without credentials; the connection is closed at the end of the test.
func (f *Fake) Conn(t testing.TB) *grpc.ClientConn {
	t.Helper()
	conn, err := grpc.NewClient(f.Addr(), grpc.WithTransportCredentials(insecure.NewCredentials()))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = conn.Close() })
	return conn
}

// Client is a ledgerclient.Client over Conn(t) with cfg (its Conn is set here).
func (f *Fake) Client(t testing.TB, cfg ledgerclient.Config) *ledgerclient.Client {
	t.Helper()
	cfg.Conn = f.Conn(t)
	c, err := ledgerclient.New(cfg)
	if err != nil {
		t.Fatal(err)
	}
	return c
}

// Set replaces the handlers.
func (f *Fake) Set(h Handlers) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.h = h
}

// FailAll makes every unary call and Watch answer code with msg.
func (f *Fake) FailAll(code codes.Code, msg string) {
	err := func() error { return status.Error(code, msg) }
	f.Set(Handlers{
		Balance: func(context.Context, *ledgerv1.GetBalanceRequest) (*ledgerv1.GetBalanceResponse, error) {
			return nil, err()
		},
		Credit: func(context.Context, *ledgerv1.CreditRequest) (*ledgerv1.CreditResponse, error) { return nil, err() },
		Debit:  func(context.Context, *ledgerv1.DebitRequest) (*ledgerv1.DebitResponse, error) { return nil, err() },
		Adjust: func(context.Context, *ledgerv1.AdjustRequest) (*ledgerv1.AdjustResponse, error) { return nil, err() },
		Watch:  func(*ledgerv1.WatchEventsRequest, ledgerv1.LedgerService_WatchEventsServer) error { return err() },
	})
}

// BlockAll makes every call wait until its caller gives up.
func (f *Fake) BlockAll() {
	f.Set(Handlers{
		Balance: func(ctx context.Context, _ *ledgerv1.GetBalanceRequest) (*ledgerv1.GetBalanceResponse, error) {
			<-ctx.Done()
			return nil, status.FromContextError(ctx.Err()).Err()
		},
		Credit: func(ctx context.Context, _ *ledgerv1.CreditRequest) (*ledgerv1.CreditResponse, error) {
			<-ctx.Done()
			return nil, status.FromContextError(ctx.Err()).Err()
		},
		Debit: func(ctx context.Context, _ *ledgerv1.DebitRequest) (*ledgerv1.DebitResponse, error) {
			<-ctx.Done()
			return nil, status.FromContextError(ctx.Err()).Err()
		},
		Adjust: func(ctx context.Context, _ *ledgerv1.AdjustRequest) (*ledgerv1.AdjustResponse, error) {
			<-ctx.Done()
			return nil, status.FromContextError(ctx.Err()).Err()
		},
		Watch: func(_ *ledgerv1.WatchEventsRequest, s ledgerv1.LedgerService_WatchEventsServer) error {
			<-s.Context().Done()
			return status.FromContextError(s.Context().Err()).Err()
		},
	})
}

// MalformedMoney is an amount no client may accept: an unknown currency.
func MalformedMoney() *moneypb.Money { return &moneypb.Money{CurrencyCode: "XXX", Units: 1} }

// MalformedBalance makes GetBalance answer an available amount in an unknown currency.
func (f *Fake) MalformedBalance() {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.h.Balance = func(_ context.Context, r *ledgerv1.GetBalanceRequest) (*ledgerv1.GetBalanceResponse, error) {
		return &ledgerv1.GetBalanceResponse{OrgId: r.GetOrgId(), Balance: MalformedMoney(), Available: MalformedMoney(), Held: MalformedMoney()}, nil
	}
}

// Calls is how many times method ("GetBalance", "Credit", "Debit", "Adjust", "WatchEvents")
// was called.
func (f *Fake) Calls(method string) int64 {
	n, ok := f.calls.Load(method)
	if !ok {
		return 0
	}
	return n.(*atomic.Int64).Load()
}

func (f *Fake) count(method string) Handlers {
	n, _ := f.calls.LoadOrStore(method, new(atomic.Int64))
	n.(*atomic.Int64).Add(1)
	f.mu.Lock()
	defer f.mu.Unlock()
	return f.h
}

func (f *Fake) txID() string { return fmt.Sprintf("fake-tx-%d", f.seq.Add(1)) }

// GetBalance implements LedgerServiceServer.
func (f *Fake) GetBalance(ctx context.Context, r *ledgerv1.GetBalanceRequest) (*ledgerv1.GetBalanceResponse, error) {
	if h := f.count("GetBalance").Balance; h != nil {
		return h(ctx, r)
	}
	return &ledgerv1.GetBalanceResponse{
		OrgId: r.GetOrgId(), Balance: money.ToProto(f.Available, f.Currency),
		Available: money.ToProto(f.Available, f.Currency), Held: money.ToProto(0, f.Currency), Version: 1,
	}, nil
}

// Credit implements LedgerServiceServer.
func (f *Fake) Credit(ctx context.Context, r *ledgerv1.CreditRequest) (*ledgerv1.CreditResponse, error) {
	if h := f.count("Credit").Credit; h != nil {
		return h(ctx, r)
	}
	return &ledgerv1.CreditResponse{Transaction: &ledgerv1.Transaction{Id: f.txID(), OrgId: r.GetOrgId()}}, nil
}

// Debit implements LedgerServiceServer.
func (f *Fake) Debit(ctx context.Context, r *ledgerv1.DebitRequest) (*ledgerv1.DebitResponse, error) {
	if h := f.count("Debit").Debit; h != nil {
		return h(ctx, r)
	}
	return &ledgerv1.DebitResponse{TransactionId: f.txID()}, nil
}

// Adjust implements LedgerServiceServer.
func (f *Fake) Adjust(ctx context.Context, r *ledgerv1.AdjustRequest) (*ledgerv1.AdjustResponse, error) {
	if h := f.count("Adjust").Adjust; h != nil {
		return h(ctx, r)
	}
	return &ledgerv1.AdjustResponse{Transaction: &ledgerv1.Transaction{Id: f.txID(), OrgId: r.GetOrgId()}}, nil
}

// WatchEvents implements LedgerServiceServer: by default a stream without events.
func (f *Fake) WatchEvents(r *ledgerv1.WatchEventsRequest, s ledgerv1.LedgerService_WatchEventsServer) error {
	if h := f.count("WatchEvents").Watch; h != nil {
		return h(r, s)
	}
	<-s.Context().Done()
	return status.FromContextError(s.Context().Err()).Err()
}
