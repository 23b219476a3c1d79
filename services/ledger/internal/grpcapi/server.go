// Package grpcapi serves tally.ledger.v1.LedgerService: it maps protobuf to the ledger domain.
// Handlers return domain errors; errors.go's table maps them to gRPC statuses, applied once by
// pkg/server's error interceptor.
package grpcapi

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"strconv"

	moneypb "google.golang.org/genproto/googleapis/type/money"

	"github.com/tallyhq/tally/pkg/auth"
	"github.com/tallyhq/tally/pkg/fieldviolation"
	ledgerv1 "github.com/tallyhq/tally/pkg/gen/tally/ledger/v1"
	"github.com/tallyhq/tally/pkg/grpcmap"
	"github.com/tallyhq/tally/pkg/ids"
	"github.com/tallyhq/tally/pkg/money"
	"github.com/tallyhq/tally/services/ledger/internal/app"
	"github.com/tallyhq/tally/services/ledger/internal/ledger"
	"github.com/tallyhq/tally/services/ledger/internal/shard"
	"github.com/tallyhq/tally/services/ledger/internal/streamwindow"
)

// Server implements LedgerServiceServer.
type Server struct {
	ledgerv1.UnimplementedLedgerServiceServer
	// app routes each call to the app of its organization's shard (the one app with one shard).
	app    *shard.Router
	logger *slog.Logger
	// window sizes the DebitStreams' windows from the commit latency.
	window *streamwindow.Window
}

var _ ledgerv1.LedgerServiceServer = (*Server)(nil)

// New returns a Server over a; streams sizes the DebitStream windows (zero values: the
// streamwindow defaults).
func New(a *shard.Router, logger *slog.Logger, streams streamwindow.Config) (*Server, error) {
	if a == nil || logger == nil {
		return nil, errors.New("grpcapi: app and logger are required")
	}
	w, err := streamwindow.New(streams)
	if err != nil {
		return nil, fmt.Errorf("grpcapi: %w", err)
	}
	return &Server{app: a, logger: logger, window: w}, nil
}

func actor(ctx context.Context) string {
	if c, ok := auth.FromContext(ctx); ok {
		return c.Subject
	}
	return ""
}

// callerService is the internal service the caller's token identifies, "" for other callers.
func callerService(ctx context.Context) string {
	if c, ok := auth.FromContext(ctx); ok {
		return c.ServiceName()
	}
	return ""
}

// amount converts a wire amount; positive says whether zero and negative amounts are refused.
func amount(m *moneypb.Money, positive bool) (money.Money, error) {
	v, err := money.FromProto(m)
	if err != nil {
		return money.Money{}, fmt.Errorf("%w: %w", ledger.ErrInvalid, fieldviolation.Wrap("amount", err))
	}
	if positive && v.Nanos <= 0 {
		return money.Money{}, fmt.Errorf("%w: %w", ledger.ErrInvalid, fieldviolation.Invalid("amount", "must be positive"))
	}
	return v, nil
}

// GetBalance implements LedgerServiceServer.
func (s *Server) GetBalance(ctx context.Context, req *ledgerv1.GetBalanceRequest) (*ledgerv1.GetBalanceResponse, error) {
	acct, err := s.app.Balance(ctx, req.GetOrgId())
	if err != nil {
		return nil, err
	}
	return &ledgerv1.GetBalanceResponse{
		OrgId:     req.GetOrgId(),
		Balance:   money.ToProto(acct.Balance, acct.Currency),
		Available: money.ToProto(acct.Available(s.app.Now()), acct.Currency),
		Held:      money.ToProto(acct.Held, acct.Currency),
		ExpiresAt: grpcmap.Timestamp(acct.ExpiresAt),
		Version:   acct.Version,
	}, nil
}

// write parses the request of a write RPC into a ledger.Request made by the caller: its token's
// subject is the actor, the internal service it names (if any) the caller service.
func write[Req any](parse func(Req, string) (*ledger.Request, error)) func(context.Context, Req) (*ledger.Request, error) {
	return func(ctx context.Context, req Req) (*ledger.Request, error) {
		r, err := parse(req, actor(ctx))
		if err != nil {
			return nil, err
		}
		r.CallerService = callerService(ctx)
		return r, nil
	}
}

// balanceAfter is the balance a write's transaction left.
func balanceAfter(res ledger.Result) *moneypb.Money {
	return money.ToProto(res.Transaction.BalanceAfter, res.Transaction.Currency)
}

// Credit implements LedgerServiceServer.
func (s *Server) Credit(ctx context.Context, req *ledgerv1.CreditRequest) (*ledgerv1.CreditResponse, error) {
	return grpcmap.Unary(ctx, req, write(creditRequest), s.app.Write, func(res ledger.Result) *ledgerv1.CreditResponse {
		return &ledgerv1.CreditResponse{
			Transaction: txToProto(res.Transaction),
			Balance:     balanceAfter(res),
			ExpiresAt:   grpcmap.Timestamp(res.Account.ExpiresAt),
			Replayed:    res.Replayed,
		}
	})
}

// Debit implements LedgerServiceServer.
func (s *Server) Debit(ctx context.Context, req *ledgerv1.DebitRequest) (*ledgerv1.DebitResponse, error) {
	return grpcmap.Unary(ctx, req, write(debitRequest), s.app.Write, debitResponse)
}

// debitResponse is the answer to a committed or replayed debit, unary or streamed.
func debitResponse(res ledger.Result) *ledgerv1.DebitResponse {
	return &ledgerv1.DebitResponse{
		TransactionId: res.Transaction.ID,
		Balance:       balanceAfter(res),
		Transaction:   txToProto(res.Transaction),
		Replayed:      res.Replayed,
	}
}

// Adjust implements LedgerServiceServer.
func (s *Server) Adjust(ctx context.Context, req *ledgerv1.AdjustRequest) (*ledgerv1.AdjustResponse, error) {
	return grpcmap.Unary(ctx, req, write(adjustRequest), s.adjust, func(res ledger.Result) *ledgerv1.AdjustResponse {
		return &ledgerv1.AdjustResponse{Transaction: txToProto(res.Transaction), Balance: balanceAfter(res), Replayed: res.Replayed}
	})
}

// adjust writes an adjustment and logs it: adjustments are an operator's hand on the books.
func (s *Server) adjust(ctx context.Context, r *ledger.Request) (ledger.Result, error) {
	res, err := s.app.Write(ctx, r)
	if err != nil {
		return res, err
	}
	s.logger.InfoContext(ctx, "ledger adjustment", "org_id", r.OrgID, "amount", r.Amount.String(), "reason", r.Reason,
		"actor", r.Actor, "transaction_id", res.Transaction.ID)
	return res, nil
}

// ListTransactions implements LedgerServiceServer.
func (s *Server) ListTransactions(ctx context.Context, req *ledgerv1.ListTransactionsRequest) (*ledgerv1.ListTransactionsResponse, error) {
	size, before, err := grpcmap.SeqPage(req, 500, ledger.ErrInvalid)
	if err != nil {
		return nil, err
	}
	var kind ledger.TxKind
	if k := req.GetKind(); k != ledgerv1.TransactionKind_TRANSACTION_KIND_UNSPECIFIED {
		var ok bool
		if kind, ok = txKindsFromProto[k]; !ok {
			return nil, fmt.Errorf("%w: kind: unknown transaction kind %d", ledger.ErrInvalid, k)
		}
	}
	txs, err := s.app.Transactions(ctx, req.GetOrgId(), size+1, before, kind)
	if err != nil {
		return nil, err
	}
	txs, next := grpcmap.Page(txs, size, func(t *ledger.Transaction) string { return strconv.FormatInt(t.Seq, 10) })
	return &ledgerv1.ListTransactionsResponse{Transactions: grpcmap.Map(txs, txToProto), NextPageToken: next}, nil
}

// GetUsageSummary implements LedgerServiceServer.
func (s *Server) GetUsageSummary(ctx context.Context, req *ledgerv1.GetUsageSummaryRequest) (*ledgerv1.GetUsageSummaryResponse, error) {
	sum, err := s.app.UsageSummary(ctx, req.GetOrgId(), int(req.GetDays()))
	if err != nil {
		return nil, err
	}
	resp, err := usageSummaryToProto(sum)
	if err != nil {
		return nil, err
	}
	return resp, nil
}

// Authorize implements LedgerServiceServer.
func (s *Server) Authorize(ctx context.Context, req *ledgerv1.AuthorizeRequest) (*ledgerv1.AuthorizeResponse, error) {
	var a app.Authorization
	var err error
	if req.GetUsage() != nil {
		if req.GetAmount() != nil {
			return nil, fmt.Errorf("%w: send either amount or usage, not both", ledger.ErrInvalid)
		}
		u, uerr := usageFromProto(req.GetUsage())
		if uerr != nil {
			return nil, uerr
		}
		a, err = s.app.AuthorizeUsage(ctx, req.GetOrgId(), req.GetProject(), u)
	} else {
		amt, aerr := amount(req.GetAmount(), false)
		if aerr != nil {
			return nil, aerr
		}
		a, err = s.app.Authorize(ctx, req.GetOrgId(), req.GetProject(), amt.Nanos, amt.Currency)
	}
	if err != nil {
		return nil, err
	}
	return &ledgerv1.AuthorizeResponse{Allowed: a.Allowed, Available: money.ToProto(a.Available, a.Currency), Amount: money.ToProto(a.Amount, a.Currency),
		DenialReason: a.Reason}, nil
}

// Reserve implements LedgerServiceServer.
func (s *Server) Reserve(ctx context.Context, req *ledgerv1.ReserveRequest) (*ledgerv1.ReserveResponse, error) {
	return grpcmap.Unary(ctx, req, write(reserveRequest), s.app.Write, func(res ledger.Result) *ledgerv1.ReserveResponse {
		return &ledgerv1.ReserveResponse{
			Hold:      holdToProto(res.Hold),
			Available: money.ToProto(res.Account.Available(s.app.Now()), res.Account.Currency),
			Replayed:  res.Replayed,
		}
	})
}

// Capture implements LedgerServiceServer.
func (s *Server) Capture(ctx context.Context, req *ledgerv1.CaptureRequest) (*ledgerv1.CaptureResponse, error) {
	return grpcmap.Unary(ctx, req, write(captureRequest), s.app.Write, func(res ledger.Result) *ledgerv1.CaptureResponse {
		resp := &ledgerv1.CaptureResponse{Hold: holdToProto(res.Hold), Transaction: txToProto(res.Transaction), Replayed: res.Replayed}
		if res.Transaction != nil {
			resp.Balance = balanceAfter(res)
		} else {
			resp.Balance = money.ToProto(res.Account.Balance, res.Account.Currency)
		}
		return resp
	})
}

// Release implements LedgerServiceServer.
func (s *Server) Release(ctx context.Context, req *ledgerv1.ReleaseRequest) (*ledgerv1.ReleaseResponse, error) {
	return grpcmap.Unary(ctx, req, write(releaseRequest), s.app.Write, func(res ledger.Result) *ledgerv1.ReleaseResponse {
		return &ledgerv1.ReleaseResponse{Hold: holdToProto(res.Hold)}
	})
}

// WatchEvents implements LedgerServiceServer.
func (s *Server) WatchEvents(req *ledgerv1.WatchEventsRequest, stream ledgerv1.LedgerService_WatchEventsServer) error {
	if req.GetAfterSequence() < 0 {
		return fmt.Errorf("%w: after_sequence must not be negative", ledger.ErrInvalid)
	}
	if org := req.GetOrgId(); org != "" {
		if err := ledger.Invalid(ids.OrgID(org)); err != nil {
			return err
		}
	}
	from := shard.EventsFrom{AfterSeq: req.GetAfterSequence(), Cursor: req.GetAfterCursor()}
	err := s.app.WatchEvents(stream.Context(), from, req.GetOrgId(), func(e ledger.Event, sh, cursor string) error {
		ev := eventToProto(e)
		ev.Shard, ev.Cursor = sh, cursor
		return stream.Send(&ledgerv1.WatchEventsResponse{Event: ev})
	})
	if stream.Context().Err() != nil {
		return nil // the client went away
	}
	return err
}

// MoveOrganization implements LedgerServiceServer.
func (s *Server) MoveOrganization(ctx context.Context, req *ledgerv1.MoveOrganizationRequest) (*ledgerv1.MoveOrganizationResponse, error) {
	res, err := s.app.Move(ctx, req.GetOrgId(), req.GetToShard(), req.GetIdempotencyKey(), actor(ctx))
	if err != nil {
		return nil, err
	}
	m := res.Move
	return &ledgerv1.MoveOrganizationResponse{
		OrgId: m.OrgID, FromShard: m.From, ToShard: m.To, Replayed: res.Replayed,
		Balance: money.ToProto(m.Amount, m.Currency), Held: money.ToProto(m.Held, m.Currency),
	}, nil
}
