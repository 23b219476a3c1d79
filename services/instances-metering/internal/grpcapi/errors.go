package grpcapi

import (
	"context"
	"errors"
	"log/slog"

	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"

	"github.com/tallyhq/tally/pkg/catalog"
	"github.com/tallyhq/tally/pkg/ledgerclient"
	"github.com/tallyhq/tally/services/instances-metering/internal/rental"
)

// toStatus is the one place where metering errors become gRPC statuses. Unknown errors are
// logged and masked.
func toStatus(logger *slog.Logger, method string, err error) error {
	if err == nil {
		return nil
	}
	if _, ok := status.FromError(err); ok {
		return err
	}
	var code codes.Code
	switch {
	case errors.Is(err, rental.ErrInvalid):
		code = codes.InvalidArgument
	case errors.Is(err, rental.ErrNotFound), errors.Is(err, catalog.ErrUnknownInstanceType):
		code = codes.NotFound
	case errors.Is(err, rental.ErrConflict):
		code = codes.AlreadyExists
	case errors.Is(err, rental.ErrInsufficientCredits), errors.Is(err, rental.ErrEnded),
		errors.Is(err, rental.ErrNotRentable), errors.Is(err, rental.ErrChargeRefused):
		code = codes.FailedPrecondition
	case errors.Is(err, rental.ErrCatalogNotReady), errors.Is(err, ledgerclient.ErrUnavailable), errors.Is(err, rental.ErrStarting):
		code = codes.Unavailable
	case errors.Is(err, context.Canceled):
		code = codes.Canceled
	case errors.Is(err, context.DeadlineExceeded):
		code = codes.DeadlineExceeded
	default:
		logger.Error("instances metering call failed", "method", method, "err", err)
		return status.Error(codes.Internal, "internal error")
	}
	return status.Error(code, err.Error())
}
