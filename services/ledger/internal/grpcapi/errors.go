package grpcapi

import (
	"context"
	"errors"
	"log/slog"

	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"

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
	case errors.Is(err, app.ErrPricingUnavailable):
		code = codes.Unavailable
	case errors.Is(err, ledger.ErrIdempotencyConflict):
		code = codes.AlreadyExists
	case errors.Is(err, ledger.ErrHoldNotFound):
		code = codes.NotFound
	case errors.Is(err, committer.ErrClosed):
		code = codes.Unavailable
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
