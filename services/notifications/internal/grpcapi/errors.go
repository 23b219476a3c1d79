package grpcapi

import (
	"context"
	"errors"
	"log/slog"

	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"

	"github.com/tallyhq/tally/pkg/money"
	"github.com/tallyhq/tally/services/notifications/internal/notify"
)

// toStatus is the one place where notifications errors become gRPC statuses. Unknown errors
// are logged and masked.
func toStatus(logger *slog.Logger, err error) error {
	if err == nil {
		return nil
	}
	if _, ok := status.FromError(err); ok {
		return err
	}
	var code codes.Code
	switch {
	case errors.Is(err, notify.ErrInvalid), errors.Is(err, money.ErrMissing), errors.Is(err, money.ErrUnknownCurrency),
		errors.Is(err, money.ErrNanosOutOfRange), errors.Is(err, money.ErrSignMismatch), errors.Is(err, money.ErrOverflow):
		code = codes.InvalidArgument
	case errors.Is(err, notify.ErrPermissionDenied):
		code = codes.PermissionDenied
	case errors.Is(err, notify.ErrNotFound):
		code = codes.NotFound
	case errors.Is(err, notify.ErrUnavailable):
		code = codes.Unavailable
	case errors.Is(err, context.Canceled):
		code = codes.Canceled
	case errors.Is(err, context.DeadlineExceeded):
		code = codes.DeadlineExceeded
	default:
		logger.Error("notifications call failed", "err", err)
		return status.Error(codes.Internal, "internal error")
	}
	return status.Error(code, err.Error())
}
