package server_test

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"regexp"
	"sync"
	"testing"
	"time"

	"github.com/jackc/pgx/v5/pgconn"
	"github.com/stretchr/testify/require"
	"google.golang.org/genproto/googleapis/rpc/errdetails"
	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/metadata"
	"google.golang.org/grpc/status"
	"google.golang.org/grpc/test/bufconn"

	"github.com/tallyhq/tally/pkg/auth"
	"github.com/tallyhq/tally/pkg/fieldviolation"
	ledgerv1 "github.com/tallyhq/tally/pkg/gen/tally/ledger/v1"
	"github.com/tallyhq/tally/pkg/ids"
	"github.com/tallyhq/tally/pkg/money"
	"github.com/tallyhq/tally/pkg/rpcclient"
	"github.com/tallyhq/tally/pkg/server"
)

const errorsSecret = "errors-test-secret-0123456789abcdef"

// errDomain is a service's own error, mapped by its table.
var errDomain = errors.New("no such account")

// serviceTable is a service's table in front of CommonErrors.
var serviceTable = server.ErrorTable{
	{Is: errDomain, Code: codes.NotFound, Level: slog.LevelWarn},
}

// failingLedger answers GetBalance and WatchEvents with the error named by the request's org id.
// Org "forward" calls GetBalance of org "record" through rpcclient, which records its request id.
type failingLedger struct {
	ledgerv1.UnimplementedLedgerServiceServer
	errs     map[string]error
	conn     *grpc.ClientConn
	recorded chan string
	// Org "slow" signals entered, then waits for release and returns hook's error.
	entered, release chan struct{}
	hook             func() error
}

func (l *failingLedger) GetBalance(ctx context.Context, req *ledgerv1.GetBalanceRequest) (*ledgerv1.GetBalanceResponse, error) {
	switch req.GetOrgId() {
	case "forward":
		_, err := ledgerv1.NewLedgerServiceClient(l.conn).GetBalance(ctx, &ledgerv1.GetBalanceRequest{OrgId: "record"})
		return &ledgerv1.GetBalanceResponse{}, err
	case "record":
		l.recorded <- server.RequestID(ctx)
		return &ledgerv1.GetBalanceResponse{}, nil
	case "panic":
		panic("handler bug")
	case "slow":
		l.entered <- struct{}{}
		<-l.release
		return &ledgerv1.GetBalanceResponse{}, l.hook()
	}
	return nil, l.errs[req.GetOrgId()]
}

// WatchEvents of org "watch" and "watch-err" sends one event, then follows until its context is
// done, and returns nil ("watch", as the ledger does) or the context's error ("watch-err").
func (l *failingLedger) WatchEvents(req *ledgerv1.WatchEventsRequest, stream ledgerv1.LedgerService_WatchEventsServer) error {
	switch req.GetOrgId() {
	case "watch", "watch-err":
		if err := stream.Send(&ledgerv1.WatchEventsResponse{Event: &ledgerv1.BalanceEvent{Sequence: 1}}); err != nil {
			return err
		}
		<-stream.Context().Done()
		if req.GetOrgId() == "watch-err" {
			return stream.Context().Err()
		}
		return nil
	}
	return l.errs[req.GetOrgId()]
}

// records is a slog handler keeping every record.
type records struct {
	mu   sync.Mutex
	recs []slog.Record
}

func (r *records) Enabled(context.Context, slog.Level) bool { return true }
func (r *records) Handle(_ context.Context, rec slog.Record) error {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.recs = append(r.recs, rec.Clone())
	return nil
}
func (r *records) WithAttrs([]slog.Attr) slog.Handler { return r }
func (r *records) WithGroup(string) slog.Handler      { return r }

// at returns the attributes of the records at level, one map per record.
func (r *records) at(level slog.Level) []map[string]string {
	r.mu.Lock()
	defer r.mu.Unlock()
	var out []map[string]string
	for _, rec := range r.recs {
		if rec.Level != level {
			continue
		}
		attrs := map[string]string{"msg": rec.Message}
		rec.Attrs(func(a slog.Attr) bool { attrs[a.Key] = a.Value.String(); return true })
		out = append(out, attrs)
	}
	return out
}

// errorsServer is a server over bufconn answering with the errors of ledger.
type errorsServer struct {
	client ledgerv1.LedgerServiceClient
	logs   *records
	ledger *failingLedger
}

func startErrorsServer(t *testing.T, table server.ErrorTable, errs map[string]error) *errorsServer {
	t.Helper()
	srv, lis, s := newErrorsServer(t, table, errs)
	ctx, cancel := context.WithCancel(t.Context())
	done := make(chan error, 1)
	go func() { done <- srv.Serve(ctx, lis) }()
	t.Cleanup(func() { cancel(); require.NoError(t, <-done) })
	return s
}

// newErrorsServer returns a server answering with errs, not yet serving its listener.
func newErrorsServer(t *testing.T, table server.ErrorTable, errs map[string]error) (*server.Server, net.Listener, *errorsServer) {
	t.Helper()
	v, err := auth.NewHS256Verifier([]byte(errorsSecret))
	require.NoError(t, err)
	service := auth.Rule{Roles: []auth.Role{auth.RoleService}}
	logs := &records{}
	srv, err := server.New(server.Config{Name: "errors-test", Logger: slog.New(logs), Verifier: v, Errors: table,
		Policy: auth.Policy{ledgerv1.LedgerService_GetBalance_FullMethodName: service, ledgerv1.LedgerService_WatchEvents_FullMethodName: service}})
	require.NoError(t, err)
	lis := bufconn.Listen(1 << 20)
	tok, err := auth.Mint([]byte(errorsSecret), auth.Claims{Subject: "service:test", Roles: []auth.Role{auth.RoleService}}, time.Hour)
	require.NoError(t, err)
	conn, err := rpcclient.Dial("passthrough:///bufnet", tok,
		grpc.WithContextDialer(func(ctx context.Context, _ string) (net.Conn, error) { return lis.DialContext(ctx) }))
	require.NoError(t, err)
	t.Cleanup(func() { _ = conn.Close() })
	l := &failingLedger{errs: errs, conn: conn, recorded: make(chan string, 1),
		entered: make(chan struct{}, 1), release: make(chan struct{}), hook: func() error { return nil }}
	ledgerv1.RegisterLedgerServiceServer(srv.GRPC(), l)
	return srv, lis, &errorsServer{client: ledgerv1.NewLedgerServiceClient(conn), logs: logs, ledger: l}
}

// call calls GetBalance for org with request id rid ("" sends none) and returns the request id
// echoed in the response header and the error.
func (s *errorsServer) call(t *testing.T, org, rid string) (string, error) {
	t.Helper()
	ctx := t.Context()
	if rid != "" {
		ctx = metadata.AppendToOutgoingContext(ctx, server.RequestIDHeader, rid)
	}
	var header metadata.MD
	_, err := s.client.GetBalance(ctx, &ledgerv1.GetBalanceRequest{OrgId: org}, grpc.Header(&header))
	echoed := header.Get(server.RequestIDHeader)
	require.Len(t, echoed, 1, "the request id is echoed even on errors (%q: %v)", rid, err)
	return echoed[0], err
}

// sampleError returns an error rule r matches, wrapped as a handler would.
func sampleError(t *testing.T, r server.ErrorRule) error {
	t.Helper()
	if r.Is != nil {
		return fmt.Errorf("doing it: %w", r.Is)
	}
	for _, e := range []error{&pgconn.PgError{Code: "08006", Message: "connection failure"}, context.DeadlineExceeded} {
		if r.Match(e) {
			return fmt.Errorf("doing it: %w", e)
		}
	}
	t.Fatalf("no sample error for rule %+v", r)
	return nil
}

// TestCommonErrorsOverTheWire calls a handler returning a sample of every CommonErrors row and
// requires the row's code, its message (masked where the row masks), and RetryInfo.
func TestCommonErrorsOverTheWire(t *testing.T) {
	t.Parallel()
	errs := map[string]error{}
	for i, r := range server.CommonErrors {
		errs[fmt.Sprint("row-", i)] = sampleError(t, r)
	}
	s := startErrorsServer(t, nil, errs)
	for i, r := range server.CommonErrors {
		org := fmt.Sprint("row-", i)
		t.Run(fmt.Sprintf("%s %v", org, r.Is), func(t *testing.T) {
			rid, err := s.call(t, org, org)
			require.Equal(t, org, rid)
			st := status.Convert(err)
			require.Equal(t, r.Code, st.Code(), "%v", err)
			switch {
			case r.Code == codes.Internal:
				require.Equal(t, "internal error (request "+org+")", st.Message())
			case r.Message != "":
				require.Equal(t, r.Message, st.Message())
			default:
				require.Equal(t, errs[org].Error(), st.Message(), "the domain message is kept")
			}
			var retry *errdetails.RetryInfo
			for _, d := range st.Details() {
				if ri, ok := d.(*errdetails.RetryInfo); ok {
					retry = ri
				}
			}
			if r.RetryAfter == 0 {
				require.Nil(t, retry)
				return
			}
			require.NotNil(t, retry, "RetryInfo")
			require.Equal(t, r.RetryAfter, retry.GetRetryDelay().AsDuration())
		})
	}
}

// TestErrorMapping covers what is not a row: statuses made by the handler, wrapped statuses,
// a dependency's deadline, the service table before CommonErrors, and unknown errors.
func TestErrorMapping(t *testing.T) {
	t.Parallel()
	s := startErrorsServer(t, serviceTable, map[string]error{
		"unwrapped": status.Error(codes.ResourceExhausted, "slow down"),
		"wrapped":   fmt.Errorf("calling pricing: %w", status.Error(codes.NotFound, "pricing.internal:9090 said no")),
		"deadline":  fmt.Errorf("querying: %w", context.DeadlineExceeded),
		"domain":    fmt.Errorf("account acme: %w", errDomain),
		"unknown":   errors.New("disk on fire at db-7.internal"),
	})
	tests := []struct {
		org  string
		code codes.Code
		msg  string
	}{
		{org: "unwrapped", code: codes.ResourceExhausted, msg: "slow down"},
		{org: "wrapped", code: codes.Internal, msg: "internal error (request rid-wrapped)"},
		{org: "deadline", code: codes.Unavailable, msg: "a dependency is unavailable, retry later"},
		{org: "domain", code: codes.NotFound, msg: "account acme: no such account"},
		{org: "unknown", code: codes.Internal, msg: "internal error (request rid-unknown)"},
	}
	for _, tt := range tests {
		t.Run(tt.org, func(t *testing.T) {
			_, err := s.call(t, tt.org, "rid-"+tt.org)
			require.Equal(t, tt.code, status.Code(err), "%v", err)
			require.Equal(t, tt.msg, status.Convert(err).Message())
		})
	}
}

// TestFieldViolations: an InvalidArgument whose error names its fields (pkg/ids, pkg/textcheck,
// fieldviolation.Wrap) carries them as google.rpc.BadRequest; other codes and errors carry none.
func TestFieldViolations(t *testing.T) {
	t.Parallel()
	errInvalid := errors.New("invalid request")
	table := server.ErrorTable{{Is: errInvalid, Code: codes.InvalidArgument}}
	tests := []struct {
		name string
		err  error
		want []*errdetails.BadRequest_FieldViolation
	}{
		{"ids", fmt.Errorf("%w: %w", errInvalid, ids.OrgID("-x")),
			[]*errdetails.BadRequest_FieldViolation{{Field: "org_id", Description: "org_id must start with a letter or digit"}}},
		{"common row", ids.IdempotencyKey("idempotency_key", ""),
			[]*errdetails.BadRequest_FieldViolation{{Field: "idempotency_key", Description: "idempotency_key is required"}}},
		{"money", fmt.Errorf("%w: %w", errInvalid, fieldviolation.Wrap("amount", money.ErrMissing)),
			[]*errdetails.BadRequest_FieldViolation{{Field: "amount", Description: "amount is required"}}},
		{"no field", errInvalid, nil},
		{"not InvalidArgument", fmt.Errorf("%w: %w", errDomain, ids.OrgID("")), nil},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			st, _ := append(table, serviceTable...).Status(t.Context(), tt.err)
			var got []*errdetails.BadRequest_FieldViolation
			for _, d := range st.Details() {
				if br, ok := d.(*errdetails.BadRequest); ok {
					got = append(got, br.GetFieldViolations()...)
				}
			}
			require.Len(t, got, len(tt.want))
			for i := range tt.want {
				require.Equal(t, tt.want[i].GetField(), got[i].GetField())
				require.Equal(t, tt.want[i].GetDescription(), got[i].GetDescription())
			}
		})
	}
}

// TestInternalLoggedOnce requires one Error record per internal error, naming the method and the
// request id the caller read, for unary and streaming calls; and no Error record for refusals.
func TestInternalLoggedOnce(t *testing.T) {
	t.Parallel()
	s := startErrorsServer(t, serviceTable, map[string]error{
		"unknown": errors.New("boom"),
		"domain":  errDomain,
	})
	rid, err := s.call(t, "unknown", "")
	require.Equal(t, codes.Internal, status.Code(err))
	require.Regexp(t, `^[0-9a-f]{32}$`, rid, "a new id without one from the caller")
	require.Equal(t, "internal error (request "+rid+")", status.Convert(err).Message())

	stream, err := s.client.WatchEvents(metadata.AppendToOutgoingContext(t.Context(), server.RequestIDHeader, "watch-1"),
		&ledgerv1.WatchEventsRequest{OrgId: "unknown"})
	require.NoError(t, err)
	_, err = stream.Recv()
	require.Equal(t, "internal error (request watch-1)", status.Convert(err).Message())
	header, herr := stream.Header()
	require.NoError(t, herr)
	require.Equal(t, []string{"watch-1"}, header.Get(server.RequestIDHeader))

	_, err = s.call(t, "domain", "refused-1")
	require.Equal(t, codes.NotFound, status.Code(err))

	errorsLogged := s.logs.at(slog.LevelError)
	require.Len(t, errorsLogged, 2, "%v", errorsLogged)
	require.Equal(t, "rpc failed", errorsLogged[0]["msg"])
	require.Equal(t, ledgerv1.LedgerService_GetBalance_FullMethodName, errorsLogged[0]["method"])
	require.Equal(t, rid, errorsLogged[0]["request_id"])
	require.Equal(t, "boom", errorsLogged[0]["err"])
	require.Equal(t, ledgerv1.LedgerService_WatchEvents_FullMethodName, errorsLogged[1]["method"])
	require.Equal(t, "watch-1", errorsLogged[1]["request_id"])
	warned := s.logs.at(slog.LevelWarn)
	require.Len(t, warned, 1, "the service table's level")
	require.Equal(t, "refused-1", warned[0]["request_id"])
	require.Equal(t, "rpc refused", warned[0]["msg"], "\"rpc failed\" is only ever an internal error")
}

// TestPanicIsInternalWithRequestID requires a panicking handler answered Internal with the
// request id, and the panic logged once at Error with it.
func TestPanicIsInternalWithRequestID(t *testing.T) {
	t.Parallel()
	s := startErrorsServer(t, nil, nil)
	rid, err := s.call(t, "panic", "panic-1")
	require.Equal(t, "panic-1", rid)
	require.Equal(t, codes.Internal, status.Code(err))
	require.Equal(t, "internal error (request panic-1)", status.Convert(err).Message())
	logged := s.logs.at(slog.LevelError)
	require.Len(t, logged, 1, "%v", logged)
	require.Equal(t, "panic in rpc", logged[0]["msg"])
	require.Equal(t, "panic-1", logged[0]["request_id"])
}

// TestStatusOfContextErrors requires a context error to be the caller's only while the caller's
// own context is done, and a dependency's (Unavailable) otherwise.
func TestStatusOfContextErrors(t *testing.T) {
	t.Parallel()
	canceled, cancel := context.WithCancel(t.Context())
	cancel()
	expired, cancelExpired := context.WithDeadline(t.Context(), time.Unix(0, 0))
	defer cancelExpired()
	tests := []struct {
		name string
		ctx  context.Context
		err  error
		code codes.Code
	}{
		{"caller canceled", canceled, fmt.Errorf("query: %w", context.Canceled), codes.Canceled},
		{"caller canceled, dependency deadline", canceled, fmt.Errorf("query: %w", context.DeadlineExceeded), codes.Canceled},
		{"caller deadline", expired, fmt.Errorf("query: %w", context.DeadlineExceeded), codes.DeadlineExceeded},
		{"dependency deadline", t.Context(), fmt.Errorf("query: %w", context.DeadlineExceeded), codes.Unavailable},
		{"dependency canceled", t.Context(), fmt.Errorf("query: %w", context.Canceled), codes.Unavailable},
		{"caller gone, other error", canceled, errDomain, codes.NotFound},
	}
	for _, tt := range tests {
		st, _ := serviceTable.Status(tt.ctx, tt.err)
		require.Equal(t, tt.code, st.Code(), tt.name)
	}
	require.Equal(t, codes.Unavailable, serviceTable.Code(context.DeadlineExceeded), "Code: the caller waits")
	require.Equal(t, codes.Internal, server.ErrorTable(nil).Code(errors.New("x")))
	st, level := server.ErrorTable{{Is: errDomain, Code: codes.OK}}.Status(t.Context(), errDomain)
	require.Equal(t, codes.Internal, st.Code(), "no rule makes an error a success")
	require.Equal(t, slog.LevelError, level)
}

// TestRequestID requires a caller's acceptable id kept, any other replaced, and the id forwarded
// by rpcclient on the calls a handler makes.
func TestRequestID(t *testing.T) {
	t.Parallel()
	s := startErrorsServer(t, nil, nil)
	newID := regexp.MustCompile(`^[0-9a-f]{32}$`)
	tests := []struct {
		sent string
		kept bool
	}{
		{sent: "abc-DEF_0.9", kept: true},
		{sent: "a", kept: true},
		{sent: "0123456789012345678901234567890123456789012345678901234567890123", kept: true}, // 64
		{sent: "01234567890123456789012345678901234567890123456789012345678901234"},            // 65
		{sent: "has space"},
		{sent: "semi;colon"},
		{sent: "slash/and$dollar"}, // grpc-go itself refuses to send control or non-ASCII bytes
	}
	for _, tt := range tests {
		rid, _ := s.call(t, "record", tt.sent)
		require.Equal(t, rid, <-s.ledger.recorded, "the handler sees the echoed id")
		if tt.kept {
			require.Equal(t, tt.sent, rid)
		} else {
			require.Regexp(t, newID, rid, "%q replaced", tt.sent)
		}
	}
	rid, _ := s.call(t, "forward", "chain-7")
	require.Equal(t, "chain-7", rid)
	require.Equal(t, "chain-7", <-s.ledger.recorded, "rpcclient forwards the id")
}

func TestErrorInfoReason(t *testing.T) {
	t.Parallel()
	errLimit, errGone := errors.New("limit reached"), errors.New("gone")
	table := server.ErrorTable{{Is: errLimit, Code: codes.FailedPrecondition, Reason: "LIMIT_REACHED"}, {Is: errGone, Code: codes.NotFound}}
	st, _ := table.Status(t.Context(), fmt.Errorf("debit: %w", errLimit))
	require.Equal(t, codes.FailedPrecondition, st.Code())
	require.Len(t, st.Details(), 1)
	info, ok := st.Details()[0].(*errdetails.ErrorInfo)
	require.True(t, ok)
	require.Equal(t, "LIMIT_REACHED", info.GetReason())
	require.Equal(t, server.ErrorDomain, info.GetDomain())
	st, _ = table.Status(t.Context(), errGone)
	require.Empty(t, st.Details(), "a rule without a reason adds no ErrorInfo")
}
