package grpcapi

import (
	"context"
	"errors"
	"log/slog"

	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"

	"github.com/tallyhq/tally/pkg/money"
	"github.com/tallyhq/tally/services/payments/internal/payment"
)

// toStatus is the one place where payments errors become gRPC statuses. Unknown errors are logged
// and masked.
func toStatus(logger *slog.Logger, err error) error {
	if err == nil {
		return nil
	}
	// Only statuses made here pass through: a wrapped status from a dependency would leak its
	// message and code.
	if _, ok := err.(interface{ GRPCStatus() *status.Status }); ok {
		return err
	}
	var code codes.Code
	switch {
	case errors.Is(err, payment.ErrInvalid), errors.Is(err, payment.ErrBadSignature),
		errors.Is(err, money.ErrMissing), errors.Is(err, money.ErrUnknownCurrency), errors.Is(err, money.ErrNanosOutOfRange),
		errors.Is(err, money.ErrSignMismatch), errors.Is(err, money.ErrOverflow):
		code = codes.InvalidArgument
	case errors.Is(err, payment.ErrNotFound):
		code = codes.NotFound
	case errors.Is(err, payment.ErrAlreadyExists):
		code = codes.AlreadyExists
	case errors.Is(err, payment.ErrFailedPrecondition), errors.Is(err, payment.ErrRejected):
		code = codes.FailedPrecondition
	case errors.Is(err, payment.ErrUnavailable):
		logger.Warn("dependency unavailable", "err", err)
		return status.Error(codes.Unavailable, "a dependency is unavailable, retry later")
	case errors.Is(err, context.Canceled):
		code = codes.Canceled
	case errors.Is(err, context.DeadlineExceeded):
		code = codes.DeadlineExceeded
	default:
		logger.Error("payments call failed", "err", err)
		return status.Error(codes.Internal, "internal error")
	}
	return status.Error(code, err.Error())
}
