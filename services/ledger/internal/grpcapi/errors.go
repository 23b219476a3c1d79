package grpcapi

import (
	"context"
	"errors"
	"log/slog"
	"time"

	"google.golang.org/genproto/googleapis/rpc/errdetails"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"
	"google.golang.org/protobuf/types/known/durationpb"

	"github.com/tallyhq/tally/pkg/catalog"
	"github.com/tallyhq/tally/pkg/money"
	"github.com/tallyhq/tally/services/ledger/internal/app"
	"github.com/tallyhq/tally/services/ledger/internal/committer"
	"github.com/tallyhq/tally/services/ledger/internal/ledger"
)

// toStatus is the one place where ledger errors become gRPC statuses. Unknown errors are logged
// and masked.
func toStatus(logger *slog.Logger, err error) error {
	if err == nil {
		return nil
	}
	if _, ok := status.FromError(err); ok {
		return err
	}
	// Dependency outages first: they may wrap a context error of the ledger's own deadline.
	switch {
	case errors.Is(err, ledger.ErrUnavailable):
		logger.Debug("ledger database unavailable", "err", err) // logged once per outage by the committer
		return unavailable("the ledger's database is unavailable; retry (a write with the same idempotency key)", 250*time.Millisecond)
	case errors.Is(err, committer.ErrClosed):
		return unavailable("the ledger is shutting down; retry", 100*time.Millisecond)
	case errors.Is(err, app.ErrPricingUnavailable):
		return unavailable(app.ErrPricingUnavailable.Error()+"; retry", time.Second)
	}
	var code codes.Code
	switch {
	case errors.Is(err, ledger.ErrInvalid), errors.Is(err, ledger.ErrCurrencyMismatch), errors.Is(err, ledger.ErrOverflow),
		errors.Is(err, money.ErrMissing), errors.Is(err, money.ErrUnknownCurrency), errors.Is(err, money.ErrNanosOutOfRange),
		errors.Is(err, money.ErrSignMismatch), errors.Is(err, money.ErrOverflow), errors.Is(err, money.ErrOverLimit):
		code = codes.InvalidArgument
	case errors.Is(err, catalog.ErrUnknownDimension), errors.Is(err, catalog.ErrInvalidQuantity), errors.Is(err, catalog.ErrTimeTooFarAhead):
		code = codes.InvalidArgument
	case errors.Is(err, catalog.ErrUnknownModel):
		code = codes.NotFound
	case errors.Is(err, ledger.ErrInsufficientFunds), errors.Is(err, ledger.ErrHoldNotActive), errors.Is(err, catalog.ErrNoPriceInForce):
		code = codes.FailedPrecondition
	case errors.Is(err, ledger.ErrIdempotencyConflict):
		code = codes.AlreadyExists
	case errors.Is(err, ledger.ErrHoldNotFound):
		code = codes.NotFound
	case errors.Is(err, context.Canceled):
		code = codes.Canceled
	case errors.Is(err, context.DeadlineExceeded):
		code = codes.DeadlineExceeded
	default:
		logger.Error("ledger call failed", "err", err)
		return status.Error(codes.Internal, "internal error")
	}
	return status.Error(code, err.Error())
}

// unavailable is an Unavailable status telling the client when to retry.
func unavailable(msg string, retryAfter time.Duration) error {
	st := status.New(codes.Unavailable, msg)
	if withRetry, err := st.WithDetails(&errdetails.RetryInfo{RetryDelay: durationpb.New(retryAfter)}); err == nil {
		st = withRetry
	}
	return st.Err()
}
